/*
 * Logging: see log.h. Each line is built in a stack buffer and written with one write(2), so
 * lines from different threads never interleave (writes to a pipe up to PIPE_BUF bytes are
 * atomic; a regular file opened O_APPEND also keeps whole writes together). The settings are
 * atomics: log_init and log_set_level may race with logging threads without a lock.
 */
#include "lib/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "lib/util.h"

#define LOG_LINE_MAX 4096
#define LOG_COMP_MAX 32
#define LOG_TRUNCATED " truncated=true\n"

static _Atomic int log_fd = 2;
static _Atomic int log_level = LOG_LVL_INFO;
static char log_comp[LOG_COMP_MAX] = "peerpod";  /* set by log_init before threads start */

static const char *const LOG_LEVEL_NAMES[] = { "error", "warn", "info", "debug" };

void log_init(const char *comp, int fd)
{
	pp_strlcpy(log_comp, comp ? comp : "peerpod", sizeof(log_comp));
	atomic_store(&log_fd, fd);
}

void log_set_level(enum log_level lvl)
{
	atomic_store(&log_level, (int)lvl);
}

int log_level_parse(const char *s, enum log_level *ret)
{
	size_t i;

	for (i = 0; i < PP_ARRAY_SIZE(LOG_LEVEL_NAMES); i++) {
		if (s && strcasecmp(s, LOG_LEVEL_NAMES[i]) == 0) {
			*ret = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

int log_enabled(enum log_level lvl)
{
	return (int)lvl <= atomic_load(&log_level);
}

static bool log_needs_quotes(const char *s)
{
	if (!*s)
		return true;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c <= ' ' || c == '"' || c == '=' || c == 0x7f)
			return true;
	}
	return false;
}

const char *log_quote(char *buf, size_t size, const char *s)
{
	if (!s)
		s = "";
	if (log_needs_quotes(s))
		return str_quote(buf, size, s);
	pp_strlcpy(buf, s, size);
	return buf;
}

/* "2026-11-25T02:49:51.123Z" into out. */
static void log_time(char *out, size_t size)
{
	struct timespec ts;
	struct tm tm;
	char sec[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(sec, sizeof(sec), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, size, "%s.%03ldZ", sec, ts.tv_nsec / 1000000);
}

/* Replaces control characters in the formatted fields so that one event stays one line. */
static void log_flatten(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < ' ' || *s == 0x7f)
			*s = ' ';
}

static void log_write(const char *line, size_t len)
{
	int fd = atomic_load(&log_fd);

	while (len > 0) {
		ssize_t n = write(fd, line, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		line += n;
		len -= (size_t)n;
	}
}

void log_event(enum log_level lvl, const char *msg, const char *fields_fmt, ...)
{
	char line[LOG_LINE_MAX], ts[48], qmsg[512], fields[LOG_LINE_MAX];
	const char *lname;
	va_list ap;
	int n;

	if (!log_enabled(lvl))
		return;
	lname = (size_t)lvl < PP_ARRAY_SIZE(LOG_LEVEL_NAMES) ? LOG_LEVEL_NAMES[lvl] : "info";
	log_time(ts, sizeof(ts));
	str_quote(qmsg, sizeof(qmsg), msg ? msg : "");
	fields[0] = '\0';
	if (fields_fmt && *fields_fmt) {
		va_start(ap, fields_fmt);
		vsnprintf(fields, sizeof(fields), fields_fmt, ap);
		va_end(ap);
		log_flatten(fields);
	}
	n = snprintf(line, sizeof(line), "time=%s level=%s comp=%s msg=%s%s%s\n", ts, lname,
		     log_comp, qmsg, fields[0] ? " " : "", fields);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line)) {
		/* cut the line and say so, keeping the newline */
		memcpy(line + sizeof(line) - sizeof(LOG_TRUNCATED), LOG_TRUNCATED,
		       sizeof(LOG_TRUNCATED));
		n = (int)sizeof(line) - 1;
	}
	log_write(line, (size_t)n);
}
