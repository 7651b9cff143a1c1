/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * spawn.c - start a device server on a private socket and connect to it
 * (--spawn), and stop it with SIGTERM afterwards.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

#define SPAWN_WAIT_MS 10000

int spawn_server(struct spawn *s, const char *path, const char *const *args,
		 unsigned nargs, mu_client_t **c,
		 const struct mu_client_opts *opts)
{
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	const char *argv[SPAWN_MAX_ARGS + 4];
	char arg[128];
	int ret = -ETIMEDOUT, st;
	unsigned n = 0;

	if (nargs > SPAWN_MAX_ARGS)
		return -E2BIG;

	memset(s, 0, sizeof(*s));
	snprintf(s->dir, sizeof(s->dir), "/tmp/muser-bench.XXXXXX");
	if (!mkdtemp(s->dir))
		return -errno;
	snprintf(s->sock, sizeof(s->sock), "%s/sock", s->dir);
	snprintf(arg, sizeof(arg), "--socket-path=%s", s->sock);
	argv[n++] = path;
	argv[n++] = arg;
	/* the muser samples print every event unless --quiet */
	if (!strncmp(base, "muser-", 6))
		argv[n++] = "--quiet";
	for (unsigned i = 0; i < nargs; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	s->pid = fork();
	if (s->pid < 0) {
		ret = -errno;
		rmdir(s->dir);
		return ret;
	}
	if (s->pid == 0) {
		/* the samples print events on stdout: keep ours clean */
		int null = open("/dev/null", O_WRONLY);

		if (null >= 0)
			dup2(null, STDOUT_FILENO);
		execv(path, (char *const *)argv);
		fprintf(stderr, PROG ": cannot run %s: %s\n", path,
			strerror(errno));
		_exit(127);
	}
	for (int ms = 0; ms < SPAWN_WAIT_MS; ms += 10) {
		if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
			s->pid = 0;
			fprintf(stderr, PROG ": %s exited (status %d)\n", path,
				WIFEXITED(st) ? WEXITSTATUS(st) : -1);
			ret = -ECHILD;
			break;
		}
		if (!access(s->sock, F_OK)) {
			ret = mu_client_connect(c, s->sock, opts);
			if (ret != -ECONNREFUSED && ret != -ENOENT)
				break;
		}
		usleep(10000);
	}
	if (ret < 0)
		spawn_stop(s);
	return ret;
}

void spawn_stop(struct spawn *s)
{
	int st;

	if (s->pid > 0) {
		kill(s->pid, SIGTERM);
		for (int ms = 0; ms < 5000; ms += 10) {
			if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
				s->pid = 0;
				break;
			}
			usleep(10000);
		}
		if (s->pid > 0) {
			kill(s->pid, SIGKILL);
			waitpid(s->pid, &st, 0);
			s->pid = 0;
		}
	}
	if (s->sock[0])
		unlink(s->sock);
	if (s->dir[0])
		rmdir(s->dir);
	s->dir[0] = s->sock[0] = 0;
}
