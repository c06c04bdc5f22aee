/* SPDX-License-Identifier: MIT */
#include "broker/status.h"
#include "broker/lease.h"
#include "broker/log.h"
#include "broker/policy_store.h"
#include "broker/server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>

/*
 * STATUS= changes with every lease and connection, but formatting and sending it each time
 * cost as much as logging the lease. So: nothing at all without $NOTIFY_SOCKET (sd_notify()
 * would format the text and then drop it), and with it at most one datagram per
 * STATUS_INTERVAL_USEC, only when the text changed.
 */
#define STATUS_INTERVAL_USEC (1000 * 1000)

struct status {
	struct broker *broker;
	bool enabled; /* $NOTIFY_SOCKET is set */
	uint64_t last_usec;
	sd_event_source *timer; /* NULL until a change came within the interval */
	char text[128];
};

int status_new(struct broker *b, struct status **ret)
{
	const char *e = getenv("NOTIFY_SOCKET");
	struct status *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->broker = b;
	s->enabled = e && *e;
	*ret = s;
	return 0;
}

struct status *status_free(struct status *s)
{
	if (!s)
		return NULL;
	sd_event_source_disable_unref(s->timer);
	free(s);
	return NULL;
}

static void status_send(struct status *s, uint64_t now)
{
	struct broker *b = s->broker;
	const struct policy *p = b->policy ? policy_store_get(b->policy) : NULL;
	char text[sizeof(s->text)];

	s->last_usec = now;
	snprintf(text, sizeof(text),
		 "STATUS=%zu connections, %zu leases; policy: %zu rules in %zu files",
		 server_count_connections(b->server), lease_table_count(b->leases),
		 p ? policy_rule_count(p) : 0, p ? policy_file_count(p) : 0);
	if (strcmp(text, s->text) == 0)
		return;
	memcpy(s->text, text, sizeof(text));
	(void)sd_notify(0, text);
}

static int status_on_timer(sd_event_source *src, uint64_t usec, void *userdata)
{
	struct status *s = userdata;

	if (s->broker->server && s->broker->leases)
		status_send(s, usec);
	return 0;
}

void status_update(struct status *s)
{
	struct broker *b = s ? s->broker : NULL;
	int state = SD_EVENT_OFF;
	uint64_t now, due;

	if (!s || !s->enabled || !b->server || !b->leases)
		return;
	if (s->timer && sd_event_source_get_enabled(s->timer, &state) >= 0 && state != SD_EVENT_OFF)
		return; /* the timer sends whatever the text is by then */
	if (sd_event_now(b->event, CLOCK_MONOTONIC, &now) < 0) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		now = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
	}
	due = s->last_usec + STATUS_INTERVAL_USEC;
	if (s->last_usec == 0 || now >= due) {
		status_send(s, now);
		return;
	}
	if (s->timer) {
		if (sd_event_source_set_time(s->timer, due) >= 0 &&
		    sd_event_source_set_enabled(s->timer, SD_EVENT_ONESHOT) >= 0)
			return;
	} else if (sd_event_add_time(b->event, &s->timer, CLOCK_MONOTONIC, due, 0, status_on_timer,
				     s) >= 0) {
		return;
	}
	status_send(s, now); /* no timer: better early than never */
}
