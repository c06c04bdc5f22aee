/* SPDX-License-Identifier: MIT */
/*
 * The strict JSON check that every JSON input of ours passes before json-c reads it, and
 * the map of where each value is in the text.
 *
 * json-c, even with JSON_TOKENER_STRICT, takes what JSON does not: raw control characters
 * in strings, single-quoted member names, numbers like "-01", "1.", NaN and Infinity; it
 * cuts member names at "\u0000" ("op\u0000x" becomes a second "op"), and it keeps the last
 * of two members with the same name without a word, so {"effect": "deny", ..., "effect":
 * "allow"} would turn a deny rule into an allow rule. json_strict_scan() refuses all of it:
 * what passes is RFC 8259 JSON with
 *   - strings in UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF),
 *   - no "\u0000" anywhere,
 *   - no object naming a member twice, names compared after escapes are decoded, as json-c
 *     compares them (a lone surrogate escape is U+FFFD, as json-c makes it),
 *   - containers nested less deep than max_depth, counted as json_tokener_new_ex() counts.
 * json-c then parses the same text without finding anything more to refuse.
 *
 * json-c keeps no positions, so the scan also records every value in a map: offset, line,
 * and for a member its name, so that a caller can name the line of a bad value by walking
 * the map along the same path it walked json-c's tree.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum json_strict_kind {
	JSON_STRICT_OBJECT,
	JSON_STRICT_ARRAY,
	JSON_STRICT_STRING,
	JSON_STRICT_NUMBER,
	JSON_STRICT_LITERAL, /* true, false, null */
};

/* Why a text was refused; one kind per rule above, so that callers and tests can tell. */
enum json_strict_fault {
	JSON_STRICT_E_SYNTAX = 1,    /* not JSON, in a way none of the kinds below describes */
	JSON_STRICT_E_END,	     /* the text ends before its value does (or holds none) */
	JSON_STRICT_E_TRAILING,	     /* something follows the top-level value */
	JSON_STRICT_E_TOO_DEEP,	     /* containers nested max_depth deep */
	JSON_STRICT_E_CONTROL_CHAR,  /* a raw U+0000..U+001F inside a string */
	JSON_STRICT_E_UTF8,	     /* a string holds bytes that are not UTF-8 */
	JSON_STRICT_E_NUL_ESCAPE,    /* "\u0000" */
	JSON_STRICT_E_SINGLE_QUOTE,  /* a ' outside a string: names and strings use " */
	JSON_STRICT_E_NUMBER,	     /* a number not in JSON's form: 00, -01, 1., 1e */
	JSON_STRICT_E_DUPLICATE_KEY, /* an object names a member twice */
};

struct json_strict_error {
	enum json_strict_fault fault;
	const char *reason; /* static English text, e.g. "numbers must not have leading zeros" */
	size_t offset;	    /* the offending byte; a repeated member's name; len at the end */
	unsigned line;	    /* 1-based line of offset */
};

#define JSON_STRICT_NONE UINT32_MAX

/* One value of the text. Nodes are in text order; a container's values follow it. */
struct json_strict_node {
	uint32_t offset; /* the value's first byte */
	uint32_t line;
	uint32_t name_offset; /* a member of an object: its name's opening quote */
	uint32_t name_len;    /* the name's raw bytes between the quotes */
	uint32_t name_line;
	uint32_t parent;     /* index of the container, JSON_STRICT_NONE for the top level */
	uint32_t end;	     /* index one past the last node of this value's subtree */
	uint32_t n_children; /* members or elements */
	uint8_t kind;	     /* enum json_strict_kind */
	bool name_escaped;   /* the name holds a backslash: compare it decoded */
	bool repeated;	     /* a member whose name an earlier member of its object has */
};

/* Where every value of one text is. Owns nodes; the text must outlive it. */
struct json_strict_map {
	const char *text;
	size_t len;
	struct json_strict_node *nodes; /* nodes[0] is the top-level value */
	size_t n;
	size_t cap;
};

/*
 * Check that text[0..len) is one strict JSON value (see above), with blanks around it
 * allowed, and record its values in *map when map is not NULL (initialise it with {0};
 * release it with json_strict_map_done() whatever the result).
 *
 * Returns 0; -EBADMSG with *err filled when the text is not strict JSON; -ENOMEM; -EFBIG
 * when len does not fit the map's offsets. The first fault in text order is reported,
 * except that a repeated member name is reported only when nothing else is wrong: then
 * the map is complete, and a caller that wants to name the object the duplicate is in
 * (the policy parser) can find every member marked `repeated` as it walks.
 */
int json_strict_scan(const char *text, size_t len, unsigned max_depth, struct json_strict_map *map,
		     struct json_strict_error *err);

/* Release the map's nodes and reset it to {0}. NULL is fine. */
void json_strict_map_done(struct json_strict_map *map);
#define _cleanup_json_strict_map_ __attribute__((cleanup(json_strict_map_done)))

/* The top-level value, or NULL for an empty map. */
const struct json_strict_node *json_strict_root(const struct json_strict_map *map);
/* The first value inside a container, or NULL. */
const struct json_strict_node *json_strict_first(const struct json_strict_map *map,
						 const struct json_strict_node *container);
/* The value after node in the same container, or NULL. */
const struct json_strict_node *json_strict_next(const struct json_strict_map *map,
						const struct json_strict_node *node);
/* The member of object called name (the last one, as json-c keeps), or NULL. */
const struct json_strict_node *json_strict_member(const struct json_strict_map *map,
						  const struct json_strict_node *object,
						  const char *name);
/* Element index of array, or NULL. */
const struct json_strict_node *json_strict_element(const struct json_strict_map *map,
						   const struct json_strict_node *array,
						   size_t index);

/*
 * Read a number node as json-c reads an integer, exactly. Returns 0 with *ret; -EDOM when
 * the node is not a number or has a fraction or an exponent (json-c makes a double of it);
 * -ERANGE when it is an integer outside int64_t.
 */
int json_strict_int64(const struct json_strict_map *map, const struct json_strict_node *number,
		      int64_t *ret);
/* Read a true or false node: 0 with *ret, -EDOM for any other node (null included). */
int json_strict_bool(const struct json_strict_map *map, const struct json_strict_node *literal,
		     bool *ret);

/* Whether member's decoded name is name. */
bool json_strict_name_is(const struct json_strict_map *map, const struct json_strict_node *member,
			 const char *name);
/*
 * Write member's decoded name into buf, terminated, cut to size - 1 bytes. Returns its full
 * decoded length (which may hold a cut UTF-8 sequence when it is size or more).
 */
size_t json_strict_name(const struct json_strict_map *map, const struct json_strict_node *member,
			char *buf, size_t size);
/*
 * Write the decoded bytes of value, a JSON_STRICT_STRING, into buf as json_strict_name
 * does for names: terminated, cut to size - 1 bytes; returns the full decoded length.
 * It holds no NUL (the scan refuses "\u0000").
 */
size_t json_strict_string(const struct json_strict_map *map, const struct json_strict_node *value,
			  char *buf, size_t size);
