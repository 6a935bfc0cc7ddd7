/*
 * Error values. A function that fails returns -1 (or NULL) and fills a struct pp_err with a
 * gRPC status code and a message a person can act on, naming the thing that was wrong. The
 * failure is recorded once, where it happens; callers pass it up without logging it again, and
 * the boundary (a ttRPC handler, main) logs it once and turns it into a status.
 */
#ifndef PP_ERR_H
#define PP_ERR_H

#include <stdarg.h>
#include <stddef.h>

/* gRPC status codes (the numbering ttRPC carries on the wire). */
enum pp_code {
	PP_OK = 0,
	PP_CANCELLED = 1,
	PP_UNKNOWN = 2,
	PP_INVALID_ARGUMENT = 3,
	PP_DEADLINE_EXCEEDED = 4,
	PP_NOT_FOUND = 5,
	PP_ALREADY_EXISTS = 6,
	PP_PERMISSION_DENIED = 7,
	PP_RESOURCE_EXHAUSTED = 8,
	PP_FAILED_PRECONDITION = 9,
	PP_ABORTED = 10,
	PP_OUT_OF_RANGE = 11,
	PP_UNIMPLEMENTED = 12,
	PP_INTERNAL = 13,
	PP_UNAVAILABLE = 14,
	PP_DATA_LOSS = 15,
	PP_UNAUTHENTICATED = 16,
};

#define PP_ERR_MSG_MAX 512

struct pp_err {
	int code;                   /* enum pp_code; PP_OK when nothing failed */
	char msg[PP_ERR_MSG_MAX];   /* human-readable, never contains a secret */
};

/* Records code and message in *err (err may be NULL) and returns -1, so that a failure site
 * reads `return pp_err_set(err, PP_INVALID_ARGUMENT, "...", ...);`. */
int pp_err_set(struct pp_err *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int pp_err_setv(struct pp_err *err, int code, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));
/* Like pp_err_set, appending ": <strerror(errnum)>". */
int pp_err_errno(struct pp_err *err, int code, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Prefixes the existing message with context ("starting VM: <old message>"); keeps the code. */
int pp_err_prefix(struct pp_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void pp_err_clear(struct pp_err *err);
const char *pp_code_name(int code); /* "INVALID_ARGUMENT", ... */

#endif
