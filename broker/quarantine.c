/* SPDX-License-Identifier: MIT */
#include "broker/quarantine.h"
#include "broker/beneath.h"
#include "broker/connection.h"
#include "broker/inventory.h"
#include "broker/kmod_link.h"
#include "broker/lease.h"
#include "broker/log.h"
#include "broker/ops.h"
#include "common/cleanup.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <netlink/genl/ctrl.h>
#include <netlink/genl/genl.h>
#include <netlink/netlink.h>

#include <linux/vfio_quarantine.h>

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

/* What the kernel answered to one request. */
struct kmod_answer {
	bool done;
	int error;     /* 0 or -errno */
	char msg[256]; /* NLMSGERR_ATTR_MSG */
};

/* The message of an extended ack (NLM_F_ACK_TLVS), if any, into a->msg. */
static void kmod_parse_ext_ack(const struct nlmsghdr *nlh, struct kmod_answer *a)
{
	const struct nlmsgerr *e = NLMSG_DATA(nlh);
	struct nlattr *tb[NLMSGERR_ATTR_MAX + 1];
	size_t off = sizeof(*e);

	if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS))
		return;
	if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
		off += e->msg.nlmsg_len - NLMSG_HDRLEN;
	off = NLMSG_ALIGN(off);
	if (NLMSG_HDRLEN + off >= nlh->nlmsg_len)
		return;
	if (nla_parse(tb, NLMSGERR_ATTR_MAX, (struct nlattr *)((char *)e + off),
		      (int)(nlh->nlmsg_len - NLMSG_HDRLEN - off), NULL) < 0)
		return;
	if (tb[NLMSGERR_ATTR_MSG])
		snprintf(a->msg, sizeof(a->msg), "%.*s", nla_len(tb[NLMSGERR_ATTR_MSG]),
			 (const char *)nla_data(tb[NLMSGERR_ATTR_MSG]));
}

static int kmod_on_error(struct sockaddr_nl *nla, struct nlmsgerr *e, void *arg)
{
	struct kmod_answer *a = arg;

	(void)nla;
	a->error = e->error;
	a->done = true;
	kmod_parse_ext_ack((const struct nlmsghdr *)((char *)e - NLMSG_HDRLEN), a);
	return NL_STOP;
}

static int kmod_on_ack(struct nl_msg *msg, void *arg)
{
	struct kmod_answer *a = arg;

	a->done = true;
	kmod_parse_ext_ack(nlmsg_hdr(msg), a);
	return NL_STOP;
}

/*
 * Send one QUARANTINE or RELEASE for group to the module on a short-lived
 * blocking socket of its own (the event socket stays non-blocking) and wait
 * for the answer, which the kernel gives at once. Returns 0, the kernel's
 * -errno with its extended-ack message in a->msg, or -EIO when the exchange
 * itself failed.
 */
static int kmod_request(uint8_t cmd, uint32_t group, uint32_t flags, struct kmod_answer *a)
{
	struct nl_sock *sk = nl_socket_alloc();
	struct nl_msg *msg = NULL;
	struct nl_cb *cb = NULL;
	int one = 1, family, r;

	memset(a, 0, sizeof(*a));
	if (!sk)
		return -ENOMEM;
	r = genl_connect(sk);
	if (r < 0) {
		r = -EIO;
		goto out;
	}
	(void)setsockopt(nl_socket_get_fd(sk), SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
	(void)setsockopt(nl_socket_get_fd(sk), SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
	family = genl_ctrl_resolve(sk, VFIO_QUARANTINE_FAMILY_NAME);
	if (family < 0) {
		snprintf(a->msg, sizeof(a->msg), "the vfio_quarantine module went away");
		r = -EIO;
		goto out;
	}
	msg = nlmsg_alloc();
	cb = nl_cb_alloc(NL_CB_DEFAULT);
	if (!msg || !cb ||
	    !genlmsg_put(msg, NL_AUTO_PORT, NL_AUTO_SEQ, family, 0, 0, cmd,
			 VFIO_QUARANTINE_FAMILY_VERSION) ||
	    nla_put_u32(msg, VFIO_QUARANTINE_A_GROUP, group) < 0 ||
	    (flags && nla_put_u32(msg, VFIO_QUARANTINE_A_FLAGS, flags) < 0)) {
		r = -ENOMEM;
		goto out;
	}
	nl_cb_err(cb, NL_CB_CUSTOM, kmod_on_error, a);
	nl_cb_set(cb, NL_CB_ACK, NL_CB_CUSTOM, kmod_on_ack, a);
	r = nl_send_auto(sk, msg);
	while (r >= 0 && !a->done)
		r = nl_recvmsgs(sk, cb);
	r = !a->done ? -EIO : a->error;
out:
	nl_cb_put(cb);
	nlmsg_free(msg);
	nl_socket_free(sk);
	return r;
}

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

/* The addresses in devices, comma-separated, for the log. */
static void quarantine_format_devices(struct json_object *devices, char *buf, size_t size)
{
	size_t n = json_object_array_length(devices), used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n && used < size; i++)
		used += (size_t)snprintf(
			buf + used, size - used, "%s%s", i ? "," : "",
			json_object_get_string(json_object_array_get_idx(devices, i)));
}

/*
 * quarantine and unquarantine {group, restore}: admin only, refused while
 * the group is leased. In kmod mode the module does the work and the reply
 * lists the endpoints whose driver changed; in none mode the broker moves
 * each endpoint through sysfs itself ("sysfs" mode).
 */
void quarantine_handle(struct broker *b, struct connection *c, const struct vb_request *req)
{
	bool quarantine = req->op == VB_OP_QUARANTINE;
	const char *what = quarantine ? "quarantine" : "unquarantine";
	uint32_t group = (uint32_t)req->group;
	bool kmod = strcmp(kmod_link_mode(b->kmod), "kmod") == 0;
	struct inventory_group *g = NULL, *after = NULL;
	_cleanup_json_ struct json_object *devices = NULL;
	struct json_object *reply;
	struct kmod_answer a;
	char list[512];
	struct log_fields f;
	int r;

	if (!c->admin) {
		ops_send_error(c, req->id, VB_E_DENIED, "only an administrator may %s a group",
			       what);
		return;
	}
	if (lease_table_find(b->leases, group)) {
		ops_send_error(c, req->id, VB_E_BUSY,
			       "group %u is leased; remove the lease first (vfioctl remove)",
			       group);
		return;
	}
	r = inventory_read_group(b->inventory, group, &g);
	if (r == -ENOENT) {
		ops_send_error(c, req->id, VB_E_NO_SUCH_GROUP,
			       "there is no IOMMU group %u; see vfioctl list", group);
		return;
	}
	if (r < 0) {
		log_error_errno(r, "Failed to read group %u: %m", group);
		ops_send_error(c, req->id, VB_E_INTERNAL, "the broker could not read group %u",
			       group);
		return;
	}
	devices = json_object_new_array();
	if (!devices) {
		ops_send_error(c, req->id, VB_E_INTERNAL, "out of memory");
		goto out;
	}
	if (kmod) {
		r = kmod_request(
			quarantine ? VFIO_QUARANTINE_CMD_QUARANTINE : VFIO_QUARANTINE_CMD_RELEASE,
			group,
			!quarantine && req->restore ? VFIO_QUARANTINE_RELEASE_RESTORE_DRIVERS : 0,
			&a);
		if (r == -EALREADY)
			r = 0;
		if (r == -ENOENT) {
			ops_send_error(c, req->id, VB_E_NO_SUCH_GROUP, "%s %u%s%s",
				       quarantine ? "the kernel knows no IOMMU group"
						  : "the module has no quarantine of group",
				       group, a.msg[0] ? ": " : "", a.msg);
			goto out;
		}
		if (r == -EBUSY) {
			ops_send_error(c, req->id, VB_E_BUSY, "group %u is busy%s%s", group,
				       a.msg[0] ? ": " : "", a.msg);
			goto out;
		}
		if (r < 0) {
			log_error_errno(r, "The kernel refused to %s group %u: %s: %m", what, group,
					a.msg[0] ? a.msg : "no message");
			ops_send_error(c, req->id, VB_E_NOT_VIABLE,
				       "the kernel refused to %s "
				       "group %u: %s (%s)",
				       what, group, a.msg[0] ? a.msg : "no message", strerror(-r));
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
						json_object_array_add(
							devices, json_object_new_string(
									 g->devices[i].address));
	} else {
		for (size_t i = 0; i < g->n_devices; i++) {
			const struct inventory_device *d = &g->devices[i];

			if (inventory_device_is_bridge(d))
				continue;
			if (!quarantine && !req->restore)
				continue;
			r = sysfs_move(b, d, quarantine);
			if (r < 0) {
				ops_send_error(c, req->id, VB_E_NOT_VIABLE,
					       "could not %s %s of group %u: %s", what, d->address,
					       group, strerror(-r));
				goto out;
			}
			if (r > 0)
				json_object_array_add(devices, json_object_new_string(d->address));
		}
	}
	quarantine_format_devices(devices, list, sizeof(list));
	f = LOG_FIELDS("quarantine");
	f.uid = c->identity->uid;
	f.group = group;
	f.devices = list[0] ? list : NULL;
	log_event(LOG_NOTICE, &f, "%s group %u by uid %u (mode=%s%s)",
		  quarantine ? "Quarantined" : "Unquarantined", group, (unsigned)c->identity->uid,
		  kmod ? "kmod" : "sysfs", !quarantine && req->restore ? ", drivers restored" : "");
	reply = vb_reply_new(req->id);
	json_object_object_add(reply, "group", json_object_new_int64(group));
	json_object_object_add(reply, "mode", json_object_new_string(kmod ? "kmod" : "sysfs"));
	json_object_object_add(reply, "devices", json_object_get(devices));
	ops_send(c, reply, -1);
out:
	/* The writes above (even a partial failure) moved drivers: no cached answer holds. */
	if (g)
		inventory_invalidate(b->inventory);
	inventory_group_free(after);
	inventory_group_free(g);
}
