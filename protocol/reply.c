/* SPDX-License-Identifier: MIT */
#include "protocol/reply.h"
#include "common/json_strict.h"
#include "common/textbuf.h"
#include "protocol/wire.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- reading fields: present, of the right type, in range; else -EBADMSG ---- */

/* The member key of o, of type, or NULL when nullable and null. */
static int get_member(struct json_object *o, const char *key, enum json_type type, bool nullable,
		      struct json_object **ret)
{
	struct json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v))
		return -EBADMSG;
	if (!v) {
		if (!nullable)
			return -EBADMSG;
	} else if (!json_object_is_type(v, type)) {
		return -EBADMSG;
	}
	*ret = v;
	return 0;
}

/* An integer member in [0, max]; null reads as 0 when nullable. */
static int get_uint(struct json_object *o, const char *key, uint64_t max, bool nullable,
		    uint64_t *ret)
{
	struct json_object *v;
	int64_t i;
	int r;

	r = get_member(o, key, json_type_int, nullable, &v);
	if (r < 0)
		return r;
	if (!v) {
		*ret = 0;
		return 0;
	}
	i = json_object_get_int64(v);
	/* json-c clamps what does not fit an int64 to INT64_MAX: such a value is out of range */
	if (i < 0 || (i == INT64_MAX && json_object_get_uint64(v) != (uint64_t)INT64_MAX) ||
	    (uint64_t)i > max)
		return -EBADMSG;
	*ret = (uint64_t)i;
	return 0;
}

static int get_u32(struct json_object *o, const char *key, uint32_t max, uint32_t *ret)
{
	uint64_t v;
	int r = get_uint(o, key, max, false, &v);

	if (r == 0)
		*ret = (uint32_t)v;
	return r;
}

static int get_bool(struct json_object *o, const char *key, bool *ret)
{
	struct json_object *v;
	int r = get_member(o, key, json_type_boolean, false, &v);

	if (r == 0)
		*ret = json_object_get_boolean(v);
	return r;
}

/* A string with no NUL in it that fits size with its terminator; null reads as "". */
static int string_value(struct json_object *v, char *buf, size_t size)
{
	const char *s;
	size_t len;

	if (!v) {
		buf[0] = '\0';
		return 0;
	}
	if (!json_object_is_type(v, json_type_string))
		return -EBADMSG;
	s = json_object_get_string(v);
	len = (size_t)json_object_get_string_len(v);
	if (len >= size || strlen(s) != len)
		return -EBADMSG;
	memcpy(buf, s, len + 1);
	return 0;
}

static int get_string(struct json_object *o, const char *key, bool nullable, char *buf, size_t size)
{
	struct json_object *v;
	int r = get_member(o, key, json_type_string, nullable, &v);

	return r < 0 ? r : string_value(v, buf, size);
}

/* A PCI address as vb_address_parse reads it; null reads as "" when nullable. */
static int get_address(struct json_object *o, const char *key, bool nullable,
		       char buf[VB_ADDRESS_MAX])
{
	struct json_object *v;
	int r = get_member(o, key, json_type_string, nullable, &v);

	if (r < 0)
		return r;
	if (!v) {
		buf[0] = '\0';
		return 0;
	}
	return vb_address_parse(json_object_get_string(v), buf) < 0 ? -EBADMSG : 0;
}

static int get_strdup(struct json_object *o, const char *key, char **ret)
{
	struct json_object *v;
	const char *s;
	int r = get_member(o, key, json_type_string, false, &v);

	if (r < 0)
		return r;
	s = json_object_get_string(v);
	if (strlen(s) != (size_t)json_object_get_string_len(v))
		return -EBADMSG;
	*ret = strdup(s);
	return *ret ? 0 : -ENOMEM;
}

/*
 * decode_entries decodes every element of the array a with decode into a new
 * array of elem-sized entries, *ret (freed by the caller) and *ret_n. On
 * failure nothing stays allocated: done (NULL: nothing to undo) is called on
 * each entry decoded before the one that failed.
 */
static int decode_entries(struct json_object *a, size_t elem,
			  int (*decode)(struct json_object *o, void *ret),
			  void (*done)(void *entry), void **ret, size_t *ret_n)
{
	size_t n = json_object_array_length(a);
	char *entries = NULL;
	int k;

	if (n > 0) {
		entries = calloc(n, elem);
		if (!entries)
			return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		k = decode(json_object_array_get_idx(a, i), entries + i * elem);
		if (k < 0) {
			while (done && i-- > 0)
				done(entries + i * elem);
			free(entries);
			return k;
		}
	}
	*ret = entries;
	*ret_n = n;
	return 0;
}

/* The body of an "ok" reply; errors and events have none of these fields. */
static struct json_object *ok_body(const struct vb_reply *r)
{
	return r && r->body && !r->is_event && r->ok ? r->body : NULL;
}

static void add(struct json_object *o, const char *key, struct json_object *v)
{
	json_object_object_add(o, key, v);
}

static struct json_object *new_uint(uint64_t v)
{
	return json_object_new_int64((int64_t)v);
}

/* A nullable string: "" is written as null. */
static struct json_object *new_string_or_null(const char *s)
{
	return s && s[0] ? json_object_new_string(s) : NULL;
}

/* ---- the envelope ---- */

/* {"id": id, "ok": true}: the start of every "ok" reply. */
static struct json_object *ok_reply_new(uint32_t id)
{
	struct json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	json_object_object_add(o, "id", json_object_new_int64(id));
	json_object_object_add(o, "ok", json_object_new_boolean(1));
	return o;
}

struct json_object *vb_reply_error_details(struct json_object *reply)
{
	struct json_object *e;

	return json_object_object_get_ex(reply, "error", &e) ? e : NULL;
}

/* {"event": name}: the start of every event. */
static struct json_object *event_new(enum vb_event e)
{
	struct json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	json_object_object_add(o, "event", json_object_new_string(vb_event_to_string(e)));
	return o;
}

/*
 * The compact JSON text of json-c objects, byte for byte what
 * json_object_to_json_string_ext(JSON_C_TO_STRING_PLAIN |
 * JSON_C_TO_STRING_NOSLASHESCAPE) writes (test_reply and fuzz_reply check
 * that), without json-c's printbuf and printf. It writes only what our own
 * encoders built, never text from the wire. Measured (callgrind, per call):
 * a lease reply 3.6k instructions against json-c's 5.4k, a list chunk of 16
 * groups 114k against 173k, a full 64 KiB chunk 1.69M against 2.59M.
 * Doubles, which no packet of ours carries, are left to json-c.
 */
static void jw_put(struct textbuf *w, const char *s, size_t n)
{
	textbuf_put(w, s, n);
}

static void jw_string(struct textbuf *w, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t start = 0;

	jw_put(w, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[6];
		const char *e;
		size_t elen = 2;

		switch (c) {
		case '\b':
			e = "\\b";
			break;
		case '\n':
			e = "\\n";
			break;
		case '\r':
			e = "\\r";
			break;
		case '\t':
			e = "\\t";
			break;
		case '\f':
			e = "\\f";
			break;
		case '"':
			e = "\\\"";
			break;
		case '\\':
			e = "\\\\";
			break;
		default:
			if (c >= ' ')
				continue;
			memcpy(esc, "\\u00", 4);
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 0xf];
			e = esc;
			elen = 6;
			break;
		}
		jw_put(w, s + start, i - start);
		jw_put(w, e, elen);
		start = i + 1;
	}
	jw_put(w, s + start, n - start);
	jw_put(w, "\"", 1);
}

static void jw_value(struct textbuf *w, struct json_object *o)
{
	char num[24];
	int n;

	switch (json_object_get_type(o)) {
	case json_type_null:
		jw_put(w, "null", 4);
		return;
	case json_type_boolean:
		if (json_object_get_boolean(o))
			jw_put(w, "true", 4);
		else
			jw_put(w, "false", 5);
		return;
	case json_type_int: {
		int64_t v = json_object_get_int64(o);

		/* json-c clamps a uint64 above INT64_MAX to INT64_MAX here */
		if (v == INT64_MAX)
			n = snprintf(num, sizeof(num), "%" PRIu64, json_object_get_uint64(o));
		else
			n = snprintf(num, sizeof(num), "%" PRId64, v);
		jw_put(w, num, (size_t)n);
		return;
	}
	case json_type_string:
		jw_string(w, json_object_get_string(o), (size_t)json_object_get_string_len(o));
		return;
	case json_type_object: {
		bool first = true;

		jw_put(w, "{", 1);
		json_object_object_foreach (o, key, val) {
			if (!first)
				jw_put(w, ",", 1);
			first = false;
			jw_string(w, key, strlen(key));
			jw_put(w, ":", 1);
			jw_value(w, val);
		}
		jw_put(w, "}", 1);
		return;
	}
	case json_type_array: {
		size_t len = json_object_array_length(o);

		jw_put(w, "[", 1);
		for (size_t i = 0; i < len; i++) {
			if (i)
				jw_put(w, ",", 1);
			jw_value(w, json_object_array_get_idx(o, i));
		}
		jw_put(w, "]", 1);
		return;
	}
	case json_type_double: {
		size_t len;
		const char *s = json_object_to_json_string_length(
			o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);

		if (s)
			jw_put(w, s, len);
		else
			w->full = true;
		return;
	}
	}
}

int vb_packet_serialize(struct json_object *obj, char *buf, size_t size, size_t *ret_len)
{
	struct textbuf w =
		textbuf_fixed(buf, size < VB_MAX_PACKET_SIZE ? size : VB_MAX_PACKET_SIZE);

	jw_value(&w, obj);
	if (w.full)
		return -EMSGSIZE;
	*ret_len = w.len;
	return 0;
}

/*
 * ---- the hot replies, written straight into the packet ----
 *
 * hello, lease, release and error replies are most of what the broker sends, one per
 * request: building a json-c tree for each only to serialise it cost more than decoding
 * the request. These writers give the bytes vb_packet_serialize() gives for the tree the
 * encoder above builds (test_reply_write pins that): the same members in the same order,
 * the same string escapes, and numbers as json-c writes an int64 (a uint64 field is
 * cast, as new_uint() casts it).
 */

static void jw_literal(struct textbuf *w, const char *s)
{
	jw_put(w, s, strlen(s));
}

static void jw_int64(struct textbuf *w, int64_t v)
{
	textbuf_i64(w, v);
}

/* A uint64 field as json-c writes what new_uint() makes of it: an int64. */
static void jw_new_uint(struct textbuf *w, uint64_t v)
{
	jw_int64(w, (int64_t)v);
}

/* A string of a fixed-size field: up to its NUL, never past the field. */
static void jw_field(struct textbuf *w, const char *s, size_t size)
{
	jw_string(w, s, strnlen(s, size));
}

/* A nullable string field: "" is written as null. */
static void jw_field_or_null(struct textbuf *w, const char *s, size_t size)
{
	if (s[0])
		jw_field(w, s, size);
	else
		jw_literal(w, "null");
}

/* {"id":id,"ok":true: the start of every "ok" reply. */
static void jw_ok_reply(struct textbuf *w, uint32_t id)
{
	jw_literal(w, "{\"id\":");
	jw_new_uint(w, id);
	jw_literal(w, ",\"ok\":true");
}

static struct textbuf jw_init(char *buf, size_t size)
{
	return textbuf_fixed(buf, size < VB_MAX_PACKET_SIZE ? size : VB_MAX_PACKET_SIZE);
}

static int jw_finish(struct textbuf *w, size_t *ret_len)
{
	if (w->full)
		return -EMSGSIZE;
	*ret_len = w->len;
	return 0;
}

int vb_error_reply_write(bool has_id, uint32_t id, const struct vb_error_reply *e, char *buf,
			 size_t size, size_t *ret_len)
{
	struct textbuf w = jw_init(buf, size);

	jw_literal(&w, "{\"id\":");
	if (has_id)
		jw_new_uint(&w, id);
	else
		jw_literal(&w, "null");
	jw_literal(&w, ",\"ok\":false,\"error\":{\"code\":\"");
	jw_literal(&w, vb_status_to_string(e->code)); /* our names need no escape */
	jw_literal(&w, "\",\"message\":");
	jw_field(&w, e->message, sizeof(e->message));
	if (e->has_uid) {
		jw_literal(&w, ",\"uid\":");
		jw_new_uint(&w, e->uid);
	}
	if (e->has_container) {
		jw_literal(&w, ",\"container\":");
		jw_new_uint(&w, e->container);
	}
	if (e->has_retry_after_ms) {
		jw_literal(&w, ",\"retry_after_ms\":");
		jw_new_uint(&w, e->retry_after_ms);
	}
	if (e->has_supported) {
		jw_literal(&w, ",\"supported\":[");
		jw_new_uint(&w, e->supported[0]);
		jw_literal(&w, ",");
		jw_new_uint(&w, e->supported[1]);
		jw_literal(&w, "]");
	}
	if (e->has_memlock) {
		jw_literal(&w, ",\"memlock\":");
		jw_new_uint(&w, e->memlock);
		jw_literal(&w, ",\"asked\":");
		jw_new_uint(&w, e->asked);
	}
	if (e->has_denial) {
		jw_literal(&w, ",\"device\":");
		jw_field_or_null(&w, e->device, sizeof(e->device));
		jw_literal(&w, ",\"rule\":");
		jw_field_or_null(&w, e->rule, sizeof(e->rule));
		jw_literal(&w, ",\"reason\":");
		jw_field(&w, e->reason, sizeof(e->reason));
	}
	jw_literal(&w, "}}");
	return jw_finish(&w, ret_len);
}

int vb_hello_reply_write(uint32_t id, const struct vb_hello_reply *r, char *buf, size_t size,
			 size_t *ret_len)
{
	struct textbuf w = jw_init(buf, size);

	jw_ok_reply(&w, id);
	jw_literal(&w, ",\"version\":");
	jw_new_uint(&w, r->version);
	jw_literal(&w, ",\"server\":");
	jw_field(&w, r->server, sizeof(r->server));
	jw_literal(&w, ",\"uid\":");
	jw_new_uint(&w, r->uid);
	jw_literal(&w, ",\"admin\":");
	jw_literal(&w, r->admin ? "true" : "false");
	jw_literal(&w, "}");
	return jw_finish(&w, ret_len);
}

int vb_lease_reply_write(uint32_t id, const struct vb_lease_reply *r, char *buf, size_t size,
			 size_t *ret_len)
{
	struct textbuf w = jw_init(buf, size);

	jw_ok_reply(&w, id);
	jw_literal(&w, ",\"group\":");
	jw_new_uint(&w, r->group);
	jw_literal(&w, ",\"rule\":");
	jw_field_or_null(&w, r->rule, sizeof(r->rule));
	jw_literal(&w, ",\"memlock\":");
	if (r->memlock)
		jw_new_uint(&w, r->memlock);
	else
		jw_literal(&w, "null");
	if (r->path == VB_PATH_CDEV) {
		jw_literal(&w, ",\"path\":\"cdev\",\"iommufd\":");
		jw_new_uint(&w, r->iommufd);
		jw_literal(&w, ",\"iommufd_reused\":");
		jw_literal(&w, r->iommufd_reused ? "true" : "false");
		jw_literal(&w, ",\"devices\":[");
		for (size_t i = 0; i < r->n_devices && i < VB_MAX_CDEV_DEVICES; i++) {
			jw_literal(&w, i ? ",{\"address\":" : "{\"address\":");
			jw_field(&w, r->devices[i].address, sizeof(r->devices[i].address));
			jw_literal(&w, ",\"fd\":");
			jw_new_uint(&w, r->devices[i].fd);
			jw_literal(&w, "}");
		}
		jw_literal(&w, "]");
	}
	jw_literal(&w, "}");
	return jw_finish(&w, ret_len);
}

int vb_release_reply_write(uint32_t id, const struct vb_release_reply *r, char *buf, size_t size,
			   size_t *ret_len)
{
	struct textbuf w = jw_init(buf, size);

	jw_ok_reply(&w, id);
	jw_literal(&w, ",\"group\":");
	jw_new_uint(&w, r->group);
	jw_literal(&w, ",\"released\":");
	jw_literal(&w, r->released ? "true" : "false");
	jw_literal(&w, "}");
	return jw_finish(&w, ret_len);
}

int vb_reply_decode(const char *buf, size_t len, struct vb_reply *ret)
{
	struct json_tokener *tok;
	struct json_object *o, *v, *e;
	struct vb_reply r = {0};
	int code;

	if (len == 0 || len > VB_MAX_PACKET_SIZE || memchr(buf, '\0', len))
		return -EBADMSG;
	/* Replies nest deeper than requests (list: groups -> devices). */
	tok = json_tokener_new_ex(VB_MAX_JSON_DEPTH * 2);
	if (!tok)
		return -ENOMEM;
	o = json_tokener_parse_ex(tok, buf, (int)len);
	if (!o || json_tokener_get_parse_end(tok) != len) {
		json_object_put(o);
		json_tokener_free(tok);
		return -EBADMSG;
	}
	json_tokener_free(tok);
	if (!json_object_is_type(o, json_type_object))
		goto bad;

	if (json_object_object_get_ex(o, "event", &v)) {
		int ev;

		if (!json_object_is_type(v, json_type_string))
			goto bad;
		ev = vb_event_from_string(json_object_get_string(v));
		if (ev < 0) {
			/* A newer broker's event: not an error, the client skips it. */
			json_object_put(o);
			return -ENOMSG;
		}
		r.is_event = true;
		r.event = (enum vb_event)ev;
		r.ok = true;
	} else {
		uint64_t id;

		if (get_bool(o, "ok", &r.ok) < 0 || get_uint(o, "id", UINT32_MAX, !r.ok, &id) < 0)
			goto bad;
		json_object_object_get_ex(o, "id", &v);
		r.has_id = v != NULL;
		r.id = (uint32_t)id;
		if (!r.ok) {
			if (get_member(o, "error", json_type_object, false, &e) < 0 ||
			    get_member(e, "code", json_type_string, false, &v) < 0 ||
			    get_string(e, "message", false, r.message, sizeof(r.message)) < 0)
				goto bad;
			/* A code this version does not know is still a refusal. */
			code = vb_status_from_string(json_object_get_string(v));
			r.code = code > 0 ? (enum vb_status)code : VB_E_INTERNAL;
		}
	}
	r.body = o;
	*ret = r;
	return 0;
bad:
	json_object_put(o);
	return -EBADMSG;
}

void vb_reply_done(struct vb_reply *r)
{
	if (!r)
		return;
	json_object_put(r->body);
	r->body = NULL;
}

/* ---- errors ---- */

struct json_object *vb_error_reply_encode(bool has_id, uint32_t id, const struct vb_error_reply *e)
{
	struct json_object *o = json_object_new_object(), *err;

	if (!o)
		return NULL;
	/* A request whose id could not be read gets "id": null. */
	add(o, "id", has_id ? new_uint(id) : NULL);
	add(o, "ok", json_object_new_boolean(0));
	err = json_object_new_object();
	add(err, "code", json_object_new_string(vb_status_to_string(e->code)));
	add(err, "message", json_object_new_string(e->message));
	if (e->has_uid)
		add(err, "uid", new_uint(e->uid));
	if (e->has_container)
		add(err, "container", new_uint(e->container));
	if (e->has_retry_after_ms)
		add(err, "retry_after_ms", new_uint(e->retry_after_ms));
	if (e->has_supported) {
		struct json_object *a = json_object_new_array();

		json_object_array_add(a, new_uint(e->supported[0]));
		json_object_array_add(a, new_uint(e->supported[1]));
		add(err, "supported", a);
	}
	if (e->has_memlock) {
		add(err, "memlock", new_uint(e->memlock));
		add(err, "asked", new_uint(e->asked));
	}
	if (e->has_denial) {
		add(err, "device", new_string_or_null(e->device));
		add(err, "rule", new_string_or_null(e->rule));
		add(err, "reason", json_object_new_string(e->reason));
	}
	add(o, "error", err);
	return o;
}

/* An optional detail: absent is fine, present must be an integer in range. */
static int get_optional_u32(struct json_object *o, const char *key, bool *has, uint32_t *ret)
{
	*has = json_object_object_get_ex(o, key, NULL);
	return *has ? get_u32(o, key, UINT32_MAX, ret) : 0;
}

int vb_error_reply_decode(const struct vb_reply *r, struct vb_error_reply *ret)
{
	struct vb_error_reply e = {0};
	struct json_object *d, *a;
	int k;

	if (!r || !r->body || r->is_event || r->ok)
		return -EBADMSG;
	d = vb_reply_error_details(r->body);
	e.code = r->code;
	memcpy(e.message, r->message, sizeof(e.message));
	k = get_optional_u32(d, "uid", &e.has_uid, &e.uid);
	if (k == 0)
		k = get_optional_u32(d, "container", &e.has_container, &e.container);
	if (k == 0)
		k = get_optional_u32(d, "retry_after_ms", &e.has_retry_after_ms, &e.retry_after_ms);
	if (k < 0)
		return k;
	/* "memlock" and "asked" come together. */
	if (json_object_object_get_ex(d, "memlock", NULL) ||
	    json_object_object_get_ex(d, "asked", NULL)) {
		e.has_memlock = true;
		k = get_uint(d, "memlock", INT64_MAX, false, &e.memlock);
		if (k == 0)
			k = get_uint(d, "asked", INT64_MAX, false, &e.asked);
		if (k < 0)
			return k;
	}
	if (json_object_object_get_ex(d, "supported", &a)) {
		if (!json_object_is_type(a, json_type_array) || json_object_array_length(a) != 2)
			return -EBADMSG;
		for (size_t i = 0; i < 2; i++) {
			struct json_object *v = json_object_array_get_idx(a, i);
			int64_t n = json_object_get_int64(v);

			if (!json_object_is_type(v, json_type_int) || n < 0 || n > UINT32_MAX)
				return -EBADMSG;
			e.supported[i] = (uint32_t)n;
		}
		e.has_supported = true;
	}
	if (json_object_object_get_ex(d, "device", NULL) ||
	    json_object_object_get_ex(d, "rule", NULL) ||
	    json_object_object_get_ex(d, "reason", NULL)) {
		e.has_denial = true;
		k = get_address(d, "device", true, e.device);
		if (k == 0)
			k = get_string(d, "rule", true, e.rule, sizeof(e.rule));
		if (k == 0)
			k = get_string(d, "reason", false, e.reason, sizeof(e.reason));
		if (k < 0)
			return k;
	}
	*ret = e;
	return 0;
}

/* ---- events ---- */

struct json_object *vb_event_encode(const struct vb_event_msg *e)
{
	struct json_object *o = event_new(e->type);

	if (!o)
		return NULL;
	add(o, "group", new_uint(e->group));
	if (e->type == VB_EVENT_REMOVE_REQUESTED)
		add(o, "timeout_ms", new_uint(e->timeout_ms));
	if (e->type == VB_EVENT_DEVICE_ADDED)
		add(o, "device", json_object_new_string(e->device));
	return o;
}

int vb_event_decode(const struct vb_reply *r, struct vb_event_msg *ret)
{
	struct vb_event_msg e = {0};
	int k;

	if (!r || !r->body || !r->is_event)
		return -EBADMSG;
	e.type = r->event;
	k = get_u32(r->body, "group", VB_MAX_GROUP_ID, &e.group);
	if (k == 0 && e.type == VB_EVENT_REMOVE_REQUESTED)
		k = get_u32(r->body, "timeout_ms", UINT32_MAX, &e.timeout_ms);
	if (k == 0 && e.type == VB_EVENT_DEVICE_ADDED)
		k = get_address(r->body, "device", false, e.device);
	if (k < 0)
		return k;
	*ret = e;
	return 0;
}

/* ---- list entries ---- */

struct json_object *vb_group_info_to_json(const struct vb_group_info *g)
{
	struct json_object *o = json_object_new_object(), *devs = json_object_new_array();

	add(o, "group", new_uint(g->group));
	add(o, "viable", json_object_new_boolean(g->viable));
	add(o, "allowed", json_object_new_boolean(g->allowed));
	for (size_t i = 0; i < g->n_devices; i++) {
		const struct vb_device_info *d = &g->devices[i];
		struct json_object *dj = json_object_new_object();

		add(dj, "address", json_object_new_string(d->address));
		add(dj, "vendor", json_object_new_string(d->vendor));
		add(dj, "device", json_object_new_string(d->device));
		add(dj, "class", json_object_new_string(d->class_));
		add(dj, "driver", new_string_or_null(d->driver));
		if (d->paths) {
			struct json_object *pa = json_object_new_array();

			for (unsigned p = 0; p < _VB_PATH_MAX; p++)
				if (d->paths & (1u << p))
					json_object_array_add(
						pa,
						json_object_new_string(vb_lease_path_to_string(p)));
			add(dj, "paths", pa);
		}
		json_object_array_add(devs, dj);
	}
	add(o, "devices", devs);
	if (g->held) {
		struct json_object *h = json_object_new_object();

		add(h, "uid", new_uint(g->holder_uid));
		add(h, "pid", json_object_new_int64(g->holder_pid));
		add(o, "holder", h);
	} else {
		add(o, "holder", NULL);
	}
	return o;
}

/* A literal (key, punctuation) that needs no escaping. */
#define jw_lit(w, s) jw_put(w, s, sizeof(s) - 1)

static void jw_uint(struct textbuf *w, uint64_t v)
{
	textbuf_u64(w, v);
}

static void jw_bool(struct textbuf *w, bool v)
{
	if (v)
		jw_lit(w, "true");
	else
		jw_lit(w, "false");
}

/*
 * The text of vb_group_info_to_json(g) as vb_packet_serialize writes it,
 * key for key, without building the tree: the broker writes a list of
 * thousands of groups this way (test_reply checks the two agree).
 */
static void jw_group_info(struct textbuf *w, const struct vb_group_info *g)
{
	jw_lit(w, "{\"group\":");
	jw_uint(w, g->group);
	jw_lit(w, ",\"viable\":");
	jw_bool(w, g->viable);
	jw_lit(w, ",\"allowed\":");
	jw_bool(w, g->allowed);
	jw_lit(w, ",\"devices\":[");
	for (size_t i = 0; i < g->n_devices; i++) {
		const struct vb_device_info *d = &g->devices[i];

		if (i)
			jw_lit(w, ",");
		jw_lit(w, "{\"address\":");
		jw_string(w, d->address, strlen(d->address));
		jw_lit(w, ",\"vendor\":");
		jw_string(w, d->vendor, strlen(d->vendor));
		jw_lit(w, ",\"device\":");
		jw_string(w, d->device, strlen(d->device));
		jw_lit(w, ",\"class\":");
		jw_string(w, d->class_, strlen(d->class_));
		jw_lit(w, ",\"driver\":");
		if (d->driver[0])
			jw_string(w, d->driver, strlen(d->driver));
		else
			jw_lit(w, "null");
		if (d->paths) {
			bool first = true;

			jw_lit(w, ",\"paths\":[");
			for (unsigned p = 0; p < _VB_PATH_MAX; p++) {
				const char *name = vb_lease_path_to_string(p);

				if (!(d->paths & (1u << p)))
					continue;
				if (!first)
					jw_lit(w, ",");
				first = false;
				jw_string(w, name, strlen(name));
			}
			jw_lit(w, "]");
		}
		jw_lit(w, "}");
	}
	jw_lit(w, "],\"holder\":");
	if (g->held) {
		jw_lit(w, "{\"uid\":");
		jw_uint(w, g->holder_uid);
		jw_lit(w, ",\"pid\":");
		if (g->holder_pid < 0) {
			jw_lit(w, "-");
			jw_uint(w, (uint64_t) - (int64_t)g->holder_pid);
		} else {
			jw_uint(w, (uint64_t)g->holder_pid);
		}
		jw_lit(w, "}");
	} else {
		jw_lit(w, "null");
	}
	jw_lit(w, "}");
}

int vb_group_info_write(const struct vb_group_info *g, char *buf, size_t size, size_t *ret_len)
{
	struct textbuf w =
		textbuf_fixed(buf, size < VB_MAX_PACKET_SIZE ? size : VB_MAX_PACKET_SIZE);

	jw_group_info(&w, g);
	if (w.full)
		return -EMSGSIZE;
	*ret_len = w.len;
	return 0;
}

static int device_info_from_json(struct json_object *o, void *ret)
{
	struct vb_device_info *d = ret;
	int k;

	if (!json_object_is_type(o, json_type_object))
		return -EBADMSG;
	k = get_address(o, "address", false, d->address);
	if (k == 0)
		k = get_string(o, "vendor", false, d->vendor, sizeof(d->vendor));
	if (k == 0)
		k = get_string(o, "device", false, d->device, sizeof(d->device));
	if (k == 0)
		k = get_string(o, "class", false, d->class_, sizeof(d->class_));
	if (k == 0)
		k = get_string(o, "driver", true, d->driver, sizeof(d->driver));
	if (k == 0 && json_object_object_get_ex(o, "paths", NULL)) {
		struct json_object *pa;

		k = get_member(o, "paths", json_type_array, false, &pa);
		for (size_t i = 0; k == 0 && i < json_object_array_length(pa); i++) {
			struct json_object *v = json_object_array_get_idx(pa, i);
			int p;

			if (!json_object_is_type(v, json_type_string))
				return -EBADMSG;
			/* A path this version does not know is skipped, as brokers may grow. */
			p = vb_lease_path_from_string(json_object_get_string(v));
			if (p >= 0)
				d->paths |= 1u << p;
		}
	}
	return k;
}

int vb_group_info_from_json(struct json_object *o, struct vb_group_info *ret)
{
	struct vb_group_info g = {0};
	struct json_object *devs = NULL, *h = NULL;
	uint64_t pid = 0;
	int k;

	if (!o || !json_object_is_type(o, json_type_object))
		return -EBADMSG;
	k = get_u32(o, "group", VB_MAX_GROUP_ID, &g.group);
	if (k == 0)
		k = get_bool(o, "viable", &g.viable);
	if (k == 0)
		k = get_bool(o, "allowed", &g.allowed);
	if (k == 0)
		k = get_member(o, "holder", json_type_object, true, &h);
	if (k == 0 && h) {
		g.held = true;
		k = get_u32(h, "uid", UINT32_MAX, &g.holder_uid);
		if (k == 0)
			k = get_uint(h, "pid", INT32_MAX, false, &pid);
		g.holder_pid = (int32_t)pid;
	}
	if (k == 0)
		k = get_member(o, "devices", json_type_array, false, &devs);
	if (k == 0)
		k = decode_entries(devs, sizeof(*g.devices), device_info_from_json, NULL,
				   (void **)&g.devices, &g.n_devices);
	if (k < 0)
		return k;
	*ret = g;
	return 0;
}

static int group_entry_from_json(struct json_object *o, void *ret)
{
	return vb_group_info_from_json(o, ret);
}

static void group_entry_done(void *entry)
{
	vb_group_info_done(entry);
}

void vb_group_info_done(struct vb_group_info *g)
{
	if (!g)
		return;
	free(g->devices);
	g->devices = NULL;
	g->n_devices = 0;
}

struct json_object *vb_lease_info_to_json(const struct vb_lease_info *l)
{
	struct json_object *o = json_object_new_object();

	add(o, "group", new_uint(l->group));
	add(o, "uid", new_uint(l->uid));
	add(o, "pid", json_object_new_int64(l->pid));
	add(o, "since_usec", new_uint(l->since_usec));
	add(o, "rule", json_object_new_string(l->rule));
	add(o, "state", json_object_new_string(l->state));
	add(o, "container", new_uint(l->container_id));
	return o;
}

int vb_lease_info_from_json(struct json_object *o, struct vb_lease_info *ret)
{
	struct vb_lease_info l = {0};
	uint64_t pid = 0;
	int k;

	if (!o || !json_object_is_type(o, json_type_object))
		return -EBADMSG;
	k = get_u32(o, "group", VB_MAX_GROUP_ID, &l.group);
	if (k == 0)
		k = get_u32(o, "uid", UINT32_MAX, &l.uid);
	if (k == 0)
		k = get_uint(o, "pid", INT32_MAX, false, &pid);
	if (k == 0)
		k = get_uint(o, "since_usec", INT64_MAX, false, &l.since_usec);
	if (k == 0)
		k = get_string(o, "rule", false, l.rule, sizeof(l.rule));
	if (k == 0)
		k = get_string(o, "state", false, l.state, sizeof(l.state));
	if (k == 0)
		k = get_u32(o, "container", UINT32_MAX, &l.container_id);
	if (k < 0)
		return k;
	l.pid = (int32_t)pid;
	*ret = l;
	return 0;
}

static int lease_entry_from_json(struct json_object *o, void *ret)
{
	return vb_lease_info_from_json(o, ret);
}

/* ---- hello ---- */

struct json_object *vb_hello_reply_encode(uint32_t id, const struct vb_hello_reply *r)
{
	struct json_object *o = ok_reply_new(id);

	if (!o)
		return NULL;
	add(o, "version", new_uint(r->version));
	add(o, "server", json_object_new_string(r->server));
	add(o, "uid", new_uint(r->uid));
	add(o, "admin", json_object_new_boolean(r->admin));
	return o;
}

int vb_hello_reply_decode(const struct vb_reply *r, struct vb_hello_reply *ret)
{
	struct json_object *o = ok_body(r);
	struct vb_hello_reply h = {0};
	int k;

	k = get_u32(o, "version", UINT32_MAX, &h.version);
	if (k == 0)
		k = get_string(o, "server", false, h.server, sizeof(h.server));
	if (k == 0)
		k = get_u32(o, "uid", UINT32_MAX, &h.uid);
	if (k == 0)
		k = get_bool(o, "admin", &h.admin);
	if (k < 0)
		return k;
	*ret = h;
	return 0;
}

/* ---- list and leases: chunked ---- */

struct json_object *vb_list_chunk_encode(uint32_t id, struct json_object *groups, bool more,
					 const char *quarantine)
{
	struct json_object *o = ok_reply_new(id);

	if (!o) {
		json_object_put(groups);
		return NULL;
	}
	add(o, "groups", groups ? groups : json_object_new_array());
	add(o, "more", json_object_new_boolean(more));
	if (quarantine && quarantine[0])
		add(o, "quarantine", json_object_new_string(quarantine));
	return o;
}

int vb_list_chunk_write(uint32_t id, const char *groups, size_t groups_len, bool more,
			const char *quarantine, char *buf, size_t size, size_t *ret_len)
{
	struct textbuf w =
		textbuf_fixed(buf, size < VB_MAX_PACKET_SIZE ? size : VB_MAX_PACKET_SIZE);

	/* The keys of ok_reply_new and vb_list_chunk_encode, in their order. */
	jw_lit(&w, "{\"id\":");
	jw_uint(&w, id);
	jw_lit(&w, ",\"ok\":true,\"groups\":[");
	jw_put(&w, groups, groups_len);
	jw_lit(&w, "],\"more\":");
	jw_bool(&w, more);
	if (quarantine && quarantine[0]) {
		jw_lit(&w, ",\"quarantine\":");
		jw_string(&w, quarantine, strlen(quarantine));
	}
	jw_lit(&w, "}");
	if (w.full)
		return -EMSGSIZE;
	*ret_len = w.len;
	return 0;
}

struct json_object *vb_list_reply_encode(uint32_t id, const struct vb_list_reply *r)
{
	struct json_object *a = json_object_new_array();

	for (size_t i = 0; a && i < r->n_groups; i++)
		json_object_array_add(a, vb_group_info_to_json(&r->groups[i]));
	return a ? vb_list_chunk_encode(id, a, r->more, r->quarantine) : NULL;
}

int vb_list_reply_decode(const struct vb_reply *r, struct vb_list_reply *ret)
{
	struct json_object *o = ok_body(r), *a = NULL, *q;
	struct vb_list_reply l = {0};
	int k;

	k = get_member(o, "groups", json_type_array, false, &a);
	if (k == 0)
		k = get_bool(o, "more", &l.more);
	/* Optional: brokers before the kmod link did not say. */
	if (k == 0 && json_object_object_get_ex(o, "quarantine", &q))
		k = q ? string_value(q, l.quarantine, sizeof(l.quarantine)) : -EBADMSG;
	if (k == 0)
		k = decode_entries(a, sizeof(*l.groups), group_entry_from_json, group_entry_done,
				   (void **)&l.groups, &l.n_groups);
	if (k < 0)
		return k;
	*ret = l;
	return 0;
}

/* ---- list chunks read from the strict scan's map, without a json-c tree ---- */

/* A member called name (its escapes decoded, if it has any: as json-c compares keys). */
static bool map_name_is(const struct json_strict_map *m, const struct json_strict_node *member,
			const char *name, size_t len)
{
	if (!member->name_escaped)
		return member->name_len == len &&
		       memcmp(m->text + member->name_offset + 1, name, len) == 0;
	return json_strict_name_is(m, member, name);
}

#define MAP_NAME_IS(m, member, lit) map_name_is(m, member, lit, sizeof(lit) - 1)

/* An integer in [0, max], as get_uint reads one: a number with a fraction or exponent is not. */
static int map_uint(const struct json_strict_map *m, const struct json_strict_node *v, uint64_t max,
		    uint64_t *ret)
{
	const char *p;
	bool negative;
	uint64_t n = 0;

	if (!v || v->kind != JSON_STRICT_NUMBER)
		return -EBADMSG;
	p = m->text + v->offset;
	negative = *p == '-';
	p += negative;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (n > (UINT64_MAX - 9) / 10)
			return -EBADMSG; /* above any max of ours */
		n = n * 10 + (uint64_t)(*p - '0');
	}
	/* json-c reads "-0" as the integer 0, and anything with . or e as a double. */
	if (*p == '.' || *p == 'e' || *p == 'E' || (negative && n != 0) || n > max)
		return -EBADMSG;
	*ret = n;
	return 0;
}

static bool map_is_null(const struct json_strict_map *m, const struct json_strict_node *v)
{
	return v->kind == JSON_STRICT_LITERAL && m->text[v->offset] == 'n';
}

static int map_bool(const struct json_strict_map *m, const struct json_strict_node *v, bool *ret)
{
	if (!v || v->kind != JSON_STRICT_LITERAL || map_is_null(m, v))
		return -EBADMSG;
	*ret = m->text[v->offset] == 't';
	return 0;
}

/* A string that fits size with its terminator, as string_value reads one; null reads as "". */
static int map_string(const struct json_strict_map *m, const struct json_strict_node *v,
		      bool nullable, char *buf, size_t size)
{
	if (!v)
		return -EBADMSG;
	if (nullable && map_is_null(m, v)) {
		buf[0] = '\0';
		return 0;
	}
	if (v->kind != JSON_STRICT_STRING)
		return -EBADMSG;
	return json_strict_string(m, v, buf, size) < size ? 0 : -EBADMSG;
}

static int map_device_info(const struct json_strict_map *m, const struct json_strict_node *o,
			   struct vb_device_info *d)
{
	const struct json_strict_node *address = NULL, *vendor = NULL, *device = NULL,
				      *class_ = NULL, *driver = NULL, *paths = NULL;
	char text[VB_ADDRESS_MAX + 1];
	int k;

	if (o->kind != JSON_STRICT_OBJECT)
		return -EBADMSG;
	for (const struct json_strict_node *f = json_strict_first(m, o); f;
	     f = json_strict_next(m, f)) {
		if (MAP_NAME_IS(m, f, "address"))
			address = f;
		else if (MAP_NAME_IS(m, f, "vendor"))
			vendor = f;
		else if (MAP_NAME_IS(m, f, "device"))
			device = f;
		else if (MAP_NAME_IS(m, f, "class"))
			class_ = f;
		else if (MAP_NAME_IS(m, f, "driver"))
			driver = f;
		else if (MAP_NAME_IS(m, f, "paths"))
			paths = f;
	}
	/* An address longer than the longest one is none: vb_address_parse would refuse it. */
	k = map_string(m, address, false, text, sizeof(text));
	if (k == 0 && vb_address_parse(text, d->address) < 0)
		k = -EBADMSG;
	if (k == 0)
		k = map_string(m, vendor, false, d->vendor, sizeof(d->vendor));
	if (k == 0)
		k = map_string(m, device, false, d->device, sizeof(d->device));
	if (k == 0)
		k = map_string(m, class_, false, d->class_, sizeof(d->class_));
	if (k == 0)
		k = map_string(m, driver, true, d->driver, sizeof(d->driver));
	if (k == 0 && paths) {
		if (paths->kind != JSON_STRICT_ARRAY)
			return -EBADMSG;
		for (const struct json_strict_node *v = json_strict_first(m, paths); v;
		     v = json_strict_next(m, v)) {
			char name[32];
			int p;

			if (v->kind != JSON_STRICT_STRING)
				return -EBADMSG;
			/* A path this version does not know is skipped, as brokers may grow. */
			if (json_strict_string(m, v, name, sizeof(name)) >= sizeof(name))
				continue;
			p = vb_lease_path_from_string(name);
			if (p >= 0)
				d->paths |= 1u << p;
		}
	}
	return k;
}

/* As vb_group_info_from_json, from the map. */
static int map_group_info(const struct json_strict_map *m, const struct json_strict_node *o,
			  struct vb_group_info *ret)
{
	const struct json_strict_node *group = NULL, *viable = NULL, *allowed = NULL,
				      *holder = NULL, *devices = NULL;
	struct vb_group_info g = {0};
	uint64_t v = 0;
	int k;

	if (o->kind != JSON_STRICT_OBJECT)
		return -EBADMSG;
	for (const struct json_strict_node *f = json_strict_first(m, o); f;
	     f = json_strict_next(m, f)) {
		if (MAP_NAME_IS(m, f, "group"))
			group = f;
		else if (MAP_NAME_IS(m, f, "viable"))
			viable = f;
		else if (MAP_NAME_IS(m, f, "allowed"))
			allowed = f;
		else if (MAP_NAME_IS(m, f, "holder"))
			holder = f;
		else if (MAP_NAME_IS(m, f, "devices"))
			devices = f;
	}
	k = map_uint(m, group, VB_MAX_GROUP_ID, &v);
	g.group = (uint32_t)v;
	if (k == 0)
		k = map_bool(m, viable, &g.viable);
	if (k == 0)
		k = map_bool(m, allowed, &g.allowed);
	if (k == 0 && (!holder || (!map_is_null(m, holder) && holder->kind != JSON_STRICT_OBJECT)))
		k = -EBADMSG;
	if (k == 0 && !map_is_null(m, holder)) {
		const struct json_strict_node *uid = NULL, *pid = NULL;

		for (const struct json_strict_node *f = json_strict_first(m, holder); f;
		     f = json_strict_next(m, f)) {
			if (MAP_NAME_IS(m, f, "uid"))
				uid = f;
			else if (MAP_NAME_IS(m, f, "pid"))
				pid = f;
		}
		g.held = true;
		k = map_uint(m, uid, UINT32_MAX, &v);
		g.holder_uid = (uint32_t)v;
		if (k == 0)
			k = map_uint(m, pid, INT32_MAX, &v);
		g.holder_pid = (int32_t)v;
	}
	if (k == 0 && (!devices || devices->kind != JSON_STRICT_ARRAY))
		k = -EBADMSG;
	if (k == 0 && devices->n_children > 0) {
		const struct json_strict_node *d = json_strict_first(m, devices);

		g.devices = calloc(devices->n_children, sizeof(*g.devices));
		if (!g.devices)
			return -ENOMEM;
		for (; k == 0 && d; d = json_strict_next(m, d))
			k = map_device_info(m, d, &g.devices[g.n_devices++]);
	}
	if (k < 0) {
		free(g.devices);
		return k;
	}
	*ret = g;
	return 0;
}

/* As vb_list_reply_decode, from the map of the whole packet, whose root is root. */
static int map_list_reply(const struct json_strict_map *m, const struct json_strict_node *root,
			  struct vb_list_reply *ret)
{
	const struct json_strict_node *groups = NULL, *more = NULL, *quarantine = NULL;
	struct vb_list_reply l = {0};
	int k = 0;

	for (const struct json_strict_node *f = json_strict_first(m, root); f;
	     f = json_strict_next(m, f)) {
		if (MAP_NAME_IS(m, f, "groups"))
			groups = f;
		else if (MAP_NAME_IS(m, f, "more"))
			more = f;
		else if (MAP_NAME_IS(m, f, "quarantine"))
			quarantine = f;
	}
	if (!groups || groups->kind != JSON_STRICT_ARRAY)
		k = -EBADMSG;
	if (k == 0)
		k = map_bool(m, more, &l.more);
	/* Optional: brokers before the kmod link did not say. */
	if (k == 0 && quarantine)
		k = map_string(m, quarantine, false, l.quarantine, sizeof(l.quarantine));
	if (k == 0 && groups->n_children > 0) {
		l.groups = calloc(groups->n_children, sizeof(*l.groups));
		if (!l.groups)
			return -ENOMEM;
		for (const struct json_strict_node *g = json_strict_first(m, groups); k == 0 && g;
		     g = json_strict_next(m, g)) {
			k = map_group_info(m, g, &l.groups[l.n_groups]);
			if (k == 0)
				l.n_groups++;
		}
	}
	if (k < 0) {
		vb_list_reply_done(&l);
		return k;
	}
	*ret = l;
	return 0;
}

int vb_list_chunk_decode(const char *buf, size_t len, uint32_t id, struct vb_reply *env,
			 struct vb_list_reply *ret)
{
	const struct json_strict_node *root, *ok = NULL, *rid = NULL;
	struct json_strict_map map = {0};
	bool is_ok = false;
	uint64_t got = 0;
	int k;

	if (len == 0 || len > VB_MAX_PACKET_SIZE || memchr(buf, '\0', len))
		return -EBADMSG;
	/* Anything but an "ok" reply to id, or what the strict scan refuses: vb_reply_decode. */
	if (json_strict_scan(buf, len, VB_MAX_JSON_DEPTH * 2, &map, NULL) < 0)
		goto other;
	root = json_strict_root(&map);
	if (root->kind != JSON_STRICT_OBJECT)
		goto other;
	for (const struct json_strict_node *f = json_strict_first(&map, root); f;
	     f = json_strict_next(&map, f)) {
		if (MAP_NAME_IS(&map, f, "event"))
			goto other;
		if (MAP_NAME_IS(&map, f, "ok"))
			ok = f;
		else if (MAP_NAME_IS(&map, f, "id"))
			rid = f;
	}
	if (map_bool(&map, ok, &is_ok) < 0 || !is_ok || map_uint(&map, rid, UINT32_MAX, &got) < 0 ||
	    got != id)
		goto other;
	k = map_list_reply(&map, root, ret);
	json_strict_map_done(&map);
	if (k < 0)
		return k;
	*env = (struct vb_reply){.has_id = true, .id = id, .ok = true};
	return 0;
other:
	json_strict_map_done(&map);
	k = vb_reply_decode(buf, len, env);
	return k < 0 ? k : 1;
}

void vb_list_reply_done(struct vb_list_reply *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n_groups; i++)
		vb_group_info_done(&r->groups[i]);
	free(r->groups);
	r->groups = NULL;
	r->n_groups = 0;
}

struct json_object *vb_leases_chunk_encode(uint32_t id, struct json_object *leases, bool more)
{
	struct json_object *o = ok_reply_new(id);

	if (!o) {
		json_object_put(leases);
		return NULL;
	}
	add(o, "leases", leases ? leases : json_object_new_array());
	add(o, "more", json_object_new_boolean(more));
	return o;
}

struct json_object *vb_leases_reply_encode(uint32_t id, const struct vb_leases_reply *r)
{
	struct json_object *a = json_object_new_array();

	for (size_t i = 0; a && i < r->n_leases; i++)
		json_object_array_add(a, vb_lease_info_to_json(&r->leases[i]));
	return a ? vb_leases_chunk_encode(id, a, r->more) : NULL;
}

int vb_leases_reply_decode(const struct vb_reply *r, struct vb_leases_reply *ret)
{
	struct json_object *o = ok_body(r), *a = NULL;
	struct vb_leases_reply l = {0};
	int k;

	k = get_member(o, "leases", json_type_array, false, &a);
	if (k == 0)
		k = get_bool(o, "more", &l.more);
	if (k == 0)
		k = decode_entries(a, sizeof(*l.leases), lease_entry_from_json, NULL,
				   (void **)&l.leases, &l.n_leases);
	if (k < 0)
		return k;
	*ret = l;
	return 0;
}

void vb_leases_reply_done(struct vb_leases_reply *r)
{
	if (!r)
		return;
	free(r->leases);
	r->leases = NULL;
	r->n_leases = 0;
}

/* ---- lease, release ---- */

struct json_object *vb_lease_reply_encode(uint32_t id, const struct vb_lease_reply *r)
{
	struct json_object *o = ok_reply_new(id);

	if (!o)
		return NULL;
	add(o, "group", new_uint(r->group));
	add(o, "rule", new_string_or_null(r->rule));
	add(o, "memlock", r->memlock ? new_uint(r->memlock) : NULL);
	if (r->path == VB_PATH_CDEV) {
		struct json_object *devs = json_object_new_array();

		add(o, "path", json_object_new_string(vb_lease_path_to_string(r->path)));
		add(o, "iommufd", new_uint(r->iommufd));
		add(o, "iommufd_reused", json_object_new_boolean(r->iommufd_reused));
		for (size_t i = 0; devs && i < r->n_devices && i < VB_MAX_CDEV_DEVICES; i++) {
			struct json_object *d = json_object_new_object();

			add(d, "address", json_object_new_string(r->devices[i].address));
			add(d, "fd", new_uint(r->devices[i].fd));
			json_object_array_add(devs, d);
		}
		add(o, "devices", devs);
	}
	return o;
}

/* The cdev fields of a lease reply: indexes below VB_MAX_FDS, each used once. */
static int lease_reply_decode_cdev(struct json_object *o, struct vb_lease_reply *l)
{
	struct json_object *devs;
	uint32_t seen = 0;
	size_t n;
	int k;

	k = get_u32(o, "iommufd", VB_MAX_FDS - 1, &l->iommufd);
	if (k == 0)
		k = get_bool(o, "iommufd_reused", &l->iommufd_reused);
	if (k == 0)
		k = get_member(o, "devices", json_type_array, false, &devs);
	if (k < 0)
		return k;
	n = json_object_array_length(devs);
	if (n == 0 || n > VB_MAX_CDEV_DEVICES)
		return -EBADMSG;
	seen |= 1u << l->iommufd;
	for (size_t i = 0; i < n; i++) {
		struct json_object *d = json_object_array_get_idx(devs, i);

		if (!json_object_is_type(d, json_type_object))
			return -EBADMSG;
		k = get_address(d, "address", false, l->devices[i].address);
		if (k == 0)
			k = get_u32(d, "fd", VB_MAX_FDS - 1, &l->devices[i].fd);
		if (k < 0)
			return k;
		if (seen & (1u << l->devices[i].fd))
			return -EBADMSG;
		seen |= 1u << l->devices[i].fd;
	}
	l->n_devices = n;
	return 0;
}

int vb_lease_reply_decode(const struct vb_reply *r, struct vb_lease_reply *ret)
{
	struct json_object *o = ok_body(r);
	struct vb_lease_reply l = {0};
	int k;

	k = get_u32(o, "group", VB_MAX_GROUP_ID, &l.group);
	if (k == 0)
		k = get_string(o, "rule", true, l.rule, sizeof(l.rule));
	if (k == 0)
		k = get_uint(o, "memlock", INT64_MAX, true, &l.memlock);
	if (k == 0 && json_object_object_get_ex(o, "path", NULL)) {
		char path[8];
		int p;

		k = get_string(o, "path", false, path, sizeof(path));
		p = k == 0 ? vb_lease_path_from_string(path) : -EINVAL;
		if (p < 0)
			k = -EBADMSG;
		else
			l.path = (enum vb_lease_path)p;
		if (k == 0 && l.path == VB_PATH_CDEV)
			k = lease_reply_decode_cdev(o, &l);
	}
	if (k < 0)
		return k;
	*ret = l;
	return 0;
}

struct json_object *vb_release_reply_encode(uint32_t id, const struct vb_release_reply *r)
{
	struct json_object *o = ok_reply_new(id);

	if (!o)
		return NULL;
	add(o, "group", new_uint(r->group));
	add(o, "released", json_object_new_boolean(r->released));
	return o;
}

int vb_release_reply_decode(const struct vb_reply *r, struct vb_release_reply *ret)
{
	struct json_object *o = ok_body(r);
	struct vb_release_reply l = {0};
	int k;

	k = get_u32(o, "group", VB_MAX_GROUP_ID, &l.group);
	if (k == 0)
		k = get_bool(o, "released", &l.released);
	if (k < 0)
		return k;
	*ret = l;
	return 0;
}

/* ---- merge, unmerge ---- */

struct json_object *vb_merge_reply_encode(uint32_t id, const struct vb_merge_reply *r)
{
	struct json_object *o = ok_reply_new(id), *a;

	if (!o)
		return NULL;
	a = json_object_new_array();
	for (size_t i = 0; i < r->n_groups; i++)
		json_object_array_add(a, new_uint(r->groups[i]));
	add(o, "container", new_uint(r->container));
	add(o, "groups", a);
	return o;
}

/* A group id, alone in an array. */
static int group_id_from_json(struct json_object *v, void *ret)
{
	int64_t g = json_object_get_int64(v);

	if (!json_object_is_type(v, json_type_int) || g < 0 || g > VB_MAX_GROUP_ID)
		return -EBADMSG;
	*(uint32_t *)ret = (uint32_t)g;
	return 0;
}

int vb_merge_reply_decode(const struct vb_reply *r, struct vb_merge_reply *ret)
{
	struct json_object *o = ok_body(r), *a = NULL;
	struct vb_merge_reply m = {0};
	int k;

	k = get_u32(o, "container", UINT32_MAX, &m.container);
	if (k == 0)
		k = get_member(o, "groups", json_type_array, false, &a);
	if (k == 0)
		k = decode_entries(a, sizeof(*m.groups), group_id_from_json, NULL,
				   (void **)&m.groups, &m.n_groups);
	if (k < 0)
		return k;
	*ret = m;
	return 0;
}

void vb_merge_reply_done(struct vb_merge_reply *r)
{
	if (!r)
		return;
	free(r->groups);
	r->groups = NULL;
	r->n_groups = 0;
}

struct json_object *vb_unmerge_reply_encode(uint32_t id, const struct vb_unmerge_reply *r)
{
	struct json_object *o = ok_reply_new(id);

	if (o)
		add(o, "group", new_uint(r->group));
	return o;
}

int vb_unmerge_reply_decode(const struct vb_reply *r, struct vb_unmerge_reply *ret)
{
	struct vb_unmerge_reply u = {0};
	int k = get_u32(ok_body(r), "group", VB_MAX_GROUP_ID, &u.group);

	if (k < 0)
		return k;
	*ret = u;
	return 0;
}

/* ---- remove, reload ---- */

struct json_object *vb_remove_reply_encode(uint32_t id, const struct vb_remove_reply *r)
{
	struct json_object *o = ok_reply_new(id);

	if (!o)
		return NULL;
	add(o, "group", new_uint(r->group));
	add(o, "mode", json_object_new_string(r->mode == VB_REMOVE_HARD ? "hard" : "soft"));
	add(o, "elapsed_ms", new_uint(r->elapsed_ms));
	return o;
}

int vb_remove_reply_decode(const struct vb_reply *r, struct vb_remove_reply *ret)
{
	struct json_object *o = ok_body(r);
	struct vb_remove_reply m = {0};
	char mode[8];
	int k;

	k = get_u32(o, "group", VB_MAX_GROUP_ID, &m.group);
	if (k == 0)
		k = get_string(o, "mode", false, mode, sizeof(mode));
	if (k == 0)
		k = get_uint(o, "elapsed_ms", INT64_MAX, false, &m.elapsed_ms);
	if (k < 0)
		return k;
	if (strcmp(mode, "soft") == 0)
		m.mode = VB_REMOVE_SOFT;
	else if (strcmp(mode, "hard") == 0)
		m.mode = VB_REMOVE_HARD;
	else
		return -EBADMSG;
	*ret = m;
	return 0;
}

struct json_object *vb_reload_reply_encode(uint32_t id, const struct vb_reload_reply *r)
{
	struct json_object *o = ok_reply_new(id);

	if (!o)
		return NULL;
	add(o, "rules", new_uint(r->rules));
	add(o, "files", new_uint(r->files));
	return o;
}

int vb_reload_reply_decode(const struct vb_reply *r, struct vb_reload_reply *ret)
{
	struct json_object *o = ok_body(r);
	struct vb_reload_reply l = {0};
	int k;

	k = get_uint(o, "rules", INT64_MAX, false, &l.rules);
	if (k == 0)
		k = get_uint(o, "files", INT64_MAX, false, &l.files);
	if (k < 0)
		return k;
	*ret = l;
	return 0;
}

/* ---- explain ---- */

struct json_object *vb_explain_reply_encode(uint32_t id, const struct vb_explain_reply *r)
{
	struct json_object *o = ok_reply_new(id);

	if (!o)
		return NULL;
	add(o, "group", new_uint(r->group));
	add(o, "uid", new_uint(r->uid));
	add(o, "allowed", json_object_new_boolean(r->allowed));
	add(o, "rule", new_string_or_null(r->rule));
	add(o, "device", new_string_or_null(r->device));
	add(o, "reason", json_object_new_string(r->reason ? r->reason : ""));
	add(o, "text", json_object_new_string(r->text ? r->text : ""));
	return o;
}

int vb_explain_reply_decode(const struct vb_reply *r, struct vb_explain_reply *ret)
{
	struct json_object *o = ok_body(r);
	struct vb_explain_reply e = {0};
	int k;

	k = get_u32(o, "group", VB_MAX_GROUP_ID, &e.group);
	if (k == 0)
		k = get_u32(o, "uid", UINT32_MAX, &e.uid);
	if (k == 0)
		k = get_bool(o, "allowed", &e.allowed);
	if (k == 0)
		k = get_string(o, "rule", true, e.rule, sizeof(e.rule));
	if (k == 0)
		k = get_address(o, "device", true, e.device);
	if (k == 0)
		k = get_strdup(o, "reason", &e.reason);
	if (k == 0)
		k = get_strdup(o, "text", &e.text);
	if (k < 0) {
		vb_explain_reply_done(&e);
		return k;
	}
	*ret = e;
	return 0;
}

void vb_explain_reply_done(struct vb_explain_reply *r)
{
	if (!r)
		return;
	free(r->reason);
	free(r->text);
	r->reason = r->text = NULL;
}

/* ---- quarantine, unquarantine ---- */

struct json_object *vb_quarantine_reply_encode(uint32_t id, const struct vb_quarantine_reply *r)
{
	struct json_object *o = ok_reply_new(id), *a;

	if (!o)
		return NULL;
	a = json_object_new_array();
	for (size_t i = 0; i < r->n_devices && i < VB_QUARANTINE_MAX_DEVICES; i++)
		json_object_array_add(a, json_object_new_string(r->devices[i]));
	add(o, "group", new_uint(r->group));
	add(o, "mode", json_object_new_string(r->mode == VB_QUARANTINE_KMOD ? "kmod" : "sysfs"));
	add(o, "devices", a);
	return o;
}

int vb_quarantine_reply_decode(const struct vb_reply *r, struct vb_quarantine_reply *ret)
{
	struct json_object *o = ok_body(r), *a = NULL;
	struct vb_quarantine_reply q = {0};
	char mode[8];
	int k;

	k = get_u32(o, "group", VB_MAX_GROUP_ID, &q.group);
	if (k == 0)
		k = get_string(o, "mode", false, mode, sizeof(mode));
	if (k == 0)
		k = get_member(o, "devices", json_type_array, false, &a);
	if (k < 0)
		return k;
	if (strcmp(mode, "kmod") == 0)
		q.mode = VB_QUARANTINE_KMOD;
	else if (strcmp(mode, "sysfs") == 0)
		q.mode = VB_QUARANTINE_SYSFS;
	else
		return -EBADMSG;
	/* A group has at most that many members (INVENTORY_MAX_DEVICES is the same 64). */
	if (json_object_array_length(a) > VB_QUARANTINE_MAX_DEVICES)
		return -EBADMSG;
	for (; q.n_devices < json_object_array_length(a); q.n_devices++) {
		struct json_object *v = json_object_array_get_idx(a, q.n_devices);

		if (!json_object_is_type(v, json_type_string) ||
		    vb_address_parse(json_object_get_string(v), q.devices[q.n_devices]) < 0)
			return -EBADMSG;
	}
	*ret = q;
	return 0;
}
