/* SPDX-License-Identifier: MIT */
#include "broker/log.h"

#include <errno.h>
#include <inttypes.h>
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

/* One line on stderr, written with a single write() so that lines never interleave. */
static void log_write_stderr(const char *message, const struct log_fields *f)
{
	char line[LOG_LINE_MAX + 512];
	size_t n;
	int k;

	k = snprintf(line, sizeof(line), "vfio-brokerd: %s", message);
	n = k < 0 ? 0 : (size_t)k < sizeof(line) ? (size_t)k : sizeof(line) - 1;
	if (f && f->event) {
		char fields[512];

		k = snprintf(fields, sizeof(fields), " [EVENT=%s", f->event);
		if (f->uid >= 0)
			k += snprintf(fields + k, sizeof(fields) - (size_t)k, " UID=%" PRId64,
				      f->uid);
		if (f->pid >= 0 && (size_t)k < sizeof(fields))
			k += snprintf(fields + k, sizeof(fields) - (size_t)k, " PID=%" PRId64,
				      f->pid);
		if (f->group >= 0 && (size_t)k < sizeof(fields))
			k += snprintf(fields + k, sizeof(fields) - (size_t)k, " GROUP=%" PRId64,
				      f->group);
		if (f->devices && (size_t)k < sizeof(fields))
			k += snprintf(fields + k, sizeof(fields) - (size_t)k, " DEVICES=%s",
				      f->devices);
		if (f->rule && (size_t)k < sizeof(fields))
			k += snprintf(fields + k, sizeof(fields) - (size_t)k, " RULE=%s", f->rule);
		if ((size_t)k < sizeof(fields))
			snprintf(fields + k, sizeof(fields) - (size_t)k, "]");
		k = snprintf(line + n, sizeof(line) - n, "%s", fields);
		n += k < 0 ? 0 : (size_t)k < sizeof(line) - n ? (size_t)k : sizeof(line) - n - 1;
	}
	if (n >= sizeof(line) - 1)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	/* A failed log write has nowhere to be reported. */
	(void)!write(STDERR_FILENO, line, n);
}

/* Send to the journal; on failure the caller falls back to stderr. */
static int log_write_journal(int priority, const char *message, const struct log_fields *f)
{
	char buf[10][LOG_LINE_MAX + 32];
	struct iovec iov[10];
	size_t n = 0;

#define ADD(...)                                                                                   \
	do {                                                                                       \
		int _k = snprintf(buf[n], sizeof(buf[n]), __VA_ARGS__);                            \
		iov[n].iov_base = buf[n];                                                          \
		iov[n].iov_len = _k < 0			       ? 0                                 \
				 : (size_t)_k < sizeof(buf[n]) ? (size_t)_k                        \
							       : sizeof(buf[n]) - 1;               \
		n++;                                                                               \
	} while (0)

	ADD("MESSAGE=%s", message);
	ADD("PRIORITY=%d", priority);
	ADD("SYSLOG_IDENTIFIER=vfio-brokerd");
	if (f && f->event) {
		ADD("VB_EVENT=%s", f->event);
		if (f->uid >= 0)
			ADD("VB_UID=%" PRId64, f->uid);
		if (f->pid >= 0)
			ADD("VB_PID=%" PRId64, f->pid);
		if (f->group >= 0)
			ADD("VB_GROUP=%" PRId64, f->group);
		if (f->devices)
			ADD("VB_DEVICES=%s", f->devices);
		if (f->rule)
			ADD("VB_RULE=%s", f->rule);
	}
#undef ADD
	return sd_journal_sendv(iov, (int)n);
}

static void log_dispatch(int priority, const struct log_fields *f, const char *message)
{
	if (priority > log_max_level)
		return;
	if (log_target == LOG_TARGET_JOURNAL && log_write_journal(priority, message, f) >= 0)
		return;
	log_write_stderr(message, f);
}

void log_event(int priority, const struct log_fields *f, const char *fmt, ...)
{
	char message[LOG_LINE_MAX];
	int saved = errno;
	va_list ap;

	if (priority > log_max_level)
		return;
	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	log_dispatch(priority, f, message);
	errno = saved;
}

int log_internal(int priority, int error, const char *fmt, ...)
{
	char message[LOG_LINE_MAX];
	int saved = errno;
	va_list ap;

	if (error < 0)
		error = -error;
	if (priority <= log_max_level) {
		/* %m in fmt reads errno: point it at the error being reported. */
		errno = error;
		va_start(ap, fmt);
		vsnprintf(message, sizeof(message), fmt, ap);
		va_end(ap);
		log_dispatch(priority, NULL, message);
	}
	errno = saved;
	return -error;
}
