/* SPDX-License-Identifier: MIT */
/* Byte sizes with binary suffixes, as used by "memlock". */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

#include "policy/policy.h"

static const struct {
	char suffix;
	unsigned shift;
} size_suffixes[] = {
	{'T', 40},
	{'G', 30},
	{'M', 20},
	{'K', 10},
};

/*
 * Strict on purpose: no sign, no blanks, no fractions, exactly one optional suffix.  An
 * administrator who writes "8 GB" or "1.5G" gets an error rather than a guess.
 */
int policy_parse_size(const char *s, uint64_t *ret)
{
	uint64_t value = 0;
	unsigned shift = 0;
	const char *p;

	if (!s || !ret)
		return -EINVAL;
	if (*s < '0' || *s > '9')
		return -EINVAL;
	for (p = s; *p >= '0' && *p <= '9'; p++) {
		unsigned digit = (unsigned)(*p - '0');

		if (value > (UINT64_MAX - digit) / 10)
			return -ERANGE;
		value = value * 10 + digit;
	}
	if (*p) {
		char c = *p >= 'a' && *p <= 'z' ? (char)(*p - 'a' + 'A') : *p;
		size_t i;

		for (i = 0; i < sizeof(size_suffixes) / sizeof(size_suffixes[0]); i++)
			if (c == size_suffixes[i].suffix)
				break;
		if (i == sizeof(size_suffixes) / sizeof(size_suffixes[0]) || p[1] != '\0')
			return -EINVAL;
		shift = size_suffixes[i].shift;
	}
	if (shift && value > (UINT64_MAX >> shift))
		return -ERANGE;
	*ret = value << shift;
	return 0;
}

void policy_format_size(uint64_t bytes, char *buf, size_t size)
{
	if (!buf || size == 0)
		return;
	for (size_t i = 0; bytes && i < sizeof(size_suffixes) / sizeof(size_suffixes[0]); i++) {
		uint64_t unit = UINT64_C(1) << size_suffixes[i].shift;

		if (bytes % unit == 0) {
			snprintf(buf, size, "%" PRIu64 "%c", bytes / unit, size_suffixes[i].suffix);
			return;
		}
	}
	snprintf(buf, size, "%" PRIu64, bytes);
}
