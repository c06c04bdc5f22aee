/* SPDX-License-Identifier: MIT */
/*
 * The request decoder as it was before it read json_strict_scan()'s map: the scan, then
 * json-c's tree, read with json-c's accessors. Kept here, and only here, as the reference
 * test_request_decode checks the decoder against: same verdict, same struct, same error
 * text for every input. Copied unchanged from protocol/message.c but for its name
 * (json_c_request_decode); do not "fix" it, it is what the protocol was.
 */
#pragma once

#include "common/cleanup.h"
#include "common/json_strict.h"
#include "protocol/message.h"
#include "protocol/wire.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Keys each op accepts, besides "id" and "op". */
static const char *const op_keys[_VB_OP_MAX][5] = {
	[VB_OP_HELLO] = {"version", "client"},
	[VB_OP_LIST] = {0},
	[VB_OP_LEASE] = {"group", "device", "memlock", "path"},
	[VB_OP_RELEASE] = {"group"},
	[VB_OP_MERGE] = {"groups"},
	[VB_OP_UNMERGE] = {"group"},
	[VB_OP_LEASES] = {0},
	[VB_OP_REMOVE] = {"group", "mode", "timeout_ms", "kill_strays"},
	[VB_OP_RELOAD] = {0},
	[VB_OP_EXPLAIN] = {"group", "uid", "user"},
	[VB_OP_QUARANTINE] = {"group"},
	[VB_OP_UNQUARANTINE] = {"group", "restore"},
};

static int decode_fail(struct vb_decode_error *err, enum vb_status code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int decode_fail(struct vb_decode_error *err, enum vb_status code, const char *fmt, ...)
{
	va_list ap;

	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	return -EBADMSG;
}

/* Reads an integer field in [min, max]; -ENOENT when absent. */
static int get_int(struct json_object *o, const char *key, int64_t min, int64_t max, int64_t *ret,
		   struct vb_decode_error *err)
{
	struct json_object *j;
	int64_t v;
	bool in_range;

	if (!json_object_object_get_ex(o, key, &j))
		return -ENOENT;
	if (!json_object_is_type(j, json_type_int))
		return decode_fail(err, VB_E_BAD_REQUEST, "\"%s\" must be an integer", key);
	/* json-c saturates: INT64_MAX is also what it gives for anything larger */
	errno = 0;
	v = json_object_get_int64(j);
	in_range = errno != ERANGE &&
		   (v != INT64_MAX || json_object_get_uint64(j) == (uint64_t)INT64_MAX);
	if (!in_range || v < min || v > max)
		return decode_fail(err, VB_E_BAD_REQUEST, "\"%s\" must be between %lld and %lld",
				   key, (long long)min, (long long)max);
	*ret = v;
	return 0;
}

/* Reads a string field shorter than size; -ENOENT when absent. */
static int get_string(struct json_object *o, const char *key, size_t size, const char **ret,
		      struct vb_decode_error *err)
{
	struct json_object *j;
	const char *s;

	if (!json_object_object_get_ex(o, key, &j))
		return -ENOENT;
	if (!json_object_is_type(j, json_type_string))
		return decode_fail(err, VB_E_BAD_REQUEST, "\"%s\" must be a string", key);
	s = json_object_get_string(j);
	if ((size_t)json_object_get_string_len(j) >= size ||
	    strlen(s) != (size_t)json_object_get_string_len(j))
		return decode_fail(err, VB_E_BAD_REQUEST, "\"%s\" is too long or holds a NUL", key);
	*ret = s;
	return 0;
}

static int decode_group(struct json_object *o, struct vb_request *r, bool required,
			struct vb_decode_error *err)
{
	int64_t v;
	int k = get_int(o, "group", 0, VB_MAX_GROUP_ID, &v, err);

	if (k == -ENOENT) {
		if (required)
			return decode_fail(err, VB_E_BAD_REQUEST, "\"%s\" needs \"group\"",
					   vb_op_to_string(r->op));
		return 0;
	}
	if (k < 0)
		return k;
	r->group = (int32_t)v;
	return 0;
}

static int decode_op_args(struct json_object *o, struct vb_request *r, struct vb_decode_error *err)
{
	const char *s;
	int64_t v;
	int k;

	switch (r->op) {
	case VB_OP_HELLO:
		k = get_int(o, "version", 0, UINT32_MAX, &v, err);
		if (k == -ENOENT)
			return decode_fail(err, VB_E_BAD_REQUEST, "\"hello\" needs \"version\"");
		if (k < 0)
			return k;
		r->version = (uint32_t)v;
		k = get_string(o, "client", sizeof(r->client), &s, err);
		if (k == 0)
			snprintf(r->client, sizeof(r->client), "%s", s);
		return k == -ENOENT ? 0 : k;
	case VB_OP_LEASE:
		if ((k = decode_group(o, r, false, err)) < 0)
			return k;
		k = get_string(o, "device", VB_ADDRESS_MAX + 32, &s, err);
		if (k < 0 && k != -ENOENT)
			return k;
		if (k == 0 && vb_address_parse(s, r->device) < 0)
			return decode_fail(err, VB_E_BAD_REQUEST,
					   "\"device\" must be a PCI address like 0000:01:00.0");
		if ((k = get_int(o, "memlock", 1, INT64_MAX, &v, err)) < 0 && k != -ENOENT)
			return k;
		r->memlock = k == 0 ? (uint64_t)v : 0;
		k = get_string(o, "path", 8, &s, err);
		if (k < 0 && k != -ENOENT)
			return k;
		if (k == 0) {
			int p = vb_lease_path_from_string(s);

			if (p < 0)
				return decode_fail(err, VB_E_BAD_REQUEST,
						   "\"path\" must be \"group\" or \"cdev\"");
			r->path = (enum vb_lease_path)p;
		}
		if ((r->group >= 0) == (r->device[0] != '\0'))
			return decode_fail(
				err, VB_E_BAD_REQUEST,
				"\"lease\" needs exactly one of \"group\" and \"device\"");
		return 0;
	case VB_OP_RELEASE:
	case VB_OP_UNMERGE:
	case VB_OP_QUARANTINE:
		return decode_group(o, r, true, err);
	case VB_OP_UNQUARANTINE: {
		struct json_object *b;

		if ((k = decode_group(o, r, true, err)) < 0)
			return k;
		if (!json_object_object_get_ex(o, "restore", &b))
			return 0;
		if (!json_object_is_type(b, json_type_boolean))
			return decode_fail(err, VB_E_BAD_REQUEST, "\"restore\" must be a boolean");
		r->restore = json_object_get_boolean(b);
		return 0;
	}
	case VB_OP_MERGE: {
		struct json_object *a;
		size_t n;

		if (!json_object_object_get_ex(o, "groups", &a))
			return decode_fail(err, VB_E_BAD_REQUEST, "\"merge\" needs \"groups\"");
		if (!json_object_is_type(a, json_type_array))
			return decode_fail(err, VB_E_BAD_REQUEST, "\"groups\" must be an array");
		n = json_object_array_length(a);
		if (n < 1 || n > VB_MAX_MERGE_GROUPS)
			return decode_fail(err, VB_E_BAD_REQUEST,
					   "\"groups\" must list 1 to %d groups",
					   VB_MAX_MERGE_GROUPS);
		for (size_t i = 0; i < n; i++) {
			struct json_object *e = json_object_array_get_idx(a, i);
			int64_t g;

			if (!json_object_is_type(e, json_type_int) ||
			    (g = json_object_get_int64(e)) < 0 || g > VB_MAX_GROUP_ID)
				return decode_fail(err, VB_E_BAD_REQUEST,
						   "\"groups\" must hold group ids");
			for (size_t j = 0; j < i; j++)
				if (r->groups[j] == (uint32_t)g)
					return decode_fail(err, VB_E_BAD_REQUEST,
							   "group %lld is listed twice",
							   (long long)g);
			r->groups[i] = (uint32_t)g;
		}
		r->n_groups = n;
		return 0;
	}
	case VB_OP_REMOVE: {
		struct json_object *b;

		if ((k = decode_group(o, r, true, err)) < 0)
			return k;
		k = get_string(o, "mode", 8, &s, err);
		if (k == -ENOENT)
			return decode_fail(err, VB_E_BAD_REQUEST,
					   "\"remove\" needs \"mode\": \"soft\" or \"hard\"");
		if (k < 0)
			return k;
		if (strcmp(s, "soft") == 0)
			r->mode = VB_REMOVE_SOFT;
		else if (strcmp(s, "hard") == 0)
			r->mode = VB_REMOVE_HARD;
		else
			return decode_fail(err, VB_E_BAD_REQUEST,
					   "\"mode\" must be \"soft\" or \"hard\"");
		k = get_int(o, "timeout_ms", 0, VB_MAX_REMOVE_TIMEOUT_MS, &v, err);
		if (k == 0)
			r->timeout_ms = (uint32_t)v;
		if (k < 0 && k != -ENOENT)
			return k;
		if (json_object_object_get_ex(o, "kill_strays", &b)) {
			if (!json_object_is_type(b, json_type_boolean))
				return decode_fail(err, VB_E_BAD_REQUEST,
						   "\"kill_strays\" must be a boolean");
			if (json_object_get_boolean(b) && r->mode != VB_REMOVE_HARD)
				return decode_fail(err, VB_E_BAD_REQUEST,
						   "\"kill_strays\" is for mode \"hard\"");
			r->kill_strays = json_object_get_boolean(b);
		}
		return 0;
	}
	case VB_OP_EXPLAIN:
		if ((k = decode_group(o, r, true, err)) < 0)
			return k;
		k = get_int(o, "uid", 0, UINT32_MAX - 1, &v, err);
		if (k == 0)
			r->uid = v;
		else if (k != -ENOENT)
			return k;
		k = get_string(o, "user", sizeof(r->user), &s, err);
		if (k == 0)
			snprintf(r->user, sizeof(r->user), "%s", s);
		else if (k != -ENOENT)
			return k;
		if (r->uid >= 0 && r->user[0])
			return decode_fail(err, VB_E_BAD_REQUEST,
					   "\"explain\" takes \"uid\" or \"user\", not both");
		return 0;
	case VB_OP_LIST:
	case VB_OP_LEASES:
	case VB_OP_RELOAD:
	case _VB_OP_MAX:
		return 0;
	}
	return 0;
}

/* The first member name the op does not take, or NULL. */
static const char *unknown_key(struct json_object *o, enum vb_op op)
{
	json_object_object_foreach (o, key, val) {
		bool known = strcmp(key, "id") == 0 || strcmp(key, "op") == 0;

		(void)val;
		for (size_t i = 0; i < 5 && op_keys[op][i] && !known; i++)
			known = strcmp(op_keys[op][i], key) == 0;
		if (!known)
			return key;
	}
	return NULL;
}

/*
 * The JSON of a request: json_strict_scan() first, for what json-c lets through, then
 * json-c's tree in *ret. 0, or -EBADMSG with err filled, or -ENOMEM.
 */
static int request_parse(const char *buf, size_t len, struct json_object **ret,
			 struct vb_decode_error *err)
{
	struct json_strict_error strict;
	struct json_tokener *tok;
	struct json_object *o;
	int k;

	k = json_strict_scan(buf, len, VB_MAX_JSON_DEPTH, NULL, &strict);
	if (k == -EBADMSG && strict.fault != JSON_STRICT_E_DUPLICATE_KEY)
		return decode_fail(err, VB_E_BAD_REQUEST, "not a JSON object: %s", strict.reason);
	if (k < 0 && k != -EBADMSG)
		return k;
	/* JSON, but is it an object? (json-c would call a bare number at the end incomplete) */
	for (size_t i = 0; i < len && buf[i] != '{'; i++)
		if (buf[i] != ' ' && buf[i] != '\t' && buf[i] != '\n' && buf[i] != '\r')
			return decode_fail(err, VB_E_BAD_REQUEST,
					   "a request must be a JSON object");

	/* Nothing is left for json-c to refuse: its verdict only guards against a scan bug. */
	tok = json_tokener_new_ex(VB_MAX_JSON_DEPTH);
	if (!tok)
		return -ENOMEM;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(tok, buf, (int)len);
	if (!o || json_tokener_get_error(tok) != json_tokener_success ||
	    json_tokener_get_parse_end(tok) != len) {
		enum json_tokener_error e = json_tokener_get_error(tok);

		json_object_put(o);
		json_tokener_free(tok);
		return decode_fail(err, VB_E_BAD_REQUEST, "not a JSON object: %s",
				   e == json_tokener_success || e == json_tokener_continue
					   ? "trailing or incomplete data"
					   : json_tokener_error_desc(e));
	}
	json_tokener_free(tok);
	if (!json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return decode_fail(err, VB_E_BAD_REQUEST, "a request must be a JSON object");
	}

	/* json-c kept only the last of the repeated members: refuse rather than guess */
	if (k == -EBADMSG) {
		json_object_put(o);
		return decode_fail(err, VB_E_BAD_REQUEST, "a request must not repeat a key");
	}
	*ret = o;
	return 0;
}

static int json_c_request_decode(const char *buf, size_t len, struct vb_request *ret,
				 struct vb_decode_error *err)
{
	_cleanup_json_ struct json_object *o = NULL;
	struct vb_request r;
	const char *s;
	int64_t v;
	int k;

	memset(err, 0, sizeof(*err));
	vb_request_init(&r, 0, VB_OP_HELLO);
	if (len == 0 || len > VB_MAX_REQUEST_SIZE)
		return decode_fail(err, VB_E_BAD_REQUEST, "a request is 1 to %d bytes",
				   VB_MAX_REQUEST_SIZE);
	if (memchr(buf, '\0', len))
		return decode_fail(err, VB_E_BAD_REQUEST, "a request must not contain NUL bytes");
	k = request_parse(buf, len, &o, err);
	if (k < 0)
		return k;

	k = get_int(o, "id", 0, UINT32_MAX, &v, err);
	if (k == -ENOENT)
		k = decode_fail(err, VB_E_BAD_REQUEST, "a request needs an integer \"id\"");
	if (k < 0)
		return k;
	r.id = (uint32_t)v;
	err->has_id = true;
	err->id = r.id;

	k = get_string(o, "op", 32, &s, err);
	if (k == -ENOENT)
		k = decode_fail(err, VB_E_BAD_REQUEST, "a request needs \"op\"");
	if (k < 0)
		return k;
	k = vb_op_from_string(s);
	if (k < 0)
		return decode_fail(err, VB_E_BAD_REQUEST, "unknown op \"%.32s\"", s);
	r.op = (enum vb_op)k;

	s = unknown_key(o, r.op);
	if (s)
		return decode_fail(err, VB_E_BAD_REQUEST, "\"%s\" takes no \"%.32s\"",
				   vb_op_to_string(r.op), s);

	k = decode_op_args(o, &r, err);
	if (k < 0)
		return k;
	*ret = r;
	return 0;
}
