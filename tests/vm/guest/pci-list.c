/*
 * pci-list: minimal lspci for the test guest (busybox has no lspci).
 *
 * Walks /sys/bus/pci/devices and prints, per function:
 *   PCI <bdf> <vendor>:<device> class <class> irq <n> driver <name>
 *     BAR<i> <io|mem32|mem64>[ pref] <start>-<end> size <bytes>
 *
 * Usage: pci-list [VVVV:DDDD ...]
 * Exits 0, or 1 when a VVVV:DDDD given on the command line is not present
 * (so a test can check that a device showed up), 2 on a sysfs error.
 * Built with gcc -static; no dependencies beyond libc.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SYS_PCI "/sys/bus/pci/devices"

/* linux/ioport.h flag bits as exposed in the sysfs "resource" file */
#define IORESOURCE_IO       0x00000100UL
#define IORESOURCE_MEM      0x00000200UL
#define IORESOURCE_PREFETCH 0x00002000UL
#define IORESOURCE_MEM_64   0x00100000UL

static unsigned long read_hex(const char *dev, const char *attr)
{
    char path[PATH_MAX], buf[64];
    FILE *f;
    unsigned long v = 0;

    snprintf(path, sizeof(path), SYS_PCI "/%s/%s", dev, attr);
    f = fopen(path, "r");
    if (f == NULL)
        return 0;
    if (fgets(buf, sizeof(buf), f) != NULL)
        v = strtoul(buf, NULL, 0);
    fclose(f);
    return v;
}

static void driver_name(const char *dev, char *out, size_t len)
{
    char path[PATH_MAX], target[PATH_MAX];
    ssize_t n;
    const char *base;

    snprintf(path, sizeof(path), SYS_PCI "/%s/driver", dev);
    n = readlink(path, target, sizeof(target) - 1);
    if (n < 0) {
        snprintf(out, len, "none");
        return;
    }
    target[n] = '\0';
    base = strrchr(target, '/');
    snprintf(out, len, "%s", base ? base + 1 : target);
}

static void print_bars(const char *dev)
{
    char path[PATH_MAX], line[256];
    FILE *f;
    int i = 0;

    snprintf(path, sizeof(path), SYS_PCI "/%s/resource", dev);
    f = fopen(path, "r");
    if (f == NULL)
        return;
    /* Lines 0-5 are BARs, 6 is the expansion ROM; bridge windows follow. */
    while (fgets(line, sizeof(line), f) != NULL && i <= 6) {
        unsigned long long start, end, flags;

        if (sscanf(line, "%llx %llx %llx", &start, &end, &flags) == 3 &&
            (start != 0 || end != 0)) {
            const char *kind = (flags & IORESOURCE_IO) ? "io"
                             : (flags & IORESOURCE_MEM_64) ? "mem64"
                             : "mem32";
            if (i == 6)
                printf("  ROM  %s 0x%llx-0x%llx size 0x%llx\n",
                       kind, start, end, end - start + 1);
            else
                printf("  BAR%d %s%s 0x%llx-0x%llx size 0x%llx\n", i, kind,
                       (flags & IORESOURCE_PREFETCH) ? " pref" : "",
                       start, end, end - start + 1);
        }
        i++;
    }
    fclose(f);
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
    DIR *d;
    struct dirent *de;
    char **names = NULL;
    size_t n = 0, cap = 0, i;
    int want = argc - 1, *found;
    int rc = 0, a;

    found = calloc(argc, sizeof(*found));
    d = opendir(SYS_PCI);
    if (d == NULL || found == NULL) {
        fprintf(stderr, "pci-list: %s: %s\n", SYS_PCI, strerror(errno));
        return 2;
    }
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 32;
            names = realloc(names, cap * sizeof(*names));
            if (names == NULL)
                return 2;
        }
        names[n++] = strdup(de->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof(*names), cmp_names);

    for (i = 0; i < n; i++) {
        const char *dev = names[i];
        unsigned long ven = read_hex(dev, "vendor");
        unsigned long did = read_hex(dev, "device");
        unsigned long cls = read_hex(dev, "class");
        unsigned long irq = read_hex(dev, "irq");
        char drv[PATH_MAX];

        driver_name(dev, drv, sizeof(drv));
        printf("PCI %s %04lx:%04lx class %06lx irq %lu driver %s\n",
               dev, ven, did, cls, irq, drv);
        print_bars(dev);

        for (a = 1; a <= want; a++) {
            unsigned int wv, wd;
            if (sscanf(argv[a], "%x:%x", &wv, &wd) == 2 &&
                wv == ven && wd == did)
                found[a] = 1;
        }
    }
    printf("pci-list: %zu functions\n", n);

    for (a = 1; a <= want; a++) {
        if (!found[a]) {
            printf("pci-list: %s not found\n", argv[a]);
            rc = 1;
        }
    }
    return rc;
}
