/* SPDX-License-Identifier: MIT */
/*
 * Policy file parsing and validation.  json_strict_scan() checks the syntax, strictly, and
 * maps where every value is; json-c then builds the tree this file checks key by key and
 * value by value, turning it into struct rule.  Every error names the line of the offending
 * key or value, found by walking the map along the path walked in json-c's tree.
 *
 * The guiding rule: anything unexpected is an error, because a typo that is silently ignored
 * widens or narrows the policy without anyone noticing.  The one exception is a user or group
 * name that does not resolve: accounts come and go independently of policy files, so that is
 * a warning and the entry matches nobody.
 */
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json_strict.h"
#include "policy/error.h"
#include "policy/parse.h"
#include "policy/resolve.h"

/* One step of a path below a value: an object member (key != NULL) or an array element. */
struct path_step {
	const char *key;
	size_t index;
};

/* Path literals for error locations: PATH(KEY("devices"), IDX(2), KEY("vendor")). */
/* clang-format off */
#define KEY(k) {.key = (k)}
#define IDX(i) {.index = (i)}
/* clang-format on */
#define PATH(...)                                                                                  \
	(const struct path_step[]){__VA_ARGS__},                                                   \
		sizeof((const struct path_step[]){__VA_ARGS__}) / sizeof(struct path_step)
#define NOPATH NULL, 0

#define ID_MAX UINT32_C(4294967294) /* (uid_t)-1 is "no id" in the kernel's interfaces */

struct parser {
	const char *file;
	const char *text;
	size_t len;
	unsigned flags;
	policy_warn_fn warn;
	void *userdata;
	struct policy_error *err;
	struct json_strict_map map;		  /* where each value of the text is */
	const struct json_strict_node *rule_node; /* the rule being parsed: base of paths */
	char prefix[128]; /* `rule "name": ` or `rule #3: `, empty outside rules */
};

/* The 1-based line of offset (clamped to len), for errors json_strict has not mapped. */
static unsigned line_of_offset(const char *text, size_t len, size_t offset)
{
	unsigned line = 1;

	if (offset > len)
		offset = len;
	for (size_t i = 0; i < offset; i++)
		line += text[i] == '\n';
	return line;
}

/* The value at path below base in the map, or NULL if there is none. */
static const struct json_strict_node *parser_locate(const struct parser *P,
						    const struct json_strict_node *base,
						    const struct path_step *path, size_t n)
{
	for (size_t i = 0; i < n && base; i++)
		base = path[i].key ? json_strict_member(&P->map, base, path[i].key)
				   : json_strict_element(&P->map, base, path[i].index);
	return base;
}

/* The line of the value at path below base; base's own line if it cannot be located. */
static unsigned parser_line(const struct parser *P, const struct json_strict_node *base,
			    const struct path_step *path, size_t n)
{
	const struct json_strict_node *at = parser_locate(P, base, path, n);

	return at ? at->line : base ? base->line : 1;
}

static int parser_vfail_line(struct parser *P, unsigned line, int r, const char *fmt, va_list ap)
	__attribute__((format(printf, 4, 0)));
static int parser_vfail_line(struct parser *P, unsigned line, int r, const char *fmt, va_list ap)
{
	char msg[512];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	return policy_error_set(P->err, P->file, line, r, "%s%s", P->prefix, msg);
}

static int parser_fail_line(struct parser *P, unsigned line, int r, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int parser_fail_line(struct parser *P, unsigned line, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	r = parser_vfail_line(P, line, r, fmt, ap);
	va_end(ap);
	return r;
}

/* Fail with the message prefixed by the rule and located at path below base.  Returns r. */
static int parser_fail(struct parser *P, const struct json_strict_node *base,
		       const struct path_step *path, size_t n, int r, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));
static int parser_fail(struct parser *P, const struct json_strict_node *base,
		       const struct path_step *path, size_t n, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	r = parser_vfail_line(P, parser_line(P, base, path, n), r, fmt, ap);
	va_end(ap);
	return r;
}

static void parser_warn(struct parser *P, const struct json_strict_node *base,
			const struct path_step *path, size_t n, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static void parser_warn(struct parser *P, const struct json_strict_node *base,
			const struct path_step *path, size_t n, const char *fmt, ...)
{
	char msg[512], full[640];
	va_list ap;

	if (!P->warn)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(full, sizeof(full), "%s%s", P->prefix, msg);
	P->warn(P->file, parser_line(P, base, path, n), full, P->userdata);
}

/* A short, printable rendering of any JSON value for "got ..." in messages. */
static void describe_value(struct json_object *v, char *buf, size_t size)
{
	switch (json_object_get_type(v)) {
	case json_type_null:
		snprintf(buf, size, "null");
		break;
	case json_type_boolean:
		snprintf(buf, size, "%s", json_object_get_boolean(v) ? "true" : "false");
		break;
	case json_type_int:
	case json_type_double: {
		const char *s = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);

		policy_quote(s, strlen(s), buf, size);
		/* numbers read better without the quotes */
		if (buf[0] == '"') {
			size_t l = strlen(buf);

			memmove(buf, buf + 1, l);
			if (l >= 2 && buf[l - 2] == '"')
				buf[l - 2] = '\0';
		}
		break;
	}
	case json_type_string:
		policy_quote(json_object_get_string(v), (size_t)json_object_get_string_len(v), buf,
			     size);
		break;
	case json_type_array:
		snprintf(buf, size, "an array");
		break;
	case json_type_object:
		snprintf(buf, size, "an object");
		break;
	}
}

/* The string of v if it is a string without embedded NUL bytes, else NULL. */
static const char *json_plain_string(struct json_object *v, size_t *ret_len)
{
	const char *s;
	size_t len;

	if (!json_object_is_type(v, json_type_string))
		return NULL;
	s = json_object_get_string(v);
	len = (size_t)json_object_get_string_len(v);
	if (strlen(s) != len)
		return NULL;
	if (ret_len)
		*ret_len = len;
	return s;
}

/* ---- keys ------------------------------------------------------------------------------ */

/*
 * Refuse unknown and duplicate keys in the object at node, the first one in the text.
 * json-c keeps the last of duplicate keys silently, so duplicates can only be seen in the
 * text (json_strict marks them): {"effect": "deny", ..., "effect": "allow"} must not quietly
 * turn a deny rule into an allow rule.
 */
static int parser_check_keys(struct parser *P, struct json_object *obj,
			     const struct json_strict_node *node, const char *const *known,
			     size_t n_known, const char *what)
{
	char key[256], quoted[96], list[160] = "";

	for (const struct json_strict_node *m = json_strict_first(&P->map, node); m;
	     m = json_strict_next(&P->map, m)) {
		size_t len;
		bool ok = false;

		for (size_t i = 0; i < n_known && !m->repeated && !ok; i++)
			ok = json_strict_name_is(&P->map, m, known[i]);
		if (ok)
			continue;
		len = json_strict_name(&P->map, m, key, sizeof(key));
		policy_quote(key, len < sizeof(key) ? len : sizeof(key) - 1, quoted,
			     sizeof(quoted));
		if (m->repeated)
			return parser_fail_line(P, m->name_line, -EINVAL, "duplicate key %s in %s",
						quoted, what);
		for (size_t i = 0; i < n_known; i++)
			snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
				 i ? ", " : "", known[i]);
		return parser_fail_line(P, m->name_line, -EINVAL,
					"unknown key %s in %s (known keys: %s)", quoted, what,
					list);
	}
	/* The map and json-c must agree; if they ever do not, refuse rather than guess. */
	json_object_object_foreach (obj, k, val) {
		bool ok = false;

		(void)val;
		for (size_t i = 0; i < n_known; i++)
			ok = ok || strcmp(k, known[i]) == 0;
		if (!ok)
			return parser_fail_line(P, node->line, -EBADMSG,
						"internal error: unexpected key in %s", what);
	}
	return 0;
}

/* ---- lists ----------------------------------------------------------------------------- */

/*
 * The list at key in the rule: 1 with *ret and *ret_n set, 0 if the key is absent, or an
 * error on the key's line if it is not an array ("of" says what it should hold), is empty
 * (empty_hint follows "must not be empty") or is longer than POLICY_MAX_LIST.
 */
static int parser_get_list(struct parser *P, struct json_object *rule, const char *key,
			   const char *of, const char *empty_hint, struct json_object **ret,
			   size_t *ret_n)
{
	struct json_object *v;
	char got[96];
	size_t n;

	if (!json_object_object_get_ex(rule, key, &v))
		return 0;
	if (!json_object_is_type(v, json_type_array)) {
		describe_value(v, got, sizeof(got));
		return parser_fail(P, P->rule_node, PATH(KEY(key)), -EINVAL,
				   "\"%s\" must be an array of %s, got %s", key, of, got);
	}
	n = json_object_array_length(v);
	if (n == 0)
		return parser_fail(P, P->rule_node, PATH(KEY(key)), -EINVAL,
				   "\"%s\" must not be empty%s", key, empty_hint);
	if (n > POLICY_MAX_LIST)
		return parser_fail(P, P->rule_node, PATH(KEY(key)), -E2BIG,
				   "\"%s\" has more than %d entries", key, POLICY_MAX_LIST);
	*ret = v;
	*ret_n = n;
	return 1;
}

/* ---- users and groups ------------------------------------------------------------------ */

static int compare_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Digits only, at most ID_MAX: "1000" is uid 1000, as for chown(1). */
static bool parse_numeric_id(const char *s, uint32_t *ret)
{
	uint64_t v = 0;

	if (!*s)
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
		if (v > ID_MAX)
			return false;
	}
	*ret = (uint32_t)v;
	return true;
}

static int parse_one_id(struct parser *P, struct json_object *e, const char *key, size_t i,
			bool group, uint32_t *ids, size_t *n_ids)
{
	const char *kind = group ? "group" : "user";
	char got[96];
	const char *s;
	size_t len;
	uint32_t id;
	int r;

	describe_value(e, got, sizeof(got));
	if (json_object_is_type(e, json_type_int)) {
		int64_t v = json_object_get_int64(e);

		if (v < 0 || (uint64_t)v > ID_MAX)
			return parser_fail(P, P->rule_node, PATH(KEY(key), IDX(i)), -EINVAL,
					   "\"%s\"[%zu] must be a %cid between 0 and %" PRIu32
					   ", got %s",
					   key, i, group ? 'g' : 'u', ID_MAX, got);
		ids[(*n_ids)++] = (uint32_t)v;
		return 0;
	}
	s = json_plain_string(e, &len);
	if (!s || len == 0 || len > POLICY_MAX_ID_NAME)
		return parser_fail(
			P, P->rule_node, PATH(KEY(key), IDX(i)), -EINVAL,
			"\"%s\"[%zu] must be a %s name (1 to %d characters) or a numeric "
			"id, got %s",
			key, i, kind, POLICY_MAX_ID_NAME, got);
	if (parse_numeric_id(s, &id)) {
		ids[(*n_ids)++] = id;
		return 0;
	}
	if (P->flags & POLICY_LOAD_SKIP_NAME_LOOKUP)
		r = -ENOENT;
	else if (group)
		r = resolve_group_name(s, (gid_t *)&id);
	else
		r = resolve_user_name(s, (uid_t *)&id);
	if (r == -ENOENT) {
		parser_warn(P, P->rule_node, PATH(KEY(key), IDX(i)),
			    "unknown %s %s, this entry matches nobody", kind, got);
		return 0;
	}
	if (r < 0)
		/* NSS is broken: do not load a policy whose deny rules might not apply. */
		return parser_fail(P, P->rule_node, PATH(KEY(key), IDX(i)), r,
				   "cannot look up %s %s: %s", kind, got, strerror(-r));
	ids[(*n_ids)++] = id;
	return 0;
}

/*
 * "users" or "unix_groups": an array of names and ids, resolved now, sorted and deduplicated
 * so that evaluation is a binary search.  Returns 1 if present (ids may still be empty when
 * every name was unknown), 0 if absent, <0 on error.
 */
static int parse_ids(struct parser *P, struct json_object *rule, const char *key, bool group,
		     uint32_t **ret, size_t *ret_n)
{
	struct json_object *v;
	uint32_t *ids;
	size_t n, k = 0;
	int r;

	r = parser_get_list(P, rule, key, group ? "group names or ids" : "user names or ids", "",
			    &v, &n);
	if (r <= 0)
		return r;
	ids = calloc(n, sizeof(*ids));
	if (!ids)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		r = parse_one_id(P, json_object_array_get_idx(v, i), key, i, group, ids, &k);
		if (r < 0) {
			free(ids);
			return r;
		}
	}
	qsort(ids, k, sizeof(*ids), compare_u32);
	n = 0;
	for (size_t i = 0; i < k; i++)
		if (n == 0 || ids[n - 1] != ids[i])
			ids[n++] = ids[i];
	if (n == 0) {
		free(ids);
		ids = NULL;
	}
	*ret = ids;
	*ret_n = n;
	return 1;
}

/* ---- cgroups and units ----------------------------------------------------------------- */

static bool valid_cgroup_glob(const char *s, size_t len)
{
	if (len == 0 || len > POLICY_MAX_CGROUP || (s[0] != '/' && s[0] != '*'))
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

static bool valid_unit_name_glob(const char *s, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f || s[i] == '/')
			return false;
	return true;
}

/*
 * A unit, or "user@UID.service/UNIT" for a unit of a user's own manager (globs
 * allowed in both parts): the only '/' a unit may hold, so that a rule says so
 * explicitly when a user's own units may match.
 */
static bool valid_unit_glob(const char *s, size_t len)
{
	const char *slash = memchr(s, '/', len);
	size_t head;

	if (len == 0 || len > POLICY_MAX_UNIT)
		return false;
	if (!slash)
		return valid_unit_name_glob(s, len);
	head = (size_t)(slash - s);
	return head > 13 && memcmp(s, "user@", 5) == 0 && memcmp(slash - 8, ".service", 8) == 0 &&
	       valid_unit_name_glob(s, head) && valid_unit_name_glob(slash + 1, len - head - 1);
}

/* "cgroups" or "units": optional, but if present a non-empty array of valid globs. */
static int parse_patterns(struct parser *P, struct json_object *rule, const char *key,
			  bool (*valid)(const char *, size_t), const char *expected,
			  struct pattern **ret, size_t *ret_n)
{
	struct json_object *v;
	struct pattern *ps;
	size_t n;
	char got[96];
	int r;

	r = parser_get_list(P, rule, key, "globs", " (leave it out to match any)", &v, &n);
	if (r <= 0)
		return r;
	ps = calloc(n, sizeof(*ps));
	if (!ps)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct json_object *e = json_object_array_get_idx(v, i);
		const char *s;
		size_t len;

		s = json_plain_string(e, &len);
		if (!s || !valid(s, len)) {
			describe_value(e, got, sizeof(got));
			r = parser_fail(P, P->rule_node, PATH(KEY(key), IDX(i)), -EINVAL,
					"\"%s\"[%zu] must be %s, got %s", key, i, expected, got);
			goto fail;
		}
		r = pattern_init(&ps[i], s);
		if (r < 0)
			goto fail;
	}
	*ret = ps;
	*ret_n = n;
	return 1;
fail:
	for (size_t i = 0; i < n; i++)
		pattern_done(&ps[i]);
	free(ps);
	return r;
}

/* ---- devices --------------------------------------------------------------------------- */

static bool is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static char to_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool is_glob_char(char c)
{
	return strchr("*?[]!^-", c) != NULL && c != '\0';
}

/* Drop an optional 0x/0X prefix. */
static const char *skip_0x(const char *s, size_t *len)
{
	if (*len >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		*len -= 2;
		return s + 2;
	}
	return s;
}

/* "8086", "0x8086", "10D3": exactly 4 hex digits. */
static bool parse_hex16(const char *s, size_t len, uint16_t *ret)
{
	unsigned v = 0;

	s = skip_0x(s, &len);
	if (len != 4)
		return false;
	for (size_t i = 0; i < 4; i++) {
		if (!is_hex(s[i]))
			return false;
		v = v << 4 | (unsigned)(s[i] <= '9' ? s[i] - '0' : to_lower(s[i]) - 'a' + 10);
	}
	*ret = (uint16_t)v;
	return true;
}

/*
 * An address pattern, lowercased into out (size >= 65).  A literal must be the canonical
 * DDDD:BB:DD.F form: "01:00.0" without the domain would otherwise silently match nothing.
 */
static bool normalise_address(const char *s, size_t len, char *out)
{
	static const char canonical[] = "xxxx:xx:xx.x";

	if (len == 0 || len > 64)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (!is_hex(s[i]) && s[i] != ':' && s[i] != '.' && !is_glob_char(s[i]))
			return false;
		out[i] = to_lower(s[i]);
	}
	out[len] = '\0';
	if (pattern_is_wild(out))
		return true;
	if (len != sizeof(canonical) - 1)
		return false;
	for (size_t i = 0; i < len; i++)
		if (canonical[i] == 'x' ? !is_hex(out[i]) : out[i] != canonical[i])
			return false;
	/* device 00-1f, function 0-7 */
	return out[8] <= '1' && out[11] <= '7';
}

/* A class pattern without 0x, lowercased into out (size >= 33); a literal is 6 hex digits. */
static bool normalise_class(const char *s, size_t len, char *out, uint32_t *ret_class)
{
	uint32_t v = 0;

	s = skip_0x(s, &len);
	if (len == 0 || len > 32)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (!is_hex(s[i]) && !is_glob_char(s[i]))
			return false;
		out[i] = to_lower(s[i]);
	}
	out[len] = '\0';
	if (pattern_is_wild(out))
		return true;
	if (len != 6)
		return false;
	for (size_t i = 0; i < 6; i++)
		if (!is_hex(out[i]))
			return false;
	for (size_t i = 0; i < 6; i++)
		v = v << 4 | (uint32_t)(out[i] <= '9' ? out[i] - '0' : out[i] - 'a' + 10);
	*ret_class = v;
	return true;
}

static int parse_devmatch(struct parser *P, struct json_object *e, size_t index,
			  const struct json_strict_node *pos, struct devmatch *m)
{
	static const char *const device_keys[] = {"address", "vendor", "device", "class",
						  "iommu_group"};
	struct json_object *v;
	char got[96], what[64];
	const char *s;
	size_t len;
	int r;

	if (!json_object_is_type(e, json_type_object)) {
		describe_value(e, got, sizeof(got));
		return parser_fail_line(P, pos->line, -EINVAL,
					"\"devices\"[%zu] must be an object, got %s", index, got);
	}
	snprintf(what, sizeof(what), "\"devices\"[%zu]", index);
	r = parser_check_keys(P, e, pos, device_keys, 5, what);
	if (r < 0)
		return r;
	if (json_object_object_length(e) == 0)
		return parser_fail_line(P, pos->line, -EINVAL,
					"\"devices\"[%zu] is empty: give at least one of address, "
					"vendor, device, class, iommu_group",
					index);

	if (json_object_object_get_ex(e, "address", &v)) {
		char norm[65];

		s = json_plain_string(v, &len);
		if (!s || !normalise_address(s, len, norm)) {
			describe_value(v, got, sizeof(got));
			return parser_fail(
				P, pos, PATH(KEY("address")), -EINVAL,
				"\"address\" must be a PCI address like \"0000:01:00.0\" "
				"or a glob like \"0000:01:00.*\", got %s",
				got);
		}
		r = pattern_init(&m->address, norm);
		if (r < 0)
			return r;
		m->keys |= DEVMATCH_ADDRESS;
	}
	for (int which = 0; which < 2; which++) {
		const char *key = which ? "device" : "vendor";

		if (!json_object_object_get_ex(e, key, &v))
			continue;
		s = json_plain_string(v, &len);
		if (!s || !parse_hex16(s, len, which ? &m->device : &m->vendor)) {
			describe_value(v, got, sizeof(got));
			return parser_fail(P, pos, PATH(KEY(key)), -EINVAL,
					   "\"%s\" must be 4 hex digits, got %s", key, got);
		}
		m->keys |= which ? DEVMATCH_DEVICE : DEVMATCH_VENDOR;
	}
	if (json_object_object_get_ex(e, "class", &v)) {
		char norm[33];

		s = json_plain_string(v, &len);
		if (!s || !normalise_class(s, len, norm, &m->class)) {
			describe_value(v, got, sizeof(got));
			return parser_fail(
				P, pos, PATH(KEY("class")), -EINVAL,
				"\"class\" must be 6 hex digits like \"020000\" or a glob "
				"like \"0x0200*\", got %s",
				got);
		}
		r = pattern_init(&m->class_glob, norm);
		if (r < 0)
			return r;
		m->keys |= DEVMATCH_CLASS;
	}
	if (json_object_object_get_ex(e, "iommu_group", &v)) {
		int64_t g = json_object_get_int64(v);

		if (!json_object_is_type(v, json_type_int) || g < 0 || g > INT32_MAX) {
			describe_value(v, got, sizeof(got));
			return parser_fail(P, pos, PATH(KEY("iommu_group")), -EINVAL,
					   "\"iommu_group\" must be an integer between 0 and %d, "
					   "got %s",
					   INT32_MAX, got);
		}
		m->iommu_group = (int)g;
		m->keys |= DEVMATCH_IOMMU_GROUP;
	}
	return 0;
}

/*
 * The array at key below base in the map, checked to have the n elements json-c found;
 * NULL (with the error set) if the two disagree, which would be a bug.
 */
static const struct json_strict_node *parser_locate_array(struct parser *P,
							  const struct json_strict_node *base,
							  const char *key, size_t n)
{
	const struct json_strict_node *a = parser_locate(P, base, PATH(KEY(key)));

	if (!a || a->kind != JSON_STRICT_ARRAY || a->n_children != n) {
		parser_fail_line(P, base->line, -EBADMSG, "internal error: cannot locate \"%s\"",
				 key);
		return NULL;
	}
	return a;
}

static int parse_devices(struct parser *P, struct json_object *rule, struct rule *R)
{
	const struct json_strict_node *array, *pos;
	struct json_object *v;
	size_t n;
	int r;

	r = parser_get_list(P, rule, "devices", "objects", "", &v, &n);
	if (r == 0)
		return parser_fail(P, P->rule_node, NOPATH, -EINVAL,
				   "missing \"devices\": list the devices the rule applies to");
	if (r < 0)
		return r;
	r = 0;
	array = parser_locate_array(P, P->rule_node, "devices", n);
	if (!array)
		return -EBADMSG;
	R->devices = calloc(n, sizeof(*R->devices));
	if (!R->devices)
		return -ENOMEM;
	R->n_devices = n;
	pos = json_strict_first(&P->map, array);
	for (size_t i = 0; i < n && r >= 0; i++, pos = json_strict_next(&P->map, pos))
		r = parse_devmatch(P, json_object_array_get_idx(v, i), i, pos, &R->devices[i]);
	return r < 0 ? r : 0;
}

/* ---- actions and limits ---------------------------------------------------------------- */

static int parse_actions(struct parser *P, struct json_object *rule, const char *key, unsigned *ret)
{
	struct json_object *v;
	unsigned mask = 0;
	size_t n;
	char got[96];
	int r;

	r = parser_get_list(P, rule, key, "actions", "", &v, &n);
	if (r <= 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		struct json_object *e = json_object_array_get_idx(v, i);
		const char *s = json_plain_string(e, NULL);
		int a = s ? policy_action_from_string(s) : -EINVAL;

		if (a < 0) {
			describe_value(e, got, sizeof(got));
			return parser_fail(P, P->rule_node, PATH(KEY(key), IDX(i)), -EINVAL,
					   "\"%s\"[%zu] must be one of \"lease\", \"merge\", "
					   "\"remove-own\", got %s",
					   key, i, got);
		}
		mask |= (unsigned)a;
	}
	*ret = mask;
	return 1;
}

static int parse_max_leases(struct parser *P, struct json_object *rule, struct rule *R)
{
	struct json_object *v;
	int64_t n;
	char got[96];

	if (!json_object_object_get_ex(rule, "max_leases", &v))
		return 0;
	n = json_object_get_int64(v);
	if (!json_object_is_type(v, json_type_int) || n < 1 || n > POLICY_MAX_LEASES) {
		describe_value(v, got, sizeof(got));
		return parser_fail(P, P->rule_node, PATH(KEY("max_leases")), -EINVAL,
				   "\"max_leases\" must be an integer between 1 and %d, got %s",
				   POLICY_MAX_LEASES, got);
	}
	R->max_leases = (unsigned)n;
	return 0;
}

static int parse_memlock(struct parser *P, struct json_object *rule, struct rule *R)
{
	struct json_object *v;
	uint64_t bytes = 0;
	char got[96];
	int r = -EINVAL;

	if (!json_object_object_get_ex(rule, "memlock", &v))
		return 0;
	describe_value(v, got, sizeof(got));
	if (json_object_is_type(v, json_type_int)) {
		int64_t n = json_object_get_int64(v);

		/* json-c saturates huge integers; INT64_MAX is far above the limit anyway */
		if (n >= 0) {
			bytes = (uint64_t)n;
			r = 0;
		}
	} else {
		const char *s = json_plain_string(v, NULL);

		if (s)
			r = policy_parse_size(s, &bytes);
	}
	if (r == -ERANGE || (r == 0 && bytes > POLICY_MAX_MEMLOCK))
		return parser_fail(P, P->rule_node, PATH(KEY("memlock")), -EINVAL,
				   "\"memlock\" must be at most 1048576T, got %s", got);
	if (r < 0)
		return parser_fail(P, P->rule_node, PATH(KEY("memlock")), -EINVAL,
				   "\"memlock\" must be a number of bytes or a size like \"512K\", "
				   "\"64M\", \"8G\", \"1T\", got %s",
				   got);
	if (bytes == 0)
		return parser_fail(P, P->rule_node, PATH(KEY("memlock")), -EINVAL,
				   "\"memlock\" must be greater than 0");
	R->memlock = bytes;
	return 0;
}

/* ---- rules ----------------------------------------------------------------------------- */

static bool valid_rule_name(const char *s, size_t len)
{
	if (len == 0 || len > POLICY_MAX_NAME)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == '-'))
			return false;
	}
	return true;
}

/* Options that only make sense for one effect: refuse them on the other one. */
static int parser_check_effect_keys(struct parser *P, struct json_object *rule, bool deny)
{
	static const struct {
		const char *key;
		bool for_deny;
		const char *hint;
	} keys[] = {
		{"allow", false, "a deny rule lists what it denies in \"actions\""},
		{"max_leases", false, "a deny rule grants nothing to limit"},
		{"memlock", false, "a deny rule grants nothing to limit"},
		{"actions", true, "an allow rule lists what it grants in \"allow\""},
	};

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (keys[i].for_deny == deny || !json_object_object_get_ex(rule, keys[i].key, NULL))
			continue;
		return parser_fail(P, P->rule_node, PATH(KEY(keys[i].key)), -EINVAL,
				   "\"%s\" is only valid in %s rules: %s", keys[i].key,
				   keys[i].for_deny ? "deny" : "allow", keys[i].hint);
	}
	return 0;
}

static int parse_rule_fields(struct parser *P, struct json_object *rule, struct rule *R)
{
	struct json_object *v;
	const char *s;
	size_t len;
	char got[96];
	int r, has_users, has_groups;

	if (!json_object_object_get_ex(rule, "name", &v))
		return parser_fail(P, P->rule_node, NOPATH, -EINVAL, "missing \"name\"");
	s = json_plain_string(v, &len);
	if (!s || !valid_rule_name(s, len)) {
		describe_value(v, got, sizeof(got));
		return parser_fail(P, P->rule_node, PATH(KEY("name")), -EINVAL,
				   "\"name\" must be 1 to %d characters from A-Z a-z 0-9 _ . -, "
				   "got %s",
				   POLICY_MAX_NAME, got);
	}
	R->name = strdup(s);
	if (!R->name)
		return -ENOMEM;

	if (json_object_object_get_ex(rule, "effect", &v)) {
		s = json_plain_string(v, NULL);
		if (!s || (strcmp(s, "allow") != 0 && strcmp(s, "deny") != 0)) {
			describe_value(v, got, sizeof(got));
			return parser_fail(P, P->rule_node, PATH(KEY("effect")), -EINVAL,
					   "\"effect\" must be \"allow\" or \"deny\", got %s", got);
		}
		R->deny = strcmp(s, "deny") == 0;
	}
	r = parser_check_effect_keys(P, rule, R->deny);
	if (r < 0)
		return r;

	has_users = parse_ids(P, rule, "users", false, (uint32_t **)&R->uids, &R->n_uids);
	if (has_users < 0)
		return has_users;
	has_groups = parse_ids(P, rule, "unix_groups", true, (uint32_t **)&R->gids, &R->n_gids);
	if (has_groups < 0)
		return has_groups;
	if (!has_users && !has_groups)
		return parser_fail(P, P->rule_node, NOPATH, -EINVAL,
				   "needs \"users\" or \"unix_groups\" (or both): a rule must say "
				   "whom it applies to");

	r = parse_patterns(P, rule, "cgroups", valid_cgroup_glob,
			   "a cgroup path or glob starting with \"/\" or \"*\"", &R->cgroups,
			   &R->n_cgroups);
	if (r < 0)
		return r;
	r = parse_patterns(P, rule, "units", valid_unit_glob,
			   "a unit name or glob (no blanks, no \"/\" but in "
			   "\"user@UID.service/UNIT\")",
			   &R->units, &R->n_units);
	if (r < 0)
		return r;
	/* A unit is named by whoever started it; where it runs, only root decides. */
	if (R->n_units && !R->n_cgroups)
		parser_warn(P, P->rule_node, PATH(KEY("units")),
			    "\"units\" without \"cgroups\": a unit name is chosen by "
			    "whoever starts the unit; add \"cgroups\" (such as "
			    "\"/system.slice/*\") to say where it must run");

	r = parse_devices(P, rule, R);
	if (r < 0)
		return r;

	R->actions = R->deny ? POLICY_ACTION_ALL : POLICY_ACTION_LEASE;
	r = parse_actions(P, rule, R->deny ? "actions" : "allow", &R->actions);
	if (r < 0)
		return r;
	r = parse_max_leases(P, rule, R);
	if (r < 0)
		return r;
	return parse_memlock(P, rule, R);
}

static int parse_rule(struct parser *P, struct json_object *rule, size_t index,
		      const struct json_strict_node *pos, struct rule_vec *out)
{
	static const char *const rule_keys[] = {"name",	   "effect",	 "users",   "unix_groups",
						"cgroups", "units",	 "devices", "allow",
						"actions", "max_leases", "memlock"};
	struct rule R = {.file = P->file, .line = pos->line};
	struct json_object *v;
	const char *name;
	size_t len;
	char got[96];
	int r;

	P->rule_node = pos;
	snprintf(P->prefix, sizeof(P->prefix), "rule #%zu: ", index + 1);
	if (!json_object_is_type(rule, json_type_object)) {
		describe_value(rule, got, sizeof(got));
		return parser_fail_line(P, pos->line, -EINVAL, "must be an object, got %s", got);
	}
	/* Name the rule in every message as soon as its name is known to be good. */
	if (json_object_object_get_ex(rule, "name", &v) && (name = json_plain_string(v, &len)) &&
	    valid_rule_name(name, len))
		snprintf(P->prefix, sizeof(P->prefix), "rule \"%s\": ", name);

	r = parser_check_keys(P, rule, pos, rule_keys, sizeof(rule_keys) / sizeof(rule_keys[0]),
			      "rule");
	if (r >= 0)
		r = parse_rule_fields(P, rule, &R);
	if (r >= 0)
		r = rule_vec_push(out, &R);
	rule_done(&R);
	return r < 0 ? r : 0;
}

/* ---- files ----------------------------------------------------------------------------- */

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/*
 * The text to json-c's tree, with every syntax error turned into a file:line message.
 * Returns 0 with *ret set, 1 with *ret set when the text is strict JSON but for a repeated
 * key (the key checks name it, in its rule), or a negative errno.
 */
static int parse_json(struct parser *P, struct json_object **ret)
{
	struct json_strict_error strict;
	struct json_tokener *tok;
	struct json_object *root;
	enum json_tokener_error jerr;
	size_t end, first = 0, last;
	int r;

	while (first < P->len && is_blank(P->text[first]))
		first++;
	if (first == P->len)
		return parser_fail_line(
			P, 0, -EINVAL, "file is empty (a policy without rules is {\"rules\": []})");
	if (P->text[first] != '{')
		return parser_fail_line(P, line_of_offset(P->text, P->len, first), -EINVAL,
					"the top level must be an object: {\"rules\": [...]}");

	r = json_strict_scan(P->text, P->len, POLICY_MAX_DEPTH, &P->map, &strict);
	if (r == -EBADMSG) {
		switch (strict.fault) {
		case JSON_STRICT_E_DUPLICATE_KEY:
			break;
		case JSON_STRICT_E_END:
			last = P->len;
			while (last > 0 && is_blank(P->text[last - 1]))
				last--;
			return parser_fail_line(
				P, line_of_offset(P->text, P->len, last ? last - 1 : 0), -EINVAL,
				"unexpected end of file");
		case JSON_STRICT_E_TOO_DEEP:
			return parser_fail_line(P, strict.line, -EINVAL,
						"JSON nested deeper than %d levels",
						POLICY_MAX_DEPTH);
		case JSON_STRICT_E_TRAILING:
			return parser_fail_line(P, strict.line, -EINVAL,
						"unexpected data after the top-level object");
		default:
			return parser_fail_line(P, strict.line, -EINVAL, "JSON syntax error: %s",
						strict.reason);
		}
	} else if (r < 0) {
		return r;
	}

	/* Nothing is left for json-c to refuse: its verdict only guards against a scan bug. */
	tok = json_tokener_new_ex(POLICY_MAX_DEPTH);
	if (!tok)
		return -ENOMEM;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	root = json_tokener_parse_ex(tok, P->text, (int)P->len);
	jerr = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (!root || end != P->len)
		return parser_fail_line(P, line_of_offset(P->text, P->len, end), -EBADMSG,
					"internal error: json-c refuses what the scan took: %s",
					json_tokener_error_desc(jerr));
	*ret = root;
	return r == -EBADMSG;
}

static int parse_root(struct parser *P, struct json_object *root, size_t max_rules,
		      struct rule_vec *out)
{
	static const char *const file_keys[] = {"rules"};
	const struct json_strict_node *top = json_strict_root(&P->map), *array, *pos;
	struct json_object *rules;
	size_t n;
	char got[96];
	int r;

	P->rule_node = top;
	r = parser_check_keys(P, root, top, file_keys, 1, "the top-level object");
	if (r < 0)
		return r;
	if (!json_object_object_get_ex(root, "rules", &rules))
		return parser_fail_line(P, top->line, -EINVAL,
					"missing \"rules\": a policy file is {\"rules\": [...]}");
	if (!json_object_is_type(rules, json_type_array)) {
		describe_value(rules, got, sizeof(got));
		return parser_fail(P, top, PATH(KEY("rules")), -EINVAL,
				   "\"rules\" must be an array, got %s", got);
	}
	n = json_object_array_length(rules);
	if (n > max_rules - out->n)
		return parser_fail(P, top, PATH(KEY("rules"), IDX(max_rules - out->n)), -E2BIG,
				   "too many rules: at most %zu over all files", max_rules);
	array = parser_locate_array(P, top, "rules", n);
	if (!array)
		return -EBADMSG;
	pos = json_strict_first(&P->map, array);
	for (size_t i = 0; i < n && r >= 0; i++, pos = json_strict_next(&P->map, pos))
		r = parse_rule(P, json_object_array_get_idx(rules, i), i, pos, out);
	return r < 0 ? r : 0;
}

int parse_file(const char *file, const char *text, size_t len, unsigned flags, policy_warn_fn warn,
	       void *userdata, size_t max_rules, struct rule_vec *out, struct policy_error *err)
{
	struct parser P = {
		.file = file,
		.text = text,
		.len = len,
		.flags = flags,
		.warn = warn,
		.userdata = userdata,
		.err = err,
	};
	struct json_object *root = NULL;
	const char *nul;
	int r, repeated;

	if (len > POLICY_MAX_FILE_SIZE)
		return parser_fail_line(&P, 0, -EFBIG, "file is larger than %d bytes",
					POLICY_MAX_FILE_SIZE);
	nul = memchr(text, '\0', len);
	if (nul)
		return parser_fail_line(&P, line_of_offset(text, len, (size_t)(nul - text)),
					-EINVAL, "file contains a NUL byte");
	r = repeated = parse_json(&P, &root);
	if (r >= 0)
		r = parse_root(&P, root, max_rules, out);
	/* Every object a policy may hold has its keys checked; refuse if one slipped by. */
	if (r >= 0 && repeated)
		r = parser_fail_line(&P, P.rule_node ? P.rule_node->line : 1, -EBADMSG,
				     "internal error: a duplicate key was not reported");
	json_object_put(root);
	json_strict_map_done(&P.map);
	return r;
}
