/* SPDX-License-Identifier: MIT */
#include "broker/ops.h"
#include "broker/connection.h"
#include "broker/devnode.h"
#include "broker/inventory.h"
#include "broker/kmod_link.h"
#include "broker/log.h"
#include "broker/memlock.h"
#include "broker/merge.h"
#include "broker/policy_store.h"
#include "broker/quarantine.h"
#include "broker/remove.h"
#include "broker/server.h"
#include "common/cleanup.h"
#include "protocol/wire.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#ifndef VB_VERSION
#define VB_VERSION "0"
#endif

/* Room left in a packet for the envelope around a chunk of list or leases entries. */
#define OPS_CHUNK_BUDGET (VB_MAX_PACKET_SIZE - 1024)
/* Room for policy_explain's text. */
#define OPS_EXPLAIN_MAX (16 * 1024)
/* Most supplementary groups looked up for a user being explained. */
#define OPS_MAX_USER_GROUPS 65536

uint64_t ops_now_msec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- replies ---- */

struct json_object *ops_error(uint32_t id, enum vb_status code, const char *fmt, ...)
{
	char message[VB_MESSAGE_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	return vb_reply_new_error(true, id, code, "%s", message);
}

void ops_error_detail(struct json_object *reply, const char *key, struct json_object *val)
{
	struct json_object *e = reply ? vb_reply_error_details(reply) : NULL;

	if (e)
		json_object_object_add(e, key, val);
	else
		json_object_put(val);
}

int ops_send(struct connection *c, struct json_object *reply, int fd)
{
	int r;

	if (!reply)
		return -ENOMEM;
	r = connection_send(c, reply, fd);
	json_object_put(reply);
	return r;
}

void ops_send_error(struct connection *c, uint32_t id, enum vb_status code, const char *fmt, ...)
{
	char message[VB_MESSAGE_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	ops_send(c, vb_reply_new_error(true, id, code, "%s", message), -1);
}

static const char *ops_error_message(struct json_object *reply)
{
	const char *m = vb_body_string(vb_reply_error_details(reply), "message");

	return m ? m : "";
}

/* Log a refused request (EVENT=deny) with the reply's sentence, then send the reply. */
static void ops_refuse(struct connection *c, const char *what, int64_t group, const char *devices,
		       const char *rule, struct json_object *reply)
{
	struct log_fields f = LOG_FIELDS("deny");

	f.uid = c->identity->uid;
	f.pid = c->identity->pid.pid;
	f.group = group;
	f.devices = devices && devices[0] ? devices : NULL;
	f.rule = rule;
	if (group >= 0)
		log_event(LOG_NOTICE, &f, "Refused %s of group %lld to pid %d (uid %u): %s", what,
			  (long long)group, (int)c->identity->pid.pid, (unsigned)c->identity->uid,
			  ops_error_message(reply));
	else
		log_event(LOG_NOTICE, &f, "Refused %s of %s to pid %d (uid %u): %s", what,
			  devices ? devices : "?", (int)c->identity->pid.pid,
			  (unsigned)c->identity->uid, ops_error_message(reply));
	ops_send(c, reply, -1);
}

struct notify_ctx {
	const struct holder *holder;
	struct json_object *obj;
	size_t n;
};

static void ops_notify_one(struct connection *c, void *ud)
{
	struct notify_ctx *ctx = ud;

	if (c->holder == ctx->holder && connection_send(c, ctx->obj, -1) >= 0)
		ctx->n++;
}

size_t ops_notify_holder(struct broker *b, const struct holder *h, struct json_object *obj)
{
	struct notify_ctx ctx = {.holder = h, .obj = obj};

	if (!h || !b->server)
		return 0;
	server_foreach_connection(b->server, ops_notify_one, &ctx);
	return ctx.n;
}

/*
 * STATUS= for systemd changes with every lease and connection, but formatting and sending it
 * each time cost as much as logging the lease. So: nothing at all without $NOTIFY_SOCKET
 * (sd_notify() would format the text and then drop it), and with it at most one datagram per
 * OPS_STATUS_INTERVAL_USEC, only when the text changed; a change within the interval is sent
 * by a timer when it ends.
 */
#define OPS_STATUS_INTERVAL_USEC (1000 * 1000)

static struct {
	int enabled; /* $NOTIFY_SOCKET is set; -1: not looked at yet */
	uint64_t last_usec;
	sd_event_source *timer; /* floating: freed with the event loop */
	char text[128];
} ops_status = {.enabled = -1};

static void ops_status_send(struct broker *b, uint64_t now)
{
	const struct policy *p = b->policy ? policy_store_get(b->policy) : NULL;
	char text[sizeof(ops_status.text)];

	ops_status.last_usec = now;
	snprintf(text, sizeof(text),
		 "STATUS=%zu connections, %zu leases; policy: %zu rules in %zu files",
		 server_count_connections(b->server), lease_table_count(b->leases),
		 p ? policy_rule_count(p) : 0, p ? policy_file_count(p) : 0);
	if (strcmp(text, ops_status.text) == 0)
		return;
	memcpy(ops_status.text, text, sizeof(text));
	(void)sd_notify(0, text);
}

static int ops_status_on_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct broker *b = userdata;

	if (b->server && b->leases)
		ops_status_send(b, usec);
	return 0;
}

void ops_update_status(struct broker *b)
{
	uint64_t now, due;
	int state = SD_EVENT_OFF;

	if (ops_status.enabled < 0) {
		const char *e = getenv("NOTIFY_SOCKET");

		ops_status.enabled = e && *e;
	}
	if (!ops_status.enabled || !b->server || !b->leases)
		return;
	if (ops_status.timer && sd_event_source_get_enabled(ops_status.timer, &state) >= 0 &&
	    state != SD_EVENT_OFF)
		return; /* the timer sends whatever the text is by then */
	if (sd_event_now(b->event, CLOCK_MONOTONIC, &now) < 0)
		now = ops_now_msec() * 1000;
	due = ops_status.last_usec + OPS_STATUS_INTERVAL_USEC;
	if (ops_status.last_usec == 0 || now >= due) {
		ops_status_send(b, now);
		return;
	}
	if (ops_status.timer) {
		if (sd_event_source_set_time(ops_status.timer, due) >= 0 &&
		    sd_event_source_set_enabled(ops_status.timer, SD_EVENT_ONESHOT) >= 0)
			return;
	} else if (sd_event_add_time(b->event, &ops_status.timer, CLOCK_MONOTONIC, due, 0,
				     ops_status_on_timer, b) >= 0) {
		sd_event_source_set_floating(ops_status.timer, true);
		return;
	}
	ops_status_send(b, now); /* no timer: better early than never */
}

/* ---- lease hooks ---- */

static void ops_hook_detach(struct lease *l, void *userdata)
{
	merge_detach_lease(userdata, l);
}

static void ops_hook_still_open(struct lease *l, const pid_t *pids, size_t n, void *userdata)
{
	struct broker *b = userdata;

	removals_lease_still_open(b->removals, l, pids, n);
}

static void ops_hook_ended(struct lease *l, void *userdata)
{
	struct broker *b = userdata;
	struct json_object *ev;

	if (l->holder && !b->answering_release) {
		ev = vb_event_new(VB_EVENT_RELEASED);
		json_object_object_add(ev, "group", json_object_new_int64(l->group));
		ops_notify_holder(b, l->holder, ev);
		json_object_put(ev);
	}
	removals_lease_ended(b->removals, l);
	ops_update_status(b);
}

static void ops_hook_holder_freed(struct holder *h, void *userdata)
{
	struct broker *b = userdata;

	server_detach_holder(b->server, h);
}

const struct lease_hooks ops_lease_hooks = {
	.detach = ops_hook_detach,
	.still_open = ops_hook_still_open,
	.ended = ops_hook_ended,
	.holder_freed = ops_hook_holder_freed,
};

/* ---- chunked replies ---- */

/* Entries of a list reply, sent in packets below VB_MAX_PACKET_SIZE with "more". */
struct chunker {
	struct connection *conn;
	uint32_t id;
	const char *key;
	const char *quarantine; /* list: the quarantine mode, in every chunk */
	struct json_object *array;
	size_t bytes;
};

static void chunker_flush(struct chunker *ch, bool more)
{
	struct json_object *reply = vb_reply_new(ch->id);

	json_object_object_add(reply, ch->key, ch->array ? ch->array : json_object_new_array());
	json_object_object_add(reply, "more", json_object_new_boolean(more));
	if (ch->quarantine)
		json_object_object_add(reply, "quarantine", json_object_new_string(ch->quarantine));
	ch->array = NULL;
	ch->bytes = 0;
	ops_send(ch->conn, reply, -1);
}

static void chunker_add(struct chunker *ch, struct json_object *entry)
{
	size_t len = 0;

	json_object_to_json_string_length(entry, JSON_C_TO_STRING_PLAIN, &len);
	if (ch->array && ch->bytes + len + 1 > OPS_CHUNK_BUDGET)
		chunker_flush(ch, true);
	if (!ch->array)
		ch->array = json_object_new_array();
	json_object_array_add(ch->array, entry);
	ch->bytes += len + 1;
}

/* ---- hello ---- */

void ops_hello(struct broker *b, struct connection *c, const struct vb_request *req)
{
	struct json_object *reply;

	if (req->version < VB_PROTOCOL_MIN_VERSION) {
		struct json_object *supported = json_object_new_array();

		reply = ops_error(req->id, VB_E_UNSUPPORTED_VERSION,
				  "protocol version %u is not supported; this broker speaks "
				  "versions %d to %d",
				  req->version, VB_PROTOCOL_MIN_VERSION, VB_PROTOCOL_VERSION);
		json_object_array_add(supported, json_object_new_int(VB_PROTOCOL_MIN_VERSION));
		json_object_array_add(supported, json_object_new_int(VB_PROTOCOL_VERSION));
		ops_error_detail(reply, "supported", supported);
		ops_send(c, reply, -1);
		return;
	}
	reply = vb_reply_new(req->id);
	json_object_object_add(reply, "version",
			       json_object_new_int64(req->version < VB_PROTOCOL_VERSION
							     ? req->version
							     : VB_PROTOCOL_VERSION));
	json_object_object_add(reply, "server", json_object_new_string("vfio-brokerd " VB_VERSION));
	json_object_object_add(reply, "uid", json_object_new_int64(c->identity->uid));
	json_object_object_add(reply, "admin", json_object_new_boolean(c->admin));
	if (!c->handshaken)
		log_debug("Connection %llu (pid %d, uid %u) says hello%s%s",
			  (unsigned long long)c->serial, (int)c->identity->pid.pid,
			  (unsigned)c->identity->uid, req->client[0] ? " as " : "", req->client);
	connection_set_handshaken(c);
	ops_send(c, reply, -1);
}

/* ---- policy ---- */

static const char *action_verb(enum policy_action action)
{
	switch (action) {
	case POLICY_ACTION_LEASE:
		return "lease";
	case POLICY_ACTION_MERGE:
		return "merge";
	case POLICY_ACTION_REMOVE_OWN:
		return "remove";
	}
	return "use";
}

int ops_check_group(struct broker *b, struct connection *c, uint32_t id, uint32_t group,
		    enum policy_action action, struct inventory_group **ret_group,
		    struct policy_decision *ret)
{
	struct policy_device devs[INVENTORY_MAX_DEVICES];
	struct inventory_group *g = NULL;
	struct policy_caller caller;
	struct policy_decision d;
	struct json_object *reply;
	char devices[1024], why[VB_MESSAGE_MAX];
	size_t n;
	int r;

	r = inventory_read_group(b->inventory, group, &g);
	if (r == -ENOENT) {
		ops_refuse(c, action_verb(action), group, NULL, NULL,
			   ops_error(id, VB_E_NO_SUCH_GROUP,
				     "there is no IOMMU group %u; see vfioctl list", group));
		return r;
	}
	if (r < 0) {
		log_error_errno(r, "Failed to read group %u from %s: %m", group,
				b->inventory->sysfs_root);
		ops_send_error(c, id, VB_E_INTERNAL,
			       "the broker could not read group %u from sysfs: %s", group,
			       strerror(-r));
		return r;
	}
	inventory_group_format_devices(g, devices, sizeof(devices));
	n = inventory_group_to_policy(g, devs);
	if (n == 0) {
		if (g->n_devices == 0)
			inventory_group_viable(g, why, sizeof(why));
		else
			snprintf(why, sizeof(why),
				 "group %u holds only PCI bridges: there is no device to lease",
				 group);
		ops_refuse(c, action_verb(action), group, devices, NULL,
			   ops_error(id, VB_E_NOT_VIABLE, "%s", why));
		inventory_group_free(g);
		return -EPERM;
	}

	identity_to_policy_caller(c->identity, &caller);
	r = policy_decide(policy_store_get(b->policy), &caller, devs, n, action, &d);
	if (r < 0) {
		log_error_errno(r, "Failed to evaluate the policy for group %u: %m", group);
		ops_send_error(c, id, VB_E_INTERNAL, "the broker could not evaluate the policy");
		inventory_group_free(g);
		return r;
	}
	if (!d.allowed) {
		if (d.rule)
			reply = ops_error(
				id, VB_E_DENIED,
				"rule %s (%s:%u) denies you to %s device %s of group %u; ask "
				"an administrator",
				d.rule, d.file ? d.file : "?", d.line, action_verb(action),
				d.device ? d.device : devices, group);
		else
			reply = ops_error(
				id, VB_E_DENIED,
				"no rule allows uid %u to %s device %s of group %u; ask an "
				"administrator to add one",
				(unsigned)c->identity->uid, action_verb(action),
				d.device ? d.device : devices, group);
		ops_error_detail(reply, "device",
				 d.device ? json_object_new_string(d.device) : NULL);
		ops_error_detail(reply, "rule", d.rule ? json_object_new_string(d.rule) : NULL);
		ops_error_detail(reply, "reason", json_object_new_string(d.reason));
		ops_refuse(c, action_verb(action), group, devices, d.rule, reply);
		inventory_group_free(g);
		return -EACCES;
	}
	*ret_group = g;
	*ret = d;
	return 0;
}

/* ---- list ---- */

static void ops_list(struct broker *b, struct connection *c, const struct vb_request *req)
{
	_cleanup_free_ uint32_t *ids = NULL;
	struct chunker ch = {
		.conn = c, .id = req->id, .key = "groups", .quarantine = kmod_link_mode(b->kmod)};
	struct policy_caller caller;
	size_t n;
	int r;

	r = inventory_list_groups(b->inventory, &ids, &n);
	if (r < 0) {
		log_error_errno(r, "Failed to list the IOMMU groups in %s: %m",
				b->inventory->sysfs_root);
		ops_send_error(c, req->id, VB_E_INTERNAL,
			       "the broker could not list the IOMMU groups: %s", strerror(-r));
		return;
	}
	identity_to_policy_caller(c->identity, &caller);
	for (size_t i = 0; i < n && !c->closing; i++) {
		struct vb_device_info devices[INVENTORY_MAX_DEVICES];
		struct policy_device devs[INVENTORY_MAX_DEVICES];
		struct inventory_group *g = NULL;
		struct vb_group_info info;
		struct policy_decision d;
		struct lease *l;
		size_t n_devs;

		r = inventory_read_listed_group(b->inventory, ids[i], &g);
		if (r < 0) {
			if (r != -ENOENT) /* ENOENT: unplugged since we listed */
				log_warning_errno(r, "Skipping group %u in list: %m", ids[i]);
			continue;
		}
		inventory_group_to_info(g, devices, &info);
		n_devs = inventory_group_to_policy(g, devs);
		if (n_devs > 0 && policy_decide(policy_store_get(b->policy), &caller, devs, n_devs,
						POLICY_ACTION_LEASE, &d) == 0)
			info.allowed = d.allowed;
		l = lease_table_find(b->leases, ids[i]);
		if (l) {
			info.held = true;
			info.holder_uid = l->uid;
			info.holder_pid = l->holder ? l->pid : 0;
		}
		chunker_add(&ch, vb_group_info_to_json(&info));
		inventory_group_free(g);
	}
	if (!c->closing)
		chunker_flush(&ch, false);
	json_object_put(ch.array);
}

/* ---- lease ---- */

static bool group_has_device(const struct inventory_group *g, const char *address)
{
	for (size_t i = 0; i < g->n_devices; i++)
		if (strcmp(g->devices[i].address, address) == 0)
			return true;
	return false;
}

/* Refuse a lease because the group is already leased; names who has it. */
static void ops_lease_busy(struct broker *b, struct connection *c, const struct vb_request *req,
			   struct lease *l, const char *devices)
{
	struct json_object *reply;

	if (l->state == LEASE_HELD && l->holder && pidref_equal(&l->holder->pid, &c->identity->pid))
		reply = ops_error(req->id, VB_E_BUSY, "you already hold group %u", l->group);
	else if (l->state == LEASE_HELD)
		reply = ops_error(req->id, VB_E_BUSY,
				  "group %u is held by uid %u; ask them or an administrator to "
				  "release it",
				  l->group, (unsigned)l->uid);
	else if (l->holder)
		reply = ops_error(req->id, VB_E_BUSY,
				  "group %u was released but is still open in pid %d (uid %u); it "
				  "becomes free when that file is closed",
				  l->group, (int)l->pid, (unsigned)l->uid);
	else
		reply = ops_error(
			req->id, VB_E_BUSY,
			"group %u was released but is still open somewhere the broker "
			"cannot see (a descriptor in flight or a VFIO device fd); it becomes "
			"free when that file is closed",
			l->group);
	if (l->state == LEASE_HELD || l->holder)
		ops_error_detail(reply, "uid", json_object_new_int64(l->uid));
	ops_refuse(c, "lease", l->group, devices, NULL, reply);
}

/*
 * Raise the caller's RLIMIT_MEMLOCK (soft and hard) to at least bytes, as
 * the rule says; never lower either. The caller being alive afterwards
 * shows the pid still named it when prlimit() ran.
 */
static int ops_raise_memlock(const struct pidref *p, uint64_t bytes)
{
	struct rlimit old, want;
	int r;

	if (prlimit(p->pid, RLIMIT_MEMLOCK, NULL, &old) < 0)
		return -errno;
	want = old;
	if (want.rlim_cur != RLIM_INFINITY && want.rlim_cur < bytes)
		want.rlim_cur = bytes;
	if (want.rlim_max != RLIM_INFINITY && want.rlim_max < bytes)
		want.rlim_max = bytes;
	if ((want.rlim_cur != old.rlim_cur || want.rlim_max != old.rlim_max) &&
	    prlimit(p->pid, RLIMIT_MEMLOCK, &want, NULL) < 0)
		return -errno;
	r = pidref_is_alive(p);
	if (r < 0)
		return r;
	return r ? 0 : -ESRCH;
}

static void ops_lease(struct broker *b, struct connection *c, const struct vb_request *req)
{
	const struct identity *id = c->identity;
	struct inventory_group *g = NULL;
	struct policy_decision d;
	struct json_object *reply;
	struct log_fields f;
	struct lease *l;
	struct stat st;
	char devices[1024], why[VB_MESSAGE_MAX], rule[VB_NAME_MAX + 1];
	unsigned max_leases;
	uint64_t memlock;
	size_t held;
	uint32_t group;
	int fd = -1, r;

	if (req->device[0]) {
		r = inventory_find_device_group(b->inventory, req->device, &group);
		if (r < 0) {
			if (r != -ENOENT)
				log_warning_errno(r, "Failed to find the group of %s: %m",
						  req->device);
			reply = ops_error(req->id, VB_E_NO_SUCH_GROUP,
					  "no IOMMU group contains device %s; see vfioctl list",
					  req->device);
			ops_refuse(c, "lease", -1, req->device, NULL, reply);
			return;
		}
	} else {
		group = (uint32_t)req->group;
	}
	if (ops_check_group(b, c, req->id, group, POLICY_ACTION_LEASE, &g, &d) < 0)
		return;
	inventory_group_format_devices(g, devices, sizeof(devices));
	snprintf(rule, sizeof(rule), "%s", d.rule ? d.rule : "");
	memlock = d.memlock;
	if (req->device[0] && !group_has_device(g, req->device)) {
		ops_refuse(c, "lease", group, devices, NULL,
			   ops_error(req->id, VB_E_NO_SUCH_GROUP,
				     "no IOMMU group contains device %s; see vfioctl list",
				     req->device));
		goto out;
	}

	l = lease_table_find(b->leases, group);
	if (l && l->state == LEASE_RELEASING && !l->holder) {
		lease_rescan(l);
		l = lease_table_find(b->leases, group);
	}
	if (l) {
		ops_lease_busy(b, c, req, l, devices);
		goto out;
	}
	if (!inventory_group_viable(g, why, sizeof(why))) {
		ops_refuse(c, "lease", group, devices, rule,
			   ops_error(req->id, VB_E_NOT_VIABLE, "%s", why));
		goto out;
	}
	max_leases = d.max_leases ? d.max_leases : b->config.max_leases_per_uid;
	held = lease_table_count_uid(b->leases, id->uid);
	if (held >= max_leases) {
		reply = ops_error(
			req->id, VB_E_LIMIT,
			"uid %u holds %zu leases, the most %s%s allows; release one first",
			(unsigned)id->uid, held, d.max_leases ? "rule " : "the broker",
			d.max_leases ? rule : "");
		ops_refuse(c, "lease", group, devices, rule, reply);
		goto out;
	}

	if ((reply = memlock_check_lease(req, d.memlock, rule, &id->pid))) {
		ops_refuse(c, "lease", group, devices, rule, reply);
		goto out;
	}
	r = devnode_open_group(b->inventory, group, &fd, &st);
	if (r < 0) {
		if (r == -EBUSY)
			reply = ops_error(
				req->id, VB_E_BUSY,
				"group %u is open outside the broker; close it there first", group);
		else if (r == -ENOENT)
			reply = ops_error(
				req->id, VB_E_NOT_VIABLE,
				"group %u has no device node %s/vfio/%u; bind its devices to "
				"vfio-pci first",
				group, b->inventory->dev_root, group);
		else {
			log_error_errno(r, "Failed to open group %u: %m", group);
			reply = ops_error(req->id, VB_E_INTERNAL,
					  "the broker could not open group %u: %s", group,
					  strerror(-r));
		}
		ops_refuse(c, "lease", group, devices, rule, reply);
		goto out;
	}
	if (d.memlock) {
		r = ops_raise_memlock(&id->pid, d.memlock);
		if (r == -EPERM) {
			/*
			 * Locked memory is a resource, not access: without CAP_SYS_RESOURCE the
			 * lease is still granted, and the reply says no limit was set (memlock
			 * null) so the client knows to expect DMA mapping to hit its own limit.
			 */
			log_warning(
				"Could not raise RLIMIT_MEMLOCK of pid %d to %llu bytes as rule "
				"%s says: the broker lacks CAP_SYS_RESOURCE; granting without it",
				(int)id->pid.pid, (unsigned long long)d.memlock, rule);
			memlock = 0;
		} else if (r < 0) {
			log_error_errno(r, "Failed to raise RLIMIT_MEMLOCK of pid %d to %llu: %m",
					(int)id->pid.pid, (unsigned long long)d.memlock);
			ops_refuse(
				c, "lease", group, devices, rule,
				ops_error(req->id, VB_E_INTERNAL,
					  "the broker could not raise the locked-memory limit of "
					  "pid %d to %llu bytes: %s",
					  (int)id->pid.pid, (unsigned long long)d.memlock,
					  strerror(-r)));
			goto out;
		}
	}
	r = lease_table_grant(b->leases, group, fd, &st, &id->pid, id->uid, rule, devices, &l);
	if (r < 0) {
		log_error_errno(r, "Failed to record the lease of group %u: %m", group);
		ops_send_error(c, req->id, VB_E_INTERNAL, "the broker could not record the lease");
		goto out;
	}
	fd = -1; /* the lease has it */
	server_attach_holder(b->server, l->holder);

	f = LOG_FIELDS("grant");
	f.uid = id->uid;
	f.pid = id->pid.pid;
	f.group = group;
	f.devices = devices;
	f.rule = rule[0] ? rule : NULL;
	log_event(LOG_INFO, &f, "Granted group %u to pid %d (uid %u) by rule %s", group,
		  (int)id->pid.pid, (unsigned)id->uid, rule[0] ? rule : "(none)");
	ops_update_status(b);

	reply = vb_reply_new(req->id);
	json_object_object_add(reply, "group", json_object_new_int64(group));
	json_object_object_add(reply, "rule", rule[0] ? json_object_new_string(rule) : NULL);
	json_object_object_add(reply, "memlock",
			       memlock ? json_object_new_int64((int64_t)memlock) : NULL);
	r = ops_send(c, reply, l->fd);
	if (r < 0) {
		/* The holder never got the file: take the lease back at once. */
		log_warning_errno(r, "Could not send group %u to pid %d: %m; taking the lease back",
				  group, (int)id->pid.pid);
		lease_release(l);
	}
out:
	safe_close(fd);
	inventory_group_free(g);
}

/* ---- release ---- */

static void ops_release(struct broker *b, struct connection *c, const struct vb_request *req)
{
	uint32_t group = (uint32_t)req->group;
	struct lease *l = lease_table_find(b->leases, group);
	struct json_object *reply;
	struct log_fields f;
	bool released = false;

	if (!l) {
		ops_send_error(c, req->id, VB_E_NOT_HELD, "group %u is not leased", group);
		return;
	}
	if (!lease_caller_is_holder(l, c->identity) && !c->admin) {
		reply = ops_error(
			req->id, VB_E_NOT_HELD,
			"group %u is held by another process; only its holder, a child of "
			"it with the same uid, or an administrator may release it",
			group);
		ops_error_detail(reply, "uid", json_object_new_int64(l->uid));
		ops_send(c, reply, -1);
		return;
	}
	f = LOG_FIELDS("releasing");
	f.uid = l->uid;
	f.pid = l->pid;
	f.group = group;
	f.devices = l->devices;
	f.rule = l->rule[0] ? l->rule : NULL;
	if (l->state == LEASE_HELD) {
		/* The reply says whether it ended; a "released" event would say it twice. */
		b->answering_release = true;
		released = lease_release(l);
		b->answering_release = false;
	}
	if (!released)
		log_event(LOG_INFO, &f,
			  "Group %u is still open; the lease ends when its file is closed", group);
	reply = vb_reply_new(req->id);
	json_object_object_add(reply, "group", json_object_new_int64(group));
	json_object_object_add(reply, "released", json_object_new_boolean(released));
	ops_send(c, reply, -1);
}

/* ---- leases ---- */

static void ops_leases(struct broker *b, struct connection *c, const struct vb_request *req)
{
	struct chunker ch = {.conn = c, .id = req->id, .key = "leases"};

	for (struct lease *l = lease_table_first(b->leases); l && !c->closing; l = l->next) {
		struct vb_lease_info info = {0};

		if (!c->admin && l->uid != c->identity->uid)
			continue;
		info.group = l->group;
		info.uid = l->uid;
		info.pid = l->holder ? l->pid : 0;
		info.since_usec = l->since_usec;
		snprintf(info.rule, sizeof(info.rule), "%s", l->rule);
		snprintf(info.state, sizeof(info.state), "%s",
			 removals_pending(b->removals, l->group) ? "removing"
								 : lease_state_to_string(l->state));
		info.container_id = container_id(l->container);
		chunker_add(&ch, vb_lease_info_to_json(&info));
	}
	if (!c->closing)
		chunker_flush(&ch, false);
	json_object_put(ch.array);
}

/* ---- reload ---- */

static void ops_reload(struct broker *b, struct connection *c, const struct vb_request *req)
{
	struct policy_error err = {0};
	struct json_object *reply;
	char why[64], text[sizeof(err.file) + sizeof(err.message) + 32];
	const struct policy *p;

	if (!c->admin) {
		ops_send_error(
			c, req->id, VB_E_DENIED,
			"only an administrator may reload the policy; send SIGHUP as root or "
			"ask one");
		return;
	}
	snprintf(why, sizeof(why), "requested by uid %u", (unsigned)c->identity->uid);
	if (policy_store_reload(b->policy, why, &err) < 0) {
		policy_error_format(&err, text, sizeof(text));
		ops_send_error(c, req->id, VB_E_BAD_REQUEST,
			       "%s; the previous policy stays in force", text);
		return;
	}
	p = policy_store_get(b->policy);
	reply = vb_reply_new(req->id);
	json_object_object_add(reply, "rules",
			       json_object_new_int64((int64_t)policy_rule_count(p)));
	json_object_object_add(reply, "files",
			       json_object_new_int64((int64_t)policy_file_count(p)));
	ops_update_status(b);
	ops_send(c, reply, -1);
}

/* ---- explain ---- */

/* The supplementary groups of user name (primary gid included), as login would set them. */
static int ops_user_groups(const char *name, gid_t gid, gid_t **ret, size_t *ret_n)
{
	_cleanup_free_ gid_t *groups = NULL;
	int n = 64;

	for (;;) {
		int want = n;
		gid_t *bigger = realloc(groups, (size_t)n * sizeof(gid_t));

		if (!bigger)
			return -ENOMEM;
		groups = bigger;
		if (getgrouplist(name, gid, groups, &want) >= 0) {
			n = want;
			break;
		}
		if (want <= n || want > OPS_MAX_USER_GROUPS)
			return -E2BIG;
		n = want;
	}
	*ret_n = (size_t)n;
	*ret = TAKE_PTR(groups);
	return 0;
}

static void ops_explain(struct broker *b, struct connection *c, const struct vb_request *req)
{
	struct policy_device devs[INVENTORY_MAX_DEVICES];
	_cleanup_free_ gid_t *groups = NULL;
	_cleanup_free_ char *text = NULL;
	struct inventory_group *g = NULL;
	struct policy_caller caller;
	struct policy_decision d;
	struct json_object *reply;
	struct passwd *pw = NULL;
	uint32_t group = (uint32_t)req->group;
	char why[VB_MESSAGE_MAX];
	bool self;
	size_t n;
	int r;

	if (req->user[0]) {
		errno = 0;
		pw = getpwnam(req->user);
		if (!pw) {
			ops_send_error(c, req->id, VB_E_BAD_REQUEST, "there is no user %s",
				       req->user);
			return;
		}
		self = pw->pw_uid == c->identity->uid;
	} else if (req->uid >= 0) {
		self = (uid_t)req->uid == c->identity->uid;
		if (!self)
			pw = getpwuid((uid_t)req->uid);
	} else {
		self = true;
	}
	if (!self && !c->admin) {
		ops_send_error(c, req->id, VB_E_DENIED,
			       "only an administrator may explain decisions for another user");
		return;
	}
	if (self) {
		identity_to_policy_caller(c->identity, &caller);
	} else {
		size_t n_groups = 0;

		caller = (struct policy_caller){
			.uid = pw ? pw->pw_uid : (uid_t)req->uid,
			.gid = pw ? pw->pw_gid : (gid_t)-1,
		};
		if (pw && ops_user_groups(pw->pw_name, pw->pw_gid, &groups, &n_groups) == 0) {
			caller.groups = groups;
			caller.n_groups = n_groups;
		}
	}

	r = inventory_read_group(b->inventory, group, &g);
	if (r < 0) {
		if (r == -ENOENT)
			ops_send_error(c, req->id, VB_E_NO_SUCH_GROUP,
				       "there is no IOMMU group %u; see vfioctl list", group);
		else
			ops_send_error(c, req->id, VB_E_INTERNAL,
				       "the broker could not read group %u from sysfs: %s", group,
				       strerror(-r));
		return;
	}
	n = inventory_group_to_policy(g, devs);
	if (n == 0) {
		if (g->n_devices == 0)
			inventory_group_viable(g, why, sizeof(why));
		else
			snprintf(why, sizeof(why),
				 "group %u holds only PCI bridges: there is no device to lease",
				 group);
		ops_send_error(c, req->id, VB_E_NOT_VIABLE, "%s", why);
		inventory_group_free(g);
		return;
	}
	text = malloc(OPS_EXPLAIN_MAX);
	r = text ? policy_decide(policy_store_get(b->policy), &caller, devs, n, POLICY_ACTION_LEASE,
				 &d)
		 : -ENOMEM;
	if (r == 0) {
		r = policy_explain(policy_store_get(b->policy), &caller, devs, n,
				   POLICY_ACTION_LEASE, text, OPS_EXPLAIN_MAX);
		if (r == -ENOBUFS)
			r = 0; /* truncated text is still worth sending */
	}
	if (r < 0) {
		log_error_errno(r, "Failed to explain the policy for group %u: %m", group);
		ops_send_error(c, req->id, VB_E_INTERNAL,
			       "the broker could not evaluate the policy");
		inventory_group_free(g);
		return;
	}
	reply = vb_reply_new(req->id);
	json_object_object_add(reply, "group", json_object_new_int64(group));
	json_object_object_add(reply, "uid", json_object_new_int64(caller.uid));
	json_object_object_add(reply, "allowed", json_object_new_boolean(d.allowed));
	json_object_object_add(reply, "rule", d.rule ? json_object_new_string(d.rule) : NULL);
	json_object_object_add(reply, "device", d.device ? json_object_new_string(d.device) : NULL);
	json_object_object_add(reply, "reason", json_object_new_string(d.reason));
	json_object_object_add(reply, "text", json_object_new_string(text));
	inventory_group_free(g);
	ops_send(c, reply, -1);
}

/* ---- dispatch ---- */

void ops_dispatch(struct broker *b, struct connection *c, const struct vb_request *req, int *fds,
		  size_t n_fds)
{
	if (req->op == VB_OP_MERGE) {
		int container = n_fds > 0 ? fds[0] : -1;

		/* merge takes at most one fd (checked by the caller); it owns it now. */
		merge_handle(b, c, req, container);
		return;
	}
	/* No other op takes a descriptor: the caller refused any, but be sure. */
	for (size_t i = 0; i < n_fds; i++)
		safe_close(fds[i]);

	switch (req->op) {
	case VB_OP_HELLO:
		ops_hello(b, c, req);
		break;
	case VB_OP_LIST:
		ops_list(b, c, req);
		break;
	case VB_OP_LEASE:
		ops_lease(b, c, req);
		break;
	case VB_OP_RELEASE:
		ops_release(b, c, req);
		break;
	case VB_OP_UNMERGE:
		unmerge_handle(b, c, req);
		break;
	case VB_OP_LEASES:
		ops_leases(b, c, req);
		break;
	case VB_OP_REMOVE:
		remove_handle(b, c, req);
		break;
	case VB_OP_RELOAD:
		ops_reload(b, c, req);
		break;
	case VB_OP_EXPLAIN:
		ops_explain(b, c, req);
		break;
	case VB_OP_QUARANTINE:
	case VB_OP_UNQUARANTINE:
		quarantine_handle(b, c, req);
		break;
	case VB_OP_MERGE:
	case _VB_OP_MAX:
		ops_send_error(c, req->id, VB_E_BAD_REQUEST, "unknown op");
		break;
	}
}
