/*
 * Cancel tokens. Every request carries one: it fires when the client's deadline passes
 * (ttRPC timeout_nano), when the client's connection closes, or when the daemon shuts down.
 * Blocking work (a libcurl transfer's progress callback, a poll loop waiting for an IP) checks
 * cancel_fired() or sleeps with cancel_sleep_ms(), which wakes early when the token fires.
 * Reference-counted and thread-safe.
 */
#ifndef PP_CANCEL_H
#define PP_CANCEL_H

#include <stdbool.h>
#include <stdint.h>

struct cancel;

enum cancel_reason { CANCEL_NONE = 0, CANCEL_DEADLINE, CANCEL_CLOSED, CANCEL_SHUTDOWN, CANCEL_EXPLICIT };

/* deadline_ns: absolute CLOCK_MONOTONIC time in ns, 0 = none. */
struct cancel *cancel_new(uint64_t deadline_ns);
struct cancel *cancel_ref(struct cancel *c);
void cancel_unref(struct cancel *c);          /* NULL ok */

void cancel_fire(struct cancel *c, enum cancel_reason why);   /* first reason wins */
/* True once fired or past the deadline. NULL never fires. */
bool cancel_fired(struct cancel *c);
enum cancel_reason cancel_why(struct cancel *c);   /* CANCEL_DEADLINE if the deadline passed */
uint64_t cancel_deadline_ns(const struct cancel *c);
/* Sleeps up to ms (bounded by the deadline); returns true if the token fired. */
bool cancel_sleep_ms(struct cancel *c, uint64_t ms);
/* "deadline exceeded" / "client went away" / "shutting down" / "cancelled" */
const char *cancel_reason_text(enum cancel_reason why);

#endif
