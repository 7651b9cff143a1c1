/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * regs-test: register-level access to the PCI-IDIO-16 board (494f:0dc8)
 * from user space, without its driver: config space through
 * /sys/bus/pci/devices/BDF/config and I/O BAR 2 through resource2 (pread /
 * pwrite: the kernel does the inb/outb).
 *
 *   regs-test [regs]   register checks (default)
 *   regs-test dead     the host kills the server mid-run: registers and
 *                      config space must read all ones, and the guest
 *                      keeps running until it powers off
 *   regs-test dead idle  the same, but the guest leaves the device alone
 *                      for 2 s after asking for the kill, so that no
 *                      access is in flight when it lands (QEMU 11.1's
 *                      client aborts on that one: tests/vm/README.md)
 *
 * Input changes and the kill come from the host through
 *   HOST-REQUEST: gpio set-inputs 0xNNNN
 *   HOST-REQUEST: kill gpio
 * lines on the console, which tests/vm/tests.sh acts on.
 */
#include "guest-util.h"

enum { OUT0_7, IN0_7, IRQ_CTL, FILTER, OUT8_15, IN8_15, IRQ_STATUS, NONE };

static void host(const char *what)
{
    printf("HOST-REQUEST: %s\n", what);
    fflush(stdout);
}

static struct bar bar2;

/* A register as read, all ones included: offset 7 (not decoded, reads
 * 0xff), the inputs (the host may set all of them) and the dead test. */
static uint8_t rd_raw(unsigned off)
{
    return (uint8_t)bar_read(&bar2, off, 1);
}

/* The outputs (never written 0xff here), IRQ control (reads 0) and
 * status (bits 0-2): 0xff means the device is gone (see live()). */
static uint8_t rd(unsigned off)
{
    return (uint8_t)live(rd_raw(off), 1);
}

static void wr(unsigned off, uint8_t v)
{
    bar_write(&bar2, off, 1, v);
}

static uint16_t inputs(void)
{
    return (uint16_t)(rd_raw(IN0_7) | rd_raw(IN8_15) << 8);
}

/* Wait until the inputs read want; *got is the last value. All ones
 * instead of a want that isn't is a dead device, not slow host. */
static bool wait_inputs(uint16_t want, double tmo, uint16_t *got)
{
    double end = now_s() + tmo;

    while (now_s() < end) {
        *got = inputs();
        if (*got == want)
            return true;
        if (is_all_ones(*got, 2) && !is_all_ones(want, 2))
            break;
        sleep_ms(50);
    }
    live_want(*got, want, 2);
    return false;
}

/* Interrupt status after input changes from `from` (IRQs enabled, latch
 * clear) to `to`: a change bit per byte that changed, and INTA#. */
static uint8_t want_status(uint16_t from, uint16_t to)
{
    uint16_t changed = from ^ to;
    uint8_t st = (uint8_t)(((changed & 0x00ff) ? 1 : 0) |
                           ((changed & 0xff00) ? 2 : 0));

    return st ? (uint8_t)(st | 4) : 0;
}

static int regs(int cfg, uint64_t io_base)
{
    uint16_t in0, got = 0;
    uint32_t v, bar;
    uint8_t st, want;

    /* Config space: header type 0, no capabilities, INTA#. */
    check(cfg_read(cfg, 0, 2) == 0x494f && cfg_read(cfg, 2, 2) == 0x0dc8,
          "config: vendor/device 494f:0dc8");
    check(cfg_read(cfg, 0x0e, 1) == 0, "config: header type 0");
    check(cfg_read(cfg, 0x3d, 1) == 1, "config: interrupt pin INTA#");
    /* I/O BAR: bit 0 set, bit 1 reserved, bit 2 hardwired 0 (8 bytes),
     * the rest the address the kernel assigned. */
    bar = cfg_read(cfg, 0x10 + 2 * 4, 4);
    check((bar & 7) == 1 && (bar & ~3u) == io_base,
          "config: BAR2 is an I/O BAR (0x%08x, resource at 0x%" PRIx64 ")",
          bar, io_base);
    check(cfg_write(cfg, 0x3c, 1, 0x5a) == 0 && cfg_read(cfg, 0x3c, 1) == 0x5a,
          "config: interrupt line is writable");
    /* Outputs: byte registers, 16- and 32-bit accesses split into bytes. */
    wr(OUT0_7, 0x3c);
    wr(OUT8_15, 0xa5);
    check(rd(OUT0_7) == 0x3c && rd(OUT8_15) == 0xa5,
          "outputs 0-7/8-15 read back 0x3c/0xa5");
    bar_write(&bar2, OUT0_7, 2, 0x1234); /* bytes 0 and 1: OUT0_7, clear irq */
    check(rd(OUT0_7) == 0x34, "16-bit write at 0 sets outputs 0-7 (0x34)");
    /* All ones here would need outputs 8-15 0xff (they are 0xa5). */
    v = live(bar_read(&bar2, 4, 4), 4);
    check(v == (0xffu << 24 | 0u << 16 | (uint32_t)rd_raw(IN8_15) << 8 |
                0xa5),
          "32-bit read at 4: out8-15, in8-15, status 0, 0xff (0x%08x)", v);
    /* 0xff is right for offset 7, and what a dead device gives too: the
     * registers around it must still read what they hold. */
    check(rd_raw(NONE) == 0xff && rd(OUT8_15) == 0xa5 &&
              rd(IRQ_STATUS) == 0,
          "offset 7 is not decoded (0xff)");

    /* Inputs change from the host; the IRQ latch follows. */
    in0 = inputs();
    say("inputs read 0x%04x", in0);
    wr(IRQ_CTL, 0); /* disable */
    check(rd(IRQ_STATUS) == 0, "interrupt status 0 while disabled");
    check(rd(IRQ_CTL) == 0, "IRQ enable strobe reads 0");
    host("gpio set-inputs 0x00f1");
    check(wait_inputs(0x00f1, 30, &got), "inputs follow the host (0x00f1)");
    want = want_status(in0, 0x00f1);
    st = rd(IRQ_STATUS);
    check((want & 0x05) == 0x05 && st == want,
          "change on 0-7 latched and INTx asserted (status 0x%02x, want "
          "0x%02x)",
          st, want);
    wr(IN0_7, 0); /* clear */
    check(rd(IRQ_STATUS) == 0, "status clears on a write to offset 1");
    host("gpio set-inputs 0x80f1");
    check(wait_inputs(0x80f1, 30, &got), "inputs follow the host (0x80f1)");
    st = rd(IRQ_STATUS);
    check(st == 0x06, "change on 8-15 latched (status 0x%02x, want 0x06)",
          st);
    wr(IRQ_CTL, 0);
    check(rd(IRQ_STATUS) == 0, "disabling the IRQ drops the latch");
    wr(OUT0_7, 0);
    wr(OUT8_15, 0);
    return finish();
}

/* All ones is what this test wants: raw reads only after the kill. */
static int dead(int cfg, bool idle)
{
    double t0, end;
    uint8_t v = 0;
    uint32_t id;

    wr(OUT0_7, 0x42);
    check(rd(OUT0_7) == 0x42 && cfg_read(cfg, 0, 2) == 0x494f,
          "device alive: outputs read back 0x42");
    host("kill gpio");
    t0 = now_s();
    if (idle)
        sleep_ms(2000);
    end = t0 + 30;
    while (now_s() < end && (v = rd_raw(OUT0_7)) != 0xff)
        sleep_ms(50);
    check(v == 0xff, "BAR2 reads 0xff after the server died (%.1f s)",
          now_s() - t0);
    id = bar_read(&bar2, 0, 4);
    check(id == 0xffffffffu, "32-bit BAR read: 0x%08x", id);
    wr(OUT0_7, 0x00); /* a write to a dead device must not hang */
    check(rd_raw(OUT8_15) == 0xff && rd_raw(OUT0_7) == 0xff,
          "writes are dropped, reads stay all ones");
    /* QEMU must go on serving the guest: keep at it for a while. */
    for (double t = now_s() + 2; now_s() < t && v == 0xff;) {
        v = rd_raw(IN0_7);
        sleep_ms(100);
    }
    check(v == 0xff, "still all ones 2 s later");
    id = cfg_read_raw(cfg, 0, 4);
    say("config dword 0 now reads 0x%08x", id);
    check(id == 0xffffffffu, "config space reads all ones");
    say("guest still running %.1f s after the kill; powering off",
        now_s() - t0);
    return finish();
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "regs";
    struct pci_res res[7];
    char bdf[64];
    int cfg, r;

    g_prog = "regs-test";
    if (pci_find(0x494f, 0x0dc8, 0, bdf, sizeof(bdf)) < 0)
        die("no ACCES PCI-IDIO-16 (494f:0dc8) on the PCI bus");
    pci_print(bdf);
    pci_unbind(bdf);
    say("driver unbound; using %s/resource2 and config directly", bdf);
    cfg = cfg_open(bdf);
    if (cfg < 0)
        die("config: %s", strerror(errno));
    /* Unbinding disabled the device: turn I/O decoding back on. */
    cfg_write(cfg, 4, 2, cfg_read(cfg, 4, 2) | 1);
    if ((r = bar_open(bdf, 2, &bar2)) < 0)
        die("resource2: %s", strerror(-r));
    check(bar2.io && bar2.size == 8, "BAR2: 8 bytes of I/O space");
    if (!strcmp(mode, "dead"))
        return dead(cfg, argc > 2 && !strcmp(argv[2], "idle"));
    pci_resources(bdf, res);
    return regs(cfg, res[2].start);
}
