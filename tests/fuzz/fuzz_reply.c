/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness for the client side of the protocol: vb_reply_decode() on a packet that
 * came from the broker socket, then what libvfiobroker does with the body (the typed
 * accessors, vb_group_info_from_json() on every "groups" entry of a list reply,
 * vb_lease_info_from_json() on every "leases" entry), then vb_reply_done().  A client must
 * survive a broken or malicious broker (or whatever is listening on a path it was given).
 *
 * Invariants checked:
 *   - vb_reply_decode returns 0, -ENOMSG (unknown event), -EBADMSG or -ENOMEM; the reply
 *     owns a JSON object body exactly when it returns 0;
 *   - an error reply has a known error code other than ok (unknown ones read as internal);
 *   - an event has a known event name, and vb_event_to_string round-trips it;
 *   - the structured payloads are well-formed (strings terminated and within their fields)
 *     and survive to_json -> from_json unchanged;
 *   - vb_reply_done releases everything (LeakSanitizer) and may be called twice;
 *   - vb_packet_serialize, the writer broker and client use for every packet, writes any
 *     decoded body byte for byte as json-c does (PLAIN | NOSLASHESCAPE), refuses a buffer
 *     one byte too short.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/message.h"
#include "protocol/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__,       \
				#cond);                                                            \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

static size_t bounded_strlen(const char *s, size_t size)
{
	const char *nul = memchr(s, '\0', size);

	CHECK(nul != NULL);
	return (size_t)(nul - s);
}

static void check_device(const struct vb_device_info *d)
{
	bounded_strlen(d->address, sizeof(d->address));
	bounded_strlen(d->vendor, sizeof(d->vendor));
	bounded_strlen(d->device, sizeof(d->device));
	bounded_strlen(d->class_, sizeof(d->class_));
	bounded_strlen(d->driver, sizeof(d->driver));
}

static void check_same_group(const struct vb_group_info *a, const struct vb_group_info *b)
{
	CHECK(a->group == b->group);
	CHECK(a->viable == b->viable);
	CHECK(a->allowed == b->allowed);
	CHECK(a->held == b->held);
	CHECK(a->holder_uid == b->holder_uid);
	CHECK(a->holder_pid == b->holder_pid);
	CHECK(a->n_devices == b->n_devices);
	for (size_t i = 0; i < a->n_devices; i++) {
		const struct vb_device_info *x = &a->devices[i], *y = &b->devices[i];

		CHECK(strcmp(x->address, y->address) == 0);
		CHECK(strcmp(x->vendor, y->vendor) == 0);
		CHECK(strcmp(x->device, y->device) == 0);
		CHECK(strcmp(x->class_, y->class_) == 0);
		CHECK(strcmp(x->driver, y->driver) == 0);
	}
}

/* What vfioctl list does with one entry of "groups". */
static void group_entry(struct json_object *o)
{
	struct vb_group_info g, again;
	struct json_object *j;
	int r;

	r = vb_group_info_from_json(o, &g);
	CHECK(r == 0 || r == -EBADMSG || r == -ENOMEM);
	if (r < 0)
		return;
	CHECK(g.n_devices == 0 || g.devices != NULL);
	for (size_t i = 0; i < g.n_devices; i++)
		check_device(&g.devices[i]);
	if (!g.held)
		CHECK(g.holder_uid == 0 && g.holder_pid == 0);

	j = vb_group_info_to_json(&g);
	CHECK(j != NULL);
	r = vb_group_info_from_json(j, &again);
	CHECK(r == 0);
	check_same_group(&g, &again);
	vb_group_info_done(&again);
	json_object_put(j);

	vb_group_info_done(&g);
	CHECK(g.devices == NULL && g.n_devices == 0);
	vb_group_info_done(&g); /* idempotent */
}

/* What vfioctl leases does with one entry of "leases". */
static void lease_entry(struct json_object *o)
{
	struct vb_lease_info l, again;
	struct json_object *j;
	int r;

	r = vb_lease_info_from_json(o, &l);
	CHECK(r == 0 || r == -EBADMSG);
	if (r < 0)
		return;
	bounded_strlen(l.rule, sizeof(l.rule));
	bounded_strlen(l.state, sizeof(l.state));

	j = vb_lease_info_to_json(&l);
	CHECK(j != NULL);
	r = vb_lease_info_from_json(j, &again);
	CHECK(r == 0);
	CHECK(again.group == l.group && again.uid == l.uid && again.pid == l.pid);
	CHECK(again.since_usec == l.since_usec && again.container_id == l.container_id);
	CHECK(strcmp(again.rule, l.rule) == 0 && strcmp(again.state, l.state) == 0);
	json_object_put(j);
}

static void for_each_entry(struct json_object *body, const char *key,
			   void (*fn)(struct json_object *))
{
	struct json_object *a;

	if (!json_object_object_get_ex(body, key, &a))
		return;
	if (!json_object_is_type(a, json_type_array)) {
		fn(a); /* the accessors must cope with the wrong type too */
		return;
	}
	for (size_t i = 0; i < json_object_array_length(a); i++)
		fn(json_object_array_get_idx(a, i));
}

/* Our JSON writer against json-c's on the same object. */
static void check_writer(struct json_object *body)
{
	static char buf[VB_MAX_PACKET_SIZE];
	const char *ref;
	size_t ref_len, len = 0;
	int r;

	ref = json_object_to_json_string_length(
		body, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &ref_len);
	CHECK(ref != NULL);
	r = vb_packet_serialize(body, buf, sizeof(buf), &len);
	if (ref_len > VB_MAX_PACKET_SIZE) {
		CHECK(r == -EMSGSIZE);
		return;
	}
	CHECK(r == 0);
	if (len != ref_len || memcmp(buf, ref, len) != 0)
		fprintf(stderr, "writer: %.*s\njson-c: %.*s\n", (int)len, buf, (int)ref_len, ref);
	CHECK(len == ref_len && memcmp(buf, ref, len) == 0);
	if (len > 0)
		CHECK(vb_packet_serialize(body, buf, len - 1, &len) == -EMSGSIZE);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const int_keys[] = {"id",	     "version",	   "uid",      "group",
					       "memlock",    "rules",	   "files",    "container",
					       "elapsed_ms", "timeout_ms", "supported"};
	static const char *const string_keys[] = {"server", "rule",   "mode", "reason",
						  "text",   "device", "event"};
	static const char *const bool_keys[] = {"ok", "admin", "released", "allowed", "more"};
	struct vb_reply rep;
	struct json_object *e;
	const char *s;
	int r;

	memset(&rep, 0x5a, sizeof(rep)); /* out-parameters must be fully written on success */
	r = vb_reply_decode((const char *)data, size, &rep);
	CHECK(r == 0 || r == -ENOMSG || r == -EBADMSG || r == -ENOMEM);
	if (r < 0)
		return 0; /* nothing to free: decode owns nothing on failure (LeakSanitizer) */
	check_writer(rep.body);

	CHECK(rep.body != NULL && json_object_is_type(rep.body, json_type_object));
	bounded_strlen(rep.message, sizeof(rep.message));
	if (rep.is_event) {
		CHECK((unsigned)rep.event < _VB_EVENT_MAX);
		CHECK(vb_event_from_string(vb_event_to_string(rep.event)) == (int)rep.event);
		CHECK(rep.ok);
	} else if (!rep.ok) {
		CHECK(rep.code > VB_OK && rep.code < _VB_STATUS_MAX);
		/* the message is the broker's text as sent; it may be empty */
		CHECK(vb_status_from_string(vb_status_to_string(rep.code)) == (int)rep.code);
		CHECK(vb_status_to_errno(rep.code) < 0);
	}

	/* the accessors, on keys the client reads and on whatever type they hold */
	for (size_t i = 0; i < sizeof(int_keys) / sizeof(int_keys[0]); i++)
		(void)vb_body_int(rep.body, int_keys[i], -1);
	for (size_t i = 0; i < sizeof(string_keys) / sizeof(string_keys[0]); i++) {
		s = vb_body_string(rep.body, string_keys[i]);
		if (s)
			(void)strlen(s);
	}
	for (size_t i = 0; i < sizeof(bool_keys) / sizeof(bool_keys[0]); i++)
		(void)vb_body_bool(rep.body, bool_keys[i], false);
	e = vb_reply_error_details(rep.body);
	if (e) {
		(void)vb_body_string(e, "rule");
		(void)vb_body_string(e, "device");
		(void)vb_body_int(e, "uid", -1);
	}

	for_each_entry(rep.body, "groups", group_entry);
	for_each_entry(rep.body, "leases", lease_entry);
	/* a lease reply or an event names one group: the client builds a group_info from it */
	group_entry(rep.body);
	lease_entry(rep.body);

	vb_reply_done(&rep);
	CHECK(rep.body == NULL);
	vb_reply_done(&rep); /* idempotent */
	vb_reply_done(NULL);
	return 0;
}
