/* SPDX-License-Identifier: MIT */
#include "client/vfioctl_placeholder.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * The length of the placeholder at s ("{name}" or "{name:arg}"), its name
 * and argument; 0 when s does not start one (a brace that is text).
 */
static size_t placeholder_scan(const char *s, size_t *ret_name_len, const char **ret_arg,
			       size_t *ret_arg_len)
{
	size_t i = 1, name_len, arg_start;

	if (s[0] != '{' || !islower((unsigned char)s[1]))
		return 0;
	while (islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '_')
		i++;
	name_len = i - 1;
	if (s[i] == '}') {
		*ret_name_len = name_len;
		*ret_arg = NULL;
		*ret_arg_len = 0;
		return i + 1;
	}
	if (s[i] != ':')
		return 0;
	arg_start = ++i;
	while (s[i] && s[i] != '{' && s[i] != '}')
		i++;
	if (s[i] != '}')
		return 0;
	*ret_name_len = name_len;
	*ret_arg = s + arg_start;
	*ret_arg_len = i - arg_start;
	return i + 1;
}

/* "0000:01:00.0, 0000:02:00.0" into buf: the choices an error names. */
static void placeholder_list_devices(const struct placeholder_map *m, char *buf, size_t size)
{
	size_t len = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < m->n_devices && len < size; i++)
		len += (size_t)snprintf(buf + len, size - len, "%s{fd:%s}", i ? ", " : "",
					m->devices[i].address);
}

/* The device an {fd:ARG} names: the full address or lspci's short one, either case. */
static const struct placeholder_device *placeholder_find_device(const struct placeholder_map *m,
								const char *arg, size_t len)
{
	char given[32], full[40], address[VB_ADDRESS_MAX];

	if (len >= sizeof(given))
		return NULL;
	memcpy(given, arg, len);
	given[len] = '\0';
	snprintf(full, sizeof(full), "0000:%s", given);
	if (vb_address_parse(given, address) < 0 &&
	    (len != 7 || vb_address_parse(full, address) < 0))
		return NULL;
	for (size_t i = 0; i < m->n_devices; i++)
		if (strcmp(m->devices[i].address, address) == 0)
			return &m->devices[i];
	return NULL;
}

/* The number a placeholder stands for, or -EINVAL with why. */
static int placeholder_value(const struct placeholder_map *m, const char *s, size_t name_len,
			     const char *arg, size_t arg_len, size_t total, char *why,
			     size_t why_size)
{
	char choices[512];
	const struct placeholder_device *d;

	placeholder_list_devices(m, choices, sizeof(choices));
	if (name_len == 7 && strncmp(s + 1, "iommufd", 7) == 0 && !arg)
		return m->iommufd;
	if (name_len == 2 && strncmp(s + 1, "fd", 2) == 0 && !arg) {
		if (m->n_devices == 1)
			return m->devices[0].fd;
		snprintf(why, why_size,
			 "{fd} stands for the one device of a lease, but this one has %zu: "
			 "name one of %s",
			 m->n_devices, choices);
		return -EINVAL;
	}
	if (name_len == 2 && strncmp(s + 1, "fd", 2) == 0) {
		d = placeholder_find_device(m, arg, arg_len);
		if (d)
			return d->fd;
		snprintf(why, why_size, "%.*s names no device of the lease; the choices are %s",
			 (int)total, s, choices);
		return -EINVAL;
	}
	snprintf(why, why_size,
		 "%.*s is not a placeholder vfioctl knows: use {iommufd}, {fd} or {fd:BDF} "
		 "(here %s)",
		 (int)total, s, choices);
	return -EINVAL;
}

int placeholder_expand(const char *arg, const struct placeholder_map *m, char **ret, char *why,
		       size_t why_size)
{
	char *out;
	size_t len = 0, size = strlen(arg) + 1;

	/* A number is at most 10 digits, never longer than the shortest placeholder + 6. */
	out = malloc(size * 3 + 16);
	if (!out)
		return -ENOMEM;
	for (const char *s = arg; *s;) {
		size_t name_len, arg_len, n = 0;
		const char *parg;
		int v;

		if (*s == '{')
			n = placeholder_scan(s, &name_len, &parg, &arg_len);
		if (n == 0) {
			out[len++] = *s++;
			continue;
		}
		v = placeholder_value(m, s, name_len, parg, arg_len, n, why, why_size);
		if (v < 0) {
			free(out);
			return v;
		}
		len += (size_t)sprintf(out + len, "%d", v);
		s += n;
	}
	out[len] = '\0';
	*ret = out;
	return 0;
}
