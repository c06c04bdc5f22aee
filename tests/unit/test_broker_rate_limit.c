/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of broker/rate_limit.c, the per-uid token bucket: a full bucket
 * grants its burst at once, refills at the rate and never above the burst,
 * an empty one says when the next request is earned, a uid's connections
 * share one bucket that reconnecting does not refill, and a rate of 0
 * disables the limit. Times are passed in, so nothing here waits.
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "broker/rate_limit.h"

#define MS   1000ULL
#define SEC  (1000 * MS)
#define T0   (1000 * SEC) /* an arbitrary CLOCK_MONOTONIC start */
#define UID  1000
#define UID2 1001

/* How many requests b takes at now before the first refusal (at most max). */
static unsigned charge_until_refused(struct rate_limit *rl, struct rate_bucket *b, uint64_t now,
				     unsigned max)
{
	uint64_t retry_ms;
	unsigned n = 0;

	while (n < max && rate_limit_charge(rl, b, now, &retry_ms) == 0)
		n++;
	return n;
}

START_TEST(test_a_full_bucket_grants_the_burst_at_once_and_no_more)
{
	struct rate_limit rl;
	struct rate_bucket *b = NULL;
	uint64_t retry_ms = 0;

	rate_limit_init(&rl, 10, 5, 16);
	ck_assert_int_eq(rate_limit_get(&rl, UID, T0, &b), 0);
	ck_assert_ptr_nonnull(b);
	ck_assert_uint_eq(charge_until_refused(&rl, b, T0, 100), 5);
	ck_assert_int_eq(rate_limit_charge(&rl, b, T0, &retry_ms), -EUSERS);
	rate_limit_put(&rl, b, T0);
	rate_limit_done(&rl);
}
END_TEST

START_TEST(test_an_empty_bucket_refills_at_the_rate)
{
	struct rate_limit rl;
	struct rate_bucket *b = NULL;

	rate_limit_init(&rl, 10, 5, 16);
	ck_assert_int_eq(rate_limit_get(&rl, UID, T0, &b), 0);
	ck_assert_uint_eq(charge_until_refused(&rl, b, T0, 100), 5);
	/* 10 a second: one request is earned per 100 ms, not before. */
	ck_assert_uint_eq(charge_until_refused(&rl, b, T0 + 99 * MS, 100), 0);
	ck_assert_uint_eq(charge_until_refused(&rl, b, T0 + 100 * MS, 100), 1);
	ck_assert_uint_eq(charge_until_refused(&rl, b, T0 + 400 * MS, 100), 3);
	rate_limit_put(&rl, b, T0 + 400 * MS);
	rate_limit_done(&rl);
}
END_TEST

START_TEST(test_a_bucket_idle_for_months_holds_the_burst_without_overflow)
{
	struct rate_limit rl;
	struct rate_bucket *b = NULL;
	/* elapsed * rate is 2^64 + 448,384 here: multiplied first, it would wrap to less than
	 * one request. */
	const uint64_t idle = 18446744073710ULL; /* µs, about 213 days */

	rate_limit_init(&rl, 1000000, 2, 16);
	ck_assert_int_eq(rate_limit_get(&rl, UID, T0, &b), 0);
	ck_assert_uint_eq(charge_until_refused(&rl, b, T0, 100), 2);
	ck_assert_uint_eq(charge_until_refused(&rl, b, T0 + idle, 100), 2);
	rate_limit_put(&rl, b, T0 + idle);
	rate_limit_done(&rl);
}
END_TEST

START_TEST(test_an_empty_bucket_says_when_the_next_request_is_earned)
{
	struct rate_limit rl;
	struct rate_bucket *b = NULL;
	uint64_t retry_ms = 0;

	rate_limit_init(&rl, 10, 1, 16);
	ck_assert_int_eq(rate_limit_get(&rl, UID, T0, &b), 0);
	ck_assert_int_eq(rate_limit_charge(&rl, b, T0, &retry_ms), 0);
	ck_assert_int_eq(rate_limit_charge(&rl, b, T0, &retry_ms), -EUSERS);
	ck_assert_uint_eq(retry_ms, 100);
	/* 40 ms later, 60 ms are left; the hint is honest: waiting that long is enough. */
	ck_assert_int_eq(rate_limit_charge(&rl, b, T0 + 40 * MS, &retry_ms), -EUSERS);
	ck_assert_uint_eq(retry_ms, 60);
	ck_assert_int_eq(rate_limit_charge(&rl, b, T0 + 100 * MS, &retry_ms), 0);
	rate_limit_put(&rl, b, T0 + 100 * MS);
	rate_limit_done(&rl);
}
END_TEST

START_TEST(test_the_retry_hint_rounds_up_to_a_millisecond)
{
	struct rate_limit rl;
	struct rate_bucket *b = NULL;
	uint64_t retry_ms = 0;

	/* 3 a second: a request every 333,333.3 µs, so 334 ms, never 333. */
	rate_limit_init(&rl, 3, 1, 16);
	ck_assert_int_eq(rate_limit_get(&rl, UID, T0, &b), 0);
	ck_assert_int_eq(rate_limit_charge(&rl, b, T0, &retry_ms), 0);
	ck_assert_int_eq(rate_limit_charge(&rl, b, T0, &retry_ms), -EUSERS);
	ck_assert_uint_eq(retry_ms, 334);
	ck_assert_int_eq(rate_limit_charge(&rl, b, T0 + 333 * MS, &retry_ms), -EUSERS);
	ck_assert_uint_eq(retry_ms, 1);
	ck_assert_int_eq(rate_limit_charge(&rl, b, T0 + 334 * MS, &retry_ms), 0);
	rate_limit_put(&rl, b, T0 + 334 * MS);
	rate_limit_done(&rl);
}
END_TEST

START_TEST(test_a_uids_connections_share_one_bucket_and_reconnecting_does_not_refill_it)
{
	struct rate_limit rl;
	struct rate_bucket *a = NULL, *b = NULL, *other = NULL, *again = NULL;

	rate_limit_init(&rl, 10, 4, 16);
	ck_assert_int_eq(rate_limit_get(&rl, UID, T0, &a), 0);
	ck_assert_int_eq(rate_limit_get(&rl, UID, T0, &b), 0);
	ck_assert_int_eq(rate_limit_get(&rl, UID2, T0, &other), 0);
	ck_assert_ptr_eq(a, b);
	ck_assert_ptr_ne(a, other);
	ck_assert_uint_eq(charge_until_refused(&rl, a, T0, 100), 4);
	ck_assert_uint_eq(charge_until_refused(&rl, b, T0, 100), 0);
	ck_assert_uint_eq(charge_until_refused(&rl, other, T0, 100), 4);
	/* Every connection of the uid closes and a new one comes: still empty. */
	rate_limit_put(&rl, a, T0);
	rate_limit_put(&rl, b, T0);
	ck_assert_int_eq(rate_limit_get(&rl, UID, T0 + 1 * MS, &again), 0);
	ck_assert_uint_eq(charge_until_refused(&rl, again, T0 + 1 * MS, 100), 0);
	rate_limit_put(&rl, again, T0 + 1 * MS);
	rate_limit_put(&rl, other, T0);
	rate_limit_done(&rl);
}
END_TEST

START_TEST(test_a_rate_of_zero_disables_the_limit)
{
	struct rate_limit rl;
	struct rate_bucket *b = (struct rate_bucket *)&rl; /* must be overwritten */
	uint64_t retry_ms = 0;

	rate_limit_init(&rl, 0, 400, 16);
	ck_assert_int_eq(rate_limit_get(&rl, UID, T0, &b), 0);
	ck_assert_ptr_null(b);
	for (unsigned i = 0; i < 100000; i++)
		ck_assert_int_eq(rate_limit_charge(&rl, b, T0, &retry_ms), 0);
	ck_assert_uint_eq(rl.n_buckets, 0);
	rate_limit_put(&rl, b, T0);
	rate_limit_done(&rl);
}
END_TEST

START_TEST(test_idle_buckets_beyond_the_most_kept_are_dropped_oldest_first)
{
	struct rate_limit rl;
	struct rate_bucket *b[3] = {NULL}, *c = NULL;

	rate_limit_init(&rl, 1, 10, 2);
	for (unsigned i = 0; i < 2; i++) {
		ck_assert_int_eq(rate_limit_get(&rl, UID + i, T0 + i, &b[i]), 0);
		ck_assert_uint_eq(charge_until_refused(&rl, b[i], T0 + i, 100), 10);
		rate_limit_put(&rl, b[i], T0 + i); /* idle, and empty: kept */
	}
	ck_assert_uint_eq(rl.n_buckets, 2);
	/* A third uid: the oldest idle bucket goes to make room; the newer one stays empty. */
	ck_assert_int_eq(rate_limit_get(&rl, UID + 2, T0 + 2, &b[2]), 0);
	ck_assert_uint_eq(rl.n_buckets, 2);
	ck_assert_int_eq(rate_limit_get(&rl, UID + 1, T0 + 3, &c), 0);
	ck_assert_uint_eq(charge_until_refused(&rl, c, T0 + 3, 100), 0);
	rate_limit_put(&rl, c, T0 + 3);
	rate_limit_put(&rl, b[2], T0 + 3);
	rate_limit_done(&rl);
}
END_TEST

static Suite *rate_limit_suite(void)
{
	Suite *s = suite_create("rate_limit");
	TCase *t = tcase_create("token bucket");

	tcase_add_test(t, test_a_full_bucket_grants_the_burst_at_once_and_no_more);
	tcase_add_test(t, test_an_empty_bucket_refills_at_the_rate);
	tcase_add_test(t, test_a_bucket_idle_for_months_holds_the_burst_without_overflow);
	tcase_add_test(t, test_an_empty_bucket_says_when_the_next_request_is_earned);
	tcase_add_test(t, test_the_retry_hint_rounds_up_to_a_millisecond);
	tcase_add_test(
		t, test_a_uids_connections_share_one_bucket_and_reconnecting_does_not_refill_it);
	tcase_add_test(t, test_a_rate_of_zero_disables_the_limit);
	tcase_add_test(t, test_idle_buckets_beyond_the_most_kept_are_dropped_oldest_first);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(rate_limit_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
