/* SPDX-License-Identifier: BSD-3-Clause */
/* The client API sequence fuzz-client runs; record-session runs it against
 * a real server to make fuzz-client's seed, so the seed lines up. */
#ifndef MUSER_FUZZ_CLIENT_SESSION_H
#define MUSER_FUZZ_CLIENT_SESSION_H

#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "muser/client.h"

static inline void client_session(mu_client_t *c)
{
	const struct mu_client_region *reg;
	struct mu_device_info di;
	struct mu_irq_info ii;
	uint8_t buf[64], dma[4096];
	unsigned i;
	int efd;

	memset(buf, 0, sizeof(buf));
	mu_client_device_info(c, &di);
	for (i = 0; i < 10; i++)
		mu_client_region_info(c, i, &reg);
	mu_client_irq_info(c, 0, &ii);
	mu_client_region_read(c, 7, 0, buf, 4);
	mu_client_region_write(c, 0, 0, buf, 4);
	mu_client_region_write_posted(c, 0, 0, buf, 4);
	mu_client_flush(c);
	mu_client_dma_map_buffer(c, 0x10000, dma, sizeof(dma),
				 MU_DMA_MAP_FLAG_READ | MU_DMA_MAP_FLAG_WRITE);
	efd = eventfd(0, EFD_CLOEXEC);
	mu_client_irq_set_eventfds(c, 0, 0, 1, &efd);
	close(efd);
	mu_client_process(c);
	mu_client_reset(c);
	mu_client_dma_unmap(c, 0x10000, sizeof(dma));
}

#endif
