/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * sample.c - command line, device creation and signal handling shared by
 * the sample device programs.
 */
#include "sample.h"

#include "control.h"

#include <errno.h>
#include <poll.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *sample_prog = "muser-sample";

#define OPT_SOCKET 1000
#define OPT_FD 1001
#define OPT_SANDBOX 1002
#define OPT_NO_SANDBOX 1003
#define OPT_EXTRA 2000
#define MAX_EXTRA 32

static void usage(FILE *f, const char *summary, const struct sample_opt *opts,
		  unsigned nopts)
{
	fprintf(f,
		"Usage: %s [OPTION]... (--socket-path=PATH | --fd=N | PATH)\n"
		"%s\n\n"
		"  --socket-path=PATH  listen for a vfio-user client on PATH\n"
		"  --fd=N              serve the already connected socket N\n",
		sample_prog, summary);
	for (unsigned i = 0; i < nopts; i++) {
		char left[64];

		snprintf(left, sizeof(left), "--%s%s%s", opts[i].name,
			 opts[i].has_arg ? "=" : "",
			 opts[i].has_arg ? opts[i].arg_name : "");
		fprintf(f, "  %-18s  %s\n", left, opts[i].help);
	}
	fprintf(f,
		"  --sandbox[=LEVEL]   confine the process once set up: none,\n"
		"                      seccomp, namespaces, strict or auto\n"
		"                      (the default: strict where the machine\n"
		"                      allows); LEVEL,log only logs forbidden\n"
		"                      calls (docs/security.md)\n"
		"  --no-sandbox        same as --sandbox=none\n");
	fprintf(f, "  -v, --verbose       more log messages (twice: debug)\n"
		   "  -h, --help          show this help and exit\n\n"
		   "SIGTERM or SIGINT stops the device cleanly.\n");
}

int sample_parse_pci_id(const char *s, uint16_t *vendor, uint16_t *device)
{
	unsigned v, d;
	char x;

	if (sscanf(s, "%x:%x%c", &v, &d, &x) != 2 || v > 0xffff ||
	    d > 0xffff) {
		fprintf(stderr, "%s: bad --pci-id '%s' (want VVVV:DDDD)\n",
			sample_prog, s);
		return -EINVAL;
	}
	*vendor = (uint16_t)v;
	*device = (uint16_t)d;
	return 0;
}

int sample_parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!s || !*s || *s == '-')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || *end || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

/* LEVEL[,log]; no LEVEL: auto. */
static int parse_sandbox(const char *arg, struct sample_args *out)
{
	static const char *const levels[] = {"none", "seccomp", "namespaces",
					     "strict"};
	const char *comma = arg ? strchr(arg, ',') : NULL;
	size_t len = comma ? (size_t)(comma - arg) : arg ? strlen(arg) : 0;
	unsigned i;

	out->sandbox = SAMPLE_SANDBOX_AUTO;
	out->sandbox_flags = 0;
	if (comma && strcmp(comma + 1, "log") != 0)
		return -EINVAL;
	if (comma)
		out->sandbox_flags = MU_SANDBOX_LOG_ONLY;
	if (!arg || (len == 4 && !strncmp(arg, "auto", 4)))
		return 0;
	for (i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
		if (strlen(levels[i]) == len && !strncmp(arg, levels[i], len)) {
			out->sandbox = (int)i;
			return 0;
		}
	return -EINVAL;
}

int sample_parse_args(int argc, char **argv, const char *summary,
		      const struct sample_opt *opts, unsigned nopts, void *ctx,
		      struct sample_args *out)
{
	struct option lopts[MAX_EXTRA + 7];
	unsigned n = 0;
	int c;

	if (argc > 0 && argv[0]) {
		const char *slash = strrchr(argv[0], '/');

		sample_prog = slash ? slash + 1 : argv[0];
	}
	if (nopts > MAX_EXTRA)
		return -EINVAL;
	out->socket_path = NULL;
	out->fd = -1;
	out->verbose = 0;
	out->sandbox = SAMPLE_SANDBOX_AUTO;
	out->sandbox_flags = 0;

	lopts[n++] = (struct option){"socket-path", required_argument, NULL,
				     OPT_SOCKET};
	lopts[n++] = (struct option){"fd", required_argument, NULL, OPT_FD};
	lopts[n++] = (struct option){"verbose", no_argument, NULL, 'v'};
	lopts[n++] = (struct option){"help", no_argument, NULL, 'h'};
	lopts[n++] = (struct option){"sandbox", optional_argument, NULL,
				     OPT_SANDBOX};
	lopts[n++] = (struct option){"no-sandbox", no_argument, NULL,
				     OPT_NO_SANDBOX};
	for (unsigned i = 0; i < nopts; i++)
		lopts[n++] = (struct option){opts[i].name,
					     opts[i].has_arg ? required_argument
							     : no_argument,
					     NULL, OPT_EXTRA + (int)i};
	lopts[n] = (struct option){NULL, 0, NULL, 0};

	optind = 1;
	while ((c = getopt_long(argc, argv, "vh", lopts, NULL)) != -1) {
		uint64_t v;
		int r;

		switch (c) {
		case OPT_SOCKET:
			out->socket_path = optarg;
			break;
		case OPT_FD:
			if (sample_parse_u64(optarg, INT32_MAX, &v) < 0) {
				fprintf(stderr, "%s: bad --fd '%s'\n",
					sample_prog, optarg);
				return -EINVAL;
			}
			out->fd = (int)v;
			break;
		case OPT_SANDBOX:
			if (parse_sandbox(optarg, out) < 0) {
				fprintf(stderr, "%s: bad --sandbox '%s'\n",
					sample_prog, optarg);
				return -EINVAL;
			}
			break;
		case OPT_NO_SANDBOX:
			out->sandbox = MU_SANDBOX_NONE;
			break;
		case 'v':
			out->verbose++;
			break;
		case 'h':
			usage(stdout, summary, opts, nopts);
			return 1;
		default:
			if (c >= OPT_EXTRA && c < OPT_EXTRA + (int)nopts) {
				r = opts[c - OPT_EXTRA].set(ctx, optarg);
				if (r < 0)
					return -EINVAL;
				break;
			}
			fprintf(stderr, "Try '%s --help'.\n", sample_prog);
			return -EINVAL;
		}
	}
	if (optind < argc && !out->socket_path)
		out->socket_path = argv[optind++];
	if (optind < argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\n", sample_prog,
			argv[optind]);
		return -EINVAL;
	}
	if (!out->socket_path == (out->fd < 0)) {
		fprintf(stderr,
			"%s: give exactly one of --socket-path=PATH and "
			"--fd=N\nTry '%s --help'.\n",
			sample_prog, sample_prog);
		return -EINVAL;
	}
	return 0;
}

static void log_stderr(void *opaque, int level, const char *msg)
{
	const char *tag = level <= MU_LOG_ERR	 ? "error"
			  : level <= MU_LOG_WARN ? "warning"
			  : level <= MU_LOG_INFO ? "info"
						 : "debug";

	(void)opaque;
	fprintf(stderr, "%s: %s: %s\n", sample_prog, tag, msg);
}

int sample_dev_create(const struct sample_args *args, mu_dev_t **dev,
		      void *opaque)
{
	int level = args->verbose >= 2	 ? MU_LOG_DEBUG
		    : args->verbose == 1 ? MU_LOG_INFO
					 : MU_LOG_WARN;
	int r;

	if (args->socket_path)
		r = mu_dev_create(dev, args->socket_path, opaque);
	else
		r = mu_dev_create_fd(dev, args->fd, opaque);
	if (r < 0) {
		if (args->socket_path)
			fprintf(stderr, "%s: cannot listen on %s: %s\n",
				sample_prog, args->socket_path, strerror(-r));
		else
			fprintf(stderr, "%s: cannot serve fd %d: %s\n",
				sample_prog, args->fd, strerror(-r));
		return r;
	}
	mu_dev_set_log(*dev, log_stderr, NULL, level);
	return 0;
}

/* ---- signals --------------------------------------------------------- */

/* The handler can only reach the device through globals. */
static mu_dev_t *sig_dev;
static int sig_pipe[2] = {-1, -1};
static volatile sig_atomic_t sig_stop;
/* Set by the handler after it wrote its byte, cleared by the reader just
 * before it reads: while it is clear the pipe holds nothing a reader
 * could miss, so sample_signal_next() costs no system call in the common
 * case (no signal) and a poll loop never reads the pipe in vain. */
static atomic_int sig_pending;

static void on_signal(int sig)
{
	int saved = errno;
	unsigned char b = (unsigned char)sig;

	if (sig == SIGTERM || sig == SIGINT) {
		sig_stop = 1;
		if (sig_dev)
			mu_dev_stop(sig_dev);
	}
	/* A full pipe only loses a duplicate wake-up. */
	if (write(sig_pipe[1], &b, 1) < 0) {
	}
	atomic_store(&sig_pending, 1);
	errno = saved;
}

int sample_signals_init(mu_dev_t *dev, const int *extra, unsigned nextra)
{
	struct sigaction sa;

	if (sig_pipe[0] < 0 && pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		return -errno;
	sig_dev = dev;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);

	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: a blocking call should see EINTR and look at us. */
	sa.sa_flags = 0;
	if (sigaction(SIGTERM, &sa, NULL) < 0 ||
	    sigaction(SIGINT, &sa, NULL) < 0)
		return -errno;
	for (unsigned i = 0; i < nextra; i++)
		if (sigaction(extra[i], &sa, NULL) < 0)
			return -errno;
	return sig_pipe[0];
}

void sample_signals_set_dev(mu_dev_t *dev)
{
	sig_dev = dev;
	if (dev && sig_stop)
		mu_dev_stop(dev);
}

void sample_signals_fini(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	sigemptyset(&sa.sa_mask);
	/* Signals that arrive from now on end the program the default way. */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	sig_dev = NULL;
	if (sig_pipe[0] >= 0) {
		close(sig_pipe[0]);
		close(sig_pipe[1]);
		sig_pipe[0] = sig_pipe[1] = -1;
	}
}

int sample_signal_next(void)
{
	unsigned char b;

	/* Clear first, then read: a signal that lands after the read found
	 * the pipe empty sets the flag again (it writes before it sets). */
	if (sig_pipe[0] < 0 || !atomic_exchange(&sig_pending, 0))
		return 0;
	if (read(sig_pipe[0], &b, 1) != 1)
		return 0;
	atomic_store(&sig_pending, 1); /* there may be more */
	return b;
}

int sample_run_blocking(mu_dev_t *dev)
{
	int r = mu_dev_run(dev);

	if (sample_stop_requested() || r == -ENOTCONN)
		return 0; /* SIGTERM/SIGINT, or the --fd client left */
	if (r < 0) {
		fprintf(stderr, "%s: device: %s\n", sample_prog, strerror(-r));
		return r;
	}
	return 1; /* mu_dev_stop() from the program itself */
}

bool sample_stop_requested(void)
{
	return sig_stop != 0;
}

int sample_serve(mu_dev_t *dev, int sigfd)
{
	for (;;) {
		struct pollfd pfd[2] = {
			{.fd = mu_dev_get_poll_fd(dev), .events = POLLIN},
			{.fd = sigfd, .events = POLLIN},
		};
		int r;

		if (poll(pfd, 2, -1) < 0 && errno != EINTR) {
			r = -errno;
			fprintf(stderr, "%s: poll: %s\n", sample_prog,
				strerror(errno));
			return r;
		}
		if (pfd[1].revents)
			while (sample_signal_next() > 0) {
			}
		if (sample_stop_requested())
			return 0;
		if (!pfd[0].revents)
			continue;
		r = mu_dev_process(dev);
		if (r == -ENOTCONN) /* the --fd client is gone */
			return 0;
		if (r < 0) {
			fprintf(stderr, "%s: device: %s\n", sample_prog,
				strerror(-r));
			return r;
		}
	}
}

/* ---- sandbox --------------------------------------------------------- */

#define SANDBOX_MAX_KEEP 32

int sample_sandbox(const struct sample_args *args, mu_dev_t *dev,
		   const struct control *ctl,
		   const struct sample_sandbox_extra *extra)
{
	static const char *const names[] = {"none", "seccomp", "namespaces",
					    "strict"};
	struct mu_sandbox_opts o = {.struct_size = sizeof(o)};
	int keep[SANDBOX_MAX_KEEP];
	const char *remove[1];
	unsigned nkeep = 0, nremove = 0;
	bool automatic = args->sandbox == SAMPLE_SANDBOX_AUTO;
	int r;

	if (args->sandbox == MU_SANDBOX_NONE)
		return 0;
	o.level = automatic ? MU_SANDBOX_STRICT
			    : (enum mu_sandbox_level)args->sandbox;
	o.flags = args->sandbox_flags;
	if (automatic)
		o.flags |= MU_SANDBOX_BEST_EFFORT;
	/* The signal pipe and the control socket keep working. */
	if (sig_pipe[0] >= 0) {
		keep[nkeep++] = sig_pipe[0];
		keep[nkeep++] = sig_pipe[1];
	}
	if (ctl && ctl->listen_fd >= 0) {
		keep[nkeep++] = ctl->listen_fd;
		remove[nremove++] = ctl->path; /* at control_close() */
	}
	for (unsigned i = 0; extra && i < extra->nr_keep_fds; i++) {
		if (nkeep == SANDBOX_MAX_KEEP) {
			fprintf(stderr, "%s: sandbox: too many fds\n",
				sample_prog);
			return -E2BIG;
		}
		keep[nkeep++] = extra->keep_fds[i];
	}
	if (extra) {
		o.syscalls = extra->syscalls;
		o.nr_syscalls = extra->nr_syscalls;
	}
	o.keep_fds = keep;
	o.nr_keep_fds = nkeep;
	o.remove_files = remove;
	o.nr_remove_files = nremove;
	r = mu_dev_sandbox(dev, &o);
	if (r == -ENOSYS && automatic) {
		fprintf(stderr,
			"%s: warning: no seccomp here (kernel or build): "
			"running without a sandbox\n",
			sample_prog);
		return 0;
	}
	if (r < 0) {
		fprintf(stderr, "%s: sandbox (%s): %s\n", sample_prog,
			names[o.level], strerror(-r));
		return r;
	}
	return 0; /* libmuser logged the level (at info: -v) */
}
