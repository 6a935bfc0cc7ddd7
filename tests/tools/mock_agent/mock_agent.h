/*
 * mock-agent internals: the state the handlers share. Everything runs in the one loop thread,
 * so nothing here is locked.
 *
 * Calls that a real agent answers only when something happens (WaitProcess: the process exits;
 * ReadStderr: its stream ends; GetOOMEvent: an OOM) are "held": the call is kept in a list and
 * answered later, never by blocking the loop. A held call ends when its process is signalled
 * (SignalProcess), or when its client goes away (a sweep timer checks each held call's cancel
 * token, which fires when the connection closes or the deadline passes).
 */
#ifndef PP_MOCK_AGENT_H
#define PP_MOCK_AGENT_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/cancel.h"
#include "lib/loop.h"
#include "lib/ttrpc.h"

#define MOCK_MAX_PROCS 4096
#define MOCK_MAX_READ (1u << 20)        /* largest ReadStdout chunk, whatever len asks */
#define MOCK_SWEEP_MS 100
#define MOCK_SIGNAL_STATUS_BASE 128     /* WaitProcess status after signal s: 128 + s */
#define MOCK_AGENT_VERSION "mock-agent-" PP_VERSION

/* A (container, exec) pair the agent has heard of. */
struct mock_proc {
	char *cid;
	char *eid;
	uint64_t stdout_off;   /* bytes of stdout handed out so far */
	bool exited;
	int status;
	struct mock_proc *next;
};

enum mock_hold_kind { MOCK_HOLD_WAIT, MOCK_HOLD_STDERR, MOCK_HOLD_OOM };

struct mock_hold {
	struct ttrpc_call *call;
	struct cancel *cancel;     /* our reference */
	enum mock_hold_kind kind;
	struct mock_proc *proc;    /* NULL for MOCK_HOLD_OOM */
	struct mock_hold *next;
};

struct mock_agent {
	struct loop *loop;
	struct ttrpc_server *srv;
	int record_fd;             /* -1: no --record */
	bool stdout_limited;
	uint64_t stdout_bytes;     /* --stdout-bytes: per process, then EOF */
	struct mock_proc *procs;
	unsigned n_procs;
	struct mock_hold *holds;
	struct loop_timer *sweep;
};

/* Registers every handler on m->srv. */
int mock_agent_register(struct mock_agent *m);
/* Answers every held call (CANCELLED) and frees all state; before the server is freed. */
void mock_agent_release(struct mock_agent *m);

#endif
