/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * muser-probe - show a vfio-user device as a person wants to see it:
 * negotiated session, regions, IRQs and the PCI config space decoded like
 * lspci -vvv; or dump config space for lspci -F; or read/write registers.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "muser/client.h"
#include "pci-decode.h"

#define PROG "muser-probe"

enum { EXIT_USAGE = 2 };

struct access_op {
	bool write;
	unsigned region;
	uint64_t offset;
	uint32_t size;
	uint64_t value;
};

struct probe_opts {
	const char *socket;
	const char *config_file;
	bool dump, size_bars;
	int timeout_ms;
	struct access_op *ops;
	unsigned nops;
};

static const char *const region_names[] = {
	"BAR0", "BAR1", "BAR2", "BAR3", "BAR4", "BAR5", "ROM", "CONFIG", "VGA"};
static const char *const irq_names[] = {"INTx", "MSI", "MSI-X", "ERR", "REQ"};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: " PROG " SOCKET [OPTIONS]\n"
		"       " PROG " --config-file FILE [--dump]\n"
		"Connect to the vfio-user device server at SOCKET and show "
		"it:\n"
		"protocol version and capabilities, regions, IRQs and the PCI\n"
		"config space decoded like lspci -vvv.\n\n"
		"  -d, --dump                 config space in lspci -xxx "
		"format\n"
		"                             (for lspci -F FILE -vvv)\n"
		"  -r, --read R:OFF:SIZE      read a register, print its "
		"value\n"
		"  -w, --write R:OFF:SIZE:VAL write a register\n"
		"                             R is BAR0-5, ROM, CONFIG, VGA or "
		"an\n"
		"                             index; SIZE 1, 2, 4 or 8 (reads: "
		"up\n"
		"                             to 4096, printed as hex bytes)\n"
		"      --size-bars            also size BARs by all-ones "
		"config\n"
		"                             writes (restored afterwards)\n"
		"  -t, --timeout MS           per-request timeout (default "
		"5000)\n"
		"      --config-file FILE     decode a raw config space file\n"
		"                             instead of asking a server\n"
		"  -h, --help                 this text\n\n"
		"--read and --write may repeat; they run in order and nothing\n"
		"else is printed. Exit status: 0 ok, 1 error, 2 usage.\n");
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;

	if (!*s)
		return -EINVAL;
	errno = 0;
	*out = strtoull(s, &end, 0);
	return errno || *end || *s == '-' ? -EINVAL : 0;
}

static int parse_region(const char *s, unsigned *out)
{
	uint64_t v;

	for (unsigned i = 0; i < sizeof(region_names) / sizeof(*region_names);
	     i++) {
		if (!strcasecmp(s, region_names[i])) {
			*out = i;
			return 0;
		}
	}
	if (parse_u64(s, &v) || v > UINT32_MAX)
		return -EINVAL;
	*out = (unsigned)v;
	return 0;
}

/* "R:OFF:SIZE" or "R:OFF:SIZE:VALUE" */
static int parse_access(const char *arg, bool write, struct access_op *op)
{
	char buf[256], *f[5] = {0}, *save = NULL, *tok;
	unsigned n = 0;
	uint64_t sz;

	if (snprintf(buf, sizeof(buf), "%s", arg) >= (int)sizeof(buf))
		return -EINVAL;
	for (tok = strtok_r(buf, ":", &save); tok && n < 5;
	     tok = strtok_r(NULL, ":", &save))
		f[n++] = tok;
	if (n != (write ? 4u : 3u))
		return -EINVAL;
	memset(op, 0, sizeof(*op));
	op->write = write;
	if (parse_region(f[0], &op->region) || parse_u64(f[1], &op->offset) ||
	    parse_u64(f[2], &sz))
		return -EINVAL;
	if (write ? (sz != 1 && sz != 2 && sz != 4 && sz != 8)
		  : (sz < 1 || sz > 4096))
		return -EINVAL;
	op->size = (uint32_t)sz;
	if (write && parse_u64(f[3], &op->value))
		return -EINVAL;
	if (write && sz < 8 && op->value >> (8 * sz))
		return -ERANGE;
	return 0;
}

static const char *region_name(unsigned i, char *buf, size_t len)
{
	if (i < sizeof(region_names) / sizeof(*region_names))
		return region_names[i];
	snprintf(buf, len, "DEV%u", i);
	return buf;
}

/* ---- register access ------------------------------------------------- */

static int run_ops(mu_client_t *c, const struct probe_opts *o)
{
	for (unsigned i = 0; i < o->nops; i++) {
		const struct access_op *op = &o->ops[i];
		uint8_t buf[4096];
		char nb[16];
		int ret;

		if (op->write) {
			/* little-endian, as PCI registers are */
			for (unsigned b = 0; b < op->size; b++)
				buf[b] = (uint8_t)(op->value >> (8 * b));
			ret = mu_client_region_write(c, op->region, op->offset,
						     buf, op->size);
		} else {
			ret = mu_client_region_read(c, op->region, op->offset,
						    buf, op->size);
		}
		if (ret < 0) {
			fprintf(stderr, PROG ": %s %s:%#" PRIx64 ":%u: %s\n",
				op->write ? "write" : "read",
				region_name(op->region, nb, sizeof(nb)),
				op->offset, op->size, strerror(-ret));
			return 1;
		}
		if (op->write)
			continue;
		if (op->size <= 8 && !(op->size & (op->size - 1))) {
			uint64_t v = 0;

			for (unsigned b = 0; b < op->size; b++)
				v |= (uint64_t)buf[b] << (8 * b);
			printf("0x%0*" PRIx64 "\n", (int)op->size * 2, v);
		} else {
			for (unsigned b = 0; b < op->size; b++)
				printf("%02x%c", buf[b],
				       (b & 15) == 15 || b + 1 == op->size
					       ? '\n'
					       : ' ');
		}
	}
	return 0;
}

/* ---- the device view --------------------------------------------------- */

static void print_session(mu_client_t *c)
{
	struct mu_client_session s;

	if (mu_client_get_session(c, &s) < 0)
		return;
	printf("Protocol: vfio-user %u.%u\n", s.major, s.minor);
	printf("Capabilities:\n"
	       "\tmax_msg_fds %u, max_data_xfer_size %u, max_dma_maps %u\n"
	       "\tpgsizes %#" PRIx64 ", twin_socket %s, write_multiple %s\n",
	       s.max_msg_fds, s.max_data_xfer_size, s.max_dma_maps, s.pgsizes,
	       s.twin_socket ? "yes" : "no", s.write_multiple ? "yes" : "no");
}

static void print_region(const struct mu_client_region *r)
{
	char nb[16];

	printf("  %-2u %-6s size %#-10" PRIx64 " %c%c%c%c", r->index,
	       region_name(r->index, nb, sizeof(nb)), r->size,
	       (r->flags & MU_REGION_INFO_FLAG_READ) ? 'r' : '-',
	       (r->flags & MU_REGION_INFO_FLAG_WRITE) ? 'w' : '-',
	       (r->flags & MU_REGION_INFO_FLAG_MMAP) ? 'm' : '-',
	       (r->flags & MU_REGION_INFO_FLAG_CAPS) ? 'c' : '-');
	if (r->flags & MU_REGION_INFO_FLAG_MMAP)
		printf("  mmap offset %#" PRIx64 "%s", r->offset,
		       r->fd < 0 ? " (no fd)" : "");
	putchar('\n');
	for (uint32_t i = 0; i < r->nr_sparse && i < 64 && r->sparse; i++)
		printf("         sparse mmap %#" PRIx64 "-%#" PRIx64 "\n",
		       r->sparse[i].offset,
		       r->sparse[i].offset + r->sparse[i].size - 1);
	if (r->nr_sparse > 64)
		printf("         ... %u sparse areas in all\n", r->nr_sparse);
	if (r->has_type) {
		if (r->type & MU_REGION_TYPE_PCI_VENDOR_TYPE)
			printf("         type: PCI vendor %04x, subtype %#x\n",
			       r->type & MU_REGION_TYPE_PCI_VENDOR_MASK,
			       r->subtype);
		else
			printf("         type: %#x, subtype %#x\n", r->type,
			       r->subtype);
	}
}

static void print_irq(unsigned i, const struct mu_irq_info *q)
{
	printf("  %-2u %-6s count %-5u %s%s%s%s\n", i,
	       i < sizeof(irq_names) / sizeof(*irq_names) ? irq_names[i] : "?",
	       q->count, (q->flags & MU_IRQ_INFO_EVENTFD) ? " eventfd" : "",
	       (q->flags & MU_IRQ_INFO_MASKABLE) ? " maskable" : "",
	       (q->flags & MU_IRQ_INFO_AUTOMASKED) ? " automasked" : "",
	       (q->flags & MU_IRQ_INFO_NORESIZE) ? " noresize" : "");
}

/* Size BARs the way firmware does; restores each BAR. */
static void size_bars(mu_client_t *c, const uint8_t *cfg)
{
	const uint32_t ones = 0xffffffffu;

	printf("BAR sizes by config writes:\n");
	for (unsigned i = 0; i < 7; i++) {
		unsigned off = i < 6 ? 0x10 + 4 * i : 0x30;
		uint32_t orig, val = 0, hi = 0, orig_hi = 0;
		uint64_t mask;
		bool is64 = false;

		memcpy(&orig, cfg + off, 4);
		if (mu_client_region_write(c, MU_PCI_CONFIG_REGION_INDEX, off,
					   &ones, 4) < 0 ||
		    mu_client_region_read(c, MU_PCI_CONFIG_REGION_INDEX, off,
					  &val, 4) < 0)
			continue;
		mu_client_region_write(c, MU_PCI_CONFIG_REGION_INDEX, off,
				       &orig, 4);
		if (i < 6 && !(orig & 1) && ((orig >> 1) & 3) == 2 && i < 5) {
			is64 = true;
			memcpy(&orig_hi, cfg + off + 4, 4);
			if (mu_client_region_write(c,
						   MU_PCI_CONFIG_REGION_INDEX,
						   off + 4, &ones, 4) == 0 &&
			    mu_client_region_read(c, MU_PCI_CONFIG_REGION_INDEX,
						  off + 4, &hi, 4) == 0)
				mu_client_region_write(
					c, MU_PCI_CONFIG_REGION_INDEX, off + 4,
					&orig_hi, 4);
		}
		if (i == 6)
			mask = val & ~0x7ffull;
		else if (orig & 1)
			mask = (val & ~3ull) | 0xffff0000ull;
		else
			mask = val & ~0xfull;
		if (is64)
			mask |= (uint64_t)hi << 32;
		else
			mask |= 0xffffffff00000000ull;
		if ((uint32_t)mask)
			printf("  %-6s %#" PRIx64 "\n", region_names[i],
			       ~mask + 1);
		if (is64)
			i++;
	}
}

static int read_config(mu_client_t *c, uint8_t *cfg, size_t *len)
{
	const struct mu_client_region *r;
	size_t want;
	int ret;

	ret = mu_client_region_info(c, MU_PCI_CONFIG_REGION_INDEX, &r);
	if (ret < 0)
		return ret;
	want = r->size > PCI_CFG_MAX ? PCI_CFG_MAX : (size_t)r->size;
	if (want < 64)
		return -ENODATA;
	/* Some servers limit the config space they answer for: fall back. */
	while ((ret = mu_client_region_read(c, MU_PCI_CONFIG_REGION_INDEX, 0,
					    cfg, want)) < 0 &&
	       want > 64 && ret != -ENOTCONN && ret != -ETIMEDOUT)
		want = want > 256 ? 256 : 64;
	*len = want;
	return ret;
}

static void fill_bar_hints(mu_client_t *c, struct pci_view *v,
			   unsigned nregions)
{
	for (unsigned i = 0; i <= MU_PCI_ROM_REGION_INDEX && i < nregions;
	     i++) {
		const struct mu_client_region *r;

		if (mu_client_region_info(c, i, &r) == 0) {
			v->bars[i].size = r->size;
			v->bars[i].mmap = r->flags & MU_REGION_INFO_FLAG_MMAP;
		}
	}
}

static const char *ids_path(void)
{
	static const char *const paths[] = {"/usr/share/misc/pci.ids",
					    "/usr/share/hwdata/pci.ids",
					    "/usr/share/pci.ids"};
	const char *env = getenv("MUSER_PCI_IDS");

	if (env)
		return *env ? env : NULL;
	for (unsigned i = 0; i < 3; i++)
		if (!access(paths[i], R_OK))
			return paths[i];
	return NULL;
}

static int probe(mu_client_t *c, const struct probe_opts *o)
{
	static uint8_t cfg[PCI_CFG_MAX];
	struct pci_view v = {.cfg = cfg, .ids_path = ids_path()};
	struct mu_device_info di;
	int ret, status = 0;

	ret = mu_client_device_info(c, &di);
	if (ret < 0) {
		fprintf(stderr, PROG ": DEVICE_GET_INFO: %s\n", strerror(-ret));
		return 1;
	}
	if (!o->dump) {
		print_session(c);
		printf("Device: flags%s%s (%#x), %u regions, %u IRQ indexes\n",
		       (di.flags & MU_DEVICE_FLAGS_PCI) ? " PCI" : "",
		       (di.flags & MU_DEVICE_FLAGS_RESET) ? " RESET" : "",
		       di.flags, di.num_regions, di.num_irqs);
		printf("Regions (flags: r read, w write, m mmap, c caps):\n");
		/* a hostile server may claim 2^32 regions: bound the walk */
		for (uint32_t i = 0; i < di.num_regions && i < 256; i++) {
			const struct mu_client_region *r;

			ret = mu_client_region_info(c, i, &r);
			if (ret < 0) {
				printf("  %-2u error: %s\n", i, strerror(-ret));
				status = 1;
				if (!mu_client_is_connected(c))
					return 1;
				continue;
			}
			if (r->size || r->flags)
				print_region(r);
		}
		if (di.num_regions > 256)
			printf("  ... %u regions claimed, first 256 shown\n",
			       di.num_regions);
		printf("IRQs:\n");
		for (uint32_t i = 0; i < di.num_irqs && i < 64; i++) {
			struct mu_irq_info q;

			ret = mu_client_irq_info(c, i, &q);
			if (ret < 0) {
				printf("  %-2u error: %s\n", i, strerror(-ret));
				status = 1;
				if (!mu_client_is_connected(c))
					return 1;
				continue;
			}
			if (q.count)
				print_irq(i, &q);
		}
	}
	if (!(di.flags & MU_DEVICE_FLAGS_PCI) ||
	    di.num_regions <= MU_PCI_CONFIG_REGION_INDEX) {
		if (o->dump) {
			fprintf(stderr, PROG ": not a PCI device\n");
			return 1;
		}
		return status;
	}
	ret = read_config(c, cfg, &v.len);
	if (ret < 0) {
		fprintf(stderr, PROG ": reading config space: %s\n",
			strerror(-ret));
		return 1;
	}
	fill_bar_hints(c, &v, di.num_regions);
	if (o->dump) {
		pci_print_dump(stdout, &v);
		return status;
	}
	printf("PCI config space (%zu bytes):\n", v.len);
	pci_print_verbose(stdout, &v);
	if (o->size_bars)
		size_bars(c, cfg);
	return status;
}

static int decode_file(const struct probe_opts *o)
{
	static uint8_t cfg[PCI_CFG_MAX];
	struct pci_view v = {.cfg = cfg, .ids_path = ids_path()};
	FILE *f = strcmp(o->config_file, "-") ? fopen(o->config_file, "rbe")
					      : stdin;

	if (!f) {
		fprintf(stderr, PROG ": %s: %s\n", o->config_file,
			strerror(errno));
		return 1;
	}
	v.len = fread(cfg, 1, sizeof(cfg), f);
	if (f != stdin)
		fclose(f);
	if (o->dump)
		pci_print_dump(stdout, &v);
	else
		pci_print_verbose(stdout, &v);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{"dump", no_argument, NULL, 'd'},
		{"read", required_argument, NULL, 'r'},
		{"write", required_argument, NULL, 'w'},
		{"timeout", required_argument, NULL, 't'},
		{"size-bars", no_argument, NULL, 'S'},
		{"config-file", required_argument, NULL, 'F'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct probe_opts o = {.timeout_ms = 5000};
	struct mu_client_opts co = {.struct_size = sizeof(co)};
	mu_client_t *c = NULL;
	int opt, ret;
	uint64_t v;

	o.ops = calloc((size_t)argc, sizeof(*o.ops));
	if (!o.ops)
		return 1;
	while ((opt = getopt_long(argc, argv, "dr:w:t:h", lopts, NULL)) != -1) {
		switch (opt) {
		case 'd':
			o.dump = true;
			break;
		case 'r':
		case 'w':
			ret = parse_access(optarg, opt == 'w', &o.ops[o.nops]);
			if (ret) {
				fprintf(stderr,
					PROG ": bad --%s '%s'%s (see --help)\n",
					opt == 'w' ? "write" : "read", optarg,
					ret == -ERANGE ? ": value too big"
						       : "");
				return EXIT_USAGE;
			}
			o.nops++;
			break;
		case 't':
			if (parse_u64(optarg, &v) || v > INT32_MAX) {
				fprintf(stderr, PROG ": bad --timeout\n");
				return EXIT_USAGE;
			}
			o.timeout_ms = (int)v;
			break;
		case 'S':
			o.size_bars = true;
			break;
		case 'F':
			o.config_file = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (o.config_file) {
		if (optind != argc || o.nops) {
			usage(stderr);
			return EXIT_USAGE;
		}
		ret = decode_file(&o);
		free(o.ops);
		return ret;
	}
	if (optind + 1 != argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	o.socket = argv[optind];
	co.timeout_ms = o.timeout_ms;
	co.log_level = 3; /* errors only: we report failures ourselves */
	ret = mu_client_connect(&c, o.socket, &co);
	if (ret < 0) {
		fprintf(stderr, PROG ": cannot connect to %s: %s\n", o.socket,
			strerror(-ret));
		free(o.ops);
		return 1;
	}
	ret = o.nops ? run_ops(c, &o) : probe(c, &o);
	mu_client_destroy(c);
	free(o.ops);
	if (fflush(stdout) == EOF)
		ret = 1;
	return ret;
}
