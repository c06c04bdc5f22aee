/* SPDX-License-Identifier: MIT */
/*
 * The STATUS= line systemd shows for the service: connections, leases and
 * the policy in force.
 */
#pragma once

#include "broker/broker.h"

struct status;

/* Sends nothing at all unless $NOTIFY_SOCKET is set (read once, here). */
int status_new(struct broker *b, struct status **ret);
/* Accepts NULL. */
struct status *status_free(struct status *s);

/*
 * status_update refreshes the line after a change. It is throttled: at most
 * one datagram a second, only when the text changed; a change within that
 * second is sent by a timer when it ends. Accepts NULL (before set-up).
 */
void status_update(struct status *s);
