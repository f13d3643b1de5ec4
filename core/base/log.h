/* log — structured logging: one JSON object per line on stderr.
 *
 * Contract: thread-safe (each line is written with a single write(2)); never
 * allocates on the heap; a line longer than LOG_LINE_MAX is truncated but still
 * valid JSON. Callers must not pass bodies, tokens or identifiers: the log is
 * operational metadata only. */
#ifndef CW_LOG_H
#define CW_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#define LOG_LINE_MAX 2048

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Messages below this level are dropped. Default LOG_INFO. Not thread-safe:
 * set before threads start. */
void log_set_level(enum log_level level);
bool log_enabled(enum log_level level);

/* Writes {"ts":…,"level":…,"event":EVENT[,"msg":…]} plus the key/value pairs
 * given as a NULL-terminated list of (const char *key, const char *value)
 * string pairs. A NULL value is skipped. */
void log_event(enum log_level level, const char *event, const char *msg, ...);

/* printf-style message under the "msg" key. */
void log_msgf(enum log_level level, const char *event, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Escape helper shared with other JSON writers: appends s as a JSON string
 * body (without quotes) to buf at *pos, never beyond cap-1; returns false if
 * truncated. */
bool log_json_escape(char *buf, size_t cap, size_t *pos, const char *s);

#endif
