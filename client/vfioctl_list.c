/* SPDX-License-Identifier: MIT */
/*
 * list and leases: what the broker sees. The JSON form has the shape of the
 * protocol's own group_info and lease_info objects.
 */
#include "client/vfioctl.h"
#include "client/vfioctl_print.h"
#include "client/vfioctl_report.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

/* Both commands take --json and no argument. Returns 0 or the exit status of a usage error. */
static int parse_no_arguments(const char *command, struct vfioctl *ctl, int argc, char **argv)
{
	static const struct option options[] = {
		{"json", no_argument, NULL, 'j'},
		{0},
	};
	int c;

	while ((c = getopt_long(argc, argv, ":", options, NULL)) != -1) {
		if (c != 'j')
			return vfioctl_bad_option(command, c, argv);
		ctl->json = true;
	}
	if (optind < argc)
		return report_usage("%s takes no arguments", command);
	return 0;
}

static void print_device(const struct vfiobroker_group *g, size_t index)
{
	const struct vfiobroker_device *d = &g->devices[index];
	unsigned paths = vfiobroker_device_paths(g, index);

	print_open_object(NULL);
	print_text("       ");
	print_string("address", 14, d->address);
	print_string("vendor", 0, d->vendor);
	print_text(":");
	print_string("device", 6, d->device);
	print_string("class", 8, d->class_code);
	print_string("driver", 0, d->driver[0] ? d->driver : NULL);
	/* Which lease paths it can take: "group", "group,cdev"; none for bridges and host drivers.
	 */
	if (paths) {
		print_text("  paths ");
		print_string("paths", 0,
			     paths & VFIOBROKER_PATH_CDEV
				     ? (paths & VFIOBROKER_PATH_GROUP ? "group,cdev" : "cdev")
				     : "group");
	}
	print_text("\n");
	print_close_object();
}

static void print_group(const struct vfiobroker_group *g)
{
	print_open_object(NULL);
	print_uint("group", 7, g->group);
	print_bool("viable", 8, g->viable, "yes", "no");
	print_bool("allowed", 9, g->allowed, "allowed", "denied");
	if (g->held) {
		print_open_object("holder");
		print_uint("uid", 0, g->holder_uid);
		print_text("/");
		print_int("pid", 0, g->holder_pid);
		print_close_object();
	} else {
		print_null("holder", 0);
	}
	print_text("\n");
	print_open_array("devices");
	for (size_t i = 0; i < g->n_devices; i++)
		print_device(g, i);
	print_close_array();
	print_close_object();
}

int vfioctl_list(struct vfioctl *ctl, int argc, char **argv)
{
	struct vfiobroker_group *groups;
	const char *quarantine;
	struct vfiobroker *b;
	char mode[8] = "";
	size_t n;
	int r;

	r = parse_no_arguments("list", ctl, argc, argv);
	if (r)
		return r;
	r = vfioctl_open_broker(ctl, &b);
	if (r)
		return r;
	r = vfiobroker_list(b, &groups, &n);
	if (r < 0) {
		r = report_broker_error(b, r, REPORT_OP_LIST, -1, "list the groups");
		vfiobroker_disconnect(b);
		return r;
	}
	quarantine = vfiobroker_quarantine(b);
	if (quarantine)
		snprintf(mode, sizeof(mode), "%s", quarantine);
	vfiobroker_disconnect(b);

	print_start(ctl->json);
	if (mode[0]) {
		print_text("quarantine: %s\n",
			   strcmp(mode, "kmod") == 0 ? "kernel module vfio_quarantine" : mode);
		print_string("quarantine", PRINT_JSON_ONLY, mode);
	}
	if (n == 0)
		print_text("no IOMMU groups (is the IOMMU enabled? see: dmesg | grep -i iommu)\n");
	else
		print_text("%-7s%-8s%-9s%s\n", "GROUP", "VIABLE", "ACCESS", "HOLDER");
	print_open_array("groups");
	for (size_t i = 0; i < n; i++)
		print_group(&groups[i]);
	print_close_array();
	vfiobroker_groups_free(groups, n);
	return print_finish() < 0 ? VFIOCTL_EXIT_FAILED : VFIOCTL_EXIT_OK;
}

static void print_lease(const struct vfiobroker_lease *l)
{
	print_open_object(NULL);
	print_uint("group", 7, l->group);
	print_uint("uid", 8, l->uid);
	print_int("pid", 9, l->pid);
	print_time_usec("since_usec", 21, l->since_usec);
	print_string("state", 11, l->state);
	print_id("container", 11, l->container);
	print_string("rule", 0, l->rule[0] ? l->rule : NULL);
	print_text("\n");
	print_close_object();
}

int vfioctl_leases(struct vfioctl *ctl, int argc, char **argv)
{
	struct vfiobroker_lease *leases;
	struct vfiobroker *b;
	size_t n;
	int r;

	r = parse_no_arguments("leases", ctl, argc, argv);
	if (r)
		return r;
	r = vfioctl_open_broker(ctl, &b);
	if (r)
		return r;
	r = vfioctl_close_broker(b, vfiobroker_leases(b, &leases, &n), REPORT_OP_LEASES, -1,
				 "list the leases");
	if (r)
		return r;

	print_start(ctl->json);
	if (n == 0)
		print_text("no leases\n");
	else
		print_text("%-7s%-8s%-9s%-21s%-11s%-11s%s\n", "GROUP", "UID", "PID", "SINCE",
			   "STATE", "CONTAINER", "RULE");
	print_open_array("leases");
	for (size_t i = 0; i < n; i++)
		print_lease(&leases[i]);
	print_close_array();
	vfiobroker_leases_free(leases, n);
	return print_finish() < 0 ? VFIOCTL_EXIT_FAILED : VFIOCTL_EXIT_OK;
}
