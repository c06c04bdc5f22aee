/* SPDX-License-Identifier: MIT */
/* User and group names to ids through NSS, at load time only. */
#pragma once

#include <sys/types.h>

/* 0 and *ret; -ENOENT if there is no such user; another -errno if the lookup failed. */
int resolve_user_name(const char *name, uid_t *ret);
/* 0 and *ret; -ENOENT if there is no such group; another -errno if the lookup failed. */
int resolve_group_name(const char *name, gid_t *ret);
