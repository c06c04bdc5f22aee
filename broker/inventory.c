/* SPDX-License-Identifier: MIT */
#include "broker/inventory.h"
#include "broker/beneath.h"
#include "broker/log.h"
#include "common/cleanup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/netlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The kernel's own uevent multicast group (udevd re-broadcasts on group 2). */
#define UEVENT_GROUP_KERNEL 1U
/* Room for bursts of hot-plug events between two lookups; overflow only empties the cache. */
#define UEVENT_RCVBUF (1024 * 1024)
/* What a cached directory is watched for on a tree of plain files. */
#define INOTIFY_MASK                                                                               \
	(IN_CREATE | IN_DELETE | IN_MODIFY | IN_ATTRIB | IN_MOVED_FROM | IN_MOVED_TO |             \
	 IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)
/* What a member's uevent file is watched for: written, replaced (its link count), removed. */
#define INOTIFY_FILE_MASK (IN_MODIFY | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF)

const char *inventory_watch_name(enum inventory_watch w)
{
	switch (w) {
	case INVENTORY_WATCH_UEVENT:
		return "uevent";
	case INVENTORY_WATCH_INOTIFY:
		return "inotify";
	case INVENTORY_WATCH_NONE:
		break;
	}
	return "none";
}

static int uevent_open(void)
{
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK, .nl_groups = UEVENT_GROUP_KERNEL};
	int fd, size = UEVENT_RCVBUF;

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_KOBJECT_UEVENT);
	if (fd < 0)
		return -errno;
	/* FORCE needs CAP_NET_ADMIN (kept); the plain one is capped by rmem_max. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	return fd;
}

/*
 * The kernel sends uevents only to network namespaces owned by the initial
 * user namespace; its uid_map is the whole range mapped onto itself. A
 * kernel without user namespaces (CONFIG_USER_NS=n) has no uid_map, and
 * only the initial one.
 */
static bool in_initial_user_namespace(void)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/self/uid_map", "re");
	unsigned long inside, outside, count;

	if (!f && errno == ENOENT && access("/proc/self/ns", F_OK) == 0)
		return true;
	return f && fscanf(f, "%lu %lu %lu", &inside, &outside, &count) == 3 && inside == 0 &&
	       outside == 0 && count == 4294967295UL && fgetc(f) == '\n' && fgetc(f) == EOF;
}

/* Set up the notification source that keeps the cache honest, or none. */
static void inventory_watch_open(struct inventory *inv)
{
	_cleanup_free_ char *sys_real = realpath(inv->sysfs_root, NULL);
	int fd;

	if (sys_real && strcmp(sys_real, "/sys") == 0) {
		if (!in_initial_user_namespace()) {
			log_warning(
				"Not in the initial user namespace, so no kernel uevents arrive; "
				"sysfs is read on every request");
			return;
		}
		fd = uevent_open();
		if (fd >= 0) {
			inv->watch = INVENTORY_WATCH_UEVENT;
			inv->watch_fd = fd;
			log_info(
				"IOMMU groups are cached until a kernel uevent says sysfs changed");
			return;
		}
		log_warning_errno(
			fd, "Cannot receive kernel uevents (%m); sysfs is read on every request");
		return;
	}
	fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (fd < 0) {
		log_warning_errno(errno,
				  "Cannot watch %s with inotify (%m); it is read on every request",
				  inv->sysfs_root);
		return;
	}
	inv->watch = INVENTORY_WATCH_INOTIFY;
	inv->watch_fd = fd;
	log_info("IOMMU groups of %s are cached until inotify says it changed", inv->sysfs_root);
}

static void inventory_prime(struct inventory *inv);

/* Feature detection at start-up: say once which lease paths this kernel offers. */
static void inventory_log_paths(struct inventory *inv)
{
	char why[VB_MESSAGE_MAX];

	if (inventory_probe_iommufd(inv, why, sizeof(why)) && inv->device_cdevs)
		log_info("Lease paths: group, and cdev (%s/iommu opens; each device on vfio-pci "
			 "is offered through its vfio-dev cdev)",
			 inv->dev_root);
	else if (inv->iommufd)
		log_info("Lease paths: group; and cdev only for devices with a cdev: %s/iommu "
			 "opens, but this kernel registers no vfio-dev devices "
			 "(CONFIG_VFIO_DEVICE_CDEV), so list offers none",
			 inv->dev_root);
	else
		log_info("Lease paths: group only; cdev leases are refused: %s", why);
}

int inventory_new(const char *sysfs_root, const char *dev_root, struct inventory **ret)
{
	_cleanup_free_ char *dev_real = NULL;
	struct inventory *inv;

	inv = calloc(1, sizeof(*inv));
	if (!inv)
		return -ENOMEM;
	inv->sysfs_fd = inv->dev_fd = inv->watch_fd = -1;
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
	inventory_watch_open(inv);
	inventory_prime(inv);
	inventory_log_paths(inv);
	*ret = inv;
	return 0;
}

void inventory_invalidate(struct inventory *inv)
{
	inv->generation++;
	for (size_t i = 0; i < inv->cache_size; i++) {
		free(inv->cache[i]);
		inv->cache[i] = NULL;
	}
	inv->cache_count = 0;
	free(inv->ids);
	inv->ids = NULL;
	inv->n_ids = 0;
	inv->ids_valid = false;
}

/*
 * Whether one kernel uevent ("ACTION@DEVPATH\0KEY=VALUE\0...") may change
 * what the cache holds: group membership changes with add and remove, a
 * driver with bind and unbind; everything on the pci bus counts. The
 * frequent change events of other subsystems (block, power_supply) do not.
 */
static bool uevent_matters(const char *buf, size_t len)
{
	static const char *const actions[] = {"add@", "remove@", "bind@", "unbind@", "move@"};

	for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++)
		if (strncmp(buf, actions[i], strlen(actions[i])) == 0)
			return true;
	for (size_t off = 0; off < len;) {
		const char *kv = buf + off;
		size_t n = strnlen(kv, len - off);

		if (n == sizeof("SUBSYSTEM=pci") - 1 && memcmp(kv, "SUBSYSTEM=pci", n) == 0)
			return true;
		off += n + 1;
	}
	return false;
}

/* Read every pending notification without blocking; empty the cache if one may matter. */
static void inventory_sync(struct inventory *inv)
{
	char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool flush = false;
	ssize_t n;

	if (inv->watch == INVENTORY_WATCH_NONE)
		return;
	for (;;) {
		if (inv->watch == INVENTORY_WATCH_UEVENT)
			n = recv(inv->watch_fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
		else
			n = read(inv->watch_fd, buf, sizeof(buf));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				/* ENOBUFS: events were dropped; anything may have changed. */
				flush = true;
			break;
		}
		if (n == 0)
			break;
		if (inv->watch == INVENTORY_WATCH_INOTIFY) {
			/* Every event on a watched directory, an overflow or a lost watch. */
			flush = true;
			continue;
		}
		buf[n] = '\0';
		if (!flush && uevent_matters(buf, (size_t)n))
			flush = true;
	}
	if (flush && (inv->cache_count > 0 || inv->ids_valid)) {
		log_debug("sysfs may have changed (%s): forgetting %zu cached groups",
			  inventory_watch_name(inv->watch), inv->cache_count);
		inventory_invalidate(inv);
	}
}

/*
 * inotify_add_watch takes a path, not a descriptor, so a descriptor is
 * watched through its /proc/self/fd entry: this prefix, or none while the
 * working directory is /proc/self/fd.
 */
static const char *inventory_proc_fd_dir(const struct inventory *inv)
{
	return inv->in_proc_fd_dir ? "" : "/proc/self/fd/";
}

/*
 * Watch a directory for changes, on a tree of plain files: the one behind fd,
 * or with path, the one at path beneath it (symlinks followed). A watch that
 * cannot be added (ENOSPC: max_user_watches) marks the current read as one
 * never to cache, since nothing would correct it.
 */
static void inventory_watch(struct inventory *inv, int fd, const char *path)
{
	char full[PATH_MAX];

	if (inv->watch != INVENTORY_WATCH_INOTIFY)
		return;
	if ((size_t)snprintf(full, sizeof(full), "%s%d%s%s", inventory_proc_fd_dir(inv), fd,
			     path ? "/" : "", path ? path : "") >= sizeof(full) ||
	    inotify_add_watch(inv->watch_fd, full, INOTIFY_MASK) < 0) {
		inv->watch_failed = true;
		log_debug_errno(errno, "Cannot watch %s/%s: %m", inv->sysfs_root,
				path ? path : "...");
	}
}

static size_t cache_slot(const struct inventory *inv, uint32_t id)
{
	size_t mask = inv->cache_size - 1, i = (id * 2654435761U) & mask;

	while (inv->cache[i] && inv->cache[i]->id != id)
		i = (i + 1) & mask;
	return i;
}

static struct inventory_group *cache_find(const struct inventory *inv, uint32_t id)
{
	return inv->cache_size ? inv->cache[cache_slot(inv, id)] : NULL;
}

/*
 * Keep g (owned by the cache from now on), in place of a cached group of the
 * same id; false when there is no memory for it.
 */
static bool cache_put(struct inventory *inv, struct inventory_group *g)
{
	size_t slot;

	if ((inv->cache_count + 1) * 2 > inv->cache_size) {
		size_t size = inv->cache_size ? inv->cache_size * 2 : 64;
		struct inventory_group **old = inv->cache, **bigger = calloc(size, sizeof(*bigger));
		size_t old_size = inv->cache_size;

		if (!bigger)
			return false;
		inv->cache = bigger;
		inv->cache_size = size;
		for (size_t i = 0; i < old_size; i++)
			if (old[i])
				inv->cache[cache_slot(inv, old[i]->id)] = old[i];
		free(old);
	}
	slot = cache_slot(inv, g->id);
	if (inv->cache[slot])
		free(inv->cache[slot]); /* replaced: a group cached without its attributes */
	else
		inv->cache_count++;
	inv->cache[slot] = g;
	return true;
}

static size_t group_size(size_t n_devices)
{
	return sizeof(struct inventory_group) + n_devices * sizeof(struct inventory_device);
}

static struct inventory_group *group_dup(const struct inventory_group *g)
{
	struct inventory_group *copy = malloc(group_size(g->n_devices));

	if (copy)
		memcpy(copy, g, group_size(g->n_devices));
	return copy;
}

struct inventory *inventory_free(struct inventory *inv)
{
	if (!inv)
		return NULL;
	inventory_invalidate(inv);
	free(inv->cache);
	safe_close(inv->watch_fd);
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

static int inventory_read_ids(struct inventory *inv, uint32_t **ret, size_t *ret_n)
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
	inventory_watch(inv, dirfd(d), NULL);
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

int inventory_list_groups(struct inventory *inv, uint32_t **ret, size_t *ret_n)
{
	uint32_t *ids = NULL, *copy;
	size_t n = 0;
	int r;

	inventory_sync(inv);
	if (!inv->ids_valid) {
		inv->watch_failed = false;
		r = inventory_read_ids(inv, &ids, &n);
		if (r < 0)
			return r;
		if (inv->watch == INVENTORY_WATCH_NONE || inv->watch_failed) {
			inv->generation++; /* an answer nothing keeps up to date */
			*ret = ids;
			*ret_n = n;
			return 0;
		}
		free(inv->ids);
		inv->ids = ids;
		inv->n_ids = n;
		inv->ids_valid = true;
	}
	copy = malloc((inv->n_ids ? inv->n_ids : 1) * sizeof(*copy));
	if (!copy)
		return -ENOMEM;
	if (inv->n_ids)
		memcpy(copy, inv->ids, inv->n_ids * sizeof(*copy));
	*ret = copy;
	*ret_n = inv->n_ids;
	return 0;
}

/* s[0..n) as 1..digits hex digits, nothing else. */
static int parse_hex(const char *s, size_t n, unsigned digits, uint32_t *ret)
{
	uint32_t v = 0;

	if (n == 0 || n > digits)
		return -EBADMSG;
	for (size_t i = 0; i < n; i++) {
		int d;

		if (s[i] >= '0' && s[i] <= '9')
			d = s[i] - '0';
		else if (s[i] >= 'a' && s[i] <= 'f')
			d = s[i] - 'a' + 10;
		else if (s[i] >= 'A' && s[i] <= 'F')
			d = s[i] - 'A' + 10;
		else
			return -EBADMSG;
		v = v * 16 + (uint32_t)d;
	}
	*ret = v;
	return 0;
}

static bool driver_name_valid(const char *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] <= ' ' || s[i] > '~' || s[i] == '/')
			return false;
	return true;
}

/*
 * A PCI device's uevent file, as the kernel's dev_uevent() and pci_uevent()
 * write it: "DRIVER=e1000e" (only while bound), "PCI_CLASS=20000",
 * "PCI_ID=8086:10D3", then subsystem ids, slot name and modalias. One read
 * gives what the vendor, device and class attributes and the driver link
 * give in eleven system calls; the kernel fills it in at read time.
 */
static int parse_uevent(char *buf, struct inventory_device *d)
{
	bool have_id = false, have_class = false;
	uint32_t vendor, device;

	d->driver[0] = '\0';
	for (char *line = buf, *next; line && *line; line = next) {
		size_t n;

		next = strchr(line, '\n');
		n = next ? (size_t)(next - line) : strlen(line);
		if (next)
			next++;
		if (n > 7 && memcmp(line, "DRIVER=", 7) == 0) {
			if (n - 7 >= sizeof(d->driver) || !driver_name_valid(line + 7, n - 7))
				return -EBADMSG;
			memcpy(d->driver, line + 7, n - 7);
			d->driver[n - 7] = '\0';
		} else if (n > 10 && memcmp(line, "PCI_CLASS=", 10) == 0) {
			if (parse_hex(line + 10, n - 10, 6, &d->class_) < 0)
				return -EBADMSG;
			have_class = true;
		} else if (n > 7 && memcmp(line, "PCI_ID=", 7) == 0) {
			const char *colon = memchr(line + 7, ':', n - 7);

			if (!colon ||
			    parse_hex(line + 7, (size_t)(colon - line - 7), 4, &vendor) < 0 ||
			    parse_hex(colon + 1, (size_t)(line + n - colon - 1), 4, &device) < 0)
				return -EBADMSG;
			d->vendor = (uint16_t)vendor;
			d->device = (uint16_t)device;
			have_id = true;
		}
	}
	return have_id && have_class ? 0 : -EBADMSG;
}

/*
 * The name of a device's VFIO cdev: the one "vfioN" entry of its vfio-dev
 * directory, which a kernel with CONFIG_VFIO_DEVICE_CDEV makes while the
 * device is on a VFIO driver. "" when there is none.
 */
static void inventory_read_cdev(struct inventory *inv, const char *path, char *buf, size_t size)
{
	char dir[PATH_MAX];
	struct dirent *de;
	DIR *d;

	buf[0] = '\0';
	if ((size_t)snprintf(dir, sizeof(dir), "%s/vfio-dev", path) >= sizeof(dir) ||
	    inventory_opendir(inv, dir, &d) < 0)
		return;
	while ((de = readdir(d))) {
		unsigned n;
		char tail;

		if (sscanf(de->d_name, "vfio%u%c", &n, &tail) == 1 &&
		    (size_t)snprintf(buf, size, "vfio%u", n) < size)
			break;
		buf[0] = '\0';
	}
	closedir(d);
}

/*
 * Read the small file at path beneath the sysfs root, as beneath_read_file
 * does, and watch it for changes, on a tree of plain files. The file is
 * watched, not its directory: the uevent file is all the inventory reads of
 * a device, and a watch added through the descriptor already open costs no
 * second lookup of the path (inotify_add_watch through the path was 42% of
 * a start-up on 4,096 groups, most of it path lookups). Replaced between
 * the open and the watch (renamed over, as a tree of plain files does it),
 * the file has no link left: the read is then not cached.
 */
static int inventory_read_watched_file(struct inventory *inv, const char *path, char *buf,
				       size_t size, size_t *ret_len)
{
	_cleanup_close_ int fd = -1;
	char proc[64];
	struct stat st;
	int r;

	if (inv->watch != INVENTORY_WATCH_INOTIFY)
		return beneath_read_file(inv->sysfs_fd, path, buf, size, ret_len);
	/* O_NONBLOCK: a FIFO planted in a simulated tree must not stall the broker. */
	r = beneath_open(inv->sysfs_fd, path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK, 0, &fd);
	if (r < 0)
		return r;
	snprintf(proc, sizeof(proc), "%s%d", inventory_proc_fd_dir(inv), fd);
	if (inotify_add_watch(inv->watch_fd, proc, INOTIFY_FILE_MASK) < 0 || fstat(fd, &st) < 0 ||
	    st.st_nlink == 0) {
		inv->watch_failed = true;
		log_debug_errno(errno, "Cannot watch %s/%s: %m", inv->sysfs_root, path);
	}
	return beneath_read_fd(fd, buf, size, ret_len);
}

/* Read the ids and driver of d, a member of group id whose address is filled in. */
static int inventory_read_device(struct inventory *inv, uint32_t id, struct inventory_device *d)
{
	char file[PATH_MAX], buf[1024];
	size_t len;
	int r;

	snprintf(file, sizeof(file), "kernel/iommu_groups/%u/devices/%s/uevent", id, d->address);
	r = inventory_read_watched_file(inv, file, buf, sizeof(buf), &len);
	if (r == 0)
		r = parse_uevent(buf, d);
	if (r < 0 && r != -ENOENT)
		return log_debug_errno(r, "Failed to read %s/%s: %m", inv->sysfs_root, file);
	/* The cdev is read when a cdev lease needs it: inventory_group_read_cdevs. */
	d->cdev[0] = '\0';
	return r;
}

void inventory_group_read_cdevs(struct inventory *inv, struct inventory_group *g)
{
	char path[PATH_MAX];

	for (size_t i = 0; i < g->n_devices; i++) {
		struct inventory_device *d = &g->devices[i];

		d->cdev[0] = '\0';
		/* Only a device on a VFIO driver has a cdev: the others cost no read. */
		if (!inventory_driver_is_vfio(d->driver))
			continue;
		snprintf(path, sizeof(path), "kernel/iommu_groups/%u/devices/%s", g->id,
			 d->address);
		inventory_read_cdev(inv, path, d->cdev, sizeof(d->cdev));
	}
}

static int compare_devices(const void *a, const void *b)
{
	return strcmp(((const struct inventory_device *)a)->address,
		      ((const struct inventory_device *)b)->address);
}

/*
 * Read group id from sysfs into g, which has room for INVENTORY_MAX_DEVICES:
 * its members, and with attributes each member's uevent too.
 */
static int inventory_read_group_sysfs(struct inventory *inv, uint32_t id, bool attributes,
				      struct inventory_group *g)
{
	char entries[8192] __attribute__((aligned(__alignof__(struct dirent64))));
	_cleanup_close_ int fd = -1;
	char path[PATH_MAX];
	ssize_t n;
	int r;

	snprintf(path, sizeof(path), "kernel/iommu_groups/%u/devices", id);
	r = beneath_open(inv->sysfs_fd, path, O_RDONLY | O_DIRECTORY, 0, &fd);
	if (r < 0)
		return r == -ENOTDIR ? -ENOENT : r;
	inventory_watch(inv, fd, NULL);
	g->id = id;
	/* getdents64 itself: readdir() would add an fcntl and an fstat per group. */
	while ((n = getdents64(fd, entries, sizeof(entries))) > 0) {
		for (ssize_t off = 0; off < n;) {
			const struct dirent64 *de = (const struct dirent64 *)(entries + off);
			struct inventory_device *dev;
			char addr[VB_ADDRESS_MAX];

			off += de->d_reclen;
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
			if (attributes) {
				r = inventory_read_device(inv, id, dev);
				if (r == -ENOENT)
					continue; /* unplugged while we read: not a member any more
						   */
				if (r < 0)
					return r;
			}
			g->n_devices++;
		}
	}
	if (n < 0)
		return -errno;
	qsort(g->devices, g->n_devices, sizeof(g->devices[0]), compare_devices);
	g->attributes_read = attributes;
	return 0;
}

/*
 * Read the attributes of every member of g, a group read without them. Any
 * error (-ENOENT: a member unplugged since) leaves g as it was.
 */
static int inventory_read_group_attributes(struct inventory *inv, struct inventory_group *g)
{
	for (size_t i = 0; i < g->n_devices; i++) {
		int r = inventory_read_device(inv, g->id, &g->devices[i]);

		if (r < 0)
			return r;
	}
	g->attributes_read = true;
	return 0;
}

uint64_t inventory_generation(struct inventory *inv)
{
	inventory_sync(inv);
	return inv->generation;
}

int inventory_read_group(struct inventory *inv, uint32_t id, struct inventory_group **ret)
{
	inventory_sync(inv);
	return inventory_read_listed_group(inv, id, ret);
}

int inventory_read_listed_group(struct inventory *inv, uint32_t id, struct inventory_group **ret)
{
	_cleanup_free_ struct inventory_group *g = NULL;
	struct inventory_group *cached, *copy;
	int r;

	cached = cache_find(inv, id);
	if (cached && !cached->attributes_read) {
		/* Its members as start-up found them (a change since emptied the cache). */
		g = group_dup(cached);
		if (!g)
			return -ENOMEM;
		inv->watch_failed = false;
		if (inventory_read_group_attributes(inv, g) == 0 && !inv->watch_failed) {
			memcpy(cached, g, group_size(g->n_devices));
			*ret = TAKE_PTR(g);
			return 0;
		}
		/* Read it all again below, and cache that in its place. */
		free(TAKE_PTR(g));
		cached = NULL;
	}
	if (cached) {
		copy = group_dup(cached);
		if (!copy)
			return -ENOMEM;
		*ret = copy;
		return 0;
	}
	g = calloc(1, group_size(INVENTORY_MAX_DEVICES));
	if (!g)
		return -ENOMEM;
	inv->watch_failed = false;
	r = inventory_read_group_sysfs(inv, id, true, g);
	if (r < 0) {
		inv->generation++; /* nothing would say when the group comes (back) */
		return r;
	}
	copy = group_dup(g);
	if (!copy)
		return -ENOMEM;
	/* Without a notification source nothing would ever tell us the copy went stale. */
	if (inv->watch != INVENTORY_WATCH_NONE && !inv->watch_failed) {
		struct inventory_group *keep = group_dup(g);

		if (!keep || !cache_put(inv, keep)) {
			free(keep);
			inv->generation++;
		}
	} else {
		inv->generation++;
	}
	*ret = copy;
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

/*
 * Whether the kernel makes VFIO device cdevs (CONFIG_VFIO_DEVICE_CDEV): it
 * then registers the "vfio-dev" char major (/proc/devices). Every device on
 * a VFIO driver has one then, so that list can say so without reading each
 * device's vfio-dev directory (a third more of the start-up's CPU on 4,096
 * groups, measured). A simulated tree says it with <dev>/vfio/devices.
 */
static bool inventory_probe_device_cdevs(struct inventory *inv)
{
	_cleanup_fclose_ FILE *f = NULL;
	char line[128];
	struct stat st;

	if (inv->simulated)
		return fstatat(inv->dev_fd, "vfio/devices", &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		       S_ISDIR(st.st_mode);
	f = fopen("/proc/devices", "re");
	while (f && fgets(line, sizeof(line), f)) {
		unsigned major;
		char name[32];

		if (strncmp(line, "Block", 5) == 0)
			break;
		if (sscanf(line, "%u %31s", &major, name) == 2 && strcmp(name, "vfio-dev") == 0)
			return true;
	}
	return false;
}

bool inventory_probe_iommufd(struct inventory *inv, char *why, size_t size)
{
	_cleanup_close_ int fd = -1;
	struct stat st;
	int r;

	if (inv->iommufd)
		return true;
	r = beneath_open(inv->dev_fd, "iommu", O_RDWR | O_NOFOLLOW | O_NONBLOCK,
			 BENEATH_NO_SYMLINKS, &fd);
	if (r == 0 && fstat(fd, &st) < 0)
		r = -errno;
	if (r == 0 && !S_ISCHR(st.st_mode) && !(S_ISREG(st.st_mode) && inv->simulated))
		r = -ENODEV;
	if (r == -ENOENT)
		snprintf(
			why, size,
			"this kernel has no iommufd: %s/iommu does not exist (it needs "
			"CONFIG_IOMMUFD and CONFIG_VFIO_DEVICE_CDEV); lease the group path instead",
			inv->dev_root);
	else if (r < 0)
		snprintf(why, size,
			 "the broker cannot open %s/iommu (%s), so it cannot hand out iommufd; "
			 "lease the group path instead",
			 inv->dev_root, strerror(-r));
	inv->iommufd = r == 0;
	if (inv->iommufd) {
		inv->device_cdevs = inventory_probe_device_cdevs(inv);
		inv->generation++; /* list offers the cdev path from now on */
	}
	return inv->iommufd;
}

unsigned inventory_device_paths(const struct inventory *inv, const struct inventory_device *d)
{
	unsigned paths = 0;

	if (inventory_device_is_bridge(d) || !inventory_driver_is_vfio(d->driver))
		return 0;
	paths |= 1u << VB_PATH_GROUP;
	if (inv->iommufd && inv->device_cdevs)
		paths |= 1u << VB_PATH_CDEV;
	return paths;
}

void inventory_group_to_info(const struct inventory *inv, const struct inventory_group *g,
			     struct vb_device_info *devices, struct vb_group_info *ret)
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
		devices[i].paths = inventory_device_paths(inv, d);
	}
	*ret = (struct vb_group_info){
		.group = g->id,
		.viable = inventory_group_viable(g, why, sizeof(why)),
		.n_devices = g->n_devices,
		.devices = devices,
	};
}

/*
 * Take the whole inventory once at start-up: every group and its members,
 * so that the log says what the broker found and the first requests are
 * served from the cache. Each member's uevent (ids, class, driver) is read,
 * and watched, at the group's first lookup instead: nothing at start-up
 * decides on them (a restored lease looks its group up), and they were half
 * of the start-up's system calls. A group that cannot be read is left out
 * here; every request reads it again.
 */
static void inventory_prime(struct inventory *inv)
{
	_cleanup_free_ struct inventory_group *g = NULL;
	_cleanup_free_ uint32_t *ids = NULL;
	_cleanup_close_ int cwd_fd = -1;
	size_t n, n_devices = 0, n_read = 0;
	struct timespec t0, t1;
	int r;

	if (inv->watch == INVENTORY_WATCH_NONE)
		return;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	g = malloc(group_size(INVENTORY_MAX_DEVICES));
	if (!g)
		return;
	/*
	 * Each group's directory is watched through /proc/self/fd/N, and that
	 * lookup was a third of the watch (/proc, self, its link, pid, fd).
	 * Working in /proc/self/fd for the while, the watch looks up "N" only:
	 * a tenth less CPU at start-up on 4,096 groups (measured). Nothing
	 * else runs meanwhile (start-up, before the event loop), and the
	 * working directory is restored after.
	 */
	if (inv->watch == INVENTORY_WATCH_INOTIFY) {
		cwd_fd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
		inv->in_proc_fd_dir = cwd_fd >= 0 && chdir("/proc/self/fd") == 0;
	}
	r = inventory_list_groups(inv, &ids, &n);
	if (r < 0)
		log_warning_errno(r, "Failed to list the IOMMU groups in %s: %m", inv->sysfs_root);
	for (size_t i = 0; r >= 0 && i < n; i++) {
		struct inventory_group *keep;

		g->n_devices = 0;
		g->foreign[0] = '\0';
		inv->watch_failed = false;
		if (inventory_read_group_sysfs(inv, ids[i], false, g) < 0 || inv->watch_failed)
			continue;
		keep = group_dup(g);
		if (!keep || !cache_put(inv, keep)) {
			free(keep);
			continue;
		}
		n_read++;
		n_devices += g->n_devices;
	}
	if (inv->in_proc_fd_dir && fchdir(cwd_fd) < 0)
		log_warning_errno(errno, "Failed to return to the working directory: %m");
	inv->in_proc_fd_dir = false; /* a watch path names the whole of /proc/self/fd again */
	if (r < 0)
		return;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	log_info("Inventory of %s: %zu IOMMU groups with %zu devices, read in %.1f ms",
		 inv->sysfs_root, n_read, n_devices,
		 (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
}
