/* SPDX-License-Identifier: MIT */
/* Error reporting helpers. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "policy/error.h"

#define QUOTE_MAX_CHARS 64

int policy_error_set(struct policy_error *err, const char *file, unsigned line, int r,
		     const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return r;
	snprintf(err->file, sizeof(err->file), "%s", file ? file : "");
	err->line = line;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	return r;
}

void policy_error_format(const struct policy_error *err, char *buf, size_t size)
{
	if (!buf || size == 0)
		return;
	if (!err) {
		buf[0] = '\0';
		return;
	}
	if (err->line)
		snprintf(buf, size, "%s:%u: %s", err->file, err->line, err->message);
	else
		snprintf(buf, size, "%s: %s", err->file, err->message);
}

void policy_quote(const char *s, size_t len, char *buf, size_t size)
{
	size_t o = 0;

	/* Worst case per input byte is 4 output bytes ("\xff"); stop early enough for the tail. */
	if (!buf || size < 8) {
		if (buf && size)
			buf[0] = '\0';
		return;
	}
	buf[o++] = '"';
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (i == QUOTE_MAX_CHARS || o + 4 + 5 >= size) {
			memcpy(buf + o, "\"...", 4);
			o += 4;
			buf[o] = '\0';
			return;
		}
		if (c == '"' || c == '\\') {
			buf[o++] = '\\';
			buf[o++] = (char)c;
		} else if (c < 0x20 || c >= 0x7f) {
			o += (size_t)snprintf(buf + o, size - o, "\\x%02x", c);
		} else {
			buf[o++] = (char)c;
		}
	}
	buf[o++] = '"';
	buf[o] = '\0';
}
