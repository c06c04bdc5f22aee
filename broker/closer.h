/* SPDX-License-Identifier: MIT */
/*
 * Closing clients' sockets without ever blocking the event loop.
 *
 * A client can make a close() take as long as it likes: a file's last close
 * runs its release in whichever task drops the last reference, and a TCP
 * socket with SO_LINGER and unsent data to a peer that never reads waits
 * there for the linger time (a FUSE file waits for its server). The broker
 * takes no file descriptors from clients (dispatch.c), but one still in
 * flight in a client's socket is released when the broker closes that
 * socket. So a socket that may hold one is closed here, on a thread of its
 * own, as systemd's asynchronous_close() does; one that provably holds none
 * is closed at once.
 *
 * Everything waiting here holds a descriptor of the broker, so it is
 * counted per uid (the server counts it against the uid's connections) and
 * in all (the server stops accepting while the closer is saturated).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct closer;

/*
 * A closer; saturated_at: how many sockets may wait before
 * closer_saturated(). Its thread starts when a socket must wait and exits
 * when none does (so a broker no client sent a descriptor to is one
 * thread); it drops every capability of its own and runs under the
 * broker's seccomp filter.
 */
int closer_new(size_t saturated_at, struct closer **ret);
/*
 * Stop taking work. A thread still stuck in a close is left to the process
 * exit (the kernel closes without lingering then), so this never waits for
 * a client; sockets still queued are left open for the exit too. Accepts NULL.
 */
struct closer *closer_free(struct closer *cl);

/*
 * closer_close_socket closes fd (taken), a client's AF_UNIX socket accepted
 * from the broker's listening socket (so it has SO_PASSCRED), whose peer
 * has uid (-1: not known). It first stops the peer from queueing more
 * (shutdown) and discards what is queued while no packet carries a file
 * descriptor: if that empties the queue the close is cheap and done here;
 * otherwise fd goes to the closing thread. With cl NULL (start-up, before
 * any client) it closes at once.
 */
void closer_close_socket(struct closer *cl, int fd, uid_t uid);

/*
 * Close fd (taken), a socket of closer_close_socket's kind on which a
 * receive has returned the end of the stream: its queue is empty and the
 * peer can queue nothing more (its sendmsg() fails with EPIPE once it has
 * closed or shut down writing), so the close is cheap and done at once.
 */
void closer_close_ended_socket(int fd);

/* Sockets of uid waiting to be closed (the one being closed included). */
size_t closer_pending(struct closer *cl, uid_t uid);
/* Whether saturated_at sockets or more are waiting. */
bool closer_saturated(struct closer *cl);
