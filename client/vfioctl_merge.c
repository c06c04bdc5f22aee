/* SPDX-License-Identifier: MIT */
/*
 * merge and unmerge. Both act on leases the caller's process tree holds, so
 * they are run from inside a lease: vfioctl lease 7 8 -- sh -c 'vfioctl merge
 * 7 8 -- qemu ...'. The broker attaches the groups to one container and hands
 * back its file; the groups stay in it for as long as they are open. To add
 * groups to a container of its own, a program calls VFIO_GROUP_SET_CONTAINER
 * on its group fds itself: the broker takes no file descriptors.
 */
#include "client/vfioctl.h"
#include "client/vfioctl_print.h"
#include "client/vfioctl_report.h"
#include "client/vfioctl_spawn.h"
#include "protocol/message.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Runs cmd in place of vfioctl with the container as descriptor 3. Returns only on failure. */
static int exec_with_container(char **cmd, int container_fd)
{
	char env_container[64];
	char *env[] = {env_container, NULL};
	struct spawn s = {.argv = cmd, .fds = &container_fd, .n_fds = 1, .env = env};
	int r;

	snprintf(env_container, sizeof(env_container), "VFIO_BROKER_CONTAINER_FD=%d",
		 SPAWN_FIRST_FD);
	r = spawn_exec(&s);
	report_error("failed", "cannot run %s: %s", cmd[0], strerror(-r));
	return spawn_failure_status(r);
}

int vfioctl_merge(struct vfioctl *ctl, int argc, char **argv)
{
	static const struct option options[] = {
		{"json", no_argument, NULL, 'j'},
		{0},
	};
	unsigned groups[VB_MAX_MERGE_GROUPS];
	struct vfiobroker *b;
	int fd, c, r;
	size_t n = 0;
	char **cmd;

	vfioctl_split_command(&argc, argv, &cmd);
	while ((c = getopt_long(argc, argv, ":", options, NULL)) != -1) {
		switch (c) {
		case 'j':
			ctl->json = true;
			break;
		default:
			return vfioctl_bad_option("merge", c, argv);
		}
	}
	if (optind >= argc)
		return report_usage("merge needs at least one group");
	for (int i = optind; i < argc; i++) {
		if (n == VB_MAX_MERGE_GROUPS)
			return report_usage("merge takes at most %d groups", VB_MAX_MERGE_GROUPS);
		r = vfioctl_parse_group("merge", argv[i], &groups[n]);
		if (r)
			return r;
		for (size_t j = 0; j < n; j++)
			if (groups[j] == groups[n])
				return report_usage("merge: group %u is named twice", groups[n]);
		n++;
	}

	r = vfioctl_open_broker(ctl, &b);
	if (r)
		return r;
	/* No container of ours: the broker takes no descriptors (PROTOCOL.md, merge). */
	r = vfioctl_close_broker(b, vfiobroker_merge(b, groups, n, -1, &fd), REPORT_OP_MERGE,
				 n == 1 ? (int64_t)groups[0] : -1, "merge");
	if (r)
		return r;
	if (cmd)
		return exec_with_container(cmd, fd);
	/* The groups stay in the container while they are open; our copy of it can go. */
	close(fd);

	print_start(ctl->json);
	print_text("merged groups");
	print_open_array("groups");
	for (size_t i = 0; i < n; i++) {
		print_text(" ");
		print_uint(NULL, 0, groups[i]);
	}
	print_close_array();
	print_text(" into one container\n");
	return print_finish() < 0 ? VFIOCTL_EXIT_FAILED : VFIOCTL_EXIT_OK;
}

int vfioctl_unmerge(struct vfioctl *ctl, int argc, char **argv)
{
	static const struct option options[] = {
		{"json", no_argument, NULL, 'j'},
		{0},
	};
	struct vfiobroker *b;
	unsigned group;
	int c, r;

	while ((c = getopt_long(argc, argv, ":", options, NULL)) != -1) {
		if (c != 'j')
			return vfioctl_bad_option("unmerge", c, argv);
		ctl->json = true;
	}
	if (argc - optind != 1)
		return report_usage("unmerge takes one group");
	r = vfioctl_parse_group("unmerge", argv[optind], &group);
	if (r)
		return r;
	r = vfioctl_open_broker(ctl, &b);
	if (r)
		return r;
	r = vfioctl_close_broker(b, vfiobroker_unmerge(b, group), REPORT_OP_UNMERGE, group,
				 "unmerge");
	if (r)
		return r;

	print_start(ctl->json);
	print_text("group ");
	print_uint("group", 0, group);
	print_text(": unmerged\n");
	return print_finish() < 0 ? VFIOCTL_EXIT_FAILED : VFIOCTL_EXIT_OK;
}
