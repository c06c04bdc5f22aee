/* SPDX-License-Identifier: MIT */
/*
 * The request decoder reads json_strict_scan()'s map, not a json-c tree. These tests pin
 * that nothing a client can see changed with that: for every request of the fuzz corpus,
 * its regressions, the edge cases below, and every truncation, deletion and substitution
 * of a byte of those, vb_request_decode() gives what the json-c based decoder gave
 * (request_decode_json_c.h): the same verdict, the same request, and the same error code,
 * id and message, byte for byte.
 *
 * The corpus is read from tests/fuzz under the repository root (the working directory, or
 * VB_SRCDIR).
 */
#include "protocol/message.h"
#include "protocol/wire.h"
#include "tests/unit/request_decode_json_c.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Requests that probe what the two decoders could read differently. */
static const char *const edge_cases[] = {
	/* integers as json-c reads them: -0 is 0, a fraction or exponent is a double */
	"{\"id\":-0,\"op\":\"list\"}",
	"{\"id\":0,\"op\":\"list\"}",
	"{\"id\":-0.0,\"op\":\"list\"}",
	"{\"id\":1e2,\"op\":\"list\"}",
	"{\"id\":1E2,\"op\":\"list\"}",
	"{\"id\":0e0,\"op\":\"list\"}",
	"{\"id\":1.0,\"op\":\"list\"}",
	"{\"id\":-1,\"op\":\"list\"}",
	"{\"id\":4294967295,\"op\":\"list\"}",
	"{\"id\":4294967296,\"op\":\"list\"}",
	"{\"id\":9223372036854775807,\"op\":\"list\"}",
	"{\"id\":9223372036854775808,\"op\":\"list\"}",
	"{\"id\":18446744073709551615,\"op\":\"list\"}",
	"{\"id\":18446744073709551616,\"op\":\"list\"}",
	"{\"id\":-9223372036854775808,\"op\":\"list\"}",
	"{\"id\":-9223372036854775809,\"op\":\"list\"}",
	"{\"id\":-99999999999999999999999999,\"op\":\"list\"}",
	"{\"id\":1,\"op\":\"lease\",\"group\":1,\"memlock\":9223372036854775807}",
	"{\"id\":1,\"op\":\"lease\",\"group\":1,\"memlock\":9223372036854775808}",
	"{\"id\":1,\"op\":\"lease\",\"group\":1,\"memlock\":0}",
	"{\"id\":1,\"op\":\"lease\",\"group\":1,\"memlock\":-0}",
	"{\"id\":1,\"op\":\"lease\",\"group\":2147483647}",
	"{\"id\":1,\"op\":\"lease\",\"group\":2147483648}",
	"{\"id\":1,\"op\":\"hello\",\"version\":4294967295}",
	"{\"id\":1,\"op\":\"hello\",\"version\":4294967296}",
	"{\"id\":1,\"op\":\"explain\",\"group\":1,\"uid\":4294967294}",
	"{\"id\":1,\"op\":\"explain\",\"group\":1,\"uid\":4294967295}",
	"{\"id\":1,\"op\":\"remove\",\"group\":1,\"mode\":\"soft\",\"timeout_ms\":3600000}",
	"{\"id\":1,\"op\":\"remove\",\"group\":1,\"mode\":\"soft\",\"timeout_ms\":3600001}",
	/* null, booleans and containers where a field has another type */
	"{\"id\":null,\"op\":\"list\"}",
	"{\"id\":1,\"op\":null}",
	"{\"id\":1,\"op\":true}",
	"{\"id\":true,\"op\":\"list\"}",
	"{\"id\":[1],\"op\":\"list\"}",
	"{\"id\":{\"a\":1},\"op\":\"list\"}",
	"{\"id\":\"1\",\"op\":\"list\"}",
	"{\"id\":1,\"op\":\"hello\",\"version\":1,\"client\":null}",
	"{\"id\":1,\"op\":\"hello\",\"version\":1,\"client\":7}",
	"{\"id\":1,\"op\":\"unquarantine\",\"group\":1,\"restore\":true}",
	"{\"id\":1,\"op\":\"unquarantine\",\"group\":1,\"restore\":false}",
	"{\"id\":1,\"op\":\"unquarantine\",\"group\":1,\"restore\":null}",
	"{\"id\":1,\"op\":\"unquarantine\",\"group\":1,\"restore\":1}",
	"{\"id\":1,\"op\":\"remove\",\"group\":1,\"mode\":\"hard\",\"kill_strays\":true}",
	"{\"id\":1,\"op\":\"remove\",\"group\":1,\"mode\":\"soft\",\"kill_strays\":true}",
	"{\"id\":1,\"op\":\"remove\",\"group\":1,\"mode\":\"soft\",\"kill_strays\":false}",
	"{\"id\":1,\"op\":\"remove\",\"group\":1,\"mode\":\"hard\",\"kill_strays\":\"yes\"}",
	"{\"id\":1,\"op\":\"remove\",\"group\":1,\"mode\":\"Hard\"}",
	"{\"id\":1,\"op\":\"remove\",\"group\":1,\"mode\":\"softer\"}",
	"{\"id\":1,\"op\":\"remove\",\"group\":1,\"mode\":\"softest\"}",
	/* merge's array */
	"{\"id\":1,\"op\":\"merge\",\"groups\":[1,2,3]}",
	"{\"id\":1,\"op\":\"merge\",\"groups\":[1,2,1]}",
	"{\"id\":1,\"op\":\"merge\",\"groups\":[]}",
	"{\"id\":1,\"op\":\"merge\",\"groups\":[1.0]}",
	"{\"id\":1,\"op\":\"merge\",\"groups\":[-0,0]}",
	"{\"id\":1,\"op\":\"merge\",\"groups\":[-1]}",
	"{\"id\":1,\"op\":\"merge\",\"groups\":[2147483648]}",
	"{\"id\":1,\"op\":\"merge\",\"groups\":[99999999999999999999]}",
	"{\"id\":1,\"op\":\"merge\",\"groups\":[-99999999999999999999]}",
	"{\"id\":1,\"op\":\"merge\",\"groups\":[\"1\"]}",
	"{\"id\":1,\"op\":\"merge\",\"groups\":[[1]]}",
	"{\"id\":1,\"op\":\"merge\",\"groups\":{\"a\":1}}",
	"{\"id\":1,\"op\":\"merge\",\"groups\":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]}",
	"{\"id\":1,\"op\":\"merge\",\"groups\":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17]}",
	"{\"id\":1,\"op\":\"merge\"}",
	/* escapes in names and values, decoded as json-c decodes them */
	"{\"\\u0069\\u0064\":5,\"\\u006fp\":\"\\u006cist\"}",
	"{\"id\":1,\"op\":\"hello\",\"version\":1,\"client\":\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\"}",
	"{\"id\":1,\"op\":\"hello\",\"version\":1,\"client\":\"\\u00e9\\u20ac\\ud83d\\ude00\"}",
	"{\"id\":1,\"op\":\"hello\",\"version\":1,\"client\":\"\\ud800\"}",
	"{\"id\":1,\"op\":\"hello\",\"version\":1,\"client\":\"\\udc00x\"}",
	"{\"id\":1,\"op\":\"hello\",\"version\":1,\"client\":\"\\ud800\\u0041\"}",
	"{\"id\":1,\"op\":\"hello\",\"version\":1,\"client\":\"\\ud800\\ud800\\udc00\"}",
	"{\"id\":1,\"op\":\"hello\",\"version\":1,\"client\":\"\\ud800x\"}",
	"{\"id\":1,\"op\":\"hello\",\"version\":1,\"client\":"
	"\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"}",
	/* client: 63 bytes fit, 64 do not, raw or decoded */
	"{\"id\":1,\"op\":\"hello\",\"version\":1,\"client\":"
	"\"123456789012345678901234567890123456789012345678901234567890123\"}",
	"{\"id\":1,\"op\":\"hello\",\"version\":1,\"client\":"
	"\"1234567890123456789012345678901234567890123456789012345678901234\"}",
	"{\"id\":1,\"op\":\"hello\",\"version\":1,\"client\":"
	"\"12345678901234567890123456789012345678901234567890123456789012\\u0041\"}",
	"{\"id\":1,\"op\":\"hello\",\"version\":1,\"client\":"
	"\"12345678901234567890123456789012345678901234567890123456789012\\u00e9\"}",
	"{\"id\":1,\"op\":\"hello\",\"version\":1,\"client\":"
	"\"123456789012345678901234567890123456789012345678901234567890\\ud800\"}",
	"{\"id\":1,\"op\":\"hello\",\"version\":1,\"client\":"
	"\"12345678901234567890123456789012345678901234567890123456789012\xc3\xa9\"}",
	"{\"id\":1,\"op\":\"lease\",\"device\":\"0000:01:00.\\u0030\"}",
	"{\"id\":1,\"op\":\"lease\",\"device\":\"0000:01:00.0 \"}",
	"{\"id\":1,\"op\":\"lease\",\"device\":\"0000:01:00.0\",\"path\":\"cdev\"}",
	"{\"id\":1,\"op\":\"lease\",\"group\":3,\"path\":\"cdevcdev\"}",
	"{\"id\":1,\"op\":\"lease\",\"group\":3,\"path\":\"cdevcde\"}",
	"{\"id\":1,\"op\":\"lease\",\"group\":3,\"path\":\"\\u0063dev\"}",
	"{\"id\":1,\"op\":\"lease\",\"device\":"
	"\"0000:01:00.0000000000000000000000000000000000000\"}",
	"{\"id\":1,\"op\":\"lease\",\"device\":"
	"\"0000:01:00.00000000000000000000000000000000000000\"}",
	"{\"id\":1,\"op\":\"explain\",\"group\":1,\"user\":\"root\"}",
	"{\"id\":1,\"op\":\"explain\",\"group\":1,\"user\":\"\"}",
	"{\"id\":1,\"op\":\"explain\",\"group\":1,\"user\":\"\",\"uid\":0}",
	"{\"id\":1,\"op\":\"explain\",\"group\":1,\"user\":\"x\",\"uid\":0}",
	"{\"id\":1,\"op\":\"explain\",\"user\":\"x\"}",
	/* ops: too long, unknown, escaped */
	"{\"id\":1,\"op\":\"\"}",
	"{\"id\":1,\"op\":\"LIST\"}",
	"{\"id\":1,\"op\":\"1234567890123456789012345678901\"}",
	"{\"id\":1,\"op\":\"12345678901234567890123456789012\"}",
	"{\"id\":1,\"op\":\"\\u006c\\u0069\\u0073\\u0074\"}",
	"{\"id\":1,\"op\":\"list\\n\"}",
	"{\"op\":\"list\"}",
	"{\"id\":1}",
	"{}",
	/* unknown keys: the first in the text is named, cut to 32 bytes, decoded */
	"{\"id\":1,\"op\":\"list\",\"group\":1}",
	"{\"id\":1,\"op\":\"list\",\"zzz\":1,\"group\":1}",
	"{\"id\":1,\"group\":1,\"op\":\"list\",\"zzz\":1}",
	"{\"zzz\":1,\"id\":1,\"op\":\"release\",\"groups\":[1]}",
	"{\"id\":1,\"op\":\"release\",\"group\":1,\"restore\":true}",
	"{\"id\":1,\"op\":\"lease\",\"group\":1,\"Group\":1}",
	"{\"id\":1,\"op\":\"lease\",\"group\":1,\"grou\\u0070s\":1}",
	"{\"id\":1,\"op\":\"lease\",\"group\":1,\"\\u00e9\\n\\t\":1}",
	"{\"id\":1,\"op\":\"lease\",\"group\":1,\"\\ud800\":1}",
	"{\"id\":1,\"op\":\"lease\",\"group\":1,\"\":1}",
	"{\"id\":1,\"op\":\"lease\",\"group\":1,\"%s%n\":1}",
	"{\"id\":1,\"op\":\"lease\",\"group\":1,"
	"\"123456789012345678901234567890123456789\":1}",
	"{\"id\":1,\"op\":\"lease\",\"group\":1,"
	"\"1234567890123456789012345678901\\u00e9\":1}",
	"{\"id\":1,\"op\":\"lease\",\"group\":1,"
	"\"123456789012345678901234567890123\\u00e9\":1}",
	"{\"id\":1,\"op\":\"lease\",\"group\":1,\"timeout_ms_and_more\":1}",
	"{\"id\":1,\"op\":\"lease\",\"group\":1,\"kill_strays\\u0000\":1}",
	"{\"id\":1,\"op\":\"lease\",\"group\":1,\"nested\":{\"id\":2,\"op\":\"x\"}}",
	/* repeated names, also spelled differently, and where they are */
	"{\"id\":1,\"op\":\"list\",\"id\":2}",
	"{\"id\":1,\"op\":\"list\",\"\\u0069d\":2}",
	"{\"id\":1,\"op\":\"list\",\"x\":{\"a\":1,\"a\":2}}",
	"[{\"id\":1,\"id\":1}]",
	"{\"id\":1,\"op\":\"list\",\"x\":[{\"a\":1},{\"a\":2}]}",
	"{\"id\":1,\"op\":\"list\",\"a\":1,\"b\":2,\"c\":3,\"d\":4,\"e\":5,\"f\":6,\"g\":7,\"a\":"
	"8}",
	/* depth: the scan counts as json_tokener_new_ex(8) does */
	"{\"id\":1,\"op\":\"list\",\"x\":[[[[[[1]]]]]]}",
	"{\"id\":1,\"op\":\"list\",\"x\":[[[[[[[1]]]]]]]}",
	"{\"id\":1,\"op\":\"list\",\"x\":[[[[[[[[1]]]]]]]]}",
	"{\"id\":1,\"op\":\"list\",\"x\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{}}}}}}}}",
	"{\"id\":1,\"op\":\"list\",\"x\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":1}}}}}}}"
	"}",
	/* not an object, or not JSON */
	" \t\r\n{\"id\":1,\"op\":\"list\"} \t\r\n",
	"1",
	" 1",
	"\"x\"",
	"null",
	"[]",
	" [1]",
	"{\"id\":1,\"op\":\"list\"}{",
	"{\"id\":1,\"op\":\"list\"",
	"{\"id\":1,\"op\":\"list\",}",
	"{\"id\":01,\"op\":\"list\"}",
	"{\"id\":1.,\"op\":\"list\"}",
	"{\"id\":+1,\"op\":\"list\"}",
	"{\"id\":1,\"op\":\"li\x01st\"}",
	"{\"id\":1,\"op\":\"li\xc0\xafst\"}",
	"{\"id\":1,\"op\":\"\\x\"}",
	"{\"id\":1,\"op\":\"\\u12\"}",
	"{'id':1,'op':'list'}",
	"{\"id\":NaN,\"op\":\"list\"}",
	"{\"id\":1,\"op\":\"list\"}\n",
	"\xef\xbb\xbf{\"id\":1,\"op\":\"list\"}",
	"",
};

/* Bytes a substitution puts in every position: each one changes a token's meaning. */
static const char substitutes[] = {'"', '\\', '0', '-', '}', ']', ',', 'e', 'x', '\x80'};

struct tally {
	size_t inputs, accepted, refused;
};

static void assert_same_request(const struct vb_request *a, const struct vb_request *b,
				const char *what)
{
	ck_assert_msg(a->id == b->id && a->op == b->op && a->version == b->version &&
			      strcmp(a->client, b->client) == 0 && a->group == b->group &&
			      strcmp(a->device, b->device) == 0 && a->n_groups == b->n_groups &&
			      memcmp(a->groups, b->groups, sizeof(a->groups)) == 0 &&
			      a->mode == b->mode && a->timeout_ms == b->timeout_ms &&
			      a->kill_strays == b->kill_strays && a->uid == b->uid &&
			      strcmp(a->user, b->user) == 0 && a->restore == b->restore &&
			      a->memlock == b->memlock && a->path == b->path,
		      "the decoders read %s differently", what);
}

/* Decode text[0..len) both ways and assert the same outcome. */
static void assert_same_decoding(const char *text, size_t len, struct tally *t)
{
	struct vb_request now, then;
	struct vb_decode_error now_err, then_err;
	int k_now, k_then;

	vb_request_init(&now, 0, VB_OP_HELLO);
	vb_request_init(&then, 0, VB_OP_HELLO);
	k_now = vb_request_decode(text, len, &now, &now_err);
	k_then = json_c_request_decode(text, len, &then, &then_err);
	ck_assert_msg(k_now == k_then, "%.*s: the decoder returns %d, the json-c decoder %d",
		      (int)len, text, k_now, k_then);
	t->inputs++;
	if (k_now == 0) {
		t->accepted++;
		assert_same_request(&now, &then, text);
		return;
	}
	t->refused++;
	ck_assert_msg(now_err.code == then_err.code && now_err.has_id == then_err.has_id &&
			      now_err.id == then_err.id,
		      "%.*s: the error's code or id differ", (int)len, text);
	ck_assert_msg(strcmp(now_err.message, then_err.message) == 0,
		      "%.*s: the decoder says \"%s\", the json-c decoder said \"%s\"", (int)len,
		      text, now_err.message, then_err.message);
}

/* The input itself, then every prefix, every one-byte deletion and substitution of it. */
static void assert_same_decoding_of_variants(const char *text, size_t len, struct tally *t)
{
	char buf[VB_MAX_REQUEST_SIZE + 1];

	assert_same_decoding(text, len, t);
	if (len > VB_MAX_REQUEST_SIZE)
		return;
	for (size_t cut = 0; cut < len; cut++)
		assert_same_decoding(text, cut, t);
	for (size_t i = 0; i < len; i++) {
		memcpy(buf, text, i);
		memcpy(buf + i, text + i + 1, len - i - 1);
		assert_same_decoding(buf, len - 1, t);
		memcpy(buf, text, len);
		for (size_t s = 0; s < sizeof(substitutes); s++) {
			if (text[i] == substitutes[s])
				continue;
			buf[i] = substitutes[s];
			assert_same_decoding(buf, len, t);
		}
	}
}

/* Feed every file of dir whose name starts with prefix; returns how many there were. */
static size_t feed_directory(const char *dir, const char *prefix, struct tally *t)
{
	const char *srcdir = getenv("VB_SRCDIR");
	char path[4096];
	struct dirent *e;
	size_t n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "%s/%s", srcdir ? srcdir : ".", dir);
	d = opendir(path);
	ck_assert_msg(d != NULL, "cannot open %s (run from the repository root or set VB_SRCDIR)",
		      path);
	while ((e = readdir(d))) {
		static char text[2 * VB_MAX_REQUEST_SIZE];
		size_t len;
		FILE *f;

		if (e->d_name[0] == '.' || strncmp(e->d_name, prefix, strlen(prefix)) != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s/%s", srcdir ? srcdir : ".", dir, e->d_name);
		f = fopen(path, "rb");
		ck_assert_msg(f != NULL, "cannot open %s", path);
		len = fread(text, 1, sizeof(text), f);
		fclose(f);
		assert_same_decoding_of_variants(text, len, t);
		n++;
	}
	closedir(d);
	return n;
}

START_TEST(test_decoder_matches_json_c_decoder_on_fuzz_corpus_and_its_variants)
{
	struct tally t = {0};

	ck_assert_uint_ge(feed_directory("tests/fuzz/corpus/request", "", &t), 50);
	ck_assert_uint_ge(feed_directory("tests/fuzz/regressions", "request-", &t), 5);
	/* the corpus exercises both outcomes, or the comparison proves little */
	ck_assert_uint_ge(t.accepted, 500);
	ck_assert_uint_ge(t.refused, 5000);
}
END_TEST

START_TEST(test_decoder_matches_json_c_decoder_on_edge_cases_and_their_variants)
{
	struct tally t = {0};

	for (size_t i = 0; i < sizeof(edge_cases) / sizeof(edge_cases[0]); i++)
		assert_same_decoding_of_variants(edge_cases[i], strlen(edge_cases[i]), &t);
	ck_assert_uint_ge(t.accepted, 500);
}
END_TEST

START_TEST(test_decoder_reads_escaped_names_and_values_decoded)
{
	struct vb_request r;
	struct vb_decode_error err;
	const char *text = "{\"\\u0069d\":5,\"op\":\"hello\",\"version\":1,"
			   "\"client\":\"\\u00e9\\ud800\\\"\\n\"}";

	ck_assert_int_eq(vb_request_decode(text, strlen(text), &r, &err), 0);
	ck_assert_uint_eq(r.id, 5);
	/* a lone surrogate reads as U+FFFD, as json-c wrote it */
	ck_assert_str_eq(r.client, "\xc3\xa9\xef\xbf\xbd\"\n");
}
END_TEST

START_TEST(test_decoder_reads_integers_exactly_and_refuses_fractions_and_exponents)
{
	struct vb_request r;
	struct vb_decode_error err;
	const char *max = "{\"id\":1,\"op\":\"lease\",\"group\":1,\"memlock\":9223372036854775807}";
	const char *over =
		"{\"id\":1,\"op\":\"lease\",\"group\":1,\"memlock\":9223372036854775808}";
	const char *exponent = "{\"id\":1e0,\"op\":\"list\"}";

	ck_assert_int_eq(vb_request_decode(max, strlen(max), &r, &err), 0);
	ck_assert_uint_eq(r.memlock, 9223372036854775807ull);
	ck_assert_int_eq(vb_request_decode(over, strlen(over), &r, &err), -EBADMSG);
	ck_assert_str_eq(err.message, "\"memlock\" must be between 1 and 9223372036854775807");
	ck_assert_int_eq(vb_request_decode(exponent, strlen(exponent), &r, &err), -EBADMSG);
	ck_assert_str_eq(err.message, "\"id\" must be an integer");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("request_decode");
	TCase *t = tcase_create("parity");
	SRunner *sr;
	int failed;

	tcase_set_timeout(t, 120);
	tcase_add_test(t, test_decoder_matches_json_c_decoder_on_fuzz_corpus_and_its_variants);
	tcase_add_test(t, test_decoder_matches_json_c_decoder_on_edge_cases_and_their_variants);
	tcase_add_test(t, test_decoder_reads_escaped_names_and_values_decoded);
	tcase_add_test(t, test_decoder_reads_integers_exactly_and_refuses_fractions_and_exponents);
	suite_add_tcase(s, t);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
