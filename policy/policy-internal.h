/* SPDX-License-Identifier: MIT */
/* The loaded policy, shared by load.c (which builds it) and decide.c (which reads it). */
#pragma once

#include <stddef.h>

#include "policy/index.h"
#include "policy/policy.h"
#include "policy/rule.h"

#define POLICY_N_ACTIONS 3
_Static_assert(POLICY_ACTION_ALL == (1 << POLICY_N_ACTIONS) - 1, "one index per action");

struct policy {
	char **files; /* names as given (directory entries), in load order */
	size_t n_files;
	struct rule *rules; /* in load order: the index is the precedence */
	size_t n_rules;
	/* one index per effect and action, [action_index(a)]: a rule is filed for each action
	 * it applies to, so rules for other actions are never candidates */
	struct rule_index allow[POLICY_N_ACTIONS];
	struct rule_index deny[POLICY_N_ACTIONS];
};

/* POLICY_ACTION_LEASE -> 0, MERGE -> 1, REMOVE_OWN -> 2.  action: exactly one known bit. */
static inline size_t action_index(unsigned action)
{
	return (size_t)__builtin_ctz(action);
}
