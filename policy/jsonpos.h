/* SPDX-License-Identifier: MIT */
/*
 * A small position-tracking JSON scanner.  json-c gives no line numbers, so errors about a
 * value are located by walking the original text along the same path (rules[3].devices[1]
 * .vendor) with this scanner, which knows strings and escapes and counts newlines.
 *
 * It is only ever run on text json-c has already accepted (strict mode), but it checks every
 * bound anyway and fails with -EBADMSG on anything it does not understand.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* A place in the text: byte offset and 1-based line. */
struct jsonpos {
	size_t offset;
	unsigned line;
};

#define JSONPOS_START ((struct jsonpos){.offset = 0, .line = 1})

/* One step of a path: an object member (key != NULL) or an array element (index). */
struct jsonpos_step {
	const char *key;
	size_t index;
};

/* Longest key the scanner decodes in full; longer keys are reported truncated. */
#define JSONPOS_MAX_KEY 256

/*
 * Follow path[0..n) from the value at start (leading blanks allowed) and return in *ret
 * the position of the first character of the value it names.  Duplicate keys resolve to
 * the last one, as json-c does.  Returns 0, -ENOENT if the path does not exist, -EBADMSG
 * on malformed text.
 */
int jsonpos_locate(const char *text, size_t len, struct jsonpos start,
		   const struct jsonpos_step *path, size_t n, struct jsonpos *ret);

/*
 * Call fn for every member of the object at pos, in text order, with the decoded key (NUL
 * terminated; truncated to JSONPOS_MAX_KEY - 1 bytes, then *truncated is set) and the
 * position of the key.  A non-zero return of fn stops the walk and is returned.  Returns
 * 0, -ENOTTY if pos is not an object, -EBADMSG on malformed text.
 */
typedef int (*jsonpos_key_fn)(const char *key, size_t key_len, bool truncated,
			      struct jsonpos key_pos, void *userdata);
int jsonpos_for_each_key(const char *text, size_t len, struct jsonpos pos, jsonpos_key_fn fn,
			 void *userdata);

/*
 * Call fn for every element of the array at pos with its index and position.  Same return
 * convention as jsonpos_for_each_key(); -ENOTTY if pos is not an array.
 */
typedef int (*jsonpos_element_fn)(size_t index, struct jsonpos pos, void *userdata);
int jsonpos_for_each_element(const char *text, size_t len, struct jsonpos pos,
			     jsonpos_element_fn fn, void *userdata);

/* The 1-based line of offset (clamped to len). */
unsigned jsonpos_line_of_offset(const char *text, size_t len, size_t offset);
