/* SPDX-License-Identifier: MIT */
/*
 * An independent, strict JSON validator for the fuzz harnesses: RFC 8259 syntax, valid
 * UTF-8 (RFC 3629: no overlong forms, no encoded surrogates, nothing above U+10FFFF), and
 * two rules json-c does not enforce but a strict parser must: no duplicate member names in
 * an object (json-c keeps the last one silently), and no U+0000 in a member name (json-c
 * cuts such a name at the NUL, so "op\u0000x" silently becomes a second "op").
 *
 * The harnesses use it as an oracle: whatever the project's decoders ACCEPT must pass it.
 * Each kind of leniency has its own result and its own STRICT_JSON_ALLOW_* flag, so that a
 * harness can tolerate one deliberately (say, json-c's leading zeros) and still catch the
 * others.  Header-only on purpose: each harness is one translation unit plus the project's
 * sources.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum strict_json_result {
	STRICT_JSON_OK = 0,
	STRICT_JSON_SYNTAX,	   /* not JSON, in a way none of the kinds below describes */
	STRICT_JSON_UTF8,	   /* a string holds bytes that are not UTF-8 */
	STRICT_JSON_CONTROL_CHAR,  /* a raw U+0001..U+001F inside a string (must be escaped) */
	STRICT_JSON_NUMBER,	   /* a number not in JSON form: 00, -012, 2., ... */
	STRICT_JSON_SINGLE_QUOTE,  /* a member name in single quotes */
	STRICT_JSON_DUPLICATE_KEY, /* an object names the same member twice */
	STRICT_JSON_NUL_IN_KEY,	   /* a member name holds U+0000 */
	STRICT_JSON_TOO_DEEP,	   /* deeper than the validator's own limit (not a verdict) */
};

/* Leniencies a caller may allow: one bit per kind above. */
enum strict_json_allow {
	STRICT_JSON_ALLOW_UTF8 = 1 << 0,
	STRICT_JSON_ALLOW_CONTROL_CHAR = 1 << 1,
	STRICT_JSON_ALLOW_NUMBER = 1 << 2,
	STRICT_JSON_ALLOW_SINGLE_QUOTE = 1 << 3,
	STRICT_JSON_ALLOW_DUPLICATE_KEY = 1 << 4,
	STRICT_JSON_ALLOW_NUL_IN_KEY = 1 << 5,
};

static inline const char *strict_json_describe(enum strict_json_result r)
{
	switch (r) {
	case STRICT_JSON_OK:
		return "valid";
	case STRICT_JSON_SYNTAX:
		return "not RFC 8259 JSON";
	case STRICT_JSON_UTF8:
		return "a string is not valid UTF-8";
	case STRICT_JSON_CONTROL_CHAR:
		return "a string holds a raw control character";
	case STRICT_JSON_NUMBER:
		return "a number is not in JSON form (leading zero, bare dot, ...)";
	case STRICT_JSON_SINGLE_QUOTE:
		return "a member name is in single quotes";
	case STRICT_JSON_DUPLICATE_KEY:
		return "an object has a duplicate member name";
	case STRICT_JSON_NUL_IN_KEY:
		return "a member name holds U+0000";
	case STRICT_JSON_TOO_DEEP:
		return "nested too deep for the validator";
	}
	return "?";
}

#define STRICT_JSON_MAX_DEPTH 64

struct strict_json {
	const unsigned char *p, *end;
	unsigned allow;
	int error;
};

/* A decoded member name: UTF-8, escapes resolved (lone surrogates kept as such). */
struct strict_json_key {
	unsigned char *bytes;
	size_t len;
};

static inline bool sj_fail(struct strict_json *s, int error)
{
	if (!s->error)
		s->error = error;
	return false;
}

static inline void sj_ws(struct strict_json *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

static inline bool sj_literal(struct strict_json *s, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
		return sj_fail(s, STRICT_JSON_SYNTAX);
	s->p += n;
	return true;
}

static inline bool sj_digits(struct strict_json *s)
{
	const unsigned char *start = s->p;

	while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
		s->p++;
	return s->p > start || sj_fail(s, STRICT_JSON_SYNTAX);
}

static inline bool sj_number_strict(struct strict_json *s)
{
	if (s->p < s->end && *s->p == '-')
		s->p++;
	if (s->p < s->end && *s->p == '0')
		s->p++;
	else if (!(s->p < s->end && *s->p >= '1' && *s->p <= '9') || !sj_digits(s))
		return false;
	if (s->p < s->end && *s->p == '.') {
		s->p++;
		if (!sj_digits(s))
			return false;
	}
	if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
		s->p++;
		if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
			s->p++;
		if (!sj_digits(s))
			return false;
	}
	return true;
}

static inline bool sj_number_char(unsigned char c)
{
	return c && strchr("0123456789.eE+-", c);
}

static inline bool sj_number(struct strict_json *s)
{
	const unsigned char *start = s->p;
	bool ok = sj_number_strict(s);

	/* what follows a number must end it: "00" stops after the first 0, "2." at the dot */
	if (ok && (s->p >= s->end || !sj_number_char(*s->p)))
		return true;
	s->error = 0;
	if (start >= s->end || !*start || !strchr("0123456789.-", *start))
		return sj_fail(s, STRICT_JSON_SYNTAX); /* not a number at all */
	if (!(s->allow & STRICT_JSON_ALLOW_NUMBER))
		return sj_fail(s, STRICT_JSON_NUMBER);
	s->p = start;
	while (s->p < s->end && sj_number_char(*s->p))
		s->p++;
	return true;
}

static inline void sj_put(struct strict_json_key *k, unsigned char c)
{
	if (k)
		k->bytes[k->len++] = c;
}

/* One UTF-8 sequence starting at s->p (a byte >= 0x80), copied into k. */
static inline bool sj_utf8(struct strict_json *s, struct strict_json_key *k)
{
	unsigned char c = *s->p;
	size_t n;
	uint32_t cp, min;

	if (c >= 0xc2 && c <= 0xdf)
		n = 2, cp = c & 0x1f, min = 0x80;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3, cp = c & 0x0f, min = 0x800;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4, cp = c & 0x07, min = 0x10000;
	else
		return sj_fail(s, STRICT_JSON_UTF8);
	if ((size_t)(s->end - s->p) < n)
		return sj_fail(s, STRICT_JSON_UTF8);
	for (size_t i = 1; i < n; i++) {
		if ((s->p[i] & 0xc0) != 0x80)
			return sj_fail(s, STRICT_JSON_UTF8);
		cp = cp << 6 | (s->p[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return sj_fail(s, STRICT_JSON_UTF8);
	for (size_t i = 0; i < n; i++)
		sj_put(k, s->p[i]);
	s->p += n;
	return true;
}

static inline int sj_hex(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static inline void sj_put_utf8(struct strict_json_key *k, uint32_t cp)
{
	if (cp < 0x80) {
		sj_put(k, (unsigned char)cp);
	} else if (cp < 0x800) {
		sj_put(k, (unsigned char)(0xc0 | cp >> 6));
		sj_put(k, (unsigned char)(0x80 | (cp & 0x3f)));
	} else if (cp < 0x10000) {
		sj_put(k, (unsigned char)(0xe0 | cp >> 12));
		sj_put(k, (unsigned char)(0x80 | ((cp >> 6) & 0x3f)));
		sj_put(k, (unsigned char)(0x80 | (cp & 0x3f)));
	} else {
		sj_put(k, (unsigned char)(0xf0 | cp >> 18));
		sj_put(k, (unsigned char)(0x80 | ((cp >> 12) & 0x3f)));
		sj_put(k, (unsigned char)(0x80 | ((cp >> 6) & 0x3f)));
		sj_put(k, (unsigned char)(0x80 | (cp & 0x3f)));
	}
}

static inline bool sj_u4(struct strict_json *s, uint32_t *ret)
{
	uint32_t cp = 0;

	if (s->end - s->p < 4)
		return sj_fail(s, STRICT_JSON_SYNTAX);
	for (int i = 0; i < 4; i++) {
		int h = sj_hex(s->p[i]);

		if (h < 0)
			return sj_fail(s, STRICT_JSON_SYNTAX);
		cp = cp << 4 | (uint32_t)h;
	}
	s->p += 4;
	*ret = cp;
	return true;
}

/* A string at s->p; its decoded bytes go to k when k is not NULL (k->bytes is big enough). */
static inline bool sj_string(struct strict_json *s, struct strict_json_key *k, bool *has_nul)
{
	unsigned char quote;

	if (s->p >= s->end || (*s->p != '"' && *s->p != '\''))
		return sj_fail(s, STRICT_JSON_SYNTAX);
	/* single quotes only reach here for member names, and only when allowed */
	quote = *s->p++;
	for (;;) {
		unsigned char c;

		if (s->p >= s->end)
			return sj_fail(s, STRICT_JSON_SYNTAX);
		c = *s->p;
		if (c == quote) {
			s->p++;
			return true;
		}
		if (c < 0x20 && !(s->allow & STRICT_JSON_ALLOW_CONTROL_CHAR))
			return sj_fail(s, STRICT_JSON_CONTROL_CHAR);
		if (c >= 0x80) {
			const unsigned char *at = s->p;

			if (sj_utf8(s, k))
				continue;
			if (!(s->allow & STRICT_JSON_ALLOW_UTF8))
				return false;
			s->error = 0; /* take the byte as it is */
			s->p = at + 1;
			sj_put(k, c);
			continue;
		}
		s->p++;
		if (c != '\\') {
			sj_put(k, c);
			continue;
		}
		if (s->p >= s->end)
			return sj_fail(s, STRICT_JSON_SYNTAX);
		c = *s->p++;
		switch (c) {
		case '\'':
			if (quote != '\'')
				return sj_fail(s, STRICT_JSON_SYNTAX);
			/* fall through */
		case '"':
		case '\\':
		case '/':
			sj_put(k, c);
			break;
		case 'b':
			sj_put(k, '\b');
			break;
		case 'f':
			sj_put(k, '\f');
			break;
		case 'n':
			sj_put(k, '\n');
			break;
		case 'r':
			sj_put(k, '\r');
			break;
		case 't':
			sj_put(k, '\t');
			break;
		case 'u': {
			uint32_t cp;

			if (!sj_u4(s, &cp))
				return false;
			if (cp >= 0xd800 && cp <= 0xdbff && s->end - s->p >= 6 && s->p[0] == '\\' &&
			    s->p[1] == 'u') {
				const unsigned char *save = s->p;
				uint32_t lo;

				s->p += 2;
				if (!sj_u4(s, &lo))
					return false;
				if (lo >= 0xdc00 && lo <= 0xdfff)
					cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				else
					s->p = save; /* a lone high surrogate, then another escape
						      */
			}
			if (cp == 0 && has_nul)
				*has_nul = true;
			/* as UTF-8, so that "\u006fp" and "op" are the same name; a lone surrogate
			 * gets its 3-byte form, which no valid raw UTF-8 can collide with */
			sj_put_utf8(k, cp);
			break;
		}
		default:
			return sj_fail(s, STRICT_JSON_SYNTAX);
		}
	}
}

static inline bool sj_value(struct strict_json *s, unsigned depth);

static inline bool sj_object(struct strict_json *s, unsigned depth)
{
	struct strict_json_key *keys = NULL;
	size_t n = 0, cap = 0;
	bool ok = false;

	s->p++; /* '{' */
	sj_ws(s);
	if (s->p < s->end && *s->p == '}') {
		s->p++;
		return true;
	}
	for (;;) {
		struct strict_json_key k;
		bool has_nul = false;

		const unsigned char *start;

		sj_ws(s);
		if (s->p < s->end && *s->p == '\'' &&
		    !(s->allow & STRICT_JSON_ALLOW_SINGLE_QUOTE)) {
			sj_fail(s, STRICT_JSON_SINGLE_QUOTE);
			break;
		}
		/* validate first; the decoded name is never longer than the raw one */
		start = s->p;
		if (!sj_string(s, NULL, &has_nul))
			break;
		k.bytes = malloc((size_t)(s->p - start) + 1);
		k.len = 0;
		if (!k.bytes)
			abort();
		s->p = start;
		sj_string(s, &k, NULL);
		if (has_nul && !(s->allow & STRICT_JSON_ALLOW_NUL_IN_KEY)) {
			free(k.bytes);
			sj_fail(s, STRICT_JSON_NUL_IN_KEY);
			break;
		}
		for (size_t i = 0; i < n && !(s->allow & STRICT_JSON_ALLOW_DUPLICATE_KEY); i++)
			if (keys[i].len == k.len && memcmp(keys[i].bytes, k.bytes, k.len) == 0) {
				sj_fail(s, STRICT_JSON_DUPLICATE_KEY);
				break;
			}
		if (s->error) {
			free(k.bytes);
			break;
		}
		if (n == cap) {
			cap = cap ? cap * 2 : 8;
			keys = realloc(keys, cap * sizeof(*keys));
			if (!keys)
				abort();
		}
		keys[n++] = k;
		sj_ws(s);
		if (s->p >= s->end || *s->p != ':') {
			sj_fail(s, STRICT_JSON_SYNTAX);
			break;
		}
		s->p++;
		if (!sj_value(s, depth + 1))
			break;
		sj_ws(s);
		if (s->p < s->end && *s->p == ',') {
			s->p++;
			continue;
		}
		if (s->p < s->end && *s->p == '}') {
			s->p++;
			ok = true;
		} else {
			sj_fail(s, STRICT_JSON_SYNTAX);
		}
		break;
	}
	for (size_t i = 0; i < n; i++)
		free(keys[i].bytes);
	free(keys);
	return ok;
}

static inline bool sj_array(struct strict_json *s, unsigned depth)
{
	s->p++; /* '[' */
	sj_ws(s);
	if (s->p < s->end && *s->p == ']') {
		s->p++;
		return true;
	}
	for (;;) {
		if (!sj_value(s, depth + 1))
			return false;
		sj_ws(s);
		if (s->p < s->end && *s->p == ',') {
			s->p++;
			continue;
		}
		if (s->p < s->end && *s->p == ']') {
			s->p++;
			return true;
		}
		return sj_fail(s, STRICT_JSON_SYNTAX);
	}
}

static inline bool sj_value(struct strict_json *s, unsigned depth)
{
	if (depth > STRICT_JSON_MAX_DEPTH)
		return sj_fail(s, STRICT_JSON_TOO_DEEP);
	sj_ws(s);
	if (s->p >= s->end)
		return sj_fail(s, STRICT_JSON_SYNTAX);
	switch (*s->p) {
	case '{':
		return sj_object(s, depth);
	case '[':
		return sj_array(s, depth);
	case '"':
		return sj_string(s, NULL, NULL);
	case '\'':
		return sj_fail(s, STRICT_JSON_SYNTAX); /* only names may be single-quoted */
	case 't':
		return sj_literal(s, "true");
	case 'f':
		return sj_literal(s, "false");
	case 'n':
		return sj_literal(s, "null");
	default:
		return sj_number(s);
	}
}

/*
 * Is text[0..len) one strict JSON value, with optional blanks around it?  allow: the
 * STRICT_JSON_ALLOW_* leniencies to accept; 0 for RFC 8259 and the two member-name rules.
 */
static inline enum strict_json_result strict_json_check(const char *text, size_t len,
							unsigned allow)
{
	struct strict_json s = {(const unsigned char *)text, (const unsigned char *)text + len,
				allow, 0};

	if (sj_value(&s, 1)) {
		sj_ws(&s);
		if (s.p != s.end)
			sj_fail(&s, STRICT_JSON_SYNTAX);
	}
	return (enum strict_json_result)s.error;
}
