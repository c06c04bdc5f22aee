/* SPDX-License-Identifier: MIT */
/*
 * The one output path of vfioctl. A command describes its result once, field
 * by field, and the same calls produce either the human text (columns, words)
 * or the JSON document (--json), so the two can never disagree. In text mode a
 * field is printed where it is described; in JSON mode fields are collected
 * and the document is written by print_finish().
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* A width that hides the field from the text: JSON only. */
#define PRINT_JSON_ONLY (-1)

/* Starts the output of one command; json chooses the form. */
void print_start(bool json);
/* Ends it: writes the JSON document, flushes stdout. Returns 0, or -errno when stdout failed. */
int print_finish(void);
bool print_is_json(void);

/* Objects and arrays shape the JSON; they print nothing in text. key is NULL in arrays. */
void print_open_object(const char *key);
void print_close_object(void);
void print_open_array(const char *key);
void print_close_array(void);

/*
 * Fields. In text, width > 0 left-aligns the value in a column that wide (with
 * one space after it if it is wider), 0 prints it as it is, PRINT_JSON_ONLY
 * not at all.
 */
void print_uint(const char *key, int width, uint64_t value);
void print_int(const char *key, int width, int64_t value);
/* NULL: JSON null, and "-" in text. */
void print_string(const char *key, int width, const char *value);
/* JSON true/false; in text the word yes or no. */
void print_bool(const char *key, int width, bool value, const char *yes, const char *no);
/* JSON: microseconds since the epoch; text: local time "2026-11-24 16:30:01", "-" for 0. */
void print_time_usec(const char *key, int width, uint64_t usec);
/* An id where 0 means none: JSON the number; text "-" for 0. */
void print_id(const char *key, int width, uint64_t value);
/* JSON: milliseconds; text: "350 ms", or seconds from one on, "1.2 s". */
void print_duration_ms(const char *key, int width, uint64_t ms);
/* JSON null; "-" in text. */
void print_null(const char *key, int width);

/* Text only: headers, separators, newlines. Nothing in JSON. */
void print_text(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
