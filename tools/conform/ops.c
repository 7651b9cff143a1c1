/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ops.c - valid use of each command through the raw transport, with every
 * reply validated against its layout (size, echoed fields). Checks build
 * on these; a reply that breaks the layout is CF_EBROKEN with evidence.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "checks.h"

const char *cf_region_name(unsigned idx, char *buf, size_t len)
{
	static const char *const n[] = {"BAR0", "BAR1",	  "BAR2",
					"BAR3", "BAR4",	  "BAR5",
					"ROM",	"CONFIG", "VGA"};

	if (idx < sizeof(n) / sizeof(*n))
		return n[idx];
	snprintf(buf, len, "region %u", idx);
	return buf;
}

int cf_get_info(struct cf_ctx *x)
{
	struct mu_device_info in = {.argsz = sizeof(in)}, out = {0};
	struct cf_msg m;
	int e;

	if (x->have_info)
		return 0;
	e = cf_req(x, MU_CMD_DEVICE_GET_INFO, &in, sizeof(in), NULL, 0, &m,
		   "GET_INFO");
	if (e == 0 && m.len != sizeof(out))
		e = cf_set(x, CF_EBROKEN,
			   "GET_INFO: reply payload %zu bytes, expected 16",
			   m.len);
	if (e == 0) {
		memcpy(&out, m.payload, sizeof(out));
		if (out.argsz < sizeof(out))
			e = cf_set(x, CF_EBROKEN, "GET_INFO: reply argsz %u",
				   out.argsz);
	}
	cf_msg_free(&m);
	if (e < 0)
		return e;
	x->info = out;
	x->have_info = true;
	return 0;
}

int cf_region_info(struct cf_ctx *x, unsigned idx, struct mu_region_info *ri)
{
	struct mu_region_info in = {.argsz = sizeof(in) + 4096, .index = idx};
	struct cf_msg m;
	char what[64];
	int e;

	snprintf(what, sizeof(what), "GET_REGION_INFO %u", idx);
	e = cf_req(x, MU_CMD_DEVICE_GET_REGION_INFO, &in, sizeof(in), NULL, 0,
		   &m, what);
	if (e == 0 && (m.len < sizeof(*ri) || m.len > in.argsz))
		e = cf_set(x, CF_EBROKEN, "%s: reply payload %zu bytes", what,
			   m.len);
	if (e == 0) {
		memcpy(ri, m.payload, sizeof(*ri));
		if (ri->index != idx)
			e = cf_set(x, CF_EBROKEN, "%s: reply index %u", what,
				   ri->index);
	}
	cf_msg_free(&m);
	return e;
}

int cf_irq_info(struct cf_ctx *x, unsigned idx, struct mu_irq_info *ii)
{
	struct mu_irq_info in = {.argsz = sizeof(in), .index = idx};
	struct cf_msg m;
	char what[64];
	int e;

	snprintf(what, sizeof(what), "GET_IRQ_INFO %u", idx);
	e = cf_req(x, MU_CMD_DEVICE_GET_IRQ_INFO, &in, sizeof(in), NULL, 0, &m,
		   what);
	if (e == 0 && m.len != sizeof(*ii))
		e = cf_set(x, CF_EBROKEN,
			   "%s: reply payload %zu bytes, "
			   "expected 16",
			   what, m.len);
	if (e == 0) {
		memcpy(ii, m.payload, sizeof(*ii));
		if (ii->index != idx)
			e = cf_set(x, CF_EBROKEN, "%s: reply index %u", what,
				   ii->index);
	}
	cf_msg_free(&m);
	return e;
}

static int check_echo(struct cf_ctx *x, const struct cf_msg *m,
		      const struct mu_region_access *a, size_t want,
		      const char *what)
{
	struct mu_region_access r;

	if (m->len != want)
		return cf_set(x, CF_EBROKEN,
			      "%s: reply payload %zu bytes, expected %zu", what,
			      m->len, want);
	memcpy(&r, m->payload, sizeof(r));
	if (r.offset != a->offset || r.region != a->region ||
	    r.count != a->count)
		return cf_set(x, CF_EBROKEN,
			      "%s: reply echoes offset 0x%llx region %u count "
			      "%u",
			      what, (unsigned long long)r.offset, r.region,
			      r.count);
	return 0;
}

int cf_read(struct cf_ctx *x, unsigned region, uint64_t off, void *buf,
	    uint32_t n)
{
	struct mu_region_access a = {off, region, n};
	struct cf_msg m;
	char what[80], nb[24];
	int e;

	snprintf(what, sizeof(what), "REGION_READ %s+0x%llx/%u",
		 cf_region_name(region, nb, sizeof(nb)),
		 (unsigned long long)off, n);
	e = cf_req(x, MU_CMD_REGION_READ, &a, sizeof(a), NULL, 0, &m, what);
	if (e == 0)
		e = check_echo(x, &m, &a, sizeof(a) + (size_t)n, what);
	if (e == 0 && buf)
		memcpy(buf, m.payload + sizeof(a), n);
	cf_msg_free(&m);
	return e;
}

int cf_write(struct cf_ctx *x, unsigned region, uint64_t off, const void *buf,
	     uint32_t n)
{
	struct mu_region_access a = {off, region, n};
	uint8_t *p = malloc(sizeof(a) + n);
	struct cf_msg m;
	char what[80], nb[24];
	int e;

	if (!p)
		return -ENOMEM;
	memcpy(p, &a, sizeof(a));
	memcpy(p + sizeof(a), buf, n);
	snprintf(what, sizeof(what), "REGION_WRITE %s+0x%llx/%u",
		 cf_region_name(region, nb, sizeof(nb)),
		 (unsigned long long)off, n);
	e = cf_req(x, MU_CMD_REGION_WRITE, p, sizeof(a) + n, NULL, 0, &m, what);
	free(p);
	if (e == 0)
		e = check_echo(x, &m, &a, sizeof(a), what);
	cf_msg_free(&m);
	return e;
}

int cf_cfg_read32(struct cf_ctx *x, unsigned off, uint32_t *v)
{
	return cf_read(x, CF_CFG, off, v, 4);
}

int cf_cfg_write32(struct cf_ctx *x, unsigned off, uint32_t v)
{
	return cf_write(x, CF_CFG, off, &v, 4);
}

int cf_dma_map(struct cf_ctx *x, uint64_t iova, uint64_t size, uint32_t prot,
	       int fd, uint8_t *buf)
{
	struct mu_dma_map d = {sizeof(d), prot, 0, iova, size};
	struct cf_msg m;
	char what[80];
	int e;

	snprintf(what, sizeof(what), "DMA_MAP [0x%llx, +0x%llx)%s",
		 (unsigned long long)iova, (unsigned long long)size,
		 fd >= 0 ? " with fd" : "");
	e = cf_req(x, MU_CMD_DMA_MAP, &d, sizeof(d), fd >= 0 ? &fd : NULL,
		   fd >= 0 ? 1 : 0, &m, what);
	if (e == 0 && m.len)
		e = cf_set(x, CF_EBROKEN,
			   "%s: reply carries %zu bytes (none "
			   "defined)",
			   what, m.len);
	cf_msg_free(&m);
	if (e == 0 && cf_window_add(x->c, iova, size, prot, buf, fd) < 0)
		return cf_set(x, CF_EBROKEN, "%s: checker out of windows",
			      what);
	return e;
}

int cf_dma_unmap(struct cf_ctx *x, uint64_t iova, uint64_t size, uint32_t flags)
{
	struct mu_dma_unmap d = {sizeof(d), flags, iova, size};
	struct cf_msg m;
	char what[80];
	int e;

	snprintf(what, sizeof(what), "DMA_UNMAP [0x%llx, +0x%llx) flags 0x%x",
		 (unsigned long long)iova, (unsigned long long)size, flags);
	e = cf_req(x, MU_CMD_DMA_UNMAP, &d, sizeof(d), NULL, 0, &m, what);
	if (e == 0 && m.len != 0 && m.len != sizeof(d))
		e = cf_set(x, CF_EBROKEN, "%s: reply payload %zu bytes", what,
			   m.len);
	cf_msg_free(&m);
	if (e == 0) {
		if (flags & MU_DMA_UNMAP_FLAG_ALL)
			cf_window_clear(x->c);
		else
			cf_window_del(x->c, iova, size);
	}
	return e;
}

int cf_memfd(uint64_t size)
{
	int fd = memfd_create("muser-conform", MFD_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) < 0) {
		int e = -errno;

		close(fd);
		return e;
	}
	return fd;
}

int cf_set_irqs(struct cf_ctx *x, uint32_t flags, uint32_t index,
		uint32_t start, uint32_t count, const int *fds, unsigned nfds)
{
	struct mu_irq_set s = {sizeof(s), flags, index, start, count};
	size_t nb = (flags & MU_IRQ_SET_DATA_BOOL) ? count : 0;
	uint8_t *p;
	struct cf_msg m;
	char what[80];
	int e;

	if (nb > 4096)
		return -E2BIG;
	p = malloc(sizeof(s) + nb);
	if (!p)
		return -ENOMEM;
	s.argsz = (uint32_t)(sizeof(s) + nb);
	memcpy(p, &s, sizeof(s));
	memset(p + sizeof(s), 1, nb);
	snprintf(what, sizeof(what), "SET_IRQS index %u [%u, +%u) flags 0x%x",
		 index, start, count, flags);
	e = cf_req(x, MU_CMD_DEVICE_SET_IRQS, p, sizeof(s) + nb, fds, nfds, &m,
		   what);
	free(p);
	if (e == 0 && m.len)
		e = cf_set(x, CF_EBROKEN, "%s: reply carries %zu bytes", what,
			   m.len);
	cf_msg_free(&m);
	return e;
}

int cf_eventfd_wait(int efd, int ms)
{
	struct pollfd p = {.fd = efd, .events = POLLIN};
	uint64_t v;
	int n;

	do
		n = poll(&p, 1, ms);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return 0;
	if (read(efd, &v, sizeof(v)) != sizeof(v))
		return 0;
	return 1;
}
