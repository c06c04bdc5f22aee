/* SPDX-License-Identifier: MIT */
#include "broker/lease_cgroup.h"
#include "broker/log.h"
#include "common/cleanup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

#define CGROUP_MOUNT	  "/sys/fs/cgroup"
#define CGROUP_HAND_ROOT  CGROUP_MOUNT "/vfio-broker"
#define CGROUP_NAME_FMT	  "lease-%" PRIu32 "-%" PRIu64
#define CGROUP_MAX_NESTED 16

struct lease_cgroups {
	int root_fd;
	char *root;    /* in the file system */
	char *cg_path; /* the same as /proc/PID/cgroup names it ("/system.slice/...") */
};

static bool is_cgroup2(const char *path)
{
	struct statfs fs;

	return statfs(path, &fs) == 0 && fs.f_type == CGROUP2_SUPER_MAGIC;
}

/* The cgroup v2 path of a process from the "0::" line of /proc/.../cgroup; allocated. */
static int parse_cgroup_file(const char *text, char **ret)
{
	const char *line = text;

	while (line && *line) {
		if (strncmp(line, "0::", 3) == 0) {
			size_t n = strcspn(line + 3, "\n");
			char *s = strndup(line + 3, n);

			if (!s)
				return -ENOMEM;
			*ret = s;
			return 0;
		}
		line = strchr(line, '\n');
		if (line)
			line++;
	}
	return -ENOENT;
}

/*
 * The cgroup path of directory dir (absolute, resolved), from the cgroup v2
 * mount it lies on in /proc/self/mountinfo: the mount's root plus the rest.
 */
static int cgroup_path_of_dir(const char *dir, char **ret)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[4096], best_root[PATH_MAX] = "", best_mount[PATH_MAX] = "";
	size_t best_len = 0;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		char root[PATH_MAX], mount[PATH_MAX], fstype[64];
		const char *dash = strstr(line, " - ");
		size_t n;

		if (!dash || sscanf(dash + 3, "%63s", fstype) != 1 ||
		    strcmp(fstype, "cgroup2") != 0)
			continue;
		if (sscanf(line, "%*s %*s %*s %4095s %4095s", root, mount) != 2)
			continue;
		n = strlen(mount);
		if (strncmp(dir, mount, n) != 0 || (dir[n] != '/' && dir[n] != '\0' && n > 1))
			continue;
		if (n >= best_len) {
			best_len = n;
			snprintf(best_root, sizeof(best_root), "%s", root);
			snprintf(best_mount, sizeof(best_mount), "%s", mount);
		}
	}
	if (!best_len)
		return -ENOENT;
	if (asprintf(ret, "%s%s", strcmp(best_root, "/") == 0 ? "" : best_root,
		     dir + (strcmp(best_mount, "/") == 0 ? 0 : best_len)) < 0)
		return -ENOMEM;
	if (!**ret) {
		free(*ret);
		*ret = strdup("/");
		if (!*ret)
			return -ENOMEM;
	}
	return 0;
}

/*
 * The broker's own cgroup directory, when systemd delegated it (Delegate=yes:
 * systemd 251+ marks it with the trusted.delegate xattr); NULL otherwise.
 */
static char *delegated_own_cgroup(void)
{
	_cleanup_free_ char *text = NULL, *own = NULL;
	_cleanup_close_ int fd = open("/proc/self/cgroup", O_RDONLY | O_CLOEXEC);
	char *dir = NULL, value[8];
	size_t size = 4096;
	ssize_t n;

	if (fd < 0 || !(text = calloc(1, size)))
		return NULL;
	n = read(fd, text, size - 1);
	if (n <= 0 || parse_cgroup_file(text, &own) < 0)
		return NULL;
	if (asprintf(&dir, "%s%s", CGROUP_MOUNT, own) < 0)
		return NULL;
	if (getxattr(dir, "trusted.delegate", value, sizeof(value)) <= 0 &&
	    getxattr(dir, "user.delegate", value, sizeof(value)) <= 0) {
		free(dir);
		return NULL;
	}
	return dir;
}

int lease_cgroups_open(const char *root, struct lease_cgroups **ret)
{
	_cleanup_free_ char *path = NULL;
	struct lease_cgroups *cg;
	char real[PATH_MAX];
	int r;

	*ret = NULL;
	if (!root || strcmp(root, "auto") == 0) {
		if (!is_cgroup2(CGROUP_MOUNT)) {
			log_warning("No cgroup v2 at %s: leases are bound to their uid only, and "
				    "hard removal cannot reach processes that hold a group only "
				    "through a VFIO device fd (see --cgroup-root)",
				    CGROUP_MOUNT);
			return 0;
		}
		path = delegated_own_cgroup();
		if (!path && !(path = strdup(CGROUP_HAND_ROOT)))
			return -ENOMEM;
	} else if (strcmp(root, "none") == 0) {
		log_notice("--cgroup-root none: leases are bound to their uid only");
		return 0;
	} else if (!(path = strdup(root))) {
		return -ENOMEM;
	}

	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return log_error_errno(errno, "Failed to make the lease cgroup root %s: %m", path);
	if (!realpath(path, real))
		return log_error_errno(errno, "Failed to resolve %s: %m", path);
	if (!is_cgroup2(real))
		return log_error_errno(ENOTDIR, "%s is not on a cgroup v2 file system", real);

	cg = calloc(1, sizeof(*cg));
	if (!cg)
		return -ENOMEM;
	cg->root_fd = open(real, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cg->root = strdup(real);
	if (cg->root_fd < 0 || !cg->root) {
		r = cg->root_fd < 0 ? -errno : -ENOMEM;
		lease_cgroups_free(cg);
		return log_error_errno(r, "Failed to open %s: %m", real);
	}
	r = cgroup_path_of_dir(real, &cg->cg_path);
	if (r < 0) {
		lease_cgroups_free(cg);
		return log_error_errno(r, "Failed to find the cgroup path of %s: %m", real);
	}
	if (faccessat(cg->root_fd, "cgroup.procs", W_OK, 0) < 0) {
		r = -errno;
		lease_cgroups_free(cg);
		return log_error_errno(r, "Cannot write into the cgroup %s: %m", real);
	}
	log_info("Lease cgroups under %s (cgroup %s)", cg->root, cg->cg_path);
	*ret = cg;
	return 0;
}

struct lease_cgroups *lease_cgroups_free(struct lease_cgroups *cg)
{
	if (!cg)
		return NULL;
	safe_close(cg->root_fd);
	free(cg->root);
	free(cg->cg_path);
	free(cg);
	return NULL;
}

const char *lease_cgroups_root(const struct lease_cgroups *cg)
{
	return cg ? cg->root : "(none)";
}

/* Write text to name in the cgroup dir path (relative to the root). */
static int cgroup_write(struct lease_cgroups *cg, const char *path, const char *name,
			const char *text)
{
	_cleanup_close_ int fd = -1;
	char file[PATH_MAX];
	size_t len = strlen(text);
	ssize_t n;

	snprintf(file, sizeof(file), "%s/%s", path, name);
	fd = openat(cg->root_fd, file, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	n = write(fd, text, len);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EIO;
}

/*
 * The path of the lease cgroup p is in, relative to the root, or "" when
 * it is in none of ours (allocated).
 */
static int cgroup_of_process(struct lease_cgroups *cg, const struct pidref *p, char **ret)
{
	_cleanup_free_ char *text = NULL, *path = NULL;
	size_t n = strlen(cg->cg_path);
	const char *rest;
	int r;

	r = pidref_read_proc(p, "cgroup", 64 * 1024, &text, NULL);
	if (r < 0)
		return r;
	r = parse_cgroup_file(text, &path);
	if (r < 0)
		return r;
	r = pidref_is_alive(p);
	if (r <= 0)
		return r < 0 ? r : -ESRCH;
	if (strcmp(cg->cg_path, "/") == 0)
		rest = path + 1;
	else if (strncmp(path, cg->cg_path, n) == 0 && (path[n] == '/' || path[n] == '\0'))
		rest = path + n + (path[n] == '/');
	else
		rest = "";
	/* Only our own lease cgroups count, never another directory under the root. */
	if (strncmp(rest, "lease-", 6) != 0)
		rest = "";
	*ret = strdup(rest);
	return *ret ? 0 : -ENOMEM;
}

int lease_cgroup_place(struct lease_cgroups *cg, const struct pidref *p, uint32_t group,
		       uint64_t since_usec, lease_cgroup_live_fn is_live, void *userdata,
		       char **ret_path)
{
	_cleanup_free_ char *parent = NULL, *old = NULL, *path = NULL;
	char pid[32], *slash;
	int r, alive;

	r = cgroup_of_process(cg, p, &parent);
	if (r < 0)
		return r;
	old = strdup(parent);
	if (!old)
		return -ENOMEM;
	/*
	 * Nest under the innermost cgroup of a live lease: one whose lease ended
	 * binds nothing any more, and skipping it keeps a process that leases
	 * again and again at the depth of the leases it really holds.
	 */
	while (parent[0] && !is_live(parent, userdata)) {
		slash = strrchr(parent, '/');
		if (slash)
			*slash = '\0';
		else
			parent[0] = '\0';
	}
	for (size_t depth = 0, i = 0; parent[i]; i++)
		if (parent[i] == '/' && ++depth >= CGROUP_MAX_NESTED - 1)
			return -ELOOP;
	if (asprintf(&path, "%s%s" CGROUP_NAME_FMT, parent, parent[0] ? "/" : "", group,
		     since_usec) < 0)
		return -ENOMEM;
	if (mkdirat(cg->root_fd, path, 0755) < 0)
		return -errno;
	snprintf(pid, sizeof(pid), "%d", (int)p->pid);
	r = cgroup_write(cg, path, "cgroup.procs", pid);
	/*
	 * Alive after the move: the pid was the holder's when it was written.
	 * If not, a process that reused it may be in the cgroup now; it is
	 * left there, never killed (no lease names the cgroup).
	 */
	alive = pidref_is_alive(p);
	if (r == 0 && alive <= 0)
		r = alive < 0 ? alive : -ESRCH;
	if (r < 0) {
		(void)unlinkat(cg->root_fd, path, AT_REMOVEDIR);
		return r;
	}
	if (old[0] && strcmp(old, parent) != 0)
		lease_cgroup_remove(cg, old); /* an ended lease's, if p was its last process */
	*ret_path = TAKE_PTR(path);
	return 0;
}

int lease_cgroup_kill(struct lease_cgroups *cg, const char *path)
{
	return cgroup_write(cg, path, "cgroup.kill", "1");
}

int lease_cgroup_contains(struct lease_cgroups *cg, const char *path, const struct pidref *p)
{
	_cleanup_free_ char *in = NULL;
	size_t n = strlen(path);
	int r;

	r = cgroup_of_process(cg, p, &in);
	if (r < 0)
		return r;
	return strncmp(in, path, n) == 0 && (in[n] == '/' || in[n] == '\0');
}

bool lease_cgroup_exists(struct lease_cgroups *cg, const char *path)
{
	struct stat st;

	return fstatat(cg->root_fd, path, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
}

void lease_cgroup_remove(struct lease_cgroups *cg, const char *path)
{
	char buf[PATH_MAX], *slash;

	snprintf(buf, sizeof(buf), "%s", path);
	while (buf[0]) {
		if (unlinkat(cg->root_fd, buf, AT_REMOVEDIR) < 0) {
			if (errno != EBUSY && errno != ENOTEMPTY && errno != ENOENT)
				log_warning_errno(errno, "Failed to remove cgroup %s/%s: %m",
						  cg->root, buf);
			if (errno != ENOENT)
				return;
		}
		slash = strrchr(buf, '/');
		if (!slash)
			return;
		*slash = '\0';
	}
}

void lease_cgroups_sweep(struct lease_cgroups *cg, lease_cgroup_live_fn is_live, void *userdata)
{
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *de;
	int fd;

	fd = openat(cg->root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return;
	}
	while ((de = readdir(d)))
		if (de->d_type == DT_DIR && strncmp(de->d_name, "lease-", 6) == 0 &&
		    !is_live(de->d_name, userdata))
			lease_cgroup_remove(cg, de->d_name);
}
