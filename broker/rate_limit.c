/* SPDX-License-Identifier: MIT */
#include "broker/rate_limit.h"
#include "broker/log.h"

#include <errno.h>
#include <stdlib.h>

/* Requests are counted in millionths: a rate of N per second refills N of them per µs. */
#define TOKEN_SCALE 1000000ULL

struct rate_bucket {
	struct list_node node; /* in the limit's buckets, newest first */
	uid_t uid;
	unsigned n_users;
	uint64_t tokens;     /* millionths of a request */
	uint64_t stamp_usec; /* when tokens was brought up to date */
	uint64_t n_refused;  /* requests refused since the bucket was last full, for the log */
};

void rate_limit_init(struct rate_limit *rl, unsigned rate, unsigned burst, size_t max_buckets)
{
	*rl = (struct rate_limit){.rate = rate, .burst = burst, .max_buckets = max_buckets};
	list_init(&rl->buckets);
}

static uint64_t rate_limit_full(const struct rate_limit *rl)
{
	return rl->burst * TOKEN_SCALE;
}

static void rate_bucket_free(struct rate_limit *rl, struct rate_bucket *b)
{
	list_unlink(&b->node);
	rl->n_buckets--;
	free(b);
}

void rate_limit_done(struct rate_limit *rl)
{
	struct rate_bucket *b, *tmp;

	list_for_each_entry_safe(b, tmp, &rl->buckets, node) rate_bucket_free(rl, b);
}

/* Add what the rate has earned b since it was last brought up to date. */
static void rate_bucket_refill(const struct rate_limit *rl, struct rate_bucket *b, uint64_t now)
{
	uint64_t full = rate_limit_full(rl);
	uint64_t elapsed = now > b->stamp_usec ? now - b->stamp_usec : 0;

	if (now > b->stamp_usec)
		b->stamp_usec = now;
	if (b->tokens >= full || rl->rate == 0) {
		b->tokens = full;
		return;
	}
	/* Compare before multiplying: a bucket idle for days must not overflow. */
	if (elapsed > (full - b->tokens) / rl->rate)
		b->tokens = full;
	else
		b->tokens += elapsed * rl->rate;
}

/*
 * b is full again: if it had run dry, its uid has slowed down; say how many
 * requests were refused meanwhile. One line when a uid starts being refused
 * and one when its bucket has refilled, however it paces itself in between.
 */
static void rate_bucket_refilled(struct rate_bucket *b)
{
	if (b->n_refused == 0)
		return;
	log_info("uid %u is within its request rate again; %llu requests were refused",
		 (unsigned)b->uid, (unsigned long long)b->n_refused);
	b->n_refused = 0;
}

int rate_limit_get(struct rate_limit *rl, uid_t uid, uint64_t now, struct rate_bucket **ret)
{
	uint64_t full = rate_limit_full(rl);
	struct rate_bucket *b, *tmp, *found = NULL, *idle = NULL;

	if (rl->rate == 0) {
		*ret = NULL;
		return 0;
	}
	list_for_each_entry_safe(b, tmp, &rl->buckets, node)
	{
		if (b->uid == uid) {
			found = b;
			continue;
		}
		if (b->n_users > 0)
			continue;
		rate_bucket_refill(rl, b, now);
		if (b->tokens >= full) {
			rate_bucket_refilled(b);
			rate_bucket_free(rl, b);
		} else {
			idle = b; /* the oldest idle one, at the end */
		}
	}
	if (found) {
		found->n_users++;
		*ret = found;
		return 0;
	}
	if (idle && rl->n_buckets >= rl->max_buckets) {
		log_debug("Dropping the request budget of uid %u early: too many idle budgets",
			  (unsigned)idle->uid);
		rate_bucket_free(rl, idle);
	}
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	*b = (struct rate_bucket){.uid = uid, .n_users = 1, .tokens = full, .stamp_usec = now};
	list_prepend(&rl->buckets, &b->node);
	rl->n_buckets++;
	*ret = b;
	return 0;
}

void rate_limit_put(struct rate_limit *rl, struct rate_bucket *b, uint64_t now)
{
	if (!b || --b->n_users > 0)
		return;
	rate_bucket_refill(rl, b, now);
	if (b->tokens >= rate_limit_full(rl)) {
		rate_bucket_refilled(b);
		rate_bucket_free(rl, b);
	}
}

int rate_limit_charge(struct rate_limit *rl, struct rate_bucket *b, uint64_t now,
		      uint64_t *ret_retry_ms)
{
	uint64_t wait_usec;

	if (!b || rl->rate == 0)
		return 0;
	rate_bucket_refill(rl, b, now);
	if (b->tokens >= rate_limit_full(rl))
		rate_bucket_refilled(b);
	if (b->tokens >= TOKEN_SCALE) {
		b->tokens -= TOKEN_SCALE;
		return 0;
	}
	if (b->n_refused++ == 0)
		log_warning("uid %u is over its request rate (%llu a second, %llu at once); "
			    "answering its requests with limit until it slows down",
			    (unsigned)b->uid, (unsigned long long)rl->rate,
			    (unsigned long long)rl->burst);
	/* Until the next whole request has been earned, rounded up to a millisecond. */
	wait_usec = (TOKEN_SCALE - b->tokens + rl->rate - 1) / rl->rate;
	*ret_retry_ms = (wait_usec + 999) / 1000;
	return -EUSERS;
}
