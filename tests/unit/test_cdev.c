/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the cdev path's pieces that need no broker: the "path" of a
 * lease request, the cdev lease reply and the list's per-device paths
 * (protocol/), and the placeholders of `vfioctl run --cdev`
 * (client/vfioctl_placeholder.c), whose exact rule vfioctl(1) states.
 */
#include "client/vfioctl_placeholder.c"
#include "protocol/message.h"
#include "protocol/reply.h"
#include "protocol/wire.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the request ---- */

static int decode(const char *text, struct vb_request *r, struct vb_decode_error *err)
{
	return vb_request_decode(text, strlen(text), r, err);
}

START_TEST(test_a_lease_without_path_is_the_group_path_and_is_encoded_without_one)
{
	struct vb_request r;
	struct vb_decode_error err;
	char buf[256];
	size_t len;

	ck_assert_int_eq(decode("{\"id\":1,\"op\":\"lease\",\"group\":7}", &r, &err), 0);
	ck_assert_int_eq(r.path, VB_PATH_GROUP);
	ck_assert_int_eq(vb_request_encode(&r, buf, sizeof(buf), &len), 0);
	buf[len] = '\0';
	ck_assert_str_eq(buf, "{\"id\":1,\"op\":\"lease\",\"group\":7}");
}
END_TEST

START_TEST(test_a_cdev_lease_round_trips_with_its_path)
{
	struct vb_request r, back;
	struct vb_decode_error err;
	char buf[256];
	size_t len;

	vb_request_init(&r, 3, VB_OP_LEASE);
	snprintf(r.device, sizeof(r.device), "0000:00:03.0");
	r.path = VB_PATH_CDEV;
	ck_assert_int_eq(vb_request_encode(&r, buf, sizeof(buf), &len), 0);
	buf[len] = '\0';
	ck_assert_str_eq(
		buf, "{\"id\":3,\"op\":\"lease\",\"device\":\"0000:00:03.0\",\"path\":\"cdev\"}");
	ck_assert_int_eq(decode(buf, &back, &err), 0);
	ck_assert_int_eq(back.path, VB_PATH_CDEV);
	ck_assert_str_eq(back.device, "0000:00:03.0");
}
END_TEST

START_TEST(test_a_path_other_than_group_or_cdev_is_a_bad_request)
{
	static const char *const bad[] = {
		"{\"id\":1,\"op\":\"lease\",\"group\":7,\"path\":\"iommufd\"}",
		"{\"id\":1,\"op\":\"lease\",\"group\":7,\"path\":\"CDEV\"}",
		"{\"id\":1,\"op\":\"lease\",\"group\":7,\"path\":1}",
		"{\"id\":1,\"op\":\"lease\",\"group\":7,\"path\":null}",
		/* path belongs to lease only */
		"{\"id\":1,\"op\":\"release\",\"group\":7,\"path\":\"cdev\"}",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct vb_request r;
		struct vb_decode_error err = {0};

		ck_assert_msg(decode(bad[i], &r, &err) == -EBADMSG, "%s was taken", bad[i]);
		ck_assert_int_eq(err.code, VB_E_BAD_REQUEST);
	}
}
END_TEST

START_TEST(test_unsupported_is_an_error_code_with_eopnotsupp)
{
	ck_assert_str_eq(vb_status_to_string(VB_E_UNSUPPORTED), "unsupported");
	ck_assert_int_eq(vb_status_from_string("unsupported"), VB_E_UNSUPPORTED);
	ck_assert_int_eq(vb_status_to_errno(VB_E_UNSUPPORTED), -EOPNOTSUPP);
}
END_TEST

/* ---- the reply ---- */

static char *serialize(struct json_object *obj)
{
	static char text[VB_MAX_PACKET_SIZE + 1];
	size_t len;

	ck_assert_ptr_nonnull(obj);
	ck_assert_int_eq(vb_packet_serialize(obj, text, sizeof(text) - 1, &len), 0);
	text[len] = '\0';
	json_object_put(obj);
	return text;
}

static int decode_lease(const char *text, struct vb_lease_reply *ret)
{
	struct vb_reply r;
	int k = vb_reply_decode(text, strlen(text), &r);

	if (k == 0) {
		k = vb_lease_reply_decode(&r, ret);
		vb_reply_done(&r);
	}
	return k;
}

#define CDEV_REPLY                                                                                 \
	"{\"id\":3,\"ok\":true,\"group\":9,\"rule\":\"pair\",\"memlock\":null,\"path\":\"cdev\","  \
	"\"iommufd\":0,\"iommufd_reused\":false,\"devices\":[{\"address\":\"0000:05:01.0\","       \
	"\"fd\":1},{\"address\":\"0000:05:02.0\",\"fd\":2}]}"

START_TEST(test_a_cdev_lease_reply_names_the_iommufd_and_each_devices_fd)
{
	struct vb_lease_reply r = {.group = 9,
				   .rule = "pair",
				   .path = VB_PATH_CDEV,
				   .iommufd = 0,
				   .n_devices = 2,
				   .devices = {{"0000:05:01.0", 1}, {"0000:05:02.0", 2}}},
			      back;

	ck_assert_str_eq(serialize(vb_lease_reply_encode(3, &r)), CDEV_REPLY);
	ck_assert_int_eq(decode_lease(CDEV_REPLY, &back), 0);
	ck_assert_int_eq(back.path, VB_PATH_CDEV);
	ck_assert_int_eq(back.n_devices, 2);
	ck_assert_str_eq(back.devices[1].address, "0000:05:02.0");
	ck_assert_uint_eq(back.devices[1].fd, 2);
	ck_assert(!back.iommufd_reused);
}
END_TEST

START_TEST(test_a_group_lease_reply_is_unchanged_and_reads_as_the_group_path)
{
	struct vb_lease_reply r = {.group = 7, .rule = "lab"}, back;
	const char *text = serialize(vb_lease_reply_encode(3, &r));

	ck_assert_str_eq(text,
			 "{\"id\":3,\"ok\":true,\"group\":7,\"rule\":\"lab\",\"memlock\":null}");
	ck_assert_int_eq(decode_lease(text, &back), 0);
	ck_assert_int_eq(back.path, VB_PATH_GROUP);
}
END_TEST

START_TEST(test_a_cdev_reply_with_a_missing_field_or_a_reused_fd_index_is_malformed)
{
	static const char *const bad[] = {
		/* no devices */
		"{\"id\":3,\"ok\":true,\"group\":9,\"rule\":null,\"memlock\":null,\"path\":"
		"\"cdev\","
		"\"iommufd\":0,\"iommufd_reused\":false}",
		/* no iommufd */
		"{\"id\":3,\"ok\":true,\"group\":9,\"rule\":null,\"memlock\":null,\"path\":"
		"\"cdev\","
		"\"iommufd_reused\":false,\"devices\":[{\"address\":\"0000:05:01.0\",\"fd\":1}]}",
		/* a device on the iommufd's index */
		"{\"id\":3,\"ok\":true,\"group\":9,\"rule\":null,\"memlock\":null,\"path\":"
		"\"cdev\","
		"\"iommufd\":0,\"iommufd_reused\":false,\"devices\":[{\"address\":\"0000:05:01.0\","
		"\"fd\":0}]}",
		/* an index beyond what a packet carries */
		"{\"id\":3,\"ok\":true,\"group\":9,\"rule\":null,\"memlock\":null,\"path\":"
		"\"cdev\","
		"\"iommufd\":0,\"iommufd_reused\":false,\"devices\":[{\"address\":\"0000:05:01.0\","
		"\"fd\":16}]}",
		/* no device at all */
		"{\"id\":3,\"ok\":true,\"group\":9,\"rule\":null,\"memlock\":null,\"path\":"
		"\"cdev\","
		"\"iommufd\":0,\"iommufd_reused\":false,\"devices\":[]}",
		/* a path this version does not know */
		"{\"id\":3,\"ok\":true,\"group\":9,\"rule\":null,\"memlock\":null,\"path\":\"x\"}",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct vb_lease_reply r;

		ck_assert_msg(decode_lease(bad[i], &r) == -EBADMSG, "%s was taken", bad[i]);
	}
}
END_TEST

START_TEST(test_a_list_device_says_its_paths_only_when_it_has_some)
{
	struct vb_device_info d[2] = {
		{.address = "0000:01:00.0",
		 .vendor = "8086",
		 .device = "10d3",
		 .class_ = "020000",
		 .driver = "vfio-pci",
		 .paths = 1u << VB_PATH_GROUP | 1u << VB_PATH_CDEV},
		{.address = "0000:03:00.0",
		 .vendor = "8086",
		 .device = "10d3",
		 .class_ = "020000",
		 .driver = "e1000e"},
	};
	struct vb_group_info g = {.group = 7, .n_devices = 2, .devices = d}, back;
	struct json_object *o = vb_group_info_to_json(&g);
	const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);

	ck_assert_msg(strstr(text, "\"driver\":\"vfio-pci\",\"paths\":[\"group\",\"cdev\"]}") &&
			      strstr(text, "\"driver\":\"e1000e\"}"),
		      "%s", text);
	ck_assert_int_eq(vb_group_info_from_json(o, &back), 0);
	ck_assert_uint_eq(back.devices[0].paths, 1u << VB_PATH_GROUP | 1u << VB_PATH_CDEV);
	ck_assert_uint_eq(back.devices[1].paths, 0);
	vb_group_info_done(&back);
	json_object_put(o);
}
END_TEST

/* ---- placeholders ---- */

static const struct placeholder_device one[] = {{"0000:00:03.0", 4}};
static const struct placeholder_device two[] = {{"0000:05:01.0", 4}, {"0000:05:02.0", 5}};

static const char *expand(const struct placeholder_device *devs, size_t n, const char *arg,
			  char *why)
{
	static char out[1024];
	struct placeholder_map m = {.iommufd = 3, .devices = devs, .n_devices = n};
	char *r = NULL;

	why[0] = '\0';
	if (placeholder_expand(arg, &m, &r, why, 512) < 0)
		return NULL;
	snprintf(out, sizeof(out), "%s", r);
	free(r);
	return out;
}

START_TEST(test_placeholders_are_replaced_also_inside_a_longer_argument)
{
	char why[512];

	ck_assert_str_eq(expand(one, 1, "iommufd,id=i0,fd={iommufd}", why), "iommufd,id=i0,fd=3");
	ck_assert_str_eq(expand(one, 1, "vfio-pci,iommufd=i0,fd={fd}", why),
			 "vfio-pci,iommufd=i0,fd=4");
	ck_assert_str_eq(expand(two, 2, "{fd:0000:05:02.0}/{fd:05:01.0}/{iommufd}", why), "5/4/3");
	ck_assert_str_eq(expand(two, 2, "{fd:0000:05:02.0}", why), "5");
	ck_assert_str_eq(expand(one, 1, "{FD:00:03.0}", why), "{FD:00:03.0}");
	ck_assert_str_eq(expand(one, 1, "{fd:0000:00:03.0}{fd}", why), "44");
}
END_TEST

START_TEST(test_braces_that_are_not_placeholders_pass_through)
{
	char why[512];
	static const char *const literal[] = {
		"{\"driver\":\"vfio-pci\",\"id\":\"d0\"}",
		"{}",
		"{ fd }",
		"{fd",
		"fd}",
		"{1fd}",
		"{fd:{iommufd}",
		"a{b{c}}",
		"{-}",
		"",
	};

	for (size_t i = 0; i < sizeof(literal) / sizeof(literal[0]); i++) {
		const char *out = expand(one, 1, literal[i], why);

		/* {fd:{iommufd} holds one placeholder after the text "{fd:". */
		if (strcmp(literal[i], "{fd:{iommufd}") == 0)
			ck_assert_str_eq(out, "{fd:3");
		else if (strcmp(literal[i], "a{b{c}}") == 0)
			ck_assert_msg(!out, "{c} is a placeholder vfioctl does not know");
		else
			ck_assert_msg(out && strcmp(out, literal[i]) == 0, "%s became %s (%s)",
				      literal[i], out ? out : "an error", why);
	}
}
END_TEST

START_TEST(test_fd_alone_needs_exactly_one_device_and_names_the_choices)
{
	char why[512];

	ck_assert_ptr_null(expand(two, 2, "fd={fd}", why));
	ck_assert_str_eq(why, "{fd} stands for the one device of a lease, but this one has 2: name "
			      "one of {fd:0000:05:01.0}, {fd:0000:05:02.0}");
}
END_TEST

START_TEST(test_an_unknown_placeholder_or_device_is_an_error_naming_it)
{
	char why[512];

	ck_assert_ptr_null(expand(one, 1, "fd={iommu}", why));
	ck_assert_msg(strstr(why, "{iommu} is not a placeholder vfioctl knows"), "%s", why);
	ck_assert_ptr_null(expand(one, 1, "{fd:0000:00:04.0}", why));
	ck_assert_str_eq(why, "{fd:0000:00:04.0} names no device of the lease; the choices are "
			      "{fd:0000:00:03.0}");
	ck_assert_ptr_null(expand(one, 1, "{iommufd:0000:00:03.0}", why));
	ck_assert_ptr_null(expand(one, 1, "{fd:nonsense}", why));
}
END_TEST

static Suite *cdev_suite(void)
{
	Suite *s = suite_create("cdev");
	TCase *p = tcase_create("protocol"), *ph = tcase_create("placeholders");

	tcase_add_test(p, test_a_lease_without_path_is_the_group_path_and_is_encoded_without_one);
	tcase_add_test(p, test_a_cdev_lease_round_trips_with_its_path);
	tcase_add_test(p, test_a_path_other_than_group_or_cdev_is_a_bad_request);
	tcase_add_test(p, test_unsupported_is_an_error_code_with_eopnotsupp);
	tcase_add_test(p, test_a_cdev_lease_reply_names_the_iommufd_and_each_devices_fd);
	tcase_add_test(p, test_a_group_lease_reply_is_unchanged_and_reads_as_the_group_path);
	tcase_add_test(p, test_a_cdev_reply_with_a_missing_field_or_a_reused_fd_index_is_malformed);
	tcase_add_test(p, test_a_list_device_says_its_paths_only_when_it_has_some);
	suite_add_tcase(s, p);
	tcase_add_test(ph, test_placeholders_are_replaced_also_inside_a_longer_argument);
	tcase_add_test(ph, test_braces_that_are_not_placeholders_pass_through);
	tcase_add_test(ph, test_fd_alone_needs_exactly_one_device_and_names_the_choices);
	tcase_add_test(ph, test_an_unknown_placeholder_or_device_is_an_error_naming_it);
	suite_add_tcase(s, ph);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(cdev_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
