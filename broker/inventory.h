/* SPDX-License-Identifier: MIT */
/*
 * The IOMMU groups of the machine, read from sysfs:
 * <sysfs>/kernel/iommu_groups/N/devices/<BDF> -> the device directory with
 * vendor, device, class and a driver symlink. Every read goes through this
 * module.
 *
 * Groups are cached. The cache is emptied whenever the tree may have changed,
 * as the kernel reports it:
 *  - on the real /sys, by kernel uevents (NETLINK_KOBJECT_UEVENT, the
 *    kernel's multicast group): any add, remove, bind, unbind or move, and
 *    any event of the pci subsystem. sysfs itself raises no inotify events.
 *  - on any other tree (a simulated sysfs of plain files), by inotify on
 *    every directory a cached answer was read from, and on each member's
 *    uevent file (all the inventory reads of a device), watched through
 *    the descriptor that read it.
 * Start-up caches every group's members; a member's uevent file is read (and
 * watched) at its group's first lookup, so nothing read before that can go
 * stale unseen.
 * Pending notifications are read at the start of every lookup, not from the
 * event loop, so a change the caller made (or saw) before asking is never
 * answered from the cache. A lost notification (a full socket buffer, an
 * inotify queue overflow) empties the whole cache. Where no notification
 * source can be set up, nothing is cached and every lookup reads sysfs.
 */
#pragma once

#include "policy/policy.h"
#include "protocol/message.h"
#include "protocol/reply.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define INVENTORY_MAX_DEVICES 64    /* devices per group */
#define INVENTORY_MAX_GROUPS  65536 /* groups per machine */

enum inventory_watch {
	INVENTORY_WATCH_NONE,	 /* no notification source: nothing is cached */
	INVENTORY_WATCH_UEVENT,	 /* kernel uevents (the real /sys) */
	INVENTORY_WATCH_INOTIFY, /* inotify (any other tree) */
};

struct inventory {
	int sysfs_fd; /* O_PATH of the sysfs root */
	int dev_fd;   /* O_PATH of the dev root */
	char *sysfs_root;
	char *dev_root;
	bool simulated; /* dev root is not /dev: device nodes may be regular files */

	enum inventory_watch watch;
	int watch_fd; /* the uevent socket or the inotify fd, -1 with INVENTORY_WATCH_NONE */
	/* Cached groups: open addressing on the id, size a power of two (or 0). */
	struct inventory_group **cache;
	size_t cache_size, cache_count;
	/* The cached group list, valid when ids_valid. */
	uint32_t *ids;
	size_t n_ids;
	bool ids_valid;
	/* A watch could not be added during the current read: do not cache what it read. */
	bool watch_failed;
	/* The working directory is /proc/self/fd for the while (inventory_prime). */
	bool in_proc_fd_dir;
	/*
	 * Bumped whenever an answer may differ from the last one: the cache was
	 * emptied, a read was not cached (nothing would say when it went
	 * stale), or the lease paths changed. See inventory_generation.
	 */
	uint64_t generation;
	/* <dev>/iommu opened at start-up (inventory_probe_iommufd): cdev leases can work. */
	bool iommufd;
	/* ... and the kernel makes device cdevs: every device on a VFIO driver has one. */
	bool device_cdevs;
};

struct inventory_device {
	char address[VB_ADDRESS_MAX]; /* canonical "0000:01:00.0" */
	uint16_t vendor, device;
	uint32_t class_;
	char driver[VB_DRIVER_MAX]; /* "" when no driver is bound */
	/*
	 * The VFIO device cdev ("vfio3": <dev>/vfio/devices/vfio3) while on a VFIO
	 * driver; or "". Read only by inventory_group_read_cdevs.
	 */
	char cdev[16];
};

struct inventory_group {
	uint32_t id;
	/*
	 * The members' ids, classes and drivers are filled in. Always true in a
	 * group a lookup returns; false only in the cache, from start-up (which
	 * reads every group's members but no member's uevent) to the group's
	 * first lookup.
	 */
	bool attributes_read;
	/* The first member that is not a PCI device ("" if none): such a group is never viable. */
	char foreign[VB_NAME_MAX];
	size_t n_devices;
	struct inventory_device devices[]; /* n_devices of them, at most INVENTORY_MAX_DEVICES */
};

int inventory_new(const char *sysfs_root, const char *dev_root, struct inventory **ret);
struct inventory *inventory_free(struct inventory *inv);

/*
 * Forget every cached group, for callers that changed the tree themselves
 * (quarantine writes) or heard of a change another way (the module's events).
 */
void inventory_invalidate(struct inventory *inv);

/*
 * inventory_generation reads the pending notifications and returns a number
 * that stays the same exactly as long as every answer of the inventory
 * (groups, members, drivers, lease paths) would: something derived from it
 * (list's serialisation) may be kept while it does. With no notification
 * source, every read changes it, so nothing derived is ever kept.
 */
uint64_t inventory_generation(struct inventory *inv);

/*
 * inventory_probe_iommufd: whether <dev>/iommu is there and opens (a kernel
 * with CONFIG_IOMMUFD), kept in inv->iommufd; asked at start-up and again by
 * a cdev lease while the answer is no (a module loaded later). If not, why
 * (one sentence naming what the kernel lacks) goes to why.
 */
bool inventory_probe_iommufd(struct inventory *inv, char *why, size_t size);

/*
 * inventory_group_read_cdevs fills the cdev of each device of g (a group
 * read with inventory_read_group) from its vfio-dev directory. A cdev lease
 * asks for them; the inventory does not read them for every device.
 */
void inventory_group_read_cdevs(struct inventory *inv, struct inventory_group *g);

/*
 * The lease paths device d of a group can take now (1 << VB_PATH_*): none
 * for a bridge or a device off VFIO drivers; the group path on a VFIO
 * driver; the cdev path too when the kernel has iommufd and device cdevs.
 */
unsigned inventory_device_paths(const struct inventory *inv, const struct inventory_device *d);

/* "uevent", "inotify" or "none", for the log. */
const char *inventory_watch_name(enum inventory_watch w);

/* Every group id in sysfs, ascending. -E2BIG above INVENTORY_MAX_GROUPS. */
int inventory_list_groups(struct inventory *inv, uint32_t **ret, size_t *ret_n);

/*
 * inventory_read_group returns one group and its members (sorted by
 * address), from the cache or from sysfs, as a copy the caller frees.
 * -ENOENT: no such group; -E2BIG: more than INVENTORY_MAX_DEVICES members;
 * -EBADMSG: a malformed attribute.
 */
int inventory_read_group(struct inventory *inv, uint32_t id, struct inventory_group **ret);
/*
 * The same without reading pending notifications first: for going through
 * the ids inventory_list_groups() has just returned (it read them).
 */
int inventory_read_listed_group(struct inventory *inv, uint32_t id, struct inventory_group **ret);
struct inventory_group *inventory_group_free(struct inventory_group *g);

/* The group of the PCI device at address; -ENOENT when none has it. */
int inventory_find_device_group(struct inventory *inv, const char *address, uint32_t *ret);

/* Whether driver is one VFIO user-space access works through (vfio-pci or a variant). */
bool inventory_driver_is_vfio(const char *driver);

/*
 * inventory_group_viable: every member is on a VFIO driver or has none. If
 * not, why (one sentence naming the first offending device) goes to why.
 */
bool inventory_group_viable(const struct inventory_group *g, char *why, size_t size);

/* "0000:01:00.0,0000:01:00.1" into buf (truncated with "..." if it does not fit). */
void inventory_group_format_devices(const struct inventory_group *g, char *buf, size_t size);

/*
 * Whether d is a PCI bridge. VFIO never hands user space a bridge (vfio-pci
 * binds only normal headers), so a bridge in a group needs no policy rule;
 * the group is still viable only if the bridge is driverless or on pcieport.
 */
bool inventory_device_is_bridge(const struct inventory_device *d);

/*
 * The policy's view of g's devices, bridges left out: devs has room for
 * INVENTORY_MAX_DEVICES. Returns how many it wrote (0: only bridges).
 */
size_t inventory_group_to_policy(const struct inventory_group *g, struct policy_device *devs);

/* Fill a protocol group description; devices points into a caller array of n_devices. */
void inventory_group_to_info(const struct inventory *inv, const struct inventory_group *g,
			     struct vb_device_info *devices, struct vb_group_info *ret);
