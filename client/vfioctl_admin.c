/* SPDX-License-Identifier: MIT */
/*
 * remove, reload, quarantine and unquarantine: what administrators ask of the broker. The broker
 * decides who is one (root, or its --admin-group); vfioctl only asks.
 */
#include "client/vfioctl.h"
#include "client/vfioctl_print.h"
#include "client/vfioctl_report.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define REMOVE_MAX_TIMEOUT_S 3600

/* Seconds, fractions allowed, more than 0 and at most an hour, to milliseconds. */
static int parse_timeout(const char *arg, unsigned *ret_ms)
{
	char *end;
	double s;

	errno = 0;
	s = strtod(arg, &end);
	if (errno || end == arg || *end || !(s > 0) || s > REMOVE_MAX_TIMEOUT_S)
		return report_usage("remove: --timeout takes seconds, more than 0 and at most %d, "
				    "not '%s'",
				    REMOVE_MAX_TIMEOUT_S, arg);
	*ret_ms = (unsigned)(s * 1000 + 0.999); /* rounded up: never less than asked */
	return 0;
}

/*
 * Ctrl-C (or SIGTERM) while a soft removal waits: say so and exit. Closing the
 * connection is what tells the broker: it cancels the removal (and its device
 * requests) and leaves the lease as it was. Async-signal-safe.
 */
static void remove_on_interrupt(int sig)
{
	static const char msg[] = "vfioctl: remove: cancelled; the broker stops asking and the "
				  "lease is unchanged\n";
	ssize_t n = write(STDERR_FILENO, msg, sizeof(msg) - 1);

	(void)n;
	_exit(128 + sig);
}

/*
 * A soft removal without --timeout waits until the holder gives the group
 * back, or until Ctrl-C: the broker takes at most REMOVE_MAX_TIMEOUT_S per
 * request, so a request that times out (nothing changed) is simply made again.
 */
static int remove_soft_until_released(struct vfiobroker *b, unsigned group,
				      unsigned *ret_elapsed_ms)
{
	unsigned elapsed_ms = 0, ms = 0;
	int r;

	for (;;) {
		r = vfiobroker_remove(b, group, false, REMOVE_MAX_TIMEOUT_S * 1000, &ms);
		if (r != -ETIMEDOUT)
			break;
		elapsed_ms += REMOVE_MAX_TIMEOUT_S * 1000;
	}
	if (r == 0)
		*ret_elapsed_ms = elapsed_ms + ms;
	return r;
}

int vfioctl_remove(struct vfioctl *ctl, int argc, char **argv)
{
	static const struct option options[] = {
		{"soft", no_argument, NULL, 's'},	 {"hard", no_argument, NULL, 'H'},
		{"kill-strays", no_argument, NULL, 'K'}, {"timeout", required_argument, NULL, 't'},
		{"json", no_argument, NULL, 'j'},	 {0},
	};
	bool soft = false, hard = false, kill_strays = false;
	unsigned group, timeout_ms = 0, elapsed_ms;
	struct vfiobroker *b;
	int c, r;

	while ((c = getopt_long(argc, argv, ":", options, NULL)) != -1) {
		switch (c) {
		case 's':
			soft = true;
			break;
		case 'H':
			hard = true;
			break;
		case 'K':
			kill_strays = true;
			break;
		case 't':
			r = parse_timeout(optarg, &timeout_ms);
			if (r)
				return r;
			break;
		case 'j':
			ctl->json = true;
			break;
		default:
			return vfioctl_bad_option("remove", c, argv);
		}
	}
	if (soft && hard)
		return report_usage("remove: --soft or --hard, not both");
	if (hard && timeout_ms)
		return report_usage("remove: --timeout is for --soft: --hard does not wait");
	if (kill_strays && !hard)
		return report_usage("remove: --kill-strays is for --hard");
	if (argc - optind != 1)
		return report_usage("remove takes one group");
	r = vfioctl_parse_group("remove", argv[optind], &group);
	if (r)
		return r;

	r = vfioctl_open_broker(ctl, &b);
	if (r)
		return r;
	if (!hard) {
		struct sigaction sa = {.sa_handler = remove_on_interrupt};

		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
	}
	if (!hard && isatty(STDERR_FILENO)) {
		if (timeout_ms)
			report_note("asking the holder of group %u to give it back (waiting up to "
				    "%.1f s)...",
				    group, timeout_ms / 1000.0);
		else
			report_note("asking the holder of group %u to give it back (waiting until "
				    "it does; Ctrl-C cancels)...",
				    group);
	}
	if (kill_strays)
		r = vfiobroker_remove_kill_strays(b, group, &elapsed_ms);
	else if (!hard && !timeout_ms)
		r = remove_soft_until_released(b, group, &elapsed_ms);
	else
		r = vfiobroker_remove(b, group, hard, timeout_ms, &elapsed_ms);
	r = vfioctl_close_broker(b, r, REPORT_OP_REMOVE, group, "remove");
	if (r)
		return r;

	print_start(ctl->json);
	print_text("group ");
	print_uint("group", 0, group);
	print_text(": ");
	print_string("mode", PRINT_JSON_ONLY, hard ? "hard" : "soft");
	print_text(hard ? "taken back by force in " : "given back by its holder in ");
	print_duration_ms("elapsed_ms", 0, elapsed_ms);
	print_text("\n");
	return print_finish() < 0 ? VFIOCTL_EXIT_FAILED : VFIOCTL_EXIT_OK;
}

int vfioctl_reload(struct vfioctl *ctl, int argc, char **argv)
{
	static const struct option options[] = {
		{"json", no_argument, NULL, 'j'},
		{0},
	};
	unsigned rules, files;
	struct vfiobroker *b;
	int c, r;

	while ((c = getopt_long(argc, argv, ":", options, NULL)) != -1) {
		if (c != 'j')
			return vfioctl_bad_option("reload", c, argv);
		ctl->json = true;
	}
	if (optind < argc)
		return report_usage("reload takes no arguments");
	r = vfioctl_open_broker(ctl, &b);
	if (r)
		return r;
	r = vfioctl_close_broker(b, vfiobroker_reload(b, &rules, &files), REPORT_OP_RELOAD, -1,
				 "reload");
	if (r)
		return r;

	print_start(ctl->json);
	print_text("policy reloaded: ");
	print_uint("rules", 0, rules);
	print_text(" rule%s in ", rules == 1 ? "" : "s");
	print_uint("files", 0, files);
	print_text(" file%s\n", files == 1 ? "" : "s");
	return print_finish() < 0 ? VFIOCTL_EXIT_FAILED : VFIOCTL_EXIT_OK;
}

/*
 * quarantine GROUP and unquarantine [--restore] GROUP: one request each; the
 * output names the mode (kmod: the kernel module did it; sysfs: the broker)
 * and the devices that changed driver.
 */
static int quarantine_command(struct vfioctl *ctl, bool quarantine, int argc, char **argv)
{
	static const struct option options[] = {
		{"restore", no_argument, NULL, 'r'},
		{"json", no_argument, NULL, 'j'},
		{0},
	};
	const char *name = quarantine ? "quarantine" : "unquarantine";
	struct vfiobroker_quarantine_result res;
	bool restore = false;
	struct vfiobroker *b;
	unsigned group;
	int c, r;

	while ((c = getopt_long(argc, argv, ":", options, NULL)) != -1) {
		if (c == 'j')
			ctl->json = true;
		else if (c == 'r' && !quarantine)
			restore = true;
		else
			return vfioctl_bad_option(name, c, argv);
	}
	if (argc - optind != 1)
		return report_usage("%s takes one group", name);
	r = vfioctl_parse_group(name, argv[optind], &group);
	if (r)
		return r;
	r = vfioctl_open_broker(ctl, &b);
	if (r)
		return r;
	r = quarantine ? vfiobroker_quarantine_group(b, group, &res)
		       : vfiobroker_unquarantine_group(b, group, restore, &res);
	r = vfioctl_close_broker(b, r, REPORT_OP_QUARANTINE, group, name);
	if (r)
		return r;

	print_start(ctl->json);
	print_text("group ");
	print_uint("group", 0, group);
	print_text(quarantine ? ": quarantined (" : ": unquarantined (");
	print_string("mode", 0, res.mode);
	print_text(")");
	print_open_array("devices");
	for (size_t i = 0; i < res.n_devices; i++) {
		print_text(i ? ", " : quarantine ? "; on vfio-pci: " : "; given back: ");
		print_string(NULL, 0, res.devices[i]);
	}
	print_close_array();
	print_text("\n");
	return print_finish() < 0 ? VFIOCTL_EXIT_FAILED : VFIOCTL_EXIT_OK;
}

int vfioctl_quarantine(struct vfioctl *ctl, int argc, char **argv)
{
	return quarantine_command(ctl, true, argc, argv);
}

int vfioctl_unquarantine(struct vfioctl *ctl, int argc, char **argv)
{
	return quarantine_command(ctl, false, argc, argv);
}
