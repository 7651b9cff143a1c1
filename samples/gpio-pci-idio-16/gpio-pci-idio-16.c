/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * muser-gpio-idio16 - the ACCES PCI-IDIO-16 board as a vfio-user device.
 *
 * 16 optically isolated inputs, 16 FET outputs and change-of-state
 * interrupts on the inputs, behind 7 byte-wide registers in I/O BAR 2, as
 * Linux's gpio-pci-idio-16 driver programs them (see README.md for the
 * register map). Inputs change from outside through the control socket
 * (--control=PATH) or SIGUSR1 (toggles input 0). --blocking serves with
 * mu_dev_run() instead of the poll loop (no control socket, no SIGUSR1).
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "control.h"
#include "idio16.h"
#include "muser/device.h"
#include "sample.h"

void idio16_set_line(struct idio16 *b)
{
	int r;

	if (b->stopped)
		return; /* a stopped device raises nothing; RUNNING replays */
	r = mu_irq_set_intx(b->dev, b->latched != 0);
	/* No eventfd yet is normal: the level is kept and replayed. */
	if (r < 0 && r != -ENOENT)
		fprintf(stderr, "%s: INTx: %s\n", sample_prog, strerror(-r));
}

static void show_outputs(struct idio16 *b)
{
	if (!b->quiet)
		printf("outputs: 0x%04x\n", b->outputs);
}

/* An input change latches a change-of-state interrupt while IRQs are
 * enabled; a disabled board ignores it, like the real one. */
static void set_inputs(struct idio16 *b, uint16_t v)
{
	uint16_t changed = b->inputs ^ v;
	uint8_t old = b->latched;

	b->inputs = v;
	if (!changed)
		return;
	if (b->irq_enabled) {
		if (changed & 0x00ff)
			b->latched |= STATUS_CHANGE_LO;
		if (changed & 0xff00)
			b->latched |= STATUS_CHANGE_HI;
	}
	if (!b->quiet)
		printf("inputs: 0x%04x%s\n", v,
		       b->latched && !old ? " (interrupt)" : "");
	if (b->latched != old)
		idio16_set_line(b);
}

static void clear_irq(struct idio16 *b)
{
	if (!b->latched)
		return;
	b->latched = 0;
	idio16_set_line(b);
}

static uint8_t reg_read(struct idio16 *b, uint64_t off)
{
	switch (off) {
	case REG_OUT0_7:
		return b->outputs & 0xff;
	case REG_OUT8_15:
		return b->outputs >> 8;
	case REG_IN0_7:
		return b->inputs & 0xff;
	case REG_IN8_15:
		return b->inputs >> 8;
	case REG_IRQ_CTL:
		/* Reading is the "enable" strobe; the data is undefined. */
		b->irq_enabled = true;
		return 0;
	case REG_FILTER:
		b->filters = true;
		return 0;
	case REG_IRQ_STATUS:
		return b->latched ? (uint8_t)(b->latched | STATUS_PENDING) : 0;
	default:
		return 0xff; /* nothing decodes offset 7: the bus floats */
	}
}

static void reg_write(struct idio16 *b, uint64_t off, uint8_t v)
{
	switch (off) {
	case REG_OUT0_7:
		b->outputs = (uint16_t)((b->outputs & 0xff00) | v);
		show_outputs(b);
		break;
	case REG_OUT8_15:
		b->outputs = (uint16_t)((b->outputs & 0x00ff) | (v << 8));
		show_outputs(b);
		break;
	case REG_IN0_7:
		clear_irq(b);
		break;
	case REG_IRQ_CTL:
		/* Disabling drops what was latched so that a later enable
		 * does not deliver a stale change. */
		b->irq_enabled = false;
		clear_irq(b);
		break;
	case REG_FILTER:
		b->filters = false;
		break;
	default:
		break; /* unused: ignored */
	}
}

/* Byte registers: a wider access is a run of byte accesses, as on the
 * board's 8-bit local bus. */
static ssize_t bar2_access(void *opaque, unsigned region, uint64_t offset,
			   void *buf, size_t count, bool is_write)
{
	struct idio16 *b = opaque;
	uint8_t *p = buf;

	(void)region;
	for (size_t i = 0; i < count; i++) {
		if (is_write)
			reg_write(b, offset + i, p[i]);
		else
			p[i] = reg_read(b, offset + i);
	}
	return (ssize_t)count;
}

static int dev_reset(void *opaque, enum mu_reset_reason why)
{
	struct idio16 *b = opaque;

	/* A VMM going away is not a power cycle: outputs keep driving. */
	if (why == MU_RESET_LOST_CONN)
		return 0;
	idio16_mig_free(b); /* the library is back in RUNNING */
	b->outputs = 0;
	b->irq_enabled = false;
	b->filters = false;
	clear_irq(b);
	show_outputs(b);
	return 0;
}

static void dev_attach(void *opaque)
{
	struct idio16 *b = opaque;

	if (!b->quiet)
		printf("client attached\n");
}

static void dev_detach(void *opaque)
{
	struct idio16 *b = opaque;

	if (!b->quiet)
		printf("client detached\n");
}

/* ---- control socket --------------------------------------------------- */

static void control_cmd(void *opaque, char *line, char *reply, size_t len)
{
	struct idio16 *b = opaque;
	char *save = NULL;
	char *cmd = strtok_r(line, " \t", &save);
	char *arg = strtok_r(NULL, " \t", &save);
	uint64_t v;

	if (!cmd) {
		snprintf(reply, len, "error: empty command");
	} else if (strtok_r(NULL, " \t", &save)) {
		snprintf(reply, len, "error: too many arguments");
	} else if (!strcasecmp(cmd, "get-outputs") && !arg) {
		snprintf(reply, len, "0x%04x", b->outputs);
	} else if (!strcasecmp(cmd, "get-inputs") && !arg) {
		snprintf(reply, len, "0x%04x", b->inputs);
	} else if (!strcasecmp(cmd, "set-inputs") && arg) {
		if (sample_parse_u64(arg, 0xffff, &v) < 0) {
			snprintf(reply, len, "error: bad value '%s'", arg);
			return;
		}
		set_inputs(b, (uint16_t)v);
		snprintf(reply, len, "ok 0x%04x", b->inputs);
	} else if (!strcasecmp(cmd, "toggle-input") && arg) {
		if (sample_parse_u64(arg, 15, &v) < 0) {
			snprintf(reply, len, "error: bad input '%s'", arg);
			return;
		}
		set_inputs(b, (uint16_t)(b->inputs ^ (1u << v)));
		snprintf(reply, len, "ok 0x%04x", b->inputs);
	} else if (!strcasecmp(cmd, "status") && !arg) {
		snprintf(reply, len,
			 "outputs=0x%04x inputs=0x%04x irq=%s status=0x%02x "
			 "filters=%s attached=%d",
			 b->outputs, b->inputs, b->irq_enabled ? "on" : "off",
			 reg_read(b, REG_IRQ_STATUS), b->filters ? "on" : "off",
			 mu_dev_is_attached(b->dev));
	} else if (!strcasecmp(cmd, "help") && !arg) {
		snprintf(reply, len,
			 "commands: get-outputs, get-inputs, set-inputs VALUE, "
			 "toggle-input N, status, help");
	} else {
		snprintf(reply, len, "error: unknown command '%s'", cmd);
	}
}

/* ---- setup and main loop ------------------------------------------------ */

SAMPLE_FLAG_OPT(opt_quiet, struct idio16, quiet)
SAMPLE_FLAG_OPT(opt_blocking, struct idio16, blocking)

static int opt_control(void *ctx, const char *arg)
{
	((struct idio16 *)ctx)->control_path = arg;
	return 0;
}

static const struct sample_opt options[] = {
	{"control", true, "PATH",
	 "control socket: set-inputs VALUE, get-inputs, ...", opt_control},
	{"blocking", false, NULL,
	 "serve with mu_dev_run() (fewest syscalls); not with\n"
	 "                      --control, and SIGUSR1 is ignored",
	 opt_blocking},
	{"quiet", false, NULL, "don't print output and input changes",
	 opt_quiet},
};

static int setup(struct idio16 *b)
{
	const struct mu_pci_id id = {
		.vendor_id = IDIO16_VENDOR,
		.device_id = IDIO16_DEVICE,
		.subsys_vendor_id = IDIO16_VENDOR,
		.subsys_id = IDIO16_DEVICE,
		.class_code = IDIO16_CLASS,
	};
	const struct mu_region_desc bar2 = {
		.struct_size = sizeof(bar2),
		.size = IDIO16_BAR_SIZE,
		.flags = MU_REGION_RW | MU_REGION_BAR_IO,
		.access = bar2_access,
	};
	const struct mu_dev_callbacks cb = {
		.struct_size = sizeof(cb),
		.reset = dev_reset,
		.attach = dev_attach,
		.detach = dev_detach,
		.mig_transition = idio16_mig_transition,
		.mig_read = idio16_mig_read,
		.mig_write = idio16_mig_write,
	};
	int r;

	if ((r = mu_pci_setup(b->dev, &id, MU_PCI_CONVENTIONAL)) < 0 ||
	    (r = mu_pci_set_intx_pin(b->dev, 1)) < 0 ||
	    (r = mu_dev_setup_region(b->dev, IDIO16_BAR, &bar2)) < 0 ||
	    (r = mu_dev_setup_irq(b->dev, MU_PCI_INTX_IRQ_INDEX, 1)) < 0 ||
	    (r = mu_dev_set_callbacks(b->dev, &cb)) < 0 ||
	    (r = mu_dev_realize(b->dev)) < 0)
		fprintf(stderr, "%s: device setup: %s\n", sample_prog,
			strerror(-r));
	return r;
}

static int serve(struct idio16 *b, int sigfd, struct control *ctl)
{
	struct pollfd pfd[2 + 1 + CONTROL_MAX_CLIENTS];

	for (;;) {
		unsigned n = 0, nctl;
		int sig, r;

		/* The device fd changes when a client attaches or leaves. */
		pfd[n++] = (struct pollfd){.fd = mu_dev_get_poll_fd(b->dev),
					   .events = POLLIN};
		pfd[n++] = (struct pollfd){.fd = sigfd, .events = POLLIN};
		nctl = control_pollfds(ctl, &pfd[n]);
		if (poll(pfd, n + nctl, -1) < 0 && errno != EINTR) {
			r = -errno;
			fprintf(stderr, "%s: poll: %s\n", sample_prog,
				strerror(errno));
			return r;
		}
		while ((sig = sample_signal_next()) > 0) {
			if (sig == SIGUSR1)
				set_inputs(b, b->inputs ^ 1);
		}
		if (sample_stop_requested())
			return 0;
		if (pfd[0].revents) {
			r = mu_dev_process(b->dev);
			if (r == -ENOTCONN) /* the --fd client is gone */
				return 0;
			if (r < 0) {
				fprintf(stderr, "%s: device: %s\n", sample_prog,
					strerror(-r));
				return r;
			}
		}
		control_dispatch(ctl, &pfd[n], nctl);
		fflush(stdout);
	}
}

int main(int argc, char **argv)
{
	struct idio16 board = {0};
	struct sample_args args;
	struct control ctl = {.listen_fd = -1};
	static const int extra_sigs[] = {SIGUSR1};
	int sigfd, r;

	/* Line-buffered even into a pipe: tests read what we print. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	r = sample_parse_args(argc, argv,
			      "Emulate an ACCES PCI-IDIO-16 GPIO board "
			      "(494f:0dc8) as a vfio-user device.",
			      options, sizeof(options) / sizeof(options[0]),
			      &board, &args);
	if (r)
		return r > 0 ? 0 : 2;
	if (board.blocking && board.control_path) {
		fprintf(stderr, "%s: --blocking serves no control socket\n",
			sample_prog);
		return 2;
	}
	sigfd = sample_signals_init(NULL, extra_sigs, 1);
	if (sigfd < 0) {
		fprintf(stderr, "%s: signals: %s\n", sample_prog,
			strerror(-sigfd));
		return 1;
	}
	if (sample_dev_create(&args, &board.dev, &board) < 0)
		return 1;
	sample_signals_set_dev(board.dev);
	r = setup(&board);
	if (r == 0 && board.control_path) {
		r = control_open(&ctl, board.control_path, control_cmd, &board);
		if (r < 0)
			fprintf(stderr, "%s: control socket %s: %s\n",
				sample_prog, board.control_path, strerror(-r));
	}
	if (r == 0)
		r = sample_sandbox(&args, board.dev, &ctl, NULL);
	if (r == 0) {
		if (!board.quiet && args.socket_path)
			printf("listening on %s\n", args.socket_path);
		if (board.blocking)
			r = sample_run_blocking(board.dev);
		else
			r = serve(&board, sigfd, &ctl);
	}
	sample_signals_fini();
	control_close(&ctl);
	mu_dev_destroy(board.dev);
	idio16_mig_free(&board);
	return r < 0 ? 1 : 0;
}
