/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of common/json_strict: every kind of text it refuses (with the fault and the
 * place it names), the edge cases of JSON it must accept, the depth limit counted as
 * json-c counts it, and the map of positions the policy parser's error lines come from.
 */
#include "common/json_strict.h"

#include <check.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEPTH 16

static int scan(const char *text, struct json_strict_error *err)
{
	return json_strict_scan(text, strlen(text), DEPTH, NULL, err);
}

static void assert_ok(const char *text)
{
	struct json_strict_error err = {0};
	int r = scan(text, &err);

	ck_assert_msg(r == 0, "refused %s: %s", text, r == -EBADMSG ? err.reason : "?");
}

/* text is refused with fault; returns the error for checks of the place. */
static struct json_strict_error assert_fault(const char *text, enum json_strict_fault fault)
{
	struct json_strict_error err = {0};
	int r = scan(text, &err);

	ck_assert_msg(r == -EBADMSG, "accepted %s (%d)", text, r);
	ck_assert_msg(err.fault == fault, "%s: fault %d (%s), expected %d", text, err.fault,
		      err.reason, fault);
	ck_assert_ptr_nonnull(err.reason);
	return err;
}

/* ---- what it refuses ----------------------------------------------------------------- */

START_TEST(test_raw_control_character_in_a_string_is_refused)
{
	struct json_strict_error err = assert_fault("[\"a\tb\"]", JSON_STRICT_E_CONTROL_CHAR);

	ck_assert_uint_eq(err.offset, 3);
	ck_assert_str_eq(err.reason, "a control character in a string must be escaped");
	assert_fault("{\"a\nb\": 1}", JSON_STRICT_E_CONTROL_CHAR);
	assert_fault("[\"\x1f\"]", JSON_STRICT_E_CONTROL_CHAR);
	assert_ok("[\"a\\tb\", \"\x7f\"]"); /* escaped, and DEL, are fine */
}
END_TEST

START_TEST(test_bad_utf8_in_a_string_is_refused)
{
	static const char *const bad[] = {
		"[\"\xc0\xaf\"]",	  /* overlong "/" */
		"[\"\xe0\x80\xaf\"]",	  /* overlong, 3 bytes */
		"[\"\xed\xa0\x80\"]",	  /* an encoded surrogate */
		"[\"\xf4\x90\x80\x80\"]", /* above U+10FFFF */
		"[\"\xe2\x82\"]",	  /* cut short */
		"[\"\x80\"]",		  /* a lone continuation byte */
		"[\"\xff\"]",
		"{\"\xc3\": 1}", /* in a name too */
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct json_strict_error err = assert_fault(bad[i], JSON_STRICT_E_UTF8);

		ck_assert_str_eq(err.reason, "a string is not valid UTF-8");
	}
	assert_ok("[\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf\"]");
}
END_TEST

START_TEST(test_nul_escape_is_refused_in_names_and_values)
{
	struct json_strict_error err =
		assert_fault("{\"id\":2,\"op\\u0000x\":1}", JSON_STRICT_E_NUL_ESCAPE);

	ck_assert_uint_eq(err.offset, 11);
	ck_assert_str_eq(err.reason, "\\u0000 is not allowed");
	assert_fault("[\"a\\u0000\"]", JSON_STRICT_E_NUL_ESCAPE);
	/* an escaped backslash followed by "u0000" is six plain characters */
	assert_ok("[\"\\\\u0000\"]");
	assert_ok("[\"\\u0001\\u0100\"]");
}
END_TEST

START_TEST(test_leading_zeros_are_refused)
{
	struct json_strict_error err = assert_fault("[1, 00]", JSON_STRICT_E_NUMBER);

	ck_assert_uint_eq(err.offset, 4);
	ck_assert_str_eq(err.reason, "numbers must not have leading zeros");
	assert_fault("{\"a\": -01}", JSON_STRICT_E_NUMBER);
	assert_fault("[01.5]", JSON_STRICT_E_NUMBER);
	assert_ok("[0, -0, 10, 0.05, 1e05, 1E+00, 0.0e00]");
}
END_TEST

START_TEST(test_single_quotes_are_refused)
{
	struct json_strict_error err = assert_fault("{'a': 1}", JSON_STRICT_E_SINGLE_QUOTE);

	ck_assert_uint_eq(err.offset, 1);
	ck_assert_str_eq(err.reason, "names and strings must be in double quotes");
	assert_fault("['a']", JSON_STRICT_E_SINGLE_QUOTE);
	assert_fault("[1']", JSON_STRICT_E_SINGLE_QUOTE);
	assert_ok("[\"it's\"]");
}
END_TEST

START_TEST(test_repeated_names_are_refused_at_any_depth)
{
	struct json_strict_error err =
		assert_fault("{\"id\": 1,\n \"op\": 2,\n \"id\": 3}", JSON_STRICT_E_DUPLICATE_KEY);

	/* the place is the later of the two names */
	ck_assert_uint_eq(err.offset, 21);
	ck_assert_uint_eq(err.line, 3);
	assert_fault("[{\"x\": {\"b\": 1, \"b\": 2}}]", JSON_STRICT_E_DUPLICATE_KEY);
	assert_ok("[{\"b\": 1}, {\"b\": 2}]"); /* different objects */
	assert_ok("{\"b\": {\"b\": 1}}");
}
END_TEST

START_TEST(test_names_are_compared_as_json_c_decodes_them)
{
	assert_fault("{\"id\": 1, \"\\u0069d\": 2}", JSON_STRICT_E_DUPLICATE_KEY);
	assert_fault("{\"\xc3\xa9\": 1, \"\\u00e9\": 2}", JSON_STRICT_E_DUPLICATE_KEY);
	assert_fault("{\"a/b\": 1, \"a\\/b\": 2}", JSON_STRICT_E_DUPLICATE_KEY);
	assert_fault("{\"\\ud834\\udd1e\": 1, \"\xf0\x9d\x84\x9e\": 2}",
		     JSON_STRICT_E_DUPLICATE_KEY);
	/* json-c turns every lone surrogate into U+FFFD: these three are one name to it */
	assert_fault("{\"\\ud800\": 1, \"\\udc00\": 2}", JSON_STRICT_E_DUPLICATE_KEY);
	assert_fault("{\"\\ud800\": 1, \"\xef\xbf\xbd\": 2}", JSON_STRICT_E_DUPLICATE_KEY);
	assert_ok("{\"\\ud800\": 1}");
}
END_TEST

START_TEST(test_names_differing_only_at_the_end_are_distinct)
{
	assert_ok("{\"rules\": [], \"rulez\": []}");
	assert_ok("{\"ab\": 1, \"a\": 2, \"\": 3, \"abc\": 4}");
	assert_ok("{\"a\\u0062\": 1, \"a\": 2, \"ac\": 3}");
	assert_fault("{\"\": 1, \"\": 2}", JSON_STRICT_E_DUPLICATE_KEY);
}
END_TEST

/* Objects above a handful of members are sorted by name rather than compared pairwise. */
START_TEST(test_many_members_are_all_checked)
{
	size_t size = 64 + 2000 * 16, len = 0;
	char *text = malloc(size);
	struct json_strict_error err;

	ck_assert_ptr_nonnull(text);
	text[len++] = '{';
	for (int i = 0; i < 2000; i++)
		len += (size_t)snprintf(text + len, size - len, "%s\"m%d\": %d", i ? "," : "", i,
					i);
	text[len++] = '}';
	text[len] = '\0';
	ck_assert_int_eq(json_strict_scan(text, len, DEPTH, NULL, &err), 0);

	/* the same again with "m1234" spelled a second time, escaped, at the very end */
	len--;
	len += (size_t)snprintf(text + len, size - len, ", \"m\\u0031234\": 0}");
	ck_assert_int_eq(json_strict_scan(text, len, DEPTH, NULL, &err), -EBADMSG);
	ck_assert_int_eq(err.fault, JSON_STRICT_E_DUPLICATE_KEY);
	ck_assert_uint_eq(err.offset, (size_t)(strstr(text, "\"m\\u") - text));
	free(text);
}
END_TEST

START_TEST(test_a_repeated_name_is_reported_only_when_nothing_else_is_wrong)
{
	assert_fault("{\"a\": 1, \"a\": 2, \"b\": 01}", JSON_STRICT_E_NUMBER);
	assert_fault("{\"a\": 1, \"a\": 2", JSON_STRICT_E_END);
	assert_fault("{\"a\": 1, \"a\": 2} x", JSON_STRICT_E_TRAILING);
}
END_TEST

START_TEST(test_what_json_c_lets_through_is_refused)
{
	static const char *const bad[] = {
		"[1.]",	 "[.5]",	"[+1]",	      "[1e]",	     "[1e+]",	    "[-]",
		"[- 1]", "[NaN]",	"[Infinity]", "[-Infinity]", "[\"\\x41\"]", "[\"\\'\"]",
		"[1,]",	 "{\"a\": 1,}", "[1 2]",      "{\"a\" 1}",   "{1: 2}",	    "[1]\f",
		"\v[1]", "[1/*c*/]",	"[tRue]",     "[nul]x",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct json_strict_error err = {0};

		ck_assert_msg(scan(bad[i], &err) == -EBADMSG, "accepted %s", bad[i]);
		ck_assert_msg(err.fault != JSON_STRICT_E_DUPLICATE_KEY &&
				      err.fault != JSON_STRICT_E_END,
			      "%s: fault %d", bad[i], err.fault);
	}
}
END_TEST

START_TEST(test_syntax_errors_name_the_offending_character)
{
	struct json_strict_error err =
		assert_fault("{\n \"a\": 1\n \"b\": 2}", JSON_STRICT_E_SYNTAX);

	ck_assert_uint_eq(err.offset, 11);
	ck_assert_uint_eq(err.line, 3);
}
END_TEST

START_TEST(test_text_ending_inside_a_value_is_end_of_data)
{
	static const char *const cut[] = {
		"",	   "  \n", "[1, 2", "{\"a\"", "{\"a\": ", "\"abc", "\"ab\\",
		"\"\\u12", "tru",  "-",	    "1.",     "1e",	  "[[]",   "{\"a\":{}"};

	for (size_t i = 0; i < sizeof(cut) / sizeof(cut[0]); i++) {
		struct json_strict_error err = assert_fault(cut[i], JSON_STRICT_E_END);

		ck_assert_uint_eq(err.offset, strlen(cut[i]));
	}
}
END_TEST

START_TEST(test_anything_after_the_value_is_trailing_data)
{
	struct json_strict_error err = assert_fault("{}\n x", JSON_STRICT_E_TRAILING);

	ck_assert_uint_eq(err.offset, 4);
	ck_assert_uint_eq(err.line, 2);
	assert_fault("1 2", JSON_STRICT_E_TRAILING);
	assert_fault("{}}", JSON_STRICT_E_TRAILING);
}
END_TEST

/* ---- what it accepts ----------------------------------------------------------------- */

START_TEST(test_every_form_json_allows_is_accepted)
{
	static const char *const good[] = {
		"{}",
		" \t\r\n[] \t\r\n",
		"\"\"",
		"0",
		"-0",
		"true",
		"false",
		"null",
		"[-12.5e-3, 1E+2, 1e-0, 0.0e00, 9223372036854775808, -1e400]",
		"[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\uD834\\uDD1E\"]",
		"[\"\\ud800\", \"\\udc00x\", \"\\ud800\\u0041\"]", /* lone surrogates, as json-c */
		"{\"a\": {\"b\": [{}, [], {\"c\": null}]}, \"b\": [true, false]}",
		"{\"\": 0}",
	};

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_ok(good[i]);
}
END_TEST

/* The text of n containers, objects and arrays alternating, around "x" or around nothing. */
static size_t nested(char *text, size_t size, int n, bool empty_inside)
{
	size_t len = 0;

	for (int i = 0; i < n; i++)
		len += (size_t)snprintf(text + len, size - len, "%s", i % 2 ? "[" : "{\"a\":");
	if (!empty_inside || n == 0)
		len += (size_t)snprintf(text + len, size - len, "\"x\"");
	else if (n % 2)
		len -= 4; /* the innermost is an empty object: no "a": */
	for (int i = n - 1; i >= 0; i--)
		text[len++] = i % 2 ? ']' : '}';
	text[len] = '\0';
	return len;
}

/*
 * The limit is the one json_tokener_new_ex() takes, counted as json-c counts it (values
 * inside containers, not containers), so that json-c never refuses what the scan took.
 */
START_TEST(test_depth_is_counted_as_json_c_counts_it)
{
	for (unsigned max = 1; max <= 10; max++)
		for (int n = 0; n <= 10; n++)
			for (int empty = 0; empty < 2; empty++) {
				struct json_tokener *tok = json_tokener_new_ex((int)max);
				struct json_strict_error err;
				struct json_object *o;
				char text[128];
				size_t len = nested(text, sizeof(text), n, empty);
				int r;

				ck_assert_ptr_nonnull(tok);
				o = json_tokener_parse_ex(tok, text, (int)len);
				r = json_strict_scan(text, len, max, NULL, &err);
				ck_assert_msg((o != NULL) == (r == 0),
					      "max %u, %s: json-c %s, scan %d", max, text,
					      o ? "takes it" : "refuses", r);
				if (r < 0)
					ck_assert_int_eq(err.fault, JSON_STRICT_E_TOO_DEEP);
				json_object_put(o);
				json_tokener_free(tok);
			}
}
END_TEST

/* ---- the map ------------------------------------------------------------------------- */

static const char map_text[] = "{\n"
			       "  \"rules\": [\n"
			       "    {\"name\": \"a\"},\n"
			       "    {\"n\\u0061me\": \"b\",\n"
			       "     \"devices\": [1,\n"
			       "                 2]}\n"
			       "  ]\n"
			       "}\n";

START_TEST(test_map_gives_the_line_of_every_value)
{
	struct json_strict_map map = {0};
	struct json_strict_error err;
	const struct json_strict_node *root, *rules, *second, *devices, *two;

	ck_assert_int_eq(json_strict_scan(map_text, strlen(map_text), DEPTH, &map, &err), 0);
	root = json_strict_root(&map);
	ck_assert_ptr_nonnull(root);
	ck_assert_int_eq(root->kind, JSON_STRICT_OBJECT);
	ck_assert_uint_eq(root->line, 1);
	rules = json_strict_member(&map, root, "rules");
	ck_assert_ptr_nonnull(rules);
	ck_assert_int_eq(rules->kind, JSON_STRICT_ARRAY);
	ck_assert_uint_eq(rules->n_children, 2);
	ck_assert_uint_eq(rules->name_line, 2);
	second = json_strict_element(&map, rules, 1);
	ck_assert_ptr_nonnull(second);
	ck_assert_uint_eq(second->line, 4);
	ck_assert_ptr_null(json_strict_element(&map, rules, 2));
	ck_assert_ptr_eq(json_strict_next(&map, json_strict_first(&map, rules)), second);
	ck_assert_ptr_null(json_strict_next(&map, second));
	/* names are matched decoded: "n\u0061me" is "name" */
	ck_assert_uint_eq(json_strict_member(&map, second, "name")->line, 4);
	devices = json_strict_member(&map, second, "devices");
	ck_assert_uint_eq(devices->line, 5);
	two = json_strict_element(&map, devices, 1);
	ck_assert_uint_eq(two->line, 6);
	ck_assert_int_eq(two->kind, JSON_STRICT_NUMBER);
	ck_assert_uint_eq(two->offset, (size_t)(strchr(map_text, '2') - map_text));
	ck_assert_ptr_null(json_strict_member(&map, second, "nam"));
	ck_assert_ptr_null(json_strict_member(&map, devices, "name")); /* not an object */
	ck_assert_ptr_null(json_strict_element(&map, second, 0));      /* not an array */
	json_strict_map_done(&map);
	ck_assert_ptr_null(map.nodes);
	json_strict_map_done(&map); /* twice is fine */
	json_strict_map_done(NULL);
}
END_TEST

START_TEST(test_map_decodes_member_names)
{
	static const char text[] = "{\"n\\u0061me\": 1, \"\\ud834\\udd1e\\/\": 2}";
	struct json_strict_map map = {0};
	struct json_strict_error err;
	const struct json_strict_node *a, *b;
	char buf[16], small[4];

	ck_assert_int_eq(json_strict_scan(text, strlen(text), DEPTH, &map, &err), 0);
	a = json_strict_first(&map, json_strict_root(&map));
	b = json_strict_next(&map, a);
	ck_assert(json_strict_name_is(&map, a, "name"));
	ck_assert(!json_strict_name_is(&map, a, "nam"));
	ck_assert(!json_strict_name_is(&map, a, "names"));
	ck_assert_uint_eq(json_strict_name(&map, a, buf, sizeof(buf)), 4);
	ck_assert_str_eq(buf, "name");
	ck_assert_uint_eq(json_strict_name(&map, b, buf, sizeof(buf)), 5);
	ck_assert_str_eq(buf, "\xf0\x9d\x84\x9e/");
	/* cut to the buffer, terminated, with the full length returned */
	ck_assert_uint_eq(json_strict_name(&map, a, small, sizeof(small)), 4);
	ck_assert_str_eq(small, "nam");
	json_strict_map_done(&map);
}
END_TEST

START_TEST(test_map_is_complete_when_only_a_name_repeats)
{
	static const char text[] =
		"{\"effect\": \"deny\",\n \"users\": [1],\n \"effect\": \"allow\"}";
	struct json_strict_map map = {0};
	struct json_strict_error err;
	const struct json_strict_node *first, *users, *last;

	ck_assert_int_eq(json_strict_scan(text, strlen(text), DEPTH, &map, &err), -EBADMSG);
	ck_assert_int_eq(err.fault, JSON_STRICT_E_DUPLICATE_KEY);
	ck_assert_uint_eq(err.line, 3);
	first = json_strict_first(&map, json_strict_root(&map));
	users = json_strict_next(&map, first);
	last = json_strict_next(&map, users);
	ck_assert_ptr_nonnull(last);
	ck_assert(!first->repeated && !users->repeated && last->repeated);
	/* json-c keeps the last one; so does the lookup */
	ck_assert_ptr_eq(json_strict_member(&map, json_strict_root(&map), "effect"), last);
	json_strict_map_done(&map);
}
END_TEST

START_TEST(test_large_texts_scan_with_and_without_a_map)
{
	size_t size = 4 * 5000 + 8, len = 0;
	char *text = malloc(size);
	struct json_strict_map map = {0};
	struct json_strict_error err;

	ck_assert_ptr_nonnull(text);
	text[len++] = '[';
	for (int i = 0; i < 5000; i++)
		len += (size_t)snprintf(text + len, size - len, "%s[1]", i ? "," : "");
	text[len++] = ']';
	ck_assert_int_eq(json_strict_scan(text, len, DEPTH, NULL, &err), 0);
	ck_assert_int_eq(json_strict_scan(text, len, DEPTH, &map, &err), 0);
	ck_assert_uint_eq(map.n, 1 + 2 * 5000);
	ck_assert_uint_eq(json_strict_element(&map, json_strict_root(&map), 4999)->offset, len - 4);
	/* a second scan into the same map replaces what it held */
	ck_assert_int_eq(json_strict_scan("[]", 2, DEPTH, &map, &err), 0);
	ck_assert_uint_eq(map.n, 1);
	json_strict_map_done(&map);
	free(text);
}
END_TEST

static Suite *json_strict_suite(void)
{
	Suite *s = suite_create("json_strict");
	TCase *t = tcase_create("refused");

	tcase_add_test(t, test_raw_control_character_in_a_string_is_refused);
	tcase_add_test(t, test_bad_utf8_in_a_string_is_refused);
	tcase_add_test(t, test_nul_escape_is_refused_in_names_and_values);
	tcase_add_test(t, test_leading_zeros_are_refused);
	tcase_add_test(t, test_single_quotes_are_refused);
	tcase_add_test(t, test_repeated_names_are_refused_at_any_depth);
	tcase_add_test(t, test_names_are_compared_as_json_c_decodes_them);
	tcase_add_test(t, test_names_differing_only_at_the_end_are_distinct);
	tcase_add_test(t, test_many_members_are_all_checked);
	tcase_add_test(t, test_a_repeated_name_is_reported_only_when_nothing_else_is_wrong);
	tcase_add_test(t, test_what_json_c_lets_through_is_refused);
	tcase_add_test(t, test_syntax_errors_name_the_offending_character);
	tcase_add_test(t, test_text_ending_inside_a_value_is_end_of_data);
	tcase_add_test(t, test_anything_after_the_value_is_trailing_data);
	suite_add_tcase(s, t);

	t = tcase_create("accepted");
	tcase_add_test(t, test_every_form_json_allows_is_accepted);
	tcase_add_test(t, test_depth_is_counted_as_json_c_counts_it);
	suite_add_tcase(s, t);

	t = tcase_create("map");
	tcase_add_test(t, test_map_gives_the_line_of_every_value);
	tcase_add_test(t, test_map_decodes_member_names);
	tcase_add_test(t, test_map_is_complete_when_only_a_name_repeats);
	tcase_add_test(t, test_large_texts_scan_with_and_without_a_map);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(json_strict_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
