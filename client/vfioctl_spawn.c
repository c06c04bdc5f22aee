/* SPDX-License-Identifier: MIT */
#include "client/vfioctl_spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Whether environment entry e sets a variable that one of add sets too. */
static bool env_replaced(const char *e, char *const *add)
{
	size_t len = strcspn(e, "=");

	for (; add && *add; add++)
		if (strncmp(e, *add, len) == 0 && (*add)[len] == '=')
			return true;
	return false;
}

/* environ with add's entries in place of the ones they name; NULL when out of memory. */
static char **environment_build(char *const *add)
{
	size_t n = 0, n_add = 0, k = 0;
	char **env;

	while (environ && environ[n])
		n++;
	while (add && add[n_add])
		n_add++;
	env = calloc(n + n_add + 1, sizeof(*env));
	if (!env)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (!env_replaced(environ[i], add))
			env[k++] = environ[i];
	for (size_t i = 0; i < n_add; i++)
		env[k++] = add[i];
	return env;
}

/*
 * Moves s->fds to SPAWN_FIRST_FD... without FD_CLOEXEC. Every source is first
 * copied above the target range, so that no dup2() overwrites a descriptor
 * still to be placed; *keep_fd (or -1) is moved out of the range the same way.
 * The copies are O_CLOEXEC and vanish at exec.
 */
static int fds_place(const struct spawn *s, int *keep_fd)
{
	int above = SPAWN_FIRST_FD + (int)s->n_fds;
	int moved[SPAWN_MAX_FDS];

	if (s->n_fds > SPAWN_MAX_FDS)
		return -EINVAL;
	if (keep_fd && *keep_fd >= 0 && *keep_fd < above) {
		int fd = fcntl(*keep_fd, F_DUPFD_CLOEXEC, above);

		if (fd < 0)
			return -errno;
		*keep_fd = fd;
	}
	for (size_t i = 0; i < s->n_fds; i++) {
		moved[i] = fcntl(s->fds[i], F_DUPFD_CLOEXEC, above);
		if (moved[i] < 0)
			return -errno;
	}
	for (size_t i = 0; i < s->n_fds; i++)
		if (dup2(moved[i], SPAWN_FIRST_FD + (int)i) < 0)
			return -errno;
	return 0;
}

static int exec_prepared(const struct spawn *s, char **env, int *keep_fd)
{
	int r = fds_place(s, keep_fd);

	if (r < 0)
		return r;
	execvpe(s->argv[0], s->argv, env);
	return -errno;
}

int spawn_exec(const struct spawn *s)
{
	char **env = environment_build(s->env);
	int r;

	if (!env)
		return -ENOMEM;
	fflush(NULL);
	r = exec_prepared(s, env, NULL);
	free(env);
	return r;
}

/*
 * The child reports a failed exec through a pipe that exec closes (O_CLOEXEC):
 * end of file means the command runs, an int means it could not start.
 */
int spawn_start(const struct spawn *s, const sigset_t *child_mask, pid_t *ret_pid)
{
	char **env = environment_build(s->env);
	int report[2], error = 0, r;
	ssize_t n;
	pid_t pid;

	if (!env)
		return -ENOMEM;
	if (pipe2(report, O_CLOEXEC) < 0) {
		r = -errno;
		goto free_env;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		r = -errno;
		goto close_pipe;
	}
	if (pid == 0) {
		close(report[0]);
		sigprocmask(SIG_SETMASK, child_mask, NULL);
		r = exec_prepared(s, env, &report[1]);
		error = -r;
		(void)!write(report[1], &error, sizeof(error));
		_exit(spawn_failure_status(r));
	}
	close(report[1]);
	report[1] = -1;
	do
		n = read(report[0], &error, sizeof(error));
	while (n < 0 && errno == EINTR);
	if (n == sizeof(error) && error > 0) {
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		r = -error;
		goto close_pipe;
	}
	*ret_pid = pid;
	r = 0;
close_pipe:
	close(report[0]);
	if (report[1] >= 0)
		close(report[1]);
free_env:
	free(env);
	return r;
}

int spawn_failure_status(int r)
{
	return r == -ENOENT ? 127 : 126;
}

int spawn_exit_status(int wstatus)
{
	if (WIFEXITED(wstatus))
		return WEXITSTATUS(wstatus);
	if (WIFSIGNALED(wstatus))
		return 128 + WTERMSIG(wstatus);
	return 1;
}
