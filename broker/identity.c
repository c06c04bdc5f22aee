/* SPDX-License-Identifier: MIT */
#include "broker/identity.h"
#include "broker/log.h"
#include "common/cleanup.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif

/* /proc/<pid>/cgroup is one line on cgroup v2 hosts, a few dozen on v1. */
#define CGROUP_FILE_MAX (64 * 1024)

static int identity_read_groups(int fd, gid_t **ret, size_t *ret_n)
{
	_cleanup_free_ gid_t *groups = NULL;
	socklen_t len = 64 * sizeof(gid_t);

	for (;;) {
		gid_t *bigger = realloc(groups, len ? len : 1);

		if (!bigger)
			return -ENOMEM;
		groups = bigger;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) == 0)
			break;
		/* ERANGE: len now holds the size needed. */
		if (errno != ERANGE)
			return -errno;
		if (len > IDENTITY_MAX_GROUPS * sizeof(gid_t))
			return -E2BIG;
	}
	*ret_n = len / sizeof(gid_t);
	*ret = TAKE_PTR(groups);
	return 0;
}

/*
 * The peer's pidfd: SO_PEERPIDFD on kernels that have it (6.5+). Older
 * kernels (ENOPROTOOPT) get pidfd_open(pid) plus a check that the pid still
 * names a process with the peer's uid and that it has not exited. What
 * remains is a race this cannot see: the peer exits and another process of
 * the same uid gets the same pid before pidfd_open; it would then be taken
 * for the peer. Pid reuse within that window requires a full wrap of the
 * pid space between connect() and accept().
 */
static int identity_open_peer(int fd, const struct ucred *cred, struct pidref *ret)
{
	struct pidref p = PIDREF_NULL;
	socklen_t len = sizeof(int);
	int pidfd = -1, r;
	uid_t euid;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) == 0 && pidfd >= 0)
		return pidref_set_pidfd(ret, cred->pid, pidfd);
	if (errno != ENOPROTOOPT && errno != EINVAL)
		return -errno;

	r = pidref_set_pid(&p, cred->pid);
	if (r < 0)
		return r;
	r = pidref_get_euid(&p, &euid);
	if (r < 0 || euid != cred->uid) {
		pidref_done(&p);
		return r < 0 ? r : -ESRCH;
	}
	*ret = p;
	return 0;
}

static bool identity_is_unit_name(const char *name, size_t n)
{
	return (n > 8 && memcmp(name + n - 8, ".service", 8) == 0) ||
	       (n > 6 && memcmp(name + n - 6, ".scope", 6) == 0);
}

static bool identity_is_user_manager(const char *name, size_t n)
{
	return n > 13 && memcmp(name, "user@", 5) == 0 && memcmp(name + n - 8, ".service", 8) == 0;
}

/*
 * The unit is the outermost .service or .scope of the path, as systemd names
 * a process's unit: whatever lies below it was created by that unit (or by
 * the user it delegates to), not by the service manager. Under a user
 * manager (user@UID.service, delegated to that user, who may create any
 * "qemu-x.scope" there) the unit is the user's own: "user@UID.service/NAME",
 * which no pattern without a "/" matches.
 */
char *identity_unit_from_cgroup(const char *cgroup)
{
	const char *manager = NULL, *p = cgroup;
	size_t manager_len = 0;

	while (p && *p) {
		const char *end = strchrnul(p, '/');
		size_t n = (size_t)(end - p);

		if (identity_is_unit_name(p, n)) {
			char *unit;

			if (manager)
				return asprintf(&unit, "%.*s/%.*s", (int)manager_len, manager,
						(int)n, p) < 0
					       ? NULL
					       : unit;
			if (!identity_is_user_manager(p, n))
				return strndup(p, n);
			manager = p;
			manager_len = n;
		}
		p = *end ? end + 1 : end;
	}
	return manager ? strndup(manager, manager_len) : NULL;
}

/* The "0::/path" line of /proc/<pid>/cgroup, or NULL on a host without cgroup v2. */
static int identity_read_cgroup(const struct pidref *p, char **ret)
{
	_cleanup_free_ char *text = NULL;
	char *line, *save = NULL;
	int r;

	r = pidref_read_proc(p, "cgroup", CGROUP_FILE_MAX, &text, NULL);
	if (r < 0)
		return r;
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "0::", 3) == 0) {
			*ret = strdup(line + 3);
			return *ret ? 0 : -ENOMEM;
		}
	}
	*ret = NULL;
	return 0;
}

/*
 * /proc/self/NAME, at most a page: the broker's own uid_map or gid_map, read
 * once (each is written once, when its namespace is set up, and the broker
 * never changes namespace). *ret points into a static buffer.
 */
static int identity_own_map(size_t i, const char *name, const char **ret)
{
	static char maps[2][4096];
	static bool read_once[2];
	_cleanup_close_ int fd = -1;
	char path[64];
	ssize_t n;

	if (!read_once[i]) {
		snprintf(path, sizeof(path), "/proc/self/%s", name);
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
		if (fd < 0)
			return -errno;
		n = read(fd, maps[i], sizeof(maps[i]) - 1);
		if (n < 0)
			return -errno;
		maps[i][n] = '\0';
		read_once[i] = true;
	}
	*ret = maps[i];
	return 0;
}

/*
 * Without ptrace access to the peer (a broker without CAP_SYS_PTRACE), its
 * namespace link cannot be read, but its uid_map and gid_map can, as the
 * broker sees them: in the broker's own namespace they read exactly as the
 * broker's own. Only a namespace that root created with the broker's own
 * maps (all ids, unchanged) looks the same, and there root chose.
 */
static int identity_same_id_maps(const struct pidref *p, bool *ret)
{
	static const char *const maps[] = {"uid_map", "gid_map"};
	bool same = true;
	int r;

	for (size_t i = 0; i < 2; i++) {
		_cleanup_free_ char *peer = NULL;
		const char *own = NULL;

		r = identity_own_map(i, maps[i], &own);
		if (r < 0)
			return r;
		r = pidref_read_proc(p, maps[i], 4096, &peer, NULL);
		if (r < 0)
			return r;
		same = same && strcmp(own, peer) == 0;
	}
	*ret = same;
	return 0;
}

/*
 * The broker's own user namespace, looked up once: the broker never calls
 * setns() or unshare(), so it stays the one it started in. *ret_none: a
 * kernel without user namespaces (CONFIG_USER_NS=n), which has one.
 */
static int identity_own_userns(struct stat *ret, bool *ret_none)
{
	static struct stat own;
	static int state; /* 0: not looked up yet, 1: own is set, 2: none */

	if (state == 0) {
		if (stat("/proc/self/ns/user", &own) == 0)
			state = 1;
		else if (errno == ENOENT && access("/proc/self/ns", F_OK) == 0)
			state = 2;
		else
			return -errno;
	}
	*ret = own;
	*ret_none = state == 2;
	return 0;
}

/*
 * Whether the peer's user namespace is the broker's. In another one a user
 * may hold CAP_SETGID over the gids newgidmap mapped there and drop
 * supplementary groups, or change its primary one, to escape a deny rule:
 * SO_PEERGROUPS reports what the process has now. The link is read through
 * the pidref, which the caller checks alive afterwards (identity_from_socket:
 * the cgroup read's check, after both), so a reused pid cannot answer for
 * the peer.
 */
static int identity_read_userns(const struct pidref *p, bool *ret_other)
{
	/* Once denied, always: the broker dropped CAP_SYS_PTRACE for good (sandbox.c). */
	static bool link_denied;
	struct stat own = {0}, peer;
	bool none = false, same;
	int r;

	r = identity_own_userns(&own, &none);
	if (r < 0)
		return r;
	if (none) {
		*ret_other = false;
		return 0;
	}
	if (link_denied) {
		r = -1;
		errno = EACCES;
	} else if (p->is_pidfd) {
		char path[64];

		snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)p->pid);
		r = stat(path, &peer);
	} else {
		r = fstatat(p->fd, "ns/user", &peer, 0);
	}
	if (r < 0) {
		if (errno == EACCES || errno == EPERM) {
			link_denied = true;
			r = identity_same_id_maps(p, &same);
			if (r < 0)
				return r;
			*ret_other = !same;
			return 0;
		}
		return errno == ENOENT ? -ESRCH : -errno;
	}
	*ret_other = own.st_dev != peer.st_dev || own.st_ino != peer.st_ino;
	return 0;
}

int identity_from_socket(int fd, const struct ucred *peer, struct identity **ret)
{
	struct ucred cred = *peer;
	struct identity *id;
	int r;

	/* pid 0: the peer lives in a pid namespace we cannot see; we could not track it. */
	if (cred.pid <= 0)
		return -ESRCH;

	id = calloc(1, sizeof(*id));
	if (!id)
		return -ENOMEM;
	id->uid = cred.uid;
	id->gid = cred.gid;
	id->pid = PIDREF_NULL;

	r = identity_read_groups(fd, &id->groups, &id->n_groups);
	if (r < 0)
		goto fail;
	r = identity_open_peer(fd, &cred, &id->pid);
	if (r < 0)
		goto fail;
	r = identity_read_userns(&id->pid, &id->other_userns);
	if (r < 0)
		goto fail;
	/*
	 * Read through the pidref, which is checked alive after the read: the pid
	 * named the peer for this read and for the namespace link's before it.
	 */
	r = identity_read_cgroup(&id->pid, &id->cgroup);
	if (r < 0)
		goto fail;
	if (id->cgroup) {
		id->unit = identity_unit_from_cgroup(id->cgroup);
		errno = 0;
		if (!id->unit && errno == ENOMEM) {
			r = -ENOMEM;
			goto fail;
		}
	}
	*ret = id;
	return 0;
fail:
	identity_free(id);
	return r;
}

struct identity *identity_free(struct identity *id)
{
	if (!id)
		return NULL;
	pidref_done(&id->pid);
	free(id->groups);
	free(id->cgroup);
	free(id->unit);
	free(id);
	return NULL;
}

bool identity_has_gid(const struct identity *id, gid_t gid)
{
	if (id->gid == gid)
		return true;
	for (size_t i = 0; i < id->n_groups; i++)
		if (id->groups[i] == gid)
			return true;
	return false;
}

void identity_to_policy_caller(const struct identity *id, struct policy_caller *ret)
{
	*ret = (struct policy_caller){
		.uid = id->uid,
		.gid = id->gid,
		.groups = id->groups,
		.n_groups = id->n_groups,
		.cgroup = id->cgroup,
		.unit = id->unit,
	};
}
