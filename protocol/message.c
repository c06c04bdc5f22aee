/* SPDX-License-Identifier: MIT */
#include "protocol/message.h"
#include "protocol/wire.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const op_names[_VB_OP_MAX] = {
	[VB_OP_HELLO] = "hello",	   [VB_OP_LIST] = "list",
	[VB_OP_LEASE] = "lease",	   [VB_OP_RELEASE] = "release",
	[VB_OP_MERGE] = "merge",	   [VB_OP_UNMERGE] = "unmerge",
	[VB_OP_LEASES] = "leases",	   [VB_OP_REMOVE] = "remove",
	[VB_OP_RELOAD] = "reload",	   [VB_OP_EXPLAIN] = "explain",
	[VB_OP_QUARANTINE] = "quarantine", [VB_OP_UNQUARANTINE] = "unquarantine",
};

static const char *const status_names[_VB_STATUS_MAX] = {
	[VB_OK] = "ok",
	[VB_E_DENIED] = "denied",
	[VB_E_BUSY] = "busy",
	[VB_E_NOT_VIABLE] = "not-viable",
	[VB_E_NO_SUCH_GROUP] = "no-such-group",
	[VB_E_BAD_REQUEST] = "bad-request",
	[VB_E_UNSUPPORTED_VERSION] = "unsupported-version",
	[VB_E_LIMIT] = "limit",
	[VB_E_NOT_HELD] = "not-held",
	[VB_E_TIMEOUT] = "timeout",
	[VB_E_INTERNAL] = "internal",
};

static const int status_errnos[_VB_STATUS_MAX] = {
	[VB_OK] = 0,
	[VB_E_DENIED] = EACCES,
	[VB_E_BUSY] = EBUSY,
	[VB_E_NOT_VIABLE] = EPERM,
	[VB_E_NO_SUCH_GROUP] = ENOENT,
	[VB_E_BAD_REQUEST] = EINVAL,
	[VB_E_UNSUPPORTED_VERSION] = EPROTONOSUPPORT,
	[VB_E_LIMIT] = EUSERS,
	[VB_E_NOT_HELD] = ESRCH,
	[VB_E_TIMEOUT] = ETIMEDOUT,
	[VB_E_INTERNAL] = EIO,
};

static const char *const event_names[_VB_EVENT_MAX] = {
	[VB_EVENT_REMOVE_REQUESTED] = "remove-requested",
	[VB_EVENT_REVOKED] = "revoked",
	[VB_EVENT_RELEASED] = "released",
	[VB_EVENT_DEVICE_ADDED] = "device-added",
};

static int lookup(const char *const *names, size_t n, const char *s)
{
	if (!s)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (names[i] && strcmp(names[i], s) == 0)
			return (int)i;
	return -EINVAL;
}

const char *vb_op_to_string(enum vb_op op)
{
	return (unsigned)op < _VB_OP_MAX ? op_names[op] : NULL;
}

int vb_op_from_string(const char *s)
{
	return lookup(op_names, _VB_OP_MAX, s);
}

size_t vb_op_max_fds(enum vb_op op)
{
	/*
	 * No op takes a descriptor: the broker never receives one (a client's fd
	 * can make its close or fstat block), and a client attaches groups to a
	 * container of its own itself.
	 */
	(void)op;
	return 0;
}

const char *vb_status_to_string(enum vb_status s)
{
	return (unsigned)s < _VB_STATUS_MAX ? status_names[s] : "internal";
}

int vb_status_from_string(const char *s)
{
	return lookup(status_names, _VB_STATUS_MAX, s);
}

int vb_status_to_errno(enum vb_status s)
{
	return (unsigned)s < _VB_STATUS_MAX ? -status_errnos[s] : -EIO;
}

const char *vb_event_to_string(enum vb_event e)
{
	return (unsigned)e < _VB_EVENT_MAX ? event_names[e] : NULL;
}

int vb_event_from_string(const char *s)
{
	return lookup(event_names, _VB_EVENT_MAX, s);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int vb_address_parse(const char *s, char out[VB_ADDRESS_MAX])
{
	/* dddd:bb:dd.f -- fixed width, as the kernel names PCI devices. */
	static const char shape[] = "xxxx:xx:xx.x";
	char tmp[VB_ADDRESS_MAX];

	if (!s || strlen(s) != sizeof(shape) - 1)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(shape) - 1; i++) {
		if (shape[i] == 'x') {
			if (hexval(s[i]) < 0)
				return -EINVAL;
			tmp[i] = (char)(s[i] >= 'A' && s[i] <= 'F' ? s[i] - 'A' + 'a' : s[i]);
		} else if (s[i] != shape[i]) {
			return -EINVAL;
		} else {
			tmp[i] = s[i];
		}
	}
	tmp[sizeof(shape) - 1] = '\0';
	if (hexval(tmp[8]) * 16 + hexval(tmp[9]) > 0x1f || hexval(tmp[11]) > 7)
		return -EINVAL;
	memcpy(out, tmp, sizeof(shape));
	return 0;
}

int vb_group_parse(const char *s, uint32_t *ret)
{
	uint64_t v = 0;

	if (!s || !*s || (s[0] == '0' && s[1]))
		return -EINVAL;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		v = v * 10 + (uint64_t)(*p - '0');
		if (v > VB_MAX_GROUP_ID)
			return -EINVAL;
	}
	*ret = (uint32_t)v;
	return 0;
}

void vb_request_init(struct vb_request *r, uint32_t id, enum vb_op op)
{
	memset(r, 0, sizeof(*r));
	r->id = id;
	r->op = op;
	r->group = -1;
	r->uid = -1;
}

/* ---- request decoding ---- */

/* Keys each op accepts, besides "id" and "op". */
static const char *const op_keys[_VB_OP_MAX][5] = {
	[VB_OP_HELLO] = {"version", "client"},
	[VB_OP_LIST] = {0},
	[VB_OP_LEASE] = {"group", "device"},
	[VB_OP_RELEASE] = {"group"},
	[VB_OP_MERGE] = {"groups"},
	[VB_OP_UNMERGE] = {"group"},
	[VB_OP_LEASES] = {0},
	[VB_OP_REMOVE] = {"group", "mode", "timeout_ms"},
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

/*
 * The members of a request object, read either from the flat object the fast path scanned
 * (members[], for the requests clients actually send: scalars only, no escapes) or from
 * json-c's parse of anything else (o). The checks after parsing are the same for both.
 */
#define FAST_MAX_MEMBERS 8

struct member {
	const char *key;
	enum json_type type;
	int64_t i;     /* json_type_int */
	bool in_range; /* json_type_int: fits int64 (else i is meaningless) */
	bool b;	       /* json_type_boolean */
	const char *s; /* json_type_string: terminated, s_len bytes */
	size_t s_len;
	struct json_object *json; /* the json-c value, when read from o */
};

struct request_view {
	struct json_object *o; /* or: */
	struct member members[FAST_MAX_MEMBERS];
	size_t n_members;
};

/* The member called key; false when absent. */
static bool view_get(const struct request_view *v, const char *key, struct member *ret)
{
	struct json_object *j;

	if (!v->o) {
		for (size_t i = 0; i < v->n_members; i++)
			if (strcmp(v->members[i].key, key) == 0) {
				*ret = v->members[i];
				return true;
			}
		return false;
	}
	if (!json_object_object_get_ex(v->o, key, &j))
		return false;
	*ret = (struct member){.key = key, .type = json_object_get_type(j), .json = j};
	switch (ret->type) {
	case json_type_int:
		errno = 0;
		ret->i = json_object_get_int64(j);
		ret->in_range =
			errno != ERANGE &&
			(ret->i != INT64_MAX || json_object_get_uint64(j) == (uint64_t)INT64_MAX);
		break;
	case json_type_boolean:
		ret->b = json_object_get_boolean(j);
		break;
	case json_type_string:
		ret->s = json_object_get_string(j);
		ret->s_len = (size_t)json_object_get_string_len(j);
		break;
	default:
		break;
	}
	return true;
}

/* Reads an integer field in [min, max]; -ENOENT when absent. */
static int get_int(const struct request_view *o, const char *key, int64_t min, int64_t max,
		   int64_t *ret, struct vb_decode_error *err)
{
	struct member m;

	if (!view_get(o, key, &m))
		return -ENOENT;
	if (m.type != json_type_int)
		return decode_fail(err, VB_E_BAD_REQUEST, "\"%s\" must be an integer", key);
	if (!m.in_range || m.i < min || m.i > max)
		return decode_fail(err, VB_E_BAD_REQUEST, "\"%s\" must be between %lld and %lld",
				   key, (long long)min, (long long)max);
	*ret = m.i;
	return 0;
}

/* Reads a string field shorter than size; -ENOENT when absent. */
static int get_string(const struct request_view *o, const char *key, size_t size, const char **ret,
		      struct vb_decode_error *err)
{
	struct member m;

	if (!view_get(o, key, &m))
		return -ENOENT;
	if (m.type != json_type_string)
		return decode_fail(err, VB_E_BAD_REQUEST, "\"%s\" must be a string", key);
	if (m.s_len >= size || strlen(m.s) != m.s_len)
		return decode_fail(err, VB_E_BAD_REQUEST, "\"%s\" is too long or holds a NUL", key);
	*ret = m.s;
	return 0;
}

static int decode_group(const struct request_view *o, struct vb_request *r, bool required,
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

static int decode_op_args(const struct request_view *o, struct vb_request *r,
			  struct vb_decode_error *err)
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
		struct member b;

		if ((k = decode_group(o, r, true, err)) < 0)
			return k;
		if (!view_get(o, "restore", &b))
			return 0;
		if (b.type != json_type_boolean)
			return decode_fail(err, VB_E_BAD_REQUEST, "\"restore\" must be a boolean");
		r->restore = b.b;
		return 0;
	}
	case VB_OP_MERGE: {
		struct json_object *a;
		struct member m;
		size_t n;

		if (!view_get(o, "groups", &m))
			return decode_fail(err, VB_E_BAD_REQUEST, "\"merge\" needs \"groups\"");
		/* the fast path reads no arrays: an array always comes from json-c */
		if (m.type != json_type_array || !m.json)
			return decode_fail(err, VB_E_BAD_REQUEST, "\"groups\" must be an array");
		a = m.json;
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
	case VB_OP_REMOVE:
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
		return k == -ENOENT ? 0 : k;
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

/* The length of the well-formed UTF-8 sequence at s (RFC 3629, no surrogates), or 0. */
static size_t utf8_sequence_length(const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t n;
	uint32_t cp, min;

	if (u[0] >= 0xc2 && u[0] <= 0xdf)
		n = 2, cp = u[0] & 0x1f, min = 0x80;
	else if (u[0] >= 0xe0 && u[0] <= 0xef)
		n = 3, cp = u[0] & 0x0f, min = 0x800;
	else if (u[0] >= 0xf0 && u[0] <= 0xf4)
		n = 4, cp = u[0] & 0x07, min = 0x10000;
	else
		return 0;
	if (len < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((u[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (u[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

/*
 * What json-c's strict mode lets through but JSON does not: raw control characters in
 * strings, single-quoted member names, numbers with leading zeros ("00", "-01"), and
 * "\u0000" (json-c cuts member names there: "op\u0000x" would be read as "op").  Also
 * counts the members of the top-level object: json-c keeps only the last of duplicate
 * names, so a count that differs from json-c's means a duplicate.  NULL if clean.
 */
static const char *json_prescan(const char *buf, size_t len, size_t *ret_members)
{
	bool in_string = false;
	unsigned depth = 0;
	size_t members = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)buf[i];

		if (in_string) {
			if (c == '"') {
				in_string = false;
			} else if (c < 0x20) {
				return "a control character in a string must be escaped";
			} else if (c >= 0x80) {
				size_t n = utf8_sequence_length(buf + i, len - i);

				if (!n)
					return "a string is not valid UTF-8";
				i += n - 1;
			} else if (c == '\\') {
				if (len - i >= 6 && memcmp(buf + i + 1, "u0000", 5) == 0)
					return "\\u0000 is not allowed";
				i++; /* the escaped character */
			}
			continue;
		}
		switch (c) {
		case '"':
			in_string = true;
			break;
		case '\'':
			return "names and strings must be in double quotes";
		case '{':
		case '[':
			depth++;
			break;
		case '}':
		case ']':
			depth--;
			break;
		case ':':
			members += depth == 1;
			break;
		case '0': {
			/* the first digit of an integer part (not of a fraction or exponent) */
			unsigned char p = i ? (unsigned char)buf[i - 1] : ' ';
			unsigned char pp = i > 1 ? (unsigned char)buf[i - 2] : ' ';
			bool starts = !(p >= '0' && p <= '9') && p != '.' && p != 'e' && p != 'E' &&
				      p != '+' && !(p == '-' && (pp == 'e' || pp == 'E'));

			if (starts && i + 1 < len && buf[i + 1] >= '0' && buf[i + 1] <= '9')
				return "numbers must not have leading zeros";
			break;
		}
		}
	}
	if (ret_members)
		*ret_members = members;
	return NULL;
}

static bool key_known(enum vb_op op, const char *key)
{
	if (strcmp(key, "id") == 0 || strcmp(key, "op") == 0)
		return true;
	for (size_t i = 0; i < 5 && op_keys[op][i]; i++)
		if (strcmp(op_keys[op][i], key) == 0)
			return true;
	return false;
}

static bool is_json_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static size_t skip_ws(const char *buf, size_t len, size_t i)
{
	while (i < len && is_json_ws(buf[i]))
		i++;
	return i;
}

/* The end of the string whose opening quote is at buf[i]; 0 for one with an escape (or none). */
static size_t fast_string_end(const char *buf, size_t len, size_t i)
{
	for (i++; i < len; i++) {
		if (buf[i] == '"')
			return i;
		if (buf[i] == '\\')
			return 0;
	}
	return 0;
}

/*
 * The fast path: a request as clients send it, one flat object of at most FAST_MAX_MEMBERS
 * members whose names and strings hold no escapes and whose values are integers, strings,
 * true, false or null. Anything else (and anything malformed) returns false, and json-c
 * parses it instead: this decides nothing on its own, so JSON it does not know cannot slip
 * through. json_prescan() has already checked the UTF-8, raw control characters and
 * leading zeros. Names and strings are copied, terminated, into scratch (len + 2 *
 * FAST_MAX_MEMBERS bytes).
 */
static bool fast_scan(const char *buf, size_t len, char *scratch, struct request_view *v)
{
	size_t i = skip_ws(buf, len, 0), end, n = 0;
	char *out = scratch;

	v->o = NULL;
	v->n_members = 0;
	if (i >= len || buf[i] != '{')
		return false;
	i = skip_ws(buf, len, i + 1);
	if (i < len && buf[i] == '}')
		goto done;
	for (;;) {
		struct member *m;

		if (n == FAST_MAX_MEMBERS || i >= len || buf[i] != '"' ||
		    !(end = fast_string_end(buf, len, i)))
			return false;
		m = &v->members[n++];
		*m = (struct member){.key = out};
		memcpy(out, buf + i + 1, end - i - 1);
		out += end - i - 1;
		*out++ = '\0';
		i = skip_ws(buf, len, end + 1);
		if (i >= len || buf[i] != ':')
			return false;
		i = skip_ws(buf, len, i + 1);
		if (i >= len)
			return false;
		if (buf[i] == '"') {
			if (!(end = fast_string_end(buf, len, i)))
				return false;
			m->type = json_type_string;
			m->s = out;
			m->s_len = end - i - 1;
			memcpy(out, buf + i + 1, m->s_len);
			out += m->s_len;
			*out++ = '\0';
			i = end + 1;
		} else if (buf[i] == '-' || (buf[i] >= '0' && buf[i] <= '9')) {
			bool negative = buf[i] == '-';
			uint64_t x = 0;
			size_t digits = 0;

			m->type = json_type_int;
			m->in_range = true;
			for (i += negative; i < len && buf[i] >= '0' && buf[i] <= '9';
			     i++, digits++) {
				unsigned d = (unsigned)(buf[i] - '0');

				if (x > (UINT64_MAX - d) / 10)
					m->in_range = false;
				else
					x = x * 10 + d;
			}
			/* fractions and exponents (doubles) are json-c's */
			if (digits == 0 ||
			    (i < len && (buf[i] == '.' || buf[i] == 'e' || buf[i] == 'E')))
				return false;
			if (negative ? x > (uint64_t)INT64_MAX + 1 : x > (uint64_t)INT64_MAX)
				m->in_range = false;
			else
				m->i = negative ? (int64_t)(0 - x) : (int64_t)x;
		} else if (len - i >= 4 && memcmp(buf + i, "true", 4) == 0) {
			m->type = json_type_boolean;
			m->b = true;
			i += 4;
		} else if (len - i >= 5 && memcmp(buf + i, "false", 5) == 0) {
			m->type = json_type_boolean;
			i += 5;
		} else if (len - i >= 4 && memcmp(buf + i, "null", 4) == 0) {
			m->type = json_type_null;
			i += 4;
		} else {
			return false;
		}
		i = skip_ws(buf, len, i);
		if (i < len && buf[i] == '}')
			break;
		if (i >= len || buf[i] != ',')
			return false;
		i = skip_ws(buf, len, i + 1);
	}
done:
	if (skip_ws(buf, len, i + 1) != len)
		return false;
	v->n_members = n;
	return true;
}

/* The first member name the op does not take, or NULL. */
static const char *view_unknown_key(const struct request_view *v, enum vb_op op)
{
	if (!v->o) {
		for (size_t i = 0; i < v->n_members; i++)
			if (!key_known(op, v->members[i].key))
				return v->members[i].key;
		return NULL;
	}
	json_object_object_foreach (v->o, key, val) {
		(void)val;
		if (!key_known(op, key))
			return key;
	}
	return NULL;
}

/* Whether the flat object names a member twice (json-c's parse is counted instead). */
static bool view_repeats_key(const struct request_view *v)
{
	for (size_t i = 1; i < v->n_members; i++)
		for (size_t j = 0; j < i; j++)
			if (strcmp(v->members[i].key, v->members[j].key) == 0)
				return true;
	return false;
}

/* json-c's parse of buf into v->o: 0, or -EBADMSG with err filled. */
static int json_parse(const char *buf, size_t len, size_t members, struct request_view *v,
		      struct vb_decode_error *err)
{
	struct json_tokener *tok;
	struct json_object *o;

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
	if ((size_t)json_object_object_length(o) != members) {
		json_object_put(o);
		return decode_fail(err, VB_E_BAD_REQUEST, "a request must not repeat a key");
	}
	v->o = o;
	return 0;
}

#ifdef VB_DECODE_TEST_SWITCH
/* Set by the request fuzzer to decode with json-c alone and compare with the fast path. */
bool vb_decode_json_only;
#define FAST_PATH_ALLOWED (!vb_decode_json_only)
#else
#define FAST_PATH_ALLOWED true
#endif

int vb_request_decode(const char *buf, size_t len, struct vb_request *ret,
		      struct vb_decode_error *err)
{
	char scratch[VB_MAX_REQUEST_SIZE + 2 * FAST_MAX_MEMBERS];
	struct request_view view;
	struct vb_request r;
	const char *s;
	size_t members = 0;
	int64_t v;
	int k;

	memset(err, 0, sizeof(*err));
	vb_request_init(&r, 0, VB_OP_HELLO);
	if (len == 0 || len > VB_MAX_REQUEST_SIZE)
		return decode_fail(err, VB_E_BAD_REQUEST, "a request is 1 to %d bytes",
				   VB_MAX_REQUEST_SIZE);
	if (memchr(buf, '\0', len))
		return decode_fail(err, VB_E_BAD_REQUEST, "a request must not contain NUL bytes");

	s = json_prescan(buf, len, &members);
	if (s)
		return decode_fail(err, VB_E_BAD_REQUEST, "not a JSON object: %s", s);
	if (FAST_PATH_ALLOWED && fast_scan(buf, len, scratch, &view)) {
		if (view_repeats_key(&view))
			return decode_fail(err, VB_E_BAD_REQUEST,
					   "a request must not repeat a key");
	} else {
		k = json_parse(buf, len, members, &view, err);
		if (k < 0)
			return k;
	}

	k = get_int(&view, "id", 0, UINT32_MAX, &v, err);
	if (k == -ENOENT)
		k = decode_fail(err, VB_E_BAD_REQUEST, "a request needs an integer \"id\"");
	if (k < 0)
		goto fail;
	r.id = (uint32_t)v;
	err->has_id = true;
	err->id = r.id;

	k = get_string(&view, "op", 32, &s, err);
	if (k == -ENOENT)
		k = decode_fail(err, VB_E_BAD_REQUEST, "a request needs \"op\"");
	if (k < 0)
		goto fail;
	k = vb_op_from_string(s);
	if (k < 0) {
		k = decode_fail(err, VB_E_BAD_REQUEST, "unknown op \"%.32s\"", s);
		goto fail;
	}
	r.op = (enum vb_op)k;

	s = view_unknown_key(&view, r.op);
	if (s) {
		k = decode_fail(err, VB_E_BAD_REQUEST, "\"%s\" takes no \"%.32s\"",
				vb_op_to_string(r.op), s);
		goto fail;
	}

	k = decode_op_args(&view, &r, err);
	if (k < 0)
		goto fail;
	json_object_put(view.o);
	*ret = r;
	return 0;
fail:
	json_object_put(view.o);
	return k;
}

/* ---- request encoding ---- */

int vb_request_encode(const struct vb_request *r, char *buf, size_t size, size_t *ret_len)
{
	struct json_object *o = json_object_new_object();
	size_t len;
	int k = 0;

	if (!o || (unsigned)r->op >= _VB_OP_MAX)
		return o ? (json_object_put(o), -EINVAL) : -ENOMEM;
	json_object_object_add(o, "id", json_object_new_int64(r->id));
	json_object_object_add(o, "op", json_object_new_string(vb_op_to_string(r->op)));
	switch (r->op) {
	case VB_OP_HELLO:
		json_object_object_add(o, "version", json_object_new_int64(r->version));
		if (r->client[0])
			json_object_object_add(o, "client", json_object_new_string(r->client));
		break;
	case VB_OP_LEASE:
		if (r->device[0])
			json_object_object_add(o, "device", json_object_new_string(r->device));
		else
			json_object_object_add(o, "group", json_object_new_int(r->group));
		break;
	case VB_OP_RELEASE:
	case VB_OP_UNMERGE:
	case VB_OP_QUARANTINE:
		json_object_object_add(o, "group", json_object_new_int(r->group));
		break;
	case VB_OP_UNQUARANTINE:
		json_object_object_add(o, "group", json_object_new_int(r->group));
		if (r->restore)
			json_object_object_add(o, "restore", json_object_new_boolean(true));
		break;
	case VB_OP_MERGE: {
		struct json_object *a = json_object_new_array();

		for (size_t i = 0; i < r->n_groups && i < VB_MAX_MERGE_GROUPS; i++)
			json_object_array_add(a, json_object_new_int64(r->groups[i]));
		json_object_object_add(o, "groups", a);
		break;
	}
	case VB_OP_REMOVE:
		json_object_object_add(o, "group", json_object_new_int(r->group));
		json_object_object_add(
			o, "mode",
			json_object_new_string(r->mode == VB_REMOVE_HARD ? "hard" : "soft"));
		if (r->timeout_ms)
			json_object_object_add(o, "timeout_ms",
					       json_object_new_int64(r->timeout_ms));
		break;
	case VB_OP_EXPLAIN:
		json_object_object_add(o, "group", json_object_new_int(r->group));
		if (r->uid >= 0)
			json_object_object_add(o, "uid", json_object_new_int64(r->uid));
		if (r->user[0])
			json_object_object_add(o, "user", json_object_new_string(r->user));
		break;
	default:
		break;
	}
	k = vb_packet_serialize(o, buf, size < VB_MAX_REQUEST_SIZE ? size : VB_MAX_REQUEST_SIZE,
				&len);
	if (k == 0)
		*ret_len = len;
	json_object_put(o);
	return k;
}

/* ---- replies and events ---- */

struct json_object *vb_reply_new(uint32_t id)
{
	struct json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	json_object_object_add(o, "id", json_object_new_int64(id));
	json_object_object_add(o, "ok", json_object_new_boolean(1));
	return o;
}

struct json_object *vb_reply_new_error(bool has_id, uint32_t id, enum vb_status code,
				       const char *fmt, ...)
{
	struct json_object *o = json_object_new_object(), *e;
	char message[VB_MESSAGE_MAX];
	va_list ap;

	if (!o)
		return NULL;
	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	/* A request whose id could not be read gets "id": null. */
	json_object_object_add(o, "id", has_id ? json_object_new_int64(id) : NULL);
	json_object_object_add(o, "ok", json_object_new_boolean(0));
	e = json_object_new_object();
	json_object_object_add(e, "code", json_object_new_string(vb_status_to_string(code)));
	json_object_object_add(e, "message", json_object_new_string(message));
	json_object_object_add(o, "error", e);
	return o;
}

struct json_object *vb_reply_error_details(struct json_object *reply)
{
	struct json_object *e;

	return json_object_object_get_ex(reply, "error", &e) ? e : NULL;
}

struct json_object *vb_event_new(enum vb_event e)
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
 * JSON_C_TO_STRING_NOSLASHESCAPE) writes (fuzz_reply checks that), without
 * json-c's printbuf and printf: that was a fifth of the broker's instructions
 * per lease. Doubles, which no packet of ours carries, are left to json-c.
 */
struct json_writer {
	char *buf;
	size_t size, len;
	bool full;
};

static void jw_put(struct json_writer *w, const char *s, size_t n)
{
	if (w->full || n > w->size - w->len) {
		w->full = true;
		return;
	}
	memcpy(w->buf + w->len, s, n);
	w->len += n;
}

static void jw_string(struct json_writer *w, const char *s, size_t n)
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

static void jw_value(struct json_writer *w, struct json_object *o)
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
	struct json_writer w = {.buf = buf,
				.size = size < VB_MAX_PACKET_SIZE ? size : VB_MAX_PACKET_SIZE};

	jw_value(&w, obj);
	if (w.full)
		return -EMSGSIZE;
	*ret_len = w.len;
	return 0;
}

int vb_reply_decode(const char *buf, size_t len, struct vb_reply *ret)
{
	struct json_tokener *tok;
	struct json_object *o, *v;
	struct vb_reply r = {0};

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
		int e = vb_event_from_string(json_object_get_string(v));

		if (e < 0) {
			/* A newer broker's event: not an error, the client skips it. */
			json_object_put(o);
			return -ENOMSG;
		}
		r.is_event = true;
		r.event = (enum vb_event)e;
		r.ok = true;
	} else {
		if (!json_object_object_get_ex(o, "ok", &v) ||
		    !json_object_is_type(v, json_type_boolean))
			goto bad;
		r.ok = json_object_get_boolean(v);
		if (json_object_object_get_ex(o, "id", &v) && json_object_is_type(v, json_type_int))
			r.id = (uint32_t)json_object_get_int64(v);
		r.more = vb_body_bool(o, "more", false);
		if (!r.ok) {
			struct json_object *e = vb_reply_error_details(o);
			int code = vb_status_from_string(vb_body_string(e, "code"));
			const char *m = vb_body_string(e, "message");

			r.code = code > 0 ? (enum vb_status)code : VB_E_INTERNAL;
			snprintf(r.message, sizeof(r.message), "%s", m ? m : "no message");
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

int64_t vb_body_int(struct json_object *body, const char *key, int64_t def)
{
	struct json_object *v;

	if (!body || !json_object_object_get_ex(body, key, &v) ||
	    !json_object_is_type(v, json_type_int))
		return def;
	return json_object_get_int64(v);
}

const char *vb_body_string(struct json_object *body, const char *key)
{
	struct json_object *v;

	if (!body || !json_object_object_get_ex(body, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

bool vb_body_bool(struct json_object *body, const char *key, bool def)
{
	struct json_object *v;

	if (!body || !json_object_object_get_ex(body, key, &v) ||
	    !json_object_is_type(v, json_type_boolean))
		return def;
	return json_object_get_boolean(v);
}

/* ---- structured payloads ---- */

static void copy_field(char *dst, size_t size, struct json_object *o, const char *key)
{
	const char *s = vb_body_string(o, key);

	snprintf(dst, size, "%s", s ? s : "");
}

struct json_object *vb_group_info_to_json(const struct vb_group_info *g)
{
	struct json_object *o = json_object_new_object(), *devs = json_object_new_array();

	json_object_object_add(o, "group", json_object_new_int64(g->group));
	json_object_object_add(o, "viable", json_object_new_boolean(g->viable));
	json_object_object_add(o, "allowed", json_object_new_boolean(g->allowed));
	for (size_t i = 0; i < g->n_devices; i++) {
		const struct vb_device_info *d = &g->devices[i];
		struct json_object *dj = json_object_new_object();

		json_object_object_add(dj, "address", json_object_new_string(d->address));
		json_object_object_add(dj, "vendor", json_object_new_string(d->vendor));
		json_object_object_add(dj, "device", json_object_new_string(d->device));
		json_object_object_add(dj, "class", json_object_new_string(d->class_));
		json_object_object_add(dj, "driver",
				       d->driver[0] ? json_object_new_string(d->driver) : NULL);
		json_object_array_add(devs, dj);
	}
	json_object_object_add(o, "devices", devs);
	if (g->held) {
		struct json_object *h = json_object_new_object();

		json_object_object_add(h, "uid", json_object_new_int64(g->holder_uid));
		json_object_object_add(h, "pid", json_object_new_int64(g->holder_pid));
		json_object_object_add(o, "holder", h);
	} else {
		json_object_object_add(o, "holder", NULL);
	}
	return o;
}

int vb_group_info_from_json(struct json_object *o, struct vb_group_info *ret)
{
	struct vb_group_info g = {0};
	struct json_object *devs, *h;
	size_t n;

	if (!o || !json_object_is_type(o, json_type_object))
		return -EBADMSG;
	g.group = (uint32_t)vb_body_int(o, "group", 0);
	g.viable = vb_body_bool(o, "viable", false);
	g.allowed = vb_body_bool(o, "allowed", false);
	if (json_object_object_get_ex(o, "holder", &h) &&
	    json_object_is_type(h, json_type_object)) {
		g.held = true;
		g.holder_uid = (uint32_t)vb_body_int(h, "uid", 0);
		g.holder_pid = (int32_t)vb_body_int(h, "pid", 0);
	}
	if (!json_object_object_get_ex(o, "devices", &devs) ||
	    !json_object_is_type(devs, json_type_array))
		return -EBADMSG;
	n = json_object_array_length(devs);
	if (n > 0) {
		g.devices = calloc(n, sizeof(*g.devices));
		if (!g.devices)
			return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		struct json_object *d = json_object_array_get_idx(devs, i);
		struct vb_device_info *di = &g.devices[i];

		copy_field(di->address, sizeof(di->address), d, "address");
		copy_field(di->vendor, sizeof(di->vendor), d, "vendor");
		copy_field(di->device, sizeof(di->device), d, "device");
		copy_field(di->class_, sizeof(di->class_), d, "class");
		copy_field(di->driver, sizeof(di->driver), d, "driver");
	}
	g.n_devices = n;
	*ret = g;
	return 0;
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

	json_object_object_add(o, "group", json_object_new_int64(l->group));
	json_object_object_add(o, "uid", json_object_new_int64(l->uid));
	json_object_object_add(o, "pid", json_object_new_int64(l->pid));
	json_object_object_add(o, "since_usec", json_object_new_int64((int64_t)l->since_usec));
	json_object_object_add(o, "rule", json_object_new_string(l->rule));
	json_object_object_add(o, "state", json_object_new_string(l->state));
	json_object_object_add(o, "container", json_object_new_int64(l->container_id));
	return o;
}

int vb_lease_info_from_json(struct json_object *o, struct vb_lease_info *ret)
{
	struct vb_lease_info l = {0};

	if (!o || !json_object_is_type(o, json_type_object))
		return -EBADMSG;
	l.group = (uint32_t)vb_body_int(o, "group", 0);
	l.uid = (uint32_t)vb_body_int(o, "uid", 0);
	l.pid = (int32_t)vb_body_int(o, "pid", 0);
	l.since_usec = (uint64_t)vb_body_int(o, "since_usec", 0);
	l.container_id = (uint32_t)vb_body_int(o, "container", 0);
	copy_field(l.rule, sizeof(l.rule), o, "rule");
	copy_field(l.state, sizeof(l.state), o, "state");
	*ret = l;
	return 0;
}
