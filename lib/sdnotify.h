/*
 * sd_notify: "READY=1" / "STOPPING=1" to $NOTIFY_SOCKET, the few lines of systemd's protocol
 * (a datagram to a unix socket; a leading '@' means the abstract namespace). No-op without
 * NOTIFY_SOCKET.
 */
#ifndef PP_SDNOTIFY_H
#define PP_SDNOTIFY_H

/* Returns 1 if sent, 0 if NOTIFY_SOCKET is unset, -1 on error. */
int sd_notify_send(const char *state);

#endif
