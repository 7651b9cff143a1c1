/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer: PCI config space writes. The input is a list of writes
 * (offset, width, data) applied through REGION_WRITE to the config region
 * of a device with every capability; after each write the harness reads
 * the header back and checks the invariants a guest relies on: IDs and
 * class never change, the capability list stays walkable and in bounds,
 * BARs keep their type bits.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "muser/device.h"
#include "wire-core.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void quiet(void *opaque, int level, const char *msg)
{
	(void)opaque;
	(void)level;
	(void)msg;
}

static ssize_t nop_access(void *opaque, unsigned region, uint64_t offset,
			  void *buf, size_t count, bool is_write)
{
	(void)opaque;
	(void)region;
	(void)offset;
	if (!is_write)
		memset(buf, 0, count);
	return (ssize_t)count;
}

static mu_dev_t *make_device(int fd)
{
	struct mu_region_desc io = {.struct_size = sizeof(io),
				    .size = 0x20,
				    .flags = MU_REGION_RW | MU_REGION_BAR_IO,
				    .access = nop_access};
	struct mu_region_desc m64 = {.struct_size = sizeof(m64),
				     .size = 0x4000,
				     .flags = MU_REGION_RW | MU_REGION_BAR_64 |
					      MU_REGION_BAR_PREFETCH,
				     .access = nop_access};
	struct mu_region_desc rom = {.struct_size = sizeof(rom),
				     .size = 0x8000,
				     .flags = MU_REGION_READ,
				     .access = nop_access};
	struct mu_pci_id id = {0x1de5, 0xf023, 0x1de5, 2, 0x058000, 3};
	uint8_t vsec[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	mu_dev_t *dev;

	if (mu_dev_create_fd(&dev, fd, NULL) < 0)
		return NULL;
	mu_dev_set_log(dev, quiet, NULL, 0);
	if (mu_pci_setup(dev, &id, MU_PCI_EXPRESS) < 0 ||
	    mu_dev_setup_region(dev, 0, &io) < 0 ||
	    mu_dev_setup_region(dev, 2, &m64) < 0 ||
	    mu_dev_setup_region(dev, MU_PCI_ROM_REGION_INDEX, &rom) < 0 ||
	    mu_pci_add_pm_cap(dev) < 0 ||
	    mu_pci_add_msi_cap(dev, 8, true, true) < 0 ||
	    mu_pci_add_msix_cap(dev, 16, 2, 0, 2, 0x1000) < 0 ||
	    mu_pci_add_express_cap(dev, MU_PCIE_ENDPOINT) < 0 ||
	    mu_pci_add_vendor_cap(dev, vsec, sizeof(vsec)) < 0 ||
	    mu_pci_add_dsn_cap(dev, 42) < 0 ||
	    mu_pci_add_ext_vendor_cap(dev, 7, 1, vsec, sizeof(vsec)) < 0 ||
	    mu_pci_set_intx_pin(dev, 1) < 0 ||
	    mu_dev_setup_irq(dev, MU_PCI_INTX_IRQ_INDEX, 1) < 0 ||
	    mu_dev_realize(dev) < 0) {
		mu_dev_destroy(dev);
		return NULL;
	}
	return dev;
}

struct peer {
	struct mu_chan ch;
	mu_dev_t *dev;
	uint16_t id;
};

/* One synchronous request: send, let the device run, read the reply. */
static int call(struct peer *p, uint16_t cmd, const void *pl, size_t len,
		struct mu_msg *m)
{
	struct mu_hdr h = {.msg_id = ++p->id, .cmd = cmd};
	struct iovec iov = {(void *)pl, len};
	int r, i;

	if (mu_chan_send(&p->ch, &h, &iov, 1, NULL, 0) < 0)
		return -EIO;
	for (i = 0; i < 8; i++) {
		mu_dev_process(p->dev);
		r = mu_chan_recv(&p->ch, m, MU_RECV_NONBLOCK);
		if (r != -EAGAIN)
			break;
	}
	if (r != 1)
		return -EIO;
	mu_msg_close_fds(m);
	return mu_check_reply(m, cmd, 0);
}

static int cfg_read(struct peer *p, uint32_t off, void *out, uint32_t n)
{
	struct mu_region_access a = {off, MU_PCI_CONFIG_REGION_INDEX, n};
	struct mu_msg m;
	int r = call(p, MU_CMD_REGION_READ, &a, sizeof(a), &m);

	if (r < 0)
		return r;
	if (m.len != sizeof(a) + n)
		__builtin_trap();
	memcpy(out, m.payload + sizeof(a), n);
	return 0;
}

static void check_invariants(struct peer *p)
{
	uint8_t cfg[256];
	unsigned ptr, hops = 0;

	if (cfg_read(p, 0, cfg, sizeof(cfg)) < 0)
		__builtin_trap();
	if (cfg[0] != 0xe5 || cfg[1] != 0x1d || cfg[2] != 0x23 ||
	    cfg[3] != 0xf0 || cfg[0x0b] != 0x05 || cfg[0x08] != 3)
		__builtin_trap(); /* identity is read-only */
	if ((cfg[0x10] & 1) != 1 || (cfg[0x18] & 0xf) != 0xc)
		__builtin_trap(); /* BAR type bits are read-only */
	for (ptr = cfg[0x34]; ptr; ptr = cfg[ptr + 1]) {
		if (ptr < 0x40 || ptr > 0xfc || ++hops > 48)
			__builtin_trap(); /* the chain must stay sane */
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t ver[4 + 64] = {0, 0, 2, 0};
	struct peer p = {0};
	struct mu_msg m;
	size_t off = 0;
	int sv[2];

	if (size > 8192)
		return 0;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return 0;
	p.dev = make_device(sv[0]);
	if (!p.dev || mu_chan_init(&p.ch, sv[1], 1 << 20, 16) < 0) {
		if (p.dev)
			mu_dev_destroy(p.dev);
		close(sv[1]);
		return 0;
	}
	strcpy((char *)ver + 4, "{}");
	if (call(&p, MU_CMD_VERSION, ver, 7, &m) < 0)
		__builtin_trap();
	/* Each write: [offset lo][offset hi][width 1..8][data...] */
	while (off + 3 <= size) {
		uint32_t where = (data[off] | data[off + 1] << 8) & 0xfff;
		uint32_t n = (data[off + 2] & 7) + 1;
		uint8_t msg[16 + 8];
		struct mu_region_access a = {where, MU_PCI_CONFIG_REGION_INDEX,
					     n};

		off += 3;
		if (n > size - off)
			n = (uint32_t)(size - off);
		if (n == 0)
			break;
		a.count = n;
		memcpy(msg, &a, sizeof(a));
		memcpy(msg + sizeof(a), data + off, n);
		off += n;
		call(&p, MU_CMD_REGION_WRITE, msg, sizeof(a) + n, &m);
		check_invariants(&p);
	}
	mu_chan_fini(&p.ch);
	mu_dev_process(p.dev);
	mu_dev_destroy(p.dev);
	return 0;
}
