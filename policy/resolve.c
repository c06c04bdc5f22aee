/* SPDX-License-Identifier: MIT */
/* NSS lookups with the reentrant interfaces: the broker may load policy from any thread. */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <unistd.h>

#include "policy/resolve.h"

#define RESOLVE_BUF_MAX (1024 * 1024)

static size_t resolve_buf_size(int name)
{
	long n = sysconf(name);

	return n > 0 && n < RESOLVE_BUF_MAX ? (size_t)n : 16384;
}

/*
 * The getpwnam_r(3) manual lists ENOENT, ESRCH, EBADF and EPERM as ways some NSS modules
 * say "not found" instead of returning 0 with a NULL result; treat them all as absent.
 */
static int resolve_map_error(int r)
{
	if (r == 0 || r == ENOENT || r == ESRCH || r == EBADF || r == EPERM)
		return -ENOENT;
	return -r;
}

int resolve_user_name(const char *name, uid_t *ret)
{
	size_t size = resolve_buf_size(_SC_GETPW_R_SIZE_MAX);

	for (;;) {
		struct passwd pw, *result = NULL;
		char *buf = malloc(size);
		int r;

		if (!buf)
			return -ENOMEM;
		r = getpwnam_r(name, &pw, buf, size, &result);
		if (r == 0 && result) {
			*ret = pw.pw_uid;
			free(buf);
			return 0;
		}
		free(buf);
		if (r != ERANGE || size >= RESOLVE_BUF_MAX)
			return resolve_map_error(r);
		size *= 2;
	}
}

int resolve_group_name(const char *name, gid_t *ret)
{
	size_t size = resolve_buf_size(_SC_GETGR_R_SIZE_MAX);

	for (;;) {
		struct group gr, *result = NULL;
		char *buf = malloc(size);
		int r;

		if (!buf)
			return -ENOMEM;
		r = getgrnam_r(name, &gr, buf, size, &result);
		if (r == 0 && result) {
			*ret = gr.gr_gid;
			free(buf);
			return 0;
		}
		free(buf);
		if (r != ERANGE || size >= RESOLVE_BUF_MAX)
			return resolve_map_error(r);
		size *= 2;
	}
}
