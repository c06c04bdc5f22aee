/* SPDX-License-Identifier: MIT */
/*
 * The broker side of the vfio_quarantine module: one non-blocking generic
 * netlink socket subscribed to the family's "events" group and to nlctrl's
 * "notify" group (which says when the family goes away on rmmod), and
 * short-lived blocking sockets for requests (QUARANTINE, RELEASE, and the
 * device requests a soft removal relays). Events are logged as
 * EVENT=kmod-<name>; a device-added in a leased group is passed on to the
 * holder as the protocol event device-added.
 */
#include "broker/kmod_link.h"
#include "broker/inventory.h"
#include "broker/lease.h"
#include "broker/log.h"
#include "broker/reply.h"
#include "common/cleanup.h"

#include <errno.h>
#include <stdlib.h>
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

#define KMOD_RETRY_USEC (2 * 1000000ULL)

struct kmod_link {
	struct broker *broker;
	struct nl_sock *sock; /* NULL: "none" mode */
	int family;
	sd_event_source *io_source;
	sd_event_source *retry_source;
	bool lost; /* the family went away while reading: drop the socket after the read */
};

static const char *const event_names[] = {
	[VFIO_QUARANTINE_EVENT_QUARANTINED] = "quarantined",
	[VFIO_QUARANTINE_EVENT_RELEASED] = "released",
	[VFIO_QUARANTINE_EVENT_DEVICE_ADDED] = "device-added",
	[VFIO_QUARANTINE_EVENT_DEVICE_REMOVED] = "device-removed",
	[VFIO_QUARANTINE_EVENT_UNBIND_REQUESTED] = "unbind-requested",
	[VFIO_QUARANTINE_EVENT_UNBOUND] = "unbound",
	[VFIO_QUARANTINE_EVENT_BOUND] = "bound",
	[VFIO_QUARANTINE_EVENT_BIND_BLOCKED] = "bind-blocked",
};

static int kmod_connect(struct kmod_link *k);

enum kmod_mode kmod_link_mode(const struct kmod_link *k)
{
	return k && k->sock ? KMOD_MODE_KMOD : KMOD_MODE_NONE;
}

const char *kmod_mode_to_string(enum kmod_mode m)
{
	return m == KMOD_MODE_KMOD ? "kmod" : "none";
}

static const char *attr_str(struct nlattr *a)
{
	const char *s;

	if (!a || nla_len(a) < 1)
		return NULL;
	s = nla_data(a);
	return s[nla_len(a) - 1] == '\0' ? s : NULL;
}

static bool attr_u32(struct nlattr *a, uint32_t *v)
{
	if (!a || nla_len(a) != sizeof(uint32_t))
		return false;
	*v = nla_get_u32(a);
	return true;
}

/*
 * Someone (an admin writing driver/unbind, rmmod vfio-pci) is unbinding
 * device of l's group from vfio-pci: the kernel blocks that unbind until
 * the group's VFIO user lets go, signalling its request eventfd every 10 s.
 * Say who it waits for, and ask the holder too, as a soft removal would:
 * remove-requested with no deadline (timeout_ms 0), which vfioctl lease
 * passes on to its command as SIGTERM. The unbind cannot be cancelled;
 * once the holder lets go it completes and the lease ends as usual.
 */
static void kmod_unbind_waits(struct kmod_link *k, const struct lease *l, const char *device,
			      const char *driver)
{
	struct log_fields f = lease_log_fields(l, "unbind-waits");
	size_t told;

	f.devices = device;
	told = reply_notify_remove_requested(k->broker->server, l->holder, l->group, 0);
	log_event(LOG_WARNING, &f,
		  "An unbind of %s from %s waits for the holder of group %u: pid %d (uid %u, "
		  "rule %s); %s",
		  device, driver, l->group, (int)l->pid, (unsigned)l->uid, l->rule,
		  told ? "asked it to give the group back (remove-requested)"
		       : "it has no connection to ask; the kernel relays the VFIO device request "
			 "every 10 s");
}

/*
 * One event of the module: logged; device-added in a leased group is sent on
 * to every connection of the holder's process, and an unbind from vfio-pci
 * that waits for a holder is reported and passed on (kmod_unbind_waits).
 */
static void kmod_handle_event(struct kmod_link *k, struct nlmsghdr *nlh)
{
	struct nlattr *tb[VFIO_QUARANTINE_A_MAX + 1];
	struct log_fields f = LOG_FIELDS(NULL);
	const char *device, *driver, *name;
	struct lease *l;
	uint32_t event, group;
	char buf[64];

	if (genlmsg_parse(nlh, 0, tb, VFIO_QUARANTINE_A_MAX, NULL) < 0 ||
	    !attr_u32(tb[VFIO_QUARANTINE_A_EVENT], &event) ||
	    !attr_u32(tb[VFIO_QUARANTINE_A_GROUP], &group))
		return;
	/* Every event of the module is a change of some group's members or drivers. */
	inventory_invalidate(k->broker->inventory);
	name = event < ELEMENTSOF(event_names) && event_names[event] ? event_names[event]
								     : "unknown";
	device = attr_str(tb[VFIO_QUARANTINE_A_DEVICE]);
	driver = attr_str(tb[VFIO_QUARANTINE_A_DRIVER]);
	snprintf(buf, sizeof(buf), "kmod-%s", name);
	f.event = buf;
	f.group = group;
	f.devices = device;
	log_event(LOG_INFO, &f, "vfio_quarantine: %s in group %u%s%s%s%s", name, group,
		  device ? " device " : "", device ? device : "", driver ? " driver " : "",
		  driver ? driver : "");

	if (!device)
		return;
	l = lease_table_find(k->broker->leases, group);
	if (!l)
		return;
	if (event == VFIO_QUARANTINE_EVENT_DEVICE_ADDED && l->holder)
		reply_notify_device_added(k->broker->server, l->holder, group, device);
	else if (event == VFIO_QUARANTINE_EVENT_UNBIND_REQUESTED && driver &&
		 inventory_driver_is_vfio(driver))
		kmod_unbind_waits(k, l, device, driver);
}

/* Every valid message: an event of the module, or nlctrl saying the family is gone. */
static int kmod_on_message(struct nl_msg *msg, void *arg)
{
	struct kmod_link *k = arg;
	struct nlmsghdr *nlh = nlmsg_hdr(msg);
	struct genlmsghdr *gh = nlmsg_data(nlh);
	struct nlattr *tb[CTRL_ATTR_MAX + 1];
	const char *name;

	if (!genlmsg_valid_hdr(nlh, 0))
		return NL_SKIP;
	if (nlh->nlmsg_type == k->family && gh->cmd == VFIO_QUARANTINE_CMD_EVENT) {
		kmod_handle_event(k, nlh);
	} else if (nlh->nlmsg_type == GENL_ID_CTRL && gh->cmd == CTRL_CMD_DELFAMILY &&
		   genlmsg_parse(nlh, 0, tb, CTRL_ATTR_MAX, NULL) >= 0) {
		name = attr_str(tb[CTRL_ATTR_FAMILY_NAME]);
		if (name && strcmp(name, VFIO_QUARANTINE_FAMILY_NAME) == 0)
			k->lost = true;
	}
	return NL_OK;
}

static void kmod_disconnect(struct kmod_link *k)
{
	k->io_source = sd_event_source_disable_unref(k->io_source);
	if (k->sock)
		nl_socket_free(k->sock);
	k->sock = NULL;
}

/*
 * The retry timer of "none" mode. Asking nlctrl for a missing family makes the
 * kernel run modprobe for it, so the family is resolved only once the module
 * shows up in /sys/module (the real one: netlink is the real kernel's).
 */
static int kmod_on_retry(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct kmod_link *k = userdata;

	if (access("/sys/module/vfio_quarantine", F_OK) == 0 && kmod_connect(k) == 0) {
		struct log_fields f = LOG_FIELDS("kmod");

		log_event(LOG_INFO, &f, "quarantine: kernel module vfio_quarantine (reconnected)");
		return sd_event_source_set_enabled(s, SD_EVENT_OFF);
	}
	return sd_event_source_set_time_relative(s, KMOD_RETRY_USEC);
}

/* Back to "none": drop the socket and retry resolving the family every 2 s. */
static void kmod_lose(struct kmod_link *k, const char *why)
{
	struct log_fields f = LOG_FIELDS("kmod");
	int r;

	kmod_disconnect(k);
	log_event(LOG_NOTICE, &f, "quarantine: none (%s); retrying every 2 s", why);
	r = sd_event_source_set_time_relative(k->retry_source, KMOD_RETRY_USEC);
	if (r >= 0)
		r = sd_event_source_set_enabled(k->retry_source, SD_EVENT_ON);
	if (r < 0)
		log_error_errno(r, "Failed to arm the vfio_quarantine retry timer: %m");
}

static int kmod_on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct kmod_link *k = userdata;
	int r;

	r = nl_recvmsgs_default(k->sock);
	if (k->lost)
		kmod_lose(k, "module unloaded");
	else if (r < 0 && r != -NLE_AGAIN)
		kmod_lose(k, nl_geterror(r));
	return 0;
}

/*
 * Resolve the family and join its "events" group (and nlctrl's "notify",
 * to see it go) on a non-blocking socket watched by the event loop.
 * Returns 0, or -ENOENT when the module is not loaded (or another -errno).
 */
static int kmod_connect(struct kmod_link *k)
{
	struct nl_sock *sk;
	int family, grp, ctrl_grp, r;

	sk = nl_socket_alloc();
	if (!sk)
		return -ENOMEM;
	r = genl_connect(sk);
	if (r < 0) {
		nl_socket_free(sk);
		return -EIO;
	}
	family = genl_ctrl_resolve(sk, VFIO_QUARANTINE_FAMILY_NAME);
	grp = family < 0 ? family
			 : genl_ctrl_resolve_grp(sk, VFIO_QUARANTINE_FAMILY_NAME,
						 VFIO_QUARANTINE_MCGRP_EVENTS);
	ctrl_grp = genl_ctrl_resolve_grp(sk, "nlctrl", "notify");
	if (family < 0 || grp < 0 || ctrl_grp < 0) {
		nl_socket_free(sk);
		return -ENOENT;
	}
	nl_socket_disable_seq_check(sk);
	nl_socket_disable_auto_ack(sk);
	if (nl_socket_modify_cb(sk, NL_CB_VALID, NL_CB_CUSTOM, kmod_on_message, k) < 0 ||
	    nl_socket_add_memberships(sk, grp, ctrl_grp, 0) < 0 ||
	    nl_socket_set_nonblocking(sk) < 0) {
		nl_socket_free(sk);
		return -EIO;
	}
	r = sd_event_add_io(k->broker->event, &k->io_source, nl_socket_get_fd(sk), EPOLLIN,
			    kmod_on_io, k);
	if (r < 0) {
		nl_socket_free(sk);
		return r;
	}
	k->sock = sk;
	k->family = family;
	k->lost = false;
	return 0;
}

int kmod_link_new(struct broker *b, struct kmod_link **ret)
{
	struct log_fields f = LOG_FIELDS("kmod");
	struct kmod_link *k;
	int r;

	k = calloc(1, sizeof(*k));
	if (!k)
		return log_error_errno(ENOMEM, "Failed to set up the vfio_quarantine link: %m");
	k->broker = b;
	r = sd_event_add_time_relative(b->event, &k->retry_source, CLOCK_MONOTONIC, KMOD_RETRY_USEC,
				       0, kmod_on_retry, k);
	if (r < 0) {
		kmod_link_free(k);
		return log_error_errno(r, "Failed to set up the vfio_quarantine retry timer: %m");
	}
	r = kmod_connect(k);
	if (r == 0) {
		sd_event_source_set_enabled(k->retry_source, SD_EVENT_OFF);
		log_event(LOG_INFO, &f, "quarantine: kernel module vfio_quarantine");
	} else if (r == -ENOENT) {
		log_event(LOG_INFO, &f, "quarantine: none (module not loaded)");
	} else {
		log_event(LOG_WARNING, &f, "quarantine: none (netlink: %s)", strerror(-r));
	}
	*ret = k;
	return 0;
}

struct kmod_link *kmod_link_free(struct kmod_link *k)
{
	if (!k)
		return NULL;
	kmod_disconnect(k);
	sd_event_source_disable_unref(k->retry_source);
	free(k);
	return NULL;
}

/* ---- requests ---- */

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

/* REQUEST_DEVICE's reply: whether the device has a request eventfd. */
static int kmod_on_reply(struct nl_msg *msg, void *arg)
{
	struct kmod_answer *a = arg;
	struct nlattr *tb[VFIO_QUARANTINE_A_MAX + 1];
	uint32_t eventfd;

	if (genlmsg_parse(nlmsg_hdr(msg), 0, tb, VFIO_QUARANTINE_A_MAX, NULL) >= 0 &&
	    attr_u32(tb[VFIO_QUARANTINE_A_EVENTFD], &eventfd)) {
		a->replied = true;
		a->eventfd = eventfd != 0;
	}
	return NL_OK;
}

/*
 * Send one command to the module on a short-lived blocking socket of its own
 * (the event socket stays non-blocking): QUARANTINE or RELEASE of group (with
 * flags), or REQUEST_DEVICE of device (not NULL). Waits for the answer, which
 * the kernel gives at once. Returns 0, the kernel's -errno with its
 * extended-ack message in a->msg, or -EIO when the exchange itself failed.
 */
static int kmod_request(uint8_t cmd, uint32_t group, uint32_t flags, const char *device,
			struct kmod_answer *a)
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
	    (device ? nla_put_string(msg, VFIO_QUARANTINE_A_DEVICE, device) < 0
		    : nla_put_u32(msg, VFIO_QUARANTINE_A_GROUP, group) < 0) ||
	    (flags && nla_put_u32(msg, VFIO_QUARANTINE_A_FLAGS, flags) < 0)) {
		r = -ENOMEM;
		goto out;
	}
	nl_cb_err(cb, NL_CB_CUSTOM, kmod_on_error, a);
	nl_cb_set(cb, NL_CB_ACK, NL_CB_CUSTOM, kmod_on_ack, a);
	nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, kmod_on_reply, a);
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

int kmod_link_quarantine(struct kmod_link *k, uint32_t group, struct kmod_answer *a)
{
	return kmod_request(VFIO_QUARANTINE_CMD_QUARANTINE, group, 0, NULL, a);
}

int kmod_link_release(struct kmod_link *k, uint32_t group, bool restore, struct kmod_answer *a)
{
	return kmod_request(VFIO_QUARANTINE_CMD_RELEASE, group,
			    restore ? VFIO_QUARANTINE_RELEASE_RESTORE_DRIVERS : 0, NULL, a);
}

int kmod_link_request_device(struct kmod_link *k, const char *device, struct kmod_answer *a)
{
	int r = kmod_request(VFIO_QUARANTINE_CMD_REQUEST_DEVICE, 0, 0, device, a);

	/* an older module answers EOPNOTSUPP; an ack without the reply says nothing */
	if (r == 0 && !a->replied) {
		snprintf(a->msg, sizeof(a->msg), "the vfio_quarantine module did not say");
		return -EIO;
	}
	return r;
}
