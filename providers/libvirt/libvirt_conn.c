/*
 * The provider's one libvirt connection, shared by the worker threads (a virConnectPtr is
 * thread-safe; libvirt serialises what needs it). It is opened at init and re-opened when a call
 * finds it dead (virConnectIsAlive: a restarted libvirtd, a dropped ssh/tcp transport).
 *
 * The one idea: lp->lock guards only the pointer. A caller takes a reference (virConnectRef)
 * under the lock and uses it without; a re-open happens outside the lock and is swapped in only
 * if nobody swapped first, so no thread ever waits on another's network I/O.
 *
 * libvirt reports errors per thread (virGetLastError); libvirt_err() copies the message into
 * our pp_err at the failure site. Its default printer to stderr is switched off.
 */
#include "providers/libvirt/libvirt_priv.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <libvirt/virterror.h>
#include <libxml/parser.h>

#include "lib/log.h"

#define LIBVIRT_KEEPALIVE_INTERVAL_S 5
#define LIBVIRT_KEEPALIVE_COUNT 3

static pthread_once_t libvirt_once = PTHREAD_ONCE_INIT;

static void libvirt_silent(void *userdata, virErrorPtr e)
{
	(void)userdata;
	(void)e;
}

static void libvirt_lib_init_once(void)
{
	xmlInitParser();   /* before any thread parses (libxml2's rule for threaded programs) */
	virInitialize();
	virSetErrorFunc(NULL, libvirt_silent);
}

void libvirt_lib_init(void)
{
	pthread_once(&libvirt_once, libvirt_lib_init_once);
}

int libvirt_last_code(void)
{
	return virGetLastErrorCode();
}

int libvirt_err(struct pp_err *err, int code, const char *fmt, ...)
{
	char what[PP_ERR_MSG_MAX];
	const char *msg = virGetLastErrorMessage();
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return pp_err_set(err, code, "%s: %s", what, msg ? msg : "unknown libvirt error");
}

int libvirt_cancelled(struct cancel *cancel, const char *what, const char *name, struct pp_err *err)
{
	if (!cancel_fired(cancel))
		return 0;
	return pp_err_set(err, PP_CANCELLED, "%s %s: %s", what, name,
			  cancel_reason_text(cancel_why(cancel)));
}

bool libvirt_conn_is_test(virConnectPtr c)
{
	const char *type = virConnectGetType(c);

	return type && strcmp(type, "TEST") == 0;
}

static virConnectPtr conn_open(const char *uri, struct pp_err *err)
{
	virConnectPtr c = virConnectOpen(uri);

	if (!c) {
		libvirt_err(err, PP_UNAVAILABLE, "connecting to libvirt at %s", uri);
		return NULL;
	}
	/* Remote transports: notice a dead peer within ~20 s. Local drivers refuse; fine. */
	if (virConnectSetKeepAlive(c, LIBVIRT_KEEPALIVE_INTERVAL_S, LIBVIRT_KEEPALIVE_COUNT) < 0)
		virResetLastError();
	return c;
}

int libvirt_conn_get(struct libvirt_priv *lp, virConnectPtr *ret, struct pp_err *err)
{
	virConnectPtr cur, fresh, stale = NULL;

	pthread_mutex_lock(&lp->lock);
	cur = lp->conn;
	if (cur)
		virConnectRef(cur);
	pthread_mutex_unlock(&lp->lock);
	if (cur && virConnectIsAlive(cur) == 1) {
		*ret = cur;
		return 0;
	}
	fresh = conn_open(lp->conf.uri, err);
	if (!fresh) {
		libvirt_conn_put(cur);
		return -1;
	}
	pthread_mutex_lock(&lp->lock);
	if (lp->conn == cur) {
		stale = lp->conn;          /* the provider's reference to the dead connection */
		lp->conn = fresh;
		virConnectRef(fresh);      /* one for the provider, one for the caller */
	} else {
		/* another thread re-opened first: use theirs */
		stale = fresh;
		fresh = lp->conn;
		if (fresh)
			virConnectRef(fresh);
	}
	pthread_mutex_unlock(&lp->lock);
	if (cur)
		log_warn("libvirt connection re-opened", "uri=%s", lp->conf.uri);
	libvirt_conn_put(stale);
	libvirt_conn_put(cur);
	if (!fresh)
		return pp_err_set(err, PP_UNAVAILABLE, "libvirt connection to %s was closed", lp->conf.uri);
	*ret = fresh;
	return 0;
}

void libvirt_conn_put(virConnectPtr c)
{
	if (c)
		virConnectClose(c);
}

void libvirt_conn_close(struct libvirt_priv *lp)
{
	virConnectPtr c;

	pthread_mutex_lock(&lp->lock);
	c = lp->conn;
	lp->conn = NULL;
	pthread_mutex_unlock(&lp->lock);
	libvirt_conn_put(c);
}
