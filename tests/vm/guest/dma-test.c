/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * dma-test: drive muser-dma-test (7e57:0001) from the guest the way a
 * user-space driver would: BARs through sysfs resource files, DMA buffers
 * in guest RAM located through /proc/self/pagemap, bus mastering and
 * interrupt enables through config space, INTx through uio_pci_generic,
 * MSI and MSI-X observed at the CPU through the kernel log (see
 * guest-util.h, "MSI observation").
 *
 *   dma-test [LABEL]      LABEL only names the run in the output
 *
 * Register map: samples/dma-test/README.md and dma-test.h.
 */
#include "dma-test.h"
#include "guest-util.h"

#define MSIX_TEST_VECTOR (MSI_TEST_VECTOR + 1)

static struct bar bar0;
static int cfg, uio = -1;

static uint32_t crc32_ieee(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;

    while (n--) {
        c ^= *p++;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xedb88320u & -(c & 1));
    }
    return ~c;
}

static uint32_t reg(unsigned off)
{
    return bar_read(&bar0, off, 4);
}

static void set(unsigned off, uint32_t v)
{
    bar_write(&bar0, off, 4, v);
}

/* Start an operation and poll until BUSY clears; returns STATUS. */
static uint32_t run_op(uint32_t op, uint64_t src, uint64_t dst, uint32_t len,
                       uint32_t fill)
{
    double end = now_s() + 20;
    uint32_t st;

    set(DMAT_REG_SRC_LO, (uint32_t)src);
    set(DMAT_REG_SRC_HI, (uint32_t)(src >> 32));
    set(DMAT_REG_DST_LO, (uint32_t)dst);
    set(DMAT_REG_DST_HI, (uint32_t)(dst >> 32));
    set(DMAT_REG_LEN, len);
    set(DMAT_REG_OP, op);
    set(DMAT_REG_FILL, fill);
    set(DMAT_REG_CMD, DMAT_CMD_START);
    while ((st = reg(DMAT_REG_STATUS)) & DMAT_STATUS_BUSY)
        if (now_s() > end)
            break;
    return st;
}

static void clear_status(void)
{
    set(DMAT_REG_STATUS, DMAT_STATUS_DONE | DMAT_STATUS_ERROR);
}

static void dma_ops(void)
{
    size_t len = 16 * 4096;
    uint64_t psrc, pdst;
    uint8_t *src = dma_alloc(len, &psrc), *dst = dma_alloc(len, &pdst);
    uint32_t st, fill = 0xc0ffee11u;
    bool ok;

    if (!src || !dst)
        die("no physically contiguous DMA buffers");
    say("DMA buffers: %zu KiB at guest-physical 0x%" PRIx64 " and 0x%" PRIx64,
        len / 1024, psrc, pdst);
    for (size_t i = 0; i < len; i++)
        src[i] = (uint8_t)(i * 131 + (i >> 8));

    /* device -> guest RAM (DMA write) */
    memset(dst, 0, len);
    st = run_op(DMAT_OP_FILL, 0, pdst + 8, 4096 - 3, fill);
    ok = st & DMAT_STATUS_DONE;
    for (size_t i = 0; ok && i < 4096 - 3; i++)
        ok = dst[8 + i] == (uint8_t)(fill >> (8 * (i % 4)));
    ok = ok && !dst[7] && !dst[8 + 4096 - 3];
    check(ok, "fill: 4093 bytes at an odd offset, nothing outside (status "
              "0x%x)", st);
    clear_status();

    /* guest RAM -> device -> guest RAM (DMA read and write) */
    memset(dst, 0, len);
    st = run_op(DMAT_OP_COPY, psrc, pdst, (uint32_t)len, 0);
    check((st & DMAT_STATUS_DONE) && !memcmp(src, dst, len),
          "copy: %zu KiB across pages (status 0x%x)", len / 1024, st);
    clear_status();

    /* guest RAM -> device (DMA read only) */
    st = run_op(DMAT_OP_CHECKSUM, psrc + 5, 0, 50000, 0);
    check((st & DMAT_STATUS_DONE) &&
              reg(DMAT_REG_RESULT) == crc32_ieee(src + 5, 50000),
          "checksum: device CRC-32 0x%08x, guest 0x%08x",
          reg(DMAT_REG_RESULT), crc32_ieee(src + 5, 50000));
    clear_status();

    /* Outside guest RAM (256 MiB guest; 1 GiB is unmapped): a clean error. */
    st = run_op(DMAT_OP_FILL, 0, 0x40000000, 64, 0);
    check((st & DMAT_STATUS_ERROR) &&
              ((st & DMAT_STATUS_CODE_MASK) >> DMAT_STATUS_CODE_SHIFT) ==
                  DMAT_ERR_DMA_WRITE,
          "DMA to an unmapped address fails with DMA_WRITE error (status "
          "0x%x, errno %u)",
          st, reg(DMAT_REG_RESULT));
    clear_status();
}

static void intx(void)
{
    uint64_t p;
    uint8_t *buf = dma_alloc(4096, &p);
    int64_t n;
    uint32_t st;

    set(DMAT_REG_IRQ_CTRL, DMAT_IRQ_EN);
    uio_unmask(cfg);
    st = run_op(DMAT_OP_FILL, 0, p, 4096, 0x01020304);
    n = uio_wait(uio, 10000);
    check(n > 0 && (st & DMAT_STATUS_DONE) && buf[4095] == 1,
          "INTx: uio_pci_generic saw the completion interrupt (count "
          "%" PRId64 ")",
          n);
    check(cfg_read(cfg, 6, 2) & 0x8, "INTx: config status has "
                                      "INTERRUPT while DONE is set");
    clear_status(); /* lowers the line */
    check(!(cfg_read(cfg, 6, 2) & 0x8), "INTx: W1C of DONE lowers the line");
    uio_unmask(cfg);
    n = uio_wait(uio, 500);
    check(n == 0, "INTx: no second interrupt after the line went down");
    set(DMAT_REG_IRQ_CTRL, 0);
}

static void msi(void)
{
    uint64_t p;
    uint8_t *buf = dma_alloc(4096, &p);
    int k = msi_kmsg_open(), hits;

    check(msi_enable(cfg, MSI_TEST_VECTOR) == 0, "MSI: enabled, vector %u",
          MSI_TEST_VECTOR);
    set(DMAT_REG_IRQ_CTRL, DMAT_IRQ_EN);
    run_op(DMAT_OP_FILL, 0, p, 4096, 0x05060708);
    hits = msi_kmsg_wait(k, MSI_TEST_VECTOR, 10);
    check(hits > 0 && buf[0] == 8,
          "MSI: the completion message reached CPU 0 as vector %u",
          MSI_TEST_VECTOR);
    clear_status();
    set(DMAT_REG_IRQ_CTRL, 0);
    msi_disable(cfg);
    close(k);
}

static void msix(const char *bdf)
{
    unsigned cap = cfg_find_cap(cfg, PCI_CAP_ID_MSIX);
    uint32_t table, vec = 2;
    struct bar tb;
    uint64_t p;
    uint8_t *buf = dma_alloc(4096, &p);
    int k, hits;
    uint16_t ctl;

    if (!cap) {
        check(false, "MSI-X: capability present");
        return;
    }
    ctl = (uint16_t)cfg_read(cfg, cap + 2, 2);
    table = cfg_read(cfg, cap + 4, 4);
    check((ctl & 0x7ff) + 1 == DMAT_MSIX_VECTORS && (table & 7) == 2,
          "MSI-X: %u vectors, table in BAR%u at 0x%x", (ctl & 0x7ff) + 1,
          table & 7, table & ~7u);
    if (bar_open(bdf, (int)(table & 7), &tb) < 0) {
        check(false, "MSI-X: map the table BAR");
        return;
    }
    /* Enable with the function masked, program entry vec, unmask. */
    cfg_write(cfg, cap + 2, 2, ctl | 0xc000);
    {
        volatile uint32_t *e =
            (volatile uint32_t *)(tb.map + (table & ~7u) + 16 * vec);
        e[0] = MSI_ADDR_APIC0;
        e[1] = 0;
        e[2] = MSIX_TEST_VECTOR;
        e[3] = 0; /* unmasked */
    }
    cfg_write(cfg, cap + 2, 2, (ctl | 0x8000) & ~0x4000);
    k = msi_kmsg_open();
    set(DMAT_REG_IRQ_CTRL, DMAT_IRQ_EN | vec << DMAT_IRQ_VECTOR_SHIFT);
    run_op(DMAT_OP_FILL, 0, p, 4096, 0x090a0b0c);
    hits = msi_kmsg_wait(k, MSIX_TEST_VECTOR, 10);
    check(hits > 0 && buf[0] == 0x0c,
          "MSI-X: table entry %u's message reached CPU 0 as vector %u", vec,
          MSIX_TEST_VECTOR);
    clear_status();
    set(DMAT_REG_IRQ_CTRL, 0);
    cfg_write(cfg, cap + 2, 2, ctl & ~0xc000);
    close(k);
}

int main(int argc, char **argv)
{
    struct pci_res res[7];
    char bdf[64];
    struct bar b4;
    uint32_t traps;

    g_prog = "dma-test";
    if (argc > 1)
        say("run: %s", argv[1]);
    if (pci_find(DMAT_VENDOR, DMAT_DEVICE, 0, bdf, sizeof(bdf)) < 0)
        die("no muser-dma-test (%04x:%04x) on the PCI bus", DMAT_VENDOR,
            DMAT_DEVICE);
    pci_print(bdf);
    pci_resources(bdf, res);
    check(pci_attr(bdf, "class") == DMAT_CLASS, "class 0x%06lx",
          pci_attr(bdf, "class"));
    check(res_size(&res[0]) == DMAT_BAR0_SIZE && res_size(&res[2]) ==
              DMAT_BAR2_SIZE && res_size(&res[4]) == DMAT_BAR4_SIZE &&
              (res[4].flags & IORESOURCE_MEM_64) &&
              (res[4].flags & IORESOURCE_PREFETCH),
          "BARs: 0 4 KiB, 2 4 KiB, 4 64 KiB 64-bit prefetchable");

    if ((uio = uio_bind(bdf, DMAT_VENDOR, DMAT_DEVICE)) < 0)
        die("uio_pci_generic: %s", strerror(-uio));
    say("bound to uio_pci_generic");
    cfg = cfg_open(bdf);
    cfg_write(cfg, 4, 2, cfg_read(cfg, 4, 2) | 0x6); /* memory + master */
    if (bar_open(bdf, 0, &bar0) < 0)
        die("BAR0: cannot mmap resource0");

    check(reg(DMAT_REG_MAGIC) == DMAT_MAGIC, "MAGIC 0x%08x",
          reg(DMAT_REG_MAGIC));
    check(reg(DMAT_REG_CAPS) == (DMAT_MSIX_VECTORS | DMAT_VERSION << 8 |
                                 (DMAT_MAX_LEN >> 20) << 16),
          "CAPS 0x%08x", reg(DMAT_REG_CAPS));
    set(DMAT_REG_SCRATCH, 0xdeadbeef);
    check(reg(DMAT_REG_SCRATCH) == 0xdeadbeef, "SCRATCH holds 0xdeadbeef");
    bar_write64(&bar0, DMAT_REG_SRC_LO, 0x123456789abcdef0ull);
    check(reg(DMAT_REG_SRC_LO) == 0x9abcdef0 && reg(DMAT_REG_SRC_HI) ==
              0x12345678,
          "64-bit write to SRC splits into LO/HI");
    set(DMAT_REG_MAGIC, 0);
    check(reg(DMAT_REG_MAGIC) == DMAT_MAGIC, "MAGIC is read-only");

    if (bar_open(bdf, 4, &b4) == 0) {
        traps = reg(DMAT_REG_BAR4_TRAPS);
        bar_write(&b4, 0x10, 4, 0x11223344);
        bar_write(&b4, 0x2000, 4, 0x55667788);
        check(bar_read(&b4, 0x10, 4) == 0x11223344 &&
                  bar_read(&b4, 0x2000, 4) == 0x55667788,
              "BAR4 memory: trapped page 0 and sparse-mmap page 2 hold "
              "data");
        check(reg(DMAT_REG_BAR4_TRAPS) >= traps + 2,
              "BAR4 page 0 accesses trapped (%u)",
              reg(DMAT_REG_BAR4_TRAPS) - traps);
    } else {
        check(false, "BAR4: cannot mmap resource4");
    }

    dma_ops();
    intx();
    msi();
    msix(bdf);
    return finish();
}
