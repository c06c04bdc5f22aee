/* SPDX-License-Identifier: MIT */
/*
 * A simulated sysfs/dev tree with the kernel's layout, as test input for a
 * broker run with --sysfs-root/--dev-root. Group device files are regular
 * files: everything the broker does with them except VFIO ioctls works.
 */
#pragma once

#include <limits.h>
#include <stddef.h>

struct sim_device {
	const char *address; /* "0000:01:00.0" */
	const char *vendor;  /* "8086" */
	const char *device;  /* "10d3" */
	const char *class_;  /* "020000" */
	const char *driver;  /* "vfio-pci", "e1000e", or NULL for none */
};

struct sim_tree {
	char root[PATH_MAX];
	char sys[PATH_MAX];
	char dev[PATH_MAX];
};

/* sim_tree_create makes an empty tree under a new /tmp directory. 0 or -errno. */
int sim_tree_create(struct sim_tree *t);
/* sim_tree_add_group adds IOMMU group `group` with its member devices. */
int sim_tree_add_group(struct sim_tree *t, unsigned group, const struct sim_device *devs, size_t n);
/* sim_tree_set_driver rebinds a device (driver NULL: unbound). */
int sim_tree_set_driver(struct sim_tree *t, const char *address, const char *driver);
/* sim_tree_group_path writes the path of /dev/vfio/GROUP in the tree. */
void sim_tree_group_path(const struct sim_tree *t, unsigned group, char *buf, size_t size);
/* sim_tree_destroy removes the whole tree from disk. */
void sim_tree_destroy(struct sim_tree *t);
