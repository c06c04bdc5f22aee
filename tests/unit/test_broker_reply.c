/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of broker/reply.c, the one place where the broker builds what it
 * sends: every reply, error and event, sent through a real server and
 * connection (a socket under a temporary directory, accepted by the broker's
 * own code), arrives as exactly the bytes below, with its fd attached where
 * the op passes one. The texts are what the broker has always sent; a
 * change to one is a change of the wire protocol.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "broker/broker.h"
#include "broker/closer.h"
#include "broker/connection.h"
#include "broker/lease.h"
#include "broker/reply.h"
#include "broker/server.h"
#include "protocol/wire.h"

/* A broker with nothing but its server, one client connected, and that client's holder. */
struct fixture {
	char dir[64];
	char path[96];
	struct broker b;
	struct server_hooks hooks;
	struct connection *conn; /* the broker's side */
	int client;		 /* the client's side */
	struct holder holder;
};

static struct fixture F;

static void fixture_opened(struct connection *c)
{
	F.conn = c;
}

static void fixture_packet(struct connection *c, const char *buf, size_t len, unsigned flags) {}

/* A client connected to the server's socket, accepted (hooks.opened has run for it). */
static int fixture_connect(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", F.path);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_ge(sd_event_run(F.b.event, 1000 * 1000), 0);
	return fd;
}

static void setup(void)
{
	static const struct lease_hooks no_hooks;

	memset(&F, 0, sizeof(F));
	snprintf(F.dir, sizeof(F.dir), "/tmp/vb-test-reply-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(F.dir));
	snprintf(F.path, sizeof(F.path), "%s/socket", F.dir);
	F.b.config = (struct broker_config){.socket_path = F.path,
					    .max_connections = 1,
					    .max_connections_per_uid = 1,
					    .handshake_timeout_usec = 0};
	F.hooks = (struct server_hooks){.packet = fixture_packet, .opened = fixture_opened};
	ck_assert_int_ge(sd_event_new(&F.b.event), 0);
	ck_assert_int_eq(lease_table_new(F.b.event, &no_hooks, NULL, &F.b.leases), 0);
	ck_assert_int_eq(closer_new(F.b.config.max_connections, &F.b.closer), 0);
	ck_assert_int_eq(server_new(&F.b, &F.hooks, &F.b.server), 0);
	F.client = fixture_connect();
	ck_assert_ptr_nonnull(F.conn);
	/* The client's process holds something: events for the holder reach it. */
	ck_assert_int_eq(pidref_copy(&F.conn->identity->pid, &F.holder.pid), 0);
	F.holder.uid = F.conn->identity->uid;
	server_attach_holder(F.b.server, &F.holder);
	ck_assert_ptr_eq(F.conn->holder, &F.holder);
}

static void teardown(void)
{
	server_detach_holder(F.b.server, &F.holder);
	pidref_done(&F.holder.pid);
	close(F.client);
	server_free(F.b.server);
	closer_free(F.b.closer);
	lease_table_free(F.b.leases);
	sd_event_unref(F.b.event);
	unlink(F.path);
	rmdir(F.dir);
}

/* The next packet the client has, which must be there already; its fd (or -1) in *ret_fd. */
static char *recv_packet(int fd, int *ret_fd)
{
	static char text[VB_MAX_PACKET_SIZE + 1];
	int fds[VB_MAX_FDS];
	size_t len, n_fds;
	unsigned flags;

	ck_assert_int_eq(vb_wire_recv_flags(fd, MSG_DONTWAIT, text, sizeof(text) - 1, &len, fds,
					    VB_MAX_FDS, &n_fds, &flags),
			 0);
	ck_assert_uint_eq(flags, 0);
	ck_assert_uint_le(n_fds, 1);
	text[len] = '\0';
	if (ret_fd)
		*ret_fd = n_fds ? fds[0] : -1;
	else
		ck_assert_uint_eq(n_fds, 0);
	return text;
}

static void assert_nothing_more(void)
{
	char c;

	ck_assert_int_eq(recv(F.client, &c, 1, MSG_DONTWAIT), -1);
	ck_assert_int_eq(errno, EAGAIN);
}

/* An fd the test passes, and that the client must receive: the same file. */
static void assert_same_file(int a, int b)
{
	struct stat sa, sb;

	ck_assert_int_ge(b, 0);
	ck_assert_int_eq(fstat(a, &sa), 0);
	ck_assert_int_eq(fstat(b, &sb), 0);
	ck_assert(sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino);
	close(b);
}

/* ---- one case per reply the broker sends ---- */

static int send_hello(struct connection *c, int fd)
{
	return reply_send_hello(c, 1, 1, 2000, false);
}

static int send_lease(struct connection *c, int fd)
{
	return reply_send_lease(c, 3, 7, "lab-nics", 8589934592ULL, fd);
}

static int send_lease_unlimited(struct connection *c, int fd)
{
	return reply_send_lease(c, 3, 7, NULL, 0, fd);
}

static int send_release(struct connection *c, int fd)
{
	return reply_send_release(c, 5, 7, false);
}

static int send_released(struct connection *c, int fd)
{
	return reply_send_release(c, 5, 7, true);
}

static int send_merge(struct connection *c, int fd)
{
	static const uint32_t groups[] = {7, 8};

	return reply_send_merge(c, 6, 1, groups, 2, fd);
}

static int send_unmerge(struct connection *c, int fd)
{
	return reply_send_unmerge(c, 7, 8);
}

static int send_remove_soft(struct connection *c, int fd)
{
	return reply_send_remove(c, 9, 7, VB_REMOVE_SOFT, 1200);
}

static int send_remove_hard(struct connection *c, int fd)
{
	return reply_send_remove(c, 9, 7, VB_REMOVE_HARD, 0);
}

static int send_reload(struct connection *c, int fd)
{
	return reply_send_reload(c, 10, 12, 3);
}

static int send_explain(struct connection *c, int fd)
{
	struct policy_decision d = {.allowed = true,
				    .rule = "lab-nics",
				    .reason = "rule \"lab-nics\" (10-lab.json:3) allows lease of "
					      "0000:01:00.0"};

	return reply_send_explain(c, 11, 7, 2000, &d,
				  "0000:01:00.0 8086:10d3: allowed by rule \"lab-nics\"\n");
}

static int send_explain_denied(struct connection *c, int fd)
{
	struct policy_decision d = {.allowed = false,
				    .device = "0000:01:00.1",
				    .reason = "no rule allows lease of 0000:01:00.1"};

	return reply_send_explain(c, 11, 7, 2001, &d, "");
}

static int send_quarantine(struct connection *c, int fd)
{
	static const char *const devices[] = {"0000:03:00.0", "0000:03:00.1"};

	return reply_send_quarantine(c, 12, 10, "kmod", devices, 2);
}

static int send_unquarantine(struct connection *c, int fd)
{
	return reply_send_quarantine(c, 13, 10, "sysfs", NULL, 0);
}

static int send_error(struct connection *c, int fd)
{
	struct reply_error e;

	reply_error_set(&e, VB_E_NO_SUCH_GROUP, "there is no group %u", 99u);
	return reply_send_error(c, true, 4, &e);
}

static int send_error_without_id(struct connection *c, int fd)
{
	struct reply_error e;

	reply_error_set(&e, VB_E_BAD_REQUEST, "the request is not JSON");
	return reply_send_error(c, false, 0, &e);
}

static int send_busy(struct connection *c, int fd)
{
	struct reply_error e;

	reply_error_set(&e, VB_E_BUSY, "group 7 is held by uid 2000");
	e.has_uid = true;
	e.uid = 2000;
	return reply_send_error(c, true, 4, &e);
}

static int send_in_container(struct connection *c, int fd)
{
	struct reply_error e;

	reply_error_set(&e, VB_E_BUSY, "unmerge it first");
	e.has_container = true;
	e.container = 2;
	return reply_send_error(c, true, 6, &e);
}

static int send_unsupported(struct connection *c, int fd)
{
	struct reply_error e;

	reply_error_set(&e, VB_E_UNSUPPORTED_VERSION, "protocol version 0 is not supported");
	e.has_supported = true;
	return reply_send_error(c, true, 1, &e);
}

static int send_rate(struct connection *c, int fd)
{
	struct reply_error e;

	reply_error_set(&e, VB_E_LIMIT, "try again in 5 ms");
	e.has_retry = true;
	e.retry_after_ms = 5;
	return reply_send_error(c, false, 0, &e);
}

static int send_denied_by_rule(struct connection *c, int fd)
{
	struct reply_error e;

	reply_error_set(&e, VB_E_DENIED, "rule lab-deny denies you");
	e.has_decision = true;
	snprintf(e.device, sizeof(e.device), "0000:01:00.1");
	snprintf(e.rule, sizeof(e.rule), "lab-deny");
	snprintf(e.reason, sizeof(e.reason), "rule \"lab-deny\" denies lease of 0000:01:00.1");
	return reply_send_error(c, true, 3, &e);
}

static int send_denied_by_default(struct connection *c, int fd)
{
	struct reply_error e;

	reply_error_set(&e, VB_E_DENIED, "no rule allows uid 2000");
	e.has_decision = true;
	snprintf(e.reason, sizeof(e.reason), "no rule allows lease of 0000:01:00.0");
	return reply_send_error(c, true, 3, &e);
}

struct send_case {
	const char *name;
	int (*send)(struct connection *c, int fd);
	bool passes_fd;
	const char *text;
};

static const struct send_case cases[] = {
	{"hello", send_hello, false,
	 "{\"id\":1,\"ok\":true,\"version\":1,\"server\":\"vfio-brokerd " VB_VERSION "\","
	 "\"uid\":2000,\"admin\":false}"},
	{"lease", send_lease, true,
	 "{\"id\":3,\"ok\":true,\"group\":7,\"rule\":\"lab-nics\",\"memlock\":8589934592}"},
	{"lease without rule or memlock", send_lease_unlimited, true,
	 "{\"id\":3,\"ok\":true,\"group\":7,\"rule\":null,\"memlock\":null}"},
	{"release, file still open", send_release, false,
	 "{\"id\":5,\"ok\":true,\"group\":7,\"released\":false}"},
	{"release", send_released, false, "{\"id\":5,\"ok\":true,\"group\":7,\"released\":true}"},
	{"merge", send_merge, true, "{\"id\":6,\"ok\":true,\"container\":1,\"groups\":[7,8]}"},
	{"unmerge", send_unmerge, false, "{\"id\":7,\"ok\":true,\"group\":8}"},
	{"remove --soft", send_remove_soft, false,
	 "{\"id\":9,\"ok\":true,\"group\":7,\"mode\":\"soft\",\"elapsed_ms\":1200}"},
	{"remove --hard", send_remove_hard, false,
	 "{\"id\":9,\"ok\":true,\"group\":7,\"mode\":\"hard\",\"elapsed_ms\":0}"},
	{"reload", send_reload, false, "{\"id\":10,\"ok\":true,\"rules\":12,\"files\":3}"},
	{"explain, allowed", send_explain, false,
	 "{\"id\":11,\"ok\":true,\"group\":7,\"uid\":2000,\"allowed\":true,\"rule\":\"lab-nics\","
	 "\"device\":null,\"reason\":\"rule \\\"lab-nics\\\" (10-lab.json:3) allows lease of "
	 "0000:01:00.0\",\"text\":\"0000:01:00.0 8086:10d3: allowed by rule "
	 "\\\"lab-nics\\\"\\n\"}"},
	{"explain, denied by default", send_explain_denied, false,
	 "{\"id\":11,\"ok\":true,\"group\":7,\"uid\":2001,\"allowed\":false,\"rule\":null,"
	 "\"device\":\"0000:01:00.1\",\"reason\":\"no rule allows lease of 0000:01:00.1\","
	 "\"text\":\"\"}"},
	{"quarantine", send_quarantine, false,
	 "{\"id\":12,\"ok\":true,\"group\":10,\"mode\":\"kmod\",\"devices\":[\"0000:03:00.0\","
	 "\"0000:03:00.1\"]}"},
	{"unquarantine, nothing moved", send_unquarantine, false,
	 "{\"id\":13,\"ok\":true,\"group\":10,\"mode\":\"sysfs\",\"devices\":[]}"},
	{"plain error", send_error, false,
	 "{\"id\":4,\"ok\":false,\"error\":{\"code\":\"no-such-group\",\"message\":\"there is no "
	 "group 99\"}}"},
	{"error to a request without a readable id", send_error_without_id, false,
	 "{\"id\":null,\"ok\":false,\"error\":{\"code\":\"bad-request\",\"message\":\"the request "
	 "is not JSON\"}}"},
	{"busy with the holder's uid", send_busy, false,
	 "{\"id\":4,\"ok\":false,\"error\":{\"code\":\"busy\",\"message\":\"group 7 is held by uid "
	 "2000\",\"uid\":2000}}"},
	{"busy in a container", send_in_container, false,
	 "{\"id\":6,\"ok\":false,\"error\":{\"code\":\"busy\",\"message\":\"unmerge it first\","
	 "\"container\":2}}"},
	{"unsupported-version with the versions spoken", send_unsupported, false,
	 "{\"id\":1,\"ok\":false,\"error\":{\"code\":\"unsupported-version\",\"message\":"
	 "\"protocol version 0 is not supported\",\"supported\":[1,1]}}"},
	{"limit with when to retry", send_rate, false,
	 "{\"id\":null,\"ok\":false,\"error\":{\"code\":\"limit\",\"message\":\"try again in 5 "
	 "ms\",\"retry_after_ms\":5}}"},
	{"denied by a rule", send_denied_by_rule, false,
	 "{\"id\":3,\"ok\":false,\"error\":{\"code\":\"denied\",\"message\":\"rule lab-deny denies "
	 "you\",\"device\":\"0000:01:00.1\",\"rule\":\"lab-deny\",\"reason\":\"rule "
	 "\\\"lab-deny\\\" denies lease of 0000:01:00.1\"}}"},
	{"denied by no rule", send_denied_by_default, false,
	 "{\"id\":3,\"ok\":false,\"error\":{\"code\":\"denied\",\"message\":\"no rule allows uid "
	 "2000\",\"device\":null,\"rule\":null,\"reason\":\"no rule allows lease of "
	 "0000:01:00.0\"}}"},
};

#define N_CASES (sizeof(cases) / sizeof(cases[0]))

START_TEST(test_each_reply_is_sent_as_the_same_bytes_with_its_fd)
{
	const struct send_case *c = &cases[_i];
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC), got;
	const char *text;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(c->send(F.conn, fd), 0);
	text = recv_packet(F.client, &got);
	ck_assert_msg(strcmp(text, c->text) == 0, "%s: sent %s", c->name, text);
	if (c->passes_fd)
		assert_same_file(fd, got);
	else
		ck_assert_msg(got == -1, "%s: an fd came with the reply", c->name);
	assert_nothing_more();
	close(fd);
}
END_TEST

/* ---- events ---- */

START_TEST(test_each_event_reaches_the_holder_as_the_same_bytes)
{
	ck_assert_uint_eq(reply_notify_released(F.b.server, &F.holder, 7), 1);
	ck_assert_str_eq(recv_packet(F.client, NULL), "{\"event\":\"released\",\"group\":7}");
	ck_assert_uint_eq(reply_notify_revoked(F.b.server, &F.holder, 7), 1);
	ck_assert_str_eq(recv_packet(F.client, NULL), "{\"event\":\"revoked\",\"group\":7}");
	ck_assert_uint_eq(reply_notify_remove_requested(F.b.server, &F.holder, 7, 30000), 1);
	ck_assert_str_eq(recv_packet(F.client, NULL),
			 "{\"event\":\"remove-requested\",\"group\":7,\"timeout_ms\":30000}");
	ck_assert_uint_eq(reply_notify_device_added(F.b.server, &F.holder, 7, "0000:01:00.2"), 1);
	ck_assert_str_eq(recv_packet(F.client, NULL),
			 "{\"event\":\"device-added\",\"group\":7,\"device\":\"0000:01:00.2\"}");
	assert_nothing_more();
}
END_TEST

START_TEST(test_an_event_without_a_holder_goes_nowhere)
{
	ck_assert_uint_eq(reply_notify_released(F.b.server, NULL, 7), 0);
	ck_assert_uint_eq(reply_notify_revoked(F.b.server, NULL, 7), 0);
	ck_assert_uint_eq(reply_notify_remove_requested(F.b.server, NULL, 7, 1), 0);
	ck_assert_uint_eq(reply_notify_device_added(F.b.server, NULL, 7, "0000:01:00.2"), 0);
	assert_nothing_more();
}
END_TEST

START_TEST(test_a_device_added_event_naming_no_pci_address_is_not_sent)
{
	ck_assert_uint_eq(
		reply_notify_device_added(F.b.server, &F.holder, 7, "0000:01:00.2-not-an-address"),
		0);
	ck_assert_uint_eq(reply_notify_device_added(F.b.server, &F.holder, 7, "eth0"), 0);
	assert_nothing_more();
}
END_TEST

/* ---- chunked replies ---- */

static const struct vb_device_info chunk_device = {
	.address = "0000:01:00.0", .vendor = "8086", .device = "10d3", .class_ = "020000"};

START_TEST(test_an_empty_list_is_one_chunk_with_the_quarantine_mode)
{
	struct reply_chunks ch;

	reply_chunks_init_list(&ch, F.conn, 2, "none");
	reply_chunks_finish(&ch);
	ck_assert_str_eq(
		recv_packet(F.client, NULL),
		"{\"id\":2,\"ok\":true,\"groups\":[],\"more\":false,\"quarantine\":\"none\"}");
	reply_chunks_init_leases(&ch, F.conn, 8);
	reply_chunks_finish(&ch);
	ck_assert_str_eq(recv_packet(F.client, NULL),
			 "{\"id\":8,\"ok\":true,\"leases\":[],\"more\":false}");
	assert_nothing_more();
}
END_TEST

START_TEST(test_list_and_leases_entries_are_sent_as_the_same_bytes)
{
	struct vb_device_info dev = chunk_device;
	struct vb_group_info held = {.group = 7,
				     .viable = true,
				     .allowed = true,
				     .held = true,
				     .holder_uid = 2000,
				     .holder_pid = 4242,
				     .n_devices = 1,
				     .devices = &dev};
	struct vb_group_info free_group = {.group = 8};
	struct vb_lease_info lease = {.group = 7,
				      .uid = 2000,
				      .pid = 4242,
				      .since_usec = 1764000000000000ULL,
				      .rule = "lab-nics",
				      .state = "held",
				      .container_id = 3};
	struct reply_chunks ch;

	reply_chunks_init_list(&ch, F.conn, 2, "kmod");
	reply_chunks_add_group(&ch, &held);
	reply_chunks_add_group(&ch, &free_group);
	reply_chunks_finish(&ch);
	ck_assert_str_eq(recv_packet(F.client, NULL),
			 "{\"id\":2,\"ok\":true,\"groups\":[{\"group\":7,\"viable\":true,"
			 "\"allowed\":true,\"devices\":[{\"address\":\"0000:01:00.0\","
			 "\"vendor\":\"8086\",\"device\":\"10d3\",\"class\":\"020000\","
			 "\"driver\":null}],\"holder\":{\"uid\":2000,\"pid\":4242}},{\"group\":8,"
			 "\"viable\":false,\"allowed\":false,\"devices\":[],\"holder\":null}],"
			 "\"more\":false,\"quarantine\":\"kmod\"}");
	reply_chunks_init_leases(&ch, F.conn, 8);
	reply_chunks_add_lease(&ch, &lease);
	reply_chunks_finish(&ch);
	ck_assert_str_eq(recv_packet(F.client, NULL),
			 "{\"id\":8,\"ok\":true,\"leases\":[{\"group\":7,\"uid\":2000,\"pid\":4242,"
			 "\"since_usec\":1764000000000000,\"rule\":\"lab-nics\",\"state\":\"held\","
			 "\"container\":3}],\"more\":false}");
	assert_nothing_more();
}
END_TEST

/*
 * Entries fill a chunk up to 63 KiB (1 KiB of the packet left for the
 * envelope), each counted with its comma; the next entry starts a new chunk,
 * and every chunk but the last says "more": true.
 */
START_TEST(test_a_long_list_is_cut_into_chunks_below_the_packet_size)
{
	struct vb_device_info dev = chunk_device;
	struct vb_group_info g = {
		.group = 1000000, .viable = true, .n_devices = 1, .devices = &dev};
	const size_t entry_len = 163; /* one such entry, "group" of 7 digits */
	const size_t per_chunk = (VB_MAX_PACKET_SIZE - 1024) / (entry_len + 1);
	const size_t n = 2 * per_chunk + 1;
	size_t seen = 0, chunks = 0;
	struct reply_chunks ch;

	reply_chunks_init_list(&ch, F.conn, 2, "kmod");
	for (size_t i = 0; i < n; i++) {
		reply_chunks_add_group(&ch, &g);
		/* read as they come: the socket's queue is not the test's subject */
		while (recv(F.client, NULL, 0, MSG_PEEK | MSG_DONTWAIT) >= 0) {
			const char *text = recv_packet(F.client, NULL);
			const char *tail = ",\"more\":true,\"quarantine\":\"kmod\"}";

			ck_assert_uint_eq(strlen(text),
					  strlen("{\"id\":2,\"ok\":true,\"groups\":[]") +
						  per_chunk * (entry_len + 1) - 1 + strlen(tail));
			ck_assert_str_eq(text + strlen(text) - strlen(tail), tail);
			seen += per_chunk;
			chunks++;
		}
	}
	reply_chunks_finish(&ch);
	ck_assert_uint_eq(chunks, 2);
	ck_assert(
		strstr(recv_packet(F.client, NULL), "}],\"more\":false,\"quarantine\":\"kmod\"}"));
	ck_assert_uint_eq(seen + 1, n);
	assert_nothing_more();
}
END_TEST

/* ---- refusals at accept ---- */

START_TEST(test_a_connection_over_the_limit_is_refused_with_limit_and_no_id)
{
	int fd = fixture_connect();
	const char *text = recv_packet(fd, NULL);

	ck_assert_str_eq(text, "{\"id\":null,\"ok\":false,\"error\":{\"code\":\"limit\","
			       "\"message\":\"the broker has 1 connections open, its limit; try "
			       "again later\"}}");
	close(fd);
}
END_TEST

static Suite *reply_suite(void)
{
	Suite *s = suite_create("broker_reply");
	TCase *t = tcase_create("sent");

	tcase_add_checked_fixture(t, setup, teardown);
	tcase_add_loop_test(t, test_each_reply_is_sent_as_the_same_bytes_with_its_fd, 0, N_CASES);
	tcase_add_test(t, test_each_event_reaches_the_holder_as_the_same_bytes);
	tcase_add_test(t, test_an_event_without_a_holder_goes_nowhere);
	tcase_add_test(t, test_a_device_added_event_naming_no_pci_address_is_not_sent);
	tcase_add_test(t, test_an_empty_list_is_one_chunk_with_the_quarantine_mode);
	tcase_add_test(t, test_list_and_leases_entries_are_sent_as_the_same_bytes);
	tcase_add_test(t, test_a_long_list_is_cut_into_chunks_below_the_packet_size);
	tcase_add_test(t, test_a_connection_over_the_limit_is_refused_with_limit_and_no_id);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(reply_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
