/* SPDX-License-Identifier: MIT */
/* Position-tracking JSON scanner; see jsonpos.h for why it exists. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "policy/jsonpos.h"

/* Deeper than anything json-c lets through (POLICY_MAX_DEPTH); a guard for the recursion. */
#define SCANNER_MAX_DEPTH 64

struct scanner {
	const char *text;
	size_t len;
	size_t pos;
	unsigned line;
};

static void scanner_init(struct scanner *s, const char *text, size_t len, struct jsonpos start)
{
	s->text = text;
	s->len = len;
	s->pos = start.offset > len ? len : start.offset;
	s->line = start.line;
}

static struct jsonpos scanner_here(const struct scanner *s)
{
	return (struct jsonpos){.offset = s->pos, .line = s->line};
}

static void scanner_skip_blanks(struct scanner *s)
{
	while (s->pos < s->len) {
		char c = s->text[s->pos];

		if (c == '\n')
			s->line++;
		else if (c != ' ' && c != '\t' && c != '\r' && c != '\v' && c != '\f')
			break;
		s->pos++;
	}
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

/* Decoded key bytes go into a bounded buffer; overflow is remembered, not an error. */
struct keybuf {
	char *buf;
	size_t size;
	size_t len;
	bool truncated;
};

static void keybuf_put(struct keybuf *k, char c)
{
	if (!k)
		return;
	if (k->len + 1 < k->size)
		k->buf[k->len++] = c;
	else
		k->truncated = true;
}

static void keybuf_put_utf8(struct keybuf *k, uint32_t cp)
{
	if (cp < 0x80) {
		keybuf_put(k, (char)cp);
	} else if (cp < 0x800) {
		keybuf_put(k, (char)(0xc0 | (cp >> 6)));
		keybuf_put(k, (char)(0x80 | (cp & 0x3f)));
	} else if (cp < 0x10000) {
		keybuf_put(k, (char)(0xe0 | (cp >> 12)));
		keybuf_put(k, (char)(0x80 | ((cp >> 6) & 0x3f)));
		keybuf_put(k, (char)(0x80 | (cp & 0x3f)));
	} else {
		keybuf_put(k, (char)(0xf0 | (cp >> 18)));
		keybuf_put(k, (char)(0x80 | ((cp >> 12) & 0x3f)));
		keybuf_put(k, (char)(0x80 | ((cp >> 6) & 0x3f)));
		keybuf_put(k, (char)(0x80 | (cp & 0x3f)));
	}
}

static int scanner_read_hex4(struct scanner *s, uint32_t *ret)
{
	uint32_t v = 0;

	if (s->len - s->pos < 4)
		return -EBADMSG;
	for (int i = 0; i < 4; i++) {
		int h = hex_value(s->text[s->pos + (size_t)i]);

		if (h < 0)
			return -EBADMSG;
		v = v << 4 | (uint32_t)h;
	}
	s->pos += 4;
	*ret = v;
	return 0;
}

/*
 * Consume the string starting at s->pos (at its opening quote; json-c also takes single
 * quotes for keys) and decode it into k when k is not NULL.  Escapes are decoded so that a
 * key written as "\u0076endor" is found as "vendor", exactly as json-c sees it.
 */
static int scanner_read_string(struct scanner *s, struct keybuf *k)
{
	char quote;

	if (s->pos >= s->len || (s->text[s->pos] != '"' && s->text[s->pos] != '\''))
		return -EBADMSG;
	quote = s->text[s->pos++];
	for (;;) {
		char c;

		if (s->pos >= s->len)
			return -EBADMSG;
		c = s->text[s->pos++];
		if (c == quote)
			break;
		if (c == '\n')
			s->line++;
		if (c != '\\') {
			keybuf_put(k, c);
			continue;
		}
		if (s->pos >= s->len)
			return -EBADMSG;
		c = s->text[s->pos++];
		switch (c) {
		case '"':
		case '\\':
		case '/':
		case '\'':
			keybuf_put(k, c);
			break;
		case 'b':
			keybuf_put(k, '\b');
			break;
		case 'f':
			keybuf_put(k, '\f');
			break;
		case 'n':
			keybuf_put(k, '\n');
			break;
		case 'r':
			keybuf_put(k, '\r');
			break;
		case 't':
			keybuf_put(k, '\t');
			break;
		case 'u': {
			uint32_t cp, lo;

			if (scanner_read_hex4(s, &cp) < 0)
				return -EBADMSG;
			if (cp >= 0xd800 && cp <= 0xdbff && s->len - s->pos >= 6 &&
			    s->text[s->pos] == '\\' && s->text[s->pos + 1] == 'u') {
				struct scanner peek = *s;

				peek.pos += 2;
				if (scanner_read_hex4(&peek, &lo) == 0 && lo >= 0xdc00 &&
				    lo <= 0xdfff) {
					cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
					s->pos = peek.pos;
				}
			}
			if (cp >= 0xd800 && cp <= 0xdfff)
				cp = 0xfffd; /* lone surrogate: json-c substitutes too */
			keybuf_put_utf8(k, cp);
			break;
		}
		default:
			return -EBADMSG;
		}
	}
	return 0;
}

/*
 * Advance to the next member of the object being walked.  Returns 1 with s at the value
 * (blanks skipped) and the key decoded into k, 0 after the closing brace, <0 on bad text.
 */
static int scanner_object_next(struct scanner *s, bool *first, struct keybuf *k,
			       struct jsonpos *key_pos)
{
	int r;

	scanner_skip_blanks(s);
	if (s->pos >= s->len)
		return -EBADMSG;
	if (s->text[s->pos] == '}') {
		s->pos++;
		return 0;
	}
	if (!*first) {
		if (s->text[s->pos] != ',')
			return -EBADMSG;
		s->pos++;
		scanner_skip_blanks(s);
	}
	*first = false;
	if (key_pos)
		*key_pos = scanner_here(s);
	r = scanner_read_string(s, k);
	if (r < 0)
		return r;
	scanner_skip_blanks(s);
	if (s->pos >= s->len || s->text[s->pos] != ':')
		return -EBADMSG;
	s->pos++;
	scanner_skip_blanks(s);
	return 1;
}

/* Same for arrays: 1 with s at the next element, 0 after the closing bracket. */
static int scanner_array_next(struct scanner *s, bool *first)
{
	scanner_skip_blanks(s);
	if (s->pos >= s->len)
		return -EBADMSG;
	if (s->text[s->pos] == ']') {
		s->pos++;
		return 0;
	}
	if (!*first) {
		if (s->text[s->pos] != ',')
			return -EBADMSG;
		s->pos++;
		scanner_skip_blanks(s);
	}
	*first = false;
	return 1;
}

static int scanner_skip_value(struct scanner *s, unsigned depth)
{
	bool first = true;
	int r;

	if (depth > SCANNER_MAX_DEPTH)
		return -EBADMSG;
	scanner_skip_blanks(s);
	if (s->pos >= s->len)
		return -EBADMSG;
	switch (s->text[s->pos]) {
	case '{':
		s->pos++;
		while ((r = scanner_object_next(s, &first, NULL, NULL)) > 0) {
			r = scanner_skip_value(s, depth + 1);
			if (r < 0)
				return r;
		}
		return r;
	case '[':
		s->pos++;
		while ((r = scanner_array_next(s, &first)) > 0) {
			r = scanner_skip_value(s, depth + 1);
			if (r < 0)
				return r;
		}
		return r;
	case '"':
	case '\'':
		return scanner_read_string(s, NULL);
	case ',':
	case ':':
	case ']':
	case '}':
		return -EBADMSG;
	default:
		/* A number, true, false, null, NaN, Infinity: up to the next delimiter. */
		while (s->pos < s->len && !strchr(",:]} \t\r\n\v\f", s->text[s->pos]))
			s->pos++;
		return 0;
	}
}

int jsonpos_locate(const char *text, size_t len, struct jsonpos start,
		   const struct jsonpos_step *path, size_t n, struct jsonpos *ret)
{
	struct scanner s;

	if (!text || !ret || (n && !path))
		return -EINVAL;
	scanner_init(&s, text, len, start);
	for (size_t i = 0; i < n; i++) {
		bool first = true, found = false;
		struct scanner at = s;
		int r = 0;

		scanner_skip_blanks(&s);
		if (s.pos >= s.len)
			return -EBADMSG;
		if (path[i].key) {
			char key[JSONPOS_MAX_KEY];
			size_t want = strlen(path[i].key);

			if (s.text[s.pos] != '{')
				return -ENOENT;
			s.pos++;
			for (;;) {
				struct keybuf k = {.buf = key, .size = sizeof(key)};

				r = scanner_object_next(&s, &first, &k, NULL);
				if (r <= 0)
					break;
				if (!k.truncated && k.len == want &&
				    memcmp(key, path[i].key, want) == 0) {
					at = s; /* keep going: the last duplicate wins */
					found = true;
				}
				r = scanner_skip_value(&s, 1);
				if (r < 0)
					break;
			}
		} else {
			size_t index = 0;

			if (s.text[s.pos] != '[')
				return -ENOENT;
			s.pos++;
			while ((r = scanner_array_next(&s, &first)) > 0) {
				if (index++ == path[i].index) {
					at = s;
					found = true;
					break;
				}
				r = scanner_skip_value(&s, 1);
				if (r < 0)
					break;
			}
		}
		if (r < 0)
			return r;
		if (!found)
			return -ENOENT;
		s = at;
	}
	scanner_skip_blanks(&s);
	*ret = scanner_here(&s);
	return 0;
}

int jsonpos_for_each_key(const char *text, size_t len, struct jsonpos pos, jsonpos_key_fn fn,
			 void *userdata)
{
	struct scanner s;
	bool first = true;
	int r;

	if (!text || !fn)
		return -EINVAL;
	scanner_init(&s, text, len, pos);
	scanner_skip_blanks(&s);
	if (s.pos >= s.len || s.text[s.pos] != '{')
		return -ENOTTY;
	s.pos++;
	for (;;) {
		char key[JSONPOS_MAX_KEY];
		struct keybuf k = {.buf = key, .size = sizeof(key)};
		struct jsonpos key_pos;

		r = scanner_object_next(&s, &first, &k, &key_pos);
		if (r <= 0)
			return r;
		key[k.len] = '\0';
		r = fn(key, k.len, k.truncated, key_pos, userdata);
		if (r != 0)
			return r;
		r = scanner_skip_value(&s, 1);
		if (r < 0)
			return r;
	}
}

int jsonpos_for_each_element(const char *text, size_t len, struct jsonpos pos,
			     jsonpos_element_fn fn, void *userdata)
{
	struct scanner s;
	bool first = true;
	size_t index = 0;
	int r;

	if (!text || !fn)
		return -EINVAL;
	scanner_init(&s, text, len, pos);
	scanner_skip_blanks(&s);
	if (s.pos >= s.len || s.text[s.pos] != '[')
		return -ENOTTY;
	s.pos++;
	while ((r = scanner_array_next(&s, &first)) > 0) {
		r = fn(index++, scanner_here(&s), userdata);
		if (r != 0)
			return r;
		r = scanner_skip_value(&s, 1);
		if (r < 0)
			return r;
	}
	return r;
}

unsigned jsonpos_line_of_offset(const char *text, size_t len, size_t offset)
{
	unsigned line = 1;

	if (!text)
		return 0;
	if (offset > len)
		offset = len;
	for (size_t i = 0; i < offset; i++)
		if (text[i] == '\n')
			line++;
	return line;
}
