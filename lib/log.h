/*
 * Logging: one line per event, logfmt style, to stderr (the journal or the container log):
 *
 *   time=2026-11-25T02:49:51.123Z level=info comp=adaptor msg="VM created" sandbox=abc instance=podvm-x
 *
 * `msg` is a fixed string that a grep can find; variable facts go in key=value fields, given as
 * a printf format ("sandbox=%s instance=%s"). Values with spaces or quotes must be passed through
 * %q-style quoting by the caller with log_quote() when they are free text. Secrets are never
 * formatted: configuration values marked secret are not reachable as strings by log callers
 * (see config.h), and no function here prints a key, token or password.
 * Thread-safe: each line is written with one write(2).
 */
#ifndef PP_LOG_H
#define PP_LOG_H

#include <stddef.h>

enum log_level { LOG_LVL_ERROR = 0, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

/* comp names the program ("adaptor", "forwarder"); fd is where lines go (2 = stderr). */
void log_init(const char *comp, int fd);
void log_set_level(enum log_level lvl);
/* Parses "error" | "warn" | "info" | "debug"; returns -1 on anything else. */
int log_level_parse(const char *s, enum log_level *ret);
int log_enabled(enum log_level lvl);

void log_event(enum log_level lvl, const char *msg, const char *fields_fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Writes s into buf as a logfmt value: bare if it has no space, quote, '=' or control char,
 * else double-quoted with \" \\ \n escapes. Truncates to fit. Returns buf. */
const char *log_quote(char *buf, size_t size, const char *s);

#define log_error(msg, ...) log_event(LOG_LVL_ERROR, msg, __VA_ARGS__)
#define log_warn(msg, ...)  log_event(LOG_LVL_WARN, msg, __VA_ARGS__)
#define log_info(msg, ...)  log_event(LOG_LVL_INFO, msg, __VA_ARGS__)
#define log_debug(msg, ...) log_event(LOG_LVL_DEBUG, msg, __VA_ARGS__)

#endif
