/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * pci-decode.c - lspci -vvv style decoding of a type 0 config space.
 *
 * All reads go through cfg8/16/32, which return 0 past the end of what
 * the device gave us; capability walks keep a visited map and a step
 * limit, so a hostile config space can neither overrun nor loop.
 */
#include <stdio.h>
#include <string.h>

#include "pci-decode.h"

static unsigned cfg8(const struct pci_view *v, unsigned off)
{
	return off < v->len && off < PCI_CFG_MAX ? v->cfg[off] : 0;
}

static unsigned cfg16(const struct pci_view *v, unsigned off)
{
	return cfg8(v, off) | cfg8(v, off + 1) << 8;
}

static uint32_t cfg32(const struct pci_view *v, unsigned off)
{
	return (uint32_t)cfg16(v, off) | (uint32_t)cfg16(v, off + 2) << 16;
}

static char pm(uint32_t val, uint32_t bit)
{
	return (val & bit) ? '+' : '-';
}

static const char *fmt_size(char *buf, size_t len, uint64_t sz)
{
	static const char units[] = " KMGTPE";
	int u = 0;

	while (sz >= 1024 && !(sz % 1024) && u < 6) {
		sz /= 1024;
		u++;
	}
	if (u)
		snprintf(buf, len, "%llu%c", (unsigned long long)sz, units[u]);
	else
		snprintf(buf, len, "%llu", (unsigned long long)sz);
	return buf;
}

/* ---- header ------------------------------------------------------------ */

static void print_bars(FILE *f, const struct pci_view *v)
{
	unsigned cmd = cfg16(v, 0x04);
	unsigned htype = cfg8(v, 0x0e) & 0x7f;
	unsigned nbars = htype == 0 ? 6 : htype == 1 ? 2 : 0;
	char sz[32];

	for (unsigned i = 0; i < nbars; i++) {
		uint32_t bar = cfg32(v, 0x10 + 4 * i);
		uint64_t size = v->bars[i].size;
		unsigned idx = i;

		if (!bar && !size)
			continue;
		if (bar & 1) {
			fprintf(f, "\tRegion %u: I/O ports at ", idx);
			if (bar & ~3u)
				fprintf(f, "%04x", bar & ~3u);
			else
				fprintf(f, "<unassigned>");
			if (!(cmd & 1))
				fprintf(f, " [disabled]");
		} else {
			unsigned type = (bar >> 1) & 3;
			uint64_t addr = bar & ~0xfull;

			if (type == 2 && i + 1 < nbars)
				addr |= (uint64_t)cfg32(v, 0x14 + 4 * i++)
					<< 32;
			fprintf(f, "\tRegion %u: Memory at ", idx);
			if (addr)
				fprintf(f, "%08llx", (unsigned long long)addr);
			else
				fprintf(f, "<unassigned>");
			fprintf(f, " (%s, %s)",
				type == 2   ? "64-bit"
				: type == 1 ? "low-1M"
				: type == 0 ? "32-bit"
					    : "type 3",
				(bar & 8) ? "prefetchable"
					  : "non-prefetchable");
			if (!(cmd & 2))
				fprintf(f, " [disabled]");
		}
		if (size)
			fprintf(f, " [size=%s]",
				fmt_size(sz, sizeof(sz), size));
		fputc('\n', f);
	}
	if (htype == 0) {
		uint32_t rom = cfg32(v, 0x30);
		uint64_t size = v->bars[6].size;

		if (rom || size) {
			fprintf(f, "\tExpansion ROM at ");
			if (rom & ~0x7ffu)
				fprintf(f, "%08x", rom & ~0x7ffu);
			else
				fprintf(f, "<unassigned>");
			if (!(rom & 1))
				fprintf(f, " [disabled]");
			if (size)
				fprintf(f, " [size=%s]",
					fmt_size(sz, sizeof(sz), size));
			fputc('\n', f);
		}
	}
}

static void print_header(FILE *f, const struct pci_view *v)
{
	static const char *const devsel[] = {"fast", "medium", "slow", "??"};
	unsigned cmd = cfg16(v, 0x04), st = cfg16(v, 0x06);
	unsigned pin = cfg8(v, 0x3d);
	char sub[256];

	if ((cfg8(v, 0x0e) & 0x7f) == 0 && cfg16(v, 0x2c) &&
	    cfg16(v, 0x2c) != 0xffff) {
		pci_subsys_name(v, sub, sizeof(sub), true);
		fprintf(f, "\tSubsystem: %s\n", sub);
	}
	fprintf(f,
		"\tControl: I/O%c Mem%c BusMaster%c SpecCycle%c MemWINV%c "
		"VGASnoop%c ParErr%c Stepping%c SERR%c FastB2B%c DisINTx%c\n",
		pm(cmd, 1), pm(cmd, 2), pm(cmd, 4), pm(cmd, 8), pm(cmd, 0x10),
		pm(cmd, 0x20), pm(cmd, 0x40), pm(cmd, 0x80), pm(cmd, 0x100),
		pm(cmd, 0x200), pm(cmd, 0x400));
	fprintf(f,
		"\tStatus: Cap%c 66MHz%c UDF%c FastB2B%c ParErr%c DEVSEL=%s "
		">TAbort%c <TAbort%c <MAbort%c >SERR%c <PERR%c INTx%c\n",
		pm(st, 0x10), pm(st, 0x20), pm(st, 0x40), pm(st, 0x80),
		pm(st, 0x100), devsel[(st >> 9) & 3], pm(st, 0x800),
		pm(st, 0x1000), pm(st, 0x2000), pm(st, 0x4000), pm(st, 0x8000),
		pm(st, 0x8));
	if (cmd & 4) {
		fprintf(f, "\tLatency: %u", cfg8(v, 0x0d));
		if (cfg8(v, 0x0c))
			fprintf(f, ", Cache Line Size: %u bytes",
				cfg8(v, 0x0c) * 4);
		fputc('\n', f);
	}
	if (pin)
		fprintf(f, "\tInterrupt: pin %c routed to IRQ %u\n",
			pin <= 4 ? 'A' + pin - 1 : '?', cfg8(v, 0x3c));
	print_bars(f, v);
}

/* ---- standard capabilities ------------------------------------------- */

/* The cap body must fit in the 256-byte space: else say so and skip. */
static int cap_fits(FILE *f, unsigned where, unsigned need)
{
	if (where + need <= 256)
		return 1;
	fprintf(f, "\t\t<truncated: needs %u bytes>\n", need);
	return 0;
}

static void cap_pm(FILE *f, const struct pci_view *v, unsigned p)
{
	static const unsigned aux[] = {0, 55, 100, 160, 220, 270, 320, 375};
	unsigned pmc = cfg16(v, p + 2), pmcsr;

	fprintf(f, "Power Management version %u\n", pmc & 7);
	if (!cap_fits(f, p, 8))
		return;
	pmcsr = cfg16(v, p + 4);
	fprintf(f,
		"\t\tFlags: PMEClk%c DSI%c D1%c D2%c AuxCurrent=%umA "
		"PME(D0%c,D1%c,D2%c,D3hot%c,D3cold%c)\n",
		pm(pmc, 8), pm(pmc, 0x20), pm(pmc, 0x200), pm(pmc, 0x400),
		aux[(pmc >> 6) & 7], pm(pmc, 0x800), pm(pmc, 0x1000),
		pm(pmc, 0x2000), pm(pmc, 0x4000), pm(pmc, 0x8000));
	fprintf(f,
		"\t\tStatus: D%u NoSoftRst%c PME-Enable%c DSel=%u DScale=%u "
		"PME%c\n",
		pmcsr & 3, pm(pmcsr, 8), pm(pmcsr, 0x100), (pmcsr >> 9) & 15,
		(pmcsr >> 13) & 3, pm(pmcsr, 0x8000));
}

static void cap_msi(FILE *f, const struct pci_view *v, unsigned p)
{
	unsigned ctl = cfg16(v, p + 2);
	int is64 = !!(ctl & 0x80), mask = !!(ctl & 0x100);
	unsigned data_off = is64 ? 12 : 8;
	unsigned need = data_off + 2 + (mask ? 10 : 0);
	uint64_t addr;

	fprintf(f, "MSI: Enable%c Count=%u/%u Maskable%c 64bit%c\n", pm(ctl, 1),
		1u << ((ctl >> 4) & 7), 1u << ((ctl >> 1) & 7), pm(ctl, 0x100),
		pm(ctl, 0x80));
	if (!cap_fits(f, p, need))
		return;
	addr = cfg32(v, p + 4);
	if (is64)
		addr |= (uint64_t)cfg32(v, p + 8) << 32;
	fprintf(f, "\t\tAddress: %0*llx  Data: %04x\n", is64 ? 16 : 8,
		(unsigned long long)addr, cfg16(v, p + data_off));
	if (mask)
		fprintf(f, "\t\tMasking: %08x  Pending: %08x\n",
			cfg32(v, p + data_off + 4), cfg32(v, p + data_off + 8));
}

static void cap_msix(FILE *f, const struct pci_view *v, unsigned p)
{
	unsigned ctl = cfg16(v, p + 2);
	uint32_t tbl, pba;

	fprintf(f, "MSI-X: Enable%c Count=%u Masked%c\n", pm(ctl, 0x8000),
		(ctl & 0x7ff) + 1, pm(ctl, 0x4000));
	if (!cap_fits(f, p, 12))
		return;
	tbl = cfg32(v, p + 4);
	pba = cfg32(v, p + 8);
	fprintf(f, "\t\tVector table: BAR=%u offset=%08x\n", tbl & 7,
		tbl & ~7u);
	fprintf(f, "\t\tPBA: BAR=%u offset=%08x\n", pba & 7, pba & ~7u);
}

static const char *pcie_type(unsigned t)
{
	switch (t) {
	case 0x0:
		return "Endpoint";
	case 0x1:
		return "Legacy Endpoint";
	case 0x4:
		return "Root Port (Slot-)";
	case 0x5:
		return "Upstream Port";
	case 0x6:
		return "Downstream Port (Slot-)";
	case 0x7:
		return "PCI-Express to PCI/PCI-X Bridge";
	case 0x8:
		return "PCI/PCI-X to PCI-Express Bridge";
	case 0x9:
		return "Root Complex Integrated Endpoint";
	case 0xa:
		return "Root Complex Event Collector";
	default:
		return "Unknown type";
	}
}

static void cap_express(FILE *f, const struct pci_view *v, unsigned p)
{
	static const char *const l0s[] = {"<64ns",  "<128ns",	"<256ns",
					  "<512ns", "<1us",	"<2us",
					  "<4us",   "unlimited"};
	static const char *const l1[] = {"<1us",  "<2us",     "<4us",
					 "<8us",  "<16us",    "<32us",
					 "<64us", "unlimited"};
	static const char *const speed[] = {"unknown", "2.5GT/s", "5GT/s",
					    "8GT/s",   "16GT/s",  "32GT/s",
					    "64GT/s",  "unknown"};
	unsigned cap = cfg16(v, p + 2), type = (cap >> 4) & 15;
	uint32_t dc, lc;
	unsigned ctl, sta, lsta;

	fprintf(f, "Express (v%u) %s, MSI %02x\n", cap & 15, pcie_type(type),
		(cap >> 9) & 0x1f);
	if (!cap_fits(f, p, 0x14))
		return;
	dc = cfg32(v, p + 4);
	ctl = cfg16(v, p + 8);
	sta = cfg16(v, p + 10);
	fprintf(f, "\t\tDevCap:\tMaxPayload %u bytes, PhantFunc %u",
		128u << (dc & 7), (1u << ((dc >> 3) & 3)) - 1);
	if (type == 0 || type == 1 || type == 9)
		fprintf(f, ", Latency L0s %s, L1 %s", l0s[(dc >> 6) & 7],
			l1[(dc >> 9) & 7]);
	fprintf(f,
		"\n\t\t\tExtTag%c AttnBtn%c AttnInd%c PwrInd%c RBE%c "
		"FLReset%c\n",
		pm(dc, 0x20), pm(dc, 0x1000), pm(dc, 0x2000), pm(dc, 0x4000),
		pm(dc, 0x8000), pm(dc, 0x10000000));
	fprintf(f,
		"\t\tDevCtl:\tCorrErr%c NonFatalErr%c FatalErr%c UnsupReq%c\n"
		"\t\t\tRlxdOrd%c ExtTag%c PhantFunc%c AuxPwr%c NoSnoop%c",
		pm(ctl, 1), pm(ctl, 2), pm(ctl, 4), pm(ctl, 8), pm(ctl, 0x10),
		pm(ctl, 0x100), pm(ctl, 0x200), pm(ctl, 0x400), pm(ctl, 0x800));
	if (dc & 0x10000000)
		fprintf(f, " FLReset%c", pm(ctl, 0x8000));
	fprintf(f, "\n\t\t\tMaxPayload %u bytes, MaxReadReq %u bytes\n",
		128u << ((ctl >> 5) & 7), 128u << ((ctl >> 12) & 7));
	fprintf(f,
		"\t\tDevSta:\tCorrErr%c NonFatalErr%c FatalErr%c UnsupReq%c "
		"AuxPwr%c TransPend%c\n",
		pm(sta, 1), pm(sta, 2), pm(sta, 4), pm(sta, 8), pm(sta, 0x10),
		pm(sta, 0x20));
	lc = cfg32(v, p + 0x0c);
	lsta = cfg16(v, p + 0x12);
	fprintf(f, "\t\tLnkCap:\tPort #%u, Speed %s, Width x%u\n", lc >> 24,
		speed[lc & 7], (lc >> 4) & 0x3f);
	fprintf(f, "\t\tLnkSta:\tSpeed %s, Width x%u\n", speed[lsta & 7],
		(lsta >> 4) & 0x3f);
}

static const char *cap_name(unsigned id)
{
	switch (id) {
	case 0x02:
		return "AGP";
	case 0x03:
		return "Vital Product Data";
	case 0x04:
		return "Slot ID";
	case 0x06:
		return "CompactPCI hot-swap <?>";
	case 0x07:
		return "PCI-X";
	case 0x08:
		return "HyperTransport";
	case 0x0a:
		return "Debug port";
	case 0x0c:
		return "PCI Hot-plug";
	case 0x0e:
		return "AGP3";
	case 0x12:
		return "SATA HBA";
	case 0x13:
		return "PCI Advanced Features";
	case 0x14:
		return "Enhanced Allocation";
	default:
		return NULL;
	}
}

static void print_caps(FILE *f, const struct pci_view *v)
{
	uint8_t seen[256 / 4] = {0};
	unsigned p, steps = 0;

	if (!(cfg16(v, 0x06) & 0x10))
		return;
	if (v->len < 0x40) {
		fprintf(f, "\tCapabilities: <access denied>\n");
		return;
	}
	p = cfg8(v, 0x34) & ~3u;
	while (p) {
		unsigned id, next;
		const char *name;

		if (p < 0x40 || p > 0xfc) {
			fprintf(f, "\tCapabilities: [%02x] <chain broken>\n",
				p);
			return;
		}
		if (seen[p / 4] || ++steps > 48) {
			fprintf(f, "\tCapabilities: [%02x] <chain looped>\n",
				p);
			return;
		}
		seen[p / 4] = 1;
		id = cfg8(v, p);
		next = cfg8(v, p + 1) & ~3u;
		fprintf(f, "\tCapabilities: [%02x] ", p);
		switch (id) {
		case 0x01:
			cap_pm(f, v, p);
			break;
		case 0x05:
			cap_msi(f, v, p);
			break;
		case 0x09:
			fprintf(f,
				"Vendor Specific Information: Len=%02x <?>\n",
				cfg8(v, p + 2));
			break;
		case 0x0d:
			fprintf(f, "Subsystem: Device %04x:%04x\n",
				cfg16(v, p + 4), cfg16(v, p + 6));
			break;
		case 0x10:
			cap_express(f, v, p);
			break;
		case 0x11:
			cap_msix(f, v, p);
			break;
		case 0xff:
			fprintf(f, "<chain broken>\n");
			return;
		default:
			name = cap_name(id);
			if (name)
				fprintf(f, "%s\n", name);
			else
				fprintf(f, "#%02x [%04x]\n", id,
					cfg16(v, p + 2));
		}
		p = next;
	}
}

/* ---- extended capabilities ----------------------------------------------- */

static const char *ecap_name(unsigned id)
{
	switch (id) {
	case 0x01:
		return "Advanced Error Reporting";
	case 0x02:
		return "Virtual Channel";
	case 0x04:
		return "Power Budgeting <?>";
	case 0x05:
		return "Root Complex Link";
	case 0x0d:
		return "Access Control Services";
	case 0x0e:
		return "Alternative Routing-ID Interpretation (ARI)";
	case 0x0f:
		return "Address Translation Service (ATS)";
	case 0x10:
		return "Single Root I/O Virtualization (SR-IOV)";
	case 0x13:
		return "Page Request Interface (PRI)";
	case 0x15:
		return "Physical Resizable BAR";
	case 0x17:
		return "Transaction Processing Hints";
	case 0x18:
		return "Latency Tolerance Reporting";
	case 0x19:
		return "Secondary PCI Express";
	case 0x1b:
		return "Process Address Space ID (PASID)";
	case 0x1e:
		return "L1 PM Substates";
	case 0x25:
		return "Data Link Feature <?>";
	default:
		return NULL;
	}
}

static void print_ext_caps(FILE *f, const struct pci_view *v)
{
	uint8_t seen[PCI_CFG_MAX / 4] = {0};
	unsigned p = 0x100, steps = 0;

	if (v->len <= 0x100)
		return;
	if (!cfg32(v, p) || cfg32(v, p) == 0xffffffffu)
		return;
	while (p) {
		uint32_t hdr, t1, t2;
		unsigned id, ver;
		const char *name;

		if (p < 0x100 || p > PCI_CFG_MAX - 4) {
			fprintf(f, "\tCapabilities: [%03x] <chain broken>\n",
				p);
			return;
		}
		if (seen[p / 4] || ++steps > (PCI_CFG_MAX - 0x100) / 4) {
			fprintf(f, "\tCapabilities: [%03x] <chain looped>\n",
				p);
			return;
		}
		seen[p / 4] = 1;
		hdr = cfg32(v, p);
		if (hdr == 0xffffffffu) {
			fprintf(f, "\tCapabilities: [%03x] <chain broken>\n",
				p);
			return;
		}
		id = hdr & 0xffff;
		ver = (hdr >> 16) & 15;
		fprintf(f, "\tCapabilities: [%03x v%u] ", p, ver);
		switch (id) {
		case 0x03:
			t1 = cfg32(v, p + 4);
			t2 = cfg32(v, p + 8);
			fprintf(f,
				"Device Serial Number "
				"%02x-%02x-%02x-%02x-%02x-%02x-%02x-%02x\n",
				t2 >> 24, (t2 >> 16) & 0xff, (t2 >> 8) & 0xff,
				t2 & 0xff, t1 >> 24, (t1 >> 16) & 0xff,
				(t1 >> 8) & 0xff, t1 & 0xff);
			break;
		case 0x0b:
			t1 = cfg32(v, p + 4);
			fprintf(f,
				"Vendor Specific Information: ID=%04x Rev=%u "
				"Len=%03x <?>\n",
				t1 & 0xffff, (t1 >> 16) & 15, t1 >> 20);
			break;
		default:
			name = ecap_name(id);
			if (name)
				fprintf(f, "%s\n", name);
			else
				fprintf(f, "Extended Capability ID %#02x\n",
					id);
		}
		p = (hdr >> 20) & ~3u;
	}
}

/* ---- entry points ---------------------------------------------------- */

static void print_title(FILE *f, const struct pci_view *v)
{
	char cls[128], vd[256];

	pci_names(v, cls, sizeof(cls), vd, sizeof(vd), true);
	fprintf(f, "00:00.0 %s: %s", cls, vd);
	if (cfg8(v, 0x08))
		fprintf(f, " (rev %02x)", cfg8(v, 0x08));
	if (cfg8(v, 0x09))
		fprintf(f, " (prog-if %02x)", cfg8(v, 0x09));
	fputc('\n', f);
}

void pci_print_verbose(FILE *f, const struct pci_view *v)
{
	print_title(f, v);
	if (v->len < 0x40) {
		fprintf(f, "\t<config space too short: %zu bytes>\n", v->len);
		return;
	}
	print_header(f, v);
	print_caps(f, v);
	print_ext_caps(f, v);
	fputc('\n', f);
}

void pci_print_dump(FILE *f, const struct pci_view *v)
{
	char cls[128], vd[256];
	size_t n = v->len > 256 ? PCI_CFG_MAX : v->len > 64 ? 256 : 64;

	pci_names(v, cls, sizeof(cls), vd, sizeof(vd), false);
	fprintf(f, "00:00.0 %s: %s", cls, vd);
	if (cfg8(v, 0x08))
		fprintf(f, " (rev %02x)", cfg8(v, 0x08));
	fputc('\n', f);
	for (size_t i = 0; i < n; i++) {
		if (!(i & 15))
			fprintf(f, "%02zx:", i);
		fprintf(f, " %02x", cfg8(v, (unsigned)i));
		if ((i & 15) == 15)
			fputc('\n', f);
	}
	fputc('\n', f);
}
