/* SPDX-License-Identifier: MIT */
/*
 * The VFIO device nodes: <dev>/vfio/N (one per group) and <dev>/vfio/vfio
 * (the container). Opened beneath the dev root with no symlinks at all and
 * checked after open: a character device whose number matches sysfs, or, in
 * a simulated tree only, a regular file.
 */
#pragma once

#include "broker/inventory.h"

#include <stdint.h>
#include <sys/stat.h>

/*
 * devnode_open_group opens <dev>/vfio/<group> read-write. Returns 0 with the
 * fd and its stat, -EBUSY when the kernel says the group is open elsewhere,
 * -ENOENT when there is no node, -ENODEV when the node is not that group's.
 */
int devnode_open_group(struct inventory *inv, uint32_t group, int *ret_fd, struct stat *ret_st);

/*
 * devnode_stat_group: the stat of <dev>/vfio/<group> without opening it (an
 * open would take a group that someone holds). Same checks of the type;
 * -ENOENT when there is no node.
 */
int devnode_stat_group(struct inventory *inv, uint32_t group, struct stat *ret_st);

/*
 * devnode_open_device_cdev opens <dev>/vfio/devices/<cdev> (cdev: "vfio3",
 * as sysfs names it in the device's vfio-dev directory) read-write, checked
 * against the number sysfs gives it. -ENOENT when there is no node,
 * -ENODEV when the node is not that device's.
 */
int devnode_open_device_cdev(struct inventory *inv, const char *address, const char *cdev,
			     int *ret_fd, struct stat *ret_st);

/* devnode_stat_device_cdev: the stat of <dev>/vfio/devices/<cdev> without opening it. */
int devnode_stat_device_cdev(struct inventory *inv, const char *cdev, struct stat *ret_st);

/*
 * devnode_open_iommufd opens a new iommufd context, <dev>/iommu, with its
 * memory accounting switched to per process (IOMMU_OPTION_RLIMIT_MODE 1:
 * pinned pages are charged to the mapping process's locked_vm against its
 * own RLIMIT_MEMLOCK, not to its user's total) while nothing is allocated in
 * it yet, which needs CAP_SYS_RESOURCE (-EPERM without). A regular file in a
 * simulated tree has no ioctls: it is taken as is.
 */
int devnode_open_iommufd(struct inventory *inv, int *ret_fd);

/* devnode_stat_iommu: the stat of <dev>/iommu without opening it (-ENOENT: none). */
int devnode_stat_iommu(struct inventory *inv, struct stat *ret_st);

/*
 * devnode_iommufd_is_brokers: whether fd (a file of <dev>/iommu, checked by
 * the caller) is an iommufd the broker set up: its accounting is per process
 * (IOMMU_OPTION_RLIMIT_MODE reads 1), which only CAP_SYS_RESOURCE can set.
 * 1, 0 or -errno; a simulated tree's regular file is taken as is (1).
 */
int devnode_iommufd_is_brokers(int fd);

/* devnode_open_container opens a new VFIO container <dev>/vfio/vfio. */
int devnode_open_container(struct inventory *inv, int *ret_fd);

/* devnode_is_container: whether fd (a client's) is a VFIO container. 1, 0 or -errno. */
int devnode_is_container(struct inventory *inv, int fd);
