/* SPDX-License-Identifier: MIT */
#include "tests/integration/it.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

struct broker it_broker;

void it_broker_setup(void)
{
	broker_setup(&it_broker, IT_POLICY);
	broker_start(&it_broker, NULL);
}

void it_broker_teardown(void)
{
	broker_teardown(&it_broker);
}

void it_broker_crash_and_restart(void)
{
	broker_crash(&it_broker);
	broker_start(&it_broker, NULL);
}

bool admin_find_lease(unsigned group, struct vfiobroker_lease *ret)
{
	struct vfiobroker *b;
	struct vfiobroker_lease *l;
	bool found = false;
	size_t n;

	ck_assert_int_eq(vfiobroker_connect(it_broker.socket, &b), 0);
	ck_assert_int_eq(vfiobroker_leases(b, &l, &n), 0);
	for (size_t i = 0; i < n; i++)
		if (l[i].group == group) {
			*ret = l[i];
			found = true;
		}
	vfiobroker_leases_free(l, n);
	vfiobroker_disconnect(b);
	return found;
}

int admin_count_leases(void)
{
	struct vfiobroker *b;
	struct vfiobroker_lease *l;
	size_t n;

	ck_assert_int_eq(vfiobroker_connect(it_broker.socket, &b), 0);
	ck_assert_int_eq(vfiobroker_leases(b, &l, &n), 0);
	vfiobroker_leases_free(l, n);
	vfiobroker_disconnect(b);
	return (int)n;
}

/* The whole state file, up to 64 KiB: tests keep a few leases, so that it fits. */
#define STATE_FILE_TEST_MAX (64 * 1024)

/*
 * Rewrites every line of group in the state file (the journal may hold
 * several: the last committed one counts) with field set to value, or
 * shifted by it.
 */
static void state_file_edit(unsigned group, unsigned field, bool shift, long long value)
{
	static char text[STATE_FILE_TEST_MAX], out[STATE_FILE_TEST_MAX];
	char path[PATH_MAX + 16], prefix[32];
	char *line, *save = NULL;
	size_t len;
	FILE *f;

	snprintf(path, sizeof(path), "%s/leases", it_broker.state_dir);
	f = fopen(path, "re");
	ck_assert_ptr_nonnull(f);
	len = fread(text, 1, sizeof(text) - 1, f);
	ck_assert(feof(f));
	fclose(f);
	text[len] = '\0';
	out[0] = '\0';
	snprintf(prefix, sizeof(prefix), "lease %u ", group);
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *tok, *tsave = NULL;
		unsigned i = 0;
		bool ours = strncmp(line, prefix, strlen(prefix)) == 0;

		for (tok = strtok_r(line, " ", &tsave); tok;
		     tok = strtok_r(NULL, " ", &tsave), i++) {
			size_t used = strlen(out);

			if (ours && i == field)
				snprintf(out + used, sizeof(out) - used, "%s%lld", i ? " " : "",
					 shift ? atoll(tok) + value : value);
			else
				snprintf(out + used, sizeof(out) - used, "%s%s", i ? " " : "", tok);
		}
		ck_assert(!ours || i > field);
		snprintf(out + strlen(out), sizeof(out) - strlen(out), "\n");
	}
	f = fopen(path, "we");
	ck_assert_ptr_nonnull(f);
	fputs(out, f);
	fclose(f);
}

void state_file_shift(unsigned group, unsigned field, long long delta)
{
	state_file_edit(group, field, true, delta);
}

void state_file_set(unsigned group, unsigned field, long long value)
{
	state_file_edit(group, field, false, value);
}

void state_file_append(const char *text)
{
	char path[PATH_MAX + 16];
	FILE *f;

	snprintf(path, sizeof(path), "%s/leases", it_broker.state_dir);
	f = fopen(path, "ae");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_ge(fputs(text, f), 0);
	ck_assert_int_eq(fclose(f), 0);
}

bool state_file_records_lease(unsigned group)
{
	static char text[STATE_FILE_TEST_MAX];
	char path[PATH_MAX + 16], prefix[32];
	bool v1, pending = false, committed = false;
	char *line, *save = NULL;
	size_t len;
	FILE *f;

	snprintf(path, sizeof(path), "%s/leases", it_broker.state_dir);
	f = fopen(path, "re");
	if (!f)
		return false;
	len = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[len] = '\0';
	v1 = strncmp(text, "vfio-brokerd leases 1\n", 22) == 0;
	snprintf(prefix, sizeof(prefix), "lease %u ", group);
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		unsigned g;
		int n = 0;

		if (strcmp(line, "commit") == 0)
			committed = pending;
		else if (strncmp(line, prefix, strlen(prefix)) == 0)
			pending = true;
		else if (sscanf(line, "end %u%n", &g, &n) == 1 && !line[n] && g == group)
			pending = false;
	}
	/* A version 1 file is one whole table; version 2 counts what a commit line ends. */
	return v1 ? pending : committed;
}

int admin_remove(unsigned group, bool hard, unsigned timeout_ms, char *msg, size_t size)
{
	struct vfiobroker *b;
	int r;

	ck_assert_int_eq(vfiobroker_connect(it_broker.socket, &b), 0);
	ck_assert(vfiobroker_is_admin(b));
	r = vfiobroker_remove(b, group, hard, timeout_ms, NULL);
	if (msg)
		snprintf(msg, size, "%s", r < 0 ? vfiobroker_error_message(b) : "");
	vfiobroker_disconnect(b);
	return r;
}

int send_fd(int sock, int fd)
{
	char byte = 'F';
	struct iovec iov = {.iov_base = &byte, .iov_len = 1};
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u = {0};
	struct msghdr msg = {.msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = u.buf,
			     .msg_controllen = sizeof(u.buf)};
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);

	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	return sendmsg(sock, &msg, 0) == 1 ? 0 : -1;
}

int recv_fd(int sock)
{
	char byte;
	struct iovec iov = {.iov_base = &byte, .iov_len = 1};
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct msghdr msg = {.msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = u.buf,
			     .msg_controllen = sizeof(u.buf)};
	int fd;

	if (recvmsg(sock, &msg, MSG_CMSG_CLOEXEC) != 1 || !CMSG_FIRSTHDR(&msg))
		return -1;
	memcpy(&fd, CMSG_DATA(CMSG_FIRSTHDR(&msg)), sizeof(int));
	return fd;
}

const char *it_build_dir(void)
{
	return getenv("VB_BUILD") ?: "build";
}

pid_t cmd_spawn(uid_t uid, const char *const *argv, char *const *envp, int *out_fd, int *err_fd)
{
	int out[2] = {-1, -1}, err[2];
	pid_t pid;

	if (out_fd)
		ck_assert_int_eq(pipe2(out, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(err, O_CLOEXEC), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int stdout_fd = out_fd ? out[1] : open("/dev/null", O_WRONLY);

		dup2(stdout_fd, 1);
		dup2(err[1], 2);
		if (uid != 0 && (setgroups(0, NULL) < 0 || setresgid(uid, uid, uid) < 0 ||
				 setresuid(uid, uid, uid) < 0))
			_exit(120);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		execve(argv[0], (char **)argv, envp ? envp : environ);
		_exit(127);
	}
	if (out_fd) {
		close(out[1]);
		*out_fd = out[0];
	}
	close(err[1]);
	*err_fd = err[0];
	return pid;
}

/* Reads fd to EOF into buf, as much as fits, NUL-terminated. */
static void drain(int fd, char *buf, size_t size)
{
	size_t len = 0;
	ssize_t n;

	while (len + 1 < size && (n = read(fd, buf + len, size - 1 - len)) > 0)
		len += (size_t)n;
	buf[len] = '\0';
}

void cmd_finish(struct cmd_result *r, pid_t pid, int out_fd, int err_fd)
{
	drain(out_fd, r->out, sizeof(r->out));
	drain(err_fd, r->err, sizeof(r->err));
	close(out_fd);
	close(err_fd);
	r->status = wait_exit(pid);
}

pid_t vfioctl_spawn(uid_t uid, int *out_fd, int *err_fd, const char *const *args)
{
	const char *argv[32];
	char exe[PATH_MAX];
	size_t n = 0;

	snprintf(exe, sizeof(exe), "%s/vfioctl", it_build_dir());
	argv[n++] = exe;
	argv[n++] = "--socket";
	argv[n++] = it_broker.socket;
	for (; *args && n < 31; args++)
		argv[n++] = *args;
	argv[n] = NULL;
	return cmd_spawn(uid, argv, NULL, out_fd, err_fd);
}

struct outcome *outcome_new(void)
{
	struct outcome *o =
		mmap(NULL, sizeof(*o), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	ck_assert_ptr_ne(o, MAP_FAILED);
	memset(o, 0, sizeof(*o));
	o->rc = 1; /* "never reported" */
	return o;
}

void outcome_free(struct outcome *o)
{
	if (o)
		munmap(o, sizeof(*o));
}

void outcome_record(struct outcome *o, struct vfiobroker *b, int rc)
{
	const char *code = b ? vfiobroker_error_code(b) : NULL;
	const char *msg = b ? vfiobroker_error_message(b) : NULL;

	o->rc = rc;
	snprintf(o->code, sizeof(o->code), "%s", rc < 0 && code ? code : "");
	snprintf(o->message, sizeof(o->message), "%s", rc < 0 && msg ? msg : "");
}

int wait_for_remove_request(struct vfiobroker *b, unsigned group)
{
	for (;;) {
		struct pollfd pfd = {.fd = vfiobroker_get_fd(b), .events = POLLIN};
		struct vfiobroker_event ev;
		int r;

		r = vfiobroker_next_event(b, &ev);
		if (r == -EAGAIN) {
			if (poll(&pfd, 1, 10000) != 1)
				return -ETIMEDOUT;
			continue;
		}
		if (r < 0)
			return r;
		if (ev.type == VFIOBROKER_EVENT_REMOVE_REQUESTED && ev.group == group)
			return 0;
	}
}

int client_lease(void *arg)
{
	struct client_args *a = arg;
	struct vfiobroker *b = NULL;
	struct rlimit rl;
	unsigned group = a->group;
	int fd = -1, r;

	r = vfiobroker_connect(a->socket, &b);
	if (r < 0) {
		outcome_record(a->out, NULL, r);
		return 1;
	}
	if (a->device)
		r = vfiobroker_lease_device(b, a->device, &group, &fd);
	else
		r = vfiobroker_lease(b, group, &fd);
	outcome_record(a->out, b, r);
	if (r < 0) {
		vfiobroker_disconnect(b);
		return 1;
	}
	a->out->value = (int)group;
	if (getrlimit(RLIMIT_MEMLOCK, &rl) == 0)
		snprintf(a->out->text, sizeof(a->out->text), "memlock=%llu fd=%d",
			 (unsigned long long)rl.rlim_cur, fd);

	switch (a->mode) {
	case HOLD_UNTIL_GO:
		signal_pipe_send(a->ready, 'L');
		signal_pipe_wait(a->go);
		break;
	case HOLD_IN_CHILD:
		if (fork() == 0) {
			vfiobroker_disconnect(b);
			signal_pipe_wait(a->go);
			_exit(0);
		}
		signal_pipe_send(a->ready, 'L');
		break;
	case HOLD_COOPERATE:
		signal_pipe_send(a->ready, 'L');
		r = wait_for_remove_request(b, group);
		if (r == 0) {
			close(fd);
			fd = -1;
			r = vfiobroker_release(b, group, NULL);
		}
		a->out->value = r == 0 ? 1 : r;
		break;
	case HOLD_IGNORE:
		signal_pipe_send(a->ready, 'L');
		for (;;)
			pause();
	default:
		break;
	}
	if (fd >= 0)
		close(fd);
	vfiobroker_disconnect(b);
	return 0;
}

pid_t spawn_holder(const char *socket, uid_t uid, unsigned group, int mode, struct outcome *o,
		   struct signal_pipe *ready, struct signal_pipe *go)
{
	struct client_args a = {
		.socket = socket, .group = group, .out = o, .mode = mode, .ready = ready, .go = go};
	pid_t pid;

	signal_pipe_init(ready);
	if (go)
		signal_pipe_init(go);
	pid = spawn_as(uid, 0, client_lease, &a);
	ck_assert_int_eq(signal_pipe_wait(ready), 'L');
	ck_assert_int_eq(o->rc, 0);
	return pid;
}

struct fd_wait {
	const struct broker *b;
	int baseline;
};

static bool fds_back_to_baseline(void *arg)
{
	const struct fd_wait *w = arg;

	return broker_fd_count(w->b) == w->baseline;
}

void assert_serves_good_client(const struct broker *b, int baseline)
{
	struct outcome *o = outcome_new();
	struct client_args a = {.socket = b->socket, .group = 7, .out = o};
	struct fd_wait w = {.b = b, .baseline = baseline};

	ck_assert(broker_alive(b));
	ck_assert_int_eq(run_as(UID_ALICE, 0, client_lease, &a), 0);
	ck_assert_msg(o->rc == 0, "alice's lease failed: %s: %s", o->code, o->message);
	outcome_free(o);
	ck_assert_msg(wait_until(fds_back_to_baseline, &w), "broker holds %d fds, baseline %d",
		      broker_fd_count(b), baseline);
}
