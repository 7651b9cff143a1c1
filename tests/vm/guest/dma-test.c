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
 * Every operation must end with STATUS exactly DONE (or the exact error),
 * RESULT as expected and COMPLETED up by one; the registers must hold
 * what was written before the start. The data cases move hashed,
 * position-dependent bytes at odd sizes and offsets, up to nearly 2 MiB
 * (over the 1 MiB DMA pieces), and check every byte and the guards around
 * them (see "data cases" below).
 *
 * Register map: samples/dma-test/README.md and dma-test.h.
 */
#include "dma-test.h"
#include "guest-util.h"

#define MSIX_TEST_VECTOR (MSI_TEST_VECTOR + 1)

#define PAGE 4096u
#define PIECE (1u << 20)    /* the device's (and libmuser's) DMA piece */
#define BUF_LEN (2u << 20)  /* one hugetlb page per DMA buffer */
#define SMALL_LEN (64u << 10) /* what the first checks need */
#define OP_TIMEOUT 20       /* seconds */

static struct bar bar0;
static int cfg, uio = -1;

/* ---- CRC-32 (zlib's), table driven: TCG makes the bitwise one slow ---- */

static uint32_t crc_table[256];

static uint32_t crc32_ieee(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;

    if (!crc_table[1])
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t t = i;

            for (int k = 0; k < 8; k++)
                t = (t >> 1) ^ (0xedb88320u & -(t & 1));
            crc_table[i] = t;
        }
    while (n--)
        c = crc_table[(c ^ *p++) & 0xff] ^ (c >> 8);
    return ~c;
}

/* ---- registers ----------------------------------------------------------
 *
 * No BAR0 register can read all ones on a live device as this program
 * uses it (it never writes all ones anywhere), except RESULT, which holds
 * a CRC: reg() notes all ones for the next check(), reg_raw() doesn't.
 */

static uint32_t reg_raw(unsigned off)
{
    return bar_read(&bar0, off, 4);
}

static uint32_t reg(unsigned off)
{
    return live(reg_raw(off), 4);
}

static void set(unsigned off, uint32_t v)
{
    bar_write(&bar0, off, 4, v);
}

/* A STATUS value the device can produce: 0, BUSY alone, DONE alone, or
 * ERROR with a defined CODE (README: STATUS). */
static bool status_valid(uint32_t st)
{
    uint32_t code = (st & DMAT_STATUS_CODE_MASK) >> DMAT_STATUS_CODE_SHIFT;

    if (st & ~(DMAT_STATUS_BUSY | DMAT_STATUS_DONE | DMAT_STATUS_ERROR |
               DMAT_STATUS_CODE_MASK))
        return false;
    if (st & DMAT_STATUS_BUSY)
        return st == DMAT_STATUS_BUSY;
    if (st & DMAT_STATUS_ERROR)
        return !(st & DMAT_STATUS_DONE) && code >= DMAT_ERR_BAD_OP &&
               code <= DMAT_ERR_ABORTED;
    return code == 0;
}

/* Append "; what" to a problem list. */
static void __attribute__((format(printf, 3, 4)))
addf(char *buf, size_t size, const char *fmt, ...)
{
    size_t n = strlen(buf);
    va_list ap;

    if (n && n + 2 < size) {
        memcpy(buf + n, "; ", 3);
        n += 2;
    }
    va_start(ap, fmt);
    vsnprintf(buf + n, size - n, fmt, ap);
    va_end(ap);
}

struct op {
    uint32_t status;    /* STATUS when BUSY cleared (or polling gave up) */
    uint32_t result;    /* RESULT then */
    uint32_t before;    /* STATUS before the start: 0, as we cleared it */
    uint32_t ran;       /* how much COMPLETED went up: 1 */
    bool bad_setup;     /* the registers did not hold what we wrote */
    bool timeout;       /* still BUSY after OP_TIMEOUT */
    bool dead;          /* STATUS read all ones */
    char setup[160];    /* what they held */
};

static bool g_dead; /* some STATUS read all ones: the device is gone */

/* Start an operation and poll until BUSY clears. */
static struct op run_op(uint32_t op, uint64_t src, uint64_t dst, uint32_t len,
                        uint32_t fill)
{
    double end = now_s() + OP_TIMEOUT;
    struct op o;
    uint32_t c0;
    uint64_t s, d;

    memset(&o, 0, sizeof(o));
    o.before = reg(DMAT_REG_STATUS);
    c0 = reg(DMAT_REG_COMPLETED);
    set(DMAT_REG_SRC_LO, (uint32_t)src);
    set(DMAT_REG_SRC_HI, (uint32_t)(src >> 32));
    set(DMAT_REG_DST_LO, (uint32_t)dst);
    set(DMAT_REG_DST_HI, (uint32_t)(dst >> 32));
    set(DMAT_REG_LEN, len);
    set(DMAT_REG_OP, op);
    set(DMAT_REG_FILL, fill);
    s = reg(DMAT_REG_SRC_LO) | (uint64_t)reg(DMAT_REG_SRC_HI) << 32;
    d = reg(DMAT_REG_DST_LO) | (uint64_t)reg(DMAT_REG_DST_HI) << 32;
    if (s != src || d != dst || reg(DMAT_REG_LEN) != len ||
        reg(DMAT_REG_OP) != op || reg(DMAT_REG_FILL) != fill) {
        o.bad_setup = true;
        snprintf(o.setup, sizeof(o.setup),
                 "registers read back SRC 0x%" PRIx64 " DST 0x%" PRIx64
                 " LEN %u OP %u FILL 0x%x",
                 s, d, reg_raw(DMAT_REG_LEN), reg_raw(DMAT_REG_OP),
                 reg_raw(DMAT_REG_FILL));
    }
    set(DMAT_REG_CMD, DMAT_CMD_START);
    for (;;) {
        o.status = reg(DMAT_REG_STATUS);
        if (is_all_ones(o.status, 4)) {
            o.dead = g_dead = true;
            break;
        }
        if (!(o.status & DMAT_STATUS_BUSY) || !status_valid(o.status))
            break;
        if (now_s() > end) {
            o.timeout = true;
            break;
        }
    }
    o.result = reg_raw(DMAT_REG_RESULT);
    o.ran = reg(DMAT_REG_COMPLETED) - c0;
    return o;
}

/*
 * Did the operation end with STATUS exactly want (and RESULT exactly
 * want_result)? If not, why goes to buf (appended). All ones is left to
 * check(), which says it.
 */
static bool op_ok(const struct op *o, uint32_t want, uint32_t want_result,
                  char *buf, size_t size)
{
    bool ok = true;

    if (o->dead)
        return false;
    if (o->bad_setup) {
        addf(buf, size, "%s", o->setup);
        ok = false;
    }
    if (o->before != 0) {
        addf(buf, size, "STATUS was 0x%x before the start, not 0",
             o->before);
        ok = false;
    }
    if (o->timeout) {
        addf(buf, size, "still BUSY after %d s", OP_TIMEOUT);
        ok = false;
    } else if (!status_valid(o->status)) {
        addf(buf, size, "STATUS 0x%x has bits the device can't set",
             o->status);
        ok = false;
    } else if (o->status != want) {
        addf(buf, size, "STATUS 0x%x, want 0x%x", o->status, want);
        ok = false;
    }
    if (!o->timeout && o->result != want_result) {
        addf(buf, size, "RESULT 0x%x, want 0x%x", o->result, want_result);
        ok = false;
    }
    if (!o->timeout && o->ran != 1) {
        addf(buf, size, "COMPLETED went up by %u, want 1", o->ran);
        ok = false;
    }
    return ok;
}

/* W1C DONE and ERROR; STATUS must then read 0 (run_op checks that). */
static void clear_status(void)
{
    set(DMAT_REG_STATUS, DMAT_STATUS_DONE | DMAT_STATUS_ERROR);
}

static const char *sep(const char *why)
{
    return why[0] ? " - " : "";
}

/* ---- data patterns ------------------------------------------------------ */

/* Byte i of a pattern: a hash of the offset, so any shift of the data
 * (by 1, 4, 4096 or 1 MiB bytes) changes almost every byte. */
static uint8_t pat(uint32_t seed, size_t i)
{
    uint32_t x = (uint32_t)i * 0x9e3779b1u ^ seed;

    x ^= x >> 15;
    x *= 0x85ebca77u;
    x ^= x >> 13;
    x *= 0xc2b2ae3du;
    x ^= x >> 16;
    return (uint8_t)x;
}

static uint8_t fill_byte(uint32_t fill, size_t i)
{
    return (uint8_t)(fill >> (8 * (i % 4)));
}

/* Differences of got[0..n) from want[0..n): how many, first and last. */
static size_t diff(const uint8_t *got, const uint8_t *want, size_t n,
                   size_t *first, size_t *last)
{
    size_t bad = 0;

    if (!n || !memcmp(got, want, n))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (got[i] != want[i]) {
            if (!bad++)
                *first = i;
            *last = i;
        }
    return bad;
}

/*
 * Data that went to the wrong place: does dst[j] == src[src_off + j - s]
 * from the first difference on (for s > 0, after the s bytes the shift
 * left stale), for a small s? Returns s, or 0.
 */
static int guess_shift(const uint8_t *dst, const uint8_t *src, size_t n,
                       size_t first, size_t src_off, size_t src_len)
{
    for (int s = -16; s <= 16; s++) {
        size_t w = 0, j;

        if (!s)
            continue;
        for (j = first + (s > 0 ? (size_t)s : 0); j < n && w < 64;
             j++, w++) {
            size_t k = src_off + j - (size_t)(long)s;

            if (k >= src_len || dst[j] != src[k])
                break;
        }
        if (w >= 8 && (w == 64 || j == n))
            return s;
    }
    return 0;
}

/* ---- DMA buffers -------------------------------------------------------- */

static struct {
    uint8_t *src, *dst; /* DMA buffers, len bytes each */
    uint64_t psrc, pdst;
    size_t len;
    uint8_t *src_ref;   /* what src holds (the device only reads it) */
    uint8_t *poison;    /* what dst holds before each data case */
    uint8_t *want;      /* scratch: the expected fill */
} B;

#define SRC_SEED 0x5eed0001u
#define POISON_SEED 0xbad0d00du

static void bufs_init(void)
{
    B.len = BUF_LEN;
    B.src = dma_alloc(B.len, &B.psrc);
    if (B.src)
        B.dst = dma_alloc(B.len, &B.pdst);
    if (!B.src || !B.dst) {
        say("no %u MiB DMA buffers; trying %u KiB", BUF_LEN >> 20,
            SMALL_LEN >> 10);
        B.len = SMALL_LEN;
        B.src = dma_alloc(B.len, &B.psrc);
        B.dst = dma_alloc(B.len, &B.pdst);
    }
    B.src_ref = malloc(B.len);
    B.poison = malloc(B.len);
    B.want = malloc(B.len);
    if (!B.src || !B.dst || !B.src_ref || !B.poison || !B.want)
        die("no physically contiguous DMA buffers");
    say("DMA buffers: %zu KiB at guest-physical 0x%" PRIx64 " and 0x%" PRIx64,
        B.len / 1024, B.psrc, B.pdst);
    for (size_t i = 0; i < B.len; i++) {
        B.src_ref[i] = pat(SRC_SEED, i);
        B.poison[i] = pat(POISON_SEED, i);
    }
    memcpy(B.src, B.src_ref, B.len);
}

static void dma_ops(void)
{
    uint8_t *src = B.src, *dst = B.dst;
    uint64_t psrc = B.psrc, pdst = B.pdst;
    size_t len = SMALL_LEN;
    uint32_t fill = 0xc0ffee11u, crc = crc32_ieee(B.src_ref + 5, 50000);
    struct op o;
    char why[512];
    bool ok;

    /* device -> guest RAM (DMA write) */
    memset(dst, 0, len);
    why[0] = '\0';
    o = run_op(DMAT_OP_FILL, 0, pdst + 8, 4096 - 3, fill);
    ok = op_ok(&o, DMAT_STATUS_DONE, 0, why, sizeof(why));
    for (size_t i = 0; ok && i < 4096 - 3; i++)
        ok = dst[8 + i] == fill_byte(fill, i);
    ok = ok && !dst[7] && !dst[8 + 4096 - 3];
    check(ok, "fill: 4093 bytes at an odd offset, nothing outside (status "
              "0x%x)%s%s",
          o.status, sep(why), why);
    clear_status();

    /* guest RAM -> device -> guest RAM (DMA read and write) */
    memset(dst, 0, len);
    why[0] = '\0';
    o = run_op(DMAT_OP_COPY, psrc, pdst, (uint32_t)len, 0);
    ok = op_ok(&o, DMAT_STATUS_DONE, 0, why, sizeof(why));
    check(ok && !memcmp(src, dst, len),
          "copy: %zu KiB across pages (status 0x%x)%s%s", len / 1024,
          o.status, sep(why), why);
    clear_status();

    /* guest RAM -> device (DMA read only) */
    why[0] = '\0';
    o = run_op(DMAT_OP_CHECKSUM, psrc + 5, 0, 50000, 0);
    ok = op_ok(&o, DMAT_STATUS_DONE, crc, why, sizeof(why));
    check(ok, "checksum: device CRC-32 0x%08x, guest 0x%08x%s%s", o.result,
          crc, sep(why), why);
    clear_status();

    /* Outside guest RAM (256 MiB guest; 1 GiB is unmapped): a clean error,
     * ENOENT (README: "2 = ENOENT for an unmapped address"). */
    why[0] = '\0';
    o = run_op(DMAT_OP_FILL, 0, 0x40000000, 64, 0);
    ok = op_ok(&o, DMAT_STATUS_ERR(DMAT_ERR_DMA_WRITE), ENOENT, why,
               sizeof(why));
    check(ok,
          "DMA to an unmapped address fails with DMA_WRITE error (status "
          "0x%x, errno %u)%s%s",
          o.status, o.result, sep(why), why);
    clear_status();
}

/* ---- data cases: odd sizes and offsets, byte for byte --------------------
 *
 * Every byte of the source is a hash of its offset (pat()), so data moved
 * by any number of bytes, or cut short, shows. The destination buffer is
 * poisoned with another pattern before each case; afterwards the whole
 * buffer outside [dst, dst + len) must still hold it (guards), and the
 * source buffer must be unchanged. Offsets are into the 2 MiB buffers:
 * +0x1 is page 0 + 1, +0x1fff page 1 + 4095. Lengths over 1 MiB cross the
 * device's 1 MiB pieces (and libmuser's 1 MiB messages without an fd) at
 * an odd address.
 */
struct data_case {
    uint32_t op;
    size_t len, src_off, dst_off;
    uint32_t fill;
};

static const struct data_case data_cases[] = {
    {DMAT_OP_COPY, 1, 0x1, 0x3, 0},
    {DMAT_OP_COPY, 3, 0xfff, 0x1fff, 0},
    {DMAT_OP_COPY, 4, 0x3, 0x1, 0},
    {DMAT_OP_COPY, 4093, 0x3, 0xfff, 0},
    {DMAT_OP_COPY, 4097, 0xfff, 0x1, 0},
    {DMAT_OP_COPY, 8191, 0x1001, 0x2fff, 0},
    {DMAT_OP_COPY, 65537, 0x3003, 0x1001, 0},
    {DMAT_OP_COPY, PIECE + 4097, 0xfff, 0x3, 0},
    {DMAT_OP_COPY, BUF_LEN - 0x2000 + 3, 0x1, 0xfff, 0},
    {DMAT_OP_CHECKSUM, 1, 0x1, 0, 0},
    {DMAT_OP_CHECKSUM, 3, 0xfff, 0, 0},
    {DMAT_OP_CHECKSUM, 4093, 0x3, 0, 0},
    {DMAT_OP_CHECKSUM, 4097, 0xfff, 0, 0},
    {DMAT_OP_CHECKSUM, 8191, 0x1001, 0, 0},
    {DMAT_OP_CHECKSUM, 65537, 0x3, 0, 0},
    {DMAT_OP_CHECKSUM, PIECE + 4097, 0xfff, 0, 0},
    {DMAT_OP_CHECKSUM, BUF_LEN - 4, 0x3, 0, 0},
    /* FILL: four different bytes (no memset), one value for several
     * cases so the device's pattern buffer is reused and extended */
    {DMAT_OP_FILL, 1, 0, 0x1, 0x4d3c2b1au},
    {DMAT_OP_FILL, 3, 0, 0xfff, 0x4d3c2b1au},
    {DMAT_OP_FILL, 4093, 0, 0x3, 0x4d3c2b1au},
    {DMAT_OP_FILL, 8191, 0, 0x1fff, 0x4d3c2b1au},
    {DMAT_OP_FILL, 4097, 0, 0x1001, 0x8e7f6a5bu},
    {DMAT_OP_FILL, 65537, 0, 0x3, 0x8e7f6a5bu},
    {DMAT_OP_FILL, PIECE + 5, 0, 0xfff, 0x13579bdfu},
    {DMAT_OP_FILL, BUF_LEN - 0x1000 - 1, 0, 0x1, 0x13579bdfu},
    {DMAT_OP_FILL, 65537, 0, 0xfff, 0x5a5a5a5au}, /* memset */
};

static size_t pages(size_t off, size_t len)
{
    return (off + len - 1) / PAGE - off / PAGE + 1;
}

static const char *plural(size_t n)
{
    return n == 1 ? "" : "s";
}

/* The bytes of dst outside [off, off + len) must still be poison. */
static void check_guards(size_t off, size_t len, char *why, size_t size)
{
    size_t f = 0, l = 0, n;

    if ((n = diff(B.dst, B.poison, off, &f, &l)))
        addf(why, size,
             "guard before: %zu of %zu bytes overwritten, dst+0x%zx..0x%zx",
             n, off, f, l);
    if ((n = diff(B.dst + off + len, B.poison + off + len, B.len - off - len,
                  &f, &l)))
        addf(why, size,
             "guard after: %zu of %zu bytes overwritten, dst+0x%zx..0x%zx",
             n, B.len - off - len, off + len + f, off + len + l);
}

static void check_source(char *why, size_t size)
{
    size_t f = 0, l = 0, n;

    if ((n = diff(B.src, B.src_ref, B.len, &f, &l)))
        addf(why, size, "source changed: %zu bytes, src+0x%zx..0x%zx", n,
             f, l);
}

/* What differs in dst[off, off + len) from want[0, len). */
static void check_data(size_t off, size_t len, const uint8_t *want,
                       const uint8_t *src, size_t src_off, char *why,
                       size_t size)
{
    size_t f = 0, l = 0, n = diff(B.dst + off, want, len, &f, &l);
    int s;

    if (!n)
        return;
    addf(why, size,
         "%zu of %zu bytes differ, first at +%zu (dst+0x%zx: 0x%02x, want "
         "0x%02x), last at +%zu",
         n, len, f, off + f, B.dst[off + f], want[f], l);
    if (src && (s = guess_shift(B.dst + off, src, len, f, src_off, B.len)))
        addf(why, size, "from +%zu on the data looks shifted by %+d bytes",
             f, s);
}

static void data_case(const struct data_case *c)
{
    char what[160], why[768] = "";
    uint32_t crc = 0;
    struct op o;
    bool ok;

    switch (c->op) {
    case DMAT_OP_COPY:
        snprintf(what, sizeof(what),
                 "copy %zu B, src+0x%zx -> dst+0x%zx (%zu -> %zu page%s): "
                 "dst equals src, guards untouched",
                 c->len, c->src_off, c->dst_off, pages(c->src_off, c->len),
                 pages(c->dst_off, c->len),
                 plural(pages(c->dst_off, c->len)));
        memcpy(B.dst, B.poison, B.len);
        o = run_op(c->op, B.psrc + c->src_off, B.pdst + c->dst_off,
                   (uint32_t)c->len, 0);
        ok = op_ok(&o, DMAT_STATUS_DONE, 0, why, sizeof(why));
        check_data(c->dst_off, c->len, B.src_ref + c->src_off, B.src_ref,
                   c->src_off, why, sizeof(why));
        check_guards(c->dst_off, c->len, why, sizeof(why));
        check_source(why, sizeof(why));
        break;
    case DMAT_OP_FILL:
        snprintf(what, sizeof(what),
                 "fill %zu B, dst+0x%zx (%zu page%s), FILL 0x%08x: every "
                 "byte, guards untouched",
                 c->len, c->dst_off, pages(c->dst_off, c->len),
                 plural(pages(c->dst_off, c->len)), c->fill);
        for (size_t i = 0; i < c->len; i++)
            B.want[i] = fill_byte(c->fill, i);
        memcpy(B.dst, B.poison, B.len);
        o = run_op(c->op, 0, B.pdst + c->dst_off, (uint32_t)c->len,
                   c->fill);
        ok = op_ok(&o, DMAT_STATUS_DONE, 0, why, sizeof(why));
        check_data(c->dst_off, c->len, B.want, NULL, 0, why, sizeof(why));
        check_guards(c->dst_off, c->len, why, sizeof(why));
        break;
    default:
        crc = crc32_ieee(B.src_ref + c->src_off, c->len);
        snprintf(what, sizeof(what),
                 "checksum %zu B, src+0x%zx (%zu page%s): device CRC-32 "
                 "equals the guest's 0x%08x",
                 c->len, c->src_off, pages(c->src_off, c->len),
                 plural(pages(c->src_off, c->len)), crc);
        o = run_op(c->op, B.psrc + c->src_off, 0, (uint32_t)c->len, 0);
        ok = op_ok(&o, DMAT_STATUS_DONE, crc, why, sizeof(why));
        check_source(why, sizeof(why));
        break;
    }
    ok = ok && !why[0];
    check(ok, "%s (status 0x%x)%s%s", what, o.status, sep(why), why);
    clear_status();
}

static void data_cases_run(void)
{
    size_t n = sizeof(data_cases) / sizeof(data_cases[0]), skipped = 0;

    for (size_t i = 0; i < n; i++) {
        const struct data_case *c = &data_cases[i];

        if (g_dead) {
            check(false, "data cases: %zu not run, the device reads all "
                         "ones",
                  n - i);
            return;
        }
        if (c->src_off + c->len > B.len || c->dst_off + c->len > B.len) {
            skipped++;
            continue;
        }
        data_case(c);
    }
    if (skipped)
        say("%zu data cases skipped: they need %u MiB DMA buffers", skipped,
            BUF_LEN >> 20);
}

/* Config space status register of this function: capabilities listed
 * (it has them), reserved bits 1-2 clear. */
static bool pci_status_sane(uint32_t st)
{
    return (st & 0x10) && !(st & 0x6);
}

static bool buf_is_fill(const uint8_t *buf, size_t n, uint32_t fill)
{
    for (size_t i = 0; i < n; i++)
        if (buf[i] != fill_byte(fill, i))
            return false;
    return true;
}

/* Enable interrupts in IRQ_CTRL; a mismatch on read back goes to why. */
static void irq_ctrl(uint32_t v, char *why, size_t size)
{
    uint32_t got;

    set(DMAT_REG_IRQ_CTRL, v);
    if ((got = reg(DMAT_REG_IRQ_CTRL)) != v)
        addf(why, size, "IRQ_CTRL reads 0x%x, want 0x%x", got, v);
}

static void intx(void)
{
    uint64_t p;
    uint8_t *buf = dma_alloc(4096, &p);
    uint32_t fill = 0x01020304, st, cs;
    char why[512] = "";
    struct op o;
    int64_t n;
    bool ok;

    if (!buf)
        die("no DMA buffer");
    irq_ctrl(DMAT_IRQ_EN, why, sizeof(why));
    uio_unmask(cfg);
    o = run_op(DMAT_OP_FILL, 0, p, 4096, fill);
    n = uio_wait(uio, 10000);
    ok = op_ok(&o, DMAT_STATUS_DONE, 0, why, sizeof(why));
    if (!buf_is_fill(buf, 4096, fill))
        addf(why, sizeof(why), "the buffer does not hold the fill");
    check(n > 0 && ok && !why[0],
          "INTx: uio_pci_generic saw the completion interrupt (count "
          "%" PRId64 ")%s%s",
          n, sep(why), why);
    st = reg(DMAT_REG_STATUS);
    cs = cfg_read(cfg, 6, 2);
    check(st == DMAT_STATUS_DONE && pci_status_sane(cs) && (cs & 0x8),
          "INTx: config status has INTERRUPT while DONE is set (STATUS "
          "0x%x, config status 0x%04x)",
          st, cs);
    clear_status(); /* lowers the line */
    st = reg(DMAT_REG_STATUS);
    cs = cfg_read(cfg, 6, 2);
    check(st == 0 && pci_status_sane(cs) && !(cs & 0x8),
          "INTx: W1C of DONE lowers the line (STATUS 0x%x, config status "
          "0x%04x)",
          st, cs);
    uio_unmask(cfg);
    n = uio_wait(uio, 500);
    check(n == 0, "INTx: no second interrupt after the line went down");
    set(DMAT_REG_IRQ_CTRL, 0);
}

static void msi(void)
{
    uint64_t p;
    uint8_t *buf = dma_alloc(4096, &p);
    uint32_t fill = 0x05060708;
    unsigned cap = cfg_find_cap(cfg, PCI_CAP_ID_MSI);
    int k = msi_kmsg_open(), hits, r;
    char why[512] = "";
    uint32_t ctl = 0, data = 0;
    struct op o;
    bool ok;

    if (!buf)
        die("no DMA buffer");
    r = msi_enable(cfg, MSI_TEST_VECTOR);
    if (cap) {
        ctl = cfg_read(cfg, cap + 2, 2);
        data = cfg_read(cfg, cap + ((ctl & 0x80) ? 12 : 8), 2);
    }
    check(r == 0 && cap && (ctl & 1) && data == MSI_TEST_VECTOR,
          "MSI: enabled, vector %u (control 0x%04x, data 0x%04x)",
          MSI_TEST_VECTOR, ctl, data);
    irq_ctrl(DMAT_IRQ_EN, why, sizeof(why));
    o = run_op(DMAT_OP_FILL, 0, p, 4096, fill);
    hits = msi_kmsg_wait(k, MSI_TEST_VECTOR, 10);
    ok = op_ok(&o, DMAT_STATUS_DONE, 0, why, sizeof(why));
    if (!buf_is_fill(buf, 4096, fill))
        addf(why, sizeof(why), "the buffer does not hold the fill");
    check(hits > 0 && ok && !why[0],
          "MSI: the completion message reached CPU 0 as vector %u%s%s",
          MSI_TEST_VECTOR, sep(why), why);
    clear_status();
    set(DMAT_REG_IRQ_CTRL, 0);
    msi_disable(cfg);
    close(k);
}

static void msix(const char *bdf)
{
    unsigned cap = cfg_find_cap(cfg, PCI_CAP_ID_MSIX);
    uint32_t table, pba, vec = 2, fill = 0x090a0b0c;
    struct bar tb;
    uint64_t p;
    uint8_t *buf = dma_alloc(4096, &p);
    char why[512] = "";
    int k, hits;
    uint16_t ctl;
    struct op o;
    bool ok;

    if (!buf)
        die("no DMA buffer");
    if (!cap) {
        check(false, "MSI-X: capability present");
        return;
    }
    ctl = (uint16_t)cfg_read(cfg, cap + 2, 2);
    table = cfg_read(cfg, cap + 4, 4);
    pba = cfg_read(cfg, cap + 8, 4);
    check((ctl & 0x7ff) + 1 == DMAT_MSIX_VECTORS &&
              table == (DMAT_MSIX_TABLE_OFF | 2) &&
              pba == (DMAT_MSIX_PBA_OFF | 2),
          "MSI-X: %u vectors, table in BAR%u at 0x%x, PBA in BAR%u at 0x%x",
          (ctl & 0x7ff) + 1, table & 7, table & ~7u, pba & 7, pba & ~7u);
    if ((table & 7) > 5 || bar_open(bdf, (int)(table & 7), &tb) < 0 ||
        tb.io) {
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
    irq_ctrl(DMAT_IRQ_EN | vec << DMAT_IRQ_VECTOR_SHIFT, why, sizeof(why));
    o = run_op(DMAT_OP_FILL, 0, p, 4096, fill);
    hits = msi_kmsg_wait(k, MSIX_TEST_VECTOR, 10);
    ok = op_ok(&o, DMAT_STATUS_DONE, 0, why, sizeof(why));
    if (!buf_is_fill(buf, 4096, fill))
        addf(why, sizeof(why), "the buffer does not hold the fill");
    check(hits > 0 && ok && !why[0],
          "MSI-X: table entry %u's message reached CPU 0 as vector %u%s%s",
          vec, MSIX_TEST_VECTOR, sep(why), why);
    clear_status();
    set(DMAT_REG_IRQ_CTRL, 0);
    cfg_write(cfg, cap + 2, 2, ctl & ~0xc000);
    close(k);
}

int main(int argc, char **argv)
{
    const uint32_t caps = DMAT_MSIX_VECTORS | DMAT_VERSION << 8 |
                          (DMAT_MAX_LEN >> 20) << 16;
    struct pci_res res[7];
    char bdf[64];
    struct bar b4;
    uint32_t traps, v, w;

    g_prog = "dma-test";
    if (argc > 1)
        say("run: %s", argv[1]);
    if (crc32_ieee((const uint8_t *)"123456789", 9) != 0xcbf43926u)
        die("the guest's CRC-32 is broken");
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

    v = reg(DMAT_REG_MAGIC);
    check(v == DMAT_MAGIC, "MAGIC 0x%08x", v);
    v = reg(DMAT_REG_CAPS);
    check(v == caps, "CAPS 0x%08x", v);
    set(DMAT_REG_SCRATCH, 0xdeadbeef);
    check(reg(DMAT_REG_SCRATCH) == 0xdeadbeef, "SCRATCH holds 0xdeadbeef");
    bar_write64(&bar0, DMAT_REG_SRC_LO, 0x123456789abcdef0ull);
    check(reg(DMAT_REG_SRC_LO) == 0x9abcdef0 && reg(DMAT_REG_SRC_HI) ==
              0x12345678,
          "64-bit write to SRC splits into LO/HI");
    set(DMAT_REG_MAGIC, 0);
    check(reg(DMAT_REG_MAGIC) == DMAT_MAGIC, "MAGIC is read-only");
    check(reg(DMAT_REG_CMD) == 0 && reg(0x40) == 0 &&
              reg(DMAT_BAR0_SIZE - 4) == 0,
          "CMD and unlisted registers (0x40, 0xffc) read 0");

    if (bar_open(bdf, 4, &b4) == 0) {
        traps = reg(DMAT_REG_BAR4_TRAPS);
        bar_write(&b4, 0x10, 4, 0x11223344);
        bar_write(&b4, 0x2000, 4, 0x55667788);
        v = live_want(bar_read(&b4, 0x10, 4), 0x11223344, 4);
        w = live_want(bar_read(&b4, 0x2000, 4), 0x55667788, 4);
        check(v == 0x11223344 && w == 0x55667788,
              "BAR4 memory: trapped page 0 and sparse-mmap page 2 hold "
              "data");
        /* one write and one read of page 0, each one message */
        v = reg(DMAT_REG_BAR4_TRAPS) - traps;
        check(v == 2, "BAR4 page 0 accesses trapped (%u)", v);
    } else {
        check(false, "BAR4: cannot mmap resource4");
    }

    bufs_init();
    dma_ops();
    data_cases_run();
    intx();
    msi();
    msix(bdf);
    return finish();
}
