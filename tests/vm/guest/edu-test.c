/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * edu-test: the guest-side methods of the muser VM tests, checked against a
 * device QEMU emulates itself (-device edu, 1234:11e8). It proves that the
 * *test method* works here - BAR access through sysfs resource files, DMA
 * into buffers found through /proc/self/pagemap, INTx through
 * uio_pci_generic, MSI observed through the kernel log - so that a failure
 * of the same steps on a muser device points at muser, not at the method.
 *
 * edu: BAR0 (1 MiB): 0x00 id, 0x04 liveness (reads back ~value), 0x20
 * status, 0x24 irq status, 0x60 raise irq, 0x64 ack irq, 0x80 DMA src,
 * 0x88 DMA dst, 0x90 count, 0x98 cmd (1 start, 2 edu->RAM, 4 irq); its own
 * buffer is at 0x40000.
 */
#include "guest-util.h"

#define EDU_BUF 0x40000u

static void edu_dma(struct bar *b, uint64_t src, uint64_t dst, uint32_t len,
                    uint32_t cmd)
{
    bar_write64(b, 0x80, src);
    bar_write64(b, 0x88, dst);
    bar_write64(b, 0x90, len);
    bar_write64(b, 0x98, cmd | 1);
}

static bool edu_dma_wait(struct bar *b)
{
    double end = now_s() + 5;

    while (bar_read(b, 0x98, 4) & 1)
        if (now_s() > end)
            return false;
    return true;
}

int main(void)
{
    char bdf[64];
    struct bar b;
    int cfg, uio, kmsg;
    uint8_t *src, *dst;
    uint64_t psrc, pdst;
    int64_t n;

    g_prog = "edu-test";
    if (pci_find(0x1234, 0x11e8, 0, bdf, sizeof(bdf)) < 0)
        die("no edu device (1234:11e8)");
    pci_print(bdf);
    if (bar_open(bdf, 0, &b) < 0)
        die("cannot map BAR0");
    check(bar_read(&b, 0, 4) == 0x010000ed, "id register 0x%08x",
          bar_read(&b, 0, 4));
    bar_write(&b, 4, 4, 0x12345678);
    check(bar_read(&b, 4, 4) == ~0x12345678u, "liveness register inverts");

    uio = uio_bind(bdf, 0x1234, 0x11e8);
    if (uio < 0)
        die("uio_pci_generic bind failed: %s", strerror(-uio));
    say("bound to uio_pci_generic");
    cfg = cfg_open(bdf);
    cfg_write(cfg, 4, 2, cfg_read(cfg, 4, 2) | 0x4); /* bus master */

    src = dma_alloc(4096, &psrc);
    dst = dma_alloc(4096, &pdst);
    if (!src || !dst)
        die("no DMA buffers (pagemap: run as root)");
    say("DMA buffers at guest-physical 0x%" PRIx64 " and 0x%" PRIx64, psrc,
        pdst);
    for (int i = 0; i < 4096; i++)
        src[i] = (uint8_t)(i * 7 + 3);
    memset(dst, 0, 4096);
    edu_dma(&b, psrc, EDU_BUF, 2048, 0); /* edu 7.2 rejects a full 4 KiB */
    check(edu_dma_wait(&b), "DMA RAM -> device finished");
    uio_unmask(cfg);
    edu_dma(&b, EDU_BUF, pdst, 2048, 2 | 4);
    n = uio_wait(uio, 5000);
    check(n > 0, "INTx on DMA completion (uio count %" PRId64 ")", n);
    bar_write(&b, 0x64, 4, bar_read(&b, 0x24, 4));
    check(!memcmp(src, dst, 2048), "DMA device -> RAM copied the pattern");

    uio_unmask(cfg);
    bar_write(&b, 0x60, 4, 0x1);
    n = uio_wait(uio, 5000);
    check(n > 0, "INTx raised by register write (uio count %" PRId64 ")", n);
    bar_write(&b, 0x64, 4, 0x1);

    kmsg = msi_kmsg_open();
    check(msi_enable(cfg, MSI_TEST_VECTOR) == 0, "MSI enabled, vector %u",
          MSI_TEST_VECTOR);
    bar_write(&b, 0x60, 4, 0x2);
    check(msi_kmsg_wait(kmsg, MSI_TEST_VECTOR, 3) > 0,
          "MSI arrived at the CPU (kernel: no handler for vector %u)",
          MSI_TEST_VECTOR);
    bar_write(&b, 0x64, 4, 0x2);
    msi_disable(cfg);
    return finish();
}
