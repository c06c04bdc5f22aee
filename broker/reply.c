/* SPDX-License-Identifier: MIT */
#include "broker/reply.h"
#include "broker/connection.h"
#include "broker/server.h"
#include "common/cleanup.h"
#include "protocol/wire.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#ifndef VB_VERSION
#define VB_VERSION "0"
#endif

/* Room left in a packet for the envelope around a chunk of list or leases entries. */
#define REPLY_CHUNK_BUDGET (VB_MAX_PACKET_SIZE - 1024)

int reply_error_set(struct reply_error *e, enum vb_status code, const char *fmt, ...)
{
	va_list ap;

	*e = (struct reply_error){.code = code};
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
	return vb_status_to_errno(code);
}

/* Send reply (taken and freed) with fd attached (borrowed; -1: none). As connection_send. */
static int reply_send(struct connection *c, struct json_object *reply, int fd)
{
	int r;

	if (!reply)
		return -ENOMEM;
	r = connection_send(c, reply, fd);
	json_object_put(reply);
	return r;
}

static struct json_object *string_or_null(const char *s)
{
	return s && s[0] ? json_object_new_string(s) : NULL;
}

int reply_send_error(struct connection *c, bool has_id, uint32_t id, const struct reply_error *e)
{
	struct json_object *reply = vb_reply_new_error(has_id, id, e->code, "%s", e->message);
	struct json_object *details = reply ? vb_reply_error_details(reply) : NULL;

	if (details && e->has_decision) {
		json_object_object_add(details, "device", string_or_null(e->device));
		json_object_object_add(details, "rule", string_or_null(e->rule));
		json_object_object_add(details, "reason", json_object_new_string(e->reason));
	}
	if (details && e->has_uid)
		json_object_object_add(details, "uid", json_object_new_int64(e->uid));
	if (details && e->has_container)
		json_object_object_add(details, "container", json_object_new_int64(e->container));
	if (details && e->has_supported) {
		struct json_object *supported = json_object_new_array();

		json_object_array_add(supported, json_object_new_int(VB_PROTOCOL_MIN_VERSION));
		json_object_array_add(supported, json_object_new_int(VB_PROTOCOL_VERSION));
		json_object_object_add(details, "supported", supported);
	}
	if (details && e->has_retry)
		json_object_object_add(details, "retry_after_ms",
				       json_object_new_int64((int64_t)e->retry_after_ms));
	return reply_send(c, reply, -1);
}

int reply_send_hello(struct connection *c, uint32_t id, unsigned version, uid_t uid, bool admin)
{
	struct json_object *reply = vb_reply_new(id);

	json_object_object_add(reply, "version", json_object_new_int64(version));
	json_object_object_add(reply, "server", json_object_new_string("vfio-brokerd " VB_VERSION));
	json_object_object_add(reply, "uid", json_object_new_int64(uid));
	json_object_object_add(reply, "admin", json_object_new_boolean(admin));
	return reply_send(c, reply, -1);
}

int reply_send_lease(struct connection *c, uint32_t id, uint32_t group, const char *rule,
		     uint64_t memlock, int group_fd)
{
	struct json_object *reply = vb_reply_new(id);

	json_object_object_add(reply, "group", json_object_new_int64(group));
	json_object_object_add(reply, "rule", string_or_null(rule));
	json_object_object_add(reply, "memlock",
			       memlock ? json_object_new_int64((int64_t)memlock) : NULL);
	return reply_send(c, reply, group_fd);
}

int reply_send_release(struct connection *c, uint32_t id, uint32_t group, bool released)
{
	struct json_object *reply = vb_reply_new(id);

	json_object_object_add(reply, "group", json_object_new_int64(group));
	json_object_object_add(reply, "released", json_object_new_boolean(released));
	return reply_send(c, reply, -1);
}

int reply_send_merge(struct connection *c, uint32_t id, uint32_t container, const uint32_t *groups,
		     size_t n_groups, int container_fd)
{
	struct json_object *reply = vb_reply_new(id), *array = json_object_new_array();

	for (size_t i = 0; i < n_groups; i++)
		json_object_array_add(array, json_object_new_int64(groups[i]));
	json_object_object_add(reply, "container", json_object_new_int64(container));
	json_object_object_add(reply, "groups", array);
	return reply_send(c, reply, container_fd);
}

int reply_send_unmerge(struct connection *c, uint32_t id, uint32_t group)
{
	struct json_object *reply = vb_reply_new(id);

	json_object_object_add(reply, "group", json_object_new_int64(group));
	return reply_send(c, reply, -1);
}

int reply_send_remove(struct connection *c, uint32_t id, uint32_t group, const char *mode,
		      uint64_t elapsed_ms)
{
	struct json_object *reply = vb_reply_new(id);

	json_object_object_add(reply, "group", json_object_new_int64(group));
	json_object_object_add(reply, "mode", json_object_new_string(mode));
	json_object_object_add(reply, "elapsed_ms", json_object_new_int64((int64_t)elapsed_ms));
	return reply_send(c, reply, -1);
}

int reply_send_reload(struct connection *c, uint32_t id, size_t rules, size_t files)
{
	struct json_object *reply = vb_reply_new(id);

	json_object_object_add(reply, "rules", json_object_new_int64((int64_t)rules));
	json_object_object_add(reply, "files", json_object_new_int64((int64_t)files));
	return reply_send(c, reply, -1);
}

int reply_send_explain(struct connection *c, uint32_t id, uint32_t group, uid_t uid,
		       const struct policy_decision *d, const char *text)
{
	struct json_object *reply = vb_reply_new(id);

	json_object_object_add(reply, "group", json_object_new_int64(group));
	json_object_object_add(reply, "uid", json_object_new_int64(uid));
	json_object_object_add(reply, "allowed", json_object_new_boolean(d->allowed));
	json_object_object_add(reply, "rule", d->rule ? json_object_new_string(d->rule) : NULL);
	json_object_object_add(reply, "device",
			       d->device ? json_object_new_string(d->device) : NULL);
	json_object_object_add(reply, "reason", json_object_new_string(d->reason));
	json_object_object_add(reply, "text", json_object_new_string(text));
	return reply_send(c, reply, -1);
}

int reply_send_quarantine(struct connection *c, uint32_t id, uint32_t group, const char *mode,
			  const char *const *devices, size_t n_devices)
{
	struct json_object *reply = vb_reply_new(id), *array = json_object_new_array();

	for (size_t i = 0; i < n_devices; i++)
		json_object_array_add(array, json_object_new_string(devices[i]));
	json_object_object_add(reply, "group", json_object_new_int64(group));
	json_object_object_add(reply, "mode", json_object_new_string(mode));
	json_object_object_add(reply, "devices", array);
	return reply_send(c, reply, -1);
}

/* ---- chunked replies ---- */

void reply_chunks_init(struct reply_chunks *ch, struct connection *c, uint32_t id, const char *key,
		       const char *quarantine)
{
	*ch = (struct reply_chunks){.conn = c, .id = id, .key = key, .quarantine = quarantine};
}

static void reply_chunks_flush(struct reply_chunks *ch, bool more)
{
	struct json_object *reply = vb_reply_new(ch->id);

	json_object_object_add(reply, ch->key, ch->array ? ch->array : json_object_new_array());
	json_object_object_add(reply, "more", json_object_new_boolean(more));
	if (ch->quarantine)
		json_object_object_add(reply, "quarantine", json_object_new_string(ch->quarantine));
	ch->array = NULL;
	ch->bytes = 0;
	reply_send(ch->conn, reply, -1);
}

static void reply_chunks_add(struct reply_chunks *ch, struct json_object *entry)
{
	size_t len = 0;

	json_object_to_json_string_length(entry, JSON_C_TO_STRING_PLAIN, &len);
	if (ch->array && ch->bytes + len + 1 > REPLY_CHUNK_BUDGET)
		reply_chunks_flush(ch, true);
	if (!ch->array)
		ch->array = json_object_new_array();
	json_object_array_add(ch->array, entry);
	ch->bytes += len + 1;
}

void reply_chunks_add_group(struct reply_chunks *ch, const struct vb_group_info *info)
{
	reply_chunks_add(ch, vb_group_info_to_json(info));
}

void reply_chunks_add_lease(struct reply_chunks *ch, const struct vb_lease_info *info)
{
	reply_chunks_add(ch, vb_lease_info_to_json(info));
}

void reply_chunks_finish(struct reply_chunks *ch)
{
	if (!ch->conn->closing)
		reply_chunks_flush(ch, false);
	json_object_put(ch->array);
	ch->array = NULL;
}

/* ---- events ---- */

/* Send ev (taken) to every open connection of h's process. */
static size_t reply_notify(struct server *s, const struct holder *h, struct json_object *ev)
{
	_cleanup_json_ struct json_object *o = ev;

	if (!h || !s || !o)
		return 0;
	return server_send_to_holder(s, h, o);
}

static struct json_object *reply_event_new(enum vb_event type, uint32_t group)
{
	struct json_object *ev = vb_event_new(type);

	if (ev)
		json_object_object_add(ev, "group", json_object_new_int64(group));
	return ev;
}

size_t reply_notify_released(struct server *s, const struct holder *h, uint32_t group)
{
	return h ? reply_notify(s, h, reply_event_new(VB_EVENT_RELEASED, group)) : 0;
}

size_t reply_notify_revoked(struct server *s, const struct holder *h, uint32_t group)
{
	return h ? reply_notify(s, h, reply_event_new(VB_EVENT_REVOKED, group)) : 0;
}

size_t reply_notify_remove_requested(struct server *s, const struct holder *h, uint32_t group,
				     uint32_t timeout_ms)
{
	struct json_object *ev;

	if (!h)
		return 0;
	ev = reply_event_new(VB_EVENT_REMOVE_REQUESTED, group);
	if (ev)
		json_object_object_add(ev, "timeout_ms", json_object_new_int64(timeout_ms));
	return reply_notify(s, h, ev);
}

size_t reply_notify_device_added(struct server *s, const struct holder *h, uint32_t group,
				 const char *device)
{
	struct json_object *ev;

	if (!h)
		return 0;
	ev = reply_event_new(VB_EVENT_DEVICE_ADDED, group);
	if (ev)
		json_object_object_add(ev, "device", json_object_new_string(device));
	return reply_notify(s, h, ev);
}
