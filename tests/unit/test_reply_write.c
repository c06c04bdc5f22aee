/* SPDX-License-Identifier: MIT */
/*
 * The broker writes hello, lease, release and error replies straight into the packet
 * (vb_*_reply_write). These tests pin that a client sees the same bytes as when each
 * reply was a json-c tree: for representative replies (strings that need escapes, UTF-8,
 * empty nullable members, every optional member, numbers at their limits) and for
 * random ones, the writer's bytes are json-c's own serialisation of the encoder's tree
 * (json_object_to_json_string_ext, PLAIN | NOSLASHESCAPE) and vb_packet_serialize's, and
 * a buffer one byte short is -EMSGSIZE for both.
 */
#include "protocol/message.h"
#include "protocol/reply.h"
#include "protocol/wire.h"

#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char written[VB_MAX_PACKET_SIZE], serialized[VB_MAX_PACKET_SIZE];

/* Compare what write gave (k, len) with the encoder's tree o (taken). */
static void assert_same_bytes(int k, size_t len, struct json_object *o, const char *what)
{
	size_t json_c_len, serialized_len;
	const char *json_c;

	ck_assert_ptr_nonnull(o);
	ck_assert_msg(k == 0, "%s: the writer failed: %d", what, k);
	json_c = json_object_to_json_string_length(
		o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &json_c_len);
	ck_assert_msg(len == json_c_len && memcmp(written, json_c, len) == 0,
		      "%s: the writer wrote\n%.*s\njson-c writes\n%s", what, (int)len, written,
		      json_c);
	ck_assert_int_eq(vb_packet_serialize(o, serialized, sizeof(serialized), &serialized_len),
			 0);
	ck_assert_msg(serialized_len == len && memcmp(serialized, written, len) == 0,
		      "%s: vb_packet_serialize disagrees", what);
	json_object_put(o);
}

/* Strings a client may see in a reply field, each shorter than VB_ADDRESS_MAX... */
static const char *const short_strings[] = {
	"",
	"a",
	"0000:01:00.0",
	"\"",
	"\\",
	"/",
	"\b\f\n\r\t",
	"\x01\x1f\x7f",
	"\xc3\xa9",
	"\xe2\x82\xac",
	"\xf0\x9f\x98\x80",
	"\xff\xfe",
	"%s%n",
};
/* ...and longer ones, up to a VB_NAME_MAX field. */
static const char *const name_strings[] = {
	"vfio-brokerd 1.2.3",
	"bench",
	"a rule \"quoted\" with \\ and /slashes/ and\ttabs\nand newlines",
	"\xc3\xa9t\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \x01\x02\x03",
	"123456789012345678901234567890123456789012345678901234567890123",
};

static void fill(char *dst, size_t size, const char *src)
{
	snprintf(dst, size, "%s", src);
}

START_TEST(test_hello_reply_writer_writes_json_c_bytes)
{
	const uint32_t ids[] = {0, 1, 4096, UINT32_MAX};

	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
		for (size_t s = 0; s < sizeof(name_strings) / sizeof(name_strings[0]) + 1; s++) {
			struct vb_hello_reply r = {.version = ids[i] ? 1 : UINT32_MAX,
						   .uid = ids[(i + s) % 4],
						   .admin = s % 2};
			size_t len = 0;
			int k;

			fill(r.server, sizeof(r.server),
			     s < sizeof(name_strings) / sizeof(name_strings[0]) ? name_strings[s]
										: "");
			k = vb_hello_reply_write(ids[i], &r, written, sizeof(written), &len);
			assert_same_bytes(k, len, vb_hello_reply_encode(ids[i], &r), r.server);
		}
}
END_TEST

START_TEST(test_lease_reply_writer_writes_json_c_bytes_on_both_paths)
{
	const uint64_t memlocks[] = {0,		1, 1ull << 30, INT64_MAX, (uint64_t)INT64_MAX + 1,
				     UINT64_MAX};
	const uint32_t groups[] = {0, 7, VB_MAX_GROUP_ID};

	for (size_t m = 0; m < sizeof(memlocks) / sizeof(memlocks[0]); m++)
		for (size_t s = 0; s < sizeof(name_strings) / sizeof(name_strings[0]) + 1; s++)
			for (size_t n = 0; n <= VB_MAX_CDEV_DEVICES + 1; n += 4) {
				struct vb_lease_reply r = {
					.group = groups[(m + s) % 3],
					.memlock = memlocks[m],
					.path = n ? VB_PATH_CDEV : VB_PATH_GROUP,
					.iommufd = (uint32_t)(s % 2),
					.iommufd_reused = m % 2,
					.n_devices = n > 1 ? n - 1 : n,
				};
				size_t len = 0;
				int k;

				if (s < sizeof(name_strings) / sizeof(name_strings[0]))
					fill(r.rule, sizeof(r.rule), name_strings[s]);
				for (size_t d = 0; d < VB_MAX_CDEV_DEVICES; d++) {
					fill(r.devices[d].address, sizeof(r.devices[d].address),
					     short_strings[(d + s) % (sizeof(short_strings) /
								      sizeof(short_strings[0]))]);
					r.devices[d].fd = (uint32_t)(d + 1);
				}
				k = vb_lease_reply_write(9, &r, written, sizeof(written), &len);
				assert_same_bytes(k, len, vb_lease_reply_encode(9, &r), r.rule);
			}
}
END_TEST

START_TEST(test_release_reply_writer_writes_json_c_bytes)
{
	const uint32_t groups[] = {0, 7, VB_MAX_GROUP_ID, UINT32_MAX};

	for (size_t g = 0; g < sizeof(groups) / sizeof(groups[0]); g++)
		for (int released = 0; released < 2; released++) {
			struct vb_release_reply r = {.group = groups[g], .released = released};
			size_t len = 0;
			int k = vb_release_reply_write(groups[3 - g], &r, written, sizeof(written),
						       &len);

			assert_same_bytes(k, len, vb_release_reply_encode(groups[3 - g], &r),
					  "release");
		}
}
END_TEST

START_TEST(test_error_reply_writer_writes_json_c_bytes_with_every_detail)
{
	/* each detail alone, then all of them together */
	for (unsigned detail = 0; detail <= 7; detail++)
		for (unsigned code = 0; code <= _VB_STATUS_MAX; code++)
			for (int has_id = 0; has_id < 2; has_id++) {
				struct vb_error_reply e = {.code = (enum vb_status)code};
				bool all = detail == 7;
				size_t len = 0;
				int k;

				fill(e.message, sizeof(e.message),
				     name_strings[code % (sizeof(name_strings) /
							  sizeof(name_strings[0]))]);
				e.has_uid = all || detail == 1;
				e.uid = UINT32_MAX - code;
				e.has_container = all || detail == 2;
				e.container = code;
				e.has_retry_after_ms = all || detail == 3;
				e.retry_after_ms = 1000;
				e.has_supported = all || detail == 4;
				e.supported[0] = 1;
				e.supported[1] = UINT32_MAX;
				e.has_memlock = all || detail == 5;
				e.memlock = code % 2 ? UINT64_MAX : 1ull << 20;
				e.asked = (uint64_t)INT64_MAX + code;
				e.has_denial = all || detail == 6;
				fill(e.device, sizeof(e.device),
				     code % 3 ? short_strings[code % (sizeof(short_strings) /
								      sizeof(short_strings[0]))]
					      : "");
				fill(e.rule, sizeof(e.rule),
				     code % 2 ? "" : name_strings[code % 5]);
				fill(e.reason, sizeof(e.reason), name_strings[(code + 2) % 5]);
				k = vb_error_reply_write(has_id, 77, &e, written, sizeof(written),
							 &len);
				assert_same_bytes(k, len, vb_error_reply_encode(has_id, 77, &e),
						  e.message);
			}
}
END_TEST

/* A small deterministic generator: the same replies on every run. */
static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t next_random(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 16);
}

/* Random bytes 1..255 (no NUL, which ends a C string), terminated, shorter than size. */
static void random_string(char *dst, size_t size)
{
	size_t n = next_random() % size;

	for (size_t i = 0; i < n; i++)
		dst[i] = (char)(1 + next_random() % 255);
	dst[n] = '\0';
}

START_TEST(test_writers_write_json_c_bytes_for_random_strings)
{
	for (int i = 0; i < 3000; i++) {
		struct vb_error_reply e = {.code = (enum vb_status)(next_random() % 13),
					   .has_denial = true,
					   .has_uid = i % 2,
					   .uid = next_random()};
		struct vb_hello_reply h = {.version = next_random(), .uid = next_random()};
		struct vb_lease_reply l = {.group = next_random(),
					   .memlock = (uint64_t)next_random() << (i % 33),
					   .path = i % 3 ? VB_PATH_GROUP : VB_PATH_CDEV,
					   .n_devices = 1 + next_random() % VB_MAX_CDEV_DEVICES};
		size_t len = 0;
		int k;

		random_string(e.message, sizeof(e.message));
		random_string(e.device, sizeof(e.device));
		random_string(e.rule, sizeof(e.rule));
		random_string(e.reason, sizeof(e.reason));
		random_string(h.server, sizeof(h.server));
		random_string(l.rule, sizeof(l.rule));
		for (size_t d = 0; d < l.n_devices; d++) {
			random_string(l.devices[d].address, sizeof(l.devices[d].address));
			l.devices[d].fd = next_random() % VB_MAX_FDS;
		}
		k = vb_error_reply_write(i % 5, (uint32_t)i, &e, written, sizeof(written), &len);
		assert_same_bytes(k, len, vb_error_reply_encode(i % 5, (uint32_t)i, &e), "random");
		k = vb_hello_reply_write((uint32_t)i, &h, written, sizeof(written), &len);
		assert_same_bytes(k, len, vb_hello_reply_encode((uint32_t)i, &h), "random");
		k = vb_lease_reply_write((uint32_t)i, &l, written, sizeof(written), &len);
		assert_same_bytes(k, len, vb_lease_reply_encode((uint32_t)i, &l), "random");
	}
}
END_TEST

enum kind { ERROR_REPLY, HELLO_REPLY, LEASE_REPLY, RELEASE_REPLY };

static int write_reply(enum kind kind, const void *r, size_t size, size_t *len)
{
	switch (kind) {
	case ERROR_REPLY:
		return vb_error_reply_write(true, 3, r, written, size, len);
	case HELLO_REPLY:
		return vb_hello_reply_write(3, r, written, size, len);
	case LEASE_REPLY:
		return vb_lease_reply_write(3, r, written, size, len);
	case RELEASE_REPLY:
		return vb_release_reply_write(3, r, written, size, len);
	}
	return -EINVAL;
}

static struct json_object *encode_reply(enum kind kind, const void *r)
{
	switch (kind) {
	case ERROR_REPLY:
		return vb_error_reply_encode(true, 3, r);
	case HELLO_REPLY:
		return vb_hello_reply_encode(3, r);
	case LEASE_REPLY:
		return vb_lease_reply_encode(3, r);
	case RELEASE_REPLY:
		return vb_release_reply_encode(3, r);
	}
	return NULL;
}

/* Both refuse a buffer one byte short; the writer fills an exact one. */
static void assert_size_limit(enum kind kind, const void *r)
{
	struct json_object *o = encode_reply(kind, r);
	size_t exact = 0, len = 0;

	ck_assert_int_eq(write_reply(kind, r, sizeof(written), &exact), 0);
	ck_assert_int_eq(write_reply(kind, r, exact - 1, &len), -EMSGSIZE);
	ck_assert_int_eq(vb_packet_serialize(o, serialized, exact - 1, &len), -EMSGSIZE);
	ck_assert_int_eq(vb_packet_serialize(o, serialized, exact, &len), 0);
	ck_assert_int_eq(write_reply(kind, r, exact, &len), 0);
	ck_assert_uint_eq(len, exact);
	json_object_put(o);
}

START_TEST(test_writers_refuse_a_buffer_one_byte_short_as_serialize_does)
{
	struct vb_error_reply e = {.code = VB_E_DENIED, .has_denial = true};
	struct vb_hello_reply h = {.version = 1, .server = "vfio-brokerd", .uid = 2000};
	struct vb_lease_reply l = {.group = 7, .rule = "bench"};
	struct vb_release_reply r = {.group = 7, .released = true};

	fill(e.message, sizeof(e.message), "no rule allows \"you\"\n");
	fill(e.reason, sizeof(e.reason), "\x01 needs \\u0001");
	assert_size_limit(ERROR_REPLY, &e);
	assert_size_limit(HELLO_REPLY, &h);
	assert_size_limit(LEASE_REPLY, &l);
	assert_size_limit(RELEASE_REPLY, &r);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("reply_write");
	TCase *t = tcase_create("json-c bytes");
	SRunner *sr;
	int failed;

	tcase_add_test(t, test_hello_reply_writer_writes_json_c_bytes);
	tcase_add_test(t, test_lease_reply_writer_writes_json_c_bytes_on_both_paths);
	tcase_add_test(t, test_release_reply_writer_writes_json_c_bytes);
	tcase_add_test(t, test_error_reply_writer_writes_json_c_bytes_with_every_detail);
	tcase_add_test(t, test_writers_write_json_c_bytes_for_random_strings);
	tcase_add_test(t, test_writers_refuse_a_buffer_one_byte_short_as_serialize_does);
	suite_add_tcase(s, t);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
