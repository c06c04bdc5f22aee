/* SPDX-License-Identifier: MIT */
/*
 * Scope-bound ownership, systemd style: a variable declared _cleanup_close_
 * is closed when it goes out of scope unless its value was taken with
 * TAKE_FD() (ownership moved elsewhere). Same for allocations.
 */
#pragma once

#include <dirent.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* Close fd if it is valid, keeping errno; returns -1 to assign back. */
static inline int safe_close(int fd)
{
	if (fd >= 0) {
		int saved = errno;

		close(fd);
		errno = saved;
	}
	return -1;
}

static inline void cleanup_close(int *fd)
{
	safe_close(*fd);
}

static inline void cleanup_free(void *p)
{
	free(*(void **)p);
}

static inline void cleanup_closedir(DIR **d)
{
	if (*d)
		closedir(*d);
}

static inline void cleanup_fclose(FILE **f)
{
	if (*f)
		fclose(*f);
}

static inline void cleanup_json(struct json_object **o)
{
	json_object_put(*o);
}

#define _cleanup_close_	   __attribute__((cleanup(cleanup_close)))
#define _cleanup_free_	   __attribute__((cleanup(cleanup_free)))
#define _cleanup_closedir_ __attribute__((cleanup(cleanup_closedir)))
#define _cleanup_json_	   __attribute__((cleanup(cleanup_json)))
#define _cleanup_fclose_   __attribute__((cleanup(cleanup_fclose)))

/* Take ownership of an fd or pointer: the variable is reset so cleanup leaves it alone. */
#define TAKE_FD(fd)                                                                                \
	({                                                                                         \
		int _fd = (fd);                                                                    \
		(fd) = -1;                                                                         \
		_fd;                                                                               \
	})
#define TAKE_PTR(p)                                                                                \
	({                                                                                         \
		__typeof__(p) _p = (p);                                                            \
		(p) = NULL;                                                                        \
		_p;                                                                                \
	})

#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))
