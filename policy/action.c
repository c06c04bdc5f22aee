/* SPDX-License-Identifier: MIT */
/* Names of the policy actions, as written in policy files and on the wire. */
#include <errno.h>
#include <string.h>

#include "policy/policy.h"

static const struct {
	enum policy_action action;
	const char *name;
} action_names[] = {
	{POLICY_ACTION_LEASE, "lease"},
	{POLICY_ACTION_MERGE, "merge"},
	{POLICY_ACTION_REMOVE_OWN, "remove-own"},
};

int policy_action_from_string(const char *s)
{
	if (!s)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(action_names) / sizeof(action_names[0]); i++)
		if (strcmp(s, action_names[i].name) == 0)
			return (int)action_names[i].action;
	return -EINVAL;
}

const char *policy_action_to_string(enum policy_action a)
{
	for (size_t i = 0; i < sizeof(action_names) / sizeof(action_names[0]); i++)
		if (a == action_names[i].action)
			return action_names[i].name;
	return NULL;
}
