// SPDX-License-Identifier: MIT
/*
 * event-holder: lease one IOMMU group through vfio-brokerd and print the
 * broker's events, for the kmod-broker-relay test.
 *
 *   event-holder SOCKET GROUP
 *
 * Prints "LEASED" once the group is leased, then one line per event:
 * "EVENT device-added GROUP BDF" (other events: "EVENT other TYPE GROUP").
 * Exits 0 after the first device-added, 1 after 30 s without one or on an
 * error, 2 on a usage error.  Exiting closes the group file, which ends the
 * lease.
 *
 * Build: cc -Iclient kmod/tests/event-holder.c build/libvfiobroker.a $(pkg-config --libs json-c)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vfiobroker.h"

#define TIMEOUT_MS 30000

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(int argc, char **argv)
{
	struct vfiobroker_event ev;
	struct vfiobroker *b;
	long long deadline;
	unsigned group;
	char *end;
	int fd, r;

	if (argc != 3) {
		fprintf(stderr, "usage: event-holder SOCKET GROUP\n");
		return 2;
	}
	group = (unsigned)strtoul(argv[2], &end, 10);
	if (!*argv[2] || *end) {
		fprintf(stderr, "event-holder: not a group number: %s\n", argv[2]);
		return 2;
	}
	r = vfiobroker_connect(argv[1], &b);
	if (r < 0) {
		fprintf(stderr, "event-holder: connect: %s\n", strerror(-r));
		return 1;
	}
	r = vfiobroker_lease(b, group, &fd);
	if (r < 0) {
		fprintf(stderr, "event-holder: lease %u: %s\n", group, strerror(-r));
		return 1;
	}
	printf("LEASED\n");
	fflush(stdout);

	deadline = now_ms() + TIMEOUT_MS;
	for (;;) {
		struct pollfd p = {.fd = vfiobroker_get_fd(b), .events = POLLIN};
		long long left = deadline - now_ms();

		/* Events may already be queued from the lease call. */
		while ((r = vfiobroker_next_event(b, &ev)) == 0) {
			if (ev.type == VFIOBROKER_EVENT_DEVICE_ADDED) {
				printf("EVENT device-added %u %s\n", ev.group, ev.device);
				return 0;
			}
			printf("EVENT other %d %u\n", (int)ev.type, ev.group);
			fflush(stdout);
		}
		if (r != -EAGAIN) {
			fprintf(stderr, "event-holder: next event: %s\n", strerror(-r));
			return 1;
		}
		if (left <= 0) {
			fprintf(stderr, "event-holder: no device-added within 30 s\n");
			return 1;
		}
		if (poll(&p, 1, (int)left) < 0 && errno != EINTR) {
			fprintf(stderr, "event-holder: poll: %m\n");
			return 1;
		}
	}
}
