/* SPDX-License-Identifier: MIT */
/* From one policy file's text to validated rules. */
#pragma once

#include <stddef.h>

#include "policy/policy.h"
#include "policy/rule.h"

/*
 * Parse the text of one policy file and append its rules to out, each pointing at file
 * (which must outlive them).  max_rules caps out->n.  Returns 0, or a negative errno with
 * *err naming file, line and problem; on failure out may hold some of the file's rules (the
 * caller throws the whole load away).  Warnings (unknown user or group names) go to warn.
 */
int parse_file(const char *file, const char *text, size_t len, unsigned flags, policy_warn_fn warn,
	       void *userdata, size_t max_rules, struct rule_vec *out, struct policy_error *err);
