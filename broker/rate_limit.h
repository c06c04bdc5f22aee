/* SPDX-License-Identifier: MIT */
/*
 * The per-uid request rate: a token bucket per uid holding up to burst
 * requests, refilled at rate a second, shared by all the uid's connections.
 * A bucket lives while its uid has connections, and after the last one
 * closes until it has filled up again (at most burst/rate seconds), so that
 * closing every connection and connecting again does not refill it early.
 * Buckets are at most max_buckets (idle ones are dropped first).
 *
 * Times are CLOCK_MONOTONIC microseconds passed in by the caller, so the
 * arithmetic can be tested without waiting.
 */
#pragma once

#include "common/list.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct rate_bucket;

struct rate_limit {
	uint64_t rate;	    /* requests a second, sustained; 0: no limit */
	uint64_t burst;	    /* requests at once */
	size_t max_buckets; /* past this, an idle bucket is dropped before it is full */
	struct list_node buckets;
	size_t n_buckets;
};

void rate_limit_init(struct rate_limit *rl, unsigned rate, unsigned burst, size_t max_buckets);
/* Frees every bucket. */
void rate_limit_done(struct rate_limit *rl);

/*
 * rate_limit_get returns in *ret the bucket of uid with one more user
 * (connection) counted, created full when the uid has none; NULL when the
 * limit is disabled. Idle buckets that have filled up are freed on the way.
 */
int rate_limit_get(struct rate_limit *rl, uid_t uid, uint64_t now_usec, struct rate_bucket **ret);
/* One user of b is gone; b goes too once it has none and is full. Accepts NULL. */
void rate_limit_put(struct rate_limit *rl, struct rate_bucket *b, uint64_t now_usec);

/*
 * rate_limit_charge takes one request from b. 0: go on (also for b NULL).
 * -EUSERS: b's uid is over its rate; *ret_retry_ms is then how long until
 * the next whole request has been earned, rounded up to a millisecond.
 */
int rate_limit_charge(struct rate_limit *rl, struct rate_bucket *b, uint64_t now_usec,
		      uint64_t *ret_retry_ms);
