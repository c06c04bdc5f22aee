/* SPDX-License-Identifier: MIT */
#include "client/vfioctl_print.h"

#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define PRINT_MAX_DEPTH 16

/* One output per process: vfioctl runs one command. */
static struct {
	bool json;
	struct json_object *stack[PRINT_MAX_DEPTH]; /* stack[0] is the document */
	size_t depth;
	size_t overflow; /* opens beyond PRINT_MAX_DEPTH, ignored (a bug, never data) */
} printer;

void print_start(bool json)
{
	printer.json = json;
	printer.depth = 0;
	if (json) {
		printer.stack[0] = json_object_new_object();
		printer.depth = 1;
	}
}

bool print_is_json(void)
{
	return printer.json;
}

int print_finish(void)
{
	if (printer.json && printer.depth > 0) {
		const char *text = json_object_to_json_string_ext(
			printer.stack[0], JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
						  JSON_C_TO_STRING_NOSLASHESCAPE);

		if (text)
			printf("%s\n", text);
		json_object_put(printer.stack[0]);
		printer.depth = 0;
	}
	if (fflush(stdout) != 0 || ferror(stdout))
		return errno ? -errno : -EIO;
	return 0;
}

/* Adds value (owned) to the innermost object under key, or to the innermost array. */
static void json_add(const char *key, struct json_object *value)
{
	struct json_object *parent = printer.depth ? printer.stack[printer.depth - 1] : NULL;

	if (!parent) {
		json_object_put(value);
		return;
	}
	if (json_object_is_type(parent, json_type_array))
		json_object_array_add(parent, value);
	else
		json_object_object_add(parent, key ? key : "", value);
}

static void open_container(const char *key, struct json_object *container)
{
	if (!printer.json)
		return;
	if (printer.depth == PRINT_MAX_DEPTH) {
		printer.overflow++;
		json_object_put(container);
		return;
	}
	json_add(key, json_object_get(container));
	printer.stack[printer.depth++] = container;
}

static void close_container(void)
{
	if (!printer.json)
		return;
	if (printer.overflow > 0) {
		printer.overflow--;
		return;
	}
	if (printer.depth > 1)
		json_object_put(printer.stack[--printer.depth]);
}

void print_open_object(const char *key)
{
	if (printer.json)
		open_container(key, json_object_new_object());
}

void print_close_object(void)
{
	close_container();
}

void print_open_array(const char *key)
{
	if (printer.json)
		open_container(key, json_object_new_array());
}

void print_close_array(void)
{
	close_container();
}

static void text_field(int width, const char *s)
{
	int len;

	if (width == PRINT_JSON_ONLY)
		return;
	len = printf("%s", s);
	if (width <= 0)
		return;
	if (len >= width)
		putchar(' ');
	else
		printf("%*s", width - len, "");
}

void print_uint(const char *key, int width, uint64_t value)
{
	char buf[24];

	if (printer.json) {
		json_add(key, json_object_new_uint64(value));
		return;
	}
	snprintf(buf, sizeof(buf), "%" PRIu64, value);
	text_field(width, buf);
}

void print_int(const char *key, int width, int64_t value)
{
	char buf[24];

	if (printer.json) {
		json_add(key, json_object_new_int64(value));
		return;
	}
	snprintf(buf, sizeof(buf), "%" PRId64, value);
	text_field(width, buf);
}

void print_string(const char *key, int width, const char *value)
{
	if (printer.json)
		json_add(key, value ? json_object_new_string(value) : NULL);
	else
		text_field(width, value ? value : "-");
}

void print_bool(const char *key, int width, bool value, const char *yes, const char *no)
{
	if (printer.json)
		json_add(key, json_object_new_boolean(value));
	else
		text_field(width, value ? yes : no);
}

void print_time_usec(const char *key, int width, uint64_t usec)
{
	time_t t = (time_t)(usec / 1000000);
	char buf[32] = "-";
	struct tm tm;

	if (printer.json) {
		json_add(key, json_object_new_uint64(usec));
		return;
	}
	if (usec && localtime_r(&t, &tm))
		strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
	text_field(width, buf);
}

void print_id(const char *key, int width, uint64_t value)
{
	if (printer.json || value)
		print_uint(key, width, value);
	else
		text_field(width, "-");
}

void print_duration_ms(const char *key, int width, uint64_t ms)
{
	char buf[32];

	if (printer.json) {
		json_add(key, json_object_new_uint64(ms));
		return;
	}
	if (ms < 1000)
		snprintf(buf, sizeof(buf), "%" PRIu64 " ms", ms);
	else
		snprintf(buf, sizeof(buf), "%" PRIu64 ".%" PRIu64 " s", ms / 1000, ms % 1000 / 100);
	text_field(width, buf);
}

void print_null(const char *key, int width)
{
	print_string(key, width, NULL);
}

void print_text(const char *fmt, ...)
{
	va_list ap;

	if (printer.json)
		return;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
}
