/* SPDX-License-Identifier: MIT */
/* The loaded policy, shared by load.c (which builds it) and decide.c (which reads it). */
#pragma once

#include <stddef.h>

#include "policy/index.h"
#include "policy/policy.h"
#include "policy/rule.h"

struct policy {
	char **files; /* names as given (directory entries), in load order */
	size_t n_files;
	struct rule *rules; /* in load order: the index is the precedence */
	size_t n_rules;
	struct rule_index allow;
	struct rule_index deny;
};
