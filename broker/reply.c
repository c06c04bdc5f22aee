/* SPDX-License-Identifier: MIT */
#include "broker/reply.h"
#include "broker/connection.h"
#include "broker/log.h"
#include "broker/server.h"
#include "common/cleanup.h"
#include "protocol/reply.h"
#include "protocol/wire.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#ifndef VB_VERSION
#define VB_VERSION "0"
#endif

#define REPLY_SERVER_NAME "vfio-brokerd " VB_VERSION
_Static_assert(sizeof(REPLY_SERVER_NAME) <= sizeof(((struct vb_hello_reply *)0)->server),
	       "the hello reply's server name must fit its field");

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

/*
 * The text of a reply written straight into the packet (vb_*_reply_write); the broker is
 * single-threaded, and connection_send_packet sends or copies it before it returns.
 */
static char reply_text[VB_MAX_PACKET_SIZE];

/* Send what a writer wrote (k its result) with n_fds fds attached (borrowed). */
static int reply_send_written(struct connection *c, int k, size_t len, const int *fds, size_t n_fds)
{
	if (k < 0)
		return log_error_errno(k, "Failed to write a reply: %m");
	return connection_send_packet(c, reply_text, len, fds, n_fds);
}

/*
 * The rule that let a lease through, cut to the reply's field as snprintf would cut it:
 * without snprintf, whose formatting was a third of sending a lease reply.
 */
static void reply_copy_rule(char dst[VB_NAME_MAX + 1], const char *rule)
{
	size_t n = rule ? strnlen(rule, VB_NAME_MAX) : 0;

	if (n)
		memcpy(dst, rule, n);
	dst[n] = '\0';
}

/* Send reply (an encoder's result, taken and freed) with fd attached (borrowed; -1: none). */
static int reply_send(struct connection *c, struct json_object *reply, int fd)
{
	_cleanup_json_ struct json_object *o = reply;

	if (!o)
		return -ENOMEM;
	return connection_send(c, o, fd);
}

int reply_send_error(struct connection *c, bool has_id, uint32_t id, const struct reply_error *e)
{
	/*
	 * The encoder writes the details in its own order; a handler sets one at
	 * most (reply_error_set clears them), so the bytes are what they were.
	 */
	struct vb_error_reply w = {
		.code = e->code,
		.has_uid = e->has_uid,
		.uid = e->uid,
		.has_container = e->has_container,
		.container = e->container,
		.has_retry_after_ms = e->has_retry,
		.retry_after_ms =
			e->retry_after_ms < UINT32_MAX ? (uint32_t)e->retry_after_ms : UINT32_MAX,
		.has_supported = e->has_supported,
		.supported = {VB_PROTOCOL_MIN_VERSION, VB_PROTOCOL_VERSION},
		.has_denial = e->has_decision,
		.has_memlock = e->has_memlock,
		.memlock = e->memlock,
		.asked = e->asked,
	};

	memcpy(w.message, e->message, sizeof(w.message));
	if (e->has_decision) {
		memcpy(w.device, e->device, sizeof(w.device));
		memcpy(w.rule, e->rule, sizeof(w.rule));
		memcpy(w.reason, e->reason, sizeof(w.reason));
	}
	size_t len = 0;
	int k;

	k = vb_error_reply_write(has_id, id, &w, reply_text, sizeof(reply_text), &len);
	return reply_send_written(c, k, len, NULL, 0);
}

int reply_send_hello(struct connection *c, uint32_t id, unsigned version, uid_t uid, bool admin)
{
	struct vb_hello_reply r = {
		.version = version, .server = REPLY_SERVER_NAME, .uid = uid, .admin = admin};
	size_t len = 0;
	int k;

	k = vb_hello_reply_write(id, &r, reply_text, sizeof(reply_text), &len);
	return reply_send_written(c, k, len, NULL, 0);
}

int reply_send_lease(struct connection *c, uint32_t id, uint32_t group, const char *rule,
		     uint64_t memlock, int group_fd)
{
	struct vb_lease_reply r = {.group = group, .memlock = memlock};
	size_t len = 0;
	int k;

	reply_copy_rule(r.rule, rule);
	k = vb_lease_reply_write(id, &r, reply_text, sizeof(reply_text), &len);
	return reply_send_written(c, k, len, group_fd >= 0 ? &group_fd : NULL, group_fd >= 0);
}

int reply_send_cdev_lease(struct connection *c, uint32_t id, uint32_t group, const char *rule,
			  uint64_t memlock, bool iommufd_reused,
			  const char (*devices)[VB_ADDRESS_MAX], const int *fds, size_t n_devices)
{
	struct vb_lease_reply r = {.group = group,
				   .memlock = memlock,
				   .path = VB_PATH_CDEV,
				   .iommufd = 0,
				   .iommufd_reused = iommufd_reused,
				   .n_devices = n_devices};
	size_t len = 0;
	int k;

	if (n_devices == 0 || n_devices > VB_MAX_CDEV_DEVICES)
		return -EINVAL;
	reply_copy_rule(r.rule, rule);
	for (size_t i = 0; i < n_devices; i++) {
		memcpy(r.devices[i].address, devices[i], VB_ADDRESS_MAX);
		r.devices[i].fd = (uint32_t)(1 + i);
	}
	k = vb_lease_reply_write(id, &r, reply_text, sizeof(reply_text), &len);
	return reply_send_written(c, k, len, fds, 1 + n_devices);
}

int reply_send_release(struct connection *c, uint32_t id, uint32_t group, bool released)
{
	struct vb_release_reply r = {.group = group, .released = released};
	size_t len = 0;
	int k;

	k = vb_release_reply_write(id, &r, reply_text, sizeof(reply_text), &len);
	return reply_send_written(c, k, len, NULL, 0);
}

int reply_send_merge(struct connection *c, uint32_t id, uint32_t container, const uint32_t *groups,
		     size_t n_groups, int container_fd)
{
	/* The encoder only reads groups; the struct's pointer is not const for the decoder. */
	struct vb_merge_reply r = {
		.container = container, .n_groups = n_groups, .groups = (uint32_t *)groups};

	return reply_send(c, vb_merge_reply_encode(id, &r), container_fd);
}

int reply_send_unmerge(struct connection *c, uint32_t id, uint32_t group)
{
	struct vb_unmerge_reply r = {.group = group};

	return reply_send(c, vb_unmerge_reply_encode(id, &r), -1);
}

int reply_send_remove(struct connection *c, uint32_t id, uint32_t group, enum vb_remove_mode mode,
		      uint64_t elapsed_ms)
{
	struct vb_remove_reply r = {.group = group, .mode = mode, .elapsed_ms = elapsed_ms};

	return reply_send(c, vb_remove_reply_encode(id, &r), -1);
}

int reply_send_reload(struct connection *c, uint32_t id, size_t rules, size_t files)
{
	struct vb_reload_reply r = {.rules = rules, .files = files};

	return reply_send(c, vb_reload_reply_encode(id, &r), -1);
}

int reply_send_explain(struct connection *c, uint32_t id, uint32_t group, uid_t uid,
		       const struct policy_decision *d, const char *text)
{
	/* As in merge: the encoder only reads reason and text. */
	struct vb_explain_reply r = {.group = group,
				     .uid = uid,
				     .allowed = d->allowed,
				     .reason = (char *)d->reason,
				     .text = (char *)text};

	/* A rule name is at most POLICY_MAX_NAME (64) characters, a device an address. */
	snprintf(r.rule, sizeof(r.rule), "%s", d->rule ? d->rule : "");
	snprintf(r.device, sizeof(r.device), "%s", d->device ? d->device : "");
	return reply_send(c, vb_explain_reply_encode(id, &r), -1);
}

int reply_send_quarantine(struct connection *c, uint32_t id, uint32_t group, const char *mode,
			  const char *const *devices, size_t n_devices)
{
	struct vb_quarantine_reply r = {
		.group = group,
		.mode = strcmp(mode, "kmod") == 0 ? VB_QUARANTINE_KMOD : VB_QUARANTINE_SYSFS,
	};

	for (; r.n_devices < n_devices && r.n_devices < VB_QUARANTINE_MAX_DEVICES; r.n_devices++)
		snprintf(r.devices[r.n_devices], sizeof(r.devices[r.n_devices]), "%s",
			 devices[r.n_devices]);
	return reply_send(c, vb_quarantine_reply_encode(id, &r), -1);
}

/* ---- chunked replies ---- */

void reply_chunks_init_list(struct reply_chunks *ch, struct connection *c, uint32_t id,
			    const char *quarantine)
{
	*ch = (struct reply_chunks){.conn = c, .id = id, .quarantine = quarantine};
}

void reply_chunks_init_leases(struct reply_chunks *ch, struct connection *c, uint32_t id)
{
	*ch = (struct reply_chunks){.conn = c, .id = id, .leases = true};
}

/* Send the entries gathered so far as one chunk (the encoder takes them). */
static void reply_chunks_flush(struct reply_chunks *ch, bool more)
{
	struct json_object *entries = TAKE_PTR(ch->array);

	ch->bytes = 0;
	if (ch->leases)
		reply_send(ch->conn, vb_leases_chunk_encode(ch->id, entries, more), -1);
	else
		reply_send(ch->conn, vb_list_chunk_encode(ch->id, entries, more, ch->quarantine),
			   -1);
}

/* Add entry (encoded, taken), first sending the chunk it would not fit in. */
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

/* Send ev to every open connection of h's process. */
static size_t reply_notify(struct server *s, const struct holder *h, const struct vb_event_msg *ev)
{
	_cleanup_json_ struct json_object *o = NULL;

	if (!h || !s)
		return 0;
	o = vb_event_encode(ev);
	return o ? server_send_to_holder(s, h, o) : 0;
}

size_t reply_notify_released(struct server *s, const struct holder *h, uint32_t group)
{
	return reply_notify(s, h,
			    &(struct vb_event_msg){.type = VB_EVENT_RELEASED, .group = group});
}

size_t reply_notify_revoked(struct server *s, const struct holder *h, uint32_t group)
{
	return reply_notify(s, h, &(struct vb_event_msg){.type = VB_EVENT_REVOKED, .group = group});
}

size_t reply_notify_remove_requested(struct server *s, const struct holder *h, uint32_t group,
				     uint32_t timeout_ms)
{
	return reply_notify(s, h,
			    &(struct vb_event_msg){.type = VB_EVENT_REMOVE_REQUESTED,
						   .group = group,
						   .timeout_ms = timeout_ms});
}

size_t reply_notify_device_added(struct server *s, const struct holder *h, uint32_t group,
				 const char *device)
{
	struct vb_event_msg ev = {.type = VB_EVENT_DEVICE_ADDED, .group = group};

	/* The module names a PCI device "dddd:bb:dd.f"; anything else no client could read. */
	if (!device || vb_address_parse(device, ev.device) < 0)
		return 0;
	return reply_notify(s, h, &ev);
}
