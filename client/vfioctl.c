/* SPDX-License-Identifier: MIT */
/*
 * vfioctl: global options, the command table and the one place that
 * dispatches to it (iproute2-style), and the small parsing helpers every
 * command shares.
 */
#include "client/vfioctl.h"
#include "client/vfioctl_report.h"
#include "protocol/message.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef VB_VERSION
#define VB_VERSION "0"
#endif

struct command {
	const char *name;
	int (*run)(struct vfioctl *ctl, int argc, char **argv);
	const struct command *subcommands; /* instead of run: a command of commands */
	const char *synopsis;		   /* the arguments, for usage lines */
	const char *summary;		   /* one line, for --help */
};

static int vfioctl_help(struct vfioctl *ctl, int argc, char **argv);

static const struct command policy_commands[] = {
	{"check", vfioctl_policy_check, NULL, "[--skip-owner-check] [DIR]",
	 "load a policy directory here and report its errors and warnings"},
	{"explain", vfioctl_policy_explain, NULL, "[--user NAME | --uid UID] --group GROUP",
	 "ask the broker why a user may or may not lease a group"},
	{0},
};

static const struct command commands[] = {
	{"list", vfioctl_list, NULL, "[--json]",
	 "show IOMMU groups, their devices, and who may and does hold them"},
	{"lease", vfioctl_lease, NULL,
	 "GROUP|ADDRESS... [--cdev] [--merge] [--memlock SIZE] [--on-remove=term|ignore] -- CMD "
	 "[ARG...]",
	 "lease groups and run CMD with their files; the leases end when CMD exits"},
	{"run", vfioctl_run, NULL,
	 "[--device ADDRESS | --group GROUP]... [--memlock SIZE] [--no-preload] [--cdev] -- CMD "
	 "[ARG...]",
	 "lease, then become CMD (a VMM): it holds the groups and opens /dev/vfio/N as usual"},
	{"leases", vfioctl_leases, NULL, "[--json]",
	 "show current leases (yours; every lease for an administrator)"},
	{"release", vfioctl_release, NULL, "GROUP", "end a lease"},
	{"merge", vfioctl_merge, NULL, "GROUP... [-- CMD [ARG...]]",
	 "put leased groups into one IOMMU context (run from inside a lease)"},
	{"unmerge", vfioctl_unmerge, NULL, "GROUP", "take one group out of its container"},
	{"remove", vfioctl_remove, NULL,
	 "[--soft [--timeout SECONDS] | --hard [--kill-strays]] GROUP",
	 "take a group back from its holder (administrators)"},
	{"reload", vfioctl_reload, NULL, "",
	 "make the broker load its policy again (administrators)"},
	{"quarantine", vfioctl_quarantine, NULL, "GROUP",
	 "put every device of a group on vfio-pci (administrators)"},
	{"unquarantine", vfioctl_unquarantine, NULL, "[--restore] GROUP",
	 "end a quarantine; --restore gives the devices back to their drivers (administrators)"},
	{"policy", NULL, policy_commands, NULL, NULL},
	{"help", vfioctl_help, NULL, "[COMMAND]", "show this help"},
	{0},
};

static void print_usage_line(FILE *f, const char *prefix, const struct command *c)
{
	fprintf(f, "  %s %s%s%s\n", prefix, c->name, *c->synopsis ? " " : "", c->synopsis);
}

/* Prints the usage of every command of table, and of its subcommands. */
static void print_commands(FILE *f, const struct command *table, const char *prefix)
{
	for (const struct command *c = table; c->name; c++) {
		char sub[64];

		if (c->subcommands) {
			snprintf(sub, sizeof(sub), "%s %s", prefix, c->name);
			print_commands(f, c->subcommands, sub);
			continue;
		}
		print_usage_line(f, prefix, c);
		fprintf(f, "      %s\n", c->summary);
	}
}

static void print_help(FILE *f)
{
	fputs("Usage: vfioctl [--socket PATH] [--json] COMMAND [ARG...]\n"
	      "\n"
	      "Lease VFIO device groups from vfio-brokerd, as the administrator's policy allows.\n"
	      "\n"
	      "Commands:\n",
	      f);
	print_commands(f, commands, "vfioctl");
	fputs("\n"
	      "Options:\n"
	      "  --socket PATH  the broker's socket (default: $VFIO_BROKER_SOCKET, else\n"
	      "                 " VFIOBROKER_DEFAULT_SOCKET ")\n"
	      "  --json         machine-readable output on stdout\n"
	      "  --help         show this help\n"
	      "  --version      show the version\n"
	      "\n"
	      "GROUP is an IOMMU group number; ADDRESS a PCI address, 0000:01:00.0 or 01:00.0.\n"
	      "Exit status: 0 done, 1 refused or failed, 2 usage error, 3 broker unreachable;\n"
	      "lease, run and merge -- CMD exit with CMD's status. See vfioctl(1).\n",
	      f);
}

static int dispatch(const struct command *table, const char *prefix, struct vfioctl *ctl, int argc,
		    char **argv);

/* help [COMMAND]: the whole help, or what COMMAND --help says. */
static int vfioctl_help(struct vfioctl *ctl, int argc, char **argv)
{
	static char help_option[] = "--help";

	if (argc > 2)
		return report_usage("help takes at most one command");
	if (argc == 2)
		return dispatch(commands, "vfioctl", ctl, 2,
				(char *[]){argv[1], help_option, NULL});
	print_help(stdout);
	return VFIOCTL_EXIT_OK;
}

/* Whether argv asks for help before any "--". */
static bool wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return true;
	return false;
}

/*
 * dispatch runs the command of table named argv[0] with argv, answering
 * --help for it here, so that every command has one. Returns its exit status,
 * or VFIOCTL_EXIT_USAGE for a missing or unknown command.
 */
static int dispatch(const struct command *table, const char *prefix, struct vfioctl *ctl, int argc,
		    char **argv)
{
	const struct command *c;
	char sub[64];

	if (argc < 1)
		return report_usage("%s needs a command", prefix);
	for (c = table; c->name; c++)
		if (strcmp(c->name, argv[0]) == 0)
			break;
	if (!c->name) {
		/* "policy frob", but "frob" at the top: the user typed what follows "vfioctl ". */
		const char *outer = strchr(prefix, ' ');

		return report_usage("unknown command '%s%s%s'", outer ? outer + 1 : "",
				    outer ? " " : "", argv[0]);
	}
	if (c->subcommands) {
		snprintf(sub, sizeof(sub), "%s %s", prefix, c->name);
		if (argc < 2 || wants_help(argc, argv)) {
			FILE *f = argc < 2 ? stderr : stdout;

			fprintf(f, "Usage:\n");
			print_commands(f, c->subcommands, sub);
			return argc < 2 ? VFIOCTL_EXIT_USAGE : VFIOCTL_EXIT_OK;
		}
		return dispatch(c->subcommands, sub, ctl, argc - 1, argv + 1);
	}
	if (wants_help(argc, argv)) {
		printf("Usage:\n");
		print_usage_line(stdout, prefix, c);
		printf("      %s\n", c->summary);
		return VFIOCTL_EXIT_OK;
	}
	/* Each command parses its own options from a fresh getopt state; errors are ours. */
	optind = 0;
	opterr = 0;
	return c->run(ctl, argc, argv);
}

int vfioctl_open_broker(const struct vfioctl *ctl, struct vfiobroker **ret)
{
	int r = vfiobroker_connect(ctl->socket_path, ret);

	if (r < 0)
		return report_connect_error(ctl->socket_path, r);
	return 0;
}

int vfioctl_close_broker(struct vfiobroker *b, int r, enum report_op op, int64_t group,
			 const char *what)
{
	r = r < 0 ? report_broker_error(b, r, op, group, what) : 0;
	vfiobroker_disconnect(b);
	return r;
}

int vfioctl_parse_group(const char *command, const char *arg, unsigned *ret)
{
	uint32_t group;

	if (vb_group_parse(arg, &group) < 0)
		return report_usage("%s: '%s' is not an IOMMU group number", command, arg);
	*ret = group;
	return 0;
}

void vfioctl_split_command(int *argc, char **argv, char ***ret_cmd)
{
	*ret_cmd = NULL;
	for (int i = 1; i < *argc; i++) {
		if (strcmp(argv[i], "--") != 0)
			continue;
		if (i + 1 < *argc)
			*ret_cmd = argv + i + 1;
		*argc = i;
		return;
	}
}

int vfioctl_bad_option(const char *command, int c, char **argv)
{
	const char *arg = optind > 0 ? argv[optind - 1] : "?";
	const char *sep = command ? ": " : "";

	if (!command)
		command = "";
	if (c == ':')
		return report_usage("%s%soption '%s' needs a value", command, sep, arg);
	if (optopt && optopt != '?')
		return report_usage("%s%sunknown option '-%c'", command, sep, optopt);
	return report_usage("%s%sunknown option '%s'", command, sep, arg);
}

/* Standard streams closed by the caller would be taken by the socket or a group file. */
static void ensure_std_fds(void)
{
	for (int fd = 0; fd <= 2; fd++) {
		if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
			continue;
		if (open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY) != fd)
			exit(VFIOCTL_EXIT_FAILED);
	}
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{"socket", required_argument, NULL, 's'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{0},
	};
	struct vfioctl ctl = {0};
	int c, status;

	ensure_std_fds();
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:s:jhV", options, NULL)) != -1) {
		switch (c) {
		case 's':
			ctl.socket_path = optarg;
			break;
		case 'j':
			ctl.json = true;
			break;
		case 'h':
			print_help(stdout);
			return VFIOCTL_EXIT_OK;
		case 'V':
			printf("vfioctl %s (libvfiobroker %s, protocol version %d)\n", VB_VERSION,
			       vfiobroker_version(), VB_PROTOCOL_VERSION);
			return VFIOCTL_EXIT_OK;
		default:
			return vfioctl_bad_option(NULL, c, argv);
		}
	}
	if (!ctl.socket_path) {
		ctl.socket_path = getenv(VFIOBROKER_SOCKET_ENV);
		if (!ctl.socket_path || !*ctl.socket_path)
			ctl.socket_path = VFIOBROKER_DEFAULT_SOCKET;
	}
	if (optind >= argc) {
		print_help(stderr);
		return VFIOCTL_EXIT_USAGE;
	}

	status = dispatch(commands, "vfioctl", &ctl, argc - optind, argv + optind);
	if (fflush(stdout) != 0 && status == VFIOCTL_EXIT_OK) {
		report_error("failed", "cannot write the output: %m");
		status = VFIOCTL_EXIT_FAILED;
	}
	return status;
}
