/* SPDX-License-Identifier: MIT */
/*
 * The placeholders of `vfioctl run --cdev`: the command names the descriptors
 * it inherits without counting them. In each argument of CMD,
 *
 *   {iommufd}   is replaced by the iommufd's descriptor number,
 *   {fd:BDF}    by the cdev descriptor of device BDF (0000:01:00.0 or 01:00.0),
 *   {fd}        by the one device's, when the lease has exactly one,
 *
 * also inside a longer argument (fd={fd}). A placeholder is "{", a name of
 * lowercase letters, digits and "_" that starts with a letter, optionally
 * ":" and an argument without braces, and "}". Any other brace is text and
 * passes through ({"driver": ...}, {}, { x }). A placeholder with another
 * name, or one that names no leased device, is an error: nothing runs.
 */
#pragma once

#include "protocol/message.h"

#include <stddef.h>

struct placeholder_device {
	char address[VB_ADDRESS_MAX]; /* "0000:01:00.0" */
	int fd;			      /* the number the command inherits it as */
};

struct placeholder_map {
	int iommufd;
	const struct placeholder_device *devices;
	size_t n_devices;
};

/*
 * placeholder_expand writes arg with every placeholder replaced into *ret
 * (allocated; the caller frees it). Returns 0, -ENOMEM, or -EINVAL with the
 * reason (one sentence naming the placeholder and the choices) in why.
 */
int placeholder_expand(const char *arg, const struct placeholder_map *m, char **ret, char *why,
		       size_t why_size);
