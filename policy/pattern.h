/* SPDX-License-Identifier: MIT */
/*
 * Shell-style patterns (fnmatch(3), no flags: '*' also matches '/' and leading dots) with a
 * fast path: a pattern without wildcard characters is compared with strcmp, decided once
 * at load time.
 */
#pragma once

#include <stdbool.h>

struct pattern {
	char *text;
	bool wild; /* contains * ? [ or \ : needs fnmatch */
};

/* Copy s into p.  Returns 0 or -ENOMEM.  p is untouched on failure. */
int pattern_init(struct pattern *p, const char *s);
/* Release what pattern_init() allocated.  Accepts NULL and a zeroed pattern. */
void pattern_done(struct pattern *p);
/* True if s matches p.  Allocation-free. */
bool pattern_match(const struct pattern *p, const char *s);
/* Like pattern_match(), but no wildcard matches a '/': each one must be written. */
bool pattern_match_segments(const struct pattern *p, const char *s);
/* True if s contains a character that makes it a glob. */
bool pattern_is_wild(const char *s);
