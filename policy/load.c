/* SPDX-License-Identifier: MIT */
/*
 * Loading a policy directory: listing and ordering the files, refusing files anyone but root
 * could have written (like sshd's StrictModes), reading them within the size limits, and
 * assembling the parsed rules into an indexed, immutable struct policy.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "policy/error.h"
#include "policy/parse.h"
#include "policy/policy-internal.h"

struct policy *policy_free(struct policy *p)
{
	if (!p)
		return NULL;
	for (size_t i = 0; i < p->n_rules; i++)
		rule_done(&p->rules[i]);
	free(p->rules);
	for (size_t i = 0; i < p->n_files; i++)
		free(p->files[i]);
	free(p->files);
	for (size_t i = 0; i < POLICY_N_ACTIONS; i++) {
		rule_index_done(&p->allow[i]);
		rule_index_done(&p->deny[i]);
	}
	free(p);
	return NULL;
}

size_t policy_rule_count(const struct policy *p)
{
	return p ? p->n_rules : 0;
}

size_t policy_file_count(const struct policy *p)
{
	return p ? p->n_files : 0;
}

struct name_ref {
	const char *name;
	uint32_t rule;
};

static int compare_name_ref(const void *a, const void *b)
{
	const struct name_ref *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (c)
		return c;
	return x->rule < y->rule ? -1 : x->rule > y->rule;
}

/*
 * Rule names are unique across all files, since decisions and logs refer to rules by name.
 * Sorting finds duplicates in O(n log n); the one reported is the earliest redefinition in
 * load order, so the error is stable whatever the sort does.
 */
static int policy_check_names(const struct policy *p, struct policy_error *err)
{
	struct name_ref *refs;
	size_t dup = SIZE_MAX, orig = 0, group = 0;

	if (p->n_rules < 2)
		return 0;
	refs = calloc(p->n_rules, sizeof(*refs));
	if (!refs)
		return -ENOMEM;
	for (size_t i = 0; i < p->n_rules; i++)
		refs[i] = (struct name_ref){p->rules[i].name, (uint32_t)i};
	qsort(refs, p->n_rules, sizeof(*refs), compare_name_ref);
	for (size_t i = 1; i < p->n_rules; i++) {
		if (strcmp(refs[i].name, refs[group].name) != 0) {
			group = i;
			continue;
		}
		if (dup == SIZE_MAX || refs[i].rule < dup) {
			dup = refs[i].rule;
			orig = refs[group].rule;
		}
	}
	free(refs);
	if (dup == SIZE_MAX)
		return 0;
	return policy_error_set(err, p->rules[dup].file, p->rules[dup].line, -EINVAL,
				"rule \"%s\": duplicate name, first defined at %s:%u",
				p->rules[dup].name, p->rules[orig].file, p->rules[orig].line);
}

/* Take the parsed rules, check what spans files, and build the lookup tables. */
static int policy_finish(struct policy *p, struct rule_vec *rules, struct policy_error *err)
{
	int r;

	p->rules = rules->items;
	p->n_rules = rules->n;
	memset(rules, 0, sizeof(*rules));
	r = policy_check_names(p, err);
	if (r < 0)
		return r;
	for (size_t i = 0; r >= 0 && i < POLICY_N_ACTIONS; i++) {
		r = rule_index_build(&p->allow[i], p->rules, p->n_rules, false, 1u << i);
		if (r >= 0)
			r = rule_index_build(&p->deny[i], p->rules, p->n_rules, true, 1u << i);
	}
	if (r < 0)
		return policy_error_set(err, "", 0, r, "out of memory building the policy index");
	return 0;
}

static int policy_add_file_name(struct policy *p, const char *name, const char **ret)
{
	char **files = reallocarray(p->files, p->n_files + 1, sizeof(*files));

	if (!files)
		return -ENOMEM;
	p->files = files;
	files[p->n_files] = strdup(name);
	if (!files[p->n_files])
		return -ENOMEM;
	*ret = files[p->n_files++];
	return 0;
}

int policy_load_string(const char *name, const char *text, size_t len, unsigned flags,
		       policy_warn_fn warn, void *userdata, struct policy **ret,
		       struct policy_error *err)
{
	struct rule_vec rules = {0};
	struct policy *p;
	const char *file;
	int r;

	if (!name)
		name = "<string>";
	if (!ret || (!text && len))
		return policy_error_set(err, name, 0, -EINVAL, "invalid arguments");
	if (!text)
		text = "";
	p = calloc(1, sizeof(*p));
	if (!p)
		return policy_error_set(err, name, 0, -ENOMEM, "out of memory");
	r = policy_add_file_name(p, name, &file);
	if (r >= 0)
		r = parse_file(file, text, len, flags, warn, userdata, POLICY_MAX_RULES, &rules,
			       err);
	if (r >= 0)
		r = policy_finish(p, &rules, err);
	rule_vec_done(&rules);
	if (r < 0) {
		if (r == -ENOMEM)
			policy_error_set(err, name, 0, r, "out of memory");
		policy_free(p);
		return r;
	}
	*ret = p;
	return 0;
}

/*
 * Only root may be able to change policy: a file (or the directory holding it) that another
 * user owns or that group or others may write would let them grant themselves devices.
 */
static int check_owner_and_mode(const struct stat *st, unsigned flags, const char *file,
				const char *what, struct policy_error *err)
{
	if (!(flags & POLICY_LOAD_SKIP_OWNER_CHECK) && st->st_uid != 0)
		return policy_error_set(err, file, 0, -EPERM,
					"%s is owned by uid %u, not root; refusing it", what,
					(unsigned)st->st_uid);
	if (st->st_mode & (S_IWGRP | S_IWOTH))
		return policy_error_set(err, file, 0, -EPERM,
					"%s is writable by %s (mode %04o); refusing it", what,
					(st->st_mode & S_IWOTH) ? "others" : "its group",
					(unsigned)(st->st_mode & 07777));
	return 0;
}

/* Read name from dfd, at most POLICY_MAX_FILE_SIZE bytes, after the ownership checks. */
static int read_policy_file(int dfd, const char *name, unsigned flags, char **ret, size_t *ret_len,
			    struct policy_error *err)
{
	struct stat st;
	char *buf = NULL;
	size_t len = 0;
	int fd, r;

	/* O_NOFOLLOW: a symlink is not a regular file; O_NONBLOCK: a FIFO must not hang us. */
	fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
	if (fd < 0) {
		r = -errno;
		if (r == -ELOOP)
			return policy_error_set(err, name, 0, -EPERM,
						"is a symbolic link; policy files must be regular "
						"files");
		return policy_error_set(err, name, 0, r, "cannot open: %s", strerror(-r));
	}
	if (fstat(fd, &st) < 0) {
		r = policy_error_set(err, name, 0, -errno, "cannot stat: %s", strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		r = policy_error_set(err, name, 0, -EPERM, "is not a regular file; refusing it");
		goto out;
	}
	r = check_owner_and_mode(&st, flags, name, "file", err);
	if (r < 0)
		goto out;
	if (st.st_size > POLICY_MAX_FILE_SIZE) {
		r = policy_error_set(err, name, 0, -EFBIG, "file is larger than %d bytes",
				     POLICY_MAX_FILE_SIZE);
		goto out;
	}
	/* One byte more than allowed, to notice a file that grew since fstat(). */
	buf = malloc(POLICY_MAX_FILE_SIZE + 1);
	if (!buf) {
		r = -ENOMEM;
		goto out;
	}
	for (;;) {
		ssize_t n = read(fd, buf + len, POLICY_MAX_FILE_SIZE + 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = policy_error_set(err, name, 0, -errno, "cannot read: %s",
					     strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > POLICY_MAX_FILE_SIZE) {
			r = policy_error_set(err, name, 0, -EFBIG, "file is larger than %d bytes",
					     POLICY_MAX_FILE_SIZE);
			goto out;
		}
	}
	*ret = buf;
	*ret_len = len;
	buf = NULL;
	r = 0;
out:
	free(buf);
	close(fd);
	return r;
}

static int compare_strings(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool is_policy_file_name(const char *name)
{
	size_t len = strlen(name);

	/* Dot files are editor and package-manager leftovers (".#10-lab.json", ...). */
	return name[0] != '.' && len > 5 && strcmp(name + len - 5, ".json") == 0;
}

static void free_names(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/* The *.json names of the directory, strcmp-sorted. */
static int list_policy_files(DIR *d, const char *dir, char ***ret, size_t *ret_n,
			     struct policy_error *err)
{
	char **names = NULL, **grown;
	size_t n = 0;
	struct dirent *de;

	for (;;) {
		errno = 0;
		de = readdir(d);
		if (!de)
			break;
		if (!is_policy_file_name(de->d_name))
			continue;
		if (n == POLICY_MAX_FILES) {
			free_names(names, n);
			return policy_error_set(err, dir, 0, -E2BIG,
						"more than %d policy files in the directory",
						POLICY_MAX_FILES);
		}
		grown = reallocarray(names, n + 1, sizeof(*names));
		if (!grown) {
			free_names(names, n);
			return -ENOMEM;
		}
		names = grown;
		names[n] = strdup(de->d_name);
		if (!names[n]) {
			free_names(names, n);
			return -ENOMEM;
		}
		n++;
	}
	if (errno) {
		int r = -errno;

		free_names(names, n);
		return policy_error_set(err, dir, 0, r, "cannot read directory: %s", strerror(-r));
	}
	if (n)
		qsort(names, n, sizeof(*names), compare_strings);
	*ret = names;
	*ret_n = n;
	return 0;
}

int policy_load_dir(const char *dir, unsigned flags, policy_warn_fn warn, void *userdata,
		    struct policy **ret, struct policy_error *err)
{
	struct rule_vec rules = {0};
	struct policy *p = NULL;
	char **names = NULL;
	size_t n_names = 0, total = 0;
	struct stat st;
	DIR *d = NULL;
	int dfd, r;

	if (!dir || !ret)
		return policy_error_set(err, dir ? dir : "", 0, -EINVAL, "invalid arguments");
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		r = -errno;
		if (r == -ENOENT)
			return policy_error_set(err, dir, 0, r, "policy directory does not exist");
		if (r == -ENOTDIR)
			return policy_error_set(err, dir, 0, r, "not a directory");
		return policy_error_set(err, dir, 0, r, "cannot open policy directory: %s",
					strerror(-r));
	}
	if (fstat(dfd, &st) < 0) {
		r = policy_error_set(err, dir, 0, -errno, "cannot stat: %s", strerror(errno));
		close(dfd);
		return r;
	}
	r = check_owner_and_mode(&st, flags, dir, "policy directory", err);
	if (r < 0) {
		close(dfd);
		return r;
	}
	d = fdopendir(dfd);
	if (!d) {
		r = policy_error_set(err, dir, 0, -errno, "cannot read directory: %s",
				     strerror(errno));
		close(dfd);
		return r;
	}
	r = list_policy_files(d, dir, &names, &n_names, err);
	if (r < 0)
		goto out;

	p = calloc(1, sizeof(*p));
	if (!p) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n_names; i++) {
		const char *file;
		char *text = NULL;
		size_t len = 0;

		r = policy_add_file_name(p, names[i], &file);
		if (r < 0)
			goto out;
		r = read_policy_file(dirfd(d), names[i], flags, &text, &len, err);
		if (r < 0)
			goto out;
		total += len;
		if (total > POLICY_MAX_TOTAL_SIZE) {
			free(text);
			r = policy_error_set(err, names[i], 0, -EFBIG,
					     "policy files total more than %d bytes",
					     POLICY_MAX_TOTAL_SIZE);
			goto out;
		}
		r = parse_file(file, text, len, flags, warn, userdata, POLICY_MAX_RULES, &rules,
			       err);
		free(text);
		if (r < 0)
			goto out;
	}
	r = policy_finish(p, &rules, err);
out:
	if (r == -ENOMEM)
		policy_error_set(err, dir, 0, r, "out of memory");
	rule_vec_done(&rules);
	free_names(names, n_names);
	closedir(d);
	if (r < 0) {
		policy_free(p);
		return r;
	}
	*ret = p;
	return 0;
}
