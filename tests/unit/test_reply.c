/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of protocol/reply.c, the reply schema: for every reply and
 * event, the encoder writes exactly the bytes the broker sends today (each
 * expected text below is what the named broker function builds for the same
 * values), decode(encode(x)) == x, and a decoder refuses (-EBADMSG) the
 * packet with any one field removed or given the wrong type.
 */
#include "protocol/message.h"
#include "protocol/reply.h"
#include "protocol/wire.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The text of obj as the broker sends it; obj is freed. */
static char *serialize(struct json_object *obj)
{
	static char text[VB_MAX_PACKET_SIZE + 1];
	size_t len;

	ck_assert_ptr_nonnull(obj);
	ck_assert_int_eq(vb_packet_serialize(obj, text, sizeof(text) - 1, &len), 0);
	text[len] = '\0';
	json_object_put(obj);
	return text;
}

static int decode_text(const char *text, struct vb_reply *ret)
{
	return vb_reply_decode(text, strlen(text), ret);
}

/* ---- one case per reply: its sample values, the broker's text, its decoder ---- */

/* Decodes r into a typed value and checks it equals the sample; returns the decoder's result. */
typedef int (*decode_check_fn)(const struct vb_reply *r, bool compare);

static const struct vb_hello_reply hello = {
	.version = 1, .server = "vfio-brokerd 0.1.0", .uid = 2000, .admin = false};

static int hello_check(const struct vb_reply *r, bool compare)
{
	struct vb_hello_reply h;
	int k = vb_hello_reply_decode(r, &h);

	if (k == 0 && compare) {
		ck_assert_uint_eq(h.version, hello.version);
		ck_assert_str_eq(h.server, hello.server);
		ck_assert_uint_eq(h.uid, hello.uid);
		ck_assert(h.admin == hello.admin);
	}
	return k;
}

static struct vb_device_info list_devices[] = {
	{"0000:01:00.0", "8086", "10d3", "020000", "vfio-pci"},
	{"0000:01:00.1", "8086", "10d3", "020000", ""},
};
static struct vb_group_info list_groups[] = {
	{.group = 7,
	 .viable = true,
	 .allowed = true,
	 .held = true,
	 .holder_uid = 2000,
	 .holder_pid = 4242,
	 .n_devices = 2,
	 .devices = list_devices},
	{.group = 8},
};
static const struct vb_list_reply list = {
	.n_groups = 2, .groups = list_groups, .more = true, .quarantine = "kmod"};

static void assert_same_group(const struct vb_group_info *a, const struct vb_group_info *b)
{
	ck_assert_uint_eq(a->group, b->group);
	ck_assert(a->viable == b->viable && a->allowed == b->allowed && a->held == b->held);
	ck_assert_uint_eq(a->holder_uid, b->holder_uid);
	ck_assert_int_eq(a->holder_pid, b->holder_pid);
	ck_assert_uint_eq(a->n_devices, b->n_devices);
	for (size_t i = 0; i < a->n_devices; i++) {
		ck_assert_str_eq(a->devices[i].address, b->devices[i].address);
		ck_assert_str_eq(a->devices[i].vendor, b->devices[i].vendor);
		ck_assert_str_eq(a->devices[i].device, b->devices[i].device);
		ck_assert_str_eq(a->devices[i].class_, b->devices[i].class_);
		ck_assert_str_eq(a->devices[i].driver, b->devices[i].driver);
	}
}

static int list_check(const struct vb_reply *r, bool compare)
{
	struct vb_list_reply l;
	int k = vb_list_reply_decode(r, &l);

	if (k == 0 && compare) {
		ck_assert_uint_eq(l.n_groups, list.n_groups);
		for (size_t i = 0; i < l.n_groups; i++)
			assert_same_group(&l.groups[i], &list.groups[i]);
		ck_assert(l.more == list.more);
		ck_assert_str_eq(l.quarantine, list.quarantine);
	}
	if (k == 0)
		vb_list_reply_done(&l);
	return k;
}

/*
 * The same chunk read from its text, as the client library reads list chunks
 * (vb_list_chunk_decode, no json-c tree): r's body written out again.
 */
static int list_text_check(const struct vb_reply *r, bool compare)
{
	static char text[VB_MAX_PACKET_SIZE + 1];
	struct vb_list_reply l;
	struct vb_reply env;
	size_t len;
	int k;

	ck_assert_int_eq(vb_packet_serialize(r->body, text, sizeof(text) - 1, &len), 0);
	k = vb_list_chunk_decode(text, len, r->id, &env, &l);
	if (k == 1) { /* not taken for a list chunk: the test's packet is one */
		vb_reply_done(&env);
		return -EPROTO;
	}
	if (k == 0) {
		ck_assert(env.ok && env.has_id && env.id == r->id && !env.body);
		if (compare) {
			ck_assert_uint_eq(l.n_groups, list.n_groups);
			for (size_t i = 0; i < l.n_groups; i++)
				assert_same_group(&l.groups[i], &list.groups[i]);
			ck_assert(l.more == list.more);
			ck_assert_str_eq(l.quarantine, list.quarantine);
		}
		vb_list_reply_done(&l);
	}
	return k;
}

static const struct vb_lease_reply lease = {
	.group = 7, .rule = "lab-nics", .memlock = 8589934592ull};
static const struct vb_lease_reply lease_unlimited = {.group = 7};

static int lease_compare(const struct vb_reply *r, bool compare, const struct vb_lease_reply *want)
{
	struct vb_lease_reply l;
	int k = vb_lease_reply_decode(r, &l);

	if (k == 0 && compare) {
		ck_assert_uint_eq(l.group, want->group);
		ck_assert_str_eq(l.rule, want->rule);
		ck_assert_uint_eq(l.memlock, want->memlock);
	}
	return k;
}

static int lease_check(const struct vb_reply *r, bool compare)
{
	return lease_compare(r, compare, &lease);
}

static int lease_unlimited_check(const struct vb_reply *r, bool compare)
{
	return lease_compare(r, compare, &lease_unlimited);
}

static const struct vb_release_reply release = {.group = 7, .released = false};

static int release_check(const struct vb_reply *r, bool compare)
{
	struct vb_release_reply l;
	int k = vb_release_reply_decode(r, &l);

	if (k == 0 && compare) {
		ck_assert_uint_eq(l.group, release.group);
		ck_assert(l.released == release.released);
	}
	return k;
}

static uint32_t merge_groups[] = {7, 8};
static const struct vb_merge_reply merge = {.container = 1, .n_groups = 2, .groups = merge_groups};

static int merge_check(const struct vb_reply *r, bool compare)
{
	struct vb_merge_reply m;
	int k = vb_merge_reply_decode(r, &m);

	if (k == 0 && compare) {
		ck_assert_uint_eq(m.container, merge.container);
		ck_assert_uint_eq(m.n_groups, merge.n_groups);
		for (size_t i = 0; i < m.n_groups; i++)
			ck_assert_uint_eq(m.groups[i], merge.groups[i]);
	}
	if (k == 0)
		vb_merge_reply_done(&m);
	return k;
}

static const struct vb_unmerge_reply unmerge = {.group = 8};

static int unmerge_check(const struct vb_reply *r, bool compare)
{
	struct vb_unmerge_reply u;
	int k = vb_unmerge_reply_decode(r, &u);

	if (k == 0 && compare)
		ck_assert_uint_eq(u.group, unmerge.group);
	return k;
}

static struct vb_lease_info leases_entries[] = {
	{.group = 7,
	 .uid = 2000,
	 .pid = 4242,
	 .since_usec = 1764000000000000ull,
	 .rule = "lab-nics",
	 .state = "held",
	 .container_id = 0},
	{.group = 9,
	 .uid = 2001,
	 .pid = 0,
	 .since_usec = 1,
	 .rule = "",
	 .state = "releasing",
	 .container_id = 3},
};
static const struct vb_leases_reply leases = {
	.n_leases = 2, .leases = leases_entries, .more = false};

static int leases_check(const struct vb_reply *r, bool compare)
{
	struct vb_leases_reply l;
	int k = vb_leases_reply_decode(r, &l);

	if (k == 0 && compare) {
		ck_assert_uint_eq(l.n_leases, leases.n_leases);
		for (size_t i = 0; i < l.n_leases; i++) {
			const struct vb_lease_info *a = &l.leases[i], *b = &leases.leases[i];

			ck_assert_uint_eq(a->group, b->group);
			ck_assert_uint_eq(a->uid, b->uid);
			ck_assert_int_eq(a->pid, b->pid);
			ck_assert_uint_eq(a->since_usec, b->since_usec);
			ck_assert_str_eq(a->rule, b->rule);
			ck_assert_str_eq(a->state, b->state);
			ck_assert_uint_eq(a->container_id, b->container_id);
		}
		ck_assert(l.more == leases.more);
	}
	if (k == 0)
		vb_leases_reply_done(&l);
	return k;
}

static const struct vb_remove_reply remove_soft = {
	.group = 7, .mode = VB_REMOVE_SOFT, .elapsed_ms = 1200};

static int remove_check(const struct vb_reply *r, bool compare)
{
	struct vb_remove_reply m;
	int k = vb_remove_reply_decode(r, &m);

	if (k == 0 && compare) {
		ck_assert_uint_eq(m.group, remove_soft.group);
		ck_assert_int_eq(m.mode, remove_soft.mode);
		ck_assert_uint_eq(m.elapsed_ms, remove_soft.elapsed_ms);
	}
	return k;
}

static const struct vb_reload_reply reload = {.rules = 12, .files = 3};

static int reload_check(const struct vb_reply *r, bool compare)
{
	struct vb_reload_reply l;
	int k = vb_reload_reply_decode(r, &l);

	if (k == 0 && compare) {
		ck_assert_uint_eq(l.rules, reload.rules);
		ck_assert_uint_eq(l.files, reload.files);
	}
	return k;
}

static const struct vb_explain_reply explain = {
	.group = 7,
	.uid = 2000,
	.allowed = true,
	.rule = "lab-nics",
	.device = "",
	.reason = "rule \"lab-nics\" (10-lab.json:3) allows lease of 0000:01:00.0",
	.text = "0000:01:00.0 8086:10d3: allowed by rule \"lab-nics\" (10-lab.json:3)\n"};

static int explain_check(const struct vb_reply *r, bool compare)
{
	struct vb_explain_reply e;
	int k = vb_explain_reply_decode(r, &e);

	if (k == 0 && compare) {
		ck_assert_uint_eq(e.group, explain.group);
		ck_assert_uint_eq(e.uid, explain.uid);
		ck_assert(e.allowed == explain.allowed);
		ck_assert_str_eq(e.rule, explain.rule);
		ck_assert_str_eq(e.device, explain.device);
		ck_assert_str_eq(e.reason, explain.reason);
		ck_assert_str_eq(e.text, explain.text);
	}
	if (k == 0)
		vb_explain_reply_done(&e);
	return k;
}

static const struct vb_quarantine_reply quarantine = {.group = 10,
						      .mode = VB_QUARANTINE_KMOD,
						      .n_devices = 2,
						      .devices = {"0000:03:00.0", "0000:03:00.1"}};

static int quarantine_check(const struct vb_reply *r, bool compare)
{
	struct vb_quarantine_reply q;
	int k = vb_quarantine_reply_decode(r, &q);

	if (k == 0 && compare) {
		ck_assert_uint_eq(q.group, quarantine.group);
		ck_assert_int_eq(q.mode, quarantine.mode);
		ck_assert_uint_eq(q.n_devices, quarantine.n_devices);
		for (size_t i = 0; i < q.n_devices; i++)
			ck_assert_str_eq(q.devices[i], quarantine.devices[i]);
	}
	return k;
}

static const struct vb_error_reply busy = {
	.code = VB_E_BUSY,
	.message = "group 7 is held by uid 2000; ask them or an administrator to release it",
	.has_uid = true,
	.uid = 2000};

static int error_compare(const struct vb_reply *r, bool compare, const struct vb_error_reply *want)
{
	struct vb_error_reply e;
	int k = vb_error_reply_decode(r, &e);

	if (k == 0 && compare) {
		ck_assert_int_eq(e.code, want->code);
		ck_assert_str_eq(e.message, want->message);
		ck_assert(e.has_uid == want->has_uid && e.uid == want->uid);
		ck_assert(e.has_container == want->has_container && e.container == want->container);
		ck_assert(e.has_retry_after_ms == want->has_retry_after_ms &&
			  e.retry_after_ms == want->retry_after_ms);
		ck_assert(e.has_supported == want->has_supported);
		ck_assert(e.supported[0] == want->supported[0] &&
			  e.supported[1] == want->supported[1]);
		ck_assert(e.has_memlock == want->has_memlock && e.memlock == want->memlock &&
			  e.asked == want->asked);
		ck_assert(e.has_denial == want->has_denial);
		ck_assert_str_eq(e.device, want->device);
		ck_assert_str_eq(e.rule, want->rule);
		ck_assert_str_eq(e.reason, want->reason);
	}
	return k;
}

static int busy_check(const struct vb_reply *r, bool compare)
{
	return error_compare(r, compare, &busy);
}

static const struct vb_error_reply unsupported = {
	.code = VB_E_UNSUPPORTED_VERSION,
	.message = "protocol version 0 is not supported; this broker speaks versions 1 to 1",
	.has_supported = true,
	.supported = {1, 1}};

static int unsupported_check(const struct vb_reply *r, bool compare)
{
	return error_compare(r, compare, &unsupported);
}

static const struct vb_error_reply rate = {.code = VB_E_LIMIT,
					   .message = "try again in 5 ms",
					   .has_retry_after_ms = true,
					   .retry_after_ms = 5};

static int rate_check(const struct vb_reply *r, bool compare)
{
	return error_compare(r, compare, &rate);
}

static const struct vb_error_reply memlock_short = {
	.code = VB_E_DENIED,
	.message = "rule vm gives 64M of locked memory (memlock), but 65M was asked for",
	.has_memlock = true,
	.memlock = 67108864,
	.asked = 68157440};

static int memlock_short_check(const struct vb_reply *r, bool compare)
{
	return error_compare(r, compare, &memlock_short);
}

static const struct vb_error_reply in_container = {
	.code = VB_E_BUSY, .message = "unmerge it first", .has_container = true, .container = 2};

static int in_container_check(const struct vb_reply *r, bool compare)
{
	return error_compare(r, compare, &in_container);
}

static const struct vb_error_reply denied_by_rule = {
	.code = VB_E_DENIED,
	.message = "rule lab-deny (10-lab.json:9) denies you to lease device 0000:01:00.1 of group "
		   "7; ask an administrator",
	.has_denial = true,
	.device = "0000:01:00.1",
	.rule = "lab-deny",
	.reason = "rule \"lab-deny\" (10-lab.json:9) denies lease of 0000:01:00.1"};

static int denied_by_rule_check(const struct vb_reply *r, bool compare)
{
	return error_compare(r, compare, &denied_by_rule);
}

static const struct vb_error_reply denied_by_default = {
	.code = VB_E_DENIED,
	.message = "no rule allows uid 2000 to lease device 0000:01:00.0 of group 7; ask an "
		   "administrator to add one",
	.has_denial = true,
	.reason = "no rule allows lease of 0000:01:00.0"};

static int denied_by_default_check(const struct vb_reply *r, bool compare)
{
	return error_compare(r, compare, &denied_by_default);
}

static const struct vb_event_msg ev_remove = {
	.type = VB_EVENT_REMOVE_REQUESTED, .group = 7, .timeout_ms = 30000};
static const struct vb_event_msg ev_revoked = {.type = VB_EVENT_REVOKED, .group = 7};
static const struct vb_event_msg ev_released = {.type = VB_EVENT_RELEASED, .group = 7};
static const struct vb_event_msg ev_added = {
	.type = VB_EVENT_DEVICE_ADDED, .group = 7, .device = "0000:01:00.2"};

static int event_compare(const struct vb_reply *r, bool compare, const struct vb_event_msg *want)
{
	struct vb_event_msg e;
	int k = vb_event_decode(r, &e);

	if (k == 0 && compare) {
		ck_assert_int_eq(e.type, want->type);
		ck_assert_uint_eq(e.group, want->group);
		ck_assert_uint_eq(e.timeout_ms, want->timeout_ms);
		ck_assert_str_eq(e.device, want->device);
	}
	return k;
}

static int ev_remove_check(const struct vb_reply *r, bool compare)
{
	return event_compare(r, compare, &ev_remove);
}

static int ev_revoked_check(const struct vb_reply *r, bool compare)
{
	return event_compare(r, compare, &ev_revoked);
}

static int ev_released_check(const struct vb_reply *r, bool compare)
{
	return event_compare(r, compare, &ev_released);
}

static int ev_added_check(const struct vb_reply *r, bool compare)
{
	return event_compare(r, compare, &ev_added);
}

struct reply_case {
	const char *name;
	struct json_object *(*encode)(void);
	/* What the broker sends for the sample values today, and which function builds it. */
	const char *broker_text;
	decode_check_fn check;
	const char *optional[2]; /* fields whose absence is fine (their wrong type is not) */
};

static struct json_object *enc_hello(void)
{
	return vb_hello_reply_encode(1, &hello);
}
static struct json_object *enc_list(void)
{
	return vb_list_reply_encode(2, &list);
}
static struct json_object *enc_lease(void)
{
	return vb_lease_reply_encode(3, &lease);
}
static struct json_object *enc_lease_unlimited(void)
{
	return vb_lease_reply_encode(3, &lease_unlimited);
}
static struct json_object *enc_release(void)
{
	return vb_release_reply_encode(5, &release);
}
static struct json_object *enc_merge(void)
{
	return vb_merge_reply_encode(6, &merge);
}
static struct json_object *enc_unmerge(void)
{
	return vb_unmerge_reply_encode(7, &unmerge);
}
static struct json_object *enc_leases(void)
{
	return vb_leases_reply_encode(8, &leases);
}
static struct json_object *enc_remove(void)
{
	return vb_remove_reply_encode(9, &remove_soft);
}
static struct json_object *enc_reload(void)
{
	return vb_reload_reply_encode(10, &reload);
}
static struct json_object *enc_explain(void)
{
	return vb_explain_reply_encode(11, &explain);
}
static struct json_object *enc_quarantine(void)
{
	return vb_quarantine_reply_encode(12, &quarantine);
}
static struct json_object *enc_busy(void)
{
	return vb_error_reply_encode(true, 4, &busy);
}
static struct json_object *enc_unsupported(void)
{
	return vb_error_reply_encode(true, 1, &unsupported);
}
static struct json_object *enc_rate(void)
{
	return vb_error_reply_encode(false, 0, &rate);
}
static struct json_object *enc_memlock_short(void)
{
	return vb_error_reply_encode(true, 4, &memlock_short);
}
static struct json_object *enc_in_container(void)
{
	return vb_error_reply_encode(true, 6, &in_container);
}
static struct json_object *enc_denied_by_rule(void)
{
	return vb_error_reply_encode(true, 3, &denied_by_rule);
}
static struct json_object *enc_denied_by_default(void)
{
	return vb_error_reply_encode(true, 3, &denied_by_default);
}
static struct json_object *enc_ev_remove(void)
{
	return vb_event_encode(&ev_remove);
}
static struct json_object *enc_ev_revoked(void)
{
	return vb_event_encode(&ev_revoked);
}
static struct json_object *enc_ev_released(void)
{
	return vb_event_encode(&ev_released);
}
static struct json_object *enc_ev_added(void)
{
	return vb_event_encode(&ev_added);
}

static const struct reply_case cases[] = {
	{"hello (ops_hello)", enc_hello,
	 "{\"id\":1,\"ok\":true,\"version\":1,\"server\":\"vfio-brokerd 0.1.0\",\"uid\":2000,"
	 "\"admin\":false}",
	 hello_check},
	{"list chunk (ops_list, chunker_flush, vb_group_info_to_json)",
	 enc_list,
	 "{\"id\":2,\"ok\":true,\"groups\":[{\"group\":7,\"viable\":true,\"allowed\":true,"
	 "\"devices\":[{\"address\":\"0000:01:00.0\",\"vendor\":\"8086\",\"device\":\"10d3\","
	 "\"class\":\"020000\",\"driver\":\"vfio-pci\"},{\"address\":\"0000:01:00.1\","
	 "\"vendor\":\"8086\",\"device\":\"10d3\",\"class\":\"020000\",\"driver\":null}],"
	 "\"holder\":{\"uid\":2000,\"pid\":4242}},{\"group\":8,\"viable\":false,\"allowed\":false,"
	 "\"devices\":[],\"holder\":null}],\"more\":true,\"quarantine\":\"kmod\"}",
	 list_check,
	 {"quarantine"}},
	{"list chunk read from its text (vb_list_chunk_decode)",
	 enc_list,
	 "{\"id\":2,\"ok\":true,\"groups\":[{\"group\":7,\"viable\":true,\"allowed\":true,"
	 "\"devices\":[{\"address\":\"0000:01:00.0\",\"vendor\":\"8086\",\"device\":\"10d3\","
	 "\"class\":\"020000\",\"driver\":\"vfio-pci\"},{\"address\":\"0000:01:00.1\","
	 "\"vendor\":\"8086\",\"device\":\"10d3\",\"class\":\"020000\",\"driver\":null}],"
	 "\"holder\":{\"uid\":2000,\"pid\":4242}},{\"group\":8,\"viable\":false,\"allowed\":false,"
	 "\"devices\":[],\"holder\":null}],\"more\":true,\"quarantine\":\"kmod\"}",
	 list_text_check,
	 {"quarantine"}},
	{"lease (ops_lease)", enc_lease,
	 "{\"id\":3,\"ok\":true,\"group\":7,\"rule\":\"lab-nics\",\"memlock\":8589934592}",
	 lease_check},
	{"lease without rule or memlock (ops_lease)", enc_lease_unlimited,
	 "{\"id\":3,\"ok\":true,\"group\":7,\"rule\":null,\"memlock\":null}",
	 lease_unlimited_check},
	{"release (ops_release)", enc_release,
	 "{\"id\":5,\"ok\":true,\"group\":7,\"released\":false}", release_check},
	{"merge (merge_handle)", enc_merge,
	 "{\"id\":6,\"ok\":true,\"container\":1,\"groups\":[7,8]}", merge_check},
	{"unmerge (unmerge_handle)", enc_unmerge, "{\"id\":7,\"ok\":true,\"group\":8}",
	 unmerge_check},
	{"leases chunk (ops_leases, chunker_flush, vb_lease_info_to_json)", enc_leases,
	 "{\"id\":8,\"ok\":true,\"leases\":[{\"group\":7,\"uid\":2000,\"pid\":4242,"
	 "\"since_usec\":1764000000000000,\"rule\":\"lab-nics\",\"state\":\"held\","
	 "\"container\":0},{\"group\":9,\"uid\":2001,\"pid\":0,\"since_usec\":1,\"rule\":\"\","
	 "\"state\":\"releasing\",\"container\":3}],\"more\":false}",
	 leases_check},
	{"remove (removals_lease_ended in remove.c)", enc_remove,
	 "{\"id\":9,\"ok\":true,\"group\":7,\"mode\":\"soft\",\"elapsed_ms\":1200}", remove_check},
	{"reload (ops_reload)", enc_reload, "{\"id\":10,\"ok\":true,\"rules\":12,\"files\":3}",
	 reload_check},
	{"explain (ops_explain)", enc_explain,
	 "{\"id\":11,\"ok\":true,\"group\":7,\"uid\":2000,\"allowed\":true,\"rule\":\"lab-nics\","
	 "\"device\":null,\"reason\":\"rule \\\"lab-nics\\\" (10-lab.json:3) allows lease of "
	 "0000:01:00.0\",\"text\":\"0000:01:00.0 8086:10d3: allowed by rule \\\"lab-nics\\\" "
	 "(10-lab.json:3)\\n\"}",
	 explain_check},
	{"quarantine and unquarantine (quarantine_handle)", enc_quarantine,
	 "{\"id\":12,\"ok\":true,\"group\":10,\"mode\":\"kmod\",\"devices\":[\"0000:03:00.0\","
	 "\"0000:03:00.1\"]}",
	 quarantine_check},
	{"busy with the holder's uid (ops_lease_busy)",
	 enc_busy,
	 "{\"id\":4,\"ok\":false,\"error\":{\"code\":\"busy\",\"message\":\"group 7 is held by uid "
	 "2000; ask them or an administrator to release it\",\"uid\":2000}}",
	 busy_check,
	 {"error.uid"}},
	{"unsupported-version (ops_hello)",
	 enc_unsupported,
	 "{\"id\":1,\"ok\":false,\"error\":{\"code\":\"unsupported-version\",\"message\":"
	 "\"protocol version 0 is not supported; this broker speaks versions 1 to 1\","
	 "\"supported\":[1,1]}}",
	 unsupported_check,
	 {"error.supported"}},
	{"limit without an id (connection_refuse_rate)",
	 enc_rate,
	 "{\"id\":null,\"ok\":false,\"error\":{\"code\":\"limit\",\"message\":\"try again in 5 "
	 "ms\",\"retry_after_ms\":5}}",
	 rate_check,
	 {"error.retry_after_ms"}},
	{"denied for too little memlock (memlock_check_lease)", enc_memlock_short,
	 "{\"id\":4,\"ok\":false,\"error\":{\"code\":\"denied\",\"message\":\"rule vm gives "
	 "64M of locked memory (memlock), but 65M was asked for\",\"memlock\":67108864,"
	 "\"asked\":68157440}}",
	 memlock_short_check},
	{"busy in a container (merge_handle)",
	 enc_in_container,
	 "{\"id\":6,\"ok\":false,\"error\":{\"code\":\"busy\",\"message\":\"unmerge it first\","
	 "\"container\":2}}",
	 in_container_check,
	 {"error.container"}},
	{"denied by a rule (ops_check_group)", enc_denied_by_rule,
	 "{\"id\":3,\"ok\":false,\"error\":{\"code\":\"denied\",\"message\":\"rule lab-deny "
	 "(10-lab.json:9) denies you to lease device 0000:01:00.1 of group 7; ask an "
	 "administrator\",\"device\":\"0000:01:00.1\",\"rule\":\"lab-deny\",\"reason\":\"rule "
	 "\\\"lab-deny\\\" (10-lab.json:9) denies lease of 0000:01:00.1\"}}",
	 denied_by_rule_check},
	{"denied by no rule (ops_check_group)", enc_denied_by_default,
	 "{\"id\":3,\"ok\":false,\"error\":{\"code\":\"denied\",\"message\":\"no rule allows "
	 "uid 2000 to lease device 0000:01:00.0 of group 7; ask an administrator to add one\","
	 "\"device\":null,\"rule\":null,\"reason\":\"no rule allows lease of 0000:01:00.0\"}}",
	 denied_by_default_check},
	{"remove-requested (remove_handle)", enc_ev_remove,
	 "{\"event\":\"remove-requested\",\"group\":7,\"timeout_ms\":30000}", ev_remove_check},
	{"revoked (remove.c, hard removal)", enc_ev_revoked, "{\"event\":\"revoked\",\"group\":7}",
	 ev_revoked_check},
	{"released (ops_hook_ended)", enc_ev_released, "{\"event\":\"released\",\"group\":7}",
	 ev_released_check},
	{"device-added (kmod_link.c)", enc_ev_added,
	 "{\"event\":\"device-added\",\"group\":7,\"device\":\"0000:01:00.2\"}", ev_added_check},
};

#define N_CASES (sizeof(cases) / sizeof(cases[0]))

START_TEST(test_each_encoder_writes_what_the_broker_sends_today)
{
	const struct reply_case *c = &cases[_i];

	ck_assert_msg(strcmp(serialize(c->encode()), c->broker_text) == 0, "%s", c->name);
}
END_TEST

START_TEST(test_each_decoder_reads_back_what_its_encoder_wrote)
{
	const struct reply_case *c = &cases[_i];
	struct vb_reply r;

	ck_assert_int_eq(decode_text(serialize(c->encode()), &r), 0);
	ck_assert_int_eq(c->check(&r, true), 0);
	vb_reply_done(&r);
}
END_TEST

/* The packet writer is json-c's text, without json-c's printbuf: the same bytes, always. */
START_TEST(test_the_writer_writes_what_json_c_writes)
{
	const struct reply_case *c = &cases[_i];
	struct json_object *o = c->encode();
	const char *ref;
	char *ours;
	size_t ref_len;

	/* escapes json-c writes its own way: controls, quotes, backslash, slash, non-ASCII */
	json_object_object_add(o, "escapes",
			       json_object_new_string("\x01\b\f\n\r\t\x1f\"\\/\x7f\xc3\xa9"));
	ref = json_object_to_json_string_length(
		o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &ref_len);
	ours = serialize(json_object_get(o));
	ck_assert_uint_eq(strlen(ours), ref_len);
	ck_assert_str_eq(ours, ref);
	json_object_put(o);
}
END_TEST

/*
 * The broker writes list chunks from text (vb_group_info_write, then
 * vb_list_chunk_write), not from json-c trees: the bytes must be those of
 * vb_list_chunk_encode, for every shape an entry takes.
 */
START_TEST(test_a_list_chunk_written_as_text_is_the_encoders_bytes)
{
	struct vb_device_info devs[] = {
		{"0000:01:00.0", "8086", "10d3", "020000", "vfio-pci",
		 (1u << VB_PATH_GROUP) | (1u << VB_PATH_CDEV)},
		{"0000:01:00.1", "8086", "10d3", "060400", "", 0},
		{"0000:01:00.2", "8086", "10d3", "020000", "we\"ird\n", 1u << VB_PATH_GROUP},
	};
	struct vb_group_info groups[] = {
		list_groups[0],
		list_groups[1],
		{.group = VB_MAX_GROUP_ID, .viable = true, .n_devices = 3, .devices = devs},
		{.group = 3, .held = true, .holder_uid = UINT32_MAX, .holder_pid = 0},
		{.group = 4, .held = true, .holder_uid = 1, .holder_pid = INT32_MAX},
		{.group = 5, .held = true, .holder_uid = 1, .holder_pid = -1},
	};
	const size_t n = sizeof(groups) / sizeof(groups[0]);
	static char entries[16384], ours[16384];
	size_t len = 0, ours_len;

	for (size_t i = 0; i < n; i++) {
		size_t one;

		if (i)
			entries[len++] = ',';
		ck_assert_int_eq(
			vb_group_info_write(&groups[i], entries + len, sizeof(entries) - len, &one),
			0);
		len += one;
	}
	for (int more = 0; more <= 1; more++) {
		const char *modes[] = {"kmod", "", NULL};

		for (size_t m = 0; m < 3; m++) {
			struct vb_list_reply r = {.n_groups = n, .groups = groups, .more = more};
			char *ref;

			snprintf(r.quarantine, sizeof(r.quarantine), "%s",
				 modes[m] ? modes[m] : "");
			ref = serialize(vb_list_reply_encode(77, &r));
			ck_assert_int_eq(vb_list_chunk_write(77, entries, len, more, modes[m], ours,
							     sizeof(ours), &ours_len),
					 0);
			ck_assert_uint_eq(ours_len, strlen(ref));
			ck_assert(memcmp(ours, ref, ours_len) == 0);
			/* and an empty chunk, as an empty inventory sends */
			r.n_groups = 0;
			ref = serialize(vb_list_reply_encode(77, &r));
			ck_assert_int_eq(vb_list_chunk_write(77, "", 0, more, modes[m], ours,
							     sizeof(ours), &ours_len),
					 0);
			ck_assert_uint_eq(ours_len, strlen(ref));
			ck_assert(memcmp(ours, ref, ours_len) == 0);
		}
	}
	ck_assert_int_eq(vb_list_chunk_write(77, entries, len, false, "kmod", ours, len, &ours_len),
			 -EMSGSIZE);
	ck_assert_int_eq(vb_group_info_write(&groups[2], entries, 10, &ours_len), -EMSGSIZE);
}
END_TEST

START_TEST(test_the_writer_refuses_a_buffer_one_byte_short)
{
	struct json_object *o = enc_list();
	char text[4096];
	size_t len, again;

	ck_assert_int_eq(vb_packet_serialize(o, text, sizeof(text), &len), 0);
	ck_assert_int_eq(vb_packet_serialize(o, text, len - 1, &again), -EMSGSIZE);
	ck_assert_int_eq(vb_packet_serialize(o, text, len, &again), 0);
	ck_assert_uint_eq(again, len);
	json_object_put(o);
}
END_TEST

/* ---- every field removed, and every field of the wrong type ---- */

/* A value of another JSON type than v's: what a confused or hostile broker might send. */
static struct json_object *wrong_type(struct json_object *v)
{
	switch (json_object_get_type(v)) {
	case json_type_string:
		return json_object_new_int(1);
	case json_type_int:
		return json_object_new_string("1");
	case json_type_null: /* a nullable string, integer or object: a boolean is none */
		return json_object_new_boolean(1);
	default:
		return json_object_new_int(-1);
	}
}

static bool is_optional(const struct reply_case *c, const char *path)
{
	for (size_t i = 0; i < 2; i++)
		if (c->optional[i] && strcmp(c->optional[i], path) == 0)
			return true;
	return false;
}

/* The packet after mutate() changed it fails to decode: in the envelope or in the typed decoder. */
static void assert_refused(const struct reply_case *c, struct json_object *root, const char *what,
			   const char *path)
{
	struct vb_reply r;
	const char *text = serialize(json_object_get(root));
	int k = decode_text(text, &r);

	if (k == 0) {
		k = c->check(&r, false);
		vb_reply_done(&r);
	}
	ck_assert_msg(k == -EBADMSG, "%s: %s %s: decoded (%d): %s", c->name, what, path, k, text);
}

static void assert_accepted(const struct reply_case *c, struct json_object *root, const char *path)
{
	struct vb_reply r;
	const char *text = serialize(json_object_get(root));

	ck_assert_msg(decode_text(text, &r) == 0 && c->check(&r, false) == 0,
		      "%s: without optional %s: refused: %s", c->name, path, text);
	vb_reply_done(&r);
}

/*
 * For every member of obj (and every element of its arrays), below root: the packet without
 * it, and with it of the wrong type, is refused. Recurses into objects and arrays.
 */
static void mutate_each(const struct reply_case *c, struct json_object *root,
			struct json_object *obj, const char *prefix, size_t *n_checked)
{
	char path[256];

	if (json_object_is_type(obj, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(obj); i++) {
			struct json_object *v = json_object_get(json_object_array_get_idx(obj, i));

			snprintf(path, sizeof(path), "%s[%zu]", prefix, i);
			json_object_array_put_idx(obj, i, wrong_type(v));
			assert_refused(c, root, "wrong type of", path);
			json_object_array_put_idx(obj, i, v);
			mutate_each(c, root, v, path, n_checked);
			(*n_checked)++;
		}
		return;
	}
	if (!json_object_is_type(obj, json_type_object))
		return;
	/* Collect the keys first: removing and re-adding a key changes the iteration. */
	const char *keys[16];
	size_t n = 0;

	json_object_object_foreach (obj, member, val) {
		(void)val;
		if (n < 16)
			keys[n++] = member;
	}
	for (size_t i = 0; i < n; i++) {
		struct json_object *v = json_object_get(json_object_object_get(obj, keys[i]));
		char key[64];

		snprintf(key, sizeof(key), "%s", keys[i]);
		snprintf(path, sizeof(path), "%s%s%s", prefix, prefix[0] ? "." : "", key);
		/* the event name and envelope are the envelope's business, tested below */
		if (strcmp(path, "event") == 0) {
			json_object_put(v);
			continue;
		}
		json_object_object_add(obj, key, wrong_type(v));
		assert_refused(c, root, "wrong type of", path);
		json_object_object_del(obj, key);
		if (is_optional(c, path))
			assert_accepted(c, root, path);
		else
			assert_refused(c, root, "without", path);
		json_object_object_add(obj, key, v);
		mutate_each(c, root, v, path, n_checked);
		(*n_checked)++;
	}
}

START_TEST(test_each_decoder_refuses_any_field_missing_or_of_the_wrong_type)
{
	const struct reply_case *c = &cases[_i];
	struct json_object *root = json_tokener_parse(c->broker_text);
	size_t n_checked = 0;

	ck_assert_ptr_nonnull(root);
	mutate_each(c, root, root, "", &n_checked);
	ck_assert_uint_gt(n_checked, 0);
	json_object_put(root);
}
END_TEST

/* ---- what used to fail open, and values of the right type but out of range ---- */

/*
 * The client reads list chunks from the text (vb_list_chunk_decode): every
 * value of the right type but out of range that the tree decoder refuses,
 * it refuses too; and a packet that is no list chunk of this request (an
 * event, an error, another id) it leaves to vb_reply_decode.
 */
START_TEST(test_the_text_list_decoder_refuses_what_the_tree_decoder_refuses)
{
	static const char *const bad[] = {
		"{\"group\":2147483648,\"viable\":true,\"allowed\":true,\"devices\":[],\"holder\":"
		"null}",
		"{\"group\":-1,\"viable\":true,\"allowed\":true,\"devices\":[],\"holder\":null}",
		"{\"group\":7.0,\"viable\":true,\"allowed\":true,\"devices\":[],\"holder\":null}",
		"{\"group\":7e0,\"viable\":true,\"allowed\":true,\"devices\":[],\"holder\":null}",
		"{\"group\":99999999999999999999999,\"viable\":true,\"allowed\":true,\"devices\":[]"
		","
		"\"holder\":null}",
		"{\"group\":7,\"viable\":null,\"allowed\":true,\"devices\":[],\"holder\":null}",
		"{\"group\":7,\"viable\":true,\"allowed\":true,\"devices\":null,\"holder\":null}",
		"{\"group\":7,\"viable\":true,\"allowed\":true,\"devices\":[],\"holder\":"
		"{\"uid\":4294967296,\"pid\":1}}",
		"{\"group\":7,\"viable\":true,\"allowed\":true,\"devices\":[],\"holder\":"
		"{\"uid\":1,\"pid\":2147483648}}",
		"{\"group\":7,\"viable\":true,\"allowed\":true,\"devices\":[],\"holder\":{\"uid\":"
		"1}}",
		"{\"group\":7,\"viable\":true,\"allowed\":true,\"devices\":[],\"holder\":[]}",
		"{\"group\":7,\"viable\":true,\"allowed\":true,\"devices\":[{\"address\":\"0000:01:"
		"00\","
		"\"vendor\":\"8086\",\"device\":\"10d3\",\"class\":\"020000\",\"driver\":null}],"
		"\"holder\":null}",
		"{\"group\":7,\"viable\":true,\"allowed\":true,\"devices\":[{\"address\":"
		"\"0000:01:00.0aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\","
		"\"vendor\":\"8086\",\"device\":\"10d3\",\"class\":\"020000\",\"driver\":null}],"
		"\"holder\":null}",
		"{\"group\":7,\"viable\":true,\"allowed\":true,\"devices\":[{\"address\":\"0000:01:"
		"00.0\","
		"\"vendor\":\"80866\",\"device\":\"10d3\",\"class\":\"020000\",\"driver\":null}],"
		"\"holder\":null}",
		"{\"group\":7,\"viable\":true,\"allowed\":true,\"devices\":[{\"address\":\"0000:01:"
		"00.0\","
		"\"vendor\":\"8086\",\"device\":\"10d3\",\"class\":\"020000\",\"driver\":null,"
		"\"paths\":[1]}],\"holder\":null}",
		"{\"group\":7,\"viable\":true,\"allowed\":true,\"devices\":[{\"address\":\"0000:01:"
		"00.0\","
		"\"vendor\":\"8086\",\"device\":\"10d3\",\"class\":\"020000\",\"driver\":null,"
		"\"paths\":\"group\"}],\"holder\":null}",
		"7",
	};
	char text[2048];
	struct vb_list_reply l;
	struct vb_reply env, r;
	int n;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		n = snprintf(text, sizeof(text),
			     "{\"id\":2,\"ok\":true,\"groups\":[%s],\"more\":false}", bad[i]);
		ck_assert_int_eq(decode_text(text, &r), 0);
		ck_assert_msg(vb_list_reply_decode(&r, &l) == -EBADMSG, "tree took %s", text);
		vb_reply_done(&r);
		ck_assert_msg(vb_list_chunk_decode(text, (size_t)n, 2, &env, &l) == -EBADMSG,
			      "text took %s", text);
	}
	/* "quarantine": null is refused, as vb_list_reply_decode refuses it */
	n = snprintf(text, sizeof(text),
		     "{\"id\":2,\"ok\":true,\"groups\":[],\"more\":false,\"quarantine\":null}");
	ck_assert_int_eq(vb_list_chunk_decode(text, (size_t)n, 2, &env, &l), -EBADMSG);

	/* Not a chunk of request 2: read as any packet, for the caller to skip or queue. */
	static const char *const other[] = {
		"{\"id\":3,\"ok\":true,\"groups\":[],\"more\":false}",
		"{\"id\":2,\"ok\":false,\"error\":{\"code\":\"limit\",\"message\":\"later\"}}",
		"{\"event\":\"released\",\"group\":7}",
		/* a repeated key: json-c keeps the last; the strict scan leaves it to json-c */
		"{\"id\":2,\"id\":2,\"ok\":true,\"groups\":[],\"more\":false}",
	};
	for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
		ck_assert_msg(vb_list_chunk_decode(other[i], strlen(other[i]), 2, &env, &l) == 1,
			      "%s", other[i]);
		ck_assert_ptr_nonnull(env.body);
		vb_reply_done(&env);
	}
	ck_assert_int_eq(vb_list_chunk_decode("{\"id\":2,\"ok\":tru", 16, 2, &env, &l), -EBADMSG);
}
END_TEST

START_TEST(test_release_reply_without_released_is_an_error_not_a_release)
{
	struct vb_release_reply out = {.released = true};
	struct vb_reply r;

	ck_assert_int_eq(decode_text("{\"id\":5,\"ok\":true,\"group\":7}", &r), 0);
	ck_assert_int_eq(vb_release_reply_decode(&r, &out), -EBADMSG);
	vb_reply_done(&r);
}
END_TEST

/* Decodes text with decode_check; asserts it is refused. */
static void assert_text_refused(const char *text, decode_check_fn check)
{
	struct vb_reply r;
	int k = decode_text(text, &r);

	if (k == 0) {
		k = check(&r, false);
		vb_reply_done(&r);
	}
	ck_assert_msg(k == -EBADMSG, "decoded (%d): %s", k, text);
}

START_TEST(test_values_out_of_range_are_refused)
{
	assert_text_refused("{\"id\":7,\"ok\":true,\"group\":-1}", unmerge_check);
	assert_text_refused("{\"id\":7,\"ok\":true,\"group\":2147483648}", unmerge_check);
	assert_text_refused("{\"id\":7,\"ok\":true,\"group\":18446744073709551615}", unmerge_check);
	assert_text_refused("{\"id\":4294967296,\"ok\":true,\"group\":8}", unmerge_check);
	assert_text_refused("{\"id\":7,\"ok\":true,\"group\":8.0}", unmerge_check);
	assert_text_refused(
		"{\"id\":9,\"ok\":true,\"group\":7,\"mode\":\"gentle\",\"elapsed_ms\":1}",
		remove_check);
	assert_text_refused(
		"{\"id\":12,\"ok\":true,\"group\":10,\"mode\":\"magic\",\"devices\":[]}",
		quarantine_check);
	assert_text_refused("{\"id\":12,\"ok\":true,\"group\":10,\"mode\":\"kmod\","
			    "\"devices\":[\"eth0\"]}",
			    quarantine_check);
	assert_text_refused("{\"event\":\"device-added\",\"group\":7,\"device\":\"eth0\"}",
			    ev_added_check);
	/* a string with a NUL in it would read shorter than it is */
	assert_text_refused("{\"id\":1,\"ok\":true,\"version\":1,\"server\":\"a\\u0000b\","
			    "\"uid\":0,\"admin\":true}",
			    hello_check);
	/* a string longer than its field is refused, not cut */
	assert_text_refused("{\"id\":3,\"ok\":true,\"group\":7,\"rule\":"
			    "\"12345678901234567890123456789012345678901234567890123456789012345\","
			    "\"memlock\":null}",
			    lease_check);
}
END_TEST

START_TEST(test_an_error_reply_is_no_typed_ok_reply)
{
	struct vb_release_reply out;
	struct vb_error_reply err;
	struct vb_reply r;

	ck_assert_int_eq(decode_text(serialize(enc_busy()), &r), 0);
	ck_assert(!r.ok);
	ck_assert_int_eq(vb_release_reply_decode(&r, &out), -EBADMSG);
	vb_reply_done(&r);
	ck_assert_int_eq(decode_text(serialize(enc_release()), &r), 0);
	ck_assert_int_eq(vb_error_reply_decode(&r, &err), -EBADMSG);
	vb_reply_done(&r);
}
END_TEST

START_TEST(test_unknown_events_are_skipped_and_unknown_codes_still_refuse)
{
	struct vb_reply r;

	ck_assert_int_eq(decode_text("{\"event\":\"party\",\"group\":7}", &r), -ENOMSG);
	ck_assert_int_eq(decode_text("{\"id\":3,\"ok\":false,\"error\":{\"code\":\"newer\","
				     "\"message\":\"m\"}}",
				     &r),
			 0);
	ck_assert(!r.ok);
	ck_assert_int_eq(r.code, VB_E_INTERNAL);
	ck_assert_int_lt(vb_status_to_errno(r.code), 0);
	vb_reply_done(&r);
	/* a newer broker's extra fields are ignored */
	ck_assert_int_eq(decode_text("{\"id\":7,\"ok\":true,\"group\":8,\"new\":[1]}", &r), 0);
	ck_assert_int_eq(unmerge_check(&r, true), 0);
	vb_reply_done(&r);
}
END_TEST

static Suite *reply_suite(void)
{
	Suite *s = suite_create("reply");
	TCase *t = tcase_create("schema");

	tcase_add_loop_test(t, test_each_encoder_writes_what_the_broker_sends_today, 0, N_CASES);
	tcase_add_loop_test(t, test_each_decoder_reads_back_what_its_encoder_wrote, 0, N_CASES);
	tcase_add_loop_test(t, test_each_decoder_refuses_any_field_missing_or_of_the_wrong_type, 0,
			    N_CASES);
	tcase_add_loop_test(t, test_the_writer_writes_what_json_c_writes, 0, N_CASES);
	tcase_add_test(t, test_the_writer_refuses_a_buffer_one_byte_short);
	tcase_add_test(t, test_a_list_chunk_written_as_text_is_the_encoders_bytes);
	tcase_add_test(t, test_the_text_list_decoder_refuses_what_the_tree_decoder_refuses);
	tcase_add_test(t, test_release_reply_without_released_is_an_error_not_a_release);
	tcase_add_test(t, test_values_out_of_range_are_refused);
	tcase_add_test(t, test_an_error_reply_is_no_typed_ok_reply);
	tcase_add_test(t, test_unknown_events_are_skipped_and_unknown_codes_still_refuse);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(reply_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
