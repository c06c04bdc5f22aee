/* SPDX-License-Identifier: MIT */
/*
 * Policy decision time with 10,000 rules: policy_decide() called in-process (the policy
 * module linked in), each call timed on its own.
 *
 *   policy-decide-10k        a mixed policy: rules for other users and devices by exact
 *                            address, vendor:device, vendor and class glob, 10% deny
 *                            rules, 1% naming the caller; the last rule allows the
 *                            caller's device
 *
 * and adversarial policies, where every rule names the caller (so the caller side of the
 * index narrows nothing) and is built to look like a match for the caller's device:
 *
 *   policy-decide-10k-worst    class globs of other classes ("0x03*", "0x0c*"), half deny
 *   policy-decide-10k-vendor   the device's vendor and a class glob of another class
 *   policy-decide-10k-address  address globs of other buses ("0000:01:07.*"), half deny
 *   policy-decide-10k-deny     deny rules only, through a supplementary group, each with
 *                              its own class prefix of another base class
 *
 * In every policy the last rule allows the caller's device.
 */
#include "tests/bench/bench.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"

#define N_RULES 10000

struct text {
	char *buf;
	size_t len, size;
};

static void text_add(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void text_add(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(t->buf + t->len, t->size - t->len, fmt, ap);
		va_end(ap);
		if ((size_t)n < t->size - t->len)
			break;
		t->size = t->size * 2 + (size_t)n;
		t->buf = realloc(t->buf, t->size);
		if (!t->buf)
			abort();
	}
	t->len += (size_t)n;
}

static void mixed_rule(struct text *t, unsigned i)
{
	unsigned b = (i >> 8) & 0xff, d = (i >> 3) & 0x1f, f = i & 7;

	switch (i % 10) {
	case 0:
	case 1:
	case 2:
	case 3:
	case 4:
	case 5:
		text_add(t,
			 "{\"name\":\"r%05u\",\"users\":[%u],\"devices\":[{\"address\":"
			 "\"0001:%02x:%02x.%x\"}]}",
			 i, 10000 + i, b, d, f);
		break;
	case 6:
		text_add(t,
			 "{\"name\":\"r%05u\",\"unix_groups\":[%u],\"devices\":[{\"vendor\":"
			 "\"10de\",\"device\":\"%04x\"}]}",
			 i, 20000 + i % 100, i);
		break;
	case 7:
		/* 1 in 100 names the caller, for another device */
		text_add(t,
			 "{\"name\":\"r%05u\",\"users\":[%u],\"devices\":[{\"address\":"
			 "\"0002:%02x:%02x.%x\"}]}",
			 i, i % 100 == 7 ? 2000 : 10000 + i, b, d, f);
		break;
	case 8:
		text_add(t,
			 "{\"name\":\"r%05u\",\"effect\":\"deny\",\"users\":[%u],\"devices\":"
			 "[{\"class\":\"0x0300*\"}]}",
			 i, 30000 + i);
		break;
	default:
		text_add(t,
			 "{\"name\":\"r%05u\",\"users\":[%u],\"devices\":[{\"vendor\":\"1af4\"}]}",
			 i, 10000 + i);
	}
}

enum shape {
	SHAPE_MIXED,
	SHAPE_CLASS_GLOB,
	SHAPE_VENDOR,
	SHAPE_ADDRESS_GLOB,
	SHAPE_DENY,
};

static void adversarial_rule(struct text *t, enum shape shape, unsigned i)
{
	const char *effect = i % 2 ? "\"effect\":\"deny\"," : "";

	switch (shape) {
	case SHAPE_CLASS_GLOB:
		text_add(t,
			 "{\"name\":\"w%05u\",%s\"users\":[2000],\"devices\":[{\"class\":\"%s\"}]}",
			 i, effect, i % 2 ? "0x0c*" : "0x03*");
		break;
	case SHAPE_VENDOR:
		text_add(t,
			 "{\"name\":\"w%05u\",%s\"users\":[2000],\"devices\":[{\"vendor\":\"8086\","
			 "\"class\":\"0x%02x*\"}]}",
			 i, effect, 3 + i % 8);
		break;
	case SHAPE_ADDRESS_GLOB:
		text_add(t,
			 "{\"name\":\"w%05u\",%s\"users\":[2000],\"devices\":[{\"address\":"
			 "\"0000:%02x:%02x.*\"}]}",
			 i, effect, 1 + (i >> 5) % 255, i & 0x1f);
		break;
	case SHAPE_DENY:
		text_add(t,
			 "{\"name\":\"w%05u\",\"effect\":\"deny\",\"unix_groups\":[2100],"
			 "\"devices\":[{\"class\":\"0x%02x%02x*\"}]}",
			 i, 3 + i % 16, (i / 16) % 256);
		break;
	case SHAPE_MIXED:
		mixed_rule(t, i);
	}
}

static char *policy_text(enum shape shape, size_t *len)
{
	struct text t = {.buf = malloc(1 << 20), .size = 1 << 20};

	if (!t.buf)
		abort();
	text_add(&t, "{\"rules\":[\n");
	for (unsigned i = 0; i < N_RULES - 1; i++) {
		adversarial_rule(&t, shape, i);
		text_add(&t, ",\n");
	}
	text_add(&t,
		 "{\"name\":\"bench\",\"users\":[2000],\"devices\":[{\"vendor\":\"8086\"}]}\n]}\n");
	*len = t.len;
	return t.buf;
}

static void decide_run(const struct bench_env *env, const char *name, enum shape shape,
		       const char *what)
{
	struct row *row = row_get(name, 1);
	struct policy *p = NULL;
	struct policy_error err;
	size_t len;
	char *text = policy_text(shape, &len);
	unsigned n = bench_count(env, 100000, 200);
	unsigned warm = n / 10;
	double *us = malloc(sizeof(double) * n);
	static const gid_t groups[] = {2100};
	struct policy_caller caller = {
		.uid = 2000,
		.gid = 2000,
		.groups = groups,
		.n_groups = 1,
		.cgroup = "/user.slice/user-2000.slice/session-1.scope",
		.unit = "session-1.scope",
	};
	struct policy_device dev = {
		.address = "0000:00:00.1",
		.vendor = 0x8086,
		.device = 0x10d3,
		.class = 0x020000,
		.iommu_group = 1,
	};
	struct policy_decision d;
	uint64_t t0, load_ns;
	int r;

	row->latency = true;
	t0 = now_ns();
	r = policy_load_string(name, text, len,
			       POLICY_LOAD_SKIP_OWNER_CHECK | POLICY_LOAD_SKIP_NAME_LOOKUP, NULL,
			       NULL, &p, &err);
	load_ns = now_ns() - t0;
	free(text);
	if (r < 0 || !us) {
		char msg[1024];

		policy_error_format(&err, msg, sizeof(msg));
		row_fail(row, "loading %u rules: %s: %s", N_RULES, strerror(-r), msg);
		free(us);
		return;
	}
	if (policy_rule_count(p) != N_RULES) {
		row_fail(row, "loaded %zu rules, not %u", policy_rule_count(p), N_RULES);
		goto out;
	}
	for (unsigned i = 0; i < warm + n; i++) {
		t0 = now_ns();
		r = policy_decide(p, &caller, &dev, 1, POLICY_ACTION_LEASE, &d);
		if (i >= warm)
			us[i - warm] = (double)(now_ns() - t0) / 1e3;
		if (r < 0 || !d.allowed || strcmp(d.rule, "bench")) {
			row_fail(row, "unexpected decision: %s", r < 0 ? strerror(-r) : d.reason);
			goto out;
		}
	}
	row_add_samples(row, us, n, -1);
	row_extra(row, "load_ms", (double)load_ns / 1e6);
	row_note(row, "%s; policy_load_string of %zu KiB took %.1f ms; %u decisions", what,
		 len / 1024, (double)load_ns / 1e6, n);
out:
	policy_free(p);
	free(us);
}

void bench_policy(const struct bench_env *env)
{
	decide_run(env, "policy-decide-10k", SHAPE_MIXED, "mixed rules, the last one allows");
	decide_run(env, "policy-decide-10k-worst", SHAPE_CLASS_GLOB,
		   "adversarial: every rule names the caller, class globs only");
	decide_run(env, "policy-decide-10k-vendor", SHAPE_VENDOR,
		   "adversarial: every rule names the caller and the device's vendor, class globs");
	decide_run(env, "policy-decide-10k-address", SHAPE_ADDRESS_GLOB,
		   "adversarial: every rule names the caller, address globs of other buses");
	decide_run(env, "policy-decide-10k-deny", SHAPE_DENY,
		   "adversarial: deny rules for a group of the caller, class prefixes");
}
