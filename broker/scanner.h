/* SPDX-License-Identifier: MIT */
/*
 * The holders scan off the event loop (issue 13, items 5 and 9). At start-up,
 * before the broker drops its capabilities, it forks small scanner processes
 * (the same binary: scanner_child_main below), each connected to it by a
 * SOCK_SEQPACKET socket pair. A scanner keeps only CAP_SYS_PTRACE and
 * CAP_DAC_READ_SEARCH, which reading other users' /proc/PID/fd needs, installs
 * its own seccomp filter, and answers one request at a time: "which processes
 * have a descriptor of this file" -> their pids, with a pidfd of each passed
 * back (SCM_RIGHTS). The broker then drops both capabilities itself.
 *
 * A scanner enforces its own budget: it scans in slices of SCANNER_SLICE_USEC
 * of its CPU time and sleeps three times as long after each (a quarter of one
 * CPU at most), gives up a scan after SCANNER_SCAN_MAX_CPU_USEC of CPU time
 * (-ETIME), and names at most SCANNER_MAX_PIDS processes per scan. The
 * broker's side is asynchronous: a request is queued, sent when the scanner is
 * free, and its answer comes through the event loop.
 *
 * Failure is closed: a scan that gets no answer is an error for the caller
 * (-ECHILD: the scanner died during it; -ENOTCONN: none is left), never "no
 * holders". The broker cannot start a scanner once it is sandboxed (no fork,
 * no CAP_SYS_PTRACE), so it starts SCANNER_PROCESSES at once and uses the
 * next when one dies: that bounds the restarts. The one whose scan was
 * running when it died does not get that scan again, so a request that kills
 * scanners costs one each, not all of them.
 */
#pragma once

#include "broker/holders.h"
#include "broker/pidref.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#define SCANNER_MAX_PIDS	  64
#define SCANNER_SLICE_USEC	  (50 * 1000)
#define SCANNER_SCAN_MAX_CPU_USEC (10 * 1000 * 1000)
/* One in service and two to replace it: started before the sandbox, all of them. */
#define SCANNER_PROCESSES 3

struct scanner;
struct scanner_job;

/*
 * A scan's answer: r is 0 with refs[n] (borrowed: copy what is kept), or
 * -errno with n 0. cpu_usec: the scanner's CPU time for it, for the caller's
 * budget. The job is freed after the call.
 */
typedef void (*scanner_done_fn)(int r, const struct pidref *refs, size_t n, uint64_t cpu_usec,
				void *userdata);
/* The scan ran out of its first slice and goes on in the scanner (once per job). */
typedef void (*scanner_sliced_fn)(void *userdata);

/*
 * scanner_new forks the scanner processes; sandbox: each drops to its two
 * capabilities and installs its filter (the broker's --no-sandbox keeps them
 * as they are). Call it before anything secret is loaded and before the
 * broker's own sandbox; the event loop e watches the answers.
 */
int scanner_new(sd_event *e, bool sandbox, struct scanner **ret);
/* Ends the scanner processes (closing their sockets) and fails no job: call with none left. */
struct scanner *scanner_free(struct scanner *s);

/*
 * scanner_submit queues a scan for target, naming at most max (<=
 * SCANNER_MAX_PIDS) processes. done is called later, from the event loop,
 * never from within scanner_submit; sliced (may be NULL) when the scan
 * takes more than one slice. Returns -ENOTCONN at once when no scanner is
 * left. *ret: the job, valid until done is called or it is cancelled.
 */
int scanner_submit(struct scanner *s, const struct holders_target *target, size_t max,
		   scanner_done_fn done, scanner_sliced_fn sliced, void *userdata,
		   struct scanner_job **ret);
/* Forget j: its done is never called (the scanner's answer, if one comes, is dropped). */
void scanner_cancel(struct scanner *s, struct scanner_job *j);
