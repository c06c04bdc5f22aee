/* SPDX-License-Identifier: MIT */
#include "common/textbuf.h"

#include <stdlib.h>
#include <string.h>

void textbuf_done(struct textbuf *t)
{
	if (t->grows) {
		free(t->buf);
		*t = textbuf_growing();
	} else {
		textbuf_reset(t);
	}
}

/* Room for n more bytes: true, or false with t->full set. */
static bool textbuf_room(struct textbuf *t, size_t n)
{
	size_t want;
	char *p;

	if (n <= t->size - t->len)
		return true;
	if (!t->grows || n > SIZE_MAX / 2 - t->len) {
		t->full = true;
		return false;
	}
	want = t->size ? t->size : 256;
	while (want - t->len < n)
		want *= 2;
	p = realloc(t->buf, want);
	if (!p) {
		t->full = true;
		return false;
	}
	t->buf = p;
	t->size = want;
	return true;
}

void textbuf_put(struct textbuf *t, const char *s, size_t n)
{
	if (!textbuf_room(t, n))
		n = t->size - t->len; /* what fits */
	if (n)
		memcpy(t->buf + t->len, s, n);
	t->len += n;
}

void textbuf_puts(struct textbuf *t, const char *s)
{
	textbuf_put(t, s, strlen(s));
}

void textbuf_putc(struct textbuf *t, char c)
{
	if (t->len < t->size || textbuf_room(t, 1))
		t->buf[t->len++] = c;
}

void textbuf_u64(struct textbuf *t, uint64_t v)
{
	char digits[20];
	size_t n = sizeof(digits);

	do {
		digits[--n] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	textbuf_put(t, digits + n, sizeof(digits) - n);
}

void textbuf_i64(struct textbuf *t, int64_t v)
{
	if (v < 0) {
		textbuf_putc(t, '-');
		textbuf_u64(t, 0 - (uint64_t)v);
	} else {
		textbuf_u64(t, (uint64_t)v);
	}
}
