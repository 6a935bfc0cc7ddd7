/* Error values: see err.h. Messages are truncated, never overflowed. */
#include "lib/err.h"

#include <stdio.h>
#include <string.h>

int pp_err_setv(struct pp_err *err, int code, const char *fmt, va_list ap)
{
	if (!err)
		return -1;
	err->code = code;
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	return -1;
}

int pp_err_set(struct pp_err *err, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	pp_err_setv(err, code, fmt, ap);
	va_end(ap);
	return -1;
}

int pp_err_errno(struct pp_err *err, int code, int errnum, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	if (!err)
		return -1;
	va_start(ap, fmt);
	pp_err_setv(err, code, fmt, ap);
	va_end(ap);
	n = strlen(err->msg);
	if (n + 2 < sizeof(err->msg)) {
		const char *why = strerror(errnum);
		size_t room = sizeof(err->msg) - n - 1;
		size_t wl = strlen(why);

		err->msg[n] = ':';
		err->msg[n + 1] = ' ';
		room -= 2;
		if (wl > room)
			wl = room;
		memcpy(err->msg + n + 2, why, wl);
		err->msg[n + 2 + wl] = '\0';
	}
	return -1;
}

int pp_err_prefix(struct pp_err *err, const char *fmt, ...)
{
	char prefix[PP_ERR_MSG_MAX];
	char old[PP_ERR_MSG_MAX];
	char joined[2 * PP_ERR_MSG_MAX + 2];
	va_list ap;

	if (!err)
		return -1;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof(old));
	old[sizeof(old) - 1] = '\0';
	snprintf(joined, sizeof(joined), "%s: %s", prefix, old);
	snprintf(err->msg, sizeof(err->msg), "%.*s", (int)sizeof(err->msg) - 1, joined);
	return -1;
}

void pp_err_clear(struct pp_err *err)
{
	if (!err)
		return;
	err->code = PP_OK;
	err->msg[0] = '\0';
}

const char *pp_code_name(int code)
{
	static const char *const names[] = {
		"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
		"NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
		"FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL",
		"UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
	};

	if (code < 0 || (size_t)code >= sizeof(names) / sizeof(names[0]))
		return "UNKNOWN";
	return names[code];
}
