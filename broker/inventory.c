/* SPDX-License-Identifier: MIT */
#include "broker/inventory.h"
#include "broker/beneath.h"
#include "broker/cleanup.h"
#include "broker/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int inventory_new(const char *sysfs_root, const char *dev_root, struct inventory **ret)
{
	_cleanup_free_ char *dev_real = NULL;
	struct inventory *inv;

	inv = calloc(1, sizeof(*inv));
	if (!inv)
		return -ENOMEM;
	inv->sysfs_fd = inv->dev_fd = -1;
	inv->sysfs_root = strdup(sysfs_root);
	inv->dev_root = strdup(dev_root);
	if (!inv->sysfs_root || !inv->dev_root) {
		inventory_free(inv);
		return -ENOMEM;
	}
	inv->sysfs_fd = open(sysfs_root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (inv->sysfs_fd < 0) {
		int r = log_error_errno(errno, "Failed to open sysfs root %s: %m", sysfs_root);

		inventory_free(inv);
		return r;
	}
	inv->dev_fd = open(dev_root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (inv->dev_fd < 0) {
		int r = log_error_errno(errno, "Failed to open dev root %s: %m", dev_root);

		inventory_free(inv);
		return r;
	}
	/* Regular files stand in for device nodes only in a tree that is not the real /dev. */
	dev_real = realpath(dev_root, NULL);
	inv->simulated = !dev_real || strcmp(dev_real, "/dev") != 0;
	*ret = inv;
	return 0;
}

struct inventory *inventory_free(struct inventory *inv)
{
	if (!inv)
		return NULL;
	safe_close(inv->sysfs_fd);
	safe_close(inv->dev_fd);
	free(inv->sysfs_root);
	free(inv->dev_root);
	free(inv);
	return NULL;
}

static int compare_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Open a directory beneath the sysfs root for reading its entries. */
static int inventory_opendir(struct inventory *inv, const char *path, DIR **ret)
{
	int fd, r;
	DIR *d;

	r = beneath_open(inv->sysfs_fd, path, O_RDONLY | O_DIRECTORY, 0, &fd);
	if (r < 0)
		return r;
	d = fdopendir(fd);
	if (!d) {
		r = -errno;
		close(fd);
		return r;
	}
	*ret = d;
	return 0;
}

int inventory_list_groups(struct inventory *inv, uint32_t **ret, size_t *ret_n)
{
	_cleanup_closedir_ DIR *d = NULL;
	_cleanup_free_ uint32_t *ids = NULL;
	size_t n = 0, size = 0;
	struct dirent *de;
	int r;

	r = inventory_opendir(inv, "kernel/iommu_groups", &d);
	if (r == -ENOENT) {
		/* No IOMMU (or IOMMU off): no groups, not an error. */
		*ret = NULL;
		*ret_n = 0;
		return 0;
	}
	if (r < 0)
		return r;
	while ((errno = 0, de = readdir(d))) {
		uint32_t id;

		if (vb_group_parse(de->d_name, &id) < 0)
			continue;
		if (n >= INVENTORY_MAX_GROUPS)
			return -E2BIG;
		if (n == size) {
			size_t bigger_size = size ? size * 2 : 64;
			uint32_t *bigger = realloc(ids, bigger_size * sizeof(*ids));

			if (!bigger)
				return -ENOMEM;
			ids = bigger;
			size = bigger_size;
		}
		ids[n++] = id;
	}
	if (errno)
		return -errno;
	if (n > 1)
		qsort(ids, n, sizeof(*ids), compare_u32);
	*ret = TAKE_PTR(ids);
	*ret_n = n;
	return 0;
}

/* "0x8086" -> 0x8086: exactly "0x" and 1..digits hex digits. */
static int parse_hex_attr(const char *s, unsigned digits, uint32_t *ret)
{
	uint32_t v = 0;
	size_t n;

	if (strncmp(s, "0x", 2) != 0)
		return -EBADMSG;
	s += 2;
	n = strlen(s);
	if (n == 0 || n > digits)
		return -EBADMSG;
	for (; *s; s++) {
		int d;

		if (*s >= '0' && *s <= '9')
			d = *s - '0';
		else if (*s >= 'a' && *s <= 'f')
			d = *s - 'a' + 10;
		else if (*s >= 'A' && *s <= 'F')
			d = *s - 'A' + 10;
		else
			return -EBADMSG;
		v = v * 16 + (uint32_t)d;
	}
	*ret = v;
	return 0;
}

static bool driver_name_valid(const char *s)
{
	for (; *s; s++)
		if (*s <= ' ' || *s > '~' || *s == '/')
			return false;
	return true;
}

/* Read one member's attributes; path names its directory beneath the sysfs root. */
static int inventory_read_device(struct inventory *inv, const char *path,
				 struct inventory_device *d)
{
	_cleanup_close_ int fd = -1;
	char buf[32];
	uint32_t v;
	int r;

	r = beneath_open(inv->sysfs_fd, path, O_PATH | O_DIRECTORY, 0, &fd);
	if (r < 0)
		return r;
	if ((r = beneath_read_attr(fd, "vendor", buf, sizeof(buf))) < 0 ||
	    (r = parse_hex_attr(buf, 4, &v)) < 0)
		return r;
	d->vendor = (uint16_t)v;
	if ((r = beneath_read_attr(fd, "device", buf, sizeof(buf))) < 0 ||
	    (r = parse_hex_attr(buf, 4, &v)) < 0)
		return r;
	d->device = (uint16_t)v;
	if ((r = beneath_read_attr(fd, "class", buf, sizeof(buf))) < 0 ||
	    (r = parse_hex_attr(buf, 6, &d->class_)) < 0)
		return r;
	r = beneath_readlink_basename(fd, "driver", d->driver, sizeof(d->driver));
	if (r == -ENOENT) {
		d->driver[0] = '\0';
		return 0;
	}
	if (r < 0)
		return r;
	return driver_name_valid(d->driver) ? 0 : -EBADMSG;
}

static int compare_devices(const void *a, const void *b)
{
	return strcmp(((const struct inventory_device *)a)->address,
		      ((const struct inventory_device *)b)->address);
}

int inventory_read_group(struct inventory *inv, uint32_t id, struct inventory_group **ret)
{
	_cleanup_closedir_ DIR *d = NULL;
	_cleanup_free_ struct inventory_group *g = NULL;
	char path[PATH_MAX];
	struct dirent *de;
	int r;

	snprintf(path, sizeof(path), "kernel/iommu_groups/%u/devices", id);
	r = inventory_opendir(inv, path, &d);
	if (r < 0)
		return r == -ENOTDIR ? -ENOENT : r;
	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->id = id;
	while ((errno = 0, de = readdir(d))) {
		struct inventory_device *dev;
		char addr[VB_ADDRESS_MAX];

		if (de->d_name[0] == '.')
			continue;
		if (vb_address_parse(de->d_name, addr) < 0) {
			if (!g->foreign[0])
				snprintf(g->foreign, sizeof(g->foreign), "%.*s",
					 (int)sizeof(g->foreign) - 1, de->d_name);
			continue;
		}
		if (g->n_devices >= INVENTORY_MAX_DEVICES)
			return -E2BIG;
		dev = &g->devices[g->n_devices];
		memcpy(dev->address, addr, sizeof(addr));
		snprintf(path, sizeof(path), "kernel/iommu_groups/%u/devices/%s", id, de->d_name);
		r = inventory_read_device(inv, path, dev);
		if (r == -ENOENT)
			continue; /* unplugged while we read: not a member any more */
		if (r < 0)
			return log_debug_errno(r, "Failed to read %s/%s: %m", inv->sysfs_root,
					       path);
		g->n_devices++;
	}
	if (errno)
		return -errno;
	qsort(g->devices, g->n_devices, sizeof(g->devices[0]), compare_devices);
	*ret = TAKE_PTR(g);
	return 0;
}

struct inventory_group *inventory_group_free(struct inventory_group *g)
{
	free(g);
	return NULL;
}

int inventory_find_device_group(struct inventory *inv, const char *address, uint32_t *ret)
{
	_cleanup_free_ uint32_t *ids = NULL;
	_cleanup_close_ int fd = -1;
	char path[PATH_MAX], name[32];
	size_t n;
	int r;

	snprintf(path, sizeof(path), "bus/pci/devices/%s", address);
	r = beneath_open(inv->sysfs_fd, path, O_PATH | O_DIRECTORY, 0, &fd);
	if (r == 0) {
		r = beneath_readlink_basename(fd, "iommu_group", name, sizeof(name));
		if (r < 0)
			return r == -ENAMETOOLONG ? -EBADMSG : r;
		return vb_group_parse(name, ret) < 0 ? -EBADMSG : 0;
	}
	if (r != -ENOENT)
		return r;

	/* No bus/pci in this tree: look through every group for the address. */
	r = inventory_list_groups(inv, &ids, &n);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		_cleanup_close_ int gfd = -1;
		struct stat st;

		snprintf(path, sizeof(path), "kernel/iommu_groups/%u/devices", ids[i]);
		if (beneath_open(inv->sysfs_fd, path, O_PATH | O_DIRECTORY, 0, &gfd) < 0)
			continue;
		if (fstatat(gfd, address, &st, AT_SYMLINK_NOFOLLOW) == 0) {
			*ret = ids[i];
			return 0;
		}
	}
	return -ENOENT;
}

bool inventory_driver_is_vfio(const char *driver)
{
	size_t n = strlen(driver);

	/* vfio-pci itself, or a vendor variant built on vfio-pci-core (mlx5_vfio_pci, ...). */
	return strcmp(driver, "vfio-pci") == 0 ||
	       (n > 9 && strcmp(driver + n - 9, "_vfio_pci") == 0);
}

bool inventory_device_is_bridge(const struct inventory_device *d)
{
	unsigned subclass = (d->class_ >> 8) & 0xffff;

	/* PCI-to-PCI (0604), CardBus (0607) and semi-transparent (0609) bridges. */
	return subclass == 0x0604 || subclass == 0x0607 || subclass == 0x0609;
}

bool inventory_group_viable(const struct inventory_group *g, char *why, size_t size)
{
	if (g->foreign[0]) {
		snprintf(why, size,
			 "device %s of group %u is not a PCI device; vfio-brokerd hands out groups "
			 "of PCI devices only",
			 g->foreign, g->id);
		return false;
	}
	if (g->n_devices == 0) {
		snprintf(why, size, "group %u has no devices", g->id);
		return false;
	}
	for (size_t i = 0; i < g->n_devices; i++) {
		const struct inventory_device *d = &g->devices[i];

		/* pcieport claims bridges with driver_managed_dma, which VFIO accepts;
		 * any other bridge driver (shpchp) makes the kernel refuse the group. */
		if (inventory_device_is_bridge(d) && strcmp(d->driver, "pcieport") == 0)
			continue;
		if (d->driver[0] && !inventory_driver_is_vfio(d->driver)) {
			snprintf(why, size, "device %s is bound to %s; bind it to vfio-pci first",
				 d->address, d->driver);
			return false;
		}
	}
	return true;
}

void inventory_group_format_devices(const struct inventory_group *g, char *buf, size_t size)
{
	size_t len = 0;

	if (size == 0)
		return;
	buf[0] = '\0';
	for (size_t i = 0; i < g->n_devices; i++) {
		int k = snprintf(buf + len, size - len, "%s%s", i ? "," : "",
				 g->devices[i].address);

		if (k < 0 || (size_t)k >= size - len) {
			if (size > 4)
				strcpy(buf + size - 4, "...");
			return;
		}
		len += (size_t)k;
	}
}

size_t inventory_group_to_policy(const struct inventory_group *g, struct policy_device *devs)
{
	size_t n = 0;

	for (size_t i = 0; i < g->n_devices; i++) {
		if (inventory_device_is_bridge(&g->devices[i]))
			continue;
		devs[n++] = (struct policy_device){
			.address = g->devices[i].address,
			.vendor = g->devices[i].vendor,
			.device = g->devices[i].device,
			.class = g->devices[i].class_,
			.iommu_group = (int)g->id,
		};
	}
	return n;
}

void inventory_group_to_info(const struct inventory_group *g, struct vb_device_info *devices,
			     struct vb_group_info *ret)
{
	char why[VB_MESSAGE_MAX];

	for (size_t i = 0; i < g->n_devices; i++) {
		const struct inventory_device *d = &g->devices[i];

		memcpy(devices[i].address, d->address, sizeof(devices[i].address));
		snprintf(devices[i].vendor, sizeof(devices[i].vendor), "%04x", d->vendor);
		snprintf(devices[i].device, sizeof(devices[i].device), "%04x", d->device);
		snprintf(devices[i].class_, sizeof(devices[i].class_), "%06x",
			 d->class_ & 0xffffff);
		snprintf(devices[i].driver, sizeof(devices[i].driver), "%s", d->driver);
	}
	*ret = (struct vb_group_info){
		.group = g->id,
		.viable = inventory_group_viable(g, why, sizeof(why)),
		.n_devices = g->n_devices,
		.devices = devices,
	};
}
