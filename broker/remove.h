/* SPDX-License-Identifier: MIT */
/*
 * Removal of a lease by an administrator, as David Gibson proposed in the
 * 2011 thread: "soft" asks the holder to give the group back and waits (up
 * to a timeout the administrator picks, then fails leaving the lease
 * alone); "hard" kills the holder, and every other process found holding
 * the group file, at once. The wait policy (soft, wait, then hard) is the
 * administrator's tool's, like kill -15, drum fingers, kill -9.
 *
 * The request stays pending until the lease ends (the group file is
 * closed) and is answered then, or at its timeout.
 */
#pragma once

#include "broker/broker.h"
#include "broker/lease.h"
#include "protocol/message.h"

#include <stdbool.h>
#include <stdint.h>

/* Remove requests waiting at once, over all connections. */
#define REMOVALS_MAX 1024
/* How long a hard removal waits for the killed processes' files to close. */
#define REMOVE_HARD_TIMEOUT_USEC (10ULL * 1000 * 1000)

struct connection;
struct removals;

int removals_new(struct broker *b, struct removals **ret);
struct removals *removals_free(struct removals *r);

/* The remove request of an administrator's connection c. */
void remove_handle(struct broker *b, struct connection *c, const struct vb_request *req);

/* Whether a removal of group is pending (its lease shows as "removing"). */
bool removals_pending(const struct removals *r, uint32_t group);

/* Lease hooks: the lease of l ended; l's file is still open in pids[]. */
void removals_lease_ended(struct removals *r, const struct lease *l);
void removals_lease_still_open(struct removals *r, const struct lease *l, const pid_t *pids,
			       size_t n);

/* c is closing: a soft removal's wait is cancelled; a hard one goes on unanswered. */
void removals_connection_closed(struct removals *r, struct connection *c);
