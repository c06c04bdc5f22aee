/* SPDX-License-Identifier: MIT */
#include "broker/closer.h"
#include "common/cleanup.h"
#include "common/list.h"

#include <errno.h>
#include <linux/capability.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

/*
 * Packets discarded from a closing socket before giving up and handing it
 * to the thread. A client that has queued more is treated as one that sent
 * a descriptor: its close may cost what it likes, off the loop.
 */
#define CLOSER_MAX_DRAIN 64

struct closer_item {
	struct list_node link;
	int fd;
	uid_t uid;
};

struct closer {
	pthread_mutex_t lock;
	/* Under lock: */
	struct list_node queue;
	size_t n_queued;
	bool running; /* a thread is working on the queue; it exits when it is empty */
	bool busy;    /* the thread is in close() of busy_uid's socket */
	uid_t busy_uid;
	bool stopping;	/* closer_free was called: the thread takes nothing more */
	bool abandoned; /* ... while the thread was busy: the thread frees cl */
	size_t saturated_at;
};

static void closer_destroy(struct closer *cl)
{
	while (!list_is_empty(&cl->queue)) {
		struct closer_item *it = container_of(cl->queue.next, struct closer_item, link);

		/* Left open: the process is exiting, and the kernel closes without lingering. */
		list_unlink(&it->link);
		free(it);
	}
	pthread_mutex_destroy(&cl->lock);
	free(cl);
}

/*
 * On the thread: receive what is still queued on fd, without a control
 * buffer, then close fd. The kernel drops the descriptors of each packet
 * in this thread's recvmsg() (they never enter the broker's table), so
 * this is where a client's costly close runs. Emptying the queue first
 * also makes the peer read the broker's last reply and then the end of
 * the stream, not ECONNRESET.
 */
static void closer_drain_and_close(int fd)
{
	for (;;) {
		char byte;
		struct iovec iov = {.iov_base = &byte, .iov_len = 1};
		struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
		ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		/* SO_PASSCRED: every packet has credentials that do not fit, MSG_CTRUNC. */
		if (n < 0 || !(msg.msg_flags & MSG_CTRUNC))
			break;
	}
	close(fd);
}

/* This thread only closes: it needs no privilege, whatever the broker keeps. */
static void closer_drop_privileges(void)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];

	memset(data, 0, sizeof(data));
	/* capset() changes the calling thread's sets only. Failing, it keeps what it had. */
	(void)syscall(SYS_capset, &hdr, data);
}

/* The thread: close what is queued, one socket at a time, and exit once nothing is. */
static void *closer_main(void *arg)
{
	struct closer *cl = arg;

	closer_drop_privileges();
	pthread_mutex_lock(&cl->lock);
	while (!cl->stopping && !list_is_empty(&cl->queue)) {
		struct closer_item *it = container_of(cl->queue.next, struct closer_item, link);
		int fd = it->fd;

		list_unlink(&it->link);
		cl->n_queued--;
		cl->busy = true;
		cl->busy_uid = it->uid;
		free(it);
		pthread_mutex_unlock(&cl->lock);

		closer_drain_and_close(fd);

		pthread_mutex_lock(&cl->lock);
		cl->busy = false;
	}
	cl->running = false;
	if (cl->abandoned) {
		pthread_mutex_unlock(&cl->lock);
		closer_destroy(cl);
		return NULL;
	}
	pthread_mutex_unlock(&cl->lock);
	return NULL;
}

/*
 * Start the thread if none is running; cl->lock held. Threads come and go
 * with the work: a broker no client sent a descriptor to stays one thread.
 */
static void closer_start_locked(struct closer *cl)
{
	pthread_attr_t attr;
	sigset_t all, saved;
	pthread_t thread;
	int r;

	if (cl->running || cl->stopping)
		return;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	/* The thread takes no signal: SIGTERM and friends stay with the event loop's signalfd. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &saved);
	r = pthread_create(&thread, &attr, closer_main, cl);
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
	pthread_attr_destroy(&attr);
	/* On failure the sockets wait in the queue (counted) until the next try. */
	if (r == 0)
		cl->running = true;
}

int closer_new(size_t saturated_at, struct closer **ret)
{
	struct closer *cl = calloc(1, sizeof(*cl));

	if (!cl)
		return -ENOMEM;
	list_init(&cl->queue);
	cl->saturated_at = saturated_at;
	pthread_mutex_init(&cl->lock, NULL);
	*ret = cl;
	return 0;
}

struct closer *closer_free(struct closer *cl)
{
	bool running;

	if (!cl)
		return NULL;
	pthread_mutex_lock(&cl->lock);
	cl->stopping = true;
	running = cl->running;
	cl->abandoned = running;
	pthread_mutex_unlock(&cl->lock);
	/* Stuck in a client's close: the thread frees cl if that returns before the exit. */
	if (!running)
		closer_destroy(cl);
	return NULL;
}

/*
 * Whether closing fd now is certain to be quick: nothing more can be queued
 * on it, and nothing queued carries a file descriptor. Queued packets are
 * looked at without taking their descriptors (MSG_PEEK, and a control
 * buffer with room for the credentials only, so that MSG_CTRUNC means
 * "descriptors attached" and the kernel drops only its own extra references)
 * and discarded, at most CLOSER_MAX_DRAIN of them.
 */
static bool closer_socket_is_clean(int fd)
{
	/*
	 * fd has SO_PASSCRED, inherited from the listening socket (server.c), so
	 * every packet comes with credentials: a packet is told from the end.
	 * After the shutdown the peer's sendmsg() fails with EPIPE: the queue can
	 * only shrink.
	 */
	if (shutdown(fd, SHUT_RDWR) < 0)
		return false;
	for (int i = 0; i < CLOSER_MAX_DRAIN; i++) {
		union {
			struct cmsghdr align;
			char buf[CMSG_SPACE(sizeof(struct ucred))];
		} control;
		struct msghdr msg = {.msg_control = control.buf,
				     .msg_controllen = sizeof(control.buf)};
		ssize_t n = recvmsg(fd, &msg, MSG_PEEK | MSG_DONTWAIT);

		if (n < 0)
			return errno == EAGAIN || errno == ENOTCONN;
		if (msg.msg_flags & MSG_CTRUNC)
			return false;
		if (!CMSG_FIRSTHDR(&msg))
			return true; /* the end: the queue is empty */
		/* Anything but credentials (a socket without SO_PASSCRED): not discarded here. */
		if (CMSG_FIRSTHDR(&msg)->cmsg_type != SCM_CREDENTIALS)
			return false;
		msg.msg_controllen = sizeof(control.buf);
		msg.msg_flags = 0;
		if (recvmsg(fd, &msg, MSG_DONTWAIT) < 0)
			return false;
	}
	return false;
}

void closer_close_socket(struct closer *cl, int fd, uid_t uid)
{
	struct closer_item *it;

	if (fd < 0)
		return;
	if (!cl || closer_socket_is_clean(fd)) {
		close(fd);
		return;
	}
	it = malloc(sizeof(*it));
	if (!it)
		return; /* leaked rather than closed here: a descriptor, never a frozen loop */
	it->fd = fd;
	it->uid = uid;
	pthread_mutex_lock(&cl->lock);
	list_append(&cl->queue, &it->link);
	cl->n_queued++;
	closer_start_locked(cl);
	pthread_mutex_unlock(&cl->lock);
}

void closer_close_ended_socket(int fd)
{
	/* No shutdown, no peek: with nothing queued there is nothing to linger on. */
	if (fd >= 0)
		close(fd);
}

size_t closer_pending(struct closer *cl, uid_t uid)
{
	const struct closer_item *it;
	size_t n = 0;

	if (!cl)
		return 0;
	pthread_mutex_lock(&cl->lock);
	list_for_each_entry(it, &cl->queue, link) if (it->uid == uid) n++;
	if (cl->busy && cl->busy_uid == uid)
		n++;
	pthread_mutex_unlock(&cl->lock);
	return n;
}

bool closer_saturated(struct closer *cl)
{
	bool full;

	if (!cl)
		return false;
	pthread_mutex_lock(&cl->lock);
	full = cl->n_queued + (cl->busy ? 1 : 0) >= cl->saturated_at;
	pthread_mutex_unlock(&cl->lock);
	return full;
}
