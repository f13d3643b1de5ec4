#include "base/log.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static enum log_level min_level = LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_set_level(enum log_level level) { min_level = level; }

bool log_enabled(enum log_level level) { return level >= min_level; }

bool log_json_escape(char *buf, size_t cap, size_t *pos, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	size_t p = *pos;
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		char esc[7];
		size_t n;
		if (*c == '"' || *c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)*c;
			n = 2;
		} else if (*c < 0x20 || *c == 0x7f) {
			memcpy(esc, "\\u00", 4);
			esc[4] = hex[*c >> 4];
			esc[5] = hex[*c & 15];
			n = 6;
		} else {
			esc[0] = (char)*c;
			n = 1;
		}
		if (p + n >= cap) {
			*pos = p;
			return false;
		}
		memcpy(buf + p, esc, n);
		p += n;
	}
	*pos = p;
	return true;
}

static void put_raw(char *buf, size_t cap, size_t *pos, const char *s)
{
	size_t n = strlen(s);
	if (*pos + n >= cap)
		n = cap - 1 - *pos;
	memcpy(buf + *pos, s, n);
	*pos += n;
}

static void put_pair(char *buf, size_t cap, size_t *pos, const char *k, const char *v)
{
	put_raw(buf, cap, pos, ",\"");
	log_json_escape(buf, cap, pos, k);
	put_raw(buf, cap, pos, "\":\"");
	log_json_escape(buf, cap, pos, v);
	put_raw(buf, cap, pos, "\"");
}

static void emit(enum log_level level, const char *event, const char *msg, va_list ap)
{
	char line[LOG_LINE_MAX];
	const size_t cap = sizeof line - 2; /* room for "}\n" */
	size_t pos = 0;
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	char when[96];
	snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
	put_raw(line, cap, &pos, "{\"ts\":\"");
	put_raw(line, cap, &pos, when);
	put_raw(line, cap, &pos, "\"");
	put_pair(line, cap, &pos, "level", level_names[level]);
	put_pair(line, cap, &pos, "event", event);
	if (msg)
		put_pair(line, cap, &pos, "msg", msg);
	for (;;) {
		const char *k = va_arg(ap, const char *);
		if (!k)
			break;
		const char *v = va_arg(ap, const char *);
		if (v)
			put_pair(line, cap, &pos, k, v);
	}
	line[pos++] = '}';
	line[pos++] = '\n';
	ssize_t off = 0;
	while ((size_t)off < pos) {
		ssize_t w = write(STDERR_FILENO, line + off, pos - (size_t)off);
		if (w <= 0)
			break;
		off += w;
	}
}

void log_event(enum log_level level, const char *event, const char *msg, ...)
{
	if (!log_enabled(level))
		return;
	va_list ap;
	va_start(ap, msg);
	emit(level, event, msg, ap);
	va_end(ap);
}

static void emit_none(enum log_level level, const char *event, const char *msg, ...)
{
	va_list ap;
	va_start(ap, msg);
	emit(level, event, msg, ap);
	va_end(ap);
}

void log_msgf(enum log_level level, const char *event, const char *fmt, ...)
{
	if (!log_enabled(level))
		return;
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	emit_none(level, event, msg, (const char *)NULL);
}
