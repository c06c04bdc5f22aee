/* SPDX-License-Identifier: MIT */
/*
 * Logging of vfio-brokerd: to the journal with structured fields (VB_EVENT,
 * VB_UID, ...) or to stderr with one line per message and the same fields in
 * brackets. Every grant, denial, release and removal goes through log_event().
 */
#pragma once

#include <stdint.h>
#include <syslog.h>

enum log_target {
	LOG_TARGET_AUTO,
	LOG_TARGET_JOURNAL,
	LOG_TARGET_STDERR,
};

/* "auto", "journal", "stderr" -> the target; -EINVAL otherwise. */
int log_target_from_string(const char *s);

/* Pick the target (resolving auto) and the level (VFIO_BROKERD_DEBUG=1: debug). */
void log_setup(enum log_target target);

/* The fields of an auditable event. Absent: NULL strings, negative numbers. */
struct log_fields {
	const char *event;   /* VB_EVENT: grant, deny, release, remove, reload, ... */
	int64_t uid;	     /* VB_UID */
	int64_t pid;	     /* VB_PID */
	int64_t group;	     /* VB_GROUP */
	const char *devices; /* VB_DEVICES: comma-separated PCI addresses */
	const char *rule;    /* VB_RULE */
};

#define LOG_FIELDS(ev) ((struct log_fields){.event = (ev), .uid = -1, .pid = -1, .group = -1})

void log_event(int priority, const struct log_fields *f, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * log_internal logs one message; %m expands to strerror(abs(error)) when
 * error is non-zero. Returns -abs(error), so that "return log_error_errno(r,
 * ...)" both logs and propagates.
 */
int log_internal(int priority, int error, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_debug(...)		      log_internal(LOG_DEBUG, 0, __VA_ARGS__)
#define log_info(...)		      log_internal(LOG_INFO, 0, __VA_ARGS__)
#define log_notice(...)		      log_internal(LOG_NOTICE, 0, __VA_ARGS__)
#define log_warning(...)	      log_internal(LOG_WARNING, 0, __VA_ARGS__)
#define log_error(...)		      log_internal(LOG_ERR, 0, __VA_ARGS__)
#define log_debug_errno(error, ...)   log_internal(LOG_DEBUG, error, __VA_ARGS__)
#define log_warning_errno(error, ...) log_internal(LOG_WARNING, error, __VA_ARGS__)
#define log_error_errno(error, ...)   log_internal(LOG_ERR, error, __VA_ARGS__)
