/* SPDX-License-Identifier: MIT */
#include "broker/policy_store.h"
#include "broker/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>

/* Editors write a file in several steps: wait for the directory to settle before reloading. */
#define POLICY_RELOAD_DEBOUNCE_USEC (100 * 1000)

#define POLICY_WATCH_MASK                                                                          \
	(IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_CLOSE_WRITE | IN_MODIFY |        \
	 IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)

struct policy_store {
	sd_event *event;
	char *dir;
	struct policy *policy;
	uint64_t generation; /* policy_store_generation */
	sd_event_source *watch_source;
	sd_event_source *debounce_source;
};

static void policy_store_on_warning(const char *file, unsigned line, const char *message,
				    void *userdata)
{
	if (line)
		log_warning("%s:%u: %s", file, line, message);
	else
		log_warning("%s: %s", file, message);
}

/* Load the directory into *ret, logging why not. */
static int policy_store_load(struct policy_store *s, struct policy **ret, struct policy_error *err)
{
	struct policy_error e = {0};
	char text[sizeof(e.file) + sizeof(e.message) + 32];
	int r;

	r = policy_load_dir(s->dir, 0, policy_store_on_warning, s, ret, &e);
	if (r < 0) {
		if (!e.message[0])
			snprintf(e.message, sizeof(e.message), "%s", strerror(-r));
		if (!e.file[0])
			snprintf(e.file, sizeof(e.file), "%s", s->dir);
		policy_error_format(&e, text, sizeof(text));
		log_error("Failed to load the policy: %s", text);
		if (err)
			*err = e;
	}
	return r;
}

static int policy_store_on_debounce(sd_event_source *src, uint64_t usec, void *userdata)
{
	struct policy_store *s = userdata;

	policy_store_reload(s, "the policy directory changed", NULL);
	return 0;
}

static int policy_store_on_change(sd_event_source *src, const struct inotify_event *ev,
				  void *userdata)
{
	struct policy_store *s = userdata;

	if (ev->mask & IN_IGNORED) {
		/* The directory itself went away: SIGHUP or reload re-adds the watch. */
		log_warning("The policy directory %s disappeared; the policy in force stays",
			    s->dir);
		s->watch_source = sd_event_source_disable_unref(s->watch_source);
		return 0;
	}
	sd_event_source_set_time_relative(s->debounce_source, POLICY_RELOAD_DEBOUNCE_USEC);
	sd_event_source_set_enabled(s->debounce_source, SD_EVENT_ONESHOT);
	return 0;
}

static int policy_store_watch(struct policy_store *s)
{
	int r;

	if (s->watch_source)
		return 0;
	r = sd_event_add_inotify(s->event, &s->watch_source, s->dir, POLICY_WATCH_MASK,
				 policy_store_on_change, s);
	if (r < 0)
		return log_warning_errno(
			r, "Failed to watch %s for changes: %m; reload with SIGHUP", s->dir);
	return 0;
}

int policy_store_new(sd_event *e, const char *dir, struct policy_store **ret)
{
	struct policy_store *s;
	int r;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->event = e;
	s->dir = strdup(dir);
	if (!s->dir) {
		free(s);
		return -ENOMEM;
	}
	r = policy_store_load(s, &s->policy, NULL);
	if (r < 0)
		goto fail;
	r = sd_event_add_time_relative(e, &s->debounce_source, CLOCK_MONOTONIC,
				       POLICY_RELOAD_DEBOUNCE_USEC, 0, policy_store_on_debounce, s);
	if (r < 0)
		goto fail;
	sd_event_source_set_enabled(s->debounce_source, SD_EVENT_OFF);
	policy_store_watch(s);
	log_info("Loaded the policy from %s: %zu rules in %zu files", s->dir,
		 policy_rule_count(s->policy), policy_file_count(s->policy));
	*ret = s;
	return 0;
fail:
	policy_store_free(s);
	return r;
}

struct policy_store *policy_store_free(struct policy_store *s)
{
	if (!s)
		return NULL;
	sd_event_source_disable_unref(s->watch_source);
	sd_event_source_disable_unref(s->debounce_source);
	policy_free(s->policy);
	free(s->dir);
	free(s);
	return NULL;
}

const struct policy *policy_store_get(const struct policy_store *s)
{
	return s->policy;
}

uint64_t policy_store_generation(const struct policy_store *s)
{
	return s->generation;
}

int policy_store_reload(struct policy_store *s, const char *why, struct policy_error *err)
{
	struct policy *p = NULL;
	struct log_fields f = LOG_FIELDS("reload");
	int r;

	r = policy_store_load(s, &p, err);
	if (r < 0) {
		f.event = "reload-failed";
		log_event(LOG_ERR, &f,
			  "Policy reload (%s) refused; the previous policy stays in force", why);
		return r;
	}
	/* Decisions copy what they keep (rule names), so the old policy can go now. */
	policy_free(s->policy);
	s->policy = p;
	s->generation++;
	policy_store_watch(s);
	log_event(LOG_INFO, &f, "Policy reloaded (%s): %zu rules in %zu files", why,
		  policy_rule_count(p), policy_file_count(p));
	return 0;
}
