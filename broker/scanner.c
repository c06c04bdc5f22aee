/* SPDX-License-Identifier: MIT */
#include "broker/scanner.h"
#include "broker/log.h"
#include "broker/sandbox.h"
#include "common/cleanup.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* The wire between the broker and a scanner: one fixed-size packet each way. */
struct scanner_request_wire {
	uint32_t id;
	uint32_t max;
	uint8_t is_chr;
	uint8_t reserved[7]; /* named, so that initialisers zero it: no stack bytes cross */
	uint64_t rdev;
	uint64_t dev;
	uint64_t ino;
};

_Static_assert(sizeof(struct scanner_request_wire) == 4 + 4 + 1 + 7 + 3 * 8,
	       "a request has no padding: every byte sent is a named field");

#define SCANNER_PROGRESS 1 /* result of the packet sent once a scan outlasts a slice */

struct scanner_reply_wire {
	uint32_t id;
	int32_t result; /* 0 done, SCANNER_PROGRESS, or -errno */
	uint32_t n;	/* pids, and descriptors passed with the packet */
	uint32_t reserved;
	uint64_t cpu_usec;
	int32_t pids[SCANNER_MAX_PIDS];
	uint8_t is_pidfd[SCANNER_MAX_PIDS]; /* else a /proc/PID directory (no pidfd_open) */
};

_Static_assert(sizeof(struct scanner_reply_wire) ==
		       4 * 4 + 8 + SCANNER_MAX_PIDS * sizeof(int32_t) + SCANNER_MAX_PIDS,
	       "a reply has no padding: every byte sent is a named field");

struct scanner_job {
	struct scanner_job *next; /* in the queue */
	uint32_t id;
	struct holders_target target;
	size_t max;
	scanner_done_fn done;
	scanner_sliced_fn sliced;
	void *userdata;
};

struct scanner_process {
	pid_t pid; /* 0: dead, or never started */
	int fd;	   /* -1 with it */
};

struct scanner {
	sd_event *event;
	struct scanner_process procs[SCANNER_PROCESSES];
	size_t current; /* the one in service; == SCANNER_PROCESSES: none left */
	sd_event_source *io;
	sd_event_source *kick; /* sends the next queued job (a defer source) */
	struct scanner_job *running; /* sent, not answered */ /* sent, not answered */
	struct scanner_job *queue, **queue_tail;
	uint32_t next_id;
};

/* ---- the scanner process ---- */

static uint64_t scanner_cpu_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/*
 * Keep CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH (those of them the broker had),
 * nothing else. The bounding set narrows only with CAP_SETPCAP; without it
 * (the unit grants none) it stays, which matters only across execve(), and
 * no_new_privs and the filter below rule that out.
 */
static int scanner_drop_capabilities(void)
{
	static const cap_value_t scan_caps[] = {CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH};
	cap_value_t keep[2];
	cap_t caps = cap_get_proc();
	int n = 0, r = 0;

	if (!caps)
		return -errno;
	for (size_t i = 0; i < 2; i++) {
		cap_flag_value_t v = CAP_CLEAR;

		if (cap_get_flag(caps, scan_caps[i], CAP_PERMITTED, &v) == 0 && v == CAP_SET)
			keep[n++] = scan_caps[i];
	}
	cap_free(caps);
	for (cap_value_t c = 0; c <= CAP_LAST_CAP; c++)
		if (c != CAP_SYS_PTRACE && c != CAP_DAC_READ_SEARCH && CAP_IS_SUPPORTED(c) &&
		    prctl(PR_CAPBSET_READ, c, 0, 0, 0) > 0)
			(void)prctl(PR_CAPBSET_DROP, c, 0, 0, 0);
	r = sandbox_keep_only(keep, n);
	if (r == 0 && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		r = -errno;
	return r;
}

/*
 * What a scan calls: read-only opens (of /proc: a filter cannot read the path,
 * but nothing else is what the code asks for, and it can write nothing),
 * directory listing, statx, reads of fdinfo, pidfd_open, the socket to the
 * broker, the clock and sleep of its budget, malloc's, and exit. Anything else
 * kills it; the broker then uses the next scanner.
 */
static const char *const scanner_syscalls[] = {
	"brk",
	"clock_gettime",
	"clock_nanosleep",
	"close",
	"exit",
	"exit_group",
	"fcntl",
	"fstat",
	"getdents64",
	"getpid",
	"getppid",
	"lseek",
	"madvise",
	"mmap",
	"munmap",
	"mremap",
	"nanosleep",
	"newfstatat",
	"pidfd_open",
	"poll",
	"ppoll",
	"read",
	"recvfrom",
	"recvmsg",
	"restart_syscall",
	"rt_sigreturn",
	"sendmsg",
	"statx",
	"write",
#if defined(__SANITIZE_ADDRESS__)
	/* SANITIZE=1 test builds only: what the broker's filter allows the runtime, and more,
	 * since the sanitize tier was not run against this list. */
	"access",
	"clone",
	"clone3",
	"dup",
	"dup2",
	"dup3",
	"faccessat",
	"futex",
	"getdents",
	"getegid",
	"geteuid",
	"getgid",
	"getrlimit",
	"getrusage",
	"gettid",
	"gettimeofday",
	"getuid",
	"kill",
	"lstat",
	"mincore",
	"mprotect",
	"open",
	"openat2",
	"pipe",
	"pipe2",
	"prctl",
	"prlimit64",
	"ptrace",
	"readlink",
	"readlinkat",
	"rseq",
	"rt_sigaction",
	"rt_sigprocmask",
	"rt_sigtimedwait",
	"sched_getaffinity",
	"sched_setaffinity",
	"sched_yield",
	"set_robust_list",
	"sigaltstack",
	"stat",
	"sysinfo",
	"tgkill",
	"uname",
	"wait4",
#endif
};

static int scanner_install_seccomp(void)
{
	scmp_filter_ctx ctx;
	int r = sandbox_check_seccomp();

	if (r < 0)
		return r;
	ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
	if (!ctx)
		return -ENOMEM;
	for (size_t i = 0; r == 0 && i < sizeof(scanner_syscalls) / sizeof(scanner_syscalls[0]);
	     i++) {
		int nr = seccomp_syscall_resolve_name(scanner_syscalls[i]);

		if (nr != __NR_SCMP_ERROR)
			r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
	}
	/* openat() read-only, creating and truncating nothing. */
	if (r == 0)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(openat), 1,
				     SCMP_A2(SCMP_CMP_MASKED_EQ,
					     (scmp_datum_t)(O_ACCMODE | O_CREAT | O_TRUNC), 0));
	if (r == 0)
		r = seccomp_load(ctx);
	seccomp_release(ctx);
	return r;
}

/* Send one reply packet, with refs' descriptors when there are any. */
static int scanner_child_reply(int sock, const struct scanner_reply_wire *w,
			       const struct pidref *refs)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int) * SCANNER_MAX_PIDS)];
	} control = {0};
	struct iovec iov = {.iov_base = (void *)w, .iov_len = sizeof(*w)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};

	if (w->n > 0) {
		struct cmsghdr *c;

		mh.msg_control = control.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * w->n);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * w->n);
		for (uint32_t i = 0; i < w->n; i++)
			memcpy(CMSG_DATA(c) + i * sizeof(int), &refs[i].fd, sizeof(int));
	}
	return sendmsg(sock, &mh, MSG_NOSIGNAL) < 0 ? -errno : 0;
}

/* One scan, slice by slice, within the scanner's budget; answered on sock. */
static int scanner_child_scan(int sock, const struct scanner_request_wire *q, pid_t broker)
{
	const struct holders_target t = {
		.is_chr = q->is_chr, .rdev = q->rdev, .dev = q->dev, .ino = q->ino};
	struct pidref refs[SCANNER_MAX_PIDS];
	struct scanner_reply_wire w = {.id = q->id};
	struct holders_cursor at = {0};
	size_t n = 0, max = q->max < SCANNER_MAX_PIDS ? q->max : SCANNER_MAX_PIDS;
	bool told = false;
	int r;

	for (;;) {
		uint64_t start = scanner_cpu_usec();
		size_t got = 0;

		r = holders_scan_slice(&t, &at, SCANNER_SLICE_USEC, broker, refs + n, max - n,
				       &got);
		n += got;
		w.cpu_usec += scanner_cpu_usec() - start;
		if (r != 0 || n >= max)
			break;
		if (w.cpu_usec >= SCANNER_SCAN_MAX_CPU_USEC) {
			r = -ETIME;
			break;
		}
		if (!told) {
			struct scanner_reply_wire p = {.id = q->id, .result = SCANNER_PROGRESS};

			if (scanner_child_reply(sock, &p, NULL) < 0)
				break;
			told = true;
		}
		/* A quarter of one CPU at most: sleep three slices' worth. */
		nanosleep(&(struct timespec){.tv_nsec = 3 * SCANNER_SLICE_USEC * 1000}, NULL);
	}
	w.result = r < 0 ? r : 0;
	w.n = r < 0 ? 0 : (uint32_t)n;
	for (size_t i = 0; i < w.n; i++) {
		w.pids[i] = refs[i].pid;
		w.is_pidfd[i] = refs[i].is_pidfd;
	}
	r = scanner_child_reply(sock, &w, refs);
	holders_release(refs, n);
	return r;
}

/*
 * The scanner process: sock becomes fd 3, every other descriptor but stdio
 * is closed (the listening socket, the broker's files), it dies with the
 * broker, sandboxes itself and says whether that worked (a reply of id 0),
 * then serves requests until the broker closes its end.
 */
static _Noreturn void scanner_child_main(int sock, pid_t broker, bool sandbox)
{
	struct scanner_reply_wire ready = {0};
	sigset_t mask;

	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0 || getppid() != broker)
		_exit(EXIT_FAILURE);
	/*
	 * A service stop signals every process of the unit: the scanners outlive the
	 * broker's own stop only by PR_SET_PDEATHSIG's SIGKILL, so that the broker
	 * never sees them die first and logs a lost scanner as it stops.
	 */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGUSR1);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	if (sock != 3 && dup2(sock, 3) < 0)
		_exit(EXIT_FAILURE);
	if (syscall(SYS_close_range, 4, ~0U, 0) < 0)
		for (int fd = 4; fd < 65536; fd++)
			close(fd);
	sock = 3;
	if (sandbox) {
		int r = scanner_drop_capabilities();

		if (r < 0)
			log_error_errno(r, "The holders scanner failed to drop capabilities: %m");
		else if ((r = scanner_install_seccomp()) < 0)
			log_error_errno(r, "The holders scanner failed to install its seccomp "
					   "filter: %m");
		ready.result = r;
	}
	/* The broker waits for this before it goes on starting (scanner_new). */
	if (scanner_child_reply(sock, &ready, NULL) < 0 || ready.result < 0)
		_exit(EXIT_FAILURE);
	for (;;) {
		struct scanner_request_wire q;
		ssize_t k = recv(sock, &q, sizeof(q), 0);

		if (k == 0)
			_exit(EXIT_SUCCESS); /* the broker closed its end */
		if (k < 0 && errno == EINTR)
			continue;
		if (k != (ssize_t)sizeof(q))
			_exit(EXIT_FAILURE);
		if (scanner_child_scan(sock, &q, broker) < 0)
			_exit(EXIT_FAILURE);
	}
}

/* ---- the broker's side ---- */

static int scanner_on_io(sd_event_source *src, int fd, uint32_t revents, void *userdata);
static int scanner_on_kick(sd_event_source *src, void *userdata);

static struct scanner_process *scanner_current(struct scanner *s)
{
	return s->current < SCANNER_PROCESSES ? &s->procs[s->current] : NULL;
}

static int scanner_watch(struct scanner *s)
{
	struct scanner_process *p = scanner_current(s);

	s->io = sd_event_source_disable_unref(s->io);
	if (!p)
		return -ENOTCONN;
	return sd_event_add_io(s->event, &s->io, p->fd, EPOLLIN, scanner_on_io, s);
}

/*
 * The first packet of a new scanner: whether it sandboxed itself (it logged
 * why not). Blocking: start-up waits for it, with a bound in case the child
 * hangs.
 */
static int scanner_wait_ready(int fd)
{
	struct scanner_reply_wire w;
	struct timeval tv = {.tv_sec = 10};
	ssize_t k;

	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0)
		return -errno;
	do
		k = recv(fd, &w, sizeof(w), 0);
	while (k < 0 && errno == EINTR);
	if (k < 0)
		return -errno;
	if (k != (ssize_t)sizeof(w) || w.id != 0)
		return -ECHILD; /* died before it could say */
	if (w.result < 0)
		return w.result;
	return fcntl(fd, F_SETFL, O_NONBLOCK) < 0 ? -errno : 0;
}

int scanner_new(sd_event *e, bool sandbox, struct scanner **ret)
{
	struct scanner *s = calloc(1, sizeof(*s));
	pid_t self = getpid();
	int r;

	if (!s)
		return -ENOMEM;
	s->event = e;
	s->queue_tail = &s->queue;
	for (size_t i = 0; i < SCANNER_PROCESSES; i++)
		s->procs[i] = (struct scanner_process){.fd = -1};
	/* Dead scanners are reaped by the kernel: the broker waits for no child. */
	signal(SIGCHLD, SIG_IGN);
	for (size_t i = 0; i < SCANNER_PROCESSES; i++) {
		int sv[2];
		pid_t pid;

		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
			r = -errno;
			goto fail;
		}
		pid = fork();
		if (pid < 0) {
			r = -errno;
			close(sv[0]);
			close(sv[1]);
			goto fail;
		}
		if (pid == 0) {
			close(sv[0]);
			scanner_child_main(sv[1], self, sandbox);
		}
		close(sv[1]);
		s->procs[i] = (struct scanner_process){.pid = pid, .fd = sv[0]};
		r = scanner_wait_ready(sv[0]);
		if (r < 0)
			goto fail;
	}
	r = scanner_watch(s);
	if (r >= 0)
		r = sd_event_add_defer(e, &s->kick, scanner_on_kick, s);
	if (r >= 0)
		r = sd_event_source_set_enabled(s->kick, SD_EVENT_OFF);
	if (r < 0)
		goto fail;
	*ret = s;
	return 0;
fail:
	scanner_free(s);
	return r;
}

struct scanner *scanner_free(struct scanner *s)
{
	if (!s)
		return NULL;
	s->io = sd_event_source_disable_unref(s->io);
	s->kick = sd_event_source_disable_unref(s->kick);
	/* Closing the socket ends a waiting scanner; one in the middle of a scan dies at its
	 * reply (EPIPE), or with the broker (PR_SET_PDEATHSIG). */
	for (size_t i = 0; i < SCANNER_PROCESSES; i++)
		safe_close(s->procs[i].fd);
	free(s->running);
	while (s->queue) {
		struct scanner_job *j = s->queue;

		s->queue = j->next;
		free(j);
	}
	free(s);
	return NULL;
}

/* Send the next queued job, if the scanner is free; a send that fails gives up on the scanner. */
static void scanner_kick(struct scanner *s);

/* The scanner in service died or misbehaved: the next one takes over, if any is left. */
static void scanner_lose_current(struct scanner *s, const char *why)
{
	struct scanner_process *p = scanner_current(s);
	struct scanner_job *j = s->running;
	struct log_fields f = LOG_FIELDS("scanner-died");

	if (!p)
		return;
	/*
	 * No kill(): the kernel reaps scanners at once (SIGCHLD ignored), so the pid may
	 * name another process by now. Closing its socket ends a live one: at its next
	 * recv(), or at the reply of the scan it is in. The source first: its epoll
	 * entry must go while the fd is still open.
	 */
	s->io = sd_event_source_disable_unref(s->io);
	p->fd = safe_close(p->fd);
	s->running = NULL;
	s->current++;
	if (scanner_current(s))
		log_event(LOG_ERR, &f,
			  "The holders scanner (pid %d) %s; scanner pid %d takes over (%zu left)",
			  (int)p->pid, why, (int)scanner_current(s)->pid,
			  SCANNER_PROCESSES - s->current - 1);
	else
		log_event(LOG_CRIT, &f,
			  "The holders scanner (pid %d) %s and none is left: every scan fails "
			  "from now on (a lease whose file stays open waits for its close; hard "
			  "removal cannot find holders); restart the broker",
			  (int)p->pid, why);
	if (scanner_watch(s) < 0 && scanner_current(s)) {
		log_error("Failed to watch the next holders scanner");
		s->current = SCANNER_PROCESSES;
	}
	/* The job that was running is not tried again: it may be what killed the scanner. */
	if (j) {
		if (j->done)
			j->done(-ECHILD, NULL, 0, 0, j->userdata);
		free(j);
	}
	if (!scanner_current(s)) {
		while (s->queue) {
			j = s->queue;
			s->queue = j->next;
			if (!s->queue)
				s->queue_tail = &s->queue;
			j->done(-ENOTCONN, NULL, 0, 0, j->userdata);
			free(j);
		}
		return;
	}
	scanner_kick(s);
}

static void scanner_kick(struct scanner *s)
{
	struct scanner_process *p = scanner_current(s);
	struct scanner_request_wire q;
	struct scanner_job *j = s->queue;

	if (!p || s->running || !j)
		return;
	s->queue = j->next;
	if (!s->queue)
		s->queue_tail = &s->queue;
	q = (struct scanner_request_wire){
		.id = j->id,
		.max = (uint32_t)j->max,
		.is_chr = j->target.is_chr,
		.rdev = j->target.rdev,
		.dev = j->target.dev,
		.ino = j->target.ino,
	};
	/* One packet in an empty socket: it never blocks. */
	if (send(p->fd, &q, sizeof(q), MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t)sizeof(q)) {
		/* Never reached the scanner: it goes to the next one. */
		j->next = s->queue;
		s->queue = j;
		if (!j->next)
			s->queue_tail = &j->next;
		scanner_lose_current(s, "cannot be sent a request");
		return;
	}
	s->running = j;
}

static int scanner_on_kick(sd_event_source *src, void *userdata)
{
	scanner_kick(userdata);
	return 0;
}

int scanner_submit(struct scanner *s, const struct holders_target *target, size_t max,
		   scanner_done_fn done, scanner_sliced_fn sliced, void *userdata,
		   struct scanner_job **ret)
{
	struct scanner_job *j;

	if (!scanner_current(s))
		return -ENOTCONN;
	j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	*j = (struct scanner_job){
		.id = ++s->next_id,
		.target = *target,
		.max = max < SCANNER_MAX_PIDS ? max : SCANNER_MAX_PIDS,
		.done = done,
		.sliced = sliced,
		.userdata = userdata,
	};
	*s->queue_tail = j;
	s->queue_tail = &j->next;
	*ret = j;
	/* Sent from the event loop, so that done never runs within here. */
	(void)sd_event_source_set_enabled(s->kick, SD_EVENT_ONESHOT);
	return 0;
}

void scanner_cancel(struct scanner *s, struct scanner_job *j)
{
	if (s->running == j) {
		/* Its answer is read and dropped: the job stays as a placeholder. */
		j->done = NULL;
		j->sliced = NULL;
		return;
	}
	for (struct scanner_job **p = &s->queue; *p; p = &(*p)->next)
		if (*p == j) {
			*p = j->next;
			if (!*p)
				s->queue_tail = p;
			free(j);
			return;
		}
}

/* Close the descriptors of a packet that is not taken. */
static void scanner_close_passed(struct msghdr *mh)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			close(fd);
		}
	}
}

/* The answer w, with its descriptors in mh, to the running job. */
static void scanner_answer(struct scanner *s, const struct scanner_reply_wire *w, struct msghdr *mh)
{
	struct scanner_job *j = s->running;
	struct pidref refs[SCANNER_MAX_PIDS];
	struct cmsghdr *c = CMSG_FIRSTHDR(mh);
	size_t n = 0;

	if (w->result == SCANNER_PROGRESS) {
		scanner_close_passed(mh);
		if (j->sliced)
			j->sliced(j->userdata);
		return;
	}
	if (w->result == 0 && w->n > 0) {
		if (!c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
		    c->cmsg_len != CMSG_LEN(sizeof(int) * w->n) || w->n > SCANNER_MAX_PIDS) {
			scanner_close_passed(mh);
			scanner_lose_current(s, "sent a malformed answer");
			return;
		}
		for (; n < w->n; n++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + n * sizeof(int), sizeof(int));
			(void)pidref_set_pidfd(&refs[n], w->pids[n], fd);
			refs[n].is_pidfd = w->is_pidfd[n];
		}
	} else {
		scanner_close_passed(mh);
	}
	s->running = NULL;
	/* The next one is sent first: done may submit or cancel jobs. */
	scanner_kick(s);
	if (j->done)
		j->done(w->result < 0 ? w->result : 0, refs, n, w->cpu_usec, j->userdata);
	free(j);
	holders_release(refs, n);
}

static int scanner_on_io(sd_event_source *src, int fd, uint32_t revents, void *userdata)
{
	struct scanner *s = userdata;

	for (;;) {
		union {
			struct cmsghdr h;
			char buf[CMSG_SPACE(sizeof(int) * SCANNER_MAX_PIDS)];
		} control;
		struct scanner_reply_wire w;
		struct iovec iov = {.iov_base = &w, .iov_len = sizeof(w)};
		struct msghdr mh = {.msg_iov = &iov,
				    .msg_iovlen = 1,
				    .msg_control = control.buf,
				    .msg_controllen = sizeof(control.buf)};
		ssize_t k = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && errno == EAGAIN)
			return 0;
		if (k <= 0) {
			scanner_lose_current(s, k == 0 ? "exited" : "cannot be read from");
			return 0;
		}
		if (k != (ssize_t)sizeof(w) || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) ||
		    !s->running || w.id != s->running->id) {
			scanner_close_passed(&mh);
			scanner_lose_current(s, "sent an answer to no question");
			return 0;
		}
		scanner_answer(s, &w, &mh);
		if (fd != (scanner_current(s) ? scanner_current(s)->fd : -1))
			return 0; /* lost meanwhile: the next scanner has its own source */
	}
}
