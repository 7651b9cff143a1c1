/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * idio16.h - the emulated PCI-IDIO-16's state, shared by the board
 * (gpio-pci-idio-16.c) and its migration support (migrate.c).
 */
#ifndef MUSER_IDIO16_H
#define MUSER_IDIO16_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "muser/device.h"

#define IDIO16_VENDOR 0x494f /* ACCES I/O Products ("IO") */
#define IDIO16_DEVICE 0x0dc8
#define IDIO16_CLASS 0xff0000 /* see README.md: no better class fits */
#define IDIO16_BAR 2
#define IDIO16_BAR_SIZE 8

/* Register offsets in BAR 2; each has a read and a write meaning. */
enum {
	REG_OUT0_7 = 0,	   /* R/W: FET outputs 0-7 */
	REG_IN0_7 = 1,	   /* R: inputs 0-7; W: clear interrupt */
	REG_IRQ_CTL = 2,   /* R: enable IRQ; W: disable IRQ */
	REG_FILTER = 3,	   /* R: activate input filters; W: deactivate */
	REG_OUT8_15 = 4,   /* R/W: FET outputs 8-15 */
	REG_IN8_15 = 5,	   /* R: inputs 8-15 */
	REG_IRQ_STATUS = 6 /* R: interrupt status */
};

/* Interrupt status bits (register 6). Linux's handler wants bit 2 and one
 * of bits 0-1 before it claims the (shared) line. */
#define STATUS_CHANGE_LO 0x01 /* a change on inputs 0-7 is latched */
#define STATUS_CHANGE_HI 0x02 /* a change on inputs 8-15 is latched */
#define STATUS_PENDING 0x04   /* the board asserts INTA# */

struct idio16 {
	mu_dev_t *dev;
	uint16_t outputs;
	uint16_t inputs;
	bool irq_enabled;
	bool filters;
	uint8_t latched; /* STATUS_CHANGE_* bits; nonzero = INTx asserted */
	bool quiet;
	bool blocking;
	const char *control_path;
	/* migration (migrate.c): stopped in STOP, STOP_COPY and RESUMING
	 * (the INTx level is applied again at RUNNING) */
	bool stopped;
	struct idio16_mig *mig;
};

/* gpio-pci-idio-16.c: tell the library the INTx level (latched != 0). */
void idio16_set_line(struct idio16 *b);

/* migrate.c: the mig_* callbacks, and freeing what they hold. */
int idio16_mig_transition(void *opaque, enum mu_mig_state to);
ssize_t idio16_mig_read(void *opaque, void *buf, size_t len);
ssize_t idio16_mig_write(void *opaque, const void *buf, size_t len);
void idio16_mig_free(struct idio16 *b);

#endif
