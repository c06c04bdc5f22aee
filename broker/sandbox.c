/* SPDX-License-Identifier: MIT */
#include "broker/sandbox.h"
#include "broker/log.h"

#include "common/cleanup.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/landlock.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static const cap_value_t kept_caps[] = {
	CAP_KILL, CAP_SYS_RESOURCE,
	CAP_NET_ADMIN, /* QUARANTINE and RELEASE of the vfio_quarantine module (GENL_ADMIN_PERM) */
};

/*
 * The scanner's two (scanner.h): the broker had them until start-up was over
 * (pidfd_getfd and the /proc scans of the restore) and the scanner processes
 * had forked. They leave its permitted and effective sets; the bounding set
 * narrows only with CAP_SETPCAP, which the unit does not grant (it would let
 * the broker raise its inheritable set): there they stay, and count only
 * across an execve(), which no_new_privs and the seccomp filter rule out.
 */
static const cap_value_t scanner_caps[] = {CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH};

static bool cap_in(const cap_value_t *set, size_t n, cap_value_t c)
{
	for (size_t i = 0; i < n; i++)
		if (set[i] == c)
			return true;
	return false;
}

static bool cap_is_kept(cap_value_t c)
{
	return cap_in(kept_caps, sizeof(kept_caps) / sizeof(kept_caps[0]), c);
}

static bool cap_is_scanners(cap_value_t c)
{
	return cap_in(scanner_caps, sizeof(scanner_caps) / sizeof(scanner_caps[0]), c);
}

int sandbox_keep_only(const cap_value_t *keep, int n)
{
	cap_t want = cap_init();
	int r = 0;

	if (!want)
		return -ENOMEM;
	if (n > 0 && (cap_set_flag(want, CAP_PERMITTED, n, keep, CAP_SET) < 0 ||
		      cap_set_flag(want, CAP_EFFECTIVE, n, keep, CAP_SET) < 0))
		r = -errno;
	if (r == 0 && cap_set_proc(want) < 0)
		r = -errno;
	cap_free(want);
	return r;
}

int sandbox_drop_capabilities(void)
{
	cap_t caps = cap_get_proc();
	cap_value_t keep[sizeof(kept_caps) / sizeof(kept_caps[0])];
	int n = 0, r = 0;

	if (!caps)
		return log_error_errno(errno, "Failed to read the broker's capabilities: %m");
	/* Keep only what we have: asking for more than the permitted set fails. */
	for (size_t i = 0; i < sizeof(kept_caps) / sizeof(kept_caps[0]); i++) {
		cap_flag_value_t v = CAP_CLEAR;

		if (cap_get_flag(caps, kept_caps[i], CAP_PERMITTED, &v) == 0 && v == CAP_SET)
			keep[n++] = kept_caps[i];
	}
	cap_free(caps);

	/*
	 * The bounding set first, while CAP_SETPCAP may still be effective. What is
	 * already out of it is skipped: under the unit, systemd's
	 * CapabilityBoundingSet= has left only the kept three and the scanner's two,
	 * and dropping the rest
	 * again would change nothing but need CAP_SETPCAP, a capability the unit
	 * rightly does not grant (it would let the broker raise its inheritable
	 * set). A capability still in the set that cannot be dropped stops the
	 * start: the broker does not run with a wider ceiling than it declares.
	 */
	for (cap_value_t c = 0; c <= CAP_LAST_CAP; c++) {
		if (cap_is_kept(c) || !CAP_IS_SUPPORTED(c) ||
		    prctl(PR_CAPBSET_READ, c, 0, 0, 0) == 0)
			continue;
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL) {
			int error = errno;

			if (cap_is_scanners(c) && error == EPERM)
				continue; /* see scanner_caps */
			char *name = cap_to_name(c);

			if (error == EPERM)
				r = log_error_errno(
					error,
					"Cannot drop %s from the bounding set without "
					"CAP_SETPCAP; start the broker with a bounding set "
					"of at most its five capabilities (the unit's "
					"CapabilityBoundingSet=) or with CAP_SETPCAP: %m",
					name ? name : "a capability");
			else
				r = log_error_errno(error,
						    "Failed to drop %s from the bounding set: %m",
						    name ? name : "a capability");
			cap_free(name);
			return r;
		}
	}

	r = sandbox_keep_only(keep, n);
	if (r < 0)
		return log_error_errno(r, "Failed to drop capabilities: %m");
	/* Seccomp without CAP_SYS_ADMIN needs no_new_privs; it also fits a daemon that never execs.
	 */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return log_error_errno(errno, "Failed to set no_new_privs: %m");
	return 0;
}

/*
 * What the running broker calls: the event loop, sockets and fd passing,
 * reading sysfs and /proc, the lease machinery (inotify, pidfds, prlimit,
 * kcmp, the VFIO ioctls), logging to the journal (memfd for large entries),
 * malloc, and NSS lookups for explain. Start-up (mkdir, chmod, execve) is
 * over before the filter is installed; bind stays for the netlink socket
 * that reconnects to the vfio_quarantine module after a reload.
 */
static const char *const allowed_syscalls[] = {
	"accept4",
	"access",
	"bind",
	"brk",
	"capget",
	"clock_getres",
	"clock_gettime",
	"clock_nanosleep",
	"close",
	"close_range",
	"connect",
	"dup",
	"dup2",
	"dup3",
	"epoll_create1",
	"epoll_ctl",
	"epoll_pwait",
	"epoll_wait",
	"eventfd2",
	"exit",
	"exit_group",
	"faccessat",
	"faccessat2",
	"fcntl",
	"fstat",
	"fstatfs",
	"getxattr", /* start-up: systemd's trusted.delegate mark on the broker's cgroup */
	"futex",
	"getdents64",
	"getegid",
	"geteuid",
	"getgid",
	"getgroups",
	"getpeername",
	"getpid",
	"getppid",
	"getrandom",
	"getresgid",
	"getresuid",
	"getrlimit",
	"getsockname",
	"getsockopt",
	"gettid",
	"gettimeofday",
	"getuid",
	"inotify_add_watch",
	"inotify_init1",
	"inotify_rm_watch",
	"kcmp",
	"kill",
	"lseek",
	"lstat",
	"madvise",
	"memfd_create",
	"mkdir", /* lease cgroups (lease_cgroup.c) */
	"mkdirat",
	"mmap",
	"mprotect",
	"mremap",
	"munmap",
	"nanosleep",
	"newfstatat",
	"open",
	"openat",
	"openat2",
	"pidfd_open",
	"pidfd_send_signal",
	"pipe2",
	"poll",
	"ppoll",
	"prctl",
	"pread64",
	"prlimit64",
	"read",
	"readlink",
	"readlinkat",
	"readv",
	"recvfrom",
	"recvmsg",
	"rename", /* the state file (lease_store.c): write a temporary, rename it over */
	"renameat",
	"renameat2",
	"restart_syscall",
	"rmdir", /* lease cgroups, once empty */
	"rseq",
	"rt_sigaction",
	"rt_sigprocmask",
	"rt_sigreturn",
	"sched_getaffinity",
	"sched_yield",
	"sendmmsg",
	"sendmsg",
	"sendto",
	"set_robust_list",
	"setsockopt",
	"shutdown",
	"sigaltstack",
	"signalfd4",
	"stat",
	"statfs",
	"statx",
	"sysinfo",
	"tgkill",
	"timerfd_create",
	"timerfd_gettime",
	"timerfd_settime",
	"uname",
	"unlink",
	"unlinkat",
	"waitid",
	"write",
	"writev",
};

/*
 * A sanitizer build's runtime needs more: LeakSanitizer stops the world at
 * exit with a ptrace()ing clone. Only SANITIZE=1 test builds get these.
 */
#if defined(__SANITIZE_ADDRESS__)
static const char *const sanitizer_syscalls[] = {
	"clone",
	"clone3",
	"ptrace",
	"wait4",
	"sched_getaffinity",
	"rt_sigtimedwait",
	"getdents",
	"pipe",
	"sched_setaffinity",
	"mincore",
};
#endif

static int seccomp_allow(scmp_filter_ctx ctx, const char *const *names, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int nr = seccomp_syscall_resolve_name(names[i]);
		int r;

		if (nr == __NR_SCMP_ERROR)
			continue; /* not on this architecture */
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
		if (r < 0)
			return log_error_errno(r, "Failed to allow %s in the seccomp filter: %m",
					       names[i]);
	}
	return 0;
}

/*
 * Threads, for the closer (closer.h), and nothing else clone() can make:
 * clone() only with CLONE_THREAD (no new process, nothing to exec), and
 * clone3(), whose flags sit in memory a filter cannot read, answered ENOSYS
 * so that pthread_create() falls back to clone(). capset() lets that
 * thread drop the capabilities it would inherit (it can only lower them:
 * raising needs CAP_SETPCAP, which the broker never keeps).
 */
static int sandbox_allow_threads(scmp_filter_ctx ctx)
{
	int r;

#if !defined(__SANITIZE_ADDRESS__) /* the sanitizer list allows both outright */
	r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
			     SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
	if (r < 0)
		return log_error_errno(r, "Failed to allow threads in the seccomp filter: %m");
	r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
	if (r < 0)
		return log_error_errno(r, "Failed to refuse clone3 in the seccomp filter: %m");
#endif
	r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(capset), 0);
	if (r < 0)
		return log_error_errno(r, "Failed to allow capset in the seccomp filter: %m");
	return 0;
}

/*
 * socket() and ioctl() by argument (issue 13, item 9). The broker opens Unix
 * sockets (the journal, sd_notify, NSS's varlink) and netlink sockets
 * (uevents, vfio_quarantine) and nothing else: other families answer
 * EAFNOSUPPORT, so an NSS module that would reach the network fails as on a
 * host without it. Its ioctls are VFIO's and iommufd's (both of type ';':
 * VFIO_TYPE and IOMMUFD_TYPE), plus TCGETS (isatty) and FIONREAD; any other
 * kills it, as an unlisted system call does: a terminal's TIOCSTI, a
 * block device's or another driver's ioctls are out of reach of code that
 * takes over the broker.
 */
#define SANDBOX_IOCTL_TYPE_MASK 0xff00u
#define SANDBOX_IOCTL_TYPE_VFIO (0x3bu << 8) /* ';' */

static int sandbox_filter_by_argument(scmp_filter_ctx ctx)
{
	static const unsigned long plain_ioctls[] = {TCGETS, FIONREAD};
	int r;

	r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
			     SCMP_A0(SCMP_CMP_EQ, AF_UNIX));
	if (r == 0)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
				     SCMP_A0(SCMP_CMP_EQ, AF_NETLINK));
	/* A rule cannot compare one argument twice: "not these two" is spelt as the rest. */
	if (r == 0)
		r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socket), 1,
				     SCMP_A0(SCMP_CMP_LT, AF_UNIX));
	for (int family = AF_UNIX + 1; r == 0 && family < AF_NETLINK; family++)
		r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socket), 1,
				     SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)family));
	if (r == 0)
		r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socket), 1,
				     SCMP_A0(SCMP_CMP_GT, AF_NETLINK));
	if (r < 0)
		return log_error_errno(r, "Failed to limit socket() in the seccomp filter: %m");

	r = seccomp_rule_add(
		ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
		SCMP_A1(SCMP_CMP_MASKED_EQ, SANDBOX_IOCTL_TYPE_MASK, SANDBOX_IOCTL_TYPE_VFIO));
	for (size_t i = 0; r == 0 && i < sizeof(plain_ioctls) / sizeof(plain_ioctls[0]); i++)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
				     SCMP_A1(SCMP_CMP_EQ, plain_ioctls[i]));
	if (r < 0)
		return log_error_errno(r, "Failed to limit ioctl() in the seccomp filter: %m");
	return 0;
}

/* The "Seccomp:" mode of /proc/self/status: 0 none, 1 strict, 2 filter; -1 if unreadable. */
static int seccomp_mode_of_self(void)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/self/status", "re");
	char line[256];
	int mode = -1;

	while (f && mode < 0 && fgets(line, sizeof(line), f))
		if (sscanf(line, "Seccomp: %d", &mode) != 1)
			mode = -1;
	return mode;
}

/*
 * Names why seccomp() fails, logs it and returns the kernel's -errno. The
 * usual cause is the service manager's own filter denying seccomp() (a
 * SystemCallFilter= without it): libseccomp takes that for a kernel without
 * SECCOMP_RET_KILL_PROCESS, seccomp_init() returns NULL and nothing says why.
 */
static int seccomp_log_unusable(int error)
{
	int mode = seccomp_mode_of_self();

	if (mode == 2 && error != EOPNOTSUPP)
		return log_error_errno(
			error, "Cannot install the broker's seccomp filter: a seccomp filter "
			       "already in force (Seccomp: 2 in /proc/self/status) denies "
			       "seccomp(); under systemd, the unit's SystemCallFilter= must "
			       "allow seccomp. The broker does not run without its own "
			       "filter: %m");
	if (error == EOPNOTSUPP || error == EINVAL)
		return log_error_errno(error,
				       "Cannot install the broker's seccomp filter: the kernel "
				       "lacks SECCOMP_RET_KILL_PROCESS (Linux 4.14 or later): %m");
	if (error == ENOSYS)
		return log_error_errno(error,
				       "Cannot install the broker's seccomp filter: the kernel has "
				       "no seccomp() (CONFIG_SECCOMP_FILTER): %m");
	return log_error_errno(error,
			       "Cannot install the broker's seccomp filter: seccomp() fails: %m");
}

int sandbox_check_seccomp(void)
{
	uint32_t action = SECCOMP_RET_KILL_PROCESS;

	/* Ask the kernel first: libseccomp turns a denied seccomp() into a NULL context. */
	if (syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action) < 0)
		return seccomp_log_unusable(errno);
	return 0;
}

int sandbox_install_seccomp(void)
{
	scmp_filter_ctx ctx;
	int r;

	r = sandbox_check_seccomp();
	if (r < 0)
		return r;

	ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
	if (!ctx) {
		const struct scmp_version *v = seccomp_version();

		return log_error_errno(ENOMEM,
				       "libseccomp %u.%u.%u could not create a filter with the "
				       "default action KILL_PROCESS, which the kernel supports: %m",
				       v->major, v->minor, v->micro);
	}
	/* seccomp_load() then returns the kernel's -errno, not -ECANCELED. */
	r = seccomp_attr_set(ctx, SCMP_FLTATR_API_SYSRAWRC, 1);
	if (r < 0)
		log_debug_errno(r, "libseccomp cannot report the kernel's errors: %m");
	/*
	 * Every thread: without TSYNC the filter binds the calling thread and the
	 * threads it starts later, but not one started before. The closer's
	 * threads (closer.h) start later; TSYNC keeps that from being a condition.
	 */
	r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
	if (r < 0) {
		seccomp_release(ctx);
		return log_error_errno(
			r, "libseccomp cannot synchronise the filter across threads: %m");
	}
	r = seccomp_allow(ctx, allowed_syscalls,
			  sizeof(allowed_syscalls) / sizeof(allowed_syscalls[0]));
	if (r == 0)
		r = sandbox_allow_threads(ctx);
	if (r == 0)
		r = sandbox_filter_by_argument(ctx);
#if defined(__SANITIZE_ADDRESS__)
	if (r == 0)
		r = seccomp_allow(ctx, sanitizer_syscalls,
				  sizeof(sanitizer_syscalls) / sizeof(sanitizer_syscalls[0]));
#endif
	if (r == 0) {
		r = seccomp_load(ctx);
		if (r == -EPERM || r == -EACCES)
			r = seccomp_log_unusable(-r);
		else if (r < 0)
			r = log_error_errno(r,
					    "The kernel refused the broker's seccomp filter: %m");
	}
	seccomp_release(ctx);
	return r;
}

#ifndef LANDLOCK_ACCESS_FS_REFER
#define LANDLOCK_ACCESS_FS_REFER (1ULL << 13)
#endif

/* What Landlock takes from the broker: writing of any kind, and execution. */
#define SANDBOX_FS_WRITES                                                                          \
	(LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE |                              \
	 LANDLOCK_ACCESS_FS_REMOVE_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE |                          \
	 LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_DIR |                              \
	 LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_MAKE_SOCK |                              \
	 LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_BLOCK |                            \
	 LANDLOCK_ACCESS_FS_MAKE_SYM | LANDLOCK_ACCESS_FS_REFER)

/*
 * Allow access (limited to handled) beneath path, if it exists; *added
 * counts the rules. A path that is not there is skipped (a state directory
 * or cgroup root the broker does not use), other errors are returned.
 */
static int sandbox_landlock_allow(int ruleset, const char *path, uint64_t access, uint64_t handled,
				  size_t *added)
{
	struct landlock_path_beneath_attr rule = {.allowed_access = access & handled};
	_cleanup_close_ int fd = -1;
	struct stat st;

	if (!path)
		return 0;
	fd = open(path, O_PATH | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	/* A file (/dev/iommu) takes only the rights that apply to files. */
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		rule.allowed_access &= LANDLOCK_ACCESS_FS_WRITE_FILE;
	rule.parent_fd = fd;
	if (syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &rule, 0) < 0)
		return -errno;
	(*added)++;
	return 0;
}

int sandbox_restrict_writes(const struct sandbox_paths *p)
{
	const uint64_t file_writes = LANDLOCK_ACCESS_FS_WRITE_FILE;
	struct landlock_ruleset_attr attr = {.handled_access_fs = SANDBOX_FS_WRITES};
	_cleanup_close_ int ruleset = -1;
	char vfio[PATH_MAX], iommu[PATH_MAX], pci[PATH_MAX], devices[PATH_MAX];
	size_t added = 0;
	int abi, r = 0;

	abi = (int)syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
	if (abi < 0) {
		log_info("Landlock is not available here (%m): the broker's writes are limited by "
			 "the service manager's sandbox only");
		return 0;
	}
	if (abi < 2)
		attr.handled_access_fs &= ~LANDLOCK_ACCESS_FS_REFER;
	ruleset = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0);
	if (ruleset < 0)
		return log_error_errno(errno, "Failed to create a Landlock ruleset: %m");

	snprintf(vfio, sizeof(vfio), "%s/vfio", p->dev_root ? p->dev_root : "/dev");
	snprintf(iommu, sizeof(iommu), "%s/iommu", p->dev_root ? p->dev_root : "/dev");
	snprintf(pci, sizeof(pci), "%s/bus/pci", p->sysfs_root ? p->sysfs_root : "/sys");
	snprintf(devices, sizeof(devices), "%s/devices", p->sysfs_root ? p->sysfs_root : "/sys");
	r = sandbox_landlock_allow(ruleset, p->state_dir,
				   file_writes | LANDLOCK_ACCESS_FS_MAKE_REG |
					   LANDLOCK_ACCESS_FS_REMOVE_FILE,
				   attr.handled_access_fs, &added);
	if (r == 0)
		r = sandbox_landlock_allow(ruleset, p->cgroup_root,
					   file_writes | LANDLOCK_ACCESS_FS_MAKE_DIR |
						   LANDLOCK_ACCESS_FS_REMOVE_DIR,
					   attr.handled_access_fs, &added);
	/* /dev/vfio may appear after the broker starts (vfio loaded later): then /dev. */
	if (r == 0 && access(vfio, F_OK) < 0)
		snprintf(vfio, sizeof(vfio), "%s", p->dev_root ? p->dev_root : "/dev");
	if (r == 0)
		r = sandbox_landlock_allow(ruleset, vfio, file_writes, attr.handled_access_fs,
					   &added);
	if (r == 0)
		r = sandbox_landlock_allow(ruleset, iommu, file_writes, attr.handled_access_fs,
					   &added);
	if (r == 0)
		r = sandbox_landlock_allow(ruleset, pci, file_writes, attr.handled_access_fs,
					   &added);
	if (r == 0)
		r = sandbox_landlock_allow(ruleset, devices, file_writes, attr.handled_access_fs,
					   &added);
	if (r < 0)
		return log_error_errno(r, "Failed to add a Landlock rule: %m");
	if (syscall(SYS_landlock_restrict_self, ruleset, 0) < 0)
		return log_error_errno(errno, "Failed to enforce the Landlock ruleset: %m");
	log_info("Landlock ABI %d enforced: the broker writes only under %s, %s, %s, %s, %s and "
		 "%s (%zu rules)",
		 abi, p->state_dir ? p->state_dir : "-", p->cgroup_root ? p->cgroup_root : "-",
		 vfio, iommu, pci, devices, added);
	return 0;
}
