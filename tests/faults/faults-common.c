/* SPDX-License-Identifier: BSD-3-Clause */
#include "faults-common.h"

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- time, processes, fds ------------------------------------------------ */

long fl_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int scan_fds(pid_t pid, bool want_max)
{
	char path[64];
	struct dirent *e;
	DIR *d;
	int n = 0, mx = -1, self = -1;

	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	else
		snprintf(path, sizeof(path), "/proc/self/fd");
	d = opendir(path);
	if (!d)
		return -errno;
	if (!pid)
		self = dirfd(d);
	while ((e = readdir(d))) {
		int fd;

		if (e->d_name[0] == '.')
			continue;
		fd = atoi(e->d_name);
		if (fd == self)
			continue;
		n++;
		if (fd > mx)
			mx = fd;
	}
	closedir(d);
	return want_max ? mx : n;
}

int fl_fd_count(pid_t pid)
{
	return scan_fds(pid, false);
}

int fl_max_fd(pid_t pid)
{
	return scan_fds(pid, true);
}

int fl_wait_fd_count(pid_t pid, int want, int ms)
{
	long deadline = fl_now_ms() + ms;
	int n;

	for (;;) {
		n = fl_fd_count(pid);
		if (n == want || fl_now_ms() > deadline)
			return n;
		usleep(2000);
	}
}

int fl_wait_child(pid_t pid, int ms)
{
	long deadline = fl_now_ms() + ms;
	int st;

	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);

		if (r == pid)
			return st;
		if (r < 0 && errno != EINTR)
			return -1;
		if (fl_now_ms() > deadline) {
			fprintf(stderr, "hang guard: child %d killed\n",
				(int)pid);
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			return -1;
		}
		usleep(1000);
	}
}

pid_t fl_spawn_server(const char *bin, const char *path,
		      const char *const *extra)
{
	const char *argv[16];
	char opt[160];
	unsigned n = 0;
	long deadline;
	struct stat st;
	pid_t pid;

	snprintf(opt, sizeof(opt), "--socket-path=%s", path);
	argv[n++] = bin;
	argv[n++] = opt;
	for (; extra && *extra && n < 14; extra++)
		argv[n++] = *extra;
	argv[n] = NULL;
	unlink(path);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	deadline = fl_now_ms() + 5000;
	while (stat(path, &st) < 0 || !S_ISSOCK(st.st_mode)) {
		int ws;

		if (waitpid(pid, &ws, WNOHANG) == pid)
			return -1;
		if (fl_now_ms() > deadline) {
			fl_kill_server(pid);
			return -1;
		}
		usleep(2000);
	}
	return pid;
}

void fl_kill_server(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGTERM);
	if (fl_wait_child(pid, 5000) < 0)
		fprintf(stderr, "server %d did not stop on SIGTERM\n",
			(int)pid);
}

/* ---- raw scripted client ----------------------------------------------- */

int rc_connect(struct rc *r, const char *path)
{
	int fd, e;

	memset(r, 0, sizeof(*r));
	r->ch.fd = -1;
	r->tw.fd = -1;
	fd = mu_sock_connect(path);
	if (fd < 0)
		return fd;
	e = mu_chan_init(&r->ch, fd, (1u << 20) + MU_MSG_OVERHEAD, 16);
	if (e < 0) {
		close(fd);
		return e;
	}
	r->id = 1;
	return 0;
}

int rc_connect_retry(struct rc *r, const char *path, int ms)
{
	long deadline = fl_now_ms() + ms;
	int e;

	for (;;) {
		e = rc_connect(r, path);
		if (e == 0)
			return 0;
		if (fl_now_ms() > deadline)
			return e;
		usleep(2000);
	}
}

void rc_close(struct rc *r)
{
	if (r->ch.fd >= 0)
		mu_chan_fini(&r->ch);
	r->ch.fd = -1;
	if (r->has_tw)
		mu_chan_fini(&r->tw);
	r->has_tw = false;
}

int rc_send(struct rc *r, uint16_t cmd, uint32_t flags, const void *p,
	    size_t len, const int *fds, unsigned nfds, uint16_t *id)
{
	struct mu_hdr h = {.msg_id = r->id++, .cmd = cmd, .flags = flags};
	struct iovec v = {(void *)p, len};

	if (id)
		*id = h.msg_id;
	return mu_chan_send(&r->ch, &h, &v, len ? 1 : 0, fds, nfds);
}

/* Answer one DMA_READ/DMA_WRITE from the client's window. */
static int serve_dma(struct rc *r, struct mu_chan *c, const struct mu_msg *m)
{
	struct mu_hdr h = m->hdr;
	struct mu_dma_access a;
	struct iovec v[2];

	if (r->die_on_dma)
		raise(SIGKILL);
	h.flags = MU_FLAG_TYPE_REPLY;
	if (m->len < sizeof(a))
		return mu_chan_send_error(c, &m->hdr, EINVAL);
	memcpy(&a, m->payload, sizeof(a));
	if (a.addr < r->dma_iova ||
	    !mu_range_ok(a.addr - r->dma_iova, a.count, RC_DMA_BUF))
		return mu_chan_send_error(c, &m->hdr, EFAULT);
	r->dma_served++;
	v[0] = (struct iovec){&a, sizeof(a)};
	if (m->hdr.cmd == MU_CMD_DMA_READ) {
		v[1] = (struct iovec){r->dma_buf + (a.addr - r->dma_iova),
				      a.count};
		return mu_chan_send(c, &h, v, 2, NULL, 0);
	}
	if (m->hdr.cmd == MU_CMD_DMA_WRITE && m->len == sizeof(a) + a.count) {
		memcpy(r->dma_buf + (a.addr - r->dma_iova),
		       m->payload + sizeof(a), a.count);
		return mu_chan_send(c, &h, v, 1, NULL, 0);
	}
	return mu_chan_send_error(c, &m->hdr, EINVAL);
}

ssize_t rc_wait(struct rc *r, uint16_t id, uint16_t cmd, void *out,
		size_t cap, int ms)
{
	long deadline = fl_now_ms() + ms;
	struct mu_msg m;
	int n, e;

	for (;;) {
		struct pollfd p[2] = {{r->ch.fd, POLLIN, 0},
				      {r->has_tw ? r->tw.fd : -1, POLLIN, 0}};
		long left = deadline - fl_now_ms();

		if (r->has_tw) {
			n = mu_chan_recv(&r->tw, &m, MU_RECV_NONBLOCK);
			if (n == 1) {
				if ((m.hdr.flags & MU_FLAG_TYPE_MASK) ==
				    MU_FLAG_TYPE_COMMAND)
					serve_dma(r, &r->tw, &m);
				mu_msg_close_fds(&m);
				continue;
			}
		}
		n = mu_chan_recv(&r->ch, &m, MU_RECV_NONBLOCK);
		if (n == 0)
			return -ECONNRESET;
		if (n == 1) {
			if ((m.hdr.flags & MU_FLAG_TYPE_MASK) ==
			    MU_FLAG_TYPE_COMMAND) {
				serve_dma(r, &r->ch, &m);
				mu_msg_close_fds(&m);
				continue;
			}
			if (m.hdr.msg_id != id) {
				mu_msg_close_fds(&m);
				continue;
			}
			e = mu_check_reply(&m, cmd, 0);
			if (e == 0 && out)
				memcpy(out, m.payload,
				       m.len < cap ? m.len : cap);
			if (cmd == MU_CMD_VERSION && e == 0 && m.nfds == 1 &&
			    !r->has_tw) {
				if (mu_chan_init(&r->tw, m.fds[0],
						 (1u << 20) + MU_MSG_OVERHEAD,
						 0) == 0) {
					r->has_tw = true;
					m.nfds = 0;
				}
			}
			mu_msg_close_fds(&m);
			return e < 0 ? e : (ssize_t)m.len;
		}
		if (n != -EAGAIN)
			return n == -ECONNRESET ? n : -ECONNRESET;
		if (left <= 0)
			return -ETIMEDOUT;
		n = poll(p, 2, (int)left);
		if (n < 0 && errno != EINTR)
			return -errno;
	}
}

ssize_t rc_call(struct rc *r, uint16_t cmd, const void *p, size_t len,
		const int *fds, unsigned nfds, void *out, size_t cap)
{
	uint16_t id;
	int e = rc_send(r, cmd, 0, p, len, fds, nfds, &id);

	if (e < 0)
		return e == -EPIPE ? -ECONNRESET : e;
	return rc_wait(r, id, cmd, out, cap, 5000);
}

int rc_version(struct rc *r, bool twin)
{
	char buf[512];
	struct mu_version v = {MU_PROTO_MAJOR, MU_PROTO_MINOR};
	const char *json =
		twin ? "{\"capabilities\":{\"max_msg_fds\":16,"
		       "\"max_data_xfer_size\":1048576,"
		       "\"twin_socket\":{\"supported\":true}}}"
		     : "{\"capabilities\":{\"max_msg_fds\":16,"
		       "\"max_data_xfer_size\":1048576}}";
	size_t n = strlen(json) + 1;
	ssize_t got;

	memcpy(buf, &v, sizeof(v));
	memcpy(buf + sizeof(v), json, n);
	got = rc_call(r, MU_CMD_VERSION, buf, sizeof(v) + n, NULL, 0, NULL, 0);
	if (got < 0)
		return (int)got;
	mu_chan_set_limits(&r->ch, (1u << 20) + MU_MSG_OVERHEAD, 16);
	return 0;
}

int rc_read32(struct rc *r, uint32_t region, uint64_t off, uint32_t *v)
{
	struct mu_region_access a = {off, region, 4};
	uint8_t out[sizeof(a) + 4];
	ssize_t n;

	n = rc_call(r, MU_CMD_REGION_READ, &a, sizeof(a), NULL, 0, out,
		    sizeof(out));
	if (n < 0)
		return (int)n;
	if (n != (ssize_t)sizeof(out))
		return -EBADMSG;
	memcpy(v, out + sizeof(a), 4);
	return 0;
}

int rc_write32(struct rc *r, uint32_t region, uint64_t off, uint32_t v)
{
	struct mu_region_access a = {off, region, 4};
	uint8_t in[sizeof(a) + 4];
	ssize_t n;

	memcpy(in, &a, sizeof(a));
	memcpy(in + sizeof(a), &v, 4);
	n = rc_call(r, MU_CMD_REGION_WRITE, in, sizeof(in), NULL, 0, NULL, 0);
	return n < 0 ? (int)n : 0;
}

/* ---- the in-process test device -------------------------------------------- */

static ssize_t fd_access(void *opaque, unsigned region, uint64_t off,
			 void *buf, size_t count, bool is_write)
{
	struct fdev *f = opaque;
	uint32_t iova, len;
	int r;

	if (region != 0)
		return -EINVAL;
	if (!is_write) {
		memcpy(buf, f->bar0 + off, count);
		return (ssize_t)count;
	}
	if (off == FD_REG_MAGIC || off == FD_REG_RET)
		return (ssize_t)count; /* read-only */
	if (count == 4 && (off == FD_REG_GO_RD || off == FD_REG_GO_WR)) {
		memcpy(&iova, f->bar0 + FD_REG_IOVA, 4);
		memcpy(&len, f->bar0 + FD_REG_LEN, 4);
		if (len > 256)
			len = 256;
		if (off == FD_REG_GO_RD)
			r = mu_dma_read(f->dev, iova, f->bar0 + FD_REG_BUF,
					len);
		else
			r = mu_dma_write(f->dev, iova, f->bar0 + FD_REG_BUF,
					 len);
		memcpy(f->bar0 + FD_REG_RET, &r, 4);
		if (f->die_in_dma)
			raise(SIGKILL);
		return (ssize_t)count;
	}
	memcpy(f->bar0 + off, buf, count);
	return (ssize_t)count;
}

static int fd_reset(void *opaque, enum mu_reset_reason why)
{
	struct fdev *f = opaque;
	uint32_t magic = FD_MAGIC;

	if (why == MU_RESET_LOST_CONN) {
		f->nreset_lost++;
		return 0;
	}
	f->nreset_req++;
	memset(f->bar0, 0, sizeof(f->bar0));
	memcpy(f->bar0 + FD_REG_MAGIC, &magic, 4);
	return 0;
}

static void fd_log(void *o, int level, const char *msg)
{
	(void)o;
	if (getenv("MU_TEST_VERBOSE"))
		fprintf(stderr, "fdev[%d] %s\n", level, msg);
}

int fdev_create(struct fdev *f, const char *path, int fd, bool *fd_taken)
{
	static const struct mu_pci_id id = {0x7e57, 0xfa17, 0x7e57, 0xfa17,
					    0xff0000, 1};
	struct mu_region_desc d = {.struct_size = sizeof(d)};
	struct mu_dev_callbacks cb = {
		.struct_size = sizeof(cb),
		.reset = fd_reset,
	};
	uint32_t magic = FD_MAGIC;
	int r;

	memset(f, 0, sizeof(*f));
	memcpy(f->bar0 + FD_REG_MAGIC, &magic, 4);
	if (fd_taken)
		*fd_taken = false;
	if (path) {
		snprintf(f->path, sizeof(f->path), "%s", path);
		r = mu_dev_create(&f->dev, path, f);
	} else {
		r = mu_dev_create_fd(&f->dev, fd, f);
		if (r == 0 && fd_taken)
			*fd_taken = true;
	}
	if (r < 0) {
		f->dev = NULL;
		return r;
	}
	mu_dev_set_log(f->dev, fd_log, NULL, MU_LOG_DEBUG);
	r = mu_pci_setup(f->dev, &id, MU_PCI_CONVENTIONAL);
	if (r == 0)
		r = mu_pci_set_intx_pin(f->dev, 1);
	if (r == 0) {
		d.size = FD_BAR0_SIZE;
		d.flags = MU_REGION_RW;
		d.access = fd_access;
		r = mu_dev_setup_region(f->dev, 0, &d);
	}
	if (r == 0) {
		d.access = NULL;
		d.size = FD_BAR2_SIZE;
		d.flags = MU_REGION_RW | MU_REGION_MEM;
		r = mu_dev_setup_region(f->dev, 2, &d);
	}
	if (r == 0) {
		d.size = FD_BAR4_SIZE;
		r = mu_dev_setup_region(f->dev, 4, &d);
	}
	if (r == 0)
		r = mu_pci_add_msix_cap(f->dev, FD_MSIX_VECS, 4, 0, 4, 0x1000);
	if (r > 0)
		r = mu_dev_setup_irq(f->dev, MU_PCI_INTX_IRQ_INDEX, 1);
	if (r == 0)
		r = mu_dev_set_callbacks(f->dev, &cb);
	if (r == 0)
		r = mu_dev_realize(f->dev);
	if (r < 0) {
		mu_dev_destroy(f->dev);
		f->dev = NULL;
	}
	return r;
}

static void *fd_thread(void *arg)
{
	struct fdev *f = arg;

	f->run_ret = mu_dev_run(f->dev);
	return NULL;
}

int fdev_start(struct fdev *f)
{
	int e = pthread_create(&f->thr, NULL, fd_thread, f);

	if (e)
		return -e;
	f->running = true;
	return 0;
}

void fdev_stop(struct fdev *f)
{
	if (!f->running)
		return;
	mu_dev_stop(f->dev);
	pthread_join(f->thr, NULL);
	f->running = false;
}

void fdev_destroy(struct fdev *f)
{
	fdev_stop(f);
	mu_dev_destroy(f->dev);
	f->dev = NULL;
}
