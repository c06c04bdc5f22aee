/* SPDX-License-Identifier: MIT */
/* Glob patterns with a strcmp fast path for literal strings. */
#include <errno.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#include "policy/pattern.h"

bool pattern_is_wild(const char *s)
{
	return strpbrk(s, "*?[\\") != NULL;
}

int pattern_init(struct pattern *p, const char *s)
{
	char *copy = strdup(s);

	if (!copy)
		return -ENOMEM;
	p->text = copy;
	p->wild = pattern_is_wild(copy);
	return 0;
}

void pattern_done(struct pattern *p)
{
	if (!p)
		return;
	free(p->text);
	p->text = NULL;
}

bool pattern_match(const struct pattern *p, const char *s)
{
	if (!p->wild)
		return strcmp(p->text, s) == 0;
	return fnmatch(p->text, s, 0) == 0;
}

bool pattern_match_segments(const struct pattern *p, const char *s)
{
	if (!p->wild)
		return strcmp(p->text, s) == 0;
	return fnmatch(p->text, s, FNM_PATHNAME) == 0;
}
