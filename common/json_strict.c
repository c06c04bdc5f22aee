/* SPDX-License-Identifier: MIT */
/* The strict JSON scan and its map of positions; see json_strict.h for what and why. */
#include "common/json_strict.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Objects with more members than this are checked for repeated names by sorting them. */
#define PAIRWISE_MAX 8
/* Nodes a scan without a caller's map keeps on the stack before it allocates. */
#define STACK_NODES 16

struct scanner {
	const char *text;
	size_t len;
	size_t pos;
	unsigned line;
	unsigned max_depth;
	struct json_strict_map *map;
	bool on_stack; /* map->nodes is json_strict_scan()'s stack array, not the heap */
	struct json_strict_error *err;
	/* the repeated member name earliest in the text, reported once nothing else is wrong */
	bool repeated;
	size_t repeated_offset;
	unsigned repeated_line;
};

static int scanner_fail(struct scanner *s, enum json_strict_fault fault, const char *reason)
{
	/* the text ends with no newline after s->pos: a string or number was cut short */
	if (fault == JSON_STRICT_E_END)
		s->pos = s->len;
	*s->err = (struct json_strict_error){
		.fault = fault, .reason = reason, .offset = s->pos, .line = s->line};
	return -EBADMSG;
}

static int scanner_fail_char(struct scanner *s, const char *reason)
{
	if (s->pos >= s->len)
		return scanner_fail(s, JSON_STRICT_E_END, "unexpected end of data");
	if (s->text[s->pos] == '\'')
		return scanner_fail(s, JSON_STRICT_E_SINGLE_QUOTE,
				    "names and strings must be in double quotes");
	return scanner_fail(s, JSON_STRICT_E_SYNTAX, reason);
}

static void scanner_skip_blanks(struct scanner *s)
{
	while (s->pos < s->len) {
		char c = s->text[s->pos];

		if (c == '\n')
			s->line++;
		else if (c != ' ' && c != '\t' && c != '\r')
			return;
		s->pos++;
	}
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
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

/* The string whose opening quote is at s->pos; leaves s->pos after its closing quote. */
static int scanner_string(struct scanner *s)
{
	for (s->pos++;;) {
		unsigned char c;

		if (s->pos >= s->len)
			return scanner_fail(s, JSON_STRICT_E_END, "unexpected end of data");
		c = (unsigned char)s->text[s->pos];
		if (c == '"') {
			s->pos++;
			return 0;
		}
		if (c < 0x20)
			return scanner_fail(s, JSON_STRICT_E_CONTROL_CHAR,
					    "a control character in a string must be escaped");
		if (c >= 0x80) {
			size_t n = utf8_sequence_length(s->text + s->pos, s->len - s->pos);

			if (!n)
				return scanner_fail(s, JSON_STRICT_E_UTF8,
						    "a string is not valid UTF-8");
			s->pos += n;
			continue;
		}
		if (c != '\\') {
			s->pos++;
			continue;
		}
		if (s->len - s->pos < 2)
			return scanner_fail(s, JSON_STRICT_E_END, "unexpected end of data");
		switch (s->text[s->pos + 1]) {
		case '"':
		case '\\':
		case '/':
		case 'b':
		case 'f':
		case 'n':
		case 'r':
		case 't':
			s->pos += 2;
			break;
		case 'u': {
			bool zero = true;

			for (size_t i = 2; i < 6; i++) {
				if (s->pos + i >= s->len)
					return scanner_fail(s, JSON_STRICT_E_END,
							    "unexpected end of data");
				if (hex_value(s->text[s->pos + i]) < 0)
					return scanner_fail(s, JSON_STRICT_E_SYNTAX,
							    "\\u needs four hex digits");
				zero = zero && s->text[s->pos + i] == '0';
			}
			/* json-c cuts member names there: "op\u0000x" would be read as "op" */
			if (zero)
				return scanner_fail(s, JSON_STRICT_E_NUL_ESCAPE,
						    "\\u0000 is not allowed");
			s->pos += 6;
			break;
		}
		default:
			return scanner_fail(s, JSON_STRICT_E_SYNTAX, "unknown escape in a string");
		}
	}
}

static int scanner_digits(struct scanner *s)
{
	size_t start = s->pos;

	while (s->pos < s->len && is_digit(s->text[s->pos]))
		s->pos++;
	if (s->pos > start)
		return 0;
	if (s->pos >= s->len)
		return scanner_fail(s, JSON_STRICT_E_END, "unexpected end of data");
	return scanner_fail(s, JSON_STRICT_E_NUMBER, "a number lacks digits");
}

/* -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? at s->pos. */
static int scanner_number(struct scanner *s)
{
	int r;

	if (s->text[s->pos] == '-')
		s->pos++;
	if (s->pos < s->len && s->text[s->pos] == '0') {
		s->pos++;
		if (s->pos < s->len && is_digit(s->text[s->pos])) {
			s->pos--;
			return scanner_fail(s, JSON_STRICT_E_NUMBER,
					    "numbers must not have leading zeros");
		}
	} else if ((r = scanner_digits(s)) < 0) {
		return r;
	}
	if (s->pos < s->len && s->text[s->pos] == '.') {
		s->pos++;
		if ((r = scanner_digits(s)) < 0)
			return r;
	}
	if (s->pos < s->len && (s->text[s->pos] == 'e' || s->text[s->pos] == 'E')) {
		s->pos++;
		if (s->pos < s->len && (s->text[s->pos] == '+' || s->text[s->pos] == '-'))
			s->pos++;
		if ((r = scanner_digits(s)) < 0)
			return r;
	}
	return 0;
}

static int scanner_literal(struct scanner *s, const char *word)
{
	size_t n = strlen(word), avail = s->len - s->pos;

	if (memcmp(s->text + s->pos, word, avail < n ? avail : n) != 0)
		return scanner_fail(s, JSON_STRICT_E_SYNTAX, "unexpected character");
	if (avail < n) {
		s->pos = s->len;
		return scanner_fail(s, JSON_STRICT_E_END, "unexpected end of data");
	}
	s->pos += n;
	return 0;
}

/* ---- member names ---- */

/* Reads a member name's decoded bytes, as json-c decodes them, from text already checked. */
struct name_reader {
	const char *p, *end;
	unsigned char pending[4];
	unsigned n_pending, next_pending;
};

static void name_reader_init(struct name_reader *r, const struct json_strict_map *map,
			     const struct json_strict_node *member)
{
	r->p = map->text + member->name_offset + 1;
	r->end = r->p + member->name_len;
	r->n_pending = r->next_pending = 0;
}

static uint32_t hex4(const char *p)
{
	uint32_t v = 0;

	for (int i = 0; i < 4; i++)
		v = v << 4 | (uint32_t)hex_value(p[i]);
	return v;
}

/* The next byte of the name, or -1 after the last. */
static int name_reader_next(struct name_reader *r)
{
	uint32_t cp;
	char c;

	if (r->next_pending < r->n_pending)
		return r->pending[r->next_pending++];
	if (r->p >= r->end)
		return -1;
	c = *r->p++;
	if (c != '\\')
		return (unsigned char)c;
	c = *r->p++;
	switch (c) {
	case 'b':
		return '\b';
	case 'f':
		return '\f';
	case 'n':
		return '\n';
	case 'r':
		return '\r';
	case 't':
		return '\t';
	case 'u':
		break;
	default:
		return (unsigned char)c; /* " \ / */
	}
	cp = hex4(r->p);
	r->p += 4;
	if (cp >= 0xd800 && cp <= 0xdbff && r->end - r->p >= 6 && r->p[0] == '\\' &&
	    r->p[1] == 'u') {
		uint32_t lo = hex4(r->p + 2);

		if (lo >= 0xdc00 && lo <= 0xdfff) {
			cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			r->p += 6;
		}
	}
	if (cp >= 0xd800 && cp <= 0xdfff)
		cp = 0xfffd; /* a lone surrogate: json-c writes U+FFFD instead */
	r->next_pending = 1;
	if (cp < 0x80) {
		r->n_pending = 1;
		r->pending[0] = (unsigned char)cp;
	} else if (cp < 0x800) {
		r->n_pending = 2;
		r->pending[0] = (unsigned char)(0xc0 | cp >> 6);
		r->pending[1] = (unsigned char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		r->n_pending = 3;
		r->pending[0] = (unsigned char)(0xe0 | cp >> 12);
		r->pending[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		r->pending[2] = (unsigned char)(0x80 | (cp & 0x3f));
	} else {
		r->n_pending = 4;
		r->pending[0] = (unsigned char)(0xf0 | cp >> 18);
		r->pending[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
		r->pending[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		r->pending[3] = (unsigned char)(0x80 | (cp & 0x3f));
	}
	return r->pending[0];
}

/* Decoded names compared byte by byte, as strcmp would compare them. */
static int name_compare(const struct json_strict_map *map, const struct json_strict_node *a,
			const struct json_strict_node *b)
{
	struct name_reader ra, rb;
	int ca, cb;

	if (!a->name_escaped && !b->name_escaped) {
		int r = memcmp(map->text + a->name_offset + 1, map->text + b->name_offset + 1,
			       a->name_len < b->name_len ? a->name_len : b->name_len);

		return r ? r : (a->name_len > b->name_len) - (a->name_len < b->name_len);
	}
	name_reader_init(&ra, map, a);
	name_reader_init(&rb, map, b);
	do {
		ca = name_reader_next(&ra);
		cb = name_reader_next(&rb);
	} while (ca == cb && ca >= 0);
	return ca - cb;
}

static int compare_members(const void *x, const void *y, void *userdata)
{
	const struct json_strict_map *map = userdata;
	uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
	int r = name_compare(map, &map->nodes[a], &map->nodes[b]);

	if (r)
		return r;
	return a < b ? -1 : a > b;
}

static void scanner_mark_repeated(struct scanner *s, uint32_t member)
{
	struct json_strict_node *m = &s->map->nodes[member];

	m->repeated = true;
	if (!s->repeated || m->name_offset < s->repeated_offset) {
		s->repeated = true;
		s->repeated_offset = m->name_offset;
		s->repeated_line = m->name_line;
	}
}

/*
 * Mark each member of the object at index obj (just closed) whose name an earlier member
 * has. Few members are compared pairwise; many are sorted by name, so that an object with
 * a hundred thousand members costs n log n comparisons, not n squared.
 */
static int scanner_check_names(struct scanner *s, uint32_t obj)
{
	const struct json_strict_node *nodes = s->map->nodes;
	uint32_t n = nodes[obj].n_children, small[PAIRWISE_MAX], *members = small;
	uint32_t c = obj + 1;

	if (n < 2)
		return 0;
	if (n > PAIRWISE_MAX) {
		members = malloc(n * sizeof(*members));
		if (!members)
			return -ENOMEM;
	}
	for (uint32_t i = 0; i < n; i++, c = nodes[c].end)
		members[i] = c;
	if (n <= PAIRWISE_MAX) {
		for (uint32_t i = 1; i < n; i++)
			for (uint32_t j = 0; j < i; j++)
				if (name_compare(s->map, &nodes[members[j]], &nodes[members[i]]) ==
				    0) {
					scanner_mark_repeated(s, members[i]);
					break;
				}
		return 0;
	}
	qsort_r(members, n, sizeof(*members), compare_members, s->map);
	for (uint32_t i = 1; i < n; i++)
		if (name_compare(s->map, &nodes[members[i - 1]], &nodes[members[i]]) == 0)
			scanner_mark_repeated(s, members[i]);
	free(members);
	return 0;
}

/* ---- the map ---- */

/* A new node for the value at s->pos, inside parent; its index, or -ENOMEM. */
static int64_t scanner_add(struct scanner *s, enum json_strict_kind kind, uint32_t parent)
{
	struct json_strict_map *m = s->map;
	struct json_strict_node *node;

	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 16 + s->len / 8;
		struct json_strict_node *nodes;

		if (s->on_stack) {
			nodes = malloc(cap * sizeof(*nodes));
			if (nodes)
				memcpy(nodes, m->nodes, m->n * sizeof(*nodes));
		} else {
			nodes = realloc(m->nodes, cap * sizeof(*nodes));
		}
		if (!nodes)
			return -ENOMEM;
		s->on_stack = false;
		m->nodes = nodes;
		m->cap = cap;
	}
	node = &m->nodes[m->n];
	*node = (struct json_strict_node){
		.offset = (uint32_t)s->pos,
		.line = s->line,
		.parent = parent,
		.end = (uint32_t)m->n + 1,
		.kind = (uint8_t)kind,
	};
	if (parent != JSON_STRICT_NONE)
		m->nodes[parent].n_children++;
	return (int64_t)m->n++;
}

/* ---- the scan ---- */

enum expect {
	EXPECT_VALUE,	       /* a value */
	EXPECT_VALUE_OR_CLOSE, /* right after '[' */
	EXPECT_NAME,	       /* a member's name, after ',' */
	EXPECT_NAME_OR_CLOSE,  /* right after '{' */
	EXPECT_COMMA_OR_CLOSE, /* after a value inside a container */
};

static int scanner_run(struct scanner *s)
{
	enum expect expect = EXPECT_VALUE;
	uint32_t container = JSON_STRICT_NONE, name_offset = 0, name_len = 0, name_line = 0;
	unsigned depth = 0;
	int64_t node;
	int r;

	for (;;) {
		struct json_strict_node *nodes;
		char c;

		scanner_skip_blanks(s);
		if (expect == EXPECT_COMMA_OR_CLOSE && container == JSON_STRICT_NONE)
			break; /* the top-level value is complete */
		if (s->pos >= s->len)
			return scanner_fail(s, JSON_STRICT_E_END, "unexpected end of data");
		c = s->text[s->pos];
		nodes = s->map->nodes;

		if ((expect == EXPECT_VALUE_OR_CLOSE && c == ']') ||
		    (expect == EXPECT_NAME_OR_CLOSE && c == '}') ||
		    (expect == EXPECT_COMMA_OR_CLOSE &&
		     c == (nodes[container].kind == JSON_STRICT_OBJECT ? '}' : ']'))) {
			nodes[container].end = (uint32_t)s->map->n;
			if (c == '}' && (r = scanner_check_names(s, container)) < 0)
				return r;
			container = nodes[container].parent;
			depth--;
			s->pos++;
			expect = EXPECT_COMMA_OR_CLOSE;
			continue;
		}

		switch (expect) {
		case EXPECT_COMMA_OR_CLOSE:
			if (c != ',')
				return scanner_fail_char(
					s, nodes[container].kind == JSON_STRICT_OBJECT
						   ? "expected ',' or '}' after a member"
						   : "expected ',' or ']' after an element");
			s->pos++;
			expect = nodes[container].kind == JSON_STRICT_OBJECT ? EXPECT_NAME
									     : EXPECT_VALUE;
			continue;
		case EXPECT_NAME:
		case EXPECT_NAME_OR_CLOSE:
			if (c != '"')
				return scanner_fail_char(s, "expected a member name");
			name_offset = (uint32_t)s->pos;
			name_line = s->line;
			if ((r = scanner_string(s)) < 0)
				return r;
			name_len = (uint32_t)(s->pos - name_offset - 2);
			scanner_skip_blanks(s);
			if (s->pos >= s->len || s->text[s->pos] != ':')
				return scanner_fail_char(s, "expected ':' after a member name");
			s->pos++;
			expect = EXPECT_VALUE;
			continue;
		case EXPECT_VALUE:
		case EXPECT_VALUE_OR_CLOSE:
			break;
		}

		/* a value; json_tokener_new_ex(max_depth) refuses one inside max_depth containers
		 */
		if (depth >= s->max_depth)
			return scanner_fail(s, JSON_STRICT_E_TOO_DEEP, "nested too deep");
		switch (c) {
		case '{':
		case '[':
			node = scanner_add(s, c == '{' ? JSON_STRICT_OBJECT : JSON_STRICT_ARRAY,
					   container);
			break;
		case '"':
			node = scanner_add(s, JSON_STRICT_STRING, container);
			break;
		case 't':
		case 'f':
		case 'n':
			node = scanner_add(s, JSON_STRICT_LITERAL, container);
			break;
		default:
			if (c != '-' && !is_digit(c))
				return scanner_fail_char(s, "unexpected character");
			node = scanner_add(s, JSON_STRICT_NUMBER, container);
			break;
		}
		if (node < 0)
			return (int)node;
		if (container != JSON_STRICT_NONE &&
		    s->map->nodes[container].kind == JSON_STRICT_OBJECT) {
			struct json_strict_node *m = &s->map->nodes[node];

			m->name_offset = name_offset;
			m->name_len = name_len;
			m->name_line = name_line;
			m->name_escaped = memchr(s->text + name_offset, '\\', name_len) != NULL;
		}
		switch (c) {
		case '{':
		case '[':
			container = (uint32_t)node;
			depth++;
			s->pos++;
			expect = c == '{' ? EXPECT_NAME_OR_CLOSE : EXPECT_VALUE_OR_CLOSE;
			continue;
		case '"':
			r = scanner_string(s);
			break;
		case 't':
			r = scanner_literal(s, "true");
			break;
		case 'f':
			r = scanner_literal(s, "false");
			break;
		case 'n':
			r = scanner_literal(s, "null");
			break;
		default:
			r = scanner_number(s);
			break;
		}
		if (r < 0)
			return r;
		expect = EXPECT_COMMA_OR_CLOSE;
	}
	if (s->pos < s->len)
		return scanner_fail(s, JSON_STRICT_E_TRAILING,
				    "unexpected data after the top-level value");
	if (s->repeated) {
		s->pos = s->repeated_offset;
		s->line = s->repeated_line;
		return scanner_fail(s, JSON_STRICT_E_DUPLICATE_KEY,
				    "an object names a member twice");
	}
	return 0;
}

int json_strict_scan(const char *text, size_t len, unsigned max_depth, struct json_strict_map *map,
		     struct json_strict_error *err)
{
	struct json_strict_node stack[STACK_NODES];
	struct json_strict_map scratch = {
		.text = text, .len = len, .nodes = stack, .cap = STACK_NODES};
	struct json_strict_error ignored;
	struct scanner s = {
		.text = text,
		.len = len,
		.line = 1,
		.max_depth = max_depth,
		.map = map ? map : &scratch,
		.on_stack = !map,
		.err = err ? err : &ignored,
	};
	int r;

	if (len >= JSON_STRICT_NONE)
		return -EFBIG;
	if (map) {
		json_strict_map_done(map);
		map->text = text;
		map->len = len;
	}
	r = scanner_run(&s);
	if (!map && !s.on_stack)
		free(scratch.nodes);
	return r;
}

void json_strict_map_done(struct json_strict_map *map)
{
	if (!map)
		return;
	free(map->nodes);
	*map = (struct json_strict_map){0};
}

/* ---- walking the map ---- */

const struct json_strict_node *json_strict_root(const struct json_strict_map *map)
{
	return map->n ? &map->nodes[0] : NULL;
}

const struct json_strict_node *json_strict_first(const struct json_strict_map *map,
						 const struct json_strict_node *container)
{
	if (!container || !container->n_children)
		return NULL;
	return container + 1;
}

const struct json_strict_node *json_strict_next(const struct json_strict_map *map,
						const struct json_strict_node *node)
{
	if (!node || node->parent == JSON_STRICT_NONE || node->end >= map->nodes[node->parent].end)
		return NULL;
	return &map->nodes[node->end];
}

const struct json_strict_node *json_strict_member(const struct json_strict_map *map,
						  const struct json_strict_node *object,
						  const char *name)
{
	const struct json_strict_node *found = NULL;

	if (!object || object->kind != JSON_STRICT_OBJECT)
		return NULL;
	for (const struct json_strict_node *m = json_strict_first(map, object); m;
	     m = json_strict_next(map, m))
		if (json_strict_name_is(map, m, name))
			found = m;
	return found;
}

const struct json_strict_node *json_strict_element(const struct json_strict_map *map,
						   const struct json_strict_node *array,
						   size_t index)
{
	const struct json_strict_node *e;

	if (!array || array->kind != JSON_STRICT_ARRAY)
		return NULL;
	for (e = json_strict_first(map, array); e && index; index--)
		e = json_strict_next(map, e);
	return e;
}

/* ---- reading values ---- */

int json_strict_int64(const struct json_strict_map *map, const struct json_strict_node *number,
		      int64_t *ret)
{
	const char *p = map->text + number->offset, *end = map->text + map->len;
	bool negative = *p == '-';
	uint64_t v = 0, limit = negative ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	bool over = false;

	if (number->kind != JSON_STRICT_NUMBER)
		return -EDOM;
	if (negative)
		p++;
	for (; p < end && is_digit(*p); p++) {
		unsigned d = (unsigned)(*p - '0');

		if (v > (limit - d) / 10)
			over = true;
		else
			v = v * 10 + d;
	}
	/* a fraction or an exponent makes a double of it, as json-c reads it */
	if (p < end && (*p == '.' || *p == 'e' || *p == 'E'))
		return -EDOM;
	if (over)
		return -ERANGE;
	*ret = negative ? (int64_t)(0 - v) : (int64_t)v;
	return 0;
}

int json_strict_bool(const struct json_strict_map *map, const struct json_strict_node *literal,
		     bool *ret)
{
	char c = map->text[literal->offset];

	if (literal->kind != JSON_STRICT_LITERAL || c == 'n')
		return -EDOM;
	*ret = c == 't';
	return 0;
}

bool json_strict_name_is(const struct json_strict_map *map, const struct json_strict_node *member,
			 const char *name)
{
	struct name_reader r;
	int c;

	name_reader_init(&r, map, member);
	for (; *name; name++)
		if (name_reader_next(&r) != (unsigned char)*name)
			return false;
	c = name_reader_next(&r);
	return c < 0;
}

size_t json_strict_name(const struct json_strict_map *map, const struct json_strict_node *member,
			char *buf, size_t size)
{
	struct name_reader r;
	size_t n = 0;
	int c;

	name_reader_init(&r, map, member);
	while ((c = name_reader_next(&r)) >= 0) {
		if (n + 1 < size)
			buf[n] = (char)c;
		n++;
	}
	if (size)
		buf[n < size ? n : size - 1] = '\0';
	return n;
}

size_t json_strict_string(const struct json_strict_map *map, const struct json_strict_node *value,
			  char *buf, size_t size)
{
	struct name_reader r = {.p = map->text + value->offset + 1};
	size_t n = 0;
	int c;

	/* The text was checked: the closing quote is the first one no backslash escapes. */
	for (r.end = r.p; *r.end != '"'; r.end += *r.end == '\\' ? 2 : 1)
		;
	while ((c = name_reader_next(&r)) >= 0) {
		if (n + 1 < size)
			buf[n] = (char)c;
		n++;
	}
	if (size)
		buf[n < size ? n : size - 1] = '\0';
	return n;
}
