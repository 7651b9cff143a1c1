/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * checks.h - helpers the check groups share: negotiation, validated
 * queries and region access, reply-header checks, stream sync. A helper
 * that finds a violation sets the evidence and returns CF_EBROKEN; an
 * error reply comes back as its -errno (evidence set too, for checks that
 * did not expect it).
 */
#ifndef MUSER_CONFORM_CHECKS_H
#define MUSER_CONFORM_CHECKS_H

#include "conform.h"
#include "conn.h"

/* A protocol violation, evidence already set (not an errno). */
#define CF_EBROKEN (-100000)

#define CF_CFG MU_PCI_CONFIG_REGION_INDEX
#define CF_NREG_MAX 64u /* regions a check walks at most */
#define CF_NIRQ_MAX 16u

/* The checker's usual proposal: version 0.2, what libmuser-client sends
 * without the twin socket. */
#define CF_STD_JSON                                                            \
	"{\"capabilities\":{\"max_msg_fds\":16,\"max_data_xfer_size\":"        \
	"1048576,\"max_dma_maps\":65535,\"pgsizes\":4096,"                     \
	"\"write_multiple\":true}}"

struct cf_verinfo {
	uint16_t major, minor;
	bool has_json, wrapper, top_level_caps;
	bool has_max_msg_fds, has_mdx, has_max_dma_maps, has_pgsizes;
	uint64_t max_msg_fds, max_data_xfer, max_dma_maps, pgsizes;
	bool twin, has_twin_index, write_multiple;
	uint64_t twin_index;
	char problem[160]; /* why the reply is malformed; "" if it is not */
};

/* VERSION proposal (json NULL: no JSON at all); 0 when a reply with the
 * right id came (success or error), else -errno. */
int cf_version_call(struct cf_conn *c, uint16_t major, uint16_t minor,
		    const char *json, struct cf_msg *m);
/* Parse a successful reply; 0, or -EBADMSG with vi->problem set. */
int cf_version_parse(const struct cf_msg *m, struct cf_verinfo *vi);
/* Standard negotiation on c (retries a busy server briefly); fills
 * x->sess. 0 or -errno, why set. */
int cf_negotiate(struct cf_ctx *x, struct cf_conn *c, char *why, size_t whylen);
/* Open a fresh connection and negotiate (for checks that reconnect). */
int cf_open_session(struct cf_ctx *x, struct cf_conn **out);

/* Reply header for cmd: type reply, cmd echoed, no undefined flag bits,
 * no NO_REPLY, an error reply header-only, fds only if allowed. */
int cf_check_hdr(struct cf_ctx *x, const struct cf_msg *m, uint16_t cmd,
		 unsigned max_fds, const char *what);
/* cf_call + cf_check_hdr; a transport failure or a reply to another id
 * is reported as CF_EBROKEN too. 0 ok, -errno for an error reply. */
int cf_req(struct cf_ctx *x, uint16_t cmd, const void *p, size_t len,
	   const int *fds, unsigned nfds, struct cf_msg *m, const char *what);
/* A GET_INFO round trip whose reply must match: is the stream in sync? */
int cf_sync(struct cf_ctx *x, const char *after);

int cf_get_info(struct cf_ctx *x);
/* GET_REGION_INFO with room for capabilities; fds closed. */
int cf_region_info(struct cf_ctx *x, unsigned idx, struct mu_region_info *ri);
int cf_irq_info(struct cf_ctx *x, unsigned idx, struct mu_irq_info *ii);
/* Validated REGION_READ / REGION_WRITE of n bytes. */
int cf_read(struct cf_ctx *x, unsigned region, uint64_t off, void *buf,
	    uint32_t n);
int cf_write(struct cf_ctx *x, unsigned region, uint64_t off, const void *buf,
	     uint32_t n);
int cf_cfg_read32(struct cf_ctx *x, unsigned off, uint32_t *v);
int cf_cfg_write32(struct cf_ctx *x, unsigned off, uint32_t v);
/* Send a request that must be refused: 1 refused (error reply), 0
 * accepted (reply kept in m if not NULL), CF_EBROKEN. */
int cf_refused(struct cf_ctx *x, uint16_t cmd, const void *p, size_t len,
	       const int *fds, unsigned nfds, struct cf_msg *m,
	       const char *what);

/* DMA_MAP / DMA_UNMAP through x->c; 0 or -errno (error reply). */
int cf_dma_map(struct cf_ctx *x, uint64_t iova, uint64_t size, uint32_t prot,
	       int fd, uint8_t *buf);
int cf_dma_unmap(struct cf_ctx *x, uint64_t iova, uint64_t size,
		 uint32_t flags);
/* A memfd of size bytes, or -errno. */
int cf_memfd(uint64_t size);
/* SET_IRQS with optional bools/fds; 0 or -errno. */
int cf_set_irqs(struct cf_ctx *x, uint32_t flags, uint32_t index,
		uint32_t start, uint32_t count, const int *fds, unsigned nfds);
/* Wait for an eventfd to fire: 1 fired, 0 not within ms. */
int cf_eventfd_wait(int efd, int ms);

const char *cf_region_name(unsigned idx, char *buf, size_t len);

#endif
