/*
 * Small helpers every module needs: strict integer parsing (the replacement for atoi), string
 * trimming and bounded copies, allocation wrappers that abort on out-of-memory, random bytes
 * and wall-clock time.
 *
 * The one idea: parsers here accept exactly the text they describe. "12x", " 1", "" and values
 * that overflow are rejected rather than silently read as something else.
 */
#ifndef PP_UTIL_H
#define PP_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

/* Decimal only. Reject empty input, leading spaces or '+', trailing garbage and overflow.
 * Return 0 and write *ret on success, -1 (errno EINVAL or ERANGE) otherwise. */
int parse_int64(const char *s, int64_t *ret);
int parse_uint64(const char *s, uint64_t *ret);  /* no '-' either */
int parse_uint32(const char *s, uint32_t *ret);

bool str_has_prefix(const char *s, const char *prefix);
bool str_has_suffix(const char *s, const char *suffix);
/* Removes leading and trailing whitespace in place (the text moves to s[0]). Returns s. */
char *str_trim(char *s);
/* Writes s into buf as a double-quoted string with \" \\ \n \r \t and \xHH escapes, cut with
 * "..." if it does not fit (size >= 6 for a useful result). Returns buf. Used for bad input
 * quoted in error messages and log values. */
const char *str_quote(char *buf, size_t size, const char *s);

/* Allocation that cannot fail: on out-of-memory they print one line to stderr and abort. */
void *pp_xmalloc(size_t n);
void *pp_xcalloc(size_t nmemb, size_t size);
void *pp_xrealloc(void *p, size_t n);
char *pp_xstrdup(const char *s);
char *pp_xstrndup(const char *s, size_t n);

/* Like BSD strlcpy: copies at most size-1 bytes and always NUL-terminates (when size > 0).
 * Returns true when all of src fit, false when it was truncated. */
bool pp_strlcpy(char *dst, const char *src, size_t size);

/* Fills buf with n bytes from the kernel CSPRNG (getrandom). */
int pp_random_bytes(void *buf, size_t n, struct pp_err *err);

/* Wall-clock time (CLOCK_REALTIME): seconds and milliseconds since the Unix epoch. Use for
 * timestamps that are stored or shown, never for timeouts (use pp_monotonic_ms). */
int64_t pp_unix_time(void);

/* Called first thing in main() of every program that moves ttRPC frames. glibc serves large
 * allocations (from 128 KiB, adaptively more) with mmap, so every frame buffer of a 1 MiB
 * stream would be fresh pages: page faults and zeroing cost 8x the copy itself (measured:
 * 250 MB/s vs 2 GB/s). Frames up to 4 MiB stay on the heap; at most 8 MiB of free heap is
 * kept for reuse. */
#define PP_MALLOC_MMAP_THRESHOLD (16u << 20)
#define PP_MALLOC_TRIM_THRESHOLD (8u << 20)
void pp_malloc_tune(void);
int64_t pp_unix_time_ms(void);
/* CLOCK_MONOTONIC in milliseconds: for deadlines and intervals. */
uint64_t pp_monotonic_ms(void);

#define PP_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
