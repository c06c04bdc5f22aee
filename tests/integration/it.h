/* SPDX-License-Identifier: MIT */
/* Shared pieces of the integration suites. */
#pragma once

#include "client/vfiobroker.h"
#include "tests/lib/harness.h"

#include <check.h>

/* The policy most tests run under. */
#define IT_POLICY                                                                                  \
	"{\"rules\": [\n"                                                                          \
	"  {\"name\": \"alice-nics\", \"users\": [2000],\n"                                        \
	"   \"devices\": [{\"address\": \"0000:01:00.0\"}, {\"address\": \"0000:02:00.0\"},\n"     \
	"                 {\"address\": \"0000:03:00.0\"}],\n"                                     \
	"   \"allow\": [\"lease\", \"merge\"], \"memlock\": \"64M\"},\n"                           \
	"  {\"name\": \"carol-nic\", \"users\": [2002], \"devices\": [{\"iommu_group\": 7}]},\n"   \
	"  {\"name\": \"bridge-half\", \"users\": [2000], \"devices\": [{\"address\": "            \
	"\"0000:05:01.0\"}]}\n"                                                                    \
	"]}\n"

/* What a client child reports back to the test through shared memory. */
struct outcome {
	int rc;		   /* 0 or -errno from the library */
	char code[32];	   /* broker error code, "" on success */
	char message[512]; /* broker error message */
	int value;	   /* op-specific: a group, a count, an rlimit in MiB ... */
	char text[2048];   /* op-specific text */
};

/* What client_lease does once it holds its lease (client_args.mode). */
enum {
	HOLD_NONE,	/* lease, report, exit */
	HOLD_UNTIL_GO,	/* lease, report, wait for go, exit */
	HOLD_IN_CHILD,	/* lease, fork a child that keeps the fd until go, exit at once */
	HOLD_COOPERATE, /* lease, wait for remove-requested, close + release, exit */
	HOLD_IGNORE,	/* lease and sleep until killed */
};

/*
 * The broker of the suite's current test. it_broker_setup starts it on the
 * standard tree under IT_POLICY with no extra options; it_broker_teardown
 * stops it and removes its tree. Both fit tcase_add_checked_fixture.
 */
extern struct broker it_broker;
void it_broker_setup(void);
void it_broker_teardown(void);
/* Kills it_broker with SIGKILL and starts it again on the same tree, socket and state. */
void it_broker_crash_and_restart(void);

/*
 * As an administrator (the test is root) sees it_broker's leases: the lease
 * of group (false if none), and how many there are. A failed request fails the test.
 */
bool admin_find_lease(unsigned group, struct vfiobroker_lease *ret);
int admin_count_leases(void);
/*
 * Asks it_broker, as an administrator, to remove group (hard: kill the
 * holder; soft: ask it, waiting up to timeout_ms); returns 0 or -errno, and
 * the broker's message in msg when msg is not NULL.
 */
int admin_remove(unsigned group, bool hard, unsigned timeout_ms, char *msg, size_t size);

/* The fields of a line of the state file (PROTOCOL.md, "Restart"), counted from 0. */
enum { STATE_FIELD_PID = 3, STATE_FIELD_START_TIME = 4, STATE_FIELD_CONTAINER = 7 };
/*
 * Edit numeric field of group's line in it_broker's state file, as a stale
 * file would differ (shift adds delta) or a merge would record it (set
 * writes value). Fails the test if the line has no such field.
 */
void state_file_shift(unsigned group, unsigned field, long long delta);
void state_file_set(unsigned group, unsigned field, long long value);
/* Appends text to it_broker's state file, as a broker killed during a write leaves it. */
void state_file_append(const char *text);
/*
 * Whether it_broker's state file records a lease of group now: its last
 * committed record is a lease line (a transaction counts once its commit
 * line is written). False when the file cannot be read.
 */
bool state_file_records_lease(unsigned group);

/* Sends fd over the Unix socket sock (SCM_RIGHTS, with one byte); 0 or -1. */
int send_fd(int sock, int fd);
/* Receives a file sent by send_fd, close-on-exec; its fd, or -1. */
int recv_fd(int sock);

/* The build directory the suite runs from: $VB_BUILD, or "build". */
const char *it_build_dir(void);

/* What a command wrote and how it ended. */
struct cmd_result {
	int status; /* exit code, or 128+signal */
	char out[8192];
	char err[8192];
};

/*
 * cmd_spawn starts argv[0] (a path) as uid (0: as the test, root), with envp
 * (NULL: this process's environment), killed if the test dies. Its stdout
 * comes back in *out_fd (out_fd NULL: to /dev/null), its stderr in *err_fd.
 * cmd_finish reads both to EOF into r, closes them, and waits for the exit.
 */
pid_t cmd_spawn(uid_t uid, const char *const *argv, char *const *envp, int *out_fd, int *err_fd);
void cmd_finish(struct cmd_result *r, pid_t pid, int out_fd, int err_fd);
/* cmd_spawn of `vfioctl --socket it_broker.socket args...` (args NULL-terminated). */
pid_t vfioctl_spawn(uid_t uid, int *out_fd, int *err_fd, const char *const *args);

/* ASan cannot be preloaded into uninstrumented programs such as /bin/sh. */
#if defined(__SANITIZE_ADDRESS__)
#define SKIP_UNDER_ASAN()                                                                          \
	do {                                                                                       \
		printf("NOTE: %s does not run under ASan (the shim goes into /bin/sh)\n",          \
		       __func__);                                                                  \
		return;                                                                            \
	} while (0)
#else
#define SKIP_UNDER_ASAN() ((void)0)
#endif

/* A MAP_SHARED outcome that survives the client's fork. */
struct outcome *outcome_new(void);
void outcome_free(struct outcome *o);
/* Fills o from the connection's last error. */
void outcome_record(struct outcome *o, struct vfiobroker *b, int rc);

/* Client children: each connects to sock, does one thing, reports in out. */
struct client_args {
	const char *socket;
	unsigned group;
	const char *device;
	struct outcome *out;
	struct signal_pipe *ready; /* the client writes 'L' once it holds its lease */
	struct signal_pipe *go;	   /* ... and waits for a byte here before finishing */
	int mode;		   /* client-specific behaviour switch */
};

/*
 * Reads b's events until remove-requested for group: 0, -ETIMEDOUT after 10 s
 * with none, or the library's error.
 */
int wait_for_remove_request(struct vfiobroker *b, unsigned group);

/* Leases args->group (or args->device), reports, then optionally holds. */
int client_lease(void *arg);

/*
 * spawn_holder starts a client_lease child as uid in mode and returns its pid
 * once it holds group (ready and, when not NULL, go are initialised here).
 */
pid_t spawn_holder(const char *socket, uid_t uid, unsigned group, int mode, struct outcome *o,
		   struct signal_pipe *ready, struct signal_pipe *go);

Suite *suite_lease(void);
Suite *suite_remove(void);
Suite *suite_policy_reload(void);
Suite *suite_hostile(void);
Suite *suite_limits(void);
Suite *suite_cli(void);
Suite *suite_sandbox(void);
Suite *suite_restart(void);
Suite *suite_preload(void);
Suite *suite_semantics(void);
Suite *suite_reconnect(void);
Suite *suite_identity(void);
Suite *suite_cgroup(void);
/* Whether a writable cgroup v2 hierarchy is here (the cgroup suite needs one). */
bool it_cgroup_available(void);
Suite *suite_model(void);
Suite *suite_cdev(void);
Suite *suite_scanner(void);

/*
 * After a hostile act: the broker is alive, Alice can lease group 7 of the
 * standard tree, and the broker's fd count is back to baseline (no leak).
 */
void assert_serves_good_client(const struct broker *b, int baseline);
