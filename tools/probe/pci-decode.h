/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * pci-decode.h - print a PCI config space the way lspci does.
 *
 * The bytes come from a device server we do not trust: every pointer
 * found in them is bounds-checked and every list walk is bounded.
 */
#ifndef MUSER_TOOLS_PCI_DECODE_H
#define MUSER_TOOLS_PCI_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define PCI_CFG_MAX 4096u

/* What lspci would learn from sysfs: region sizes, from region info. */
struct pci_bar_hint {
	uint64_t size; /* 0 = unknown */
	bool mmap;
};

struct pci_view {
	const uint8_t *cfg;	     /* PCI_CFG_MAX bytes, zero past len */
	size_t len;		     /* bytes the device has: 64, 256 or 4096 */
	struct pci_bar_hint bars[7]; /* BAR0-5, ROM */
	const char *ids_path;	     /* pci.ids or NULL */
};

/* Class and "vendor device" names from pci.ids, else IDs, as lspci
 * prints them; numeric adds the codes in brackets as lspci -nn does. */
void pci_names(const struct pci_view *v, char *cls, size_t cls_len, char *vd,
	       size_t vd_len, bool numeric);

/* The "Subsystem:" text, as lspci prints it. */
void pci_subsys_name(const struct pci_view *v, char *out, size_t len,
		     bool numeric);

/* "00:00.0 <class>: <vendor> <device> (rev xx)" and the -vvv body. */
void pci_print_verbose(FILE *f, const struct pci_view *v);
/* lspci -xxx style: header line, then "00: xx xx ..." lines. */
void pci_print_dump(FILE *f, const struct pci_view *v);

#endif
