/* SPDX-License-Identifier: MIT */
/*
 * libvfiobroker-preload.so: meets an unmodified VMM inside its own open() of
 * /dev/vfio/N. Debian 12's QEMU 7.2 (like cloud-hypervisor and crosvm by
 * path) opens the group node itself and takes no group fd from outside, so
 * LD_PRELOAD is the one place a broker lease can be handed to it.
 *
 * Interposed: open, open64, openat, openat64 and the _FORTIFY_SOURCE entry
 * points __open_2, __open64_2, __openat_2, __openat64_2 (QEMU 7.2 imports
 * open64, __open64_2 and openat64, and opens the group with open64 through
 * qemu_open_old()). Not fopen: QEMU opens no group node with it. Only an
 * absolute path that names exactly /dev/vfio/N once "//", "." and ".." are
 * folded (no symlinks followed) is taken; a relative path, /dev/vfio/vfio,
 * /dev/vfio/devices/... and everything else go straight to libc after a
 * look for "vfio": 74 user instructions in all (callgrind), on an open(2)
 * that takes microseconds. Such an open becomes:
 *
 *  - the group file handed in by `vfioctl run` (VFIO_BROKER_FDS="N=FD,..."),
 *    returned as it is (that FD) once fstat() shows it is the same file as
 *    /dev/vfio/N (char devices: the same st_rdev). Entries that are not are
 *    ignored with a warning, never trusted; or else
 *  - a lease of group N from vfio-brokerd ($VFIO_BROKER_SOCKET), with this
 *    process as the holder.
 *
 * A group this process already has open through the shim gives EBUSY, as the
 * kernel's open does. Refusals become the errno of the broker's code (denied
 * EACCES, busy EBUSY, not-viable EPERM, no-such-group ENOENT) with its reason
 * on stderr once; no broker (socket missing or refused) is ECONNREFUSED, and
 * a broker that does not answer within VFIO_BROKER_TIMEOUT seconds (10) is
 * ETIMEDOUT: the open never hangs.
 *
 * Threads and signals: the broker is spoken to only inside such an open, by
 * one worker thread at a time (all signals blocked in it), while the caller
 * waits with a deadline under call_lock. libc's functions are looked up once
 * (pthread_once, first at load), so the pass-through path takes no lock and
 * allocates nothing: an open() of another file from a signal handler stays
 * what it was. The connection is O_CLOEXEC and lives at a high descriptor
 * number (the library's socket() is wrapped at link time, see the Makefile),
 * out of the way of programs that expect their own descriptors at 3, 4, ...
 *
 * A broker that restarts: the shim's connection serves only to lease; it
 * reads no events on it, because the VMM could not act on them (QEMU hears
 * a soft removal as the VFIO device request, which vfio_quarantine relays,
 * and a hard removal kills it), and under `vfioctl run` with handed files
 * the VMM has no connection at all. The leases themselves do not depend on
 * it: the restarted broker restores them from the kernel. So the shim does
 * not reconnect eagerly; a lease that finds the connection closed
 * reconnects once (vfiobroker_reconnect, for at most 2 s, within the open's
 * own deadline) and asks again. Asking again is safe: a lease the broker
 * granted but could not answer before it died had its file die with it, and
 * the restore drops it.
 *
 * Children: the shim changes no environment. A child (or a wrapper script
 * that runs the VMM) inherits LD_PRELOAD, VFIO_BROKER_FDS and the handed
 * files as `vfioctl run` set them up, so `sh -c 'exec qemu ...'` works. What
 * the shim leased itself is O_CLOEXEC unless the VMM's open asked otherwise,
 * and a child after fork() never uses the parent's connection: it connects
 * anew and becomes the holder of what it leases.
 */
#include "client/vfiobroker.h"
#include "protocol/message.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SHIM_EXPORT __attribute__((visibility("default")))

#define SHIM_MAX_GROUPS	    64
#define SHIM_MAX_COMPONENTS 64
#define SHIM_HIGH_FD	    1000 /* where the connection goes, if RLIMIT_NOFILE allows */
#define SHIM_TIMEOUT_S	    10	 /* default VFIO_BROKER_TIMEOUT */
#define SHIM_RECONNECT_MS   2000 /* how long a lease waits for a restarting broker */

typedef int (*open_fn)(const char *, int, ...);
typedef int (*openat_fn)(int, const char *, int, ...);
typedef int (*open2_fn)(const char *, int);
typedef int (*openat2_fn)(int, const char *, int);

static struct {
	open_fn open, open64;
	openat_fn openat, openat64;
	open2_fn open_2, open64_2;
	openat2_fn openat_2, openat64_2;
} real;
static pthread_once_t real_once = PTHREAD_ONCE_INIT;

/* A group this process got through the shim, or was handed. */
struct shim_group {
	unsigned group;
	int fd;	      /* handed: the inherited fd; opened: what the VMM got */
	bool handed;  /* from VFIO_BROKER_FDS, not yet given to the VMM */
	dev_t st_dev; /* opened: the file the VMM got, to tell it is still open */
	ino_t st_ino;
};

/*
 * call_lock guards everything below. The worker holds it only to hand its
 * result over; the caller holds it while waiting (pthread_cond_timedwait
 * drops it).
 */
static pthread_mutex_t call_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t call_cond = PTHREAD_COND_INITIALIZER;
static struct shim_group groups[SHIM_MAX_GROUPS];
static size_t n_groups;
static bool handed_read;
static bool worker_running; /* a worker still talks to the broker (maybe abandoned) */
static struct vfiobroker *conn;
static pid_t conn_pid;
static char last_reason[VB_MESSAGE_MAX + 128]; /* the last failure said, for group: */
static unsigned last_group;

/* One lease the worker performs for a waiting open. */
struct lease_call {
	unsigned group;
	int r;
	int fd;
	char reason[VB_MESSAGE_MAX + 128];
	bool done;
	bool abandoned; /* the open gave up waiting: the worker cleans up */
};

static void real_resolve(void)
{
	real.open = (open_fn)dlsym(RTLD_NEXT, "open");
	real.open64 = (open_fn)dlsym(RTLD_NEXT, "open64");
	real.openat = (openat_fn)dlsym(RTLD_NEXT, "openat");
	real.openat64 = (openat_fn)dlsym(RTLD_NEXT, "openat64");
	real.open_2 = (open2_fn)dlsym(RTLD_NEXT, "__open_2");
	real.open64_2 = (open2_fn)dlsym(RTLD_NEXT, "__open64_2");
	real.openat_2 = (openat2_fn)dlsym(RTLD_NEXT, "__openat_2");
	real.openat64_2 = (openat2_fn)dlsym(RTLD_NEXT, "__openat64_2");
}

static void shim_atfork_prepare(void)
{
	pthread_mutex_lock(&call_lock);
}

static void shim_atfork_parent(void)
{
	pthread_mutex_unlock(&call_lock);
}

/* The child has no worker; its copy of the connection is dropped at next use (conn_pid). */
static void shim_atfork_child(void)
{
	worker_running = false;
	pthread_mutex_unlock(&call_lock);
}

__attribute__((constructor)) static void shim_load(void)
{
	pthread_once(&real_once, real_resolve);
	pthread_atfork(shim_atfork_prepare, shim_atfork_parent, shim_atfork_child);
}

static void shim_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void shim_warn(const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	(void)!write(STDERR_FILENO, line, (size_t)n);
}

/*
 * Whether "vfio" occurs in path. With strchr() a pass-through open costs 74
 * user instructions more than libc's alone, with strstr() 100 (callgrind).
 */
static bool shim_has_vfio(const char *path)
{
	for (const char *p = path; (p = strchr(p, 'v')); p++)
		if (p[1] == 'f' && p[2] == 'i' && p[3] == 'o')
			return true;
	return false;
}

/*
 * The group N when path names /dev/vfio/N once "//", "." and ".." are folded
 * (as the kernel would, symlinks aside); -1 otherwise. The look for "vfio"
 * is the whole cost of every other open.
 */
static long shim_group_of_path(const char *path)
{
	const char *comp[SHIM_MAX_COMPONENTS];
	size_t len[SHIM_MAX_COMPONENTS], n = 0;
	uint32_t group;
	char digits[16];

	if (!path || path[0] != '/' || !shim_has_vfio(path))
		return -1;
	for (const char *p = path; *p;) {
		size_t l;

		while (*p == '/')
			p++;
		l = strcspn(p, "/");
		if (l == 0)
			break;
		if (l == 1 && p[0] == '.') {
			/* nothing */
		} else if (l == 2 && p[0] == '.' && p[1] == '.') {
			if (n > 0)
				n--;
		} else {
			if (n == SHIM_MAX_COMPONENTS)
				return -1;
			comp[n] = p;
			len[n++] = l;
		}
		p += l;
		/* "/dev/vfio/7/" is not the node: the kernel says ENOTDIR, so let it. */
		if (*p == '/' && p[strspn(p, "/")] == '\0')
			return -1;
	}
	if (n != 3 || len[0] != 3 || memcmp(comp[0], "dev", 3) != 0 || len[1] != 4 ||
	    memcmp(comp[1], "vfio", 4) != 0 || len[2] >= sizeof(digits))
		return -1;
	memcpy(digits, comp[2], len[2]);
	digits[len[2]] = '\0';
	if (vb_group_parse(digits, &group) < 0)
		return -1;
	return (long)group;
}

/* Where the group nodes are: /dev/vfio, or $VFIO_BROKER_DEV_ROOT/vfio (the tests' tree). */
static void shim_node_path(unsigned group, char *buf, size_t size)
{
	const char *root = secure_getenv("VFIO_BROKER_DEV_ROOT");

	snprintf(buf, size, "%s/vfio/%u", root && *root ? root : "/dev", group);
}

/* Whether fd is the group node of group: the same char device, or the very same file. */
static bool shim_fd_is_group(int fd, unsigned group)
{
	char node[PATH_MAX];
	struct stat a, b;

	shim_node_path(group, node, sizeof(node));
	if (fstat(fd, &a) < 0 || stat(node, &b) < 0)
		return false;
	if (S_ISCHR(a.st_mode) && S_ISCHR(b.st_mode))
		return a.st_rdev == b.st_rdev;
	return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

static struct shim_group *shim_find(unsigned group)
{
	for (size_t i = 0; i < n_groups; i++)
		if (groups[i].group == group)
			return &groups[i];
	return NULL;
}

/* Reads VFIO_BROKER_FDS once, keeping the entries that are what they claim. Under call_lock. */
static void shim_read_handed(void)
{
	const char *env = getenv("VFIO_BROKER_FDS");
	char buf[1024], *save = NULL;

	handed_read = true;
	if (!env || !*env)
		return;
	snprintf(buf, sizeof(buf), "%s", env);
	for (char *e = strtok_r(buf, ",", &save); e; e = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(e, '='), *end;
		uint32_t group;
		long fd;

		if (!eq) {
			shim_warn("vfio-broker-preload: ignoring '%s' in VFIO_BROKER_FDS: not "
				  "GROUP=FD",
				  e);
			continue;
		}
		*eq = '\0';
		errno = 0;
		fd = strtol(eq + 1, &end, 10);
		if (vb_group_parse(e, &group) < 0 || errno || *end || end == eq + 1 || fd < 0 ||
		    fd > INT32_MAX) {
			shim_warn("vfio-broker-preload: ignoring '%s=%s' in VFIO_BROKER_FDS: not "
				  "GROUP=FD",
				  e, eq + 1);
			continue;
		}
		if (!shim_fd_is_group((int)fd, group)) {
			shim_warn(
				"vfio-broker-preload: ignoring '%s=%s' in VFIO_BROKER_FDS: fd %ld "
				"is not /dev/vfio/%u",
				e, eq + 1, fd, (unsigned)group);
			continue;
		}
		if (shim_find(group) || n_groups == SHIM_MAX_GROUPS) {
			shim_warn("vfio-broker-preload: ignoring '%s=%s' in VFIO_BROKER_FDS: group "
				  "listed twice or too many groups",
				  e, eq + 1);
			continue;
		}
		groups[n_groups++] =
			(struct shim_group){.group = group, .fd = (int)fd, .handed = true};
	}
}

/* Whether the file the VMM got for g is still open at the number it got. */
static bool shim_still_open(const struct shim_group *g)
{
	struct stat st;

	return fstat(g->fd, &st) == 0 && st.st_dev == g->st_dev && st.st_ino == g->st_ino;
}

static void shim_remember(unsigned group, int fd)
{
	struct shim_group *g = shim_find(group);
	struct stat st;

	if (fstat(fd, &st) < 0)
		return;
	if (!g && n_groups < SHIM_MAX_GROUPS)
		g = &groups[n_groups++];
	if (g)
		*g = (struct shim_group){
			.group = group, .fd = fd, .st_dev = st.st_dev, .st_ino = st.st_ino};
}

/* --- the worker: one broker conversation at a time --- */

/* The connection of this process, made when first needed (and anew after fork). */
static int shim_connect(char *reason, size_t size)
{
	int r;

	if (conn && conn_pid != getpid()) {
		/* The parent's: our copy of its socket goes, the parent's object stays its own. */
		close(vfiobroker_get_fd(conn));
		conn = NULL;
	}
	if (conn)
		return 0;
	r = vfiobroker_connect(NULL, &conn);
	if (r < 0) {
		const char *path = secure_getenv(VFIOBROKER_SOCKET_ENV);

		if (!path || !*path)
			path = VFIOBROKER_DEFAULT_SOCKET;
		snprintf(reason, size, "cannot reach vfio-brokerd at %s: %s; is it running?", path,
			 strerror(-r));
		conn = NULL;
		return r == -ENOENT ? -ECONNREFUSED : r;
	}
	conn_pid = getpid();
	return 0;
}

static int shim_lease_now(unsigned group, int *ret_fd, char *reason, size_t size)
{
	int fd, r = shim_connect(reason, size);

	if (r < 0)
		return r;
	r = vfiobroker_lease(conn, group, &fd);
	if (r == -ECONNRESET && vfiobroker_reconnect(conn, SHIM_RECONNECT_MS) == 0)
		r = vfiobroker_lease(conn, group, &fd);
	if (r < 0) {
		const char *code = vfiobroker_error_code(conn);

		if (code)
			snprintf(reason, size, "%s: %s", code, vfiobroker_error_message(conn));
		else
			snprintf(reason, size, "lost the connection to vfio-brokerd: %s",
				 strerror(-r));
		if (r == -ECONNRESET)
			conn = vfiobroker_disconnect(conn);
		return r;
	}
	*ret_fd = fd;
	return 0;
}

static void *shim_worker(void *arg)
{
	struct lease_call *c = arg;
	char reason[sizeof(c->reason)] = "";
	int fd = -1, r;

	r = shim_lease_now(c->group, &fd, reason, sizeof(reason));
	pthread_mutex_lock(&call_lock);
	if (c->abandoned) {
		/* Nobody waits for it: give it back, so the group is not held for nothing. */
		if (r == 0) {
			close(fd);
			vfiobroker_release(conn, c->group, NULL);
		}
		free(c);
	} else {
		c->r = r;
		c->fd = fd;
		memcpy(c->reason, reason, sizeof(reason));
		c->done = true;
		pthread_cond_broadcast(&call_cond);
	}
	worker_running = false;
	pthread_mutex_unlock(&call_lock);
	return NULL;
}

static unsigned shim_timeout_s(void)
{
	const char *s = secure_getenv("VFIO_BROKER_TIMEOUT");
	char *end;
	unsigned long v;

	if (!s || !*s)
		return SHIM_TIMEOUT_S;
	v = strtoul(s, &end, 10);
	return *end || v == 0 || v > 3600 ? SHIM_TIMEOUT_S : (unsigned)v;
}

/*
 * shim_lease leases group from the broker in a worker thread and waits at
 * most VFIO_BROKER_TIMEOUT seconds for it. Under call_lock. Returns 0 with
 * the group file (O_CLOEXEC) in *ret_fd, or -errno with reason filled.
 */
static int shim_lease(unsigned group, int *ret_fd, char *reason, size_t size)
{
	struct lease_call *c;
	struct timespec deadline;
	sigset_t all, old;
	pthread_attr_t attr;
	pthread_t t;
	int r;

	if (worker_running) {
		snprintf(reason, size, "vfio-brokerd has not answered an earlier request yet");
		return -ETIMEDOUT;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(reason, size, "out of memory");
		return -ENOMEM;
	}
	c->group = group;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = -pthread_create(&t, &attr, shim_worker, c);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (r < 0) {
		free(c);
		snprintf(reason, size, "cannot start a thread: %s", strerror(-r));
		return r;
	}
	worker_running = true;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += shim_timeout_s();
	while (!c->done)
		if (pthread_cond_timedwait(&call_cond, &call_lock, &deadline) == ETIMEDOUT &&
		    !c->done) {
			c->abandoned = true;
			snprintf(reason, size, "vfio-brokerd did not answer within %u s",
				 shim_timeout_s());
			return -ETIMEDOUT;
		}
	r = c->r;
	if (r == 0)
		*ret_fd = c->fd;
	else
		snprintf(reason, size, "%s", c->reason);
	free(c);
	return r;
}

/* Reports a failed open once: the same reason twice in a row is said once. */
static void shim_report(unsigned group, const char *reason)
{
	if (group == last_group && strcmp(reason, last_reason) == 0)
		return;
	last_group = group;
	snprintf(last_reason, sizeof(last_reason), "%s", reason);
	shim_warn("vfio-broker-preload: cannot open /dev/vfio/%u: %s", group, reason);
}

/* Makes fd's close-on-exec flag what the VMM's open flags asked for. */
static int shim_set_cloexec(int fd, int flags)
{
	return fcntl(fd, F_SETFD, (flags & O_CLOEXEC) ? FD_CLOEXEC : 0);
}

/*
 * shim_open_group is the VMM's open of /dev/vfio/group. Returns the fd, or -1
 * with errno set, as open() does.
 */
static int shim_open_group(unsigned group, int flags)
{
	char reason[VB_MESSAGE_MAX + 128];
	struct shim_group *g;
	int fd = -1, r;

	pthread_mutex_lock(&call_lock);
	if (!handed_read)
		shim_read_handed();
	g = shim_find(group);
	if (g && g->handed) {
		if (shim_fd_is_group(g->fd, group)) {
			fd = g->fd;
			goto opened;
		}
		shim_warn("vfio-broker-preload: fd %d of VFIO_BROKER_FDS is no longer "
			  "/dev/vfio/%u; asking vfio-brokerd instead",
			  g->fd, group);
		g->handed = false;
	} else if (g && shim_still_open(g)) {
		/* As the kernel: a group file is open once. */
		snprintf(reason, sizeof(reason), "busy: this process has it open already (fd %d)",
			 g->fd);
		r = -EBUSY;
		goto fail;
	}
	r = shim_lease(group, &fd, reason, sizeof(reason));
	if (r < 0)
		goto fail;
opened:
	if (shim_set_cloexec(fd, flags) < 0) {
		r = -errno;
		snprintf(reason, sizeof(reason), "fcntl: %s", strerror(-r));
		goto fail;
	}
	shim_remember(group, fd);
	pthread_mutex_unlock(&call_lock);
	return fd;
fail:
	shim_report(group, reason);
	pthread_mutex_unlock(&call_lock);
	errno = -r;
	return -1;
}

/* --- the interposed calls --- */

/* glibc's _FORTIFY_SOURCE entry points, declared by no header. */
int __open_2(const char *path, int flags);
int __open64_2(const char *path, int flags);
int __openat_2(int dirfd, const char *path, int flags);
int __openat64_2(int dirfd, const char *path, int flags);

#define MODE_ARG(flags, mode)                                                                      \
	do {                                                                                       \
		if ((flags) & (O_CREAT | __O_TMPFILE)) {                                           \
			va_list ap;                                                                \
			va_start(ap, flags);                                                       \
			mode = va_arg(ap, mode_t);                                                 \
			va_end(ap);                                                                \
		}                                                                                  \
	} while (0)

SHIM_EXPORT int open(const char *path, int flags, ...)
{
	long group = shim_group_of_path(path);
	mode_t mode = 0;

	MODE_ARG(flags, mode);
	if (group >= 0)
		return shim_open_group((unsigned)group, flags);
	pthread_once(&real_once, real_resolve);
	return real.open(path, flags, mode);
}

SHIM_EXPORT int open64(const char *path, int flags, ...)
{
	long group = shim_group_of_path(path);
	mode_t mode = 0;

	MODE_ARG(flags, mode);
	if (group >= 0)
		return shim_open_group((unsigned)group, flags);
	pthread_once(&real_once, real_resolve);
	return real.open64(path, flags, mode);
}

SHIM_EXPORT int openat(int dirfd, const char *path, int flags, ...)
{
	long group = shim_group_of_path(path);
	mode_t mode = 0;

	MODE_ARG(flags, mode);
	if (group >= 0)
		return shim_open_group((unsigned)group, flags);
	pthread_once(&real_once, real_resolve);
	return real.openat(dirfd, path, flags, mode);
}

SHIM_EXPORT int openat64(int dirfd, const char *path, int flags, ...)
{
	long group = shim_group_of_path(path);
	mode_t mode = 0;

	MODE_ARG(flags, mode);
	if (group >= 0)
		return shim_open_group((unsigned)group, flags);
	pthread_once(&real_once, real_resolve);
	return real.openat64(dirfd, path, flags, mode);
}

SHIM_EXPORT int __open_2(const char *path, int flags)
{
	long group = shim_group_of_path(path);

	if (group >= 0)
		return shim_open_group((unsigned)group, flags);
	pthread_once(&real_once, real_resolve);
	return real.open_2(path, flags);
}

SHIM_EXPORT int __open64_2(const char *path, int flags)
{
	long group = shim_group_of_path(path);

	if (group >= 0)
		return shim_open_group((unsigned)group, flags);
	pthread_once(&real_once, real_resolve);
	return real.open64_2(path, flags);
}

SHIM_EXPORT int __openat_2(int dirfd, const char *path, int flags)
{
	long group = shim_group_of_path(path);

	if (group >= 0)
		return shim_open_group((unsigned)group, flags);
	pthread_once(&real_once, real_resolve);
	return real.openat_2(dirfd, path, flags);
}

SHIM_EXPORT int __openat64_2(int dirfd, const char *path, int flags)
{
	long group = shim_group_of_path(path);

	if (group >= 0)
		return shim_open_group((unsigned)group, flags);
	pthread_once(&real_once, real_resolve);
	return real.openat64_2(dirfd, path, flags);
}

/*
 * The library's socket(2), through ld --wrap=socket: the connection goes to
 * a high number (1000, or half of RLIMIT_NOFILE when that is lower), O_CLOEXEC
 * as the library asked, so that it is out of the way of programs that expect
 * their own descriptors low (or pass 3, 4, ... on to children).
 */
int __real_socket(int domain, int type, int protocol);
int __wrap_socket(int domain, int type, int protocol);
int __wrap_socket(int domain, int type, int protocol)
{
	int fd = __real_socket(domain, type, protocol), high;
	struct rlimit rl;

	if (fd < 0 || getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return fd;
	high = rl.rlim_cur > SHIM_HIGH_FD + 24 ? SHIM_HIGH_FD : (int)(rl.rlim_cur / 2);
	if (fd < high) {
		int moved = fcntl(fd, F_DUPFD_CLOEXEC, high);

		if (moved >= 0) {
			close(fd);
			fd = moved;
		}
	}
	return fd;
}
