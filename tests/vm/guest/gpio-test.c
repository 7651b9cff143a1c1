/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * gpio-test: the ACCES PCI-IDIO-16 (494f:0dc8) as the guest sees it, driven
 * by Linux's own gpio-pci-idio-16 driver through the GPIO character device
 * (uAPI v2). The device is muser-gpio-idio16 on the host, behind QEMU's
 * vfio-pci and the LD_PRELOAD shim.
 *
 *   gpio-test [INITIAL_INPUTS [OUT_A [OUT_B]]]
 *
 * INITIAL_INPUTS is what the host set before boot (default 0x1234); OUT_A
 * and OUT_B are the output patterns to drive (default 0xa5c3, 0x5a3c; the
 * host checks that the server printed them). None of them may be 0xffff:
 * that is what the driver reads from a dead device (all ones), and the
 * checks must tell the two apart.
 *
 * Input changes come from the host: the guest prints
 *   HOST-REQUEST: gpio set-inputs 0xNNNN
 * and the host script forwards that to the sample's control socket; the
 * change-of-state interrupt (INTx) must then reach the driver and show up
 * as an edge event on the line. Lines 0-15 are OUT0-15, 16-31 IIN0-15.
 */
#include <linux/gpio.h>
#include <sys/ioctl.h>

#include "guest-util.h"

#define IN0 16

static int chip_fd = -1;

static int line_request(uint32_t first, uint32_t n, uint64_t flags,
                        uint64_t values, const char *consumer)
{
    struct gpio_v2_line_request req;

    memset(&req, 0, sizeof(req));
    for (uint32_t i = 0; i < n; i++)
        req.offsets[i] = first + i;
    req.num_lines = n;
    snprintf(req.consumer, sizeof(req.consumer), "%s", consumer);
    req.config.flags = flags;
    if (flags & GPIO_V2_LINE_FLAG_OUTPUT) {
        req.config.num_attrs = 1;
        req.config.attrs[0].attr.id = GPIO_V2_LINE_ATTR_ID_OUTPUT_VALUES;
        req.config.attrs[0].attr.values = values;
        req.config.attrs[0].mask = (1ULL << n) - 1;
    }
    req.event_buffer_size = 64;
    if (ioctl(chip_fd, GPIO_V2_GET_LINE_IOCTL, &req) < 0)
        die("GPIO_V2_GET_LINE_IOCTL %s: %s", consumer, strerror(errno));
    return req.fd;
}

static uint32_t line_get(int fd, unsigned n)
{
    struct gpio_v2_line_values v = {.mask = (1ULL << n) - 1};

    if (ioctl(fd, GPIO_V2_LINE_GET_VALUES_IOCTL, &v) < 0)
        die("GPIO_V2_LINE_GET_VALUES_IOCTL: %s", strerror(errno));
    return (uint32_t)v.bits;
}

/* The values of n lines that should read want (never all ones, see the
 * header): all ones is the driver reading a dead board (noted for the
 * next check, see live()). */
static uint32_t line_get_want(int fd, unsigned n, uint32_t want)
{
    return live_want(line_get(fd, n), want, n / 8);
}

static void line_set(int fd, unsigned n, uint32_t bits)
{
    struct gpio_v2_line_values v = {.bits = bits, .mask = (1ULL << n) - 1};

    if (ioctl(fd, GPIO_V2_LINE_SET_VALUES_IOCTL, &v) < 0)
        die("GPIO_V2_LINE_SET_VALUES_IOCTL: %s", strerror(errno));
}

/* Wait for an edge event on `offset` with `id`; other events are counted
 * (the 6.1 driver runs the handler of every unmasked input line on any
 * change, so its neighbours report edges too). */
static bool wait_edge(int fd, uint32_t offset, uint32_t id, double tmo,
                      int *others, double *latency)
{
    double t0 = now_s(), end = t0 + tmo;

    while (now_s() < end) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        struct gpio_v2_line_event ev;

        if (poll(&p, 1, 100) <= 0)
            continue;
        if (read(fd, &ev, sizeof(ev)) != sizeof(ev))
            die("read line event: %s", strerror(errno));
        if (ev.offset == offset && ev.id == id) {
            *latency = now_s() - t0;
            return true;
        }
        (*others)++;
    }
    return false;
}

static void drain(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    struct gpio_v2_line_event ev;

    while (poll(&p, 1, 300) > 0 && read(fd, &ev, sizeof(ev)) > 0)
        ;
}

static unsigned long irq_count(unsigned irq)
{
    char line[512];
    unsigned long total = 0;
    FILE *f = fopen("/proc/interrupts", "r");

    while (f && fgets(line, sizeof(line), f)) {
        char *p = line;
        unsigned n = (unsigned)strtoul(p, &p, 10);

        if (*p != ':' || n != irq)
            continue;
        p++;
        for (;;) {
            char *q;
            unsigned long c = strtoul(p, &q, 10);
            if (q == p)
                break;
            total += c;
            p = q;
        }
    }
    if (f)
        fclose(f);
    return total;
}

static void host_set_inputs(uint32_t v)
{
    printf("HOST-REQUEST: gpio set-inputs 0x%04x\n", v);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    uint32_t initial = argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 0) : 0x1234;
    uint32_t out_a = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 0) : 0xa5c3;
    uint32_t out_b = argc > 3 ? (uint32_t)strtoul(argv[3], NULL, 0) : 0x5a3c;
    struct gpiochip_info ci;
    struct gpio_v2_line_info li;
    struct pci_res res[7];
    char bdf[64], path[PATH_MAX], chip[64] = "";
    struct dirent *de;
    DIR *d;
    int in_fd, out_fd, others = 0;
    unsigned irq;
    unsigned long irqs0;
    double lat = 0;
    bool ok;
    uint32_t v, got;

    g_prog = "gpio-test";
    if (initial == 0xffff || out_a == 0xffff || out_b == 0xffff ||
        initial > 0xffff || out_a > 0xffff || out_b > 0xffff)
        die("values must be 16-bit and not 0xffff (all ones: a dead device "
            "reads that)");
    if (pci_find(0x494f, 0x0dc8, 0, bdf, sizeof(bdf)) < 0)
        die("no ACCES PCI-IDIO-16 (494f:0dc8) on the PCI bus");
    pci_print(bdf);
    check(pci_attr(bdf, "class") == 0xff0000, "class 0x%06lx",
          pci_attr(bdf, "class"));
    check(pci_attr(bdf, "subsystem_vendor") == 0x494f &&
              pci_attr(bdf, "subsystem_device") == 0x0dc8,
          "subsystem 494f:0dc8");
    pci_resources(bdf, res);
    check((res[2].flags & IORESOURCE_IO) && res_size(&res[2]) == 8,
          "BAR2 is 8 bytes of I/O space");
    check(!res_size(&res[0]) && !res_size(&res[1]) && !res_size(&res[3]) &&
              !res_size(&res[4]) && !res_size(&res[5]),
          "no other BARs");
    irq = (unsigned)pci_attr(bdf, "irq");
    check(irq != 0, "INTx routed to IRQ %u", irq);

    /* The real driver, loaded by init, created a gpiochip under the device. */
    snprintf(path, sizeof(path), SYS_PCI "/%s", bdf);
    if ((d = opendir(path))) {
        while ((de = readdir(d)))
            if (!strncmp(de->d_name, "gpiochip", 8))
                snprintf(chip, sizeof(chip), "%s", de->d_name);
        closedir(d);
    }
    if (!chip[0])
        die("driver gpio-pci-idio-16 did not create a gpiochip for %s", bdf);
    snprintf(path, sizeof(path), "/dev/%s", chip);
    chip_fd = open(path, O_RDWR);
    if (chip_fd < 0 || ioctl(chip_fd, GPIO_GET_CHIPINFO_IOCTL, &ci) < 0)
        die("%s: %s", path, strerror(errno));
    say("%s: label \"%s\", %u lines", path, ci.label, ci.lines);
    check(ci.lines == 32, "32 GPIO lines");
    memset(&li, 0, sizeof(li));
    li.offset = 0;
    ioctl(chip_fd, GPIO_V2_GET_LINEINFO_IOCTL, &li);
    check(!strcmp(li.name, "OUT0") && (li.flags & GPIO_V2_LINE_FLAG_OUTPUT),
          "line 0 is output \"%s\"", li.name);
    memset(&li, 0, sizeof(li));
    li.offset = IN0;
    ioctl(chip_fd, GPIO_V2_GET_LINEINFO_IOCTL, &li);
    check(!strcmp(li.name, "IIN0") && (li.flags & GPIO_V2_LINE_FLAG_INPUT),
          "line 16 is input \"%s\"", li.name);

    /* Inputs: both edges, the only trigger type the driver accepts. The
     * request enables the board's interrupt (a read of register 2). */
    in_fd = line_request(IN0, 16,
                         GPIO_V2_LINE_FLAG_INPUT | GPIO_V2_LINE_FLAG_EDGE_RISING |
                             GPIO_V2_LINE_FLAG_EDGE_FALLING,
                         0, "muser-gpio-test-in");
    v = line_get_want(in_fd, 16, initial);
    say("inputs read 0x%04x", v);
    check(v == initial, "inputs are 0x%04x as the host set them", initial);

    out_fd = line_request(0, 16, GPIO_V2_LINE_FLAG_OUTPUT, 0,
                          "muser-gpio-test-out");
    say("driving outputs 0x%04x", out_a);
    line_set(out_fd, 16, out_a);
    check(line_get_want(out_fd, 16, out_a) == out_a,
          "outputs read back 0x%04x", out_a);
    say("driving outputs 0x%04x", out_b);
    line_set(out_fd, 16, out_b);
    check(line_get_want(out_fd, 16, out_b) == out_b,
          "outputs read back 0x%04x", out_b);

    /* Interrupts: the host flips inputs, the guest gets edge events. */
    drain(in_fd);
    irqs0 = irq_count(irq);
    /* An edge is only good when the inputs then read what the host set:
     * a dead board's status reads 0xff, which makes the driver report
     * (rising) edges on every line. */
    v = initial ^ 0x0001;
    host_set_inputs(v);
    ok = wait_edge(in_fd, IN0, (v & 1) ? GPIO_V2_LINE_EVENT_RISING_EDGE
                                       : GPIO_V2_LINE_EVENT_FALLING_EDGE,
                   30, &others, &lat);
    got = line_get_want(in_fd, 16, v);
    check(ok && got == v,
          "edge event on IIN0 (%s) after the host's change (%.2f s), "
          "inputs 0x%04x",
          (v & 1) ? "rising" : "falling", lat, got);
    drain(in_fd);
    v ^= 0x8001;
    host_set_inputs(v);
    ok = wait_edge(in_fd, IN0 + 15,
                   (v & 0x8000) ? GPIO_V2_LINE_EVENT_RISING_EDGE
                                : GPIO_V2_LINE_EVENT_FALLING_EDGE,
                   30, &others, &lat);
    got = line_get_want(in_fd, 16, v);
    check(ok && got == v,
          "edge event on IIN15 (%s) after the host's change (%.2f s), "
          "inputs 0x%04x",
          (v & 0x8000) ? "rising" : "falling", lat, got);
    drain(in_fd);
    got = line_get_want(in_fd, 16, v);
    check(got == v, "inputs now read 0x%04x", v);
    check(irq_count(irq) > irqs0, "IRQ %u count went %lu -> %lu", irq, irqs0,
          irq_count(irq));
    say("(%d events on other input lines: the 6.1 driver signals every "
        "requested line on a change)", others);
    close(in_fd);
    close(out_fd);
    return finish();
}
