/* SPDX-License-Identifier: MIT */
/*
 * The policy gate: whether a caller may lease or merge a group, asked of the
 * policy in force on the group as sysfs shows it now. Shared by lease, merge
 * and explain. It describes a refusal as a reply_error and logs denials
 * (EVENT=deny); it never sends anything.
 */
#pragma once

#include "broker/broker.h"
#include "broker/identity.h"
#include "broker/inventory.h"
#include "broker/reply.h"
#include "policy/policy.h"

#include <stddef.h>
#include <stdint.h>

/* A group as the policy sees it. */
struct access_group {
	struct inventory_group *group;
	struct policy_device devs[INVENTORY_MAX_DEVICES];
	size_t n_devs;	    /* endpoints: bridges are not leased */
	char devices[1024]; /* every member's address, comma-separated, for logs */
};

/*
 * access_read_group reads group into *ret (release with access_group_done).
 * A group that does not exist (no-such-group), cannot be read (internal) or
 * has no endpoint to lease (not-viable) is an error described in *err; the
 * read failure is logged.
 */
int access_read_group(struct broker *b, uint32_t group, struct access_group *ret,
		      struct reply_error *err);
void access_group_done(struct access_group *ag);

/*
 * access_check_group reads group and asks the policy whether caller may do
 * action on it. On success *ret_group (freed by the caller) and *ret are
 * set. Otherwise *err says why (denied to a caller in another user
 * namespace, no-such-group, not-viable, denied with the deciding rule, or
 * internal), the refusal is logged, and a negative errno is returned.
 */
int access_check_group(struct broker *b, const struct identity *caller, uint32_t group,
		       enum policy_action action, struct inventory_group **ret_group,
		       struct policy_decision *ret, struct reply_error *err);

/*
 * Log a refused request of caller (EVENT=deny) with err's sentence: what
 * ("lease", "merge") of group (negative: of devices instead).
 */
void access_log_refusal(const struct identity *caller, const char *what, int64_t group,
			const char *devices, const char *rule, const struct reply_error *err);
