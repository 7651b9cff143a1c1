/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer: the device server's whole message path. The input is a
 * client's side of a session, cut into chunks written to a real socket,
 * some carrying fds (eventfds, small memfds for DMA maps, pipes). A device
 * with every kind of region, MSI-X and INTx serves it; the harness then
 * checks that a clean session still works on the same device.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "muser/device.h"
#include "wire-core.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t bar0[256];

static ssize_t bar0_access(void *opaque, unsigned region, uint64_t offset,
			   void *buf, size_t count, bool is_write)
{
	(void)opaque;
	(void)region;
	if (offset + count > sizeof(bar0))
		__builtin_trap(); /* the library promised bounds */
	if (is_write)
		memcpy(bar0 + offset, buf, count);
	else
		memcpy(buf, bar0 + offset, count);
	return (ssize_t)count;
}

static void quiet(void *opaque, int level, const char *msg)
{
	(void)opaque;
	(void)level;
	(void)msg;
}

/* Every other quiesce is asynchronous (finished at once, from inside the
 * callback), so parked commands and parked config-write resets are fuzzed
 * as well as the synchronous path. */
static mu_dev_t *fuzz_dev;
static unsigned nquiesce;

static int fuzz_quiesce(void *opaque)
{
	(void)opaque;
	if (nquiesce++ % 2 == 0)
		return 0;
	mu_dev_quiesce_done(fuzz_dev, 0);
	return -EBUSY;
}

static mu_dev_t *make_device(int fd)
{
	static const struct mu_dev_callbacks cb = {.struct_size = sizeof(cb),
						   .quiesce = fuzz_quiesce};
	static const struct mu_sparse_mmap_area sparse = {0x1000, 0x1000};
	struct mu_region_desc r0 = {.struct_size = sizeof(r0),
				    .size = sizeof(bar0),
				    .flags = MU_REGION_RW,
				    .access = bar0_access};
	struct mu_region_desc r2 = {.struct_size = sizeof(r2),
				    .size = 0x4000,
				    .flags = MU_REGION_RW | MU_REGION_MEM |
					     MU_REGION_BAR_64,
				    .sparse = &sparse,
				    .nr_sparse = 1};
	struct mu_region_desc r4 = {.struct_size = sizeof(r4),
				    .size = 0x1000,
				    .flags = MU_REGION_RW | MU_REGION_MEM};
	struct mu_pci_id id = {0x1de5, 0xf022, 0x1de5, 1, 0xff0000, 1};
	mu_dev_t *dev;

	if (mu_dev_create_fd(&dev, fd, NULL) < 0)
		return NULL;
	mu_dev_set_log(dev, quiet, NULL, 0);
	fuzz_dev = dev;
	if (mu_dev_set_callbacks(dev, &cb) < 0 ||
	    mu_pci_setup(dev, &id, MU_PCI_EXPRESS) < 0 ||
	    mu_dev_setup_region(dev, 0, &r0) < 0 ||
	    mu_dev_setup_region(dev, 2, &r2) < 0 ||
	    mu_dev_setup_region(dev, 4, &r4) < 0 ||
	    mu_pci_add_pm_cap(dev) < 0 ||
	    mu_pci_add_msi_cap(dev, 4, true, true) < 0 ||
	    mu_pci_add_msix_cap(dev, 8, 4, 0, 4, 0x800) < 0 ||
	    mu_pci_add_express_cap(dev, MU_PCIE_ENDPOINT) < 0 ||
	    mu_pci_add_dsn_cap(dev, 0x1122334455667788ull) < 0 ||
	    mu_pci_set_intx_pin(dev, 1) < 0 ||
	    mu_dev_setup_irq(dev, MU_PCI_INTX_IRQ_INDEX, 1) < 0 ||
	    mu_dev_setup_irq(dev, MU_PCI_ERR_IRQ_INDEX, 1) < 0 ||
	    mu_dev_setup_irq(dev, MU_PCI_REQ_IRQ_INDEX, 1) < 0 ||
	    mu_dev_realize(dev) < 0) {
		mu_dev_destroy(dev);
		return NULL;
	}
	return dev;
}

static int make_fd(unsigned kind)
{
	int fd, p[2];

	switch (kind % 4) {
	case 1:
		return eventfd(0, EFD_CLOEXEC);
	case 2:
		fd = memfd_create("dma", MFD_CLOEXEC);
		if (fd >= 0 && ftruncate(fd, 0x10000) < 0) {
			close(fd);
			return -1;
		}
		return fd;
	case 3:
		if (pipe2(p, O_CLOEXEC) < 0)
			return -1;
		close(p[0]);
		return p[1];
	default:
		return -1;
	}
}

/* Drive the device until it has nothing more to do. */
static void pump(mu_dev_t *dev)
{
	int i;

	for (i = 0; i < 64; i++)
		if (mu_dev_process(dev) <= 0)
			break;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	mu_dev_t *dev;
	size_t off = 0;
	int sv[2];
	char junk[4096];

	if (size > 65536)
		return 0;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return 0;
	dev = make_device(sv[0]);
	if (!dev) {
		close(sv[1]);
		return 0;
	}
	mu_fd_set_nonblock(sv[1], true);
	/* Chunk layout: [len:1][fd kinds:1][bytes...] repeated. */
	while (off + 2 <= size) {
		size_t len = data[off] ? data[off] : 256;
		unsigned kinds = data[off + 1], nfds = kinds & 3, i;
		int fds[3];
		struct iovec iov;

		off += 2;
		if (len > size - off)
			len = size - off;
		for (i = 0; i < nfds; i++)
			fds[i] = make_fd(kinds >> (2 + 2 * i));
		iov.iov_base = (void *)(data + off);
		iov.iov_len = len;
		if (len)
			mu_sendmsg_all(sv[1], &iov, 1, fds, nfds);
		for (i = 0; i < nfds; i++)
			if (fds[i] >= 0)
				close(fds[i]);
		off += len;
		pump(dev);
		/* Swallow replies so the device never blocks on a full socket.
		 */
		while (read(sv[1], junk, sizeof(junk)) > 0)
			;
	}
	close(sv[1]);
	pump(dev);
	mu_dev_destroy(dev);
	return 0;
}
