/* SPDX-License-Identifier: MIT */
#include "client/vfioctl_report.h"
#include "client/vfioctl.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void vreport(const char *prefix, const char *fmt, va_list ap)
{
	fflush(stdout);
	fputs(prefix, stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

int report_usage(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport("vfioctl: usage: ", fmt, ap);
	va_end(ap);
	fputs("Try 'vfioctl --help'.\n", stderr);
	return VFIOCTL_EXIT_USAGE;
}

void report_error(const char *code, const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "vfioctl: %s: ", code);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void report_note(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport("vfioctl: ", fmt, ap);
	va_end(ap);
}

void report_warning(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport("vfioctl: warning: ", fmt, ap);
	va_end(ap);
}

void report_hint(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport("hint: ", fmt, ap);
	va_end(ap);
}

int report_connect_error(const char *path, int r)
{
	report_error("unreachable", "cannot connect to vfio-brokerd at %s: %s", path, strerror(-r));
	switch (r) {
	case -ENOENT:
	case -ECONNREFUSED:
		report_hint("is vfio-brokerd running? (systemctl status vfio-brokerd.socket) "
			    "or set VFIO_BROKER_SOCKET");
		break;
	case -EACCES:
	case -EPERM:
		report_hint("the socket's permissions keep you out; ask an administrator");
		break;
	case -EPROTONOSUPPORT:
		report_hint("vfioctl and vfio-brokerd come from different releases; "
			    "upgrade the older one");
		break;
	case -EUSERS:
		report_hint("the broker has reached its connection limit; close idle clients "
			    "or try again later");
		break;
	case -ECONNRESET:
		report_hint("the broker closed the connection at once; see journalctl -u "
			    "vfio-brokerd");
		break;
	default:
		break;
	}
	return VFIOCTL_EXIT_UNREACHABLE;
}

static bool is_admin_op(enum report_op op)
{
	return op == REPORT_OP_REMOVE || op == REPORT_OP_RELOAD || op == REPORT_OP_QUARANTINE;
}

static void hint_denied(const struct vfiobroker *b, enum report_op op, int64_t group)
{
	if (is_admin_op(op) || (op == REPORT_OP_EXPLAIN && !vfiobroker_is_admin(b))) {
		report_hint("this needs an administrator: root, or a member of the broker's "
			    "admin group");
	} else if (group >= 0) {
		report_hint("ask an administrator to add a rule (see: vfioctl policy explain "
			    "--group %" PRId64 ")",
			    group);
	} else {
		report_hint("ask an administrator to add a rule (vfioctl list shows the device's "
			    "group; vfioctl policy explain --group GROUP says why)");
	}
}

static void hint_busy(const struct vfiobroker *b, enum report_op op, int64_t group)
{
	const char *uid = vfiobroker_error_detail(b, "uid");
	char g[24] = "GROUP";

	if (group >= 0)
		snprintf(g, sizeof(g), "%" PRId64, group);
	switch (op) {
	case REPORT_OP_LEASE:
		if (uid)
			report_hint("held by uid %s; wait, or ask an administrator to run: vfioctl "
				    "remove --soft %s",
				    uid, g);
		else
			report_hint("the group is in use outside the broker; vfioctl list shows "
				    "its devices and drivers");
		break;
	case REPORT_OP_UNMERGE:
		report_hint("close the group's device files first");
		break;
	case REPORT_OP_MERGE:
		report_hint("a group is already in another container: vfioctl unmerge it first");
		break;
	case REPORT_OP_REMOVE:
		report_hint("to take the group by force: vfioctl remove --hard %s", g);
		break;
	case REPORT_OP_QUARANTINE:
		report_hint("take the group back from its holder first: vfioctl remove %s", g);
		break;
	default:
		break;
	}
}

static void hint_not_viable(const struct vfiobroker *b, enum report_op op)
{
	const char *device = vfiobroker_error_detail(b, "device");

	if (op == REPORT_OP_MERGE)
		report_hint("the IOMMU cannot put these groups in one context; use them unmerged");
	else if (device)
		report_hint("an administrator must bind %s to vfio-pci (e.g. driverctl "
			    "set-override %s vfio-pci)",
			    device, device);
	else
		report_hint("every device of the group must be bound to vfio-pci or to no "
			    "driver; vfioctl list shows the drivers");
}

/* The hint that goes with the broker's refusal `code` of op, if any. */
static void hint_refusal(const struct vfiobroker *b, const char *code, enum report_op op,
			 int64_t group)
{
	if (strcmp(code, "denied") == 0)
		hint_denied(b, op, group);
	else if (strcmp(code, "busy") == 0)
		hint_busy(b, op, group);
	else if (strcmp(code, "not-viable") == 0)
		hint_not_viable(b, op);
	else if (strcmp(code, "no-such-group") == 0)
		report_hint("vfioctl list shows the IOMMU groups and their devices");
	else if (strcmp(code, "not-held") == 0 && op == REPORT_OP_REMOVE)
		report_hint("vfioctl leases shows which groups are leased");
	else if (strcmp(code, "not-held") == 0)
		report_hint("only the holder of the lease, a process it started, or an "
			    "administrator may do this; vfioctl leases shows the holders");
	else if (strcmp(code, "limit") == 0)
		report_hint("release leases you no longer use (vfioctl leases), or ask an "
			    "administrator to raise the limit");
	else if (strcmp(code, "timeout") == 0 && group >= 0)
		report_hint("the holder kept the group; to take it by force: vfioctl remove "
			    "--hard %" PRId64,
			    group);
	else if (strcmp(code, "unsupported-version") == 0)
		report_hint("vfioctl and vfio-brokerd come from different releases; upgrade the "
			    "older one");
	else if (strcmp(code, "bad-request") == 0 && op == REPORT_OP_RELOAD)
		report_hint("the policy in force is unchanged; check the files with: vfioctl "
			    "policy check");
	else if (strcmp(code, "internal") == 0)
		report_hint("the broker's log says more: journalctl -u vfio-brokerd");
}

int report_broker_error(const struct vfiobroker *b, int r, enum report_op op, int64_t group,
			const char *what)
{
	const char *code = b ? vfiobroker_error_code(b) : NULL;

	if (code) {
		report_error(code, "%s", vfiobroker_error_message(b));
		hint_refusal(b, code, op, group);
		return VFIOCTL_EXIT_FAILED;
	}
	switch (r) {
	case -ECONNRESET:
		if (op == REPORT_OP_REMOVE && group >= 0) {
			/* PROTOCOL.md, "Restart": a removal in flight is abandoned, never
			 * half-done. */
			report_error("disconnected",
				     "vfio-brokerd closed the connection: it stopped or restarted, "
				     "and the removal of group %" PRId64
				     " was abandoned; the lease stays as it was",
				     group);
			report_hint("vfioctl leases shows whether group %" PRId64
				    " is still leased (a hard removal that had killed the holder "
				    "finishes by itself); ask again once the broker is back",
				    group);
			return VFIOCTL_EXIT_UNREACHABLE;
		}
		report_error("disconnected", "vfio-brokerd closed the connection");
		report_hint("it may have stopped or restarted: systemctl status vfio-brokerd");
		return VFIOCTL_EXIT_UNREACHABLE;
	case -EBADMSG:
		report_error("protocol", "vfio-brokerd sent a message vfioctl cannot read");
		report_hint("vfioctl and vfio-brokerd may come from different releases");
		return VFIOCTL_EXIT_UNREACHABLE;
	default:
		report_error("failed", "%s: %s", what, strerror(-r));
		return VFIOCTL_EXIT_FAILED;
	}
}
