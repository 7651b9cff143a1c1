/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * muser-conform - types shared by the catalogue, the runner, the output
 * formats and the check groups. Every function returns 0 / a count or a
 * negative errno; nothing the server sends is trusted.
 */
#ifndef MUSER_CONFORM_H
#define MUSER_CONFORM_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "muser/wire.h"

#define PROG "muser-conform"

enum cf_status { CF_PASS, CF_FAIL, CF_WARN, CF_SKIP };

/* Spec section headings (QEMU's docs/interop/vfio-user.rst). */
#define S_HDR "Header"
#define S_VER "VFIO_USER_VERSION"
#define S_MAP "VFIO_USER_DMA_MAP"
#define S_UNMAP "VFIO_USER_DMA_UNMAP"
#define S_INFO "VFIO_USER_DEVICE_GET_INFO"
#define S_RINFO "VFIO_USER_DEVICE_GET_REGION_INFO"
#define S_IOFDS "VFIO_USER_DEVICE_GET_REGION_IO_FDS"
#define S_IRQINFO "VFIO_USER_DEVICE_GET_IRQ_INFO"
#define S_SETIRQS "VFIO_USER_DEVICE_SET_IRQS"
#define S_READ "VFIO_USER_REGION_READ"
#define S_WRITE "VFIO_USER_REGION_WRITE"
#define S_DMARW "VFIO_USER_DMA_READ/WRITE"
#define S_RESET "VFIO_USER_DEVICE_RESET"
#define S_WMULTI "VFIO_USER_REGION_WRITE_MULTI"
#define S_FEAT "VFIO_USER_DEVICE_FEATURE"
#define S_MIGDATA "VFIO_USER_MIG_DATA_READ/WRITE"
#define S_CONC "Command Concurrency"
#define S_DISC "Socket Disconnection Behavior"
#define S_SOCK "Socket"
#define S_SIZES "Message sizes"
#define S_RW "Read and Write Operations"
#define S_CMDS "Commands"
#define S_SEC "Security Considerations"

struct cf_ctx;

/* One entry of the catalogue. */
struct cf_check {
	const char *id;	  /* group.name, stable: scripts match on it */
	const char *spec; /* spec section */
	const char
		*proto;	  /* docs/protocol.md section where the spec is vague */
	const char *rule; /* the rule, one line */
	unsigned needs;	  /* CF_NEED_* */
	int (*run)(struct cf_ctx *x);
};

#define CF_NEED_NONE 0u	   /* the check connects by itself */
#define CF_NEED_SESSION 1u /* a negotiated connection in x->c */
#define CF_NEED_PARENT 2u  /* runs in the runner, over the run's totals */

/* What one check reports back (crosses a pipe from the check's process). */
#define CF_EV_MAX 240
struct cf_result {
	int status;
	bool setup_failed; /* could not get a session */
	int setup_err;	   /* why: -errno (transport) or the server's */
	int server_pid;	   /* from SO_PEERCRED, 0 if unknown */
	long ms;
	uint32_t dma_read, dma_write, dma_bad;
	char evidence[CF_EV_MAX];
	char dma_evidence[160];
};

/* What the standard negotiation agreed on (the server's side). */
struct cf_session {
	uint16_t major, minor;
	uint32_t max_msg_fds;
	uint64_t max_data_xfer;
	uint32_t max_dma_maps;
	uint64_t pgsizes;
	bool write_multiple;
};

/* DMA requests the server sent and how the checker answered them. */
struct cf_dma_stats {
	uint32_t reads, writes, bad;
	char first_bad[160];
};

struct cf_conn;

/* --dma-kick: register writes that make the device do DMA. */
#define CF_KICK_MAX 16
struct cf_kick {
	unsigned region;
	uint64_t offset;
	uint32_t size;
	uint64_t value;
};

struct cf_ctx {
	const char *path;
	int timeout_ms;
	int server_pid; /* 0 if unknown */
	struct cf_conn *c;
	struct cf_session sess;
	bool have_info;
	struct mu_device_info info;
	struct cf_dma_stats dma;
	char ev[CF_EV_MAX];
	int last_err; /* errno of the last error reply cf_req saw */
	const struct cf_kick *kicks;
	unsigned nkicks;
	/* Aggregated over the run, for the final dma.requests check. */
	const struct cf_dma_stats *run_dma;
};

/* ---- catalogue (registry.c) ------------------------------------------- */

/* Each group's table ends with an entry whose id is NULL. */
extern const struct cf_check cf_checks_start[], cf_checks_version[],
	cf_checks_frame[], cf_checks_cmd[], cf_checks_region[],
	cf_checks_config[], cf_checks_irq[], cf_checks_dma[], cf_checks_fd[],
	cf_checks_reset[], cf_checks_mig[], cf_checks_conn[], cf_checks_final[];
/* Every check in run order; *n set to the count. */
const struct cf_check *const *cf_catalogue(unsigned *n);
/* Does id match the --only list (comma-separated shell patterns; a bare
 * group name matches the whole group)? */
bool cf_selected(const char *id, const char *only);
/* Does the --only list select anything at all? */
bool cf_only_valid(const char *only);

/* ---- runner (runner.c) ------------------------------------------------- */

struct cf_run_opts {
	const char *path;
	int timeout_ms;
	const char *only;
	struct cf_kick kicks[CF_KICK_MAX];
	unsigned nkicks;
};
/* Parse "R:OFF:SIZE:VALUE[,...]" into o->kicks; 0 or -EINVAL. */
int cf_parse_kicks(struct cf_run_opts *o, const char *arg);
struct cf_output;
/* Runs the selected checks, each in its own process; returns the number
 * of FAILs, or -errno. */
int cf_run(const struct cf_run_opts *o, struct cf_output *out);

/* ---- output (output.c) ------------------------------------------------- */

enum cf_format { CF_TABLE, CF_TAP, CF_JSON };
struct cf_output *cf_output_new(enum cf_format f, const char *path,
				unsigned nchecks);
void cf_output_result(struct cf_output *o, const struct cf_check *k,
		      const struct cf_result *r);
void cf_output_end(struct cf_output *o);
void cf_list(enum cf_format f, const char *only);
const char *cf_status_name(int st);

/* ---- check helpers (util.c) -------------------------------------------- */

/* Set the evidence and return st, so checks can `return cf_set(...)`. */
int cf_set(struct cf_ctx *x, int st, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* FAIL with a transport error (what, then why). */
int cf_lost(struct cf_ctx *x, int err, const char *what);
const char *cf_errname(int err);
/* Open /proc/PID/fd of the server: count, or -errno (-ENOENT: unknown). */
int cf_server_fd_count(const struct cf_ctx *x);
long cf_now_ms(void);

#endif
