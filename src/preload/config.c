/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * config.c - which /dev/vfio/N groups are muser devices, and where their
 * servers listen.
 *
 * A muser "sysfsdev" directory (made by scripts/muser-vfio-dir) holds
 *   iommu_group  -> ../../kernel/iommu_groups/N   (dangling symlink)
 *   muser-socket    the server's socket path, one line
 * and QEMU is given -device vfio-pci,sysfsdev=DIR. The device name is
 * DIR's basename. Group N is resolved, first match wins, from:
 *   1. MUSER_VFIO_GROUP_N=SOCKET or =DIR in the environment;
 *   2. a directory QEMU itself examined: it readlink()s DIR/iommu_group
 *      just before it opens /dev/vfio/N, and we watch that;
 *   3. the registry of the helper, $MUSER_VFIO_REGISTRY (default
 *      /tmp/muser-vfio-groups): N -> DIR symlinks owned by us or root.
 * See docs/qemu.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "preload.h"

#define MP_SOCKET_FILE "muser-socket"
#define MP_LINK_FILE "iommu_group"
#define MP_DEFAULT_REGISTRY "/tmp/muser-vfio-groups"
#define MP_MAX_LEARNED 64

struct mp_learned {
	int num;
	struct mp_devcfg cfg;
};

static pthread_mutex_t mp_cfg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mp_learned mp_learned[MP_MAX_LEARNED];
static unsigned mp_nlearned;

static int mp_parse_num(const char *s)
{
	long v = 0;

	if (!*s || (s[0] == '0' && s[1]))
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (*s - '0');
		if (v > 0x7fffffff)
			return -1;
	}
	return (int)v;
}

int mp_config_group_path(const char *path)
{
	if (strncmp(path, "/dev/vfio/", 10) != 0)
		return -1;
	return mp_parse_num(path + 10);
}

/* The basename of dir, ignoring trailing slashes (as QEMU's
 * g_path_get_basename does). */
static void mp_basename(const char *dir, char *out, size_t cap)
{
	size_t end = strlen(dir), start;

	while (end > 1 && dir[end - 1] == '/')
		end--;
	start = end;
	while (start > 0 && dir[start - 1] != '/')
		start--;
	if (end - start >= cap)
		end = start + cap - 1;
	memcpy(out, dir + start, end - start);
	out[end - start] = '\0';
}

/* The group number a readlink target names: its basename. */
static int mp_link_num(const char *target)
{
	char base[NAME_MAX + 1];

	mp_basename(target, base, sizeof(base));
	return mp_parse_num(base);
}

/* Read DIR/muser-socket and check DIR/iommu_group names group num. */
static int mp_read_dir(const char *dir, int num, struct mp_devcfg *cfg)
{
	char path[PATH_MAX], target[PATH_MAX], sock[PATH_MAX];
	ssize_t n;
	int fd;

	if (snprintf(path, sizeof(path), "%s/" MP_LINK_FILE, dir) >=
	    (int)sizeof(path))
		return -ENAMETOOLONG;
	n = mp_real.readlink(path, target, sizeof(target) - 1);
	if (n <= 0)
		return -ENOENT;
	target[n] = '\0';
	if (num >= 0 && mp_link_num(target) != num)
		return -ENOENT;

	snprintf(path, sizeof(path), "%s/" MP_SOCKET_FILE, dir);
	fd = mp_real.open(path, O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0)
		return -ENOENT;
	n = read(fd, sock, sizeof(sock) - 1);
	mp_real.close(fd);
	if (n <= 0)
		return -ENOENT;
	sock[n] = '\0';
	sock[strcspn(sock, "\n")] = '\0';
	if (!sock[0])
		return -ENOENT;
	if (sock[0] == '/')
		snprintf(cfg->socket, sizeof(cfg->socket), "%s", sock);
	else if (snprintf(cfg->socket, sizeof(cfg->socket), "%s/%s", dir,
			  sock) >= (int)sizeof(cfg->socket))
		return -ENAMETOOLONG;
	mp_basename(dir, cfg->name, sizeof(cfg->name));
	snprintf(cfg->source, sizeof(cfg->source), "%s", dir);
	return 0;
}

void mp_config_learn_link(const char *path, const char *target, size_t len)
{
	static const char suffix[] = "/" MP_LINK_FILE;
	size_t plen = strlen(path), sl = sizeof(suffix) - 1;
	char dir[PATH_MAX], tgt[PATH_MAX];
	struct mp_devcfg cfg;
	unsigned i;
	int num;

	if (plen < sl || plen - sl >= sizeof(dir) ||
	    strcmp(path + plen - sl, suffix) != 0 || len >= sizeof(tgt))
		return;
	memcpy(tgt, target, len);
	tgt[len] = '\0';
	num = mp_link_num(tgt);
	if (num < 0)
		return;
	memcpy(dir, path, plen - sl);
	dir[plen - sl] = '\0';
	if (!dir[0])
		strcpy(dir, "/");
	/* A real device's sysfs directory has no muser-socket. */
	if (mp_read_dir(dir, num, &cfg) < 0)
		return;

	pthread_mutex_lock(&mp_cfg_lock);
	for (i = 0; i < mp_nlearned; i++)
		if (mp_learned[i].num == num)
			break;
	if (i == mp_nlearned && mp_nlearned < MP_MAX_LEARNED)
		mp_nlearned++;
	if (i < mp_nlearned) {
		mp_learned[i].num = num;
		mp_learned[i].cfg = cfg;
	}
	pthread_mutex_unlock(&mp_cfg_lock);
	mp_debug("group %d is %s (server %s)", num, dir, cfg.socket);
}

static int mp_from_env(int num, struct mp_devcfg *cfg)
{
	char var[64];
	const char *v;
	struct stat st;

	snprintf(var, sizeof(var), "MUSER_VFIO_GROUP_%d", num);
	v = getenv(var);
	if (!v || !*v)
		return -ENOENT;
	if (stat(v, &st) == 0 && S_ISDIR(st.st_mode)) {
		if (mp_read_dir(v, -1, cfg) < 0) {
			mp_log(MP_ERR, "%s=%s: no %s file in that directory",
			       var, v, MP_SOCKET_FILE);
			return -ENOENT;
		}
	} else {
		snprintf(cfg->socket, sizeof(cfg->socket), "%s", v);
		cfg->name[0] = '\0';
	}
	snprintf(cfg->source, sizeof(cfg->source), "%s", var);
	return 0;
}

static int mp_from_registry(int num, struct mp_devcfg *cfg)
{
	const char *reg = getenv("MUSER_VFIO_REGISTRY");
	char path[PATH_MAX], dir[PATH_MAX];
	struct stat st;
	ssize_t n;

	if (!reg || !*reg)
		reg = MP_DEFAULT_REGISTRY;
	snprintf(path, sizeof(path), "%s/%d", reg, num);
	/* The registry is shared: only trust our own or root's entries. */
	if (lstat(path, &st) < 0 || !S_ISLNK(st.st_mode) ||
	    (st.st_uid != geteuid() && st.st_uid != 0))
		return -ENOENT;
	n = mp_real.readlink(path, dir, sizeof(dir) - 1);
	if (n <= 0)
		return -ENOENT;
	dir[n] = '\0';
	return mp_read_dir(dir, num, cfg);
}

int mp_config_lookup(int num, struct mp_devcfg *cfg)
{
	unsigned i;

	if (mp_from_env(num, cfg) == 0)
		return 0;
	pthread_mutex_lock(&mp_cfg_lock);
	for (i = 0; i < mp_nlearned; i++) {
		if (mp_learned[i].num == num) {
			*cfg = mp_learned[i].cfg;
			pthread_mutex_unlock(&mp_cfg_lock);
			return 0;
		}
	}
	pthread_mutex_unlock(&mp_cfg_lock);
	return mp_from_registry(num, cfg);
}
