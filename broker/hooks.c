/* SPDX-License-Identifier: MIT */
#include "broker/hooks.h"
#include "broker/dispatch.h"
#include "broker/lease_requests.h"
#include "broker/lease_store.h"
#include "broker/merge.h"
#include "broker/remove.h"
#include "broker/reply.h"
#include "broker/status.h"

static void hooks_lease_detach(struct lease *l, void *userdata)
{
	merge_detach_lease(userdata, l);
}

static void hooks_lease_still_open(struct lease *l, const struct pidref *refs, size_t n,
				   void *userdata)
{
	struct broker *b = userdata;

	removals_lease_still_open(b->removals, l, refs, n);
}

static void hooks_lease_ended(struct lease *l, bool requested, void *userdata)
{
	struct broker *b = userdata;

	/* A release request's reply says the lease ended; a "released" event would repeat it. */
	if (!requested)
		reply_notify_released(b->server, l->holder, l->group);
	removals_lease_ended(b->removals, l);
	status_update(b->status);
}

static void hooks_lease_holder_freed(struct holder *h, void *userdata)
{
	struct broker *b = userdata;

	server_detach_holder(b->server, h);
}

/*
 * Model: "save" (tests/model/lease.pml). Within the transition, before its
 * caller replies: a lease's fd never reaches a client before the state file
 * records the lease.
 */
static void hooks_lease_changed(struct lease_table *t, const uint32_t *groups, size_t n_groups,
				bool all, void *userdata)
{
	struct broker *b = userdata;

	if (b->lease_store)
		lease_store_record(b->lease_store, t, groups, n_groups, all);
}

const struct lease_hooks hooks_lease = {
	.detach = hooks_lease_detach,
	.still_open = hooks_lease_still_open,
	.ended = hooks_lease_ended,
	.holder_freed = hooks_lease_holder_freed,
	.changed = hooks_lease_changed,
};

static void hooks_connection_opened(struct connection *c)
{
	status_update(c->broker->status);
}

static void hooks_connection_closed(struct connection *c)
{
	lease_requests_connection_closed(c->broker, c);
	status_update(c->broker->status);
}

const struct server_hooks hooks_server = {
	.packet = dispatch_packet,
	.opened = hooks_connection_opened,
	.closed = hooks_connection_closed,
};
