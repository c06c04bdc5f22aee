/* SPDX-License-Identifier: MIT */
/*
 * Removal of a lease by an administrator, as David Gibson proposed in the
 * 2011 thread: "soft" asks the holder to give the group back and waits (up
 * to a timeout the administrator picks, then fails leaving the lease
 * alone); "hard" kills the lease's cgroup and holder at once, and reports
 * (or, asked to, kills) processes outside the lease still holding its file. The wait policy (soft,
 * wait, then hard) is the administrator's tool's, like kill -15, drum fingers, kill -9.
 *
 * The request stays pending until the lease ends (the group file is
 * closed) and is answered then, or at its timeout.
 */
#pragma once

#include "broker/broker.h"
#include "broker/identity.h"
#include "broker/lease.h"
#include "broker/reply.h"
#include "protocol/message.h"

#include <stdbool.h>
#include <stdint.h>

/* Remove requests waiting at once, over all connections. */
#define REMOVALS_MAX 1024
/* How long a hard removal waits for the killed processes' files to close. */
#define REMOVE_HARD_TIMEOUT_USEC (10ULL * 1000 * 1000)

struct removals;

/* How a removal ended: the lease is gone (error NULL), or it was given up. */
struct removal_outcome {
	uint32_t group;
	enum vb_remove_mode mode;
	uint64_t elapsed_ms;		 /* removed: since the request */
	const struct reply_error *error; /* given up: why (timeout, or still open) */
};

/* Answers the administrator who asked (waiter) for request id. */
typedef void (*removal_answer_fn)(void *waiter, uint32_t id, const struct removal_outcome *o);

int removals_new(struct broker *b, struct removals **ret);
/* Frees every pending removal without answering. Accepts NULL. */
struct removals *removals_free(struct removals *r);

/*
 * removals_start starts removing the lease of group for the administrator
 * admin: soft asks its holder (the remove-requested event) and waits up to
 * timeout_ms (0: the broker's default); hard revokes the lease and kills
 * what belongs to it (its cgroup, its holder, processes of the lease found
 * with the file: lease_process_belongs). Other processes holding the file
 * (strays) are killed only with kill_strays; otherwise the removal is
 * answered at once with busy, naming them (pid, uid, command), and the
 * lease stays until they close it. answer(waiter, id, outcome) is called
 * once when the lease has ended or the wait is given up, unless the waiter
 * went away first (removals_waiter_gone); it may be called before this
 * returns. Refused (*err) when too many removals wait, the group is not
 * leased, or a soft removal has nobody to ask.
 */
int removals_start(struct removals *r, const struct identity *admin, uint32_t group,
		   enum vb_remove_mode mode, bool kill_strays, uint32_t timeout_ms,
		   removal_answer_fn answer, void *waiter, uint32_t id, struct reply_error *err);

/* Whether REMOVALS_MAX removals are waiting already. */
bool removals_full(const struct removals *r);

/* Whether a removal of group is pending (its lease shows as "removing"). */
bool removals_pending(const struct removals *r, uint32_t group);

/* Lease hooks: the lease of l ended; l's file is still open in the processes of refs[]. */
void removals_lease_ended(struct removals *r, const struct lease *l);
void removals_lease_still_open(struct removals *r, const struct lease *l, const struct pidref *refs,
			       size_t n);

/* waiter is going away: its soft removals are cancelled; hard ones go on unanswered. */
void removals_waiter_gone(struct removals *r, const void *waiter);
