/* SPDX-License-Identifier: MIT */
#include "broker/quarantine.h"
#include "broker/beneath.h"
#include "broker/inventory.h"
#include "broker/kmod_link.h"
#include "broker/lease.h"
#include "broker/log.h"
#include "common/cleanup.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <linux/vfio_quarantine.h>

/* Write value into the file path beneath the sysfs root. */
static int sysfs_write(struct broker *b, const char *path, const char *value)
{
	_cleanup_close_ int fd = -1;
	size_t len = strlen(value);
	ssize_t n;
	int r;

	r = beneath_open(b->inventory->sysfs_fd, path, O_WRONLY | O_TRUNC, 0, &fd);
	if (r < 0)
		return log_error_errno(r, "Failed to open %s/%s: %m", b->config.sysfs_root, path);
	n = write(fd, value, len);
	if (n < 0 || (size_t)n != len) {
		r = n < 0 ? -errno : -EIO;
		return log_error_errno(r, "Failed to write \"%s\" to %s/%s: %m", value,
				       b->config.sysfs_root, path);
	}
	return 0;
}

/*
 * The sysfs fallback for one endpoint d: on quarantine, driver_override
 * becomes vfio-pci, a host driver other than vfio-pci is unbound, and the
 * device is re-probed (so that vfio-pci takes it). On unquarantine with
 * restore, the override is cleared, vfio-pci unbound and the device
 * re-probed for its host driver. Returns 1 when the device was moved, 0 when
 * there was nothing to do, or -errno.
 */
static int sysfs_move(struct broker *b, const struct inventory_device *d, bool quarantine)
{
	char path[128];
	bool on_vfio = strcmp(d->driver, VFIO_QUARANTINE_DRIVER) == 0;
	int r;

	snprintf(path, sizeof(path), "bus/pci/devices/%s/driver_override", d->address);
	r = sysfs_write(b, path, quarantine ? VFIO_QUARANTINE_DRIVER : "\n");
	if (r < 0)
		return r;
	if (quarantine && on_vfio)
		return 0;
	if (!quarantine && !on_vfio)
		return 0;
	if (d->driver[0]) {
		snprintf(path, sizeof(path), "bus/pci/drivers/%s/unbind", d->driver);
		r = sysfs_write(b, path, d->address);
		if (r < 0)
			return r;
	}
	r = sysfs_write(b, "bus/pci/drivers_probe", d->address);
	return r < 0 ? r : 1;
}

/* The addresses of the moved devices, comma-separated, for the log. */
static void quarantine_format_devices(const struct quarantine_result *res, char *buf, size_t size)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < res->n_devices && used < size; i++)
		used += (size_t)snprintf(buf + used, size - used, "%s%s", i ? "," : "",
					 res->devices[i]);
}

static void quarantine_add_device(struct quarantine_result *res, const char *address)
{
	if (res->n_devices < INVENTORY_MAX_DEVICES)
		snprintf(res->devices[res->n_devices++], VB_ADDRESS_MAX, "%s", address);
}

/* The module's answer as an error: a missing group or quarantine, busy, or a refusal. */
static int quarantine_kmod_error(int r, const struct kmod_answer *a, bool quarantine,
				 uint32_t group, struct reply_error *err)
{
	const char *what = quarantine ? "quarantine" : "unquarantine";

	if (r == -ENOENT)
		return reply_error_set(err, VB_E_NO_SUCH_GROUP, "%s %u%s%s",
				       quarantine ? "the kernel knows no IOMMU group"
						  : "the module has no quarantine of group",
				       group, a->msg[0] ? ": " : "", a->msg);
	if (r == -EBUSY)
		return reply_error_set(err, VB_E_BUSY, "group %u is busy%s%s", group,
				       a->msg[0] ? ": " : "", a->msg);
	log_error_errno(r, "The kernel refused to %s group %u: %s: %m", what, group,
			a->msg[0] ? a->msg : "no message");
	return reply_error_set(err, VB_E_NOT_VIABLE, "the kernel refused to %s group %u: %s (%s)",
			       what, group, a->msg[0] ? a->msg : "no message", strerror(-r));
}

int quarantine_group(struct broker *b, const struct identity *who, uint32_t group, bool quarantine,
		     bool restore, struct quarantine_result *res, struct reply_error *err)
{
	const char *what = quarantine ? "quarantine" : "unquarantine";
	bool kmod = kmod_link_mode(b->kmod) == KMOD_MODE_KMOD;
	struct inventory_group *g = NULL, *after = NULL;
	struct kmod_answer a;
	char list[512];
	struct log_fields f;
	int r;

	res->n_devices = 0;
	res->mode = kmod ? "kmod" : "sysfs";
	/* Outside the model (tests/model/lease.pml): quarantine never changes a lease. */
	if (lease_table_find(b->leases, group))
		return reply_error_set(
			err, VB_E_BUSY,
			"group %u is leased; remove the lease first (vfioctl remove)", group);
	r = inventory_read_group(b->inventory, group, &g);
	if (r == -ENOENT)
		return reply_error_set(err, VB_E_NO_SUCH_GROUP,
				       "there is no IOMMU group %u; see vfioctl list", group);
	if (r < 0) {
		log_error_errno(r, "Failed to read group %u: %m", group);
		return reply_error_set(err, VB_E_INTERNAL, "the broker could not read group %u",
				       group);
	}
	if (kmod) {
		r = quarantine ? kmod_link_quarantine(b->kmod, group, &a)
			       : kmod_link_release(b->kmod, group, restore, &a);
		if (r == -EALREADY)
			r = 0;
		if (r < 0) {
			r = quarantine_kmod_error(r, &a, quarantine, group, err);
			goto out;
		}
		/* The endpoints whose driver changed: the module moved them, so read anew. */
		inventory_invalidate(b->inventory);
		if (inventory_read_group(b->inventory, group, &after) == 0)
			for (size_t i = 0; i < g->n_devices; i++)
				for (size_t j = 0; j < after->n_devices; j++)
					if (strcmp(g->devices[i].address,
						   after->devices[j].address) == 0 &&
					    !inventory_device_is_bridge(&g->devices[i]) &&
					    strcmp(g->devices[i].driver, after->devices[j].driver))
						quarantine_add_device(res, g->devices[i].address);
	} else {
		for (size_t i = 0; i < g->n_devices; i++) {
			const struct inventory_device *d = &g->devices[i];

			if (inventory_device_is_bridge(d))
				continue;
			if (!quarantine && !restore)
				continue;
			r = sysfs_move(b, d, quarantine);
			if (r < 0) {
				r = reply_error_set(err, VB_E_NOT_VIABLE,
						    "could not %s %s of group %u: %s", what,
						    d->address, group, strerror(-r));
				goto out;
			}
			if (r > 0)
				quarantine_add_device(res, d->address);
		}
	}
	quarantine_format_devices(res, list, sizeof(list));
	f = LOG_FIELDS("quarantine");
	f.uid = who->uid;
	f.group = group;
	f.devices = list[0] ? list : NULL;
	log_event(LOG_NOTICE, &f, "%s group %u by uid %u (mode=%s%s)",
		  quarantine ? "Quarantined" : "Unquarantined", group, (unsigned)who->uid,
		  res->mode, !quarantine && restore ? ", drivers restored" : "");
	r = 0;
out:
	/* The writes above (even a partial failure) moved drivers: no cached answer holds. */
	inventory_invalidate(b->inventory);
	inventory_group_free(after);
	inventory_group_free(g);
	return r;
}
