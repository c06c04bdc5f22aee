/* SPDX-License-Identifier: MIT */
#include "broker/devnode.h"
#include "broker/beneath.h"
#include "broker/log.h"
#include "common/cleanup.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/ioctl.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/sysmacros.h>

/*
 * IOMMU_OPTION of linux/iommufd.h (6.2+), spelt out: the build host's uapi
 * headers may predate iommufd, and the numbers are ABI.
 */
struct devnode_iommu_option {
	uint32_t size;
	uint32_t option_id;
	uint16_t op;
	uint16_t reserved;
	uint32_t object_id;
	uint64_t val64 __attribute__((aligned(8)));
};
#define DEVNODE_IOMMU_OPTION		 _IO(';', 0x87)
#define DEVNODE_IOMMU_OPTION_RLIMIT_MODE 0
#define DEVNODE_IOMMU_OPTION_OP_SET	 0
#define DEVNODE_IOMMU_OPTION_OP_GET	 1

/* The number in the "dev" attribute ("243:0") of sysfs-root-relative directory path. */
static int devnode_sysfs_dev_attr(struct inventory *inv, const char *path, dev_t *ret)
{
	_cleanup_close_ int fd = -1;
	char buf[32];
	unsigned maj, min;
	char tail;
	int r;

	r = beneath_open(inv->sysfs_fd, path, O_PATH | O_DIRECTORY, 0, &fd);
	if (r < 0)
		return r;
	r = beneath_read_attr(fd, "dev", buf, sizeof(buf));
	if (r < 0)
		return r;
	if (sscanf(buf, "%u:%u%c", &maj, &min, &tail) != 2)
		return -EBADMSG;
	*ret = makedev(maj, min);
	return 0;
}

/*
 * The number sysfs gives a group's node (<sysfs>/class/vfio/N/dev, "243:0").
 * -ENOENT when sysfs does not say (simulated trees, or an older layout).
 */
static int devnode_sysfs_rdev(struct inventory *inv, uint32_t group, dev_t *ret)
{
	char path[64];

	snprintf(path, sizeof(path), "class/vfio/%u", group);
	return devnode_sysfs_dev_attr(inv, path, ret);
}

/* A node we may hand out: a char device, or a regular file in a simulated tree. */
static int devnode_check_type(struct inventory *inv, const struct stat *st, const char *what)
{
	if (S_ISCHR(st->st_mode))
		return 0;
	if (S_ISREG(st->st_mode) && inv->simulated)
		return 0;
	log_error("%s/%s is not a character device; refusing it", inv->dev_root, what);
	return -ENODEV;
}

/*
 * Open dev-root-relative path with flags, with no symlink anywhere on the
 * way, and check what is there (devnode_check_type).
 */
static int devnode_open_checked(struct inventory *inv, const char *path, int flags, int *ret_fd,
				struct stat *ret_st)
{
	_cleanup_close_ int fd = -1;
	struct stat st;
	int r;

	r = beneath_open(inv->dev_fd, path, flags | O_NOFOLLOW, BENEATH_NO_SYMLINKS, &fd);
	if (r < 0)
		return r;
	if (fstat(fd, &st) < 0)
		return -errno;
	r = devnode_check_type(inv, &st, path);
	if (r < 0)
		return r;
	*ret_fd = TAKE_FD(fd);
	*ret_st = st;
	return 0;
}

/*
 * Open dev-root-relative path read-write without following any symlink, and
 * without blocking on whatever sits there: O_NONBLOCK is cleared once the
 * type is known to be a device or a regular file.
 */
static int devnode_open(struct inventory *inv, const char *path, int *ret_fd, struct stat *ret_st)
{
	_cleanup_close_ int fd = -1;
	struct stat st;
	int r;

	r = devnode_open_checked(inv, path, O_RDWR | O_NONBLOCK, &fd, &st);
	if (r < 0)
		return r;
	/* F_SETFL touches only O_APPEND, O_ASYNC, O_DIRECT, O_NOATIME and O_NONBLOCK, of
	 * which the open set only O_NONBLOCK: 0 clears it without an F_GETFL first. */
	if (fcntl(fd, F_SETFL, 0) < 0)
		return -errno;
	*ret_fd = TAKE_FD(fd);
	*ret_st = st;
	return 0;
}

/*
 * The stat of dev-root-relative path without opening the node itself (an
 * open of a group would take it from whoever holds it): an O_PATH open,
 * checked as devnode_open checks. ret_st is written only on success;
 * -ENOENT when there is no node.
 */
static int devnode_stat(struct inventory *inv, const char *path, struct stat *ret_st)
{
	_cleanup_close_ int fd = -1;

	return devnode_open_checked(inv, path, O_PATH, &fd, ret_st);
}

int devnode_open_group(struct inventory *inv, uint32_t group, int *ret_fd, struct stat *ret_st)
{
	_cleanup_close_ int fd = -1;
	char path[32];
	struct stat st;
	dev_t want;
	int r;

	snprintf(path, sizeof(path), "vfio/%u", group);
	r = devnode_open(inv, path, &fd, &st);
	if (r < 0)
		return r;
	if (S_ISCHR(st.st_mode)) {
		r = devnode_sysfs_rdev(inv, group, &want);
		if (r == 0 && st.st_rdev != want) {
			log_error("%s/%s is device %u:%u but sysfs says group %u is %u:%u; "
				  "refusing it",
				  inv->dev_root, path, major(st.st_rdev), minor(st.st_rdev), group,
				  major(want), minor(want));
			return -ENODEV;
		}
		if (r < 0 && r != -ENOENT)
			return log_error_errno(
				r, "Failed to read the device number of group %u: %m", group);
	}
	*ret_fd = TAKE_FD(fd);
	*ret_st = st;
	return 0;
}

int devnode_stat_group(struct inventory *inv, uint32_t group, struct stat *ret_st)
{
	char path[32];

	snprintf(path, sizeof(path), "vfio/%u", group);
	return devnode_stat(inv, path, ret_st);
}

int devnode_open_device_cdev(struct inventory *inv, const char *address, const char *cdev,
			     int *ret_fd, struct stat *ret_st)
{
	_cleanup_close_ int fd = -1;
	char path[PATH_MAX];
	struct stat st;
	dev_t want;
	int r;

	snprintf(path, sizeof(path), "vfio/devices/%s", cdev);
	r = devnode_open(inv, path, &fd, &st);
	if (r < 0)
		return r;
	if (S_ISCHR(st.st_mode)) {
		snprintf(path, sizeof(path), "bus/pci/devices/%s/vfio-dev/%s", address, cdev);
		r = devnode_sysfs_dev_attr(inv, path, &want);
		if (r < 0)
			return log_error_errno(
				r, "Failed to read the device number of %s's cdev %s: %m", address,
				cdev);
		if (st.st_rdev != want) {
			log_error("%s/vfio/devices/%s is device %u:%u but sysfs says %s's cdev is "
				  "%u:%u; refusing it",
				  inv->dev_root, cdev, major(st.st_rdev), minor(st.st_rdev),
				  address, major(want), minor(want));
			return -ENODEV;
		}
	}
	*ret_fd = TAKE_FD(fd);
	*ret_st = st;
	return 0;
}

int devnode_stat_device_cdev(struct inventory *inv, const char *cdev, struct stat *ret_st)
{
	char path[64];

	snprintf(path, sizeof(path), "vfio/devices/%.24s", cdev);
	return devnode_stat(inv, path, ret_st);
}

int devnode_open_iommufd(struct inventory *inv, int *ret_fd)
{
	_cleanup_close_ int fd = -1;
	struct stat st;
	int r;

	r = devnode_open(inv, "iommu", &fd, &st);
	if (r < 0)
		return r;
	if (S_ISCHR(st.st_mode)) {
		struct devnode_iommu_option opt = {
			.size = sizeof(opt),
			.option_id = DEVNODE_IOMMU_OPTION_RLIMIT_MODE,
			.op = DEVNODE_IOMMU_OPTION_OP_SET,
			.object_id = 0,
			.val64 = 1,
		};

		if (ioctl(fd, DEVNODE_IOMMU_OPTION, &opt) < 0)
			return -errno;
	}
	*ret_fd = TAKE_FD(fd);
	return 0;
}

int devnode_stat_iommu(struct inventory *inv, struct stat *ret_st)
{
	return devnode_stat(inv, "iommu", ret_st);
}

int devnode_iommufd_is_brokers(int fd)
{
	struct devnode_iommu_option opt = {
		.size = sizeof(opt),
		.option_id = DEVNODE_IOMMU_OPTION_RLIMIT_MODE,
		.op = DEVNODE_IOMMU_OPTION_OP_GET,
	};
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISCHR(st.st_mode))
		return 1;
	if (ioctl(fd, DEVNODE_IOMMU_OPTION, &opt) < 0)
		return -errno;
	return opt.val64 == 1;
}

int devnode_open_container(struct inventory *inv, int *ret_fd)
{
	struct stat st;

	return devnode_open(inv, "vfio/vfio", ret_fd, &st);
}

int devnode_is_container(struct inventory *inv, int fd)
{
	_cleanup_close_ int ours = -1;
	struct stat st, want;
	int r;

	if (fstat(fd, &st) < 0)
		return -errno;
	r = beneath_open(inv->dev_fd, "vfio/vfio", O_PATH | O_NOFOLLOW, BENEATH_NO_SYMLINKS, &ours);
	if (r < 0)
		return r;
	if (fstat(ours, &want) < 0)
		return -errno;
	if (S_ISCHR(want.st_mode))
		return S_ISCHR(st.st_mode) && st.st_rdev == want.st_rdev;
	/* Simulated tree: the very same file stands for the container. */
	return inv->simulated && S_ISREG(want.st_mode) && S_ISREG(st.st_mode) &&
	       st.st_dev == want.st_dev && st.st_ino == want.st_ino;
}
