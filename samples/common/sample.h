/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * sample.h - what every muser sample device program shares: the vfio-user
 * spec's command line convention (--socket-path=PATH or --fd=N), --help,
 * --verbose, creating the device from those, and clean exit on SIGTERM /
 * SIGINT through mu_dev_stop(). Samples never daemonize.
 */
#ifndef MUSER_SAMPLE_H
#define MUSER_SAMPLE_H

#include <stdbool.h>
#include <stdint.h>

#include "muser/device.h"

/* A sample-specific option, handled by set(ctx, arg). arg is NULL for
 * options without an argument. set returns 0, or a negative errno with
 * the reason already printed. */
struct sample_opt {
	const char *name; /* long option name, without "--" */
	bool has_arg;
	const char *arg_name; /* for --help: "PATH" */
	const char *help;
	int (*set)(void *ctx, const char *arg);
};

/* A switch that sets a bool in the ctx struct: defines the set function
 * fn for the options table, e.g. SAMPLE_FLAG_OPT(opt_quiet, struct dev,
 * quiet). */
#define SAMPLE_FLAG_OPT(fn, type, field)                                       \
	static int fn(void *ctx, const char *arg)                              \
	{                                                                      \
		(void)arg;                                                     \
		((type *)ctx)->field = true;                                   \
		return 0;                                                      \
	}

struct sample_args {
	const char *socket_path; /* --socket-path=PATH or the lone argument */
	int fd;			 /* --fd=N, else -1 */
	int verbose;		 /* how many times --verbose was given */
	/* --sandbox[=LEVEL[,log]] / --no-sandbox: a mu_sandbox_level, or
	 * SAMPLE_SANDBOX_AUTO (the default); sandbox_flags MU_SANDBOX_* */
	int sandbox;
	uint32_t sandbox_flags;
};

#define SAMPLE_SANDBOX_AUTO (-1)

/*
 * Parse argv. Returns 0 to go on, 1 when --help was printed (exit 0), or
 * -EINVAL after printing a usage error (exit 2). summary is one line for
 * --help.
 */
int sample_parse_args(int argc, char **argv, const char *summary,
		      const struct sample_opt *opts, unsigned nopts, void *ctx,
		      struct sample_args *out);

/* Parse an unsigned number (0x.. hex, 0.. octal, or decimal) up to max. */
int sample_parse_u64(const char *s, uint64_t max, uint64_t *out);
/* --pci-id=VVVV:DDDD (hex); prints the complaint and returns -EINVAL. */
int sample_parse_pci_id(const char *s, uint16_t *vendor, uint16_t *device);

/* Create the device on the socket path or adopt --fd, with a logger whose
 * level follows --verbose. Prints the reason on failure. */
int sample_dev_create(const struct sample_args *args, mu_dev_t **dev,
		      void *opaque);

struct control;
/* What a sample holds or calls beyond libmuser: its backing file, the
 * system calls of its I/O threads (names as in mu_sandbox_opts). */
struct sample_sandbox_extra {
	const int *keep_fds;
	unsigned nr_keep_fds;
	const char *const *syscalls;
	unsigned nr_syscalls;
};
/*
 * Sandbox the process as --sandbox asked (after realize, after the
 * program's own fds exist, before its threads start). ctl (may be NULL)
 * is a control socket to keep serving and to remove at exit; extra (may
 * be NULL) more fds and calls. auto (the default): MU_SANDBOX_STRICT,
 * skipping namespaces the machine refuses, and no sandbox at all, with a
 * warning, where seccomp is missing. The signal pipe is kept. 0, or a
 * negative errno after printing it.
 */
int sample_sandbox(const struct sample_args *args, mu_dev_t *dev,
		   const struct control *ctl,
		   const struct sample_sandbox_extra *extra);

/*
 * Install handlers: SIGTERM and SIGINT call mu_dev_stop(dev) (which makes
 * mu_dev_run() return) and are also reported through the returned fd,
 * a non-blocking pipe for poll() loops; extra signals (e.g. SIGUSR1) are
 * only reported through the pipe. SIGPIPE is ignored. Returns the fd or a
 * negative errno. One device per program: the handler needs a global.
 */
int sample_signals_init(mu_dev_t *dev, const int *extra, unsigned nextra);
/* Install before the socket exists (dev NULL) so that a signal sent as
 * soon as the socket appears is not lost, then name the device. */
void sample_signals_set_dev(mu_dev_t *dev);
/* Restore the default handlers and close the pipe (before destroying
 * the device). */
void sample_signals_fini(void);
/* Next signal number received, 0 when none is pending. Reads the pipe
 * only when a signal arrived since the last call that returned 0, so a
 * poll loop may call it every time round at no cost. */
int sample_signal_next(void);
/* True once SIGTERM or SIGINT arrived. */
bool sample_stop_requested(void);
/* Serve dev with mu_dev_process() when its fd is readable, and handle the
 * signal pipe sigfd, until a stop is requested or an --fd client leaves
 * (0), or an error (negative errno, printed). Devices whose threads do
 * message DMA use it: their replies come in on the same fd. */
int sample_serve(mu_dev_t *dev, int sigfd);

/*
 * The --blocking serve mode, for programs that need no fd of their own
 * besides the device: mu_dev_run(), which costs one recvmsg() and one
 * sendmsg() per synchronous request. SIGTERM/SIGINT end it through
 * mu_dev_stop() from the handler (within libmuser's 250 ms idle tick
 * while a client is attached); the signal pipe is not read meanwhile, so
 * extra signals (SIGUSR1) do nothing. Returns 0 when done (stop signal,
 * or the --fd client left), 1 when the program itself called
 * mu_dev_stop() (handle what it wanted, then call again), or a negative
 * errno after printing it.
 */
int sample_run_blocking(mu_dev_t *dev);

/* The program name for messages (basename of argv[0]). */
extern const char *sample_prog;

#endif
