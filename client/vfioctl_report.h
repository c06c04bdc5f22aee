/* SPDX-License-Identifier: MIT */
/*
 * How vfioctl tells the user that something failed: one line on stderr,
 * "vfioctl: CODE: MESSAGE", where CODE is the broker's error code (denied,
 * busy, ...) or one of vfioctl's own (usage, unreachable, disconnected,
 * protocol, failed), followed where it helps by a "hint:" line saying what to
 * do next. Each function returns the exit status that goes with the failure.
 */
#pragma once

#include "client/vfiobroker.h"

#include <stdint.h>

/* What vfioctl asked the broker for, to choose a hint. */
enum report_op {
	REPORT_OP_LIST,
	REPORT_OP_LEASES,
	REPORT_OP_LEASE,
	REPORT_OP_RELEASE,
	REPORT_OP_MERGE,
	REPORT_OP_UNMERGE,
	REPORT_OP_REMOVE,
	REPORT_OP_RELOAD,
	REPORT_OP_EXPLAIN,
	REPORT_OP_QUARANTINE,
};

/* "vfioctl: usage: ..." and a pointer to --help; returns VFIOCTL_EXIT_USAGE. */
int report_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "vfioctl: CODE: ..." */
void report_error(const char *code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "vfioctl: ...": something the user should know that is not a failure. */
void report_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "vfioctl: warning: ..." */
void report_warning(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "hint: ..." */
void report_hint(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * report_connect_error explains why connecting to the broker at path failed
 * with r. Returns VFIOCTL_EXIT_UNREACHABLE.
 */
int report_connect_error(const char *path, int r);

/*
 * report_broker_error explains why op (about `group`, or -1 when there is no
 * single group, or it is not known) failed with r on connection b: the
 * broker's refusal with a hint, or the transport failure. `what` names the
 * target for transport failures ("group 7", "0000:01:00.0"). Returns
 * VFIOCTL_EXIT_FAILED for refusals and local failures, VFIOCTL_EXIT_UNREACHABLE
 * when the conversation with the broker broke.
 */
int report_broker_error(const struct vfiobroker *b, int r, enum report_op op, int64_t group,
			const char *what);
