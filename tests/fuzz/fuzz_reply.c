/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness for the client side of the protocol: vb_reply_decode() on a packet that
 * came from the broker socket, then every typed decoder of protocol/reply.h on it (the
 * client calls the one of the op it asked; a hostile broker may answer anything), the
 * entry decoders on every "groups" and "leases" entry, then vb_reply_done(). A client must
 * survive a broken or malicious broker (or whatever is listening on a path it was given).
 *
 * Invariants checked:
 *   - vb_reply_decode returns 0, -ENOMSG (unknown event), -EBADMSG or -ENOMEM; the reply
 *     owns a JSON object body exactly when it returns 0;
 *   - an error reply has a known error code other than ok (unknown ones read as internal);
 *   - an event has a known event name, and vb_event_to_string round-trips it;
 *   - a typed decoder returns 0, -EBADMSG or -ENOMEM; what it accepts, its encoder writes
 *     as a packet that decodes again to a value the encoder writes the same way
 *     (encode(decode(encode(x))) == encode(x)), strings terminated and within their fields;
 *   - a cdev lease reply ("path": "cdev") has 1 to VB_MAX_CDEV_DEVICES devices, each
 *     with a terminated address, and its fd indexes (the iommufd's and the devices') are
 *     below VB_MAX_FDS and all different: the client closes and hands on fds by them;
 *     any other lease reply reads as the group path; a device's "paths" has only
 *     VB_PATH_* bits, and survives to_json -> from_json;
 *   - vb_reply_done releases everything (LeakSanitizer) and may be called twice;
 *   - vb_list_chunk_decode, the client library's list path, takes exactly the list
 *     chunks vb_reply_decode + vb_list_reply_decode take, and reads them the same;
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
#include "protocol/reply.h"
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
	CHECK((d->paths & ~((1u << _VB_PATH_MAX) - 1)) == 0);
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
		CHECK(x->paths == y->paths);
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

/* The packet text of obj (taken), allocated; NULL when it does not fit a packet. */
static char *text_of(struct json_object *obj)
{
	static char buf[VB_MAX_PACKET_SIZE];
	size_t len;
	char *text = NULL;

	CHECK(obj != NULL);
	if (vb_packet_serialize(obj, buf, sizeof(buf), &len) == 0) {
		text = malloc(len + 1);
		CHECK(text != NULL);
		memcpy(text, buf, len);
		text[len] = '\0';
	}
	json_object_put(obj);
	return text;
}

static void same_text(const char *first, struct json_object *obj)
{
	char *second = text_of(obj);

	CHECK(second != NULL);
	if (strcmp(first, second) != 0)
		fprintf(stderr, "first:  %s\nsecond: %s\n", first, second);
	CHECK(strcmp(first, second) == 0);
	free(second);
}

static void nothing(void *x)
{
	(void)x;
}

/*
 * round_trip_NAME: the typed decoder of vb_NAME on rep; when it accepts, the encoder's text
 * decodes again, and the encoder writes that value the same way.
 */
#define ROUND_TRIP(name, type, encode_args, done)                                                  \
	static void round_trip_##name(const struct vb_reply *rep)                                  \
	{                                                                                          \
		type x, y;                                                                         \
		struct vb_reply again;                                                             \
		char *first;                                                                       \
		int r = vb_##name##_decode(rep, &x);                                               \
                                                                                                   \
		CHECK(r == 0 || r == -EBADMSG || r == -ENOMEM);                                    \
		if (r < 0)                                                                         \
			return;                                                                    \
		first = text_of(vb_##name##_encode(encode_args, &x));                              \
		if (first) {                                                                       \
			CHECK(vb_reply_decode(first, strlen(first), &again) == 0);                 \
			CHECK(vb_##name##_decode(&again, &y) == 0);                                \
			same_text(first, vb_##name##_encode(encode_args, &y));                     \
			done(&y);                                                                  \
			vb_reply_done(&again);                                                     \
			free(first);                                                               \
		}                                                                                  \
		done(&x);                                                                          \
	}

ROUND_TRIP(hello_reply, struct vb_hello_reply, rep->id, nothing)
ROUND_TRIP(list_reply, struct vb_list_reply, rep->id, vb_list_reply_done)
ROUND_TRIP(lease_reply, struct vb_lease_reply, rep->id, nothing)
ROUND_TRIP(release_reply, struct vb_release_reply, rep->id, nothing)
ROUND_TRIP(merge_reply, struct vb_merge_reply, rep->id, vb_merge_reply_done)
ROUND_TRIP(unmerge_reply, struct vb_unmerge_reply, rep->id, nothing)
ROUND_TRIP(leases_reply, struct vb_leases_reply, rep->id, vb_leases_reply_done)
ROUND_TRIP(remove_reply, struct vb_remove_reply, rep->id, nothing)
ROUND_TRIP(reload_reply, struct vb_reload_reply, rep->id, nothing)
ROUND_TRIP(explain_reply, struct vb_explain_reply, rep->id, vb_explain_reply_done)
ROUND_TRIP(quarantine_reply, struct vb_quarantine_reply, rep->id, nothing)

/* What vfioctl run --cdev relies on before it touches a received fd. */
static void check_lease_reply(const struct vb_reply *rep)
{
	struct vb_lease_reply l;
	uint32_t seen;
	int r = vb_lease_reply_decode(rep, &l);

	CHECK(r == 0 || r == -EBADMSG || r == -ENOMEM);
	if (r < 0)
		return;
	bounded_strlen(l.rule, sizeof(l.rule));
	CHECK(l.path == VB_PATH_GROUP || l.path == VB_PATH_CDEV);
	if (l.path != VB_PATH_CDEV)
		return;
	CHECK(l.n_devices >= 1 && l.n_devices <= VB_MAX_CDEV_DEVICES);
	CHECK(l.iommufd < VB_MAX_FDS);
	seen = 1u << l.iommufd;
	for (size_t i = 0; i < l.n_devices; i++) {
		bounded_strlen(l.devices[i].address, sizeof(l.devices[i].address));
		CHECK(l.devices[i].fd < VB_MAX_FDS);
		CHECK(!(seen & (1u << l.devices[i].fd)));
		seen |= 1u << l.devices[i].fd;
	}
}

static void round_trip_error_reply(const struct vb_reply *rep)
{
	struct vb_error_reply x, y;
	struct vb_reply again;
	char *first;
	int r = vb_error_reply_decode(rep, &x);

	CHECK(r == 0 || r == -EBADMSG);
	if (r < 0)
		return;
	CHECK(!rep->ok && x.code == rep->code);
	bounded_strlen(x.message, sizeof(x.message));
	first = text_of(vb_error_reply_encode(rep->has_id, rep->id, &x));
	if (!first)
		return;
	CHECK(vb_reply_decode(first, strlen(first), &again) == 0);
	CHECK(again.has_id == rep->has_id && again.id == rep->id);
	CHECK(vb_error_reply_decode(&again, &y) == 0);
	same_text(first, vb_error_reply_encode(again.has_id, again.id, &y));
	vb_reply_done(&again);
	free(first);
}

static void round_trip_event(const struct vb_reply *rep)
{
	struct vb_event_msg x, y;
	struct vb_reply again;
	char *first;
	int r = vb_event_decode(rep, &x);

	CHECK(r == 0 || r == -EBADMSG);
	if (r < 0)
		return;
	bounded_strlen(x.device, sizeof(x.device));
	first = text_of(vb_event_encode(&x));
	CHECK(first != NULL);
	CHECK(vb_reply_decode(first, strlen(first), &again) == 0);
	CHECK(vb_event_decode(&again, &y) == 0);
	same_text(first, vb_event_encode(&y));
	vb_reply_done(&again);
	free(first);
}

static void (*const round_trips[])(const struct vb_reply *) = {
	round_trip_hello_reply,	  round_trip_list_reply,       round_trip_lease_reply,
	round_trip_release_reply, round_trip_merge_reply,      round_trip_unmerge_reply,
	round_trip_leases_reply,  round_trip_remove_reply,     round_trip_reload_reply,
	round_trip_explain_reply, round_trip_quarantine_reply, round_trip_error_reply,
	round_trip_event,	  check_lease_reply,
};

/*
 * The client library reads list chunks from the text (vb_list_chunk_decode), not
 * through vb_reply_decode and vb_list_reply_decode: the two must agree. What the text
 * decoder takes as a chunk of request id the tree decoders take, and read the same;
 * a chunk it refuses, they refuse; anything else it hands to vb_reply_decode.
 */
static void check_list_text(const char *data, size_t size, int tree_r, const struct vb_reply *rep)
{
	bool chunk = tree_r == 0 && !rep->is_event && rep->ok;
	uint32_t id = chunk ? rep->id : 0;
	struct vb_list_reply t, j;
	struct vb_reply env;
	int r, k;

	r = vb_list_chunk_decode(data, size, id, &env, &t);
	CHECK(r == 0 || r == 1 || r == -EBADMSG || r == -ENOMSG || r == -ENOMEM);
	if (r == 1) {
		CHECK(env.body != NULL);
		vb_reply_done(&env);
		return;
	}
	if (r == -ENOMEM || r == -ENOMSG)
		return;
	if (r == 0) {
		CHECK(chunk && env.ok && env.has_id && env.id == id && env.body == NULL);
		CHECK(vb_list_reply_decode(rep, &j) == 0);
		CHECK(t.n_groups == j.n_groups && t.more == j.more);
		CHECK(strcmp(t.quarantine, j.quarantine) == 0);
		for (size_t i = 0; i < t.n_groups; i++) {
			check_same_group(&t.groups[i], &j.groups[i]);
			for (size_t d = 0; d < t.groups[i].n_devices; d++)
				check_device(&t.groups[i].devices[d]);
		}
		vb_list_reply_done(&t);
		vb_list_reply_done(&j);
		return;
	}
	/* Refused: if the tree decoders read it as a chunk of this request, they refuse it too. */
	if (!chunk)
		return;
	k = vb_list_reply_decode(rep, &j);
	CHECK(k < 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vb_reply rep;
	int r;

	memset(&rep, 0x5a, sizeof(rep)); /* out-parameters must be fully written on success */
	r = vb_reply_decode((const char *)data, size, &rep);
	CHECK(r == 0 || r == -ENOMSG || r == -EBADMSG || r == -ENOMEM);
	check_list_text((const char *)data, size, r, &rep);
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

	/* every typed decoder: the client picks one by the op it asked, a broker may lie */
	for (size_t i = 0; i < sizeof(round_trips) / sizeof(round_trips[0]); i++)
		round_trips[i](&rep);

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
