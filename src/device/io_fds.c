/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * GET_REGION_IO_FDS: ioeventfds the device registered for doorbells, so a
 * client can wire them straight to the device (e.g. KVM_IOEVENTFD). Each
 * 40-byte entry gets its own fd index.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dev-internal.h"

MU_EXPORT int mu_dev_add_ioeventfd(mu_dev_t *dev, unsigned region,
				   uint64_t offset, uint32_t size, int fd,
				   uint32_t flags, uint64_t datamatch)
{
	struct mu_ioefd *n;

	if (!dev || fd < 0 || region >= dev->nr_regions ||
	    region == MU_PCI_CONFIG_REGION_INDEX ||
	    !dev->regions[region].flags ||
	    (flags & ~MU_IOEVENTFD_FLAG_DATAMATCH) ||
	    (size != 0 && size != 1 && size != 2 && size != 4 && size != 8) ||
	    !mu_range_ok(offset, size, dev->regions[region].size) ||
	    dev->nr_ioefds >= MU_MAX_FDS_LIMIT)
		return -EINVAL;
	n = realloc(dev->ioefds, (dev->nr_ioefds + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	dev->ioefds = n;
	n[dev->nr_ioefds++] =
		(struct mu_ioefd){region, offset, size, flags, fd, datamatch};
	return 0;
}

int mu_h_io_fds(struct mu_dev *dev, struct mu_msg *m, struct mu_reply *r)
{
	struct mu_region_io_fds_request req;
	struct mu_region_io_fds_reply *rep;
	struct mu_sub_region_ioeventfd *e;
	unsigned i, count = 0, k = 0;
	size_t need;
	int *fds;

	memcpy(&req, m->payload, sizeof(req));
	if (req.index >= dev->nr_regions || !dev->regions[req.index].flags)
		return -EINVAL;
	for (i = 0; i < dev->nr_ioefds; i++)
		count += dev->ioefds[i].region == req.index;
	need = sizeof(*rep) + count * sizeof(*e);
	if (req.argsz < need || count == 0) {
		rep = mu_reply_inline(r, sizeof(*rep));
		*rep = (struct mu_region_io_fds_reply){(uint32_t)need, 0,
						       req.index, count};
		return 0;
	}
	if (count > dev->peer.max_msg_fds)
		return -E2BIG; /* the client cannot take that many fds */
	rep = mu_reply_alloc(r, need + count * sizeof(int));
	if (!rep)
		return -ENOMEM;
	*rep = (struct mu_region_io_fds_reply){(uint32_t)need, 0, req.index,
					       count};
	e = (struct mu_sub_region_ioeventfd *)(rep + 1);
	fds = (int *)((uint8_t *)rep + need);
	for (i = 0; i < dev->nr_ioefds; i++) {
		const struct mu_ioefd *x = &dev->ioefds[i];

		if (x->region != req.index)
			continue;
		e[k] = (struct mu_sub_region_ioeventfd){
			x->offset,   x->size,
			k,	     MU_IO_FD_TYPE_IOEVENTFD,
			x->flags,    0,
			x->datamatch};
		fds[k++] = x->fd;
	}
	r->iov[0].iov_len = need;
	r->fds = fds;
	r->nfds = count;
	return 0;
}
