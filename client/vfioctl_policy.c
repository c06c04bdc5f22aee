/* SPDX-License-Identifier: MIT */
/*
 * policy check loads a policy directory here, with the same code and the
 * same checks as the broker, so that an administrator sees every error before
 * the broker refuses a reload; policy explain asks the broker why a user may
 * or may not lease a group.
 */
#include "client/vfioctl.h"
#include "client/vfioctl_print.h"
#include "client/vfioctl_report.h"
#include "policy/policy.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The policy library names files as they are in dir; a path is what an editor can open. */
static void policy_path(const char *dir, const char *file, char *buf, size_t size)
{
	if (!*file)
		snprintf(buf, size, "%s", dir);
	else if (strchr(file, '/'))
		snprintf(buf, size, "%s", file);
	else
		snprintf(buf, size, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", file);
}

/* "file:line: " or "file: " for a problem with the whole file. */
static void print_location(FILE *f, const char *file, unsigned line)
{
	if (line)
		fprintf(f, "%s:%u: ", file, line);
	else
		fprintf(f, "%s: ", file);
}

static void print_diagnostic(const char *key, const char *file, unsigned line, const char *message)
{
	print_open_object(key);
	print_string("file", PRINT_JSON_ONLY, file);
	print_uint("line", PRINT_JSON_ONLY, line);
	print_string("message", PRINT_JSON_ONLY, message);
	print_close_object();
}

/* Warnings are diagnostics, on stderr like a compiler's; in JSON, entries of "warnings". */
struct check {
	const char *dir;
	unsigned n_warnings;
};

static void on_policy_warning(const char *file, unsigned line, const char *message, void *userdata)
{
	struct check *check = userdata;
	char path[PATH_MAX];

	check->n_warnings++;
	policy_path(check->dir, file, path, sizeof(path));
	if (print_is_json()) {
		print_diagnostic(NULL, path, line, message);
		return;
	}
	fflush(stdout);
	print_location(stderr, path, line);
	fprintf(stderr, "warning: %s\n", message);
}

static void hint_policy_error(int r, const char *dir)
{
	switch (r) {
	case -EPERM:
		report_hint("policy files and their directory must belong to root and not be "
			    "writable by others; to check a copy you own, add --skip-owner-check");
		break;
	case -EACCES:
		if (geteuid() != 0)
			report_hint("run it as root: sudo vfioctl policy check %s", dir);
		break;
	default:
		break;
	}
}

int vfioctl_policy_check(struct vfioctl *ctl, int argc, char **argv)
{
	static const struct option options[] = {
		{"skip-owner-check", no_argument, NULL, 'o'},
		{"json", no_argument, NULL, 'j'},
		{0},
	};
	struct check check = {.dir = POLICY_DEFAULT_DIR};
	struct policy_error err = {0};
	struct policy *policy = NULL;
	char path[PATH_MAX];
	unsigned flags = 0;
	int c, r;

	while ((c = getopt_long(argc, argv, ":", options, NULL)) != -1) {
		switch (c) {
		case 'o':
			flags |= POLICY_LOAD_SKIP_OWNER_CHECK;
			break;
		case 'j':
			ctl->json = true;
			break;
		default:
			return vfioctl_bad_option("policy check", c, argv);
		}
	}
	if (argc - optind > 1)
		return report_usage("policy check takes one directory");
	if (optind < argc)
		check.dir = argv[optind];

	print_start(ctl->json);
	print_string("dir", PRINT_JSON_ONLY, check.dir);
	print_open_array("warnings");
	r = policy_load_dir(check.dir, flags, on_policy_warning, &check, &policy, &err);
	print_close_array();
	if (r < 0) {
		policy_path(check.dir, err.file, path, sizeof(path));
		if (!err.message[0])
			snprintf(err.message, sizeof(err.message), "%s", strerror(-r));
		print_bool("ok", PRINT_JSON_ONLY, false, "", "");
		print_diagnostic("error", path, err.line, err.message);
		print_finish();
		print_location(stderr, path, err.line);
		fprintf(stderr, "error: %s\n", err.message);
		hint_policy_error(r, check.dir);
		return VFIOCTL_EXIT_FAILED;
	}
	print_text("%s: ", check.dir);
	print_bool("ok", 0, true, "OK", "");
	print_text(": ");
	print_uint("rules", 0, policy_rule_count(policy));
	print_text(" rule%s in ", policy_rule_count(policy) == 1 ? "" : "s");
	print_uint("files", 0, policy_file_count(policy));
	print_text(" file%s", policy_file_count(policy) == 1 ? "" : "s");
	if (check.n_warnings)
		print_text(", %u warning%s", check.n_warnings, check.n_warnings == 1 ? "" : "s");
	print_text("\n");
	policy_free(policy);
	return print_finish() < 0 ? VFIOCTL_EXIT_FAILED : VFIOCTL_EXIT_OK;
}

int vfioctl_policy_explain(struct vfioctl *ctl, int argc, char **argv)
{
	static const struct option options[] = {
		{"user", required_argument, NULL, 'u'},
		{"uid", required_argument, NULL, 'U'},
		{"group", required_argument, NULL, 'g'},
		{"json", no_argument, NULL, 'j'},
		{0},
	};
	const char *user = NULL, *uid = NULL, *group_arg = NULL;
	struct vfiobroker_explanation *e;
	struct vfiobroker *b;
	unsigned group;
	int c, r;

	while ((c = getopt_long(argc, argv, ":", options, NULL)) != -1) {
		switch (c) {
		case 'u':
			user = optarg;
			break;
		case 'U':
			uid = optarg;
			break;
		case 'g':
			group_arg = optarg;
			break;
		case 'j':
			ctl->json = true;
			break;
		default:
			return vfioctl_bad_option("policy explain", c, argv);
		}
	}
	if (optind < argc)
		return report_usage("policy explain takes options only ('%s')", argv[optind]);
	if (!group_arg)
		return report_usage("policy explain needs --group GROUP");
	if (user && uid)
		return report_usage("policy explain: --user or --uid, not both");
	if (uid && (!*uid || strspn(uid, "0123456789") != strlen(uid)))
		return report_usage("policy explain: --uid takes a number, not '%s'", uid);
	r = vfioctl_parse_group("policy explain", group_arg, &group);
	if (r)
		return r;

	r = vfioctl_open_broker(ctl, &b);
	if (r)
		return r;
	r = vfioctl_close_broker(b, vfiobroker_explain(b, group, user ? user : uid, &e),
				 REPORT_OP_EXPLAIN, group, "explain");
	if (r)
		return r;

	print_start(ctl->json);
	print_text("group ");
	print_uint("group", 0, group);
	if (user) {
		print_text(", user ");
		print_string("user", 0, user);
	} else if (uid) {
		print_text(", uid ");
		print_uint("uid", 0, strtoull(uid, NULL, 10));
	} else {
		print_text(", you");
		print_null("user", PRINT_JSON_ONLY);
	}
	print_text(": ");
	print_bool("allowed", 0, e->allowed, "ALLOWED", "DENIED");
	print_text("\n");
	print_string("rule", PRINT_JSON_ONLY, e->rule);
	print_string("device", PRINT_JSON_ONLY, e->device);
	if (e->reason) {
		print_string("reason", 0, e->reason);
		print_text("\n");
	}
	if (e->text && *e->text) {
		print_string("text", 0, e->text);
		print_text("%s", e->text[strlen(e->text) - 1] == '\n' ? "" : "\n");
	}
	vfiobroker_explanation_free(e);
	return print_finish() < 0 ? VFIOCTL_EXIT_FAILED : VFIOCTL_EXIT_OK;
}
