/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vm-ctl - send one command line to a sample's control socket and print
 * the answer (the VM test scripts and the demo use it; Debian has no
 * UNIX-socket client in its base system).
 *
 *   vm-ctl SOCKET WORD...      e.g.  vm-ctl /tmp/gpio.ctl set-inputs 0x1234
 *
 * Exit status: 0 on an answer not starting with "error", 1 on an error
 * answer, 2 when the socket can't be reached (after retrying for 5 s).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char line[512] = "", reply[512];
	size_t len = 0;
	int fd = -1;

	if (argc < 3) {
		fprintf(stderr, "usage: %s SOCKET COMMAND [ARG...]\n", argv[0]);
		return 2;
	}
	if (strlen(argv[1]) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "vm-ctl: socket path too long\n");
		return 2;
	}
	strcpy(sa.sun_path, argv[1]);
	for (int i = 2; i < argc; i++) {
		int n = snprintf(line + len, sizeof(line) - len, "%s%s",
				 i > 2 ? " " : "", argv[i]);
		if (n < 0 || (size_t)n >= sizeof(line) - len - 1) {
			fprintf(stderr, "vm-ctl: command too long\n");
			return 2;
		}
		len += (size_t)n;
	}
	line[len++] = '\n';
	for (int tries = 0; tries < 50; tries++) {
		struct timespec ts = {0, 100 * 1000 * 1000};

		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			break;
		if (fd >= 0)
			close(fd);
		fd = -1;
		nanosleep(&ts, NULL);
	}
	if (fd < 0) {
		fprintf(stderr, "vm-ctl: %s: %s\n", argv[1], strerror(errno));
		return 2;
	}
	if (write(fd, line, len) != (ssize_t)len) {
		fprintf(stderr, "vm-ctl: write: %s\n", strerror(errno));
		return 2;
	}
	len = 0;
	while (len < sizeof(reply) - 1) {
		ssize_t n = read(fd, reply + len, sizeof(reply) - 1 - len);

		if (n <= 0)
			break;
		len += (size_t)n;
		if (memchr(reply, '\n', len))
			break;
	}
	close(fd);
	reply[len] = '\0';
	reply[strcspn(reply, "\n")] = '\0';
	if (!len) {
		fprintf(stderr, "vm-ctl: no answer from %s\n", argv[1]);
		return 2;
	}
	puts(reply);
	return strncmp(reply, "error", 5) == 0;
}
