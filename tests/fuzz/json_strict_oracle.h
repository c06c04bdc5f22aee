/* SPDX-License-Identifier: MIT */
/*
 * common/json_strict, the one strict JSON scan requests and policy files go through,
 * against the independent oracle of strict_json.h: both must accept and refuse the same
 * texts, except where json_strict is stricter on purpose:
 *   - "\u0000" in a string value (the oracle minds it only in member names);
 *   - two member names that are one to json-c only because it turns every lone surrogate
 *     escape into U+FFFD (the oracle keeps them apart);
 *   - depth: json_strict refuses at the decoder's limit, far below the oracle's.
 * Header-only, as strict_json.h is: each harness is one translation unit.
 */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/json_strict.h"
#include "tests/fuzz/strict_json.h"

/* Whether text holds a \u escape of a surrogate (perhaps a lone one). */
static inline bool oracle_has_surrogate_escape(const char *text, size_t len)
{
	for (size_t i = 0; i + 3 < len; i++)
		if (text[i] == '\\' && text[i + 1] == 'u' && (text[i + 2] | 0x20) == 'd' &&
		    strchr("89abcdefABCDEF", text[i + 3]) && text[i + 3])
			return true;
	return false;
}

/*
 * Scan text as a decoder with max_depth does, into *ret and *ret_err, and say whether the
 * scan agrees with the oracle (printing both verdicts when it does not).
 */
static inline bool oracle_agrees(const char *text, size_t len, unsigned max_depth, int *ret,
				 struct json_strict_error *ret_err)
{
	enum strict_json_result sj = strict_json_check(text, len, 0);
	struct json_strict_error err = {0};
	int r = json_strict_scan(text, len, max_depth, NULL, &err);
	bool agree;

	if (r == -ENOMEM)
		agree = true;
	else if (sj != STRICT_JSON_OK)
		agree = r == -EBADMSG;
	else
		agree = r == 0 || (r == -EBADMSG && (err.fault == JSON_STRICT_E_TOO_DEEP ||
						     err.fault == JSON_STRICT_E_NUL_ESCAPE ||
						     (err.fault == JSON_STRICT_E_DUPLICATE_KEY &&
						      oracle_has_surrogate_escape(text, len))));
	if (!agree)
		fprintf(stderr, "json_strict: %d (%s at %zu); oracle: %s\n", r,
			r == -EBADMSG ? err.reason : "accepted", err.offset,
			strict_json_describe(sj));
	*ret = r;
	*ret_err = err;
	return agree;
}
