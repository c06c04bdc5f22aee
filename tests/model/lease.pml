/*
 * The lease life cycle of vfio-brokerd as a Promela model (issue 12, item 7):
 * lease, release, holder exit and inheritance, merge and unmerge, soft and
 * hard removal, and a broker killed at any step and started again, which
 * recovers its table from the state file and the kernel (lease_store.c).
 *
 * Run by tests/model/run.sh; properties at the end (ltl) and assertions at
 * the points where a removal is answered. Every transition names, in a
 * comment, the C function that implements it; the C code names the model
 * transition back ("model: NAME").
 *
 * The world is small on purpose, so that it is checked exhaustively:
 *   2 groups, one VFIO container;
 *   clients: alice (C0), bob (C1, a second uid), alice's forked child (H,
 *   alice's uid, which shares every file alice had when it forked);
 *   an administrator issuing soft and hard removals;
 *   the kernel: per group one open file description (the kernel allows one
 *   open of a VFIO group at a time), shared by every process that has a
 *   copy, plus copies in flight in a socket (SCM_RIGHTS);
 *   the broker, which can be killed (MAXCRASH times) at any crash point and
 *   between any two transitions, and is then started again.
 *
 * Abstractions: one broker handler (one sd-event dispatch) is one atomic
 * step, with crash points inside it wherever it changes the kernel before
 * it writes the state file; writing the state file is one step (a
 * journal transaction is one write() that counts only once its commit line
 * is in, see lease_store_record; a rewrite of the whole file is made one by
 * the .leases.tmp/unlink/rename dance, see lease_store_save and it_restart's
 * test of the rename window), and it comes before the transition's reply
 * (it_restart stops the broker at the lease reply's sendmsg and reads the
 * file); a killed process dies at once;
 * pids are never reused (start times are pinned in it_restart); device
 * fds, policy and limits are left out.
 */

#define NG 2 /* groups */
#define C0 0 /* alice, uid A */
#define C1 1 /* bob, uid B */
#define H  2 /* alice's child, uid A */
#define NP 3
#define NOBODY 3 /* no holder known (pid 0 in the state file) */

/* Bits of kref[g]: who has a copy of the group's one open file description. */
#define BIT(p)   (1 << (p))
#define CLIENTS  7  /* any client process */
#define UID_A    5  /* alice and her child */
#define UID_B    2  /* bob */
#define B_BROKER 8  /* the broker's own copy */
#define B_FLIGHT 16 /* in flight in a socket, towards flight_to[g] */
#define UIDOF(p) ((p) == C1 -> 1 : 0)
#define UID_BITS(u) ((u) == 0 -> UID_A : UID_B)

#ifndef MAXCRASH
#define MAXCRASH 1
#endif

mtype = { NONE, HELD, RELEASING, SOFT, HARD };

/* ---- the kernel ---- */
byte kref[NG];
byte flight_to[NG];
bool kcont[NG]; /* the group is attached to the container */
bool alive[NP];
bool forked; /* H exists (alice forks at most once) */

/* ---- the broker's memory ---- */
bool up;
bool recovered;
mtype ls[NG] = NONE; /* lease state */
byte lh[NG] = NOBODY; /* holder */
byte lu[NG]; /* the lease's uid: 0 alice's, 1 bob's (a lease never changes uid) */
bool lc[NG]; /* in the container */
bool cont_nofd; /* the container was restored without the broker's copy of it */
bool pend[NG]; /* check_pending: look for who still has the file */
bool conn[NP]; /* an open connection of the process */

/* ---- the state file ---- */
mtype fs[NG] = NONE;
byte fh[NG] = NOBODY;
byte fu[NG];
bool fc[NG];

/* ---- the administrator's removal ---- */
mtype rm = NONE; /* the broker's pending removal */
byte rm_g;
byte rm_holder; /* the holder when it was asked */
bool adm_waiting; /* the administrator waits for an answer */

/* Scratch variables of the atomic steps: hidden, so not part of the state. */
hidden byte g, gi, gj, pi, ci, si, ki;
hidden byte moved0;

/* ---- what the properties look at ---- */
byte crashes;
bool orphan[NG]; /* dropped at restart as PROTOCOL.md documents: open only in flight */

/* The kernel closes copies of the file; the last one detaches the group from its container. */
inline kclose(g, bits)
{
	kref[g] = kref[g] & ~(bits);
	if
	:: kref[g] == 0 -> kcont[g] = false; orphan[g] = false
	:: else
	fi
}

/* A process dies (exit or SIGKILL): the kernel closes its files and purges its socket. */
inline kdie(p)
{
	alive[p] = false;
	conn[p] = false;
	for (ki : 0 .. NG - 1) {
		kclose(ki, BIT(p));
		if
		:: (kref[ki] & B_FLIGHT) && flight_to[ki] == p -> kclose(ki, B_FLIGHT)
		:: else
		fi
	}
}

/*
 * model: save. lease_table_flush -> hooks_lease_changed -> lease_store_record,
 * which appends the lines of the groups the transition changed: the others
 * are on file as they are already, so it comes to this copy of every group.
 */
inline save()
{
	for (si : 0 .. NG - 1) {
		fs[si] = ls[si];
		fh[si] = lh[si];
		fu[si] = lu[si];
		fc[si] = lc[si]
	}
}

/*
 * model: crash. kill -9 of the broker: its memory and its copies are gone,
 * connections close (requests in flight are abandoned, the waiting
 * administrator is disconnected), the state file stays.
 */
inline crash()
{
	up = false;
	recovered = false;
	crashes++;
	for (ci : 0 .. NG - 1) {
		kclose(ci, B_BROKER);
		ls[ci] = NONE;
		lh[ci] = NOBODY;
		lu[ci] = 0;
		lc[ci] = false;
		pend[ci] = false
	}
	cont_nofd = false;
	conn[C0] = false;
	conn[C1] = false;
	conn[H] = false;
	rm = NONE;
	adm_waiting = false
}

/* A crash point inside a handler: the broker may die here. */
inline maybe_crash()
{
	if
	:: crashes < MAXCRASH -> crash()
	:: true
	fi
}

/* lease_caller_is_holder: the holder, or alice's child while alice (its parent) lives. */
#define is_holder(c, g) (lh[g] == c || (c == H && lh[g] == C0 && alive[C0]))

/*
 * model: end. lease_end -> hooks_lease_ended -> removals_lease_ended: the
 * file is closed; a removal waiting for it is answered.
 */
inline lease_end(g)
{
	ls[g] = NONE;
	lh[g] = NOBODY;
	lu[g] = 0;
	lc[g] = false;
	pend[g] = false;
	if
	:: rm != NONE && rm_g == g ->
		/* soft: released; hard: the holder killed and the group free */
		assert(kref[g] == 0);
		assert(rm == SOFT || rm_holder == NOBODY || !alive[rm_holder]);
		rm = NONE;
		adm_waiting = false
	:: else
	fi
}

/*
 * model: scan. lease_check_open: who has the file of a releasing lease
 * without a holder. A hard removal kills them all (removals_lease_still_open);
 * otherwise the first live one of the lease's uid found inherits the lease.
 */
inline scan(g)
{
	if
	:: rm == HARD && rm_g == g ->
		for (pi : 0 .. NP - 1) {
			if
			:: kref[g] & BIT(pi) -> kdie(pi)
			:: else
			fi
		}
	:: else
	fi;
	/* lease_process_belongs: only a process of the lease's uid inherits */
	if
	:: kref[g] & UID_BITS(lu[g]) & BIT(C0) -> lh[g] = C0
	:: kref[g] & UID_BITS(lu[g]) & BIT(C1) -> lh[g] = C1
	:: kref[g] & UID_BITS(lu[g]) & BIT(H) -> lh[g] = H
	:: (kref[g] & UID_BITS(lu[g])) == 0 -> skip /* wait for the close (model: close) */
	fi
}

/* model: detach. merge_detach_lease (the lease_hooks detach hook). */
inline detach(g)
{
	if
	:: lc[g] ->
		kcont[g] = false;
		lc[g] = false;
		if
		:: !lc[0] && !lc[1] -> cont_nofd = false
		:: else
		fi;
		maybe_crash()
	:: else
	fi
}

/*
 * model: release. lease_release, from a release request
 * (lease_requests_release) or a grant whose reply could not be sent.
 */
inline release(g)
{
	detach(g);
	if
	:: up ->
		kclose(g, B_BROKER);
		ls[g] = RELEASING;
		maybe_crash();
		if
		:: up ->
			if
			:: kref[g] == 0 -> lease_end(g)
			:: else
			fi;
			save()
		:: else
		fi
	:: else
	fi
}

/* model: lease. lease_requests_lease (the open: devnode_open_group; the grant: lease_table_grant). */
inline h_lease(c, g)
{
	if
	:: ls[g] == RELEASING && lh[g] == NOBODY -> scan(g) /* lease_rescan */
	:: else
	fi;
	if
	:: ls[g] != NONE -> skip /* busy: held, or released and still open */
	:: ls[g] == NONE && kref[g] != 0 -> skip /* the kernel: busy, open outside the broker */
	:: ls[g] == NONE && kref[g] == 0 ->
		kref[g] = B_BROKER;
		maybe_crash();
		if
		:: up ->
			ls[g] = HELD;
			lh[g] = c;
			lu[g] = UIDOF(c);
			lc[g] = false;
			save();
			maybe_crash();
			if
			:: up -> /* reply_send_lease: the broker's copy goes out with SCM_RIGHTS */
				kref[g] = kref[g] | B_FLIGHT;
				flight_to[g] = c
			:: else
			fi
		:: else
		fi
	fi
}

/* model: exit. holder_on_exit: the broker sees a holder's pidfd report its exit. */
inline h_exit(p)
{
	for (gi : 0 .. NG - 1) {
		if
		:: lh[gi] == p ->
			if
			:: ls[gi] == HELD ->
				detach(gi);
				if
				:: up -> kclose(gi, B_BROKER); ls[gi] = RELEASING
				:: else
				fi
			:: else
			fi;
			lh[gi] = NOBODY;
			pend[gi] = true
		:: else
		fi
	}
	if
	:: up ->
		maybe_crash();
		if
		:: up ->
			for (gj : 0 .. NG - 1) {
				if
				:: ls[gj] == RELEASING && kref[gj] == 0 -> lease_end(gj) /* lease_table_drain */
				:: else
				fi;
				if
				:: pend[gj] && ls[gj] == RELEASING && lh[gj] == NOBODY -> pend[gj] = false; scan(gj)
				:: else -> pend[gj] = false
				fi
			}
			save()
		:: else
		fi
	:: else
	fi
}

/*
 * model: merge. merge_groups, then lease_requests_merge saves (the table's
 * containers): both groups, one holder, into the one container; the kernel
 * may veto the second (merge_undo).
 */
inline h_merge(c)
{
	if
	:: ls[0] == HELD && ls[1] == HELD && lh[0] == lh[1] && is_holder(c, 0) ->
		if
		:: lc[0] && lc[1] -> skip /* nothing moves */
		:: (lc[0] || lc[1]) && cont_nofd -> skip /* busy: restored without the broker's copy */
		:: !(lc[0] && lc[1]) && !((lc[0] || lc[1]) && cont_nofd) ->
			moved0 = false;
			if
			:: !lc[0] -> kcont[0] = true; moved0 = true; maybe_crash()
			:: else
			fi;
			if
			:: up && !lc[1] ->
				if
				:: kcont[1] = true; maybe_crash()
				:: moved0 -> kcont[0] = false /* the kernel's veto: merge_undo */
				fi
			:: else
			fi;
			if
			:: up && kcont[0] && kcont[1] -> lc[0] = true; lc[1] = true; save()
			:: else /* refused (nothing changed), or the broker died */
			fi
		fi
	:: else -> skip /* not-held, or denied: different holders */
	fi
}

/* model: unmerge. unmerge_group, then lease_requests_unmerge saves. */
inline h_unmerge(c, g)
{
	if
	:: ls[g] == HELD && is_holder(c, g) && lc[g] ->
		kcont[g] = false;
		maybe_crash();
		if
		:: up ->
			lc[g] = false;
			if
			:: !lc[0] && !lc[1] -> cont_nofd = false
			:: else
			fi;
			save()
		:: else
		fi
	:: else -> skip
	fi
}

/* model: release-request. lease_requests_release. */
inline h_release(c, g)
{
	if
	:: ls[g] == HELD && is_holder(c, g) -> release(g)
	:: else -> skip /* not-held; or releasing already: the reply says released false */
	fi
}

/*
 * model: recover. lease_store_recover -> recover_one for each entry, then
 * the save in main.c. The broker takes its copy back (pidfd_getfd) from a
 * process that has the group file, and gives the lease to: the recorded
 * holder, if it is alive and it, or a child of it with its uid, has the
 * file (as recorded); else a process of the lease's uid that has the file,
 * which inherits it releasing, as scan would have; else, the file being
 * open only in another uid, nobody (releasing, no holder: busy until it is
 * closed). With nobody having the file the entry is dropped. A held
 * lease's container is what the kernel says (the host tier's plain files
 * cannot tell, and the record stands there; the model's kernel always can).
 */
#define rec_ok(g) \
	(fh[g] != NOBODY && alive[fh[g]] && \
	 ((kref[g] & BIT(fh[g])) || (fh[g] == C0 && (kref[g] & BIT(H)))))

inline recover()
{
	for (gi : 0 .. NG - 1) {
		if
		:: fs[gi] == NONE -> skip
		:: fs[gi] != NONE && rec_ok(gi) ->
			ls[gi] = fs[gi];
			lh[gi] = fh[gi];
			lu[gi] = fu[gi];
			if
			:: ls[gi] == HELD ->
				kref[gi] = kref[gi] | B_BROKER;
				/*
				 * recover_check_containers: the kernel's answer
				 * (VFIO_GROUP_GET_STATUS), not the record fc[gi], which
				 * a crash between an ioctl and its save leaves behind.
				 */
				lc[gi] = kcont[gi]
			:: else /* releasing: the copy only sets the watch and is closed; no container */
				lc[gi] = false
			fi;
			if
			:: lc[gi] -> cont_nofd = true /* restored without the broker's copy */
			:: else
			fi
		:: fs[gi] != NONE && !rec_ok(gi) && (kref[gi] & UID_BITS(fu[gi])) ->
			/* the heir, of the lease's uid (RECOVER_HEIR) */
			ls[gi] = RELEASING;
			lu[gi] = fu[gi];
			lc[gi] = false;
			if
			:: kref[gi] & UID_BITS(fu[gi]) & BIT(C0) -> lh[gi] = C0
			:: kref[gi] & UID_BITS(fu[gi]) & BIT(C1) -> lh[gi] = C1
			:: kref[gi] & UID_BITS(fu[gi]) & BIT(H) -> lh[gi] = H
			fi
		:: fs[gi] != NONE && !rec_ok(gi) && !(kref[gi] & UID_BITS(fu[gi])) &&
		   (kref[gi] & CLIENTS) ->
			/* open only in another uid (RECOVER_STRANGER) */
			ls[gi] = RELEASING;
			lh[gi] = NOBODY;
			lu[gi] = fu[gi];
			lc[gi] = false
		:: else -> /* dropped (restore-drop) */
			if
			:: (kref[gi] & CLIENTS) == 0 && kref[gi] != 0 -> orphan[gi] = true
			:: else
			fi
		fi
	}
	save();
	recovered = true
}

/* ---- processes ---- */

/*
 * The broker is several processes here, one per source of events (one
 * sd-event source each), so that weak fairness means what it means for
 * sd-event: an event that stays pending is dispatched eventually. Each
 * dispatch is one atomic step; they never interleave.
 */

/* model: start. broker_restore_leases (main.c): a (re)started broker recovers, then saves, before it serves the socket. */
active proctype broker_start()
{
end:
	do
	:: atomic { !up -> up = true; recover() }
	od
}

/* kill -9 of the broker, between any two dispatches (crash points cover the inside). */
active proctype broker_crash()
{
end:
	do
	:: atomic { up && crashes < MAXCRASH -> crash() }
	od
}

/* model: close. lease_table_on_inotify -> lease_table_drain: the last copy of a releasing lease's file closed. */
proctype close_watch(byte cg)
{
end:
	do
	:: atomic { up && ls[cg] == RELEASING && kref[cg] == 0 -> lease_end(cg); save() }
	od
}

/* The exit watch of process p (exit_watch_new in holder_new): model: exit. */
proctype exit_watch(byte p)
{
end:
	do
	:: atomic { up && (lh[0] == p || lh[1] == p) && !alive[p] -> h_exit(p) }
	od
}

/* No reply of c's is in flight: a client sends one request at a time (requests are answered in order). */
#define idle(c) \
	(alive[c] && conn[c] && !((kref[0] & B_FLIGHT) && flight_to[0] == c) && \
	 !((kref[1] & B_FLIGHT) && flight_to[1] == c))

/* A client: lease, receive, close, release, merge, unmerge, reconnect, exit. */
proctype client(byte c)
{
end:
	do
	:: atomic { alive[c] && !conn[c] && up -> conn[c] = true }
	:: atomic { idle(c) -> select(g : 0 .. NG - 1); h_lease(c, g) }
	/* the reply arrives: the fd leaves the socket for the client's table */
	:: atomic { alive[c] && (kref[0] & B_FLIGHT) && flight_to[0] == c -> kref[0] = (kref[0] & ~B_FLIGHT) | BIT(c) }
	:: atomic { alive[c] && (kref[1] & B_FLIGHT) && flight_to[1] == c -> kref[1] = (kref[1] & ~B_FLIGHT) | BIT(c) }
	:: atomic { alive[c] && (kref[0] & BIT(c)) -> kclose(0, BIT(c)) }
	:: atomic { alive[c] && (kref[1] & BIT(c)) -> kclose(1, BIT(c)) }
	:: atomic { idle(c) -> select(g : 0 .. NG - 1); h_release(c, g) }
	:: atomic { idle(c) && c == C0 -> h_merge(c) }
	:: atomic { idle(c) && c == C0 -> select(g : 0 .. NG - 1); h_unmerge(c, g) }
	:: atomic { alive[c] && c == C0 && !forked && (kref[0] & BIT(C0) || kref[1] & BIT(C0)) ->
		forked = true; alive[H] = true;
		kref[0] = kref[0] | (kref[0] & BIT(C0) -> BIT(H) : 0);
		kref[1] = kref[1] | (kref[1] & BIT(C0) -> BIT(H) : 0) }
	:: atomic { alive[c] -> kdie(c) }
	:: !alive[c] && (c != H || forked) -> break
	od
}

/* The administrator: removals, soft or hard, of either group, one at a time. */
active proctype admin()
{
end:
	do
	:: atomic { up && !adm_waiting && rm == NONE -> select(g : 0 .. NG - 1);
		/* model: remove. removals_start */
		if
		:: ls[g] == RELEASING && lh[g] == NOBODY -> scan(g) /* lease_rescan */
		:: else
		fi;
		if
		:: ls[g] == NONE -> skip /* not-held */
		:: ls[g] != NONE && (lh[g] == NOBODY || !conn[lh[g]]) -> skip /* soft: busy, nobody to ask */
		:: ls[g] != NONE && lh[g] != NOBODY && conn[lh[g]] ->
			rm = SOFT; rm_g = g; rm_holder = lh[g]; adm_waiting = true
		:: ls[g] != NONE ->
			rm = HARD; rm_g = g; rm_holder = lh[g]; adm_waiting = true;
			/* remove_kill_holders: the holder, or everybody with the file */
			if
			:: lh[g] != NOBODY -> kdie(lh[g])
			:: else ->
				for (pi : 0 .. NP - 1) {
					if
					:: kref[g] & BIT(pi) -> kdie(pi)
					:: else
					fi
				}
			fi
		fi }
	od
}

/*
 * model: timeout. removal_on_timeout: a soft removal's timer (nothing
 * changed: the lease is still there); a hard removal's, which gives up only
 * on a file that no process has, only a socket (the killed have exited by then).
 */
active proctype removal_timer()
{
end:
	do
	:: atomic { up && rm == SOFT -> assert(ls[rm_g] != NONE); rm = NONE; adm_waiting = false }
	:: atomic { up && rm == HARD && kref[rm_g] == B_FLIGHT -> rm = NONE; adm_waiting = false }
	od
}

init {
	atomic {
		alive[C0] = true;
		alive[C1] = true;
		run client(C0);
		run client(C1);
		run client(H);
		run close_watch(0);
		run close_watch(1);
		run exit_watch(C0);
		run exit_watch(C1);
		run exit_watch(H)
	}
}

/* ---- properties ---- */

/* A process of the uid that does not hold the lease has the group's file. */
#define other_uid_has(g) \
	((lh[g] == C1 && (kref[g] & UID_A)) || ((lh[g] == C0 || lh[g] == H) && (kref[g] & UID_B)))

#define single(g) \
	(!((kref[g] & UID_A) && (kref[g] & UID_B)) && \
	 !(up && recovered && ls[g] != NONE && other_uid_has(g)))

/* No double grant: a group's file is never open in two uids, nor in another uid than the holder's. */
ltl no_double_grant { [] (single(0) && single(1)) }

#define known(g) (!(kref[g] & CLIENTS) || ls[g] != NONE || orphan[g])

/*
 * No lost lease: once the broker has recovered, a group whose file a process
 * has open is in its table, but for the drop PROTOCOL.md documents (a file
 * only in flight in a socket when the broker restarted).
 */
ltl no_lost_lease { [] ((up && recovered) -> (known(0) && known(1))) }

#define agrees(g) \
	(ls[g] != HELD || ((kref[g] & B_BROKER) && lc[g] == kcont[g]))

/*
 * A restart loses nothing: what the broker's table says of a held lease is
 * the kernel's truth (the broker has the file; the group is in the
 * container exactly when the table says so).
 */
ltl restart_loses_nothing { [] ((up && recovered) -> (agrees(0) && agrees(1))) }

/* Every removal ends: answered (released, timed out, freed) or abandoned by a crash. */
ltl removal_ends { [] (adm_waiting -> <> !adm_waiting) }
