/* SPDX-License-Identifier: MIT */
/*
 * The replies and events of the vfio-broker protocol, one typed struct each,
 * with the encoder the broker sends and the decoder the client reads. This
 * is the reply schema of PROTOCOL.md: every field of a reply is required
 * unless its struct says "optional", and a decoder answers -EBADMSG for a
 * missing or mistyped field, never a default. A "nullable" field is required
 * too, but may be JSON null; it reads as the empty value its comment names.
 *
 * Encoders return a new json-c object (NULL: out of memory) that the broker
 * sends with vb_packet_serialize; the key order is the order the broker has
 * always sent. Decoders read the body of a packet vb_reply_decode accepted
 * and write *ret only on success.
 */
#pragma once

#include "protocol/message.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- the envelope: what every broker packet is ---- */

/* One decoded reply or event (client side). body owns the whole object. */
struct vb_reply {
	bool is_event;
	enum vb_event event; /* events */
	bool has_id;	     /* replies: false for "id": null (the request was unreadable) */
	uint32_t id;	     /* replies */
	bool ok;
	enum vb_status code; /* errors */
	char message[VB_MESSAGE_MAX];
	struct json_object *body; /* the whole packet, for the typed decoders below */
};

/*
 * vb_reply_decode parses one broker packet and its envelope: an event names
 * a known "event"; a reply has "ok" and an integer "id" (null only in an
 * error); an error has an "error" object with a string "code" (unknown codes
 * read as internal) and a string "message". -ENOMSG for an event this
 * version does not know (skip it), -EBADMSG for anything else malformed.
 */
int vb_reply_decode(const char *buf, size_t len, struct vb_reply *ret);
void vb_reply_done(struct vb_reply *r);

/*
 * vb_packet_serialize writes the compact text of obj (not terminated) to buf
 * and its length to *ret_len. -EMSGSIZE when it is longer than size or than
 * VB_MAX_PACKET_SIZE.
 */
int vb_packet_serialize(struct json_object *obj, char *buf, size_t size, size_t *ret_len);

/* ---- errors ---- */

struct vb_error_reply {
	enum vb_status code;
	char message[VB_MESSAGE_MAX];
	/* Optional details, each present only when its has_ flag is set. */
	bool has_uid; /* busy, not-held: the holder's uid */
	uint32_t uid;
	bool has_container; /* busy (merge): the container the group is in */
	uint32_t container;
	bool has_retry_after_ms; /* limit (request rate) */
	uint32_t retry_after_ms;
	bool has_supported; /* unsupported-version: [lowest, highest] */
	uint32_t supported[2];
	/* denied (a lease's "memlock" ask): what the holder would have and what was asked, bytes */
	bool has_memlock;
	uint64_t memlock;
	uint64_t asked;
	/* denied by policy: the three fields come together */
	bool has_denial;
	char device[VB_ADDRESS_MAX]; /* nullable: the device no rule allows, or a deny rule hit */
	char rule[VB_NAME_MAX + 1];  /* nullable: the deciding rule; "" for the default deny */
	char reason[VB_MESSAGE_MAX]; /* the policy's sentence */
};

/* has_id false: "id": null. */
struct json_object *vb_error_reply_encode(bool has_id, uint32_t id, const struct vb_error_reply *e);
/* The error of a reply with "ok": false; -EBADMSG for any other, or a detail of the wrong type. */
int vb_error_reply_decode(const struct vb_reply *r, struct vb_error_reply *ret);

/*
 * The "error" object of an error reply's body (NULL: none), as it came: for
 * a client that hands the details on by name (vfiobroker_error_detail). Read
 * them with vb_error_reply_decode.
 */
struct json_object *vb_reply_error_details(struct json_object *reply);

/* ---- events ---- */

struct vb_event_msg {
	enum vb_event type;
	uint32_t group;		     /* every event */
	uint32_t timeout_ms;	     /* remove-requested */
	char device[VB_ADDRESS_MAX]; /* device-added: a PCI address */
};

struct json_object *vb_event_encode(const struct vb_event_msg *e);
int vb_event_decode(const struct vb_reply *r, struct vb_event_msg *ret);

/* ---- list entries ---- */

#define VB_DRIVER_MAX 64

struct vb_device_info {
	char address[VB_ADDRESS_MAX];
	char vendor[5]; /* 4 lowercase hex digits */
	char device[5];
	char class_[7];		    /* 6 hex digits */
	char driver[VB_DRIVER_MAX]; /* nullable: "" when no driver is bound */
	/*
	 * optional: the lease paths the device can take now, VB_PATH_* bits
	 * (1 << path); 0 when absent (older brokers), and then not written.
	 */
	unsigned paths;
};

struct vb_group_info {
	uint32_t group;
	bool viable;  /* every member is on vfio-pci or has no driver */
	bool allowed; /* policy lets the asking caller lease it */
	bool held;    /* "holder" is an object, not null */
	uint32_t holder_uid;
	int32_t holder_pid; /* 0: the holder process has exited, the file is still open */
	size_t n_devices;
	struct vb_device_info *devices;
};

struct vb_lease_info {
	uint32_t group;
	uint32_t uid;
	int32_t pid;
	uint64_t since_usec; /* CLOCK_REALTIME */
	char rule[VB_NAME_MAX + 1];
	char state[16];	       /* held, releasing, removing */
	uint32_t container_id; /* 0: not merged; leases sharing a container share the id */
};

struct json_object *vb_group_info_to_json(const struct vb_group_info *g);
/* Allocates ret->devices: vb_group_info_done frees them. */
int vb_group_info_from_json(struct json_object *o, struct vb_group_info *ret);
void vb_group_info_done(struct vb_group_info *g);
/*
 * vb_group_info_write writes g as the text vb_packet_serialize would write
 * for vb_group_info_to_json(g), byte for byte, without building a tree.
 * Returns 0 and its length, -EMSGSIZE when it does not fit size.
 */
int vb_group_info_write(const struct vb_group_info *g, char *buf, size_t size, size_t *ret_len);
struct json_object *vb_lease_info_to_json(const struct vb_lease_info *l);
int vb_lease_info_from_json(struct json_object *o, struct vb_lease_info *ret);

/* ---- one reply per op ---- */

struct vb_hello_reply {
	uint32_t version; /* the version both will use */
	char server[VB_NAME_MAX];
	uint32_t uid; /* the caller, as the broker sees it */
	bool admin;
};

/*
 * A list reply comes in chunks with one id; each chunk is a vb_list_reply.
 * The chunk owns groups (vb_list_reply_done frees them) when decoded.
 */
struct vb_list_reply {
	size_t n_groups;
	struct vb_group_info *groups;
	bool more;	    /* another chunk follows */
	char quarantine[8]; /* optional: "kmod" or "none"; "" when absent (older brokers) */
};

/* The chunk's entries already encoded (vb_group_info_to_json), taken: the broker's chunker. */
struct json_object *vb_list_chunk_encode(uint32_t id, struct json_object *groups, bool more,
					 const char *quarantine);

/*
 * vb_list_chunk_write writes one whole list chunk packet whose entries are
 * groups[0..groups_len): vb_group_info_write texts joined by commas ("" for
 * none). The bytes are those of vb_list_chunk_encode through
 * vb_packet_serialize. -EMSGSIZE above size or VB_MAX_PACKET_SIZE.
 */
int vb_list_chunk_write(uint32_t id, const char *groups, size_t groups_len, bool more,
			const char *quarantine, char *buf, size_t size, size_t *ret_len);

/* Most device fds one cdev lease carries: the iommufd takes one of VB_MAX_FDS. */
#define VB_MAX_CDEV_DEVICES 15

/* One endpoint of a cdev lease: its address and which received fd is its cdev. */
struct vb_cdev_device {
	char address[VB_ADDRESS_MAX];
	uint32_t fd; /* index into the fds of the reply's SCM_RIGHTS */
};

/*
 * A lease reply. The group path carries the group's fd; the cdev path
 * ("path": "cdev", every field below then required) carries the iommufd and
 * one device cdev per endpoint, in the order the indexes say.
 */
struct vb_lease_reply {
	uint32_t group;
	char rule[VB_NAME_MAX + 1]; /* nullable: "" when no rule decided (null) */
	uint64_t memlock;	    /* nullable: 0 when no limit was set (null) */
	enum vb_lease_path path;    /* optional: absent reads as VB_PATH_GROUP */
	uint32_t iommufd;	    /* cdev: index of the iommufd among the fds */
	bool iommufd_reused;	    /* cdev: the holder's iommufd, sent with an earlier lease */
	size_t n_devices;	    /* cdev: 1..VB_MAX_CDEV_DEVICES */
	struct vb_cdev_device devices[VB_MAX_CDEV_DEVICES];
};

struct vb_release_reply {
	uint32_t group;
	bool released; /* false: still open somewhere; a "released" event follows */
};

struct vb_merge_reply { /* + the container's fd */
	uint32_t container;
	size_t n_groups;
	uint32_t *groups; /* decoded: allocated, vb_merge_reply_done frees it */
};

struct vb_unmerge_reply {
	uint32_t group;
};

/* A leases reply comes in chunks, as list does. */
struct vb_leases_reply {
	size_t n_leases;
	struct vb_lease_info *leases; /* decoded: allocated, vb_leases_reply_done frees it */
	bool more;
};

struct json_object *vb_leases_chunk_encode(uint32_t id, struct json_object *leases, bool more);

struct vb_remove_reply {
	uint32_t group;
	enum vb_remove_mode mode;
	uint64_t elapsed_ms;
};

struct vb_reload_reply {
	uint64_t rules;
	uint64_t files;
};

struct vb_explain_reply {
	uint32_t group;
	uint32_t uid; /* whom the decision is for */
	bool allowed;
	char rule[VB_NAME_MAX + 1];  /* nullable: "" for the default deny */
	char device[VB_ADDRESS_MAX]; /* nullable: "" when no one device decided */
	char *reason;		     /* one sentence; decoded: allocated */
	char *text;		     /* lines; decoded: allocated */
};

#define VB_QUARANTINE_MAX_DEVICES 64

enum vb_quarantine_mode {
	VB_QUARANTINE_KMOD,
	VB_QUARANTINE_SYSFS,
};

/* quarantine and unquarantine answer the same. */
struct vb_quarantine_reply {
	uint32_t group;
	enum vb_quarantine_mode mode;
	size_t n_devices;
	char devices[VB_QUARANTINE_MAX_DEVICES][VB_ADDRESS_MAX]; /* the addresses moved */
};

struct json_object *vb_hello_reply_encode(uint32_t id, const struct vb_hello_reply *r);
struct json_object *vb_list_reply_encode(uint32_t id, const struct vb_list_reply *r);
struct json_object *vb_lease_reply_encode(uint32_t id, const struct vb_lease_reply *r);
struct json_object *vb_release_reply_encode(uint32_t id, const struct vb_release_reply *r);
struct json_object *vb_merge_reply_encode(uint32_t id, const struct vb_merge_reply *r);
struct json_object *vb_unmerge_reply_encode(uint32_t id, const struct vb_unmerge_reply *r);
struct json_object *vb_leases_reply_encode(uint32_t id, const struct vb_leases_reply *r);
struct json_object *vb_remove_reply_encode(uint32_t id, const struct vb_remove_reply *r);
struct json_object *vb_reload_reply_encode(uint32_t id, const struct vb_reload_reply *r);
struct json_object *vb_explain_reply_encode(uint32_t id, const struct vb_explain_reply *r);
struct json_object *vb_quarantine_reply_encode(uint32_t id, const struct vb_quarantine_reply *r);

/*
 * The replies the broker sends per request, written straight into buf without a json-c
 * tree: the bytes vb_packet_serialize() writes for the matching _encode()'s object.
 * Each writes at most min(size, VB_MAX_PACKET_SIZE) bytes (not terminated) and their
 * count to *ret_len; -EMSGSIZE when they do not fit.
 */
int vb_error_reply_write(bool has_id, uint32_t id, const struct vb_error_reply *e, char *buf,
			 size_t size, size_t *ret_len);
int vb_hello_reply_write(uint32_t id, const struct vb_hello_reply *r, char *buf, size_t size,
			 size_t *ret_len);
int vb_lease_reply_write(uint32_t id, const struct vb_lease_reply *r, char *buf, size_t size,
			 size_t *ret_len);
int vb_release_reply_write(uint32_t id, const struct vb_release_reply *r, char *buf, size_t size,
			   size_t *ret_len);

/* The decoders take an "ok" reply; an error reply is -EBADMSG (read it with vb_error_reply_decode).
 */
int vb_hello_reply_decode(const struct vb_reply *r, struct vb_hello_reply *ret);
int vb_list_reply_decode(const struct vb_reply *r, struct vb_list_reply *ret);
void vb_list_reply_done(struct vb_list_reply *r);
/*
 * vb_list_chunk_decode reads one packet that may be a chunk of the list
 * reply to request id. Such a chunk (an "ok" reply with that id) is read as
 * vb_reply_decode then vb_list_reply_decode would read it, with every check
 * of theirs (and the strict scan's), but without a json-c tree: returns 0,
 * *env without a body, and *ret. Any other packet is left to
 * vb_reply_decode, into *env: returns 1, or its error.
 */
int vb_list_chunk_decode(const char *buf, size_t len, uint32_t id, struct vb_reply *env,
			 struct vb_list_reply *ret);
int vb_lease_reply_decode(const struct vb_reply *r, struct vb_lease_reply *ret);
int vb_release_reply_decode(const struct vb_reply *r, struct vb_release_reply *ret);
int vb_merge_reply_decode(const struct vb_reply *r, struct vb_merge_reply *ret);
void vb_merge_reply_done(struct vb_merge_reply *r);
int vb_unmerge_reply_decode(const struct vb_reply *r, struct vb_unmerge_reply *ret);
int vb_leases_reply_decode(const struct vb_reply *r, struct vb_leases_reply *ret);
void vb_leases_reply_done(struct vb_leases_reply *r);
int vb_remove_reply_decode(const struct vb_reply *r, struct vb_remove_reply *ret);
int vb_reload_reply_decode(const struct vb_reply *r, struct vb_reload_reply *ret);
int vb_explain_reply_decode(const struct vb_reply *r, struct vb_explain_reply *ret);
void vb_explain_reply_done(struct vb_explain_reply *r);
int vb_quarantine_reply_decode(const struct vb_reply *r, struct vb_quarantine_reply *ret);
