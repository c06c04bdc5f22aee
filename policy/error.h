/* SPDX-License-Identifier: MIT */
/* Filling struct policy_error, and quoting admin-written strings for messages. */
#pragma once

#include <stddef.h>

#include "policy/policy.h"

/*
 * Fill *err (if not NULL) with file, line and the formatted message, truncating each to
 * its field.  Returns r, so that callers can `return policy_error_set(err, ..., -EINVAL, ...)`.
 */
int policy_error_set(struct policy_error *err, const char *file, unsigned line, int r,
		     const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/*
 * Write s[0..len) into buf as a double-quoted string with control and non-ASCII bytes
 * escaped, cut with "..." after about 64 characters: file contents end up in logs, so keep
 * them short and printable.
 */
void policy_quote(const char *s, size_t len, char *buf, size_t size);
