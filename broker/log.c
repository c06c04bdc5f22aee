/* SPDX-License-Identifier: MIT */
#include "broker/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#define LOG_LINE_MAX 2048

static enum log_target log_target = LOG_TARGET_STDERR;
static int log_max_level = LOG_INFO;

int log_target_from_string(const char *s)
{
	if (!s)
		return -EINVAL;
	if (strcmp(s, "auto") == 0)
		return LOG_TARGET_AUTO;
	if (strcmp(s, "journal") == 0)
		return LOG_TARGET_JOURNAL;
	if (strcmp(s, "stderr") == 0)
		return LOG_TARGET_STDERR;
	return -EINVAL;
}

/* True when systemd connected our stderr to the journal ($JOURNAL_STREAM is "dev:ino"). */
static bool stderr_is_journal(void)
{
	const char *e = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
		return false;
	if (fstat(STDERR_FILENO, &st) < 0)
		return false;
	return st.st_dev == (dev_t)dev && st.st_ino == (ino_t)ino;
}

void log_setup(enum log_target target)
{
	const char *debug = getenv("VFIO_BROKERD_DEBUG");

	if (target == LOG_TARGET_AUTO)
		target = stderr_is_journal() || access("/run/systemd/journal/socket", F_OK) == 0
				 ? LOG_TARGET_JOURNAL
				 : LOG_TARGET_STDERR;
	log_target = target;
	if (debug && strcmp(debug, "0") != 0)
		log_max_level = LOG_DEBUG;
}

/* ---- building a line without printf: the fields are plain strings and numbers ---- */

/* A bounded text being appended to: never overruns, always leaves room for a NUL. */
struct text {
	char *buf;
	size_t size; /* > 0 */
	size_t len;  /* < size */
};

static void text_add(struct text *t, const char *s, size_t n)
{
	size_t room = t->size - 1 - t->len;

	if (n > room)
		n = room;
	memcpy(t->buf + t->len, s, n);
	t->len += n;
}

static void text_add_str(struct text *t, const char *s)
{
	text_add(t, s, strlen(s));
}

/* Decimal of a non-negative number (the fields only log those). */
static void text_add_u64(struct text *t, uint64_t v)
{
	char digits[20];
	size_t n = sizeof(digits);

	do {
		digits[--n] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	text_add(t, digits + n, sizeof(digits) - n);
}

/* The message itself, formatted once, straight into the line being built. */
static void text_add_vprintf(struct text *t, size_t max, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));
static void text_add_vprintf(struct text *t, size_t max, const char *fmt, va_list ap)
{
	size_t room = t->size - t->len;
	int k;

	if (max < room)
		room = max;
	k = vsnprintf(t->buf + t->len, room, fmt, ap);
	if (k > 0)
		t->len += (size_t)k < room ? (size_t)k : room - 1;
}

/* " [EVENT=grant UID=1000 ...]": the fields in brackets on the stderr line. */
static void text_add_fields(struct text *t, const struct log_fields *f)
{
	text_add_str(t, " [EVENT=");
	text_add_str(t, f->event);
	if (f->uid >= 0) {
		text_add_str(t, " UID=");
		text_add_u64(t, (uint64_t)f->uid);
	}
	if (f->pid >= 0) {
		text_add_str(t, " PID=");
		text_add_u64(t, (uint64_t)f->pid);
	}
	if (f->group >= 0) {
		text_add_str(t, " GROUP=");
		text_add_u64(t, (uint64_t)f->group);
	}
	if (f->devices) {
		text_add_str(t, " DEVICES=");
		text_add_str(t, f->devices);
	}
	if (f->rule) {
		text_add_str(t, " RULE=");
		text_add_str(t, f->rule);
	}
	text_add_str(t, "]");
}

#define LOG_PREFIX	   "vfio-brokerd: "
#define LOG_FIELDS_MAX	   512
#define JOURNAL_MESSAGE	   "MESSAGE="
#define JOURNAL_FIELDS_MAX 8

/*
 * One line on stderr, written with a single write() so that lines never interleave:
 * "vfio-brokerd: MESSAGE [EVENT=... UID=...]". The message is at most LOG_LINE_MAX - 1
 * bytes and the fields at most LOG_FIELDS_MAX - 1.
 */
static void log_write_stderr(const struct log_fields *f, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
static void log_write_stderr(const struct log_fields *f, const char *fmt, va_list ap)
{
	char line[sizeof(LOG_PREFIX) + LOG_LINE_MAX + LOG_FIELDS_MAX];
	struct text t = {.buf = line, .size = sizeof(line) - 1}; /* room for the newline */

	text_add(&t, LOG_PREFIX, sizeof(LOG_PREFIX) - 1);
	text_add_vprintf(&t, LOG_LINE_MAX, fmt, ap);
	if (f && f->event) {
		struct text ft = {.buf = line + t.len, .size = LOG_FIELDS_MAX};

		text_add_fields(&ft, f);
		t.len += ft.len;
	}
	line[t.len++] = '\n';
	/* A failed log write has nowhere to be reported. */
	(void)!write(STDERR_FILENO, line, t.len);
}

/* One journal field "NAME=value" in buf, as iovec n; the value is cut at LOG_LINE_MAX. */
static void journal_field(struct iovec *iov, size_t *n, struct text *buf, const char *name,
			  const char *value, int64_t number)
{
	size_t start = buf->len, max = buf->len + strlen(name) + LOG_LINE_MAX;
	struct text t = *buf;

	if (max < t.size)
		t.size = max + 1;
	text_add_str(&t, name);
	if (value)
		text_add_str(&t, value);
	else
		text_add_u64(&t, (uint64_t)number);
	iov[*n] = (struct iovec){.iov_base = buf->buf + start, .iov_len = t.len - start};
	(*n)++;
	buf->len = t.len;
}

/* Send to the journal; on failure the caller falls back to stderr (with the message). */
static int log_write_journal(int priority, const char *message, size_t len,
			     const struct log_fields *f)
{
	static const char *const priorities[] = {
		"PRIORITY=0", "PRIORITY=1", "PRIORITY=2", "PRIORITY=3",
		"PRIORITY=4", "PRIORITY=5", "PRIORITY=6", "PRIORITY=7",
	};
	static const char identifier[] = "SYSLOG_IDENTIFIER=vfio-brokerd";
	char fields[JOURNAL_FIELDS_MAX * 64 + 2 * LOG_LINE_MAX];
	struct text t = {.buf = fields, .size = sizeof(fields)};
	struct iovec iov[3 + JOURNAL_FIELDS_MAX];
	size_t n = 0;

	iov[n++] = (struct iovec){.iov_base = (void *)message, .iov_len = len};
	iov[n++] = (struct iovec){.iov_base = (void *)priorities[priority & 7],
				  .iov_len = strlen(priorities[priority & 7])};
	iov[n++] =
		(struct iovec){.iov_base = (void *)identifier, .iov_len = sizeof(identifier) - 1};
	if (f && f->event) {
		journal_field(iov, &n, &t, "VB_EVENT=", f->event, 0);
		if (f->uid >= 0)
			journal_field(iov, &n, &t, "VB_UID=", NULL, f->uid);
		if (f->pid >= 0)
			journal_field(iov, &n, &t, "VB_PID=", NULL, f->pid);
		if (f->group >= 0)
			journal_field(iov, &n, &t, "VB_GROUP=", NULL, f->group);
		if (f->devices)
			journal_field(iov, &n, &t, "VB_DEVICES=", f->devices, 0);
		if (f->rule)
			journal_field(iov, &n, &t, "VB_RULE=", f->rule, 0);
	}
	return sd_journal_sendv(iov, (int)n);
}

/*
 * Format the message once: into the stderr line, or after "MESSAGE=" for the journal. A
 * failed journal send falls back to stderr, which formats again (ap is copied for that).
 */
static void log_dispatch(int priority, const struct log_fields *f, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));
static void log_dispatch(int priority, const struct log_fields *f, const char *fmt, va_list ap)
{
	int saved = errno; /* what %m reads, again for the fallback */

	if (log_target == LOG_TARGET_JOURNAL) {
		char message[sizeof(JOURNAL_MESSAGE) + LOG_LINE_MAX];
		struct text t = {.buf = message, .size = sizeof(message)};
		va_list aq;
		int r;

		text_add(&t, JOURNAL_MESSAGE, sizeof(JOURNAL_MESSAGE) - 1);
		va_copy(aq, ap);
		text_add_vprintf(&t, LOG_LINE_MAX, fmt, aq);
		va_end(aq);
		r = log_write_journal(priority, message, t.len, f);
		if (r >= 0)
			return;
		errno = saved;
	}
	log_write_stderr(f, fmt, ap);
}

void log_event(int priority, const struct log_fields *f, const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	if (priority > log_max_level)
		return;
	va_start(ap, fmt);
	log_dispatch(priority, f, fmt, ap);
	va_end(ap);
	errno = saved;
}

int log_internal(int priority, int error, const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	if (error < 0)
		error = -error;
	if (priority <= log_max_level) {
		/* %m in fmt reads errno: point it at the error being reported. */
		errno = error;
		va_start(ap, fmt);
		log_dispatch(priority, NULL, fmt, ap);
		va_end(ap);
	}
	errno = saved;
	return -error;
}
