/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * pci-names.c - vendor, device and class names, from pci.ids when it is
 * installed, else a built-in table of base classes (lspci -n style IDs).
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "pci-decode.h"

static const char *const base_class[] = {
	[0x00] = "Unclassified device",
	[0x01] = "Mass storage controller",
	[0x02] = "Network controller",
	[0x03] = "Display controller",
	[0x04] = "Multimedia controller",
	[0x05] = "Memory controller",
	[0x06] = "Bridge",
	[0x07] = "Communication controller",
	[0x08] = "Generic system peripheral",
	[0x09] = "Input device controller",
	[0x0a] = "Docking station",
	[0x0b] = "Processor",
	[0x0c] = "Serial bus controller",
	[0x0d] = "Wireless controller",
	[0x0e] = "Intelligent controller",
	[0x0f] = "Satellite communications controller",
	[0x10] = "Encryption controller",
	[0x11] = "Signal processing controller",
	[0x12] = "Processing accelerators",
	[0x13] = "Non-Essential Instrumentation",
};

struct ids {
	char vendor[96], device[128], subven[96], subdev[128];
	char cls[96], subcls[96];
};

static unsigned hexn(const char *s, int n, int *ok)
{
	unsigned v = 0;

	*ok = 0;
	for (int i = 0; i < n; i++) {
		if (!isxdigit((unsigned char)s[i]))
			return 0;
		v = v * 16 +
		    (unsigned)(isdigit((unsigned char)s[i])
				       ? s[i] - '0'
				       : (tolower((unsigned char)s[i]) - 'a' +
					  10));
	}
	*ok = 1;
	return v;
}

static void copy_name(char *dst, size_t len, const char *src)
{
	size_t i = 0;

	while (*src == ' ')
		src++;
	while (src[i] && i + 1 < len) {
		dst[i] = src[i];
		i++;
	}
	dst[i] = 0;
}

/* One pass over pci.ids; names not found stay empty. */
static void ids_lookup(const char *path, const uint8_t *cfg, struct ids *r)
{
	unsigned ven = cfg[0] | cfg[1] << 8, dev = cfg[2] | cfg[3] << 8;
	unsigned sven = cfg[0x2c] | cfg[0x2d] << 8;
	unsigned sdev = cfg[0x2e] | cfg[0x2f] << 8;
	unsigned base = cfg[0x0b], sub = cfg[0x0a];
	unsigned cur_ven = 0x10000, cur_dev = 0x10000, cur_cls = 0x100;
	char line[512];
	FILE *f;
	int ok;

	memset(r, 0, sizeof(*r));
	if (!path || !(f = fopen(path, "re")))
		return;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\r\n")] = 0;
		if (!line[0] || line[0] == '#')
			continue;
		if (line[0] == 'C' && line[1] == ' ') {
			cur_ven = 0x10000;
			cur_cls = hexn(line + 2, 2, &ok);
			if (ok && cur_cls == base)
				copy_name(r->cls, sizeof(r->cls), line + 4);
			continue;
		}
		if (line[0] != '\t') {
			cur_cls = 0x100;
			cur_ven = hexn(line, 4, &ok);
			if (!ok) {
				cur_ven = 0x10000;
				continue;
			}
			if (cur_ven == ven)
				copy_name(r->vendor, sizeof(r->vendor),
					  line + 4);
			if (cur_ven == sven)
				copy_name(r->subven, sizeof(r->subven),
					  line + 4);
			continue;
		}
		if (line[1] != '\t') {
			unsigned x =
				hexn(line + 1, cur_cls < 0x100 ? 2 : 4, &ok);
			if (!ok)
				continue;
			if (cur_cls == base && x == sub)
				copy_name(r->subcls, sizeof(r->subcls),
					  line + (cur_cls < 0x100 ? 3 : 5));
			cur_dev = x;
			if (cur_ven == ven && x == dev)
				copy_name(r->device, sizeof(r->device),
					  line + 5);
			continue;
		}
		if (cur_ven == ven && cur_dev == dev && strlen(line) > 12) {
			unsigned a = hexn(line + 2, 4, &ok);
			int ok2;
			unsigned b = hexn(line + 7, 4, &ok2);

			if (ok && ok2 && a == sven && b == sdev)
				copy_name(r->subdev, sizeof(r->subdev),
					  line + 11);
		}
	}
	fclose(f);
}

static void ven_dev(char *out, size_t len, const char *vname, const char *dname,
		    unsigned ven, unsigned dev)
{
	if (vname[0] && dname[0])
		snprintf(out, len, "%s %s", vname, dname);
	else if (vname[0])
		snprintf(out, len, "%s Device %04x", vname, dev);
	else
		snprintf(out, len, "Device %04x:%04x", ven, dev);
}

void pci_names(const struct pci_view *v, char *cls, size_t cls_len, char *vd,
	       size_t vd_len, bool numeric)
{
	const uint8_t *c = v->cfg;
	unsigned base = c[0x0b], sub = c[0x0a];
	unsigned ven = c[0] | c[1] << 8, dev = c[2] | c[3] << 8;
	struct ids r;

	ids_lookup(v->ids_path, c, &r);
	if (r.subcls[0])
		snprintf(cls, cls_len, "%s", r.subcls);
	else if (r.cls[0])
		snprintf(cls, cls_len, "%s", r.cls);
	else if (base < sizeof(base_class) / sizeof(base_class[0]) &&
		 base_class[base])
		snprintf(cls, cls_len, "%s", base_class[base]);
	else
		snprintf(cls, cls_len, "Class");
	/* lspci adds the code when the name is not the subclass's */
	if (numeric || !r.subcls[0]) {
		size_t n = strlen(cls);

		snprintf(cls + n, cls_len - n, " [%02x%02x]", base, sub);
	}
	if (numeric && !r.vendor[0])
		snprintf(vd, vd_len, "Device [%04x:%04x]", ven, dev);
	else
		ven_dev(vd, vd_len, r.vendor, r.device, ven, dev);
	if (numeric && r.vendor[0]) {
		size_t n = strlen(vd);

		snprintf(vd + n, vd_len - n, " [%04x:%04x]", ven, dev);
	}
}

void pci_subsys_name(const struct pci_view *v, char *out, size_t len,
		     bool numeric)
{
	const uint8_t *c = v->cfg;
	struct ids r;

	ids_lookup(v->ids_path, c, &r);
	/* like lspci: a subsystem equal to the device takes its name */
	if (!r.subdev[0] && !memcmp(c, c + 0x2c, 4))
		memcpy(r.subdev, r.device, sizeof(r.subdev));
	ven_dev(out, len, r.subven, r.subdev, c[0x2c] | c[0x2d] << 8,
		c[0x2e] | c[0x2f] << 8);
	if (numeric && !r.subven[0])
		snprintf(out, len, "Device [%04x:%04x]", c[0x2c] | c[0x2d] << 8,
			 c[0x2e] | c[0x2f] << 8);
	else if (numeric) {
		size_t n = strlen(out);

		snprintf(out + n, len - n, " [%04x:%04x]",
			 c[0x2c] | c[0x2d] << 8, c[0x2e] | c[0x2f] << 8);
	}
}
