/* SPDX-License-Identifier: MIT */
/*
 * The vfio-broker message schema: requests, replies and events as JSON
 * objects (json-c), one per packet. This is the only code that turns wire
 * bytes into values and back; the broker and the client library both use it.
 * PROTOCOL.md is the specification; this file implements it.
 */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VB_PROTOCOL_VERSION	1
#define VB_PROTOCOL_MIN_VERSION 1

#define VB_MAX_JSON_DEPTH	 8
#define VB_MAX_MERGE_GROUPS	 16
#define VB_MAX_GROUP_ID		 0x7fffffff
#define VB_ADDRESS_MAX		 16 /* "dddd:bb:dd.f" and a NUL */
#define VB_NAME_MAX		 64
#define VB_MESSAGE_MAX		 512
#define VB_MAX_REMOVE_TIMEOUT_MS (3600u * 1000u)

enum vb_op {
	VB_OP_HELLO,
	VB_OP_LIST,
	VB_OP_LEASE,
	VB_OP_RELEASE,
	VB_OP_MERGE,
	VB_OP_UNMERGE,
	VB_OP_LEASES,
	VB_OP_REMOVE,
	VB_OP_RELOAD,
	VB_OP_EXPLAIN,
	VB_OP_QUARANTINE,
	VB_OP_UNQUARANTINE,
	_VB_OP_MAX,
};

/* Error codes: the "code" string of an error reply. */
enum vb_status {
	VB_OK = 0,
	VB_E_DENIED,
	VB_E_BUSY,
	VB_E_NOT_VIABLE,
	VB_E_NO_SUCH_GROUP,
	VB_E_BAD_REQUEST,
	VB_E_UNSUPPORTED_VERSION,
	VB_E_LIMIT,
	VB_E_NOT_HELD,
	VB_E_TIMEOUT,
	VB_E_INTERNAL,
	VB_E_UNSUPPORTED, /* the broker's kernel lacks what the request needs (iommufd, cdevs) */
	_VB_STATUS_MAX,
};

/* How a lease hands out a group (PROTOCOL.md, "lease"). */
enum vb_lease_path {
	VB_PATH_GROUP, /* the legacy group file /dev/vfio/N (the default) */
	VB_PATH_CDEV,  /* an iommufd (/dev/iommu) and each endpoint's /dev/vfio/devices/vfioN */
	_VB_PATH_MAX,
};

enum vb_remove_mode {
	VB_REMOVE_SOFT,
	VB_REMOVE_HARD,
};

enum vb_event {
	VB_EVENT_REMOVE_REQUESTED, /* an admin asks the holder to give the group back */
	VB_EVENT_REVOKED,	   /* the lease was taken away (hard removal) */
	VB_EVENT_RELEASED,	   /* a lease ended: the group file is really closed */
	VB_EVENT_DEVICE_ADDED,	   /* a device appeared in a group the client holds */
	_VB_EVENT_MAX,
};

/* One decoded request. Fields an op does not use keep their "absent" value. */
struct vb_request {
	uint32_t id;
	enum vb_op op;
	uint32_t version;	     /* hello */
	char client[VB_NAME_MAX];    /* hello: free-form client name, optional */
	int32_t group;		     /* lease, release, unmerge, remove, explain; -1 absent */
	char device[VB_ADDRESS_MAX]; /* lease by device address; "" absent */
	uint32_t groups[VB_MAX_MERGE_GROUPS]; /* merge */
	size_t n_groups;
	enum vb_remove_mode mode; /* remove */
	uint32_t timeout_ms;	  /* remove --soft; 0 = broker default */
	bool kill_strays;	  /* remove --hard: kill processes outside the lease too */
	int64_t uid;		  /* explain: the user to explain for; -1 absent */
	char user[VB_NAME_MAX];	  /* explain: or by name; "" absent */
	bool restore;		  /* unquarantine: give the devices back to their drivers */
	uint64_t memlock;	  /* lease: RLIMIT_MEMLOCK bytes the holder needs; 0 absent */
	enum vb_lease_path path;  /* lease: VB_PATH_GROUP when absent */
};

/* Why a request could not be decoded, with the id to echo when it was readable. */
struct vb_decode_error {
	bool has_id;
	uint32_t id;
	enum vb_status code; /* VB_E_BAD_REQUEST or VB_E_UNSUPPORTED_VERSION */
	char message[VB_MESSAGE_MAX];
};

const char *vb_op_to_string(enum vb_op op);
int vb_op_from_string(const char *s); /* enum vb_op or -EINVAL */
/* How many fds a request of this op may carry (merge: an optional container). */
size_t vb_op_max_fds(enum vb_op op);
const char *vb_status_to_string(enum vb_status s);
int vb_status_from_string(const char *s);
/* The -errno a library caller sees for a broker status (denied: -EACCES, ...). */
int vb_status_to_errno(enum vb_status s);
const char *vb_event_to_string(enum vb_event e);
const char *vb_lease_path_to_string(enum vb_lease_path p);
int vb_lease_path_from_string(const char *s); /* enum vb_lease_path or -EINVAL */
int vb_event_from_string(const char *s);

/*
 * vb_address_parse accepts exactly a PCI address "dddd:bb:dd.f" (hex domain,
 * bus, device <= 1f, function <= 7) in either case and writes it lowercase.
 * Returns 0 or -EINVAL.
 */
int vb_address_parse(const char *s, char out[VB_ADDRESS_MAX]);
/* vb_group_parse accepts a decimal group id 0..VB_MAX_GROUP_ID, no sign, no
 * leading zeros, nothing trailing. Returns 0 or -EINVAL. */
int vb_group_parse(const char *s, uint32_t *ret);

/* vb_request_init sets every field to its "absent" value. */
void vb_request_init(struct vb_request *r, uint32_t id, enum vb_op op);
/*
 * vb_request_decode parses one request packet strictly: a JSON object no
 * deeper than VB_MAX_JSON_DEPTH, known keys only, right types, values in
 * range. Returns 0, or -EBADMSG with err filled in.
 */
int vb_request_decode(const char *buf, size_t len, struct vb_request *ret,
		      struct vb_decode_error *err);
/* vb_request_encode writes the request as one JSON packet; -EMSGSIZE if it does not fit. */
int vb_request_encode(const struct vb_request *r, char *buf, size_t size, size_t *ret_len);
