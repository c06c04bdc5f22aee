// SPDX-License-Identifier: GPL-2.0
/*
 * vqctl: a small admin tool for the vfio_quarantine module, for tests.
 *
 *   vqctl quarantine GROUP
 *   vqctl release GROUP [--restore]
 *   vqctl list                      one line per member:
 *                                   group=N device=BDF driver=NAME|none [flags=...]
 *   vqctl monitor [--count N]       one line per event:
 *                                   event=NAME group=N [device=BDF] [driver=NAME]
 *   vqctl request BDF               relay a device request to the VFIO user:
 *                                   device=BDF eventfd=1|0
 *
 * Exit status: 0 success, 1 failure (the kernel's extended-ack message is
 * printed), 2 usage.  monitor prints "vqctl: listening" on stderr once it
 * has joined the multicast group, so a test can wait for that before it
 * causes events.
 *
 * Build: cc -Ikmod/uapi kmod/tests/vqctl.c $(pkg-config --cflags --libs libnl-genl-3.0)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <linux/netlink.h>
#include <netlink/genl/ctrl.h>
#include <netlink/genl/genl.h>
#include <netlink/netlink.h>

#include <linux/vfio_quarantine.h>

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

/* What the kernel answered to one request. */
struct reply {
	bool done;
	int error;		/* 0 or -errno */
	char msg[256];		/* NLMSGERR_ATTR_MSG */
	char cookie[64];	/* NLMSGERR_ATTR_COOKIE: the device to blame */
	long events;		/* monitor: events printed */
	long max_events;	/* monitor: stop after this many (0: never) */
};

static const char *const event_names[] = {
	[VFIO_QUARANTINE_EVENT_QUARANTINED] = "quarantined",
	[VFIO_QUARANTINE_EVENT_RELEASED] = "released",
	[VFIO_QUARANTINE_EVENT_DEVICE_ADDED] = "device-added",
	[VFIO_QUARANTINE_EVENT_DEVICE_REMOVED] = "device-removed",
	[VFIO_QUARANTINE_EVENT_UNBIND_REQUESTED] = "unbind-requested",
	[VFIO_QUARANTINE_EVENT_UNBOUND] = "unbound",
	[VFIO_QUARANTINE_EVENT_BOUND] = "bound",
	[VFIO_QUARANTINE_EVENT_BIND_BLOCKED] = "bind-blocked",
};

static void usage(void)
{
	fprintf(stderr,
		"usage: vqctl quarantine GROUP\n"
		"       vqctl release GROUP [--restore]\n"
		"       vqctl list\n"
		"       vqctl monitor [--count N]\n"
		"       vqctl request BDF\n");
	exit(2);
}

static long parse_number(const char *s, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 0 || v > max) {
		fprintf(stderr, "vqctl: not a number in range: %s\n", s);
		exit(2);
	}
	return v;
}

/* The attributes of an extended ack (NLM_F_ACK_TLVS) into @r. */
static void parse_ext_ack(const struct nlmsghdr *nlh, struct reply *r)
{
	const struct nlmsgerr *e = NLMSG_DATA(nlh);
	struct nlattr *tb[NLMSGERR_ATTR_MAX + 1];
	size_t off = sizeof(*e);
	size_t len;

	if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS))
		return;
	if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
		off += e->msg.nlmsg_len - NLMSG_HDRLEN;
	off = NLMSG_ALIGN(off);
	if (NLMSG_HDRLEN + off >= nlh->nlmsg_len)
		return;
	if (nla_parse(tb, NLMSGERR_ATTR_MAX,
		      (struct nlattr *)((char *)e + off),
		      (int)(nlh->nlmsg_len - NLMSG_HDRLEN - off), NULL) < 0)
		return;
	if (tb[NLMSGERR_ATTR_MSG])
		snprintf(r->msg, sizeof(r->msg), "%.*s",
			 nla_len(tb[NLMSGERR_ATTR_MSG]),
			 (const char *)nla_data(tb[NLMSGERR_ATTR_MSG]));
	if (tb[NLMSGERR_ATTR_COOKIE]) {
		len = (size_t)nla_len(tb[NLMSGERR_ATTR_COOKIE]);
		if (len >= sizeof(r->cookie))
			len = sizeof(r->cookie) - 1;
		memcpy(r->cookie, nla_data(tb[NLMSGERR_ATTR_COOKIE]), len);
		r->cookie[len] = '\0';
	}
}

static int on_error(struct sockaddr_nl *nla, struct nlmsgerr *e, void *arg)
{
	struct reply *r = arg;

	(void)nla;
	r->error = e->error;
	r->done = true;
	parse_ext_ack((const struct nlmsghdr *)((char *)e - NLMSG_HDRLEN), r);
	return NL_STOP;
}

static int on_ack(struct nl_msg *msg, void *arg)
{
	struct reply *r = arg;

	r->done = true;
	parse_ext_ack(nlmsg_hdr(msg), r);
	return NL_STOP;
}

static int on_finish(struct nl_msg *msg, void *arg)
{
	struct reply *r = arg;

	(void)msg;
	r->done = true;
	return NL_STOP;
}

static const char *attr_str(struct nlattr *a)
{
	const char *s;

	if (!a || nla_len(a) < 1)
		return NULL;
	s = nla_data(a);
	return s[nla_len(a) - 1] == '\0' ? s : NULL;
}

static bool attr_u32(struct nlattr *a, unsigned int *v)
{
	if (!a || nla_len(a) != sizeof(uint32_t))
		return false;
	*v = nla_get_u32(a);
	return true;
}

/* LIST: one line per member, or "group=N" alone for an empty group. */
static int on_group(struct nl_msg *msg, void *arg)
{
	struct nlattr *tb[VFIO_QUARANTINE_A_MAX + 1];
	struct nlattr *mb[VFIO_QUARANTINE_MEMBER_A_MAX + 1];
	unsigned int group, flags;
	struct nlattr *a;
	bool any = false;
	int rem;

	(void)arg;
	if (genlmsg_parse(nlmsg_hdr(msg), 0, tb, VFIO_QUARANTINE_A_MAX,
			  NULL) < 0 ||
	    !attr_u32(tb[VFIO_QUARANTINE_A_GROUP], &group))
		return NL_SKIP;
	nlmsg_for_each_attr(a, nlmsg_hdr(msg), GENL_HDRLEN, rem) {
		const char *dev, *drv;

		if (nla_type(a) != VFIO_QUARANTINE_A_MEMBER ||
		    nla_parse_nested(mb, VFIO_QUARANTINE_MEMBER_A_MAX, a,
				     NULL) < 0)
			continue;
		dev = attr_str(mb[VFIO_QUARANTINE_MEMBER_A_DEVICE]);
		drv = attr_str(mb[VFIO_QUARANTINE_MEMBER_A_DRIVER]);
		if (!dev)
			continue;
		if (!attr_u32(mb[VFIO_QUARANTINE_MEMBER_A_FLAGS], &flags))
			flags = 0;
		printf("group=%u device=%s driver=%s", group, dev,
		       drv ? drv : "none");
		if (flags)
			printf(" flags=%s%s%s",
			       flags & VFIO_QUARANTINE_MEMBER_HOTPLUGGED ?
			       "hotplugged" : "",
			       (flags & VFIO_QUARANTINE_MEMBER_HOTPLUGGED) &&
			       (flags & VFIO_QUARANTINE_MEMBER_BRIDGE) ? "," : "",
			       flags & VFIO_QUARANTINE_MEMBER_BRIDGE ?
			       "bridge" : "");
		printf("\n");
		any = true;
	}
	if (!any)
		printf("group=%u\n", group);
	return NL_OK;
}

static int on_event(struct nl_msg *msg, void *arg)
{
	struct nlattr *tb[VFIO_QUARANTINE_A_MAX + 1];
	struct reply *r = arg;
	unsigned int event, group;
	const char *dev, *drv;

	if (genlmsg_hdr(nlmsg_hdr(msg))->cmd != VFIO_QUARANTINE_CMD_EVENT ||
	    genlmsg_parse(nlmsg_hdr(msg), 0, tb, VFIO_QUARANTINE_A_MAX,
			  NULL) < 0 ||
	    !attr_u32(tb[VFIO_QUARANTINE_A_EVENT], &event) ||
	    !attr_u32(tb[VFIO_QUARANTINE_A_GROUP], &group))
		return NL_SKIP;
	dev = attr_str(tb[VFIO_QUARANTINE_A_DEVICE]);
	drv = attr_str(tb[VFIO_QUARANTINE_A_DRIVER]);
	if (event <= VFIO_QUARANTINE_EVENT_MAX && event_names[event])
		printf("event=%s", event_names[event]);
	else
		printf("event=%u", event);
	printf(" group=%u", group);
	if (dev)
		printf(" device=%s", dev);
	if (drv)
		printf(" driver=%s", drv);
	printf("\n");
	fflush(stdout);
	r->events++;
	if (r->max_events && r->events >= r->max_events)
		r->done = true;
	return NL_OK;
}

/* REQUEST_DEVICE's reply: whether the device has a request eventfd. */
static int on_request(struct nl_msg *msg, void *arg)
{
	struct nlattr *tb[VFIO_QUARANTINE_A_MAX + 1];
	unsigned int eventfd;
	const char *dev;

	(void)arg;
	if (genlmsg_parse(nlmsg_hdr(msg), 0, tb, VFIO_QUARANTINE_A_MAX,
			  NULL) < 0 ||
	    !(dev = attr_str(tb[VFIO_QUARANTINE_A_DEVICE])) ||
	    !attr_u32(tb[VFIO_QUARANTINE_A_EVENTFD], &eventfd))
		return NL_SKIP;
	printf("device=%s eventfd=%u\n", dev, eventfd);
	return NL_OK;
}

static struct nl_sock *connect_family(int *family)
{
	struct nl_sock *sk = nl_socket_alloc();
	int one = 1;

	if (!sk || genl_connect(sk) < 0) {
		fprintf(stderr, "vqctl: cannot open a generic netlink socket\n");
		exit(1);
	}
	/* error messages from the kernel, without our request echoed */
	setsockopt(nl_socket_get_fd(sk), SOL_NETLINK, NETLINK_EXT_ACK, &one,
		   sizeof(one));
	setsockopt(nl_socket_get_fd(sk), SOL_NETLINK, NETLINK_CAP_ACK, &one,
		   sizeof(one));
	*family = genl_ctrl_resolve(sk, VFIO_QUARANTINE_FAMILY_NAME);
	if (*family < 0) {
		fprintf(stderr,
			"vqctl: no generic netlink family %s (is vfio_quarantine loaded?)\n",
			VFIO_QUARANTINE_FAMILY_NAME);
		exit(1);
	}
	return sk;
}

/* Send @msg, wait for the answer; print the kernel's message on failure. */
static int transact(struct nl_sock *sk, struct nl_msg *msg,
		    nl_recvmsg_msg_cb_t on_valid, const char *what)
{
	struct reply r = { 0 };
	struct nl_cb *cb = nl_cb_alloc(NL_CB_DEFAULT);
	int ret;

	if (!cb) {
		fprintf(stderr, "vqctl: out of memory\n");
		return 1;
	}
	nl_cb_err(cb, NL_CB_CUSTOM, on_error, &r);
	nl_cb_set(cb, NL_CB_ACK, NL_CB_CUSTOM, on_ack, &r);
	nl_cb_set(cb, NL_CB_FINISH, NL_CB_CUSTOM, on_finish, &r);
	if (on_valid)
		nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, on_valid, &r);
	ret = nl_send_auto(sk, msg);
	while (ret >= 0 && !r.done)
		ret = nl_recvmsgs(sk, cb);
	nl_cb_put(cb);
	if (!r.done) {
		fprintf(stderr, "vqctl: %s: %s\n", what, nl_geterror(ret));
		return 1;
	}
	if (r.error) {
		/* "vqctl: WHAT: [DEVICE: ]MESSAGE: strerror (ENAME)" */
		fprintf(stderr, "vqctl: %s: ", what);
		if (r.cookie[0] && !strstr(r.msg, r.cookie))
			fprintf(stderr, "%s: ", r.cookie);
		if (r.msg[0])
			fprintf(stderr, "%s: ", r.msg);
		fprintf(stderr, "%s (%s)\n", strerror(-r.error),
			strerrorname_np(-r.error) ?: "?");
		return 1;
	}
	if (r.msg[0])
		fprintf(stderr, "vqctl: %s: warning: %s\n", what, r.msg);
	return 0;
}

static struct nl_msg *new_request(int family, int flags, uint8_t cmd)
{
	struct nl_msg *msg = nlmsg_alloc();

	if (!msg || !genlmsg_put(msg, NL_AUTO_PORT, NL_AUTO_SEQ, family, 0,
				 flags, cmd, VFIO_QUARANTINE_FAMILY_VERSION)) {
		fprintf(stderr, "vqctl: out of memory\n");
		exit(1);
	}
	return msg;
}

static int cmd_group(int cmd, unsigned int group, unsigned int flags)
{
	char what[64];
	struct nl_sock *sk;
	struct nl_msg *msg;
	int family, ret;

	sk = connect_family(&family);
	msg = new_request(family, 0, (uint8_t)cmd);
	if (nla_put_u32(msg, VFIO_QUARANTINE_A_GROUP, group) < 0 ||
	    (flags && nla_put_u32(msg, VFIO_QUARANTINE_A_FLAGS, flags) < 0)) {
		fprintf(stderr, "vqctl: message too long\n");
		return 1;
	}
	snprintf(what, sizeof(what), "%s group %u",
		 cmd == VFIO_QUARANTINE_CMD_QUARANTINE ? "quarantine" :
		 "release", group);
	ret = transact(sk, msg, NULL, what);
	nlmsg_free(msg);
	nl_socket_free(sk);
	return ret;
}

static int cmd_request(const char *bdf)
{
	char what[64];
	struct nl_sock *sk;
	struct nl_msg *msg;
	int family, ret;

	sk = connect_family(&family);
	/* the kernel acks after its reply, so transact() waits for both */
	msg = new_request(family, NLM_F_ACK, VFIO_QUARANTINE_CMD_REQUEST_DEVICE);
	if (nla_put_string(msg, VFIO_QUARANTINE_A_DEVICE, bdf) < 0) {
		fprintf(stderr, "vqctl: message too long\n");
		return 1;
	}
	snprintf(what, sizeof(what), "request %s", bdf);
	ret = transact(sk, msg, on_request, what);
	nlmsg_free(msg);
	nl_socket_free(sk);
	return ret;
}

static int cmd_list(void)
{
	struct nl_sock *sk;
	struct nl_msg *msg;
	int family, ret;

	sk = connect_family(&family);
	msg = new_request(family, NLM_F_DUMP, VFIO_QUARANTINE_CMD_LIST);
	ret = transact(sk, msg, on_group, "list");
	nlmsg_free(msg);
	nl_socket_free(sk);
	return ret;
}

static int cmd_monitor(long count)
{
	struct reply r = { .max_events = count };
	struct nl_sock *sk;
	int family, grp, ret;

	sk = connect_family(&family);
	grp = genl_ctrl_resolve_grp(sk, VFIO_QUARANTINE_FAMILY_NAME,
				    VFIO_QUARANTINE_MCGRP_EVENTS);
	if (grp < 0 || nl_socket_add_membership(sk, grp) < 0) {
		fprintf(stderr, "vqctl: cannot join the events group\n");
		return 1;
	}
	nl_socket_disable_seq_check(sk);
	nl_socket_modify_cb(sk, NL_CB_VALID, NL_CB_CUSTOM, on_event, &r);
	fprintf(stderr, "vqctl: listening\n");
	while (!r.done) {
		ret = nl_recvmsgs_default(sk);
		if (ret < 0 && ret != -NLE_INTR) {
			fprintf(stderr, "vqctl: monitor: %s\n",
				nl_geterror(ret));
			return 1;
		}
	}
	nl_socket_free(sk);
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 2)
		usage();
	if (!strcmp(argv[1], "quarantine") && argc == 3)
		return cmd_group(VFIO_QUARANTINE_CMD_QUARANTINE,
				 (unsigned int)parse_number(argv[2], INT_MAX), 0);
	if (!strcmp(argv[1], "release") && (argc == 3 || argc == 4)) {
		unsigned int flags = 0;

		if (argc == 4) {
			if (strcmp(argv[3], "--restore"))
				usage();
			flags = VFIO_QUARANTINE_RELEASE_RESTORE_DRIVERS;
		}
		return cmd_group(VFIO_QUARANTINE_CMD_RELEASE,
				 (unsigned int)parse_number(argv[2], INT_MAX),
				 flags);
	}
	if (!strcmp(argv[1], "request") && argc == 3)
		return cmd_request(argv[2]);
	if (!strcmp(argv[1], "list") && argc == 2)
		return cmd_list();
	if (!strcmp(argv[1], "monitor") && argc == 2)
		return cmd_monitor(0);
	if (!strcmp(argv[1], "monitor") && argc == 4 &&
	    !strcmp(argv[2], "--count"))
		return cmd_monitor(parse_number(argv[3], LONG_MAX));
	usage();
	return 2;
}
