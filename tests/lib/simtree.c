/* SPDX-License-Identifier: MIT */
#include "tests/lib/simtree.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int pathf(char *buf, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int pathf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static int mkdir_p(const char *path)
{
	char tmp[PATH_MAX];

	if (pathf(tmp, sizeof(tmp), "%s", path) < 0)
		return -ENAMETOOLONG;
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int write_file(const char *path, const char *content, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	size_t len = strlen(content);

	if (fd < 0)
		return -errno;
	if (write(fd, content, len) != (ssize_t)len) {
		close(fd);
		return -EIO;
	}
	return close(fd) < 0 ? -errno : 0;
}

int sim_tree_create(struct sim_tree *t)
{
	char p[PATH_MAX];
	int r;

	memset(t, 0, sizeof(*t));
	snprintf(t->root, sizeof(t->root), "/tmp/vbsim.XXXXXX");
	if (!mkdtemp(t->root))
		return -errno;
	chmod(t->root, 0755);
	pathf(t->sys, sizeof(t->sys), "%s/sys", t->root);
	pathf(t->dev, sizeof(t->dev), "%s/dev", t->root);
	static const char *const dirs[] = {"kernel/iommu_groups", "bus/pci/devices",
					   "bus/pci/drivers/vfio-pci", "devices/pci0000:00"};
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		pathf(p, sizeof(p), "%s/%s", t->sys, dirs[i]);
		if ((r = mkdir_p(p)) < 0)
			return r;
	}
	/* Written by the broker's sysfs quarantine: plain files here, keeping the last write. */
	pathf(p, sizeof(p), "%s/bus/pci/drivers_probe", t->sys);
	if ((r = write_file(p, "", 0200)) < 0)
		return r;
	pathf(p, sizeof(p), "%s/bus/pci/drivers/vfio-pci/unbind", t->sys);
	if ((r = write_file(p, "", 0200)) < 0)
		return r;
	pathf(p, sizeof(p), "%s/vfio", t->dev);
	if ((r = mkdir_p(p)) < 0)
		return r;
	/* The container device is world-usable by design (vfio.rst). */
	pathf(p, sizeof(p), "%s/vfio/vfio", t->dev);
	return write_file(p, "", 0666);
}

/* Read a "0x8086\n" attribute of a simulated device as a number. */
static int read_hex_attr(const char *ddir, const char *name, unsigned long *ret)
{
	char p[PATH_MAX], buf[32];
	FILE *f;
	int ok;

	if (pathf(p, sizeof(p), "%s/%s", ddir, name) < 0)
		return -ENAMETOOLONG;
	f = fopen(p, "re");
	if (!f)
		return -errno;
	ok = fgets(buf, sizeof(buf), f) != NULL;
	fclose(f);
	if (!ok)
		return -EIO;
	*ret = strtoul(buf, NULL, 16);
	return 0;
}

/*
 * Write the device's uevent file as the kernel's dev_uevent() and
 * pci_uevent() fill it in: DRIVER while bound, then class, ids, slot and
 * modalias, hex in upper case. Written whole and renamed into place, so a
 * broker reading at the same time sees the old or the new file.
 */
static int write_uevent(const char *ddir, const char *address, const char *driver)
{
	char p[PATH_MAX], tmp[PATH_MAX], content[512];
	unsigned long vendor, device, class_;
	int r;

	if ((r = read_hex_attr(ddir, "vendor", &vendor)) < 0 ||
	    (r = read_hex_attr(ddir, "device", &device)) < 0 ||
	    (r = read_hex_attr(ddir, "class", &class_)) < 0)
		return r;
	snprintf(content, sizeof(content),
		 "%s%s%sPCI_CLASS=%lX\nPCI_ID=%04lX:%04lX\nPCI_SUBSYS_ID=%04lX:0000\n"
		 "PCI_SLOT_NAME=%s\nMODALIAS=pci:v0000%04lXd0000%04lXsv0000%04lXsd00000000"
		 "bc%02lXsc%02lXi%02lX\n",
		 driver ? "DRIVER=" : "", driver ? driver : "", driver ? "\n" : "", class_, vendor,
		 device, vendor, address, vendor, device, vendor, class_ >> 16,
		 (class_ >> 8) & 0xff, class_ & 0xff);
	if (pathf(p, sizeof(p), "%s/uevent", ddir) < 0 ||
	    pathf(tmp, sizeof(tmp), "%s/.uevent.tmp", ddir) < 0)
		return -ENAMETOOLONG;
	if ((r = write_file(tmp, content, 0644)) < 0)
		return r;
	return rename(tmp, p) < 0 ? -errno : 0;
}

static int set_driver_link(struct sim_tree *t, const char *address, const char *driver)
{
	char link[PATH_MAX], target[PATH_MAX], p[PATH_MAX];
	int r;

	pathf(p, sizeof(p), "%s/devices/pci0000:00/%s", t->sys, address);
	if ((r = write_uevent(p, address, driver)) < 0)
		return r;
	pathf(link, sizeof(link), "%s/devices/pci0000:00/%s/driver", t->sys, address);
	if (unlink(link) < 0 && errno != ENOENT)
		return -errno;
	if (!driver)
		return 0;
	pathf(p, sizeof(p), "%s/bus/pci/drivers/%s", t->sys, driver);
	if ((r = mkdir_p(p)) < 0)
		return r;
	pathf(p, sizeof(p), "%s/bus/pci/drivers/%s/unbind", t->sys, driver);
	if (access(p, F_OK) < 0 && (r = write_file(p, "", 0200)) < 0)
		return r;
	pathf(target, sizeof(target), "../../../bus/pci/drivers/%s", driver);
	return symlink(target, link) < 0 ? -errno : 0;
}

int sim_tree_add_group(struct sim_tree *t, unsigned group, const struct sim_device *devs, size_t n)
{
	char gdir[PATH_MAX], ddir[PATH_MAX], p[PATH_MAX], target[PATH_MAX], content[64];
	int r;

	pathf(gdir, sizeof(gdir), "%s/kernel/iommu_groups/%u/devices", t->sys, group);
	if ((r = mkdir_p(gdir)) < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		const struct sim_device *d = &devs[i];

		pathf(ddir, sizeof(ddir), "%s/devices/pci0000:00/%s", t->sys, d->address);
		if ((r = mkdir_p(ddir)) < 0)
			return r;
		static const char *const names[] = {"vendor", "device", "class"};
		const char *values[] = {d->vendor, d->device, d->class_};
		for (size_t k = 0; k < 3; k++) {
			pathf(p, sizeof(p), "%s/%s", ddir, names[k]);
			snprintf(content, sizeof(content), "0x%s\n", values[k]);
			if ((r = write_file(p, content, 0444)) < 0)
				return r;
		}
		pathf(p, sizeof(p), "%s/driver_override", ddir);
		if ((r = write_file(p, "(null)\n", 0644)) < 0)
			return r;
		pathf(p, sizeof(p), "%s/iommu_group", ddir);
		pathf(target, sizeof(target), "../../../kernel/iommu_groups/%u", group);
		if (symlink(target, p) < 0)
			return -errno;
		pathf(p, sizeof(p), "%s/%s", gdir, d->address);
		pathf(target, sizeof(target), "../../../../devices/pci0000:00/%s", d->address);
		if (symlink(target, p) < 0)
			return -errno;
		pathf(p, sizeof(p), "%s/bus/pci/devices/%s", t->sys, d->address);
		pathf(target, sizeof(target), "../../../devices/pci0000:00/%s", d->address);
		if (symlink(target, p) < 0)
			return -errno;
		if ((r = set_driver_link(t, d->address, d->driver)) < 0)
			return r;
	}
	/* As devtmpfs creates them: root-owned, 0600. Only the broker opens them. */
	pathf(p, sizeof(p), "%s/vfio/%u", t->dev, group);
	return write_file(p, "", 0600);
}

int sim_tree_set_driver(struct sim_tree *t, const char *address, const char *driver)
{
	return set_driver_link(t, address, driver);
}

void sim_tree_group_path(const struct sim_tree *t, unsigned group, char *buf, size_t size)
{
	pathf(buf, size, "%s/vfio/%u", t->dev, group);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

void sim_tree_destroy(struct sim_tree *t)
{
	if (t->root[0])
		nftw(t->root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	t->root[0] = '\0';
}
