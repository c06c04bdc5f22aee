/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness for the broker's request decoder, vb_request_decode(): every byte of a
 * request packet comes from an unprivileged, possibly hostile client.
 *
 * Besides "no crash, no leak, no undefined behaviour", it checks what the broker relies on:
 *   - the decoder returns 0 or -EBADMSG (-ENOMEM only when allocation fails);
 *   - a refused request carries a non-empty, terminated message and the code bad-request or
 *     unsupported-version, and an id only when it had one; the error reply the broker builds
 *     from it (vb_error_reply_encode, vb_packet_serialize) reads back (vb_reply_decode,
 *     vb_error_reply_decode) with the same code, message and id;
 *   - an accepted request is strict JSON (tests/fuzz/strict_json.h: RFC 8259, UTF-8, no
 *     duplicate member names, no U+0000 in a name); -DFUZZ_REQUEST_JSON_ALLOW=<mask of
 *     STRICT_JSON_ALLOW_*> tolerates chosen kinds of leniency;
 *   - the decoder's JSON verdict is the oracle's: the strict scan (common/json_strict)
 *     accepts and refuses what strict_json.h does, but for its documented extra rules
 *     (tests/fuzz/json_strict_oracle.h); what it refuses, the decoder refuses with the
 *     scan's reason; what it accepts, json-c accepts too;
 *   - an accepted request is well-formed for its op (strings terminated, ids in range, the
 *     fields other ops use keep their "absent" value, lease has exactly one target, ...);
 *   - it re-encodes with vb_request_encode(), decodes again to the same struct, and
 *     encoding that gives the same bytes again (the encoding is a fixed point).
 * The same bytes also go through vfioctl's vb_group_parse and vb_address_parse, which must
 * accept only canonical forms.  A broken invariant aborts, so libFuzzer keeps the input.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "protocol/message.h"
#include "protocol/reply.h"
#include "protocol/wire.h"
#include "tests/fuzz/json_strict_oracle.h"
#include "tests/fuzz/strict_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#ifndef FUZZ_REQUEST_JSON_ALLOW
#define FUZZ_REQUEST_JSON_ALLOW 0
#endif

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

	CHECK(nul != NULL); /* every fixed-size string field is NUL-terminated */
	return (size_t)(nul - s);
}

static void check_error(const struct vb_decode_error *err)
{
	size_t len = bounded_strlen(err->message, sizeof(err->message));

	CHECK(len > 0);
	CHECK(err->code == VB_E_BAD_REQUEST || err->code == VB_E_UNSUPPORTED_VERSION);
	CHECK(err->has_id || err->id == 0);
}

/* A request as the decoder may return it: well-formed for its op. */
static void check_request(const struct vb_request *r)
{
	char canon[VB_ADDRESS_MAX];
	size_t client_len = bounded_strlen(r->client, sizeof(r->client));
	size_t device_len = bounded_strlen(r->device, sizeof(r->device));
	size_t user_len = bounded_strlen(r->user, sizeof(r->user));

	CHECK((unsigned)r->op < _VB_OP_MAX);
	CHECK(vb_op_to_string(r->op) != NULL);
	CHECK(vb_op_from_string(vb_op_to_string(r->op)) == (int)r->op);
	CHECK(r->group >= -1);
	CHECK(r->n_groups <= VB_MAX_MERGE_GROUPS);
	CHECK(r->mode == VB_REMOVE_SOFT || r->mode == VB_REMOVE_HARD);
	CHECK(r->timeout_ms <= VB_MAX_REMOVE_TIMEOUT_MS);
	CHECK(r->uid >= -1 && r->uid < (int64_t)UINT32_MAX);
	if (device_len) {
		/* only a canonical, lowercase PCI address is ever stored */
		CHECK(vb_address_parse(r->device, canon) == 0);
		CHECK(strcmp(canon, r->device) == 0);
	}

	/* the fields an op does not take keep their "absent" value */
	if (r->op != VB_OP_HELLO)
		CHECK(r->version == 0 && client_len == 0);
	CHECK(r->path == VB_PATH_GROUP || r->path == VB_PATH_CDEV);
	if (r->op != VB_OP_LEASE)
		CHECK(device_len == 0 && r->path == VB_PATH_GROUP);
	if (r->op != VB_OP_MERGE)
		CHECK(r->n_groups == 0);
	if (r->op != VB_OP_REMOVE)
		CHECK(r->mode == VB_REMOVE_SOFT && r->timeout_ms == 0);
	if (r->op != VB_OP_EXPLAIN)
		CHECK(r->uid == -1 && user_len == 0);

	switch (r->op) {
	case VB_OP_LEASE:
		CHECK((r->group >= 0) != (device_len > 0));
		break;
	case VB_OP_RELEASE:
	case VB_OP_UNMERGE:
	case VB_OP_REMOVE:
	case VB_OP_EXPLAIN:
		CHECK(r->group >= 0);
		break;
	default:
		CHECK(r->group == -1);
		break;
	}
	if (r->op == VB_OP_MERGE) {
		CHECK(r->n_groups >= 1);
		for (size_t i = 0; i < r->n_groups; i++) {
			CHECK(r->groups[i] <= VB_MAX_GROUP_ID);
			for (size_t j = 0; j < i; j++)
				CHECK(r->groups[i] != r->groups[j]);
		}
	}
	if (r->op == VB_OP_EXPLAIN)
		CHECK(!(r->uid >= 0 && user_len > 0));
}

/* Field by field: struct assignment need not copy padding, so no memcmp of the whole. */
static void check_same(const struct vb_request *a, const struct vb_request *b)
{
	CHECK(a->id == b->id);
	CHECK(a->op == b->op);
	CHECK(a->version == b->version);
	CHECK(strcmp(a->client, b->client) == 0);
	CHECK(a->group == b->group);
	CHECK(strcmp(a->device, b->device) == 0);
	CHECK(a->n_groups == b->n_groups);
	for (size_t i = 0; i < a->n_groups && i < VB_MAX_MERGE_GROUPS; i++)
		CHECK(a->groups[i] == b->groups[i]);
	CHECK(a->mode == b->mode);
	CHECK(a->timeout_ms == b->timeout_ms);
	CHECK(a->uid == b->uid);
	CHECK(strcmp(a->user, b->user) == 0);
	CHECK(a->path == b->path);
}

/*
 * What the broker sends back for a request it refused, as the client will read it: the same
 * code, message and id (or "id": null).
 */
static void check_error_reply(const struct vb_decode_error *err)
{
	struct vb_error_reply e = {.code = err->code}, back;
	struct json_object *o;
	struct vb_reply rep;
	char text[VB_MAX_PACKET_SIZE];
	size_t len;

	memcpy(e.message, err->message, sizeof(e.message));
	o = vb_error_reply_encode(err->has_id, err->id, &e);
	CHECK(o != NULL);
	CHECK(vb_packet_serialize(o, text, sizeof(text), &len) == 0);
	CHECK(vb_reply_decode(text, len, &rep) == 0);
	CHECK(!rep.is_event && !rep.ok && rep.code == err->code);
	CHECK(strcmp(rep.message, err->message) == 0);
	CHECK(rep.has_id == err->has_id && (!err->has_id || rep.id == err->id));
	CHECK(vb_error_reply_decode(&rep, &back) == 0);
	CHECK(back.code == err->code && strcmp(back.message, err->message) == 0);
	vb_reply_done(&rep);
	json_object_put(o);
}

/* The command-line parsers of vfioctl (group ids and PCI addresses) on the same bytes. */
static void check_cli_parsers(const uint8_t *data, size_t size)
{
	char s[64], out[VB_ADDRESS_MAX], again[VB_ADDRESS_MAX], back[16];
	uint32_t group;

	if (size >= sizeof(s))
		return;
	memcpy(s, data, size);
	s[size] = '\0';
	if (vb_group_parse(s, &group) == 0) {
		/* only the canonical decimal form is accepted */
		CHECK(group <= VB_MAX_GROUP_ID);
		snprintf(back, sizeof(back), "%u", group);
		CHECK(strcmp(back, s) == 0);
	}
	if (vb_address_parse(s, out) == 0) {
		CHECK(strlen(out) == 12 && strcasecmp(out, s) == 0);
		CHECK(vb_address_parse(out, again) == 0 && strcmp(out, again) == 0);
		for (size_t i = 0; i < 12; i++)
			CHECK(!(out[i] >= 'A' && out[i] <= 'Z'));
	}
}

/* A refusal for the JSON of the request, rather than for what it asks. */
static bool is_json_refusal(const struct vb_decode_error *err)
{
	return strncmp(err->message, "not a JSON object", 17) == 0 ||
	       strcmp(err->message, "a request must not repeat a key") == 0;
}

/*
 * The decoder takes the JSON the strict scan takes, which is what the oracle takes, and
 * refuses the rest with the scan's reason: one scanner decides, json-c never overrules it.
 */
static void check_json_verdict(const uint8_t *data, size_t size, int r,
			       const struct vb_decode_error *err)
{
	struct json_strict_error strict;
	char want[VB_MESSAGE_MAX];
	int scan;

	CHECK(oracle_agrees((const char *)data, size, VB_MAX_JSON_DEPTH, &scan, &strict));
	/* refused before the scan, or out of memory: nothing to compare */
	if (size == 0 || size > VB_MAX_REQUEST_SIZE || memchr(data, '\0', size) || r == -ENOMEM ||
	    scan == -ENOMEM)
		return;
	if (scan == 0) {
		if (r < 0 && is_json_refusal(err))
			fprintf(stderr, "the scan took it, the decoder said: %s\n", err->message);
		CHECK(r == 0 || !is_json_refusal(err));
	} else if (strict.fault == JSON_STRICT_E_DUPLICATE_KEY) {
		/* json-c's tree is checked to be an object first */
		CHECK(r == -EBADMSG &&
		      (strcmp(err->message, "a request must not repeat a key") == 0 ||
		       strcmp(err->message, "a request must be a JSON object") == 0));
	} else {
		snprintf(want, sizeof(want), "not a JSON object: %s", strict.reason);
		CHECK(r == -EBADMSG && strcmp(err->message, want) == 0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char enc1[VB_MAX_REQUEST_SIZE], enc2[VB_MAX_REQUEST_SIZE];
	struct vb_request req, again;
	struct vb_decode_error err;
	size_t len1 = 0, len2 = 0;
	int r;

	/* data is exactly size bytes (not terminated): ASan sees any read past the packet */
	r = vb_request_decode((const char *)data, size, &req, &err);
	CHECK(r == 0 || r == -EBADMSG || r == -ENOMEM);
	check_cli_parsers(data, size);
	check_json_verdict(data, size, r, &err);
	if (r == -EBADMSG) {
		check_error(&err);
		check_error_reply(&err);
	}
	if (r < 0)
		return 0;
	check_request(&req);
	/* PROTOCOL.md: one JSON object in UTF-8, strict; nothing else may be accepted */
	{
		enum strict_json_result sj =
			strict_json_check((const char *)data, size, FUZZ_REQUEST_JSON_ALLOW);

		if (sj != STRICT_JSON_OK)
			fprintf(stderr, "accepted a request that is not strict JSON: %s\n",
				strict_json_describe(sj));
		CHECK(sj == STRICT_JSON_OK);
	}

	/* the broker's reply path echoes the id and names the op */
	CHECK(vb_op_max_fds(req.op) <= VB_MAX_FDS);

	/* encode -> decode gives the same request; encode again gives the same bytes */
	r = vb_request_encode(&req, enc1, sizeof(enc1), &len1);
	CHECK(r == 0);
	CHECK(len1 > 0 && len1 <= VB_MAX_REQUEST_SIZE);
	CHECK(memchr(enc1, '\0', len1) == NULL);
	r = vb_request_decode(enc1, len1, &again, &err);
	if (r != 0)
		fprintf(stderr, "re-encoded request refused: %s\n%.*s\n", err.message, (int)len1,
			enc1);
	CHECK(r == 0);
	check_same(&req, &again);
	r = vb_request_encode(&again, enc2, sizeof(enc2), &len2);
	CHECK(r == 0);
	CHECK(len1 == len2 && memcmp(enc1, enc2, len1) == 0);

	/* a buffer one byte too small is refused, never overrun */
	{
		char *small = malloc(len1 - 1 ? len1 - 1 : 1);
		size_t small_len = 0;

		CHECK(small != NULL);
		r = vb_request_encode(&req, small, len1 - 1, &small_len);
		CHECK(r == -EMSGSIZE);
		free(small);
	}
	return 0;
}
