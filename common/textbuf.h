/* SPDX-License-Identifier: MIT */
/*
 * Text appended without stdio: bytes, strings and decimal numbers into a
 * buffer, either the caller's (fixed size) or one of its own that grows.
 *
 * printf and open_memstream() cost more than the text they write: the
 * journal's records were about a third of a lease+release cycle's
 * instructions in vfprintf, fputc and _IO_default_xsputn (callgrind). Every
 * writer of ours (the hot replies, the list cache, the journal) appends
 * through this instead.
 *
 * A text that does not fit (a fixed buffer full, or a failed growth) keeps
 * what fitted and says so in `full`; the caller checks once at the end.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct textbuf {
	char *buf;
	size_t size; /* bytes buf holds */
	size_t len;  /* bytes written */
	bool full;   /* something did not fit: the text is cut */
	bool grows;  /* buf is ours (malloc) and grows; else the caller's, fixed */
};

/* A writer into buf[0..size), which is never overrun. */
static inline struct textbuf textbuf_fixed(char *buf, size_t size)
{
	return (struct textbuf){.buf = buf, .size = size};
}

/* A writer into a buffer of its own; release it with textbuf_done(). */
static inline struct textbuf textbuf_growing(void)
{
	return (struct textbuf){.grows = true};
}

/* Start again at length 0, keeping the buffer. */
static inline void textbuf_reset(struct textbuf *t)
{
	t->len = 0;
	t->full = false;
}

/* Free a growing writer's buffer (a fixed one's is the caller's) and reset. */
void textbuf_done(struct textbuf *t);

void textbuf_put(struct textbuf *t, const char *s, size_t n);
void textbuf_puts(struct textbuf *t, const char *s);
void textbuf_putc(struct textbuf *t, char c);
void textbuf_u64(struct textbuf *t, uint64_t v);
void textbuf_i64(struct textbuf *t, int64_t v);
