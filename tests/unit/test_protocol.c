/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of protocol/: the strict request decoder, the encoder both
 * sides share, reply/event decoding and the SCM_RIGHTS framing.
 */
#include "protocol/message.h"
#include "protocol/reply.h"
#include "protocol/wire.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int decode(const char *text, struct vb_request *r, struct vb_decode_error *err)
{
	return vb_request_decode(text, strlen(text), r, err);
}

static void assert_bad(const char *text, const char *needle)
{
	struct vb_request r;
	struct vb_decode_error err;

	ck_assert_int_eq(decode(text, &r, &err), -EBADMSG);
	ck_assert_int_eq(err.code, VB_E_BAD_REQUEST);
	ck_assert_msg(strstr(err.message, needle), "message \"%s\" lacks \"%s\" for %s",
		      err.message, needle, text);
}

START_TEST(test_hello_decodes_version_and_client)
{
	struct vb_request r;
	struct vb_decode_error err;

	ck_assert_int_eq(
		decode("{\"id\":1,\"op\":\"hello\",\"version\":1,\"client\":\"t\"}", &r, &err), 0);
	ck_assert_int_eq(r.op, VB_OP_HELLO);
	ck_assert_uint_eq(r.id, 1);
	ck_assert_uint_eq(r.version, 1);
	ck_assert_str_eq(r.client, "t");
}
END_TEST

START_TEST(test_lease_by_group_and_by_device)
{
	struct vb_request r;
	struct vb_decode_error err;

	ck_assert_int_eq(decode("{\"id\":7,\"op\":\"lease\",\"group\":12}", &r, &err), 0);
	ck_assert_int_eq(r.group, 12);
	ck_assert_str_eq(r.device, "");
	ck_assert_int_eq(
		decode("{\"id\":7,\"op\":\"lease\",\"device\":\"0000:0A:1f.7\"}", &r, &err), 0);
	ck_assert_int_eq(r.group, -1);
	ck_assert_str_eq(r.device, "0000:0a:1f.7");
}
END_TEST

START_TEST(test_lease_needs_exactly_one_of_group_and_device)
{
	assert_bad("{\"id\":1,\"op\":\"lease\"}", "exactly one");
	assert_bad("{\"id\":1,\"op\":\"lease\",\"group\":1,\"device\":\"0000:01:00.0\"}",
		   "exactly one");
}
END_TEST

START_TEST(test_malformed_json_is_bad_request)
{
	assert_bad("{\"id\":1,", "not a JSON object");
	assert_bad("garbage", "not a JSON object");
	assert_bad("{\"id\":1,\"op\":\"list\"} trailing", "not a JSON object");
	assert_bad("[1,2,3]", "must be a JSON object");
}
END_TEST

START_TEST(test_wrong_types_are_bad_request)
{
	assert_bad("{\"id\":\"1\",\"op\":\"list\"}", "\"id\" must be an integer");
	assert_bad("{\"id\":1,\"op\":7}", "\"op\" must be a string");
	assert_bad("{\"id\":1,\"op\":\"lease\",\"group\":\"7\"}", "\"group\" must be an integer");
	assert_bad("{\"id\":1,\"op\":\"lease\",\"group\":7.5}", "\"group\" must be an integer");
	assert_bad("{\"id\":1,\"op\":\"merge\",\"groups\":7}", "must be an array");
}
END_TEST

START_TEST(test_huge_numbers_are_out_of_range)
{
	assert_bad("{\"id\":1,\"op\":\"lease\",\"group\":2147483648}", "between");
	assert_bad("{\"id\":1,\"op\":\"lease\",\"group\":-1}", "between");
	assert_bad("{\"id\":18446744073709551616,\"op\":\"list\"}", "");
	assert_bad("{\"id\":99999999999999999999999,\"op\":\"list\"}", "");
	assert_bad("{\"id\":4294967296,\"op\":\"list\"}", "between");
}
END_TEST

START_TEST(test_deep_nesting_is_refused)
{
	char buf[512] = "{\"id\":1,\"op\":\"list\",\"x\":";
	size_t n = strlen(buf);

	for (int i = 0; i < 40; i++)
		buf[n++] = '[';
	for (int i = 0; i < 40; i++)
		buf[n++] = ']';
	buf[n++] = '}';
	buf[n] = '\0';
	assert_bad(buf, "not a JSON object");
}
END_TEST

/* The same request spelled with and without escapes decodes the same, and is refused the same. */
START_TEST(test_escaped_and_plain_spellings_decode_the_same)
{
	struct vb_request a, b;
	struct vb_decode_error err;

	ck_assert_int_eq(
		decode("{\"id\":9,\"op\":\"hello\",\"version\":1,\"client\":\"x y\"}", &a, &err),
		0);
	ck_assert_int_eq(decode("{\"\\u0069d\":9,\"op\":\"h\\u0065llo\",\"version\":1,"
				"\"client\":\"x\\u0020y\"}",
				&b, &err),
			 0);
	ck_assert_uint_eq(a.id, b.id);
	ck_assert_int_eq(a.op, b.op);
	ck_assert_uint_eq(a.version, b.version);
	ck_assert_str_eq(a.client, b.client);

	assert_bad("{\"id\":1,\"op\":\"list\",\"id\":2}", "must not repeat a key");
	assert_bad("{\"id\":1,\"op\":\"list\",\"\\u0069d\":2}", "must not repeat a key");
	assert_bad("{\"id\":1,\"op\":\"lease\",\"group\":9223372036854775808}", "between");
	assert_bad("{\"id\":1,\"op\":\"lease\",\"group\":-9223372036854775809}", "between");
	assert_bad("{\"id\":1,\"op\":\"lease\",\"group\":1e0}", "must be an integer");
	assert_bad("{\"id\":1,\"op\":\"lease\",\"group\":true}", "must be an integer");
	assert_bad("{\"id\":1,\"op\":\"lease\",\"group\":null}", "must be an integer");
	assert_bad("{\"id\":1,\"op\":\"unquarantine\",\"group\":1,\"restore\":1}", "boolean");
	assert_bad("{\"id\":1,\"op\":\"merge\",\"groups\":1}", "must be an array");
	assert_bad("{\"id\":1,\"op\":\"list\",}", "not a JSON object");
	assert_bad("{\"id\":1,\"op\":\"list\"}}", "not a JSON object");
	assert_bad("{\"id\":1,\"op\":\"list\",\"a\":1,\"b\":2,\"c\":3,\"d\":4,\"e\":5,\"f\":6,"
		   "\"g\":7}",
		   "takes no \"a\"");
	ck_assert_int_eq(decode(" {\"id\" : 4294967295 ,\"op\":\"unquarantine\",\"group\":0,"
				"\"restore\":true}\n",
				&a, &err),
			 0);
	ck_assert_uint_eq(a.id, 4294967295u);
	ck_assert(a.restore);
}
END_TEST

/*
 * Requests go through common/json_strict before json-c: what json-c lets through is refused
 * with the scan's reason, duplicates at any depth too, and JSON that is not an object is
 * named as such, even where json-c would call it incomplete (a bare number at the end).
 */
START_TEST(test_json_c_leniencies_are_refused_with_the_scans_reason)
{
	assert_bad("{\"id\":01,\"op\":\"list\"}",
		   "not a JSON object: numbers must not have leading zeros");
	assert_bad("{'id':1,\"op\":\"list\"}",
		   "not a JSON object: names and strings must be in double quotes");
	assert_bad("{\"id\":1,\"op\":\"hello\",\"version\":1,\"client\":\"a\tb\"}",
		   "not a JSON object: a control character in a string must be escaped");
	assert_bad("{\"id\":1,\"op\":\"hello\",\"version\":1,\"client\":\"\xc0\xaf\"}",
		   "not a JSON object: a string is not valid UTF-8");
	assert_bad("{\"id\":2,\"op\\u0000x\":\"list\",\"op\":\"list\"}",
		   "not a JSON object: \\u0000 is not allowed");
	assert_bad("{\"id\":1,\"op\":\"lease\",\"group\":1.}", "not a JSON object");
	assert_bad("{\"id\":1,\"op\":\"lease\",\"group\":NaN}", "not a JSON object");
	assert_bad("{\"id\":1,\"op\":\"list\",\"x\":{\"a\":1,\"a\":2}}", "must not repeat a key");
	assert_bad("-1", "a request must be a JSON object");
	assert_bad(" true ", "a request must be a JSON object");
	assert_bad("\"x\"", "a request must be a JSON object");
	assert_bad("[{\"a\":1,\"a\":2}]", "a request must be a JSON object");
}
END_TEST

START_TEST(test_unknown_op_and_unknown_key_are_refused)
{
	assert_bad("{\"id\":1,\"op\":\"format-disk\"}", "unknown op");
	assert_bad("{\"id\":1,\"op\":\"list\",\"all\":true}", "takes no \"all\"");
	assert_bad("{\"id\":1,\"op\":\"release\",\"device\":\"0000:01:00.0\"}", "takes no");
}
END_TEST

START_TEST(test_id_is_kept_for_errors_after_it_was_read)
{
	struct vb_request r;
	struct vb_decode_error err;

	ck_assert_int_eq(decode("{\"id\":42,\"op\":\"nope\"}", &r, &err), -EBADMSG);
	ck_assert(err.has_id);
	ck_assert_uint_eq(err.id, 42);
	ck_assert_int_eq(decode("{\"op\":\"list\"}", &r, &err), -EBADMSG);
	ck_assert(!err.has_id);
}
END_TEST

START_TEST(test_nul_bytes_and_oversized_requests_are_refused)
{
	struct vb_request r;
	struct vb_decode_error err;
	static const char with_nul[] = "{\"id\":1,\"op\":\"list\"}\0";
	char *big = malloc(VB_MAX_REQUEST_SIZE + 2);

	ck_assert_int_eq(vb_request_decode(with_nul, sizeof(with_nul) - 1, &r, &err), -EBADMSG);
	ck_assert(strstr(err.message, "NUL"));
	memset(big, ' ', VB_MAX_REQUEST_SIZE + 1);
	memcpy(big, "{\"id\":1,\"op\":\"list\"}", 20);
	ck_assert_int_eq(vb_request_decode(big, VB_MAX_REQUEST_SIZE + 1, &r, &err), -EBADMSG);
	free(big);
}
END_TEST

START_TEST(test_merge_groups_are_validated)
{
	struct vb_request r;
	struct vb_decode_error err;

	ck_assert_int_eq(decode("{\"id\":1,\"op\":\"merge\",\"groups\":[7,8]}", &r, &err), 0);
	ck_assert_uint_eq(r.n_groups, 2);
	ck_assert_uint_eq(r.groups[1], 8);
	assert_bad("{\"id\":1,\"op\":\"merge\",\"groups\":[7,7]}", "listed twice");
	assert_bad("{\"id\":1,\"op\":\"merge\",\"groups\":[]}", "1 to 16");
	assert_bad("{\"id\":1,\"op\":\"merge\",\"groups\":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,"
		   "17]}",
		   "1 to 16");
	assert_bad("{\"id\":1,\"op\":\"merge\",\"groups\":[\"7\"]}", "group ids");
}
END_TEST

START_TEST(test_remove_modes)
{
	struct vb_request r;
	struct vb_decode_error err;

	ck_assert_int_eq(
		decode("{\"id\":1,\"op\":\"remove\",\"group\":3,\"mode\":\"hard\"}", &r, &err), 0);
	ck_assert_int_eq(r.mode, VB_REMOVE_HARD);
	ck_assert_int_eq(decode("{\"id\":1,\"op\":\"remove\",\"group\":3,\"mode\":\"soft\","
				"\"timeout_ms\":1500}",
				&r, &err),
			 0);
	ck_assert_int_eq(r.mode, VB_REMOVE_SOFT);
	ck_assert_uint_eq(r.timeout_ms, 1500);
	assert_bad("{\"id\":1,\"op\":\"remove\",\"group\":3,\"mode\":\"gentle\"}", "\"soft\"");
	assert_bad("{\"id\":1,\"op\":\"remove\",\"group\":3}", "needs \"mode\"");
	assert_bad("{\"id\":1,\"op\":\"remove\",\"group\":3,\"mode\":\"soft\",\"timeout_ms\":"
		   "3600001}",
		   "between");
}
END_TEST

START_TEST(test_address_parse_is_strict)
{
	char out[VB_ADDRESS_MAX];

	ck_assert_int_eq(vb_address_parse("0000:01:00.0", out), 0);
	ck_assert_str_eq(out, "0000:01:00.0");
	ck_assert_int_eq(vb_address_parse("ABCD:EF:1F.7", out), 0);
	ck_assert_str_eq(out, "abcd:ef:1f.7");
	ck_assert_int_eq(vb_address_parse("0000:01:20.0", out), -EINVAL); /* device > 0x1f */
	ck_assert_int_eq(vb_address_parse("0000:01:00.8", out), -EINVAL); /* function > 7 */
	ck_assert_int_eq(vb_address_parse("01:00.0", out), -EINVAL);
	ck_assert_int_eq(vb_address_parse("0000:01:00.0 ", out), -EINVAL);
	ck_assert_int_eq(vb_address_parse("../../../etc", out), -EINVAL);
	ck_assert_int_eq(vb_address_parse("0000:0g:00.0", out), -EINVAL);
}
END_TEST

START_TEST(test_group_parse_is_strict)
{
	uint32_t g;

	ck_assert_int_eq(vb_group_parse("0", &g), 0);
	ck_assert_uint_eq(g, 0);
	ck_assert_int_eq(vb_group_parse("2147483647", &g), 0);
	ck_assert_int_eq(vb_group_parse("2147483648", &g), -EINVAL);
	ck_assert_int_eq(vb_group_parse("007", &g), -EINVAL);
	ck_assert_int_eq(vb_group_parse("-1", &g), -EINVAL);
	ck_assert_int_eq(vb_group_parse("7a", &g), -EINVAL);
	ck_assert_int_eq(vb_group_parse("", &g), -EINVAL);
	ck_assert_int_eq(vb_group_parse("+7", &g), -EINVAL);
}
END_TEST

START_TEST(test_encode_then_decode_round_trips_every_op)
{
	for (int op = 0; op < _VB_OP_MAX; op++) {
		struct vb_request in, out;
		struct vb_decode_error err;
		char buf[VB_MAX_REQUEST_SIZE];
		size_t len;

		vb_request_init(&in, 1000 + op, op);
		in.version = 1;
		in.group = 5;
		in.groups[0] = 5;
		in.groups[1] = 9;
		in.n_groups = 2;
		in.mode = VB_REMOVE_HARD;
		in.timeout_ms = 250;
		in.uid = 2000;
		in.restore = true;
		ck_assert_int_eq(vb_request_encode(&in, buf, sizeof(buf), &len), 0);
		ck_assert_msg(vb_request_decode(buf, len, &out, &err) == 0, "%s: %.*s: %s",
			      vb_op_to_string(op), (int)len, buf, err.message);
		ck_assert_int_eq(out.op, op);
		ck_assert_uint_eq(out.id, 1000 + op);
		if (op == VB_OP_UNQUARANTINE)
			ck_assert(out.restore);
	}
}
END_TEST

START_TEST(test_error_reply_carries_code_message_and_details)
{
	struct vb_error_reply in = {.code = VB_E_BUSY,
				    .message = "held by uid 2000",
				    .has_uid = true,
				    .uid = 2000},
			      out;
	struct json_object *o = vb_error_reply_encode(true, 9, &in);
	struct vb_reply r;
	char text[VB_MAX_PACKET_SIZE];
	size_t len;

	ck_assert_ptr_nonnull(o);
	ck_assert_int_eq(vb_packet_serialize(o, text, sizeof(text), &len), 0);
	ck_assert_int_eq(vb_reply_decode(text, len, &r), 0);
	ck_assert(!r.is_event);
	ck_assert(!r.ok);
	ck_assert_uint_eq(r.id, 9);
	ck_assert_int_eq(r.code, VB_E_BUSY);
	ck_assert_str_eq(r.message, "held by uid 2000");
	ck_assert_int_eq(vb_error_reply_decode(&r, &out), 0);
	ck_assert(out.has_uid);
	ck_assert_uint_eq(out.uid, 2000);
	ck_assert_int_eq(vb_status_to_errno(r.code), -EBUSY);
	vb_reply_done(&r);
	json_object_put(o);
}
END_TEST

START_TEST(test_events_decode_and_unknown_events_are_skippable)
{
	struct vb_event_msg in = {.type = VB_EVENT_REMOVE_REQUESTED, .group = 7}, out;
	struct json_object *o = vb_event_encode(&in);
	struct vb_reply r;
	char text[VB_MAX_PACKET_SIZE];
	size_t len;

	ck_assert_ptr_nonnull(o);
	ck_assert_int_eq(vb_packet_serialize(o, text, sizeof(text), &len), 0);
	ck_assert_int_eq(vb_reply_decode(text, len, &r), 0);
	ck_assert(r.is_event);
	ck_assert_int_eq(r.event, VB_EVENT_REMOVE_REQUESTED);
	ck_assert_int_eq(vb_event_decode(&r, &out), 0);
	ck_assert_uint_eq(out.group, 7);
	vb_reply_done(&r);
	json_object_put(o);
	ck_assert_int_eq(vb_reply_decode("{\"event\":\"party\"}", 17, &r), -ENOMSG);
	ck_assert_int_eq(vb_reply_decode("{\"id\":1}", 8, &r), -EBADMSG);
}
END_TEST

START_TEST(test_group_info_round_trip)
{
	struct vb_device_info devs[2] = {
		{"0000:05:01.0", "8086", "100e", "020000", "vfio-pci"},
		{"0000:05:02.0", "8086", "100e", "020000", ""},
	};
	struct vb_group_info in = {.group = 9,
				   .viable = true,
				   .allowed = false,
				   .held = true,
				   .holder_uid = 2000,
				   .holder_pid = 77,
				   .n_devices = 2,
				   .devices = devs};
	struct vb_group_info out;
	struct json_object *o = vb_group_info_to_json(&in);

	ck_assert_int_eq(vb_group_info_from_json(o, &out), 0);
	ck_assert_uint_eq(out.group, 9);
	ck_assert(out.viable && !out.allowed && out.held);
	ck_assert_uint_eq(out.holder_uid, 2000);
	ck_assert_uint_eq(out.n_devices, 2);
	ck_assert_str_eq(out.devices[1].address, "0000:05:02.0");
	ck_assert_str_eq(out.devices[0].driver, "vfio-pci");
	ck_assert_str_eq(out.devices[1].driver, "");
	vb_group_info_done(&out);
	json_object_put(o);
}
END_TEST

static int count_open_fds(void)
{
	int n = 0;

	for (int fd = 0; fd < 1024; fd++)
		if (fcntl(fd, F_GETFD) >= 0)
			n++;
	return n;
}

START_TEST(test_wire_passes_fds_and_closes_a_flood)
{
	int sv[2], fds[VB_MAX_FDS], flood[200];
	char buf[64];
	size_t len, n_fds;
	unsigned flags;
	int before;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	before = count_open_fds();

	/* One fd arrives intact. */
	int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	ck_assert_int_eq(vb_wire_send(sv[0], "x", 1, &devnull, 1), 0);
	close(devnull);
	ck_assert_int_eq(
		vb_wire_recv(sv[1], buf, sizeof(buf), &len, fds, VB_MAX_FDS, &n_fds, &flags), 0);
	ck_assert_uint_eq(n_fds, 1);
	ck_assert_uint_eq(flags, 0);
	ck_assert(fcntl(fds[0], F_GETFD) & FD_CLOEXEC);
	vb_wire_close_fds(fds, n_fds);

	/* 200 fds: VB_MAX_FDS returned, every other one closed, nothing leaks. */
	for (int i = 0; i < 200; i++)
		flood[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
	{
		union {
			struct cmsghdr align;
			char b[CMSG_SPACE(sizeof(int) * 200)];
		} control = {0};
		struct iovec iov = {.iov_base = "y", .iov_len = 1};
		struct msghdr msg = {.msg_iov = &iov,
				     .msg_iovlen = 1,
				     .msg_control = control.b,
				     .msg_controllen = sizeof(control.b)};
		struct cmsghdr *c = CMSG_FIRSTHDR(&msg);

		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * 200);
		memcpy(CMSG_DATA(c), flood, sizeof(int) * 200);
		ck_assert_int_eq(sendmsg(sv[0], &msg, 0), 1);
	}
	for (int i = 0; i < 200; i++)
		close(flood[i]);
	ck_assert_int_eq(
		vb_wire_recv(sv[1], buf, sizeof(buf), &len, fds, VB_MAX_FDS, &n_fds, &flags), 0);
	ck_assert_uint_eq(n_fds, VB_MAX_FDS);
	ck_assert(flags & VB_WIRE_FDS_DROPPED);
	vb_wire_close_fds(fds, n_fds);
	ck_assert_int_eq(count_open_fds(), before);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

START_TEST(test_wire_reports_truncation_and_end_of_stream)
{
	int sv[2], fds[VB_MAX_FDS];
	char big[8192], buf[100];
	size_t len, n_fds;
	unsigned flags;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	memset(big, 'a', sizeof(big));
	ck_assert_int_eq(vb_wire_send(sv[0], big, sizeof(big), NULL, 0), 0);
	ck_assert_int_eq(
		vb_wire_recv(sv[1], buf, sizeof(buf), &len, fds, VB_MAX_FDS, &n_fds, &flags), 0);
	ck_assert(flags & VB_WIRE_TRUNCATED);
	close(sv[0]);
	ck_assert_int_eq(
		vb_wire_recv(sv[1], buf, sizeof(buf), &len, fds, VB_MAX_FDS, &n_fds, &flags),
		-ECONNRESET);
	close(sv[1]);
	ck_assert_int_eq(vb_wire_send(sv[1], "x", 1, NULL, 0), -EBADF);
	ck_assert_int_eq(vb_wire_send(3, big, VB_MAX_PACKET_SIZE + 1, NULL, 0), -EMSGSIZE);
}
END_TEST

static Suite *protocol_suite(void)
{
	Suite *s = suite_create("protocol");
	TCase *t = tcase_create("decode");

	tcase_add_test(t, test_hello_decodes_version_and_client);
	tcase_add_test(t, test_lease_by_group_and_by_device);
	tcase_add_test(t, test_lease_needs_exactly_one_of_group_and_device);
	tcase_add_test(t, test_malformed_json_is_bad_request);
	tcase_add_test(t, test_wrong_types_are_bad_request);
	tcase_add_test(t, test_huge_numbers_are_out_of_range);
	tcase_add_test(t, test_deep_nesting_is_refused);
	tcase_add_test(t, test_escaped_and_plain_spellings_decode_the_same);
	tcase_add_test(t, test_json_c_leniencies_are_refused_with_the_scans_reason);
	tcase_add_test(t, test_unknown_op_and_unknown_key_are_refused);
	tcase_add_test(t, test_id_is_kept_for_errors_after_it_was_read);
	tcase_add_test(t, test_nul_bytes_and_oversized_requests_are_refused);
	tcase_add_test(t, test_merge_groups_are_validated);
	tcase_add_test(t, test_remove_modes);
	tcase_add_test(t, test_address_parse_is_strict);
	tcase_add_test(t, test_group_parse_is_strict);
	tcase_add_test(t, test_encode_then_decode_round_trips_every_op);
	suite_add_tcase(s, t);

	t = tcase_create("replies");
	tcase_add_test(t, test_error_reply_carries_code_message_and_details);
	tcase_add_test(t, test_events_decode_and_unknown_events_are_skippable);
	tcase_add_test(t, test_group_info_round_trip);
	suite_add_tcase(s, t);

	t = tcase_create("wire");
	tcase_add_test(t, test_wire_passes_fds_and_closes_a_flood);
	tcase_add_test(t, test_wire_reports_truncation_and_end_of_stream);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(protocol_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
