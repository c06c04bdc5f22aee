/* SPDX-License-Identifier: MIT */
/*
 * The cdev path on a simulated tree (PROTOCOL.md, "lease", "path"): what a
 * kernel without iommufd answers, what a cdev lease hands over (regular
 * files stand in for /dev/iommu and /dev/vfio/devices/vfioN, as for the
 * group nodes), and how the two paths of one group exclude each other. The
 * real kernel's side (bind, attach, DMA, EBUSY between the paths) is the VM
 * tier's: tests/vm/scenarios-iommufd/35-cdev-lease.sh.
 */
#include "tests/integration/it.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <linux/kcmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* IT_POLICY, and Alice may lease all of group 9 (a bridge and two endpoints). */
#define CDEV_POLICY                                                                                \
	"{\"rules\": [\n"                                                                          \
	"  {\"name\": \"alice-nics\", \"users\": [2000],\n"                                        \
	"   \"devices\": [{\"address\": \"0000:01:00.0\"}, {\"address\": \"0000:02:00.0\"},\n"     \
	"                 {\"address\": \"0000:03:00.0\"}],\n"                                     \
	"   \"allow\": [\"lease\", \"merge\"], \"memlock\": \"64M\"},\n"                           \
	"  {\"name\": \"alice-pair\", \"users\": [2000],\n"                                        \
	"   \"devices\": [{\"iommu_group\": 9}]},\n"                                               \
	"  {\"name\": \"bob-nic\", \"users\": [2001], \"devices\": [{\"iommu_group\": 7}]}\n"      \
	"]}\n"

/* The cdev number each endpoint of the standard tree gets in the simulated kernel. */
static const struct {
	const char *address;
	unsigned cdev;
} sim_cdevs[] = {
	{"0000:01:00.0", 0},
	{"0000:02:00.0", 1},
	{"0000:05:01.0", 2},
	{"0000:05:02.0", 3},
};

static void write_empty(const char *path, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

	ck_assert_msg(fd >= 0, "%s: %s", path, strerror(errno));
	close(fd);
}

/*
 * What a kernel with iommufd and VFIO_DEVICE_CDEV shows: /dev/iommu, and for
 * each device on vfio-pci a vfio-dev/vfioN directory and /dev/vfio/devices/vfioN.
 */
static void sim_add_cdevs(struct broker *b)
{
	char p[PATH_MAX + 64];

	snprintf(p, sizeof(p), "%s/vfio/devices", b->sim.dev);
	ck_assert_int_eq(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/iommu", b->sim.dev);
	write_empty(p, 0600);
	for (size_t i = 0; i < sizeof(sim_cdevs) / sizeof(sim_cdevs[0]); i++) {
		snprintf(p, sizeof(p), "%s/devices/pci0000:00/%s/vfio-dev", b->sim.sys,
			 sim_cdevs[i].address);
		ck_assert_int_eq(mkdir(p, 0755), 0);
		snprintf(p, sizeof(p), "%s/devices/pci0000:00/%s/vfio-dev/vfio%u", b->sim.sys,
			 sim_cdevs[i].address, sim_cdevs[i].cdev);
		ck_assert_int_eq(mkdir(p, 0755), 0);
		snprintf(p, sizeof(p), "%s/vfio/devices/vfio%u", b->sim.dev, sim_cdevs[i].cdev);
		write_empty(p, 0600);
	}
}

static void cdev_setup(void)
{
	broker_setup(&it_broker, CDEV_POLICY);
	sim_add_cdevs(&it_broker);
	broker_start(&it_broker, NULL);
}

/* What a cdev client child does (client_args.mode). */
enum {
	CDEV_ONCE,		/* lease, report, exit */
	CDEV_TWICE,		/* lease group, then 8; report whether both iommufds are one file */
	CDEV_HOLD,		/* lease, report, hold until go */
	CDEV_THEN_GROUP_PATH,	/* lease through cdev, then ask for the group path too */
	CDEV_THEN_MERGE,	/* lease 7 and 8 through cdev, then ask to merge them */
	CDEV_COOPERATE,		/* lease, wait for remove-requested, close everything, release */
	CDEV_KEEP_LAST,		/* lease, close all but the last cdev, release; go: close it */
	CDEV_RESTART_KEEP_LAST, /* lease, report 'R', wait for go, then as CDEV_KEEP_LAST */
	CDEV_RESTART_TWICE,	/* lease, report 'R', wait for go, then lease 8 as CDEV_TWICE */
	CDEV_CHILD_KEEPS_LAST,	/* lease, fork a child keeping only the last cdev until go, exit */
};

static bool same_file(int a, int b)
{
	struct stat sa, sb;

	return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
	       sa.st_ino == sb.st_ino;
}

/* Whether fd is the simulated node dev/<rel>. */
static bool is_node(int fd, const char *rel)
{
	char p[PATH_MAX + 64];
	struct stat want, got;

	snprintf(p, sizeof(p), "%s/%s", it_broker.sim.dev, rel);
	return stat(p, &want) == 0 && fstat(fd, &got) == 0 && want.st_ino == got.st_ino &&
	       want.st_dev == got.st_dev;
}

/* "iommufd=dev/iommu reused=0 0000:05:01.0=vfio/devices/vfio2 ..." into o->text. */
static void describe_lease(struct outcome *o, const struct vfiobroker_cdev_lease *l)
{
	size_t len =
		(size_t)snprintf(o->text, sizeof(o->text), "iommufd=%s reused=%d",
				 is_node(l->iommufd, "iommu") ? "iommu" : "?", l->iommufd_reused);

	for (size_t i = 0; i < l->n_devices && len < sizeof(o->text); i++) {
		char rel[80] = "?";

		for (size_t k = 0; k < sizeof(sim_cdevs) / sizeof(sim_cdevs[0]); k++) {
			char cand[64];

			snprintf(cand, sizeof(cand), "vfio/devices/vfio%u", sim_cdevs[k].cdev);
			if (is_node(l->devices[i].fd, cand))
				snprintf(rel, sizeof(rel), "%s", cand);
		}
		len += (size_t)snprintf(o->text + len, sizeof(o->text) - len, " %s=%s",
					l->devices[i].address, rel);
	}
}

static void close_lease(struct vfiobroker_cdev_lease *l)
{
	if (l->iommufd >= 0)
		close(l->iommufd);
	for (size_t i = 0; i < l->n_devices; i++)
		close(l->devices[i].fd);
}

static int client_cdev(void *arg)
{
	struct client_args *a = arg;
	struct vfiobroker_cdev_lease l, l2;
	struct vfiobroker *b;
	int fd, r;

	r = vfiobroker_connect(a->socket, &b);
	if (r < 0) {
		outcome_record(a->out, NULL, r);
		return 1;
	}
	r = vfiobroker_lease_cdev(b, a->group, a->device, 0, &l);
	outcome_record(a->out, b, r);
	if (r < 0) {
		vfiobroker_disconnect(b);
		return 1;
	}
	a->out->value = (int)l.group;
	describe_lease(a->out, &l);
	if (a->mode == CDEV_RESTART_KEEP_LAST || a->mode == CDEV_RESTART_TWICE) {
		/* The test restarts the broker meanwhile: this connection went with it. */
		signal_pipe_send(a->ready, 'R');
		signal_pipe_wait(a->go);
		vfiobroker_disconnect(b);
		r = vfiobroker_connect(a->socket, &b);
		if (r < 0) {
			outcome_record(a->out, NULL, r);
			close_lease(&l);
			return 1;
		}
	}
	switch (a->mode) {
	case CDEV_RESTART_TWICE:
		r = vfiobroker_lease_cdev(b, 8, NULL, 0, &l2);
		outcome_record(a->out, b, r);
		a->out->value = r;
		if (r == 0) {
			/* One open file, not merely the same node: kcmp, as the kernel sees it. */
			a->out->value = syscall(SYS_kcmp, getpid(), getpid(), KCMP_FILE, l.iommufd,
						l2.iommufd) == 0 &&
					l2.iommufd_reused;
			close_lease(&l2);
		}
		break;
	case CDEV_TWICE:
		r = vfiobroker_lease_cdev(b, 8, NULL, 0, &l2);
		outcome_record(a->out, b, r);
		if (r == 0) {
			a->out->value = same_file(l.iommufd, l2.iommufd) && l2.iommufd_reused &&
					!l.iommufd_reused;
			close_lease(&l2);
		}
		break;
	case CDEV_HOLD:
		signal_pipe_send(a->ready, 'L');
		signal_pipe_wait(a->go);
		break;
	case CDEV_COOPERATE: {
		bool released = false;

		signal_pipe_send(a->ready, 'L');
		r = wait_for_remove_request(b, l.group);
		if (r == 0) {
			close_lease(&l);
			l.n_devices = 0;
			l.iommufd = -1;
			r = vfiobroker_release(b, l.group, &released);
		}
		a->out->value = r == 0 && released ? 1 : r;
		break;
	}
	case CDEV_RESTART_KEEP_LAST:
	case CDEV_KEEP_LAST: {
		bool released = true;

		/* The last endpoint's cdev stays open: not the lease's first file. */
		close(l.iommufd);
		l.iommufd = -1;
		for (size_t i = 0; i + 1 < l.n_devices; i++)
			close(l.devices[i].fd);
		l.devices[0] = l.devices[l.n_devices - 1];
		l.n_devices = 1;
		r = vfiobroker_release(b, l.group, &released);
		a->out->value = r < 0 ? r : released;
		signal_pipe_send(a->ready, 'L');
		signal_pipe_wait(a->go);
		close_lease(&l);
		l.n_devices = 0;
		signal_pipe_send(a->ready, 'C');
		signal_pipe_wait(a->go);
		break;
	}
	case CDEV_CHILD_KEEPS_LAST: {
		pid_t child = fork();

		if (child == 0) {
			/* Only the last cdev: not the lease's first file. */
			close(l.iommufd);
			for (size_t i = 0; i + 1 < l.n_devices; i++)
				close(l.devices[i].fd);
			signal_pipe_wait(a->go);
			_exit(0);
		}
		a->out->value = (int)child;
		signal_pipe_send(a->ready, 'L');
		break;
	}
	case CDEV_THEN_GROUP_PATH:
		r = vfiobroker_lease(b, a->group, &fd);
		outcome_record(a->out, b, r);
		if (r == 0)
			close(fd);
		break;
	case CDEV_THEN_MERGE: {
		unsigned groups[] = {7, 8};

		r = vfiobroker_lease_cdev(b, 8, NULL, 0, &l2);
		if (r == 0) {
			r = vfiobroker_merge(b, groups, 2, -1, &fd);
			outcome_record(a->out, b, r);
			if (r == 0)
				close(fd);
			close_lease(&l2);
		}
		break;
	}
	default:
		break;
	}
	close_lease(&l);
	vfiobroker_disconnect(b);
	return 0;
}

static void run_cdev_client(uid_t uid, unsigned group, const char *device, int mode,
			    struct outcome *o)
{
	struct client_args a = {.socket = it_broker.socket,
				.group = group,
				.device = device,
				.out = o,
				.mode = mode};

	run_as(uid, 0, client_cdev, &a);
}

/* A client of Alice's running client_cdev in a mode while the test goes on. */
struct cdev_client {
	struct outcome *o;
	struct signal_pipe ready, go;
	struct client_args a;
	pid_t pid;
};

/*
 * cdev_client_spawn starts Alice's client on a cdev lease of group in mode
 * and returns once the lease is granted and the client says so: 'L', or 'R'
 * in the restart modes (it will reconnect). The mode goes on from there,
 * waiting on c->go where it waits.
 */
static void cdev_client_spawn(struct cdev_client *c, unsigned group, int mode)
{
	bool restart = mode == CDEV_RESTART_KEEP_LAST || mode == CDEV_RESTART_TWICE;

	c->o = outcome_new();
	signal_pipe_init(&c->ready);
	signal_pipe_init(&c->go);
	c->a = (struct client_args){.socket = it_broker.socket,
				    .group = group,
				    .out = c->o,
				    .mode = mode,
				    .ready = &c->ready,
				    .go = &c->go};
	c->pid = spawn_as(UID_ALICE, 0, client_cdev, &c->a);
	ck_assert_int_eq(signal_pipe_wait(&c->ready), restart ? 'R' : 'L');
	ck_assert_msg(c->o->rc == 0, "%s: %s", c->o->code, c->o->message);
}

START_TEST(test_cdev_lease_on_a_kernel_without_iommufd_is_unsupported_and_names_it)
{
	struct outcome *o = outcome_new();

	/* The standard tree has no /dev/iommu, as Debian's 6.1 and 6.12 kernels. */
	run_cdev_client(UID_ALICE, 7, NULL, CDEV_ONCE, o);
	ck_assert_int_eq(o->rc, -EOPNOTSUPP);
	ck_assert_str_eq(o->code, "unsupported");
	ck_assert_msg(strstr(o->message, "this kernel has no iommufd") &&
			      strstr(o->message, "/iommu does not exist") &&
			      strstr(o->message, "CONFIG_IOMMUFD"),
		      "%s", o->message);
	/* Nothing was held meanwhile: the group path still takes the group. */
	ck_assert_int_eq(admin_count_leases(), 0);
	outcome_free(o);
}
END_TEST

START_TEST(test_cdev_lease_of_a_device_without_a_vfio_cdev_names_config_vfio_device_cdev)
{
	struct outcome *o = outcome_new();
	char p[PATH_MAX + 64];

	/* As the kernel without the option shows it: no vfio-dev directory at all. */
	snprintf(p, sizeof(p), "%s/devices/pci0000:00/0000:02:00.0/vfio-dev/vfio1",
		 it_broker.sim.sys);
	ck_assert_int_eq(rmdir(p), 0);
	snprintf(p, sizeof(p), "%s/devices/pci0000:00/0000:02:00.0/vfio-dev", it_broker.sim.sys);
	ck_assert_int_eq(rmdir(p), 0);
	run_cdev_client(UID_ALICE, 8, NULL, CDEV_ONCE, o);
	ck_assert_int_eq(o->rc, -EOPNOTSUPP);
	ck_assert_msg(strstr(o->message, "0000:02:00.0 has no VFIO device cdev") &&
			      strstr(o->message, "CONFIG_VFIO_DEVICE_CDEV"),
		      "%s", o->message);
	outcome_free(o);
}
END_TEST

START_TEST(test_cdev_lease_sends_the_iommufd_and_one_cdev_per_endpoint_never_the_bridge)
{
	struct outcome *o = outcome_new();

	run_cdev_client(UID_ALICE, 0, "0000:05:02.0", CDEV_ONCE, o);
	ck_assert_msg(o->rc == 0, "%s: %s", o->code, o->message);
	ck_assert_int_eq(o->value, 9);
	ck_assert_str_eq(o->text, "iommufd=iommu reused=0 0000:05:01.0=vfio/devices/vfio2 "
				  "0000:05:02.0=vfio/devices/vfio3");
	outcome_free(o);
}
END_TEST

START_TEST(test_one_holders_cdev_leases_share_one_iommufd)
{
	struct outcome *o = outcome_new();

	run_cdev_client(UID_ALICE, 7, NULL, CDEV_TWICE, o);
	ck_assert_msg(o->rc == 0, "%s: %s", o->code, o->message);
	ck_assert_msg(o->value == 1, "the second lease's iommufd is not the first one's, resent");
	outcome_free(o);
}
END_TEST

START_TEST(test_a_group_held_through_cdev_refuses_the_group_path_naming_the_cdev_path)
{
	struct outcome *mine = outcome_new();
	struct cdev_client c;

	cdev_client_spawn(&c, 7, CDEV_HOLD);

	/* Bob, whom policy allows group 7, asks through the group path. */
	{
		struct client_args bob = {
			.socket = it_broker.socket, .group = 7, .out = mine, .mode = HOLD_NONE};

		run_as(UID_BOB, 0, client_lease, &bob);
		ck_assert_int_eq(mine->rc, -EBUSY);
		ck_assert_msg(
			strstr(mine->message, "group 7 is held by uid 2000 through the cdev path"),
			"%s", mine->message);
	}
	signal_pipe_send(&c.go, 'g');
	ck_assert_int_eq(wait_exit(c.pid), 0);

	/* The holder itself, asking for the other path of a group it holds. */
	run_cdev_client(UID_ALICE, 7, NULL, CDEV_THEN_GROUP_PATH, mine);
	ck_assert_int_eq(mine->rc, -EBUSY);
	ck_assert_msg(strstr(mine->message, "you already hold group 7, through the cdev path"),
		      "%s", mine->message);
	outcome_free(c.o);
	outcome_free(mine);
}
END_TEST

START_TEST(test_a_group_held_through_the_group_path_refuses_cdev_naming_the_group_path)
{
	struct outcome *h = outcome_new(), *o = outcome_new();
	struct signal_pipe ready, go;
	pid_t pid;

	pid = spawn_holder(it_broker.socket, UID_ALICE, 7, HOLD_UNTIL_GO, h, &ready, &go);
	run_cdev_client(UID_ALICE, 7, NULL, CDEV_ONCE, o);
	ck_assert_int_eq(o->rc, -EBUSY);
	ck_assert_msg(strstr(o->message, "held by uid 2000 through the legacy group path"), "%s",
		      o->message);
	signal_pipe_send(&go, 'g');
	ck_assert_int_eq(wait_exit(pid), 0);
	outcome_free(h);
	outcome_free(o);
}
END_TEST

START_TEST(test_merging_cdev_leases_is_refused_as_the_group_paths_operation)
{
	struct outcome *o = outcome_new();

	run_cdev_client(UID_ALICE, 7, NULL, CDEV_THEN_MERGE, o);
	ck_assert_int_eq(o->rc, -EINVAL);
	ck_assert_str_eq(o->code, "bad-request");
	ck_assert_msg(strstr(o->message, "group 7 is leased through the cdev path"), "%s",
		      o->message);
	outcome_free(o);
}
END_TEST

static bool no_leases(void *arg)
{
	(void)arg;
	return admin_count_leases() == 0;
}

START_TEST(test_a_cdev_lease_ends_with_its_holder_and_the_group_is_free_for_either_path)
{
	struct outcome *o = outcome_new(), *again = outcome_new();
	struct vfiobroker_lease l;

	run_cdev_client(UID_ALICE, 7, NULL, CDEV_ONCE, o);
	ck_assert_msg(o->rc == 0, "%s: %s", o->code, o->message);
	ck_assert(wait_until(no_leases, NULL));
	ck_assert(!admin_find_lease(7, &l));
	run_cdev_client(UID_ALICE, 7, NULL, CDEV_ONCE, again);
	ck_assert_msg(again->rc == 0, "%s: %s", again->code, again->message);
	ck_assert(wait_until(no_leases, NULL));
	outcome_free(o);
	outcome_free(again);
}
END_TEST

/*
 * A group of two endpoints leased by cdev: released with one cdev still
 * open (the second, not the lease's first file), the lease stays, and the
 * group stays busy; it ends when that one closes too.
 */
START_TEST(test_a_cdev_lease_of_two_endpoints_ends_only_when_both_cdevs_are_closed)
{
	struct outcome *other = outcome_new();
	struct vfiobroker_lease l;
	struct cdev_client c;

	cdev_client_spawn(&c, 9, CDEV_KEEP_LAST);
	ck_assert_str_eq(c.o->text, "iommufd=iommu reused=0 0000:05:01.0=vfio/devices/vfio2 "
				    "0000:05:02.0=vfio/devices/vfio3");
	/* One of two closed: the release did not end the lease, and nobody else gets it. */
	ck_assert_int_eq(c.o->value, 0);
	ck_assert_msg(admin_find_lease(9, &l), "the lease ended with one cdev still open");
	ck_assert_str_eq(l.state, "releasing");
	run_cdev_client(UID_ALICE, 9, NULL, CDEV_ONCE, other);
	ck_assert_int_eq(other->rc, -EBUSY);
	ck_assert_msg(strstr(other->message, "group 9 was released but is still open in pid"), "%s",
		      other->message);

	/* Both closed: the lease ends, with its holder still running. */
	signal_pipe_send(&c.go, 'g');
	ck_assert_int_eq(signal_pipe_wait(&c.ready), 'C');
	ck_assert(wait_until(no_leases, NULL));
	signal_pipe_send(&c.go, 'g');
	ck_assert_int_eq(wait_exit(c.pid), 0);
	outcome_free(c.o);
	outcome_free(other);
}
END_TEST

static bool lease_9_is_held_by(void *arg)
{
	struct vfiobroker_lease l;

	return admin_find_lease(9, &l) && l.pid == *(pid_t *)arg;
}

/*
 * The holder exits and leaves a child with only the second cdev of two: the
 * lease passes to that child, as a group lease passes to a child that has
 * the group file, and ends when it exits.
 */
START_TEST(test_a_child_holding_only_the_second_cdev_inherits_the_cdev_lease)
{
	struct outcome *other = outcome_new();
	struct cdev_client c;
	pid_t child;

	cdev_client_spawn(&c, 9, CDEV_CHILD_KEEPS_LAST);
	child = (pid_t)c.o->value;
	ck_assert_int_eq(wait_exit(c.pid), 0);
	ck_assert_msg(wait_until(lease_9_is_held_by, &child),
		      "the lease did not pass to pid %d, which has its second cdev", (int)child);
	run_cdev_client(UID_ALICE, 9, NULL, CDEV_ONCE, other);
	ck_assert_int_eq(other->rc, -EBUSY);
	ck_assert_msg(strstr(other->message, "still open in pid"), "%s", other->message);
	signal_pipe_send(&c.go, 'g');
	ck_assert(wait_until(no_leases, NULL));
	outcome_free(c.o);
	outcome_free(other);
}
END_TEST

START_TEST(test_hard_removal_of_a_cdev_lease_kills_its_holder)
{
	struct cdev_client c;
	char msg[512];
	int status;

	cdev_client_spawn(&c, 7, CDEV_HOLD);
	ck_assert_int_eq(admin_remove(7, true, 0, msg, sizeof(msg)), 0);
	status = wait_exit(c.pid);
	ck_assert_msg(status == 128 + SIGKILL, "holder ended with %d, not killed", status);
	ck_assert(wait_until(no_leases, NULL));
	outcome_free(c.o);
}
END_TEST

START_TEST(test_soft_removal_of_a_cdev_lease_is_honoured_by_a_cooperating_holder)
{
	struct cdev_client c;

	cdev_client_spawn(&c, 7, CDEV_COOPERATE);
	ck_assert_int_eq(admin_remove(7, false, 5000, NULL, 0), 0);
	ck_assert_int_eq(wait_exit(c.pid), 0);
	/* The holder saw remove-requested, closed the cdevs and the iommufd, and released. */
	ck_assert_int_eq(c.o->value, 1);
	ck_assert_int_eq(admin_count_leases(), 0);
	outcome_free(c.o);
}
END_TEST

/* valgrind 3.19 has no pidfd_getfd: nothing is restored (as for the restart suite). */
static bool restore_runs_here(const char *test)
{
	if (!getenv("VB_VALGRIND"))
		return true;
	printf("NOTE: %s: no restore under valgrind; not run\n", test);
	return false;
}

/*
 * The set-up the restart tests share: Alice's client holds its cdev lease
 * (cdev_client_spawn) while the broker crashes, starts again and logs that
 * it restored the lease.
 */
static void cdev_restart_begin(struct cdev_client *c, unsigned group, int mode)
{
	char restored[64];

	cdev_client_spawn(c, group, mode);
	it_broker_crash_and_restart();
	snprintf(restored, sizeof(restored), "Restored the lease of group %u", group);
	ck_assert(broker_log_wait(&it_broker, restored));
}

START_TEST(test_a_cdev_lease_is_known_again_after_the_broker_restarts)
{
	if (!restore_runs_here(__func__))
		return;
	struct outcome *bob = outcome_new();
	struct client_args b = {.socket = it_broker.socket, .group = 7, .out = bob};
	struct cdev_client c;

	cdev_restart_begin(&c, 7, CDEV_HOLD);

	/* Restored as a cdev lease: busy says so, and the lease still ends with its holder. */
	run_as(UID_BOB, 0, client_lease, &b);
	ck_assert_int_eq(bob->rc, -EBUSY);
	ck_assert_msg(strstr(bob->message, "held by uid 2000 through the cdev path"), "%s",
		      bob->message);
	signal_pipe_send(&c.go, 'g');
	ck_assert_int_eq(wait_exit(c.pid), 0);
	ck_assert(wait_until(no_leases, NULL));
	outcome_free(c.o);
	outcome_free(bob);
}
END_TEST

START_TEST(test_after_a_restart_a_cdev_lease_of_two_endpoints_still_ends_only_with_both)
{
	if (!restore_runs_here(__func__))
		return;
	struct vfiobroker_lease l;
	struct cdev_client c;

	cdev_restart_begin(&c, 9, CDEV_RESTART_KEEP_LAST);

	/* The restarted broker took both cdevs back: closing the first ends nothing. */
	signal_pipe_send(&c.go, 'g');
	ck_assert_int_eq(signal_pipe_wait(&c.ready), 'L');
	ck_assert_int_eq(c.o->value, 0);
	ck_assert_msg(admin_find_lease(9, &l), "the lease ended with one cdev still open");
	ck_assert_str_eq(l.state, "releasing");
	signal_pipe_send(&c.go, 'g');
	ck_assert_int_eq(signal_pipe_wait(&c.ready), 'C');
	ck_assert(wait_until(no_leases, NULL));
	signal_pipe_send(&c.go, 'g');
	ck_assert_int_eq(wait_exit(c.pid), 0);
	outcome_free(c.o);
}
END_TEST

START_TEST(test_after_a_restart_a_holders_next_cdev_lease_reuses_its_iommufd)
{
	if (!restore_runs_here(__func__))
		return;
	struct cdev_client c;

	cdev_restart_begin(&c, 7, CDEV_RESTART_TWICE);
	signal_pipe_send(&c.go, 'g');
	ck_assert_int_eq(wait_exit(c.pid), 0);
	ck_assert_msg(c.o->rc == 0, "%s: %s", c.o->code, c.o->message);
	ck_assert_msg(c.o->value == 1,
		      "the lease after the restart did not resend the holder's "
		      "iommufd (value %d)",
		      c.o->value);
	ck_assert(wait_until(no_leases, NULL));
	outcome_free(c.o);
}
END_TEST

START_TEST(test_list_json_says_which_paths_each_device_takes)
{
	struct cmd_result r;
	const char *args[] = {"list", "--json", NULL};
	int out, err;
	pid_t pid = vfioctl_spawn(UID_ALICE, &out, &err, args);

	cmd_finish(&r, pid, out, err);
	ck_assert_msg(r.status == 0, "%s", r.err);
	/* Each device on vfio-pci with a cdev; 03:00.0 on its host driver and the bridge take none.
	 */
	{
		struct json_object *o = json_tokener_parse(r.out), *groups;
		int with_paths = 0;

		ck_assert(o && json_object_object_get_ex(o, "groups", &groups));
		for (size_t i = 0; i < json_object_array_length(groups); i++) {
			struct json_object *g = json_object_array_get_idx(groups, i), *devs;

			ck_assert(json_object_object_get_ex(g, "devices", &devs));
			for (size_t k = 0; k < json_object_array_length(devs); k++) {
				struct json_object *d = json_object_array_get_idx(devs, k), *v;
				const char *addr;

				json_object_object_get_ex(d, "address", &v);
				addr = json_object_get_string(v);
				if (!json_object_object_get_ex(d, "paths", &v))
					continue;
				with_paths++;
				ck_assert_msg(strcmp(addr, "0000:03:00.0") != 0 &&
						      strcmp(addr, "0000:04:00.0") != 0,
					      "%s has paths", addr);
				ck_assert_str_eq(json_object_get_string(v), "group,cdev");
			}
		}
		ck_assert_int_eq(with_paths, 4);
		json_object_put(o);
	}
}
END_TEST

START_TEST(test_run_cdev_replaces_placeholders_and_exports_the_fd_map)
{
	struct cmd_result r;
	/* The command shows what it got: its arguments, its environment, and what 3 and 4 are. */
	const char *args[] = {
		"run",
		"--cdev",
		"--device",
		"01:00.0",
		"--",
		"/bin/sh",
		"-c",
		"echo \"args $1 $2 $3\"; echo \"env $VFIO_BROKER_IOMMUFD $VFIO_BROKER_CDEV_FDS\"; "
		"readlink /proc/self/fd/3 /proc/self/fd/4; ls -l /proc/self/fd",
		"sh",
		"fd={fd},iommufd={iommufd}",
		"{fd:0000:01:00.0}",
		"{\"json\": {}}",
		NULL,
	};
	char iommu[PATH_MAX + 16], cdev[PATH_MAX + 32];
	int out, err;
	pid_t pid = vfioctl_spawn(UID_ALICE, &out, &err, args);

	cmd_finish(&r, pid, out, err);
	ck_assert_msg(r.status == 0, "status %d: %s", r.status, r.err);
	ck_assert_msg(strstr(r.out, "args fd=4,iommufd=3 4 {\"json\": {}}\n"), "%s", r.out);
	ck_assert_msg(strstr(r.out, "env 3 0000:01:00.0=4\n"), "%s", r.out);
	snprintf(iommu, sizeof(iommu), "%s/iommu\n", it_broker.sim.dev);
	snprintf(cdev, sizeof(cdev), "%s/vfio/devices/vfio0\n", it_broker.sim.dev);
	ck_assert_msg(strstr(r.out, iommu) && strstr(r.out, cdev), "%s", r.out);
	/*
	 * Nothing else of vfioctl's leaked: no broker connection, no other file of the
	 * tree (the harness's own descriptors, pipes and /dev/null, may be there).
	 */
	ck_assert_msg(!strstr(r.out, "socket:"), "%s", r.out);
	{
		int n = 0;

		for (const char *q = r.out; (q = strstr(q, " -> /tmp/vbsim")); q++)
			n++;
		ck_assert_msg(n == 2, "%d files of the tree inherited: %s", n, r.out);
	}
}
END_TEST

START_TEST(test_run_cdev_refuses_an_unknown_placeholder_and_runs_nothing)
{
	struct cmd_result r;
	const char *args[] = {"run", "--cdev", "--group", "9", "--", "/bin/echo", "{fd}", NULL};
	const char *unknown[] = {"run", "--cdev",    "--group", "7",
				 "--",	"/bin/echo", "{iommu}", NULL};
	int out, err;
	pid_t pid = vfioctl_spawn(UID_ALICE, &out, &err, args);

	cmd_finish(&r, pid, out, err);
	ck_assert_int_eq(r.status, 2);
	ck_assert_msg(strstr(r.err, "{fd} stands for the one device of a lease, but this one "
				    "has 2: name one of {fd:0000:05:01.0}, {fd:0000:05:02.0}"),
		      "%s", r.err);
	ck_assert_str_eq(r.out, "");

	pid = vfioctl_spawn(UID_ALICE, &out, &err, unknown);
	cmd_finish(&r, pid, out, err);
	ck_assert_int_eq(r.status, 2);
	ck_assert_msg(strstr(r.err, "{iommu} is not a placeholder vfioctl knows"), "%s", r.err);
	ck_assert(wait_until(no_leases, NULL));
}
END_TEST

/*
 * vfioctl lease --cdev: the same descriptors and placeholders as run --cdev,
 * but vfioctl stays the command's parent and the lease's holder, and
 * releases the lease when the command exits.
 */
START_TEST(test_lease_cdev_keeps_vfioctl_as_the_holder_and_replaces_placeholders)
{
	const char *args[] = {
		"lease",
		"--cdev",
		"7",
		"--",
		"/bin/sh",
		"-c",
		"echo \"pids $PPID $$ args $1 env $VFIO_BROKER_CDEV_FDS\"; exec sleep 30",
		"sh",
		"{iommufd}:{fd}",
		NULL};
	struct vfiobroker_lease l;
	struct cmd_result r;
	char line[256] = "", args_seen[64] = "", env_seen[128] = "";
	int out, err, ppid = 0, self = 0;
	size_t len = 0;
	pid_t pid = vfioctl_spawn(UID_ALICE, &out, &err, args);

	/* The first line, while the command runs. */
	while (len + 1 < sizeof(line) && !strchr(line, '\n')) {
		ssize_t n = read(out, line + len, sizeof(line) - 1 - len);

		if (n <= 0)
			break;
		len += (size_t)n;
		line[len] = '\0';
	}
	ck_assert_msg(sscanf(line, "pids %d %d args %63s env %127s", &ppid, &self, args_seen,
			     env_seen) == 4,
		      "%s", line);
	ck_assert_str_eq(args_seen, "3:4");
	ck_assert_str_eq(env_seen, "0000:01:00.0=4");
	/* vfioctl, the command's parent, holds the lease; the command is its child. */
	ck_assert_int_eq(ppid, pid);
	ck_assert_msg(admin_find_lease(7, &l), "no lease while the command runs");
	ck_assert_int_eq(l.pid, pid);
	ck_assert_int_eq(kill(self, SIGTERM), 0);
	cmd_finish(&r, pid, out, err);
	ck_assert_msg(r.status == 128 + SIGTERM, "status %d: %s", r.status, r.err);
	/* vfioctl released it when the command exited, and is gone itself. */
	ck_assert(wait_until(no_leases, NULL));
}
END_TEST

Suite *suite_cdev(void)
{
	Suite *s = suite_create("cdev");
	TCase *none = tcase_create("no-iommufd"), *t = tcase_create("cdev");

	tcase_add_checked_fixture(none, it_broker_setup, it_broker_teardown);
	tcase_add_test(none,
		       test_cdev_lease_on_a_kernel_without_iommufd_is_unsupported_and_names_it);
	suite_add_tcase(s, none);

	tcase_add_checked_fixture(t, cdev_setup, it_broker_teardown);
	tcase_add_test(
		t, test_cdev_lease_of_a_device_without_a_vfio_cdev_names_config_vfio_device_cdev);
	tcase_add_test(
		t, test_cdev_lease_sends_the_iommufd_and_one_cdev_per_endpoint_never_the_bridge);
	tcase_add_test(t, test_one_holders_cdev_leases_share_one_iommufd);
	tcase_add_test(t,
		       test_a_group_held_through_cdev_refuses_the_group_path_naming_the_cdev_path);
	tcase_add_test(t,
		       test_a_group_held_through_the_group_path_refuses_cdev_naming_the_group_path);
	tcase_add_test(t, test_merging_cdev_leases_is_refused_as_the_group_paths_operation);
	tcase_add_test(
		t, test_a_cdev_lease_ends_with_its_holder_and_the_group_is_free_for_either_path);
	tcase_add_test(t, test_a_cdev_lease_of_two_endpoints_ends_only_when_both_cdevs_are_closed);
	tcase_add_test(t, test_a_child_holding_only_the_second_cdev_inherits_the_cdev_lease);
	tcase_add_test(t, test_hard_removal_of_a_cdev_lease_kills_its_holder);
	tcase_add_test(t, test_soft_removal_of_a_cdev_lease_is_honoured_by_a_cooperating_holder);
	tcase_add_test(t, test_a_cdev_lease_is_known_again_after_the_broker_restarts);
	tcase_add_test(
		t, test_after_a_restart_a_cdev_lease_of_two_endpoints_still_ends_only_with_both);
	tcase_add_test(t, test_after_a_restart_a_holders_next_cdev_lease_reuses_its_iommufd);
	tcase_add_test(t, test_list_json_says_which_paths_each_device_takes);
	tcase_add_test(t, test_run_cdev_replaces_placeholders_and_exports_the_fd_map);
	tcase_add_test(t, test_run_cdev_refuses_an_unknown_placeholder_and_runs_nothing);
	tcase_add_test(t, test_lease_cdev_keeps_vfioctl_as_the_holder_and_replaces_placeholders);
	suite_add_tcase(s, t);
	return s;
}
