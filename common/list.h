/* SPDX-License-Identifier: MIT */
/*
 * One intrusive doubly linked list, in the style of the Linux kernel's
 * list_head: an object embeds a struct list_node and is linked into a list
 * whose head is a struct list_node too (circular, the head its own sentinel),
 * so linking and unlinking cost no allocation and an object finds its place
 * in O(1). A head must be initialised (list_init) before use; an unlinked
 * node points at itself, so list_unlink is safe to call twice.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct list_node {
	struct list_node *prev, *next;
};

#define LIST_NODE_INIT(name)                                                                       \
	{                                                                                          \
		&(name), &(name)                                                                   \
	}

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

static inline void list_init(struct list_node *head)
{
	head->prev = head->next = head;
}

static inline bool list_is_empty(const struct list_node *head)
{
	return head->next == head;
}

/* Whether node is linked into some list (an initialised, unlinked node is not). */
static inline bool list_is_linked(const struct list_node *node)
{
	return node->next && node->next != node;
}

/* Link node between prev and next (adjacent). */
static inline void list_link_between(struct list_node *node, struct list_node *prev,
				     struct list_node *next)
{
	node->prev = prev;
	node->next = next;
	prev->next = node;
	next->prev = node;
}

/* Link node first in the list at head. */
static inline void list_prepend(struct list_node *head, struct list_node *node)
{
	list_link_between(node, head, head->next);
}

/* Link node last in the list at head. */
static inline void list_append(struct list_node *head, struct list_node *node)
{
	list_link_between(node, head->prev, head);
}

/* Link node just before pos (pos may be the head: then last). */
static inline void list_insert_before(struct list_node *pos, struct list_node *node)
{
	list_link_between(node, pos->prev, pos);
}

/* Unlink node from its list and leave it pointing at itself. */
static inline void list_unlink(struct list_node *node)
{
	node->prev->next = node->next;
	node->next->prev = node->prev;
	list_init(node);
}

/* The object of type holding node as member; NULL when node is the head (end of list). */
#define list_entry_or_null(node, head, type, member)                                               \
	((node) == (head) ? NULL : container_of(node, type, member))

#define list_first_entry_or_null(head, type, member)                                               \
	list_entry_or_null((head)->next, head, type, member)

/* Every entry of the list at head; pos must not be unlinked in the body. */
#define list_for_each_entry(pos, head, member)                                                     \
	for (pos = container_of((head)->next, __typeof__(*pos), member); &pos->member != (head);   \
	     pos = container_of(pos->member.next, __typeof__(*pos), member))

/* Every entry of the list at head; pos may be unlinked (and freed) in the body. */
#define list_for_each_entry_safe(pos, tmp, head, member)                                           \
	for (pos = container_of((head)->next, __typeof__(*pos), member),                           \
	    tmp = container_of(pos->member.next, __typeof__(*pos), member);                        \
	     &pos->member != (head);                                                               \
	     pos = tmp, tmp = container_of(tmp->member.next, __typeof__(*tmp), member))
