/* SPDX-License-Identifier: MIT */
/*
 * The per-uid request rate: a uid over it gets `limit` with a retry hint,
 * never silence and never a stall; other uids are served meanwhile; the
 * budget is shared by the uid's connections and survives reconnecting; root
 * is exempt. The broker runs with a small rate (5 a second, 5 at once) so
 * the tests are quick; they count outcomes, never time them, and every
 * bound is generous.
 */
#include "tests/integration/it.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define RATE  "5"
#define BURST "5"
/* The longest retry hint a rate of 5 a second can give (one request: 200 ms), doubled. */
#define MAX_RETRY_MS 400

static int baseline;

static void start(const char *rate, const char *burst)
{
	broker_setup(&it_broker, IT_POLICY);
	broker_start(&it_broker, "--max-requests-per-uid", rate, "--request-burst-per-uid", burst,
		     NULL);
	baseline = broker_fd_count_settled(&it_broker);
}

/* What a client child saw, in shared memory. */
struct tally {
	int ok;		  /* replies "ok": true */
	int limited;	  /* `limit` replies with a retry hint */
	int other;	  /* anything else (a failure) */
	int bad_id;	  /* replies whose id was not the request's */
	int max_retry_ms; /* largest retry_after_ms seen */
	int last_retry_ms;
	int flood_limited; /* phase 2 of the flooder */
	int after_wait_ok; /* phase 3: 1 when the request after the hinted wait was served */
	int step;	   /* where a child failed, 0 if it did not */
	char sample[512];  /* one unexpected reply, for the failure message */
};

static struct tally *tally_new(void)
{
	struct tally *t =
		mmap(NULL, sizeof(*t), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	ck_assert_ptr_ne(t, MAP_FAILED);
	memset(t, 0, sizeof(*t));
	return t;
}

static void tally_free(struct tally *t)
{
	munmap(t, sizeof(*t));
}

/* Keep one unexpected reply (its start) for the failure message. */
static void set_sample(struct tally *t, const char *reply)
{
	snprintf(t->sample, sizeof(t->sample), "%.*s", (int)sizeof(t->sample) - 1, reply);
}

/* Count one reply to request id. */
static void tally_reply(struct tally *t, const char *reply, unsigned id)
{
	char want[32];
	const char *hint;
	int ms = -1;

	snprintf(want, sizeof(want), "\"id\":%u,", id);
	if (!strstr(reply, want))
		t->bad_id++;
	if (strstr(reply, "\"ok\":true")) {
		t->ok++;
		return;
	}
	hint = strstr(reply, "\"retry_after_ms\":");
	if (strstr(reply, "\"code\":\"limit\"") && hint &&
	    sscanf(hint, "\"retry_after_ms\":%d", &ms) == 1 && ms > 0) {
		t->limited++;
		t->last_retry_ms = ms;
		if (ms > t->max_retry_ms)
			t->max_retry_ms = ms;
		return;
	}
	t->other++;
	set_sample(t, reply);
}

/*
 * Connect and say hello. Returns the fd, -2 when the hello was refused with
 * `limit` (counted in t when not NULL), -1 on anything else.
 */
static int connect_hello(struct tally *t)
{
	struct tally one = {0};
	char buf[4096];
	int fd = raw_connect(it_broker.socket);

	if (fd < 0)
		return -1;
	if (raw_send(fd, "{\"id\":1,\"op\":\"hello\",\"version\":1}") < 0 ||
	    raw_recv(fd, buf, sizeof(buf), 5000) <= 0) {
		close(fd);
		return -1;
	}
	tally_reply(&one, buf, 1);
	if (one.ok && !one.bad_id)
		return fd;
	close(fd);
	if (one.limited && !one.bad_id) {
		if (t)
			t->limited++;
		return -2;
	}
	if (t)
		set_sample(t, buf);
	return -1;
}

/* Send n `leases` requests (ids first..) back to back, then read and count the n replies. */
static int burst(int fd, struct tally *t, unsigned first, unsigned n)
{
	char req[64], buf[4096];

	for (unsigned i = 0; i < n; i++) {
		snprintf(req, sizeof(req), "{\"id\":%u,\"op\":\"leases\"}", first + i);
		if (raw_send(fd, req) < 0)
			return -1;
	}
	for (unsigned i = 0; i < n; i++) {
		if (raw_recv(fd, buf, sizeof(buf), 10000) <= 0)
			return -1;
		tally_reply(t, buf, first + i);
	}
	return 0;
}

struct flooder {
	struct tally *t;
	struct signal_pipe ready, stop;
};

static bool stop_requested(struct signal_pipe *p)
{
	struct pollfd pfd = {.fd = p->fd[0], .events = POLLIN};

	return poll(&pfd, 1, 0) == 1;
}

/* Send one `leases` request and count its reply in t; -1 when there was none. */
static int one_request(int fd, struct tally *t, unsigned id, char *buf, size_t size)
{
	char req[64];

	snprintf(req, sizeof(req), "{\"id\":%u,\"op\":\"leases\"}", id);
	if (raw_send(fd, req) < 0 || raw_recv(fd, buf, size, 10000) <= 0)
		return -1;
	tally_reply(t, buf, id);
	return 0;
}

/*
 * Bob: 20 requests back to back; then keeps sending, one at a time, until
 * told to stop, and on until one is refused; then waits as long as that
 * refusal said and sends one more, which must be served.
 */
static int flood(void *arg)
{
	struct flooder *f = arg;
	struct tally *t = f->t;
	char buf[4096];
	unsigned id = 100;
	int fd = connect_hello(NULL);

	if (fd < 0)
		return t->step = 1;
	if (burst(fd, t, 2, 20) < 0)
		return t->step = 2;
	signal_pipe_send(&f->ready, 'R');
	for (bool stopping = false;;) {
		struct tally one = {0};

		stopping = stopping || stop_requested(&f->stop);
		if (one_request(fd, &one, id++, buf, sizeof(buf)) < 0)
			return t->step = 3;
		if (one.other || one.bad_id) {
			set_sample(t, buf);
			return t->step = 4;
		}
		if (one.limited) {
			t->flood_limited++;
			t->last_retry_ms = one.last_retry_ms;
			if (stopping)
				break;
		}
		if (id > 100000)
			return t->step = 5; /* never refused: no hint to wait for */
	}
	/* The hint is enough: waiting that long (plus slack for this process) earns a request. */
	usleep((useconds_t)(t->last_retry_ms + 20) * 1000);
	if (one_request(fd, t, id, buf, sizeof(buf)) < 0)
		return t->step = 6;
	t->after_wait_ok = strstr(buf, "\"ok\":true") != NULL;
	if (!t->after_wait_ok)
		set_sample(t, buf);
	close(fd);
	return 0;
}

/*
 * (a) and (b): a uid sending faster than its rate gets `limit` with a retry
 * hint for the excess (not silence: every request is answered, in order,
 * with its id), at least its burst is served, another uid is served while
 * it floods, and after waiting as long as the hint said it is served again.
 */
START_TEST(test_a_uid_over_its_rate_gets_limit_and_others_are_served)
{
	struct flooder f = {.t = tally_new()};
	struct outcome *o = outcome_new();
	struct client_args a = {.socket = it_broker.socket, .group = 7, .out = o};
	struct tally *t = f.t;
	pid_t bob;

	start(RATE, BURST);
	signal_pipe_init(&f.ready);
	signal_pipe_init(&f.stop);
	bob = spawn_as(UID_BOB, 0, flood, &f);
	ck_assert_msg(signal_pipe_wait(&f.ready) == 'R', "bob's burst failed at step %d", t->step);

	/* Hello took one of Bob's 5; 20 more back to back cannot all fit. */
	ck_assert_msg(t->other == 0 && t->bad_id == 0, "unexpected reply: %s", t->sample);
	ck_assert_int_eq(t->ok + t->limited, 20);
	ck_assert_msg(t->ok >= 4, "only %d of bob's first requests were served; burst is 5", t->ok);
	ck_assert_msg(t->limited >= 1, "20 requests at once, rate 5 burst 5, and none refused");
	ck_assert_msg(t->max_retry_ms <= MAX_RETRY_MS, "retry hint of %d ms at 5 a second",
		      t->max_retry_ms);

	/* While Bob keeps flooding (and is refused), Alice is served. */
	ck_assert_int_eq(run_as(UID_ALICE, 0, client_lease, &a), 0);
	ck_assert_msg(o->rc == 0, "alice was not served while bob flooded: %s: %s", o->code,
		      o->message);
	signal_pipe_send(&f.stop, 'S');
	ck_assert_int_eq(wait_exit(bob), 0);
	ck_assert_msg(t->step == 0, "bob failed at step %d: %s", t->step, t->sample);
	ck_assert_msg(t->after_wait_ok, "bob was not served after waiting the hinted time: %s",
		      t->sample);

	outcome_free(o);
	tally_free(t);
	assert_serves_good_client(&it_broker, baseline);
}
END_TEST

#define N_CONNECTIONS 5

/*
 * (c): the budget belongs to the uid, not the connection. Bob opens 5
 * connections and sends hello plus 4 requests on each: 5 per connection,
 * within what a budget of 5 per connection would serve at once, yet 25 in
 * all for the uid, so some are refused.
 */
static int many_connections(void *arg)
{
	struct tally *t = arg;
	int fds[N_CONNECTIONS];

	for (int i = 0; i < N_CONNECTIONS; i++) {
		/* Once the budget is spent, a hello is refused too: that counts. */
		fds[i] = connect_hello(t);
		if (fds[i] == -1)
			return t->step = 2;
	}
	for (int i = 0; i < N_CONNECTIONS; i++)
		if (fds[i] >= 0 && burst(fds[i], t, 10, 4) < 0)
			return t->step = 1;
	for (int i = 0; i < N_CONNECTIONS; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	return 0;
}

START_TEST(test_the_rate_is_shared_by_a_uids_connections)
{
	struct tally *t = tally_new();

	start(RATE, BURST);
	ck_assert_int_eq(run_as(UID_BOB, 0, many_connections, t), 0);
	ck_assert_msg(t->other == 0 && t->bad_id == 0, "unexpected reply: %s", t->sample);
	ck_assert_msg(t->limited >= 1,
		      "5 connections of one uid sent 25 requests at once (5 each) and none was "
		      "refused: the budget is per connection, not per uid");
	tally_free(t);
	assert_serves_good_client(&it_broker, baseline);
}
END_TEST

/*
 * Closing every connection and connecting again does not refill the
 * budget: after spending it, Bob reconnects at once and sends hello plus 4
 * (what a fresh budget of 5 would serve); some are refused. The rate is 1
 * a second here, so 5 requests would need 5 s to be earned back.
 */
static int spend_and_reconnect(void *arg)
{
	struct tally *t = arg;
	struct tally spent = {0};
	int fd = connect_hello(NULL);

	if (fd < 0)
		return t->step = 1;
	if (burst(fd, &spent, 2, 10) < 0)
		return t->step = 2;
	if (spent.limited == 0)
		return t->step = 3; /* the budget was not spent: nothing to show */
	close(fd);
	fd = connect_hello(t);
	if (fd == -2)
		return 0; /* the hello itself was refused */
	if (fd < 0)
		return t->step = 5;
	if (burst(fd, t, 2, 4) < 0)
		return t->step = 4;
	close(fd);
	return 0;
}

START_TEST(test_reconnecting_does_not_refill_the_budget)
{
	struct tally *t = tally_new();

	start("1", BURST);
	ck_assert_int_eq(run_as(UID_BOB, 0, spend_and_reconnect, t), 0);
	ck_assert_msg(t->step == 0, "bob failed at step %d", t->step);
	ck_assert_msg(t->other == 0 && t->bad_id == 0, "unexpected reply: %s", t->sample);
	ck_assert_msg(t->limited >= 1, "a new connection got a fresh budget: %d of 4 served",
		      t->ok);
	tally_free(t);
	assert_serves_good_client(&it_broker, baseline);
}
END_TEST

/* Root is exempt (as from the connection limit), and 0 turns the limit off. */
static int fifty(void *arg)
{
	struct tally *t = arg;
	int fd = connect_hello(t);

	if (fd < 0)
		return t->step = 1;
	if (burst(fd, t, 2, 50) < 0)
		return t->step = 2;
	close(fd);
	return 0;
}

START_TEST(test_root_is_exempt_and_zero_means_no_limit)
{
	struct tally *t = tally_new();

	start(RATE, BURST);
	ck_assert_int_eq(fifty(t), 0);
	ck_assert_msg(t->ok == 50, "root was limited: %d of 50 served (%s)", t->ok, t->sample);
	broker_teardown(&it_broker);

	memset(t, 0, sizeof(*t));
	start("0", BURST);
	ck_assert_int_eq(run_as(UID_BOB, 0, fifty, t), 0);
	ck_assert_msg(t->ok == 50, "--max-requests-per-uid 0 still limited: %d of 50 served (%s)",
		      t->ok, t->sample);
	tally_free(t);
	assert_serves_good_client(&it_broker, baseline);
}
END_TEST

/* With the defaults (200 a second, 400 at once), a busy but normal client is never limited. */
START_TEST(test_the_defaults_do_not_bite_a_normal_client)
{
	struct tally *t = tally_new();

	broker_setup(&it_broker, IT_POLICY);
	broker_start(&it_broker, NULL);
	baseline = broker_fd_count_settled(&it_broker);
	ck_assert_int_eq(run_as(UID_BOB, 0, fifty, t), 0);
	ck_assert_msg(t->ok == 50, "50 requests at once were limited by default: %d served (%s)",
		      t->ok, t->sample);
	tally_free(t);
	assert_serves_good_client(&it_broker, baseline);
}
END_TEST

Suite *suite_limits(void)
{
	Suite *s = suite_create("limits");
	TCase *t = tcase_create("limits");

	tcase_add_checked_fixture(t, NULL, it_broker_teardown);
	tcase_set_timeout(t, 60);
	tcase_add_test(t, test_a_uid_over_its_rate_gets_limit_and_others_are_served);
	tcase_add_test(t, test_the_rate_is_shared_by_a_uids_connections);
	tcase_add_test(t, test_reconnecting_does_not_refill_the_budget);
	tcase_add_test(t, test_root_is_exempt_and_zero_means_no_limit);
	tcase_add_test(t, test_the_defaults_do_not_bite_a_normal_client);
	suite_add_tcase(s, t);
	return s;
}
