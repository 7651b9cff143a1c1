/* SPDX-License-Identifier: BSD-3-Clause */
/* serve.h - answering the server's own commands (DMA_READ/DMA_WRITE). */
#ifndef MUSER_CONFORM_SERVE_H
#define MUSER_CONFORM_SERVE_H

#include "conn.h"

/* Validate and answer one server command received on sock. Violations
 * are counted in c->dma with the first one's evidence. */
void cf_serve(struct cf_conn *c, int sock, struct cf_msg *m);

#endif
