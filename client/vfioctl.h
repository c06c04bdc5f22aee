/* SPDX-License-Identifier: MIT */
/*
 * vfioctl: the command-line client of vfio-brokerd. Each command is a function
 * taking the global settings and its own argv (argv[0] is the command's name)
 * and returning the process's exit status; vfioctl.c holds the table that
 * dispatches to them and answers --help for each.
 */
#pragma once

#include "client/vfiobroker.h"
#include "client/vfioctl_report.h"

#include <stdbool.h>

/* Exit statuses. lease, run and merge -- CMD exit with CMD's status instead. */
enum vfioctl_exit {
	VFIOCTL_EXIT_OK = 0,
	VFIOCTL_EXIT_FAILED = 1,      /* the broker refused, or the operation failed */
	VFIOCTL_EXIT_USAGE = 2,	      /* bad command line */
	VFIOCTL_EXIT_UNREACHABLE = 3, /* no broker to talk to, or the conversation broke */
};

/* Global settings, from the options before the command. */
struct vfioctl {
	const char *socket_path; /* --socket, else $VFIO_BROKER_SOCKET, else the default */
	bool json;		 /* --json: machine-readable output on stdout */
};

/*
 * vfioctl_open_broker connects to the broker at ctl->socket_path. Returns 0
 * with the connection in *ret, or reports why not on stderr and returns the
 * exit status to end with (VFIOCTL_EXIT_UNREACHABLE).
 */
int vfioctl_open_broker(const struct vfioctl *ctl, struct vfiobroker **ret);
/*
 * vfioctl_close_broker ends what vfioctl_open_broker began, for a command that
 * made one call (whose result is r): on failure it first reports it as
 * report_broker_error does for op, group and what, then disconnects b.
 * Returns 0, or the exit code for the failure.
 */
int vfioctl_close_broker(struct vfiobroker *b, int r, enum report_op op, int64_t group,
			 const char *what);

/*
 * Command-line parsing shared by the commands. Each returns 0 with the value
 * stored, or reports a usage error naming `command` and returns
 * VFIOCTL_EXIT_USAGE.
 */
int vfioctl_parse_group(const char *command, const char *arg, unsigned *ret);
/*
 * vfioctl_split_command finds a "--" in argv[0..*argc): everything after it
 * is the command to run, stored in *ret_cmd (NULL when there is no "--", or
 * nothing after it); *argc is cut down to what came before it.
 */
void vfioctl_split_command(int *argc, char **argv, char ***ret_cmd);
/*
 * vfioctl_bad_option reports what getopt_long() returned c ('?' or ':') for,
 * after parsing argv of `command` (NULL: the global options), and returns
 * VFIOCTL_EXIT_USAGE.
 */
int vfioctl_bad_option(const char *command, int c, char **argv);

/* The commands. */
int vfioctl_list(struct vfioctl *ctl, int argc, char **argv);
int vfioctl_leases(struct vfioctl *ctl, int argc, char **argv);
int vfioctl_lease(struct vfioctl *ctl, int argc, char **argv);
int vfioctl_run(struct vfioctl *ctl, int argc, char **argv);
int vfioctl_release(struct vfioctl *ctl, int argc, char **argv);
int vfioctl_merge(struct vfioctl *ctl, int argc, char **argv);
int vfioctl_unmerge(struct vfioctl *ctl, int argc, char **argv);
int vfioctl_remove(struct vfioctl *ctl, int argc, char **argv);
int vfioctl_reload(struct vfioctl *ctl, int argc, char **argv);
int vfioctl_quarantine(struct vfioctl *ctl, int argc, char **argv);
int vfioctl_unquarantine(struct vfioctl *ctl, int argc, char **argv);
int vfioctl_policy_check(struct vfioctl *ctl, int argc, char **argv);
int vfioctl_policy_explain(struct vfioctl *ctl, int argc, char **argv);
