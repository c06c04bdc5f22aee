/* SPDX-License-Identifier: MIT */
/*
 * What the rest of the broker does when a lease or a connection changes
 * state: the hooks main.c gives the lease table and the server. Here, and
 * only here, the lower modules are tied to the ones above them.
 */
#pragma once

#include "broker/lease.h"
#include "broker/server.h"

/* The lease table's hooks (userdata: the broker). */
extern const struct lease_hooks hooks_lease;
/* The server's hooks. */
extern const struct server_hooks hooks_server;
