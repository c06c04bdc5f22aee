/* SPDX-License-Identifier: MIT */
#include "protocol/message.h"
#include "common/cleanup.h"
#include "common/json_strict.h"
#include "protocol/reply.h" /* vb_packet_serialize, the one writer of packets */
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
	[VB_E_UNSUPPORTED] = "unsupported",
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
	[VB_E_UNSUPPORTED] = EOPNOTSUPP,
};

static const char *const event_names[_VB_EVENT_MAX] = {
	[VB_EVENT_REMOVE_REQUESTED] = "remove-requested",
	[VB_EVENT_REVOKED] = "revoked",
	[VB_EVENT_RELEASED] = "released",
	[VB_EVENT_DEVICE_ADDED] = "device-added",
};

static const char *const path_names[_VB_PATH_MAX] = {
	[VB_PATH_GROUP] = "group",
	[VB_PATH_CDEV] = "cdev",
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

const char *vb_lease_path_to_string(enum vb_lease_path p)
{
	return (unsigned)p < _VB_PATH_MAX ? path_names[p] : NULL;
}

int vb_lease_path_from_string(const char *s)
{
	return lookup(path_names, _VB_PATH_MAX, s);
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

/* Every member a request may have, over all ops. */
enum request_key {
	KEY_ID,
	KEY_OP,
	KEY_VERSION,
	KEY_CLIENT,
	KEY_GROUP,
	KEY_DEVICE,
	KEY_MEMLOCK,
	KEY_PATH,
	KEY_GROUPS,
	KEY_MODE,
	KEY_TIMEOUT_MS,
	KEY_KILL_STRAYS,
	KEY_UID,
	KEY_USER,
	KEY_RESTORE,
	_KEY_MAX,
};

/* Each key's name and length: the length and first byte rule most keys out without memcmp. */
/* clang-format off */
#define KEY_NAME(s) {s, sizeof(s) - 1}
/* clang-format on */
static const struct {
	const char *name;
	size_t len;
} keys[_KEY_MAX] = {
	[KEY_ID] = KEY_NAME("id"),
	[KEY_OP] = KEY_NAME("op"),
	[KEY_VERSION] = KEY_NAME("version"),
	[KEY_CLIENT] = KEY_NAME("client"),
	[KEY_GROUP] = KEY_NAME("group"),
	[KEY_DEVICE] = KEY_NAME("device"),
	[KEY_MEMLOCK] = KEY_NAME("memlock"),
	[KEY_PATH] = KEY_NAME("path"),
	[KEY_GROUPS] = KEY_NAME("groups"),
	[KEY_MODE] = KEY_NAME("mode"),
	[KEY_TIMEOUT_MS] = KEY_NAME("timeout_ms"),
	[KEY_KILL_STRAYS] = KEY_NAME("kill_strays"),
	[KEY_UID] = KEY_NAME("uid"),
	[KEY_USER] = KEY_NAME("user"),
	[KEY_RESTORE] = KEY_NAME("restore"),
};

#define KEY_BIT(k) (1u << (k))

/* Keys each op accepts, besides "id" and "op". */
static const unsigned op_keys[_VB_OP_MAX] = {
	[VB_OP_HELLO] = KEY_BIT(KEY_VERSION) | KEY_BIT(KEY_CLIENT),
	[VB_OP_LIST] = 0,
	[VB_OP_LEASE] =
		KEY_BIT(KEY_GROUP) | KEY_BIT(KEY_DEVICE) | KEY_BIT(KEY_MEMLOCK) | KEY_BIT(KEY_PATH),
	[VB_OP_RELEASE] = KEY_BIT(KEY_GROUP),
	[VB_OP_MERGE] = KEY_BIT(KEY_GROUPS),
	[VB_OP_UNMERGE] = KEY_BIT(KEY_GROUP),
	[VB_OP_LEASES] = 0,
	[VB_OP_REMOVE] = KEY_BIT(KEY_GROUP) | KEY_BIT(KEY_MODE) | KEY_BIT(KEY_TIMEOUT_MS) |
			 KEY_BIT(KEY_KILL_STRAYS),
	[VB_OP_RELOAD] = 0,
	[VB_OP_EXPLAIN] = KEY_BIT(KEY_GROUP) | KEY_BIT(KEY_UID) | KEY_BIT(KEY_USER),
	[VB_OP_QUARANTINE] = KEY_BIT(KEY_GROUP),
	[VB_OP_UNQUARANTINE] = KEY_BIT(KEY_GROUP) | KEY_BIT(KEY_RESTORE),
};

/*
 * The members of one request object, read from json_strict_scan()'s map: no json-c tree.
 * The scan refused repeated names, so each key names at most one member.
 */
struct request_json {
	const struct json_strict_map *map;
	const struct json_strict_node *member[_KEY_MAX]; /* NULL: absent */
	const struct json_strict_node *foreign;		 /* the first member no op takes */
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

/* The key a member's decoded name is, or _KEY_MAX. */
static enum request_key request_key_of(const struct json_strict_map *map,
				       const struct json_strict_node *m)
{
	char decoded[16];
	const char *name = map->text + m->name_offset + 1;
	size_t len = m->name_len;

	if (m->name_escaped) {
		len = json_strict_name(map, m, decoded, sizeof(decoded));
		if (len >= sizeof(decoded))
			return _KEY_MAX;
		name = decoded;
	}
	for (unsigned k = 0; k < _KEY_MAX; k++)
		if (keys[k].len == len && keys[k].name[0] == name[0] &&
		    memcmp(keys[k].name, name, len) == 0)
			return (enum request_key)k;
	return _KEY_MAX;
}

/* Sort root's members by key, in one pass over them. */
static void request_json_init(struct request_json *j, const struct json_strict_map *map)
{
	const struct json_strict_node *root = json_strict_root(map);

	*j = (struct request_json){.map = map};
	for (const struct json_strict_node *m = json_strict_first(map, root); m;
	     m = json_strict_next(map, m)) {
		enum request_key k = request_key_of(map, m);

		if (k < _KEY_MAX)
			j->member[k] = m;
		else if (!j->foreign)
			j->foreign = m;
	}
}

/* The first member in the text that op does not take, or NULL. */
static const struct json_strict_node *request_json_unknown(const struct request_json *j,
							   enum vb_op op)
{
	const struct json_strict_node *first = j->foreign;
	unsigned allowed = op_keys[op] | KEY_BIT(KEY_ID) | KEY_BIT(KEY_OP);

	for (unsigned k = 0; k < _KEY_MAX; k++) {
		const struct json_strict_node *m = j->member[k];

		if (m && !(allowed & KEY_BIT(k)) && (!first || m->name_offset < first->name_offset))
			first = m;
	}
	return first;
}

/*
 * Reads an integer field in [min, max] as json-c read it (a fraction or an exponent is not
 * an integer; -0 is 0); -ENOENT when absent.
 */
static int get_int(const struct request_json *j, enum request_key key, int64_t min, int64_t max,
		   int64_t *ret, struct vb_decode_error *err)
{
	int64_t v = 0;
	int k;

	if (!j->member[key])
		return -ENOENT;
	k = json_strict_int64(j->map, j->member[key], &v);
	if (k == -EDOM)
		return decode_fail(err, VB_E_BAD_REQUEST, "\"%s\" must be an integer",
				   keys[key].name);
	if (k < 0 || v < min || v > max)
		return decode_fail(err, VB_E_BAD_REQUEST, "\"%s\" must be between %lld and %lld",
				   keys[key].name, (long long)min, (long long)max);
	*ret = v;
	return 0;
}

/*
 * Reads a string field, decoded, into buf when it is shorter than size; -ENOENT when absent.
 * (The scan refused "\u0000", so a decoded string holds no NUL.)
 */
static int get_string(const struct request_json *j, enum request_key key, char *buf, size_t size,
		      struct vb_decode_error *err)
{
	const struct json_strict_node *m = j->member[key];

	if (!m)
		return -ENOENT;
	if (m->kind != JSON_STRICT_STRING)
		return decode_fail(err, VB_E_BAD_REQUEST, "\"%s\" must be a string",
				   keys[key].name);
	if (json_strict_string(j->map, m, buf, size) >= size)
		return decode_fail(err, VB_E_BAD_REQUEST, "\"%s\" is too long or holds a NUL",
				   keys[key].name);
	return 0;
}

/* Reads a boolean field; -ENOENT when absent. */
static int get_bool(const struct request_json *j, enum request_key key, bool *ret,
		    struct vb_decode_error *err)
{
	if (!j->member[key])
		return -ENOENT;
	if (json_strict_bool(j->map, j->member[key], ret) < 0)
		return decode_fail(err, VB_E_BAD_REQUEST, "\"%s\" must be a boolean",
				   keys[key].name);
	return 0;
}

static int decode_group(const struct request_json *j, struct vb_request *r, bool required,
			struct vb_decode_error *err)
{
	int64_t v = 0;
	int k = get_int(j, KEY_GROUP, 0, VB_MAX_GROUP_ID, &v, err);

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

static int decode_merge_groups(const struct request_json *j, struct vb_request *r,
			       struct vb_decode_error *err)
{
	const struct json_strict_node *a = j->member[KEY_GROUPS];
	size_t n = 0;

	if (!a)
		return decode_fail(err, VB_E_BAD_REQUEST, "\"merge\" needs \"groups\"");
	if (a->kind != JSON_STRICT_ARRAY)
		return decode_fail(err, VB_E_BAD_REQUEST, "\"groups\" must be an array");
	if (a->n_children < 1 || a->n_children > VB_MAX_MERGE_GROUPS)
		return decode_fail(err, VB_E_BAD_REQUEST, "\"groups\" must list 1 to %d groups",
				   VB_MAX_MERGE_GROUPS);
	for (const struct json_strict_node *e = json_strict_first(j->map, a); e;
	     e = json_strict_next(j->map, e), n++) {
		int64_t g;

		if (json_strict_int64(j->map, e, &g) < 0 || g < 0 || g > VB_MAX_GROUP_ID)
			return decode_fail(err, VB_E_BAD_REQUEST, "\"groups\" must hold group ids");
		for (size_t i = 0; i < n; i++)
			if (r->groups[i] == (uint32_t)g)
				return decode_fail(err, VB_E_BAD_REQUEST,
						   "group %lld is listed twice", (long long)g);
		r->groups[n] = (uint32_t)g;
	}
	r->n_groups = n;
	return 0;
}

static int decode_op_args(const struct request_json *j, struct vb_request *r,
			  struct vb_decode_error *err)
{
	char s[VB_ADDRESS_MAX + 32];
	int64_t v = 0;
	int k;

	switch (r->op) {
	case VB_OP_HELLO:
		k = get_int(j, KEY_VERSION, 0, UINT32_MAX, &v, err);
		if (k == -ENOENT)
			return decode_fail(err, VB_E_BAD_REQUEST, "\"hello\" needs \"version\"");
		if (k < 0)
			return k;
		r->version = (uint32_t)v;
		k = get_string(j, KEY_CLIENT, r->client, sizeof(r->client), err);
		return k == -ENOENT ? 0 : k;
	case VB_OP_LEASE:
		if ((k = decode_group(j, r, false, err)) < 0)
			return k;
		k = get_string(j, KEY_DEVICE, s, VB_ADDRESS_MAX + 32, err);
		if (k < 0 && k != -ENOENT)
			return k;
		if (k == 0 && vb_address_parse(s, r->device) < 0)
			return decode_fail(err, VB_E_BAD_REQUEST,
					   "\"device\" must be a PCI address like 0000:01:00.0");
		if ((k = get_int(j, KEY_MEMLOCK, 1, INT64_MAX, &v, err)) < 0 && k != -ENOENT)
			return k;
		r->memlock = k == 0 ? (uint64_t)v : 0;
		k = get_string(j, KEY_PATH, s, 8, err);
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
		return decode_group(j, r, true, err);
	case VB_OP_UNQUARANTINE:
		if ((k = decode_group(j, r, true, err)) < 0)
			return k;
		k = get_bool(j, KEY_RESTORE, &r->restore, err);
		return k == -ENOENT ? 0 : k;
	case VB_OP_MERGE:
		return decode_merge_groups(j, r, err);
	case VB_OP_REMOVE: {
		bool kill_strays;

		if ((k = decode_group(j, r, true, err)) < 0)
			return k;
		k = get_string(j, KEY_MODE, s, 8, err);
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
		k = get_int(j, KEY_TIMEOUT_MS, 0, VB_MAX_REMOVE_TIMEOUT_MS, &v, err);
		if (k == 0)
			r->timeout_ms = (uint32_t)v;
		if (k < 0 && k != -ENOENT)
			return k;
		k = get_bool(j, KEY_KILL_STRAYS, &kill_strays, err);
		if (k == -ENOENT)
			return 0;
		if (k < 0)
			return k;
		if (kill_strays && r->mode != VB_REMOVE_HARD)
			return decode_fail(err, VB_E_BAD_REQUEST,
					   "\"kill_strays\" is for mode \"hard\"");
		r->kill_strays = kill_strays;
		return 0;
	}
	case VB_OP_EXPLAIN:
		if ((k = decode_group(j, r, true, err)) < 0)
			return k;
		k = get_int(j, KEY_UID, 0, UINT32_MAX - 1, &v, err);
		if (k == 0)
			r->uid = v;
		else if (k != -ENOENT)
			return k;
		k = get_string(j, KEY_USER, r->user, sizeof(r->user), err);
		if (k < 0 && k != -ENOENT)
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

/*
 * The JSON of a request: json_strict_scan() into *map, which records where every value
 * is; the decoder reads the values from the text through it. 0, or -EBADMSG with err
 * filled, or -ENOMEM.
 */
static int request_parse(const char *buf, size_t len, struct json_strict_map *map,
			 struct vb_decode_error *err)
{
	struct json_strict_error strict;
	int k;

	k = json_strict_scan(buf, len, VB_MAX_JSON_DEPTH, map, &strict);
	if (k == -EBADMSG && strict.fault != JSON_STRICT_E_DUPLICATE_KEY)
		return decode_fail(err, VB_E_BAD_REQUEST, "not a JSON object: %s", strict.reason);
	if (k < 0 && k != -EBADMSG)
		return k;
	/* A repeated name leaves the map complete: the top-level value is there. */
	if (json_strict_root(map)->kind != JSON_STRICT_OBJECT)
		return decode_fail(err, VB_E_BAD_REQUEST, "a request must be a JSON object");
	/* json-c would keep only the last of the repeated members: refuse rather than guess */
	if (k == -EBADMSG)
		return decode_fail(err, VB_E_BAD_REQUEST, "a request must not repeat a key");
	return 0;
}

int vb_request_decode(const char *buf, size_t len, struct vb_request *ret,
		      struct vb_decode_error *err)
{
	_cleanup_json_strict_map_ struct json_strict_map map = {0};
	const struct json_strict_node *unknown;
	struct request_json j;
	struct vb_request r;
	char s[32];
	int64_t v = 0;
	int k;

	memset(err, 0, sizeof(*err));
	vb_request_init(&r, 0, VB_OP_HELLO);
	if (len == 0 || len > VB_MAX_REQUEST_SIZE)
		return decode_fail(err, VB_E_BAD_REQUEST, "a request is 1 to %d bytes",
				   VB_MAX_REQUEST_SIZE);
	if (memchr(buf, '\0', len))
		return decode_fail(err, VB_E_BAD_REQUEST, "a request must not contain NUL bytes");
	k = request_parse(buf, len, &map, err);
	if (k < 0)
		return k;
	request_json_init(&j, &map);

	k = get_int(&j, KEY_ID, 0, UINT32_MAX, &v, err);
	if (k == -ENOENT)
		k = decode_fail(err, VB_E_BAD_REQUEST, "a request needs an integer \"id\"");
	if (k < 0)
		return k;
	r.id = (uint32_t)v;
	err->has_id = true;
	err->id = r.id;

	k = get_string(&j, KEY_OP, s, sizeof(s), err);
	if (k == -ENOENT)
		k = decode_fail(err, VB_E_BAD_REQUEST, "a request needs \"op\"");
	if (k < 0)
		return k;
	k = vb_op_from_string(s);
	if (k < 0)
		return decode_fail(err, VB_E_BAD_REQUEST, "unknown op \"%.32s\"", s);
	r.op = (enum vb_op)k;

	unknown = request_json_unknown(&j, r.op);
	if (unknown) {
		char name[33];

		json_strict_name(&map, unknown, name, sizeof(name));
		return decode_fail(err, VB_E_BAD_REQUEST, "\"%s\" takes no \"%.32s\"",
				   vb_op_to_string(r.op), name);
	}

	k = decode_op_args(&j, &r, err);
	if (k < 0)
		return k;
	*ret = r;
	return 0;
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
		if (r->memlock)
			json_object_object_add(o, "memlock",
					       json_object_new_int64((int64_t)r->memlock));
		/* The default is not written: a broker without "path" takes the request. */
		if (r->path != VB_PATH_GROUP)
			json_object_object_add(
				o, "path",
				json_object_new_string(vb_lease_path_to_string(r->path)));
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
		if (r->kill_strays)
			json_object_object_add(o, "kill_strays", json_object_new_boolean(true));
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
