/*
 * agent-protocol-forwarder: the command line and start-up of the forwarder (spec §4.1, §4.2).
 *
 * Flags are upstream's, parsed the way Go's flag package does (-flag, --flag, -flag=value,
 * -flag value; booleans take no separate value). Start-up: read apf.json (missing: exit 1, so
 * that systemd retries until process-user-data has written it), build the TLS server context
 * (mutual TLS: the client's certificate is required and verified), listen, tell systemd
 * READY=1, run the loop until SIGTERM/SIGINT. When apf.json names a tunnel-type, the pod network
 * is set up before listening and torn down at exit (docs/networking.md).
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "lib/util.h"
#include "forwarder/apf_config.h"
#include "forwarder/forwarder.h"
#include "forwarder/podnet_vm.h"
#include "lib/fileutil.h"
#include "lib/log.h"
#include "lib/loop.h"
#include "lib/pki.h"
#include "lib/sdnotify.h"
#include "lib/tls.h"

#ifndef PP_VERSION
#define PP_VERSION "unknown"
#endif

#define PROG "agent-protocol-forwarder"
#define FLAG_EXIT_USAGE 2   /* as Go's flag package */
#define FLAGS_RUN (-1)      /* fwd_flags_parse: go on */
#define NOTIFY_MAX 256

struct fwd_flags {
	bool version;
	const char *config;
	const char *listen;
	const char *agent_socket;
	const char *pod_namespace;
	const char *host_interface;
	const char *ca_cert_file;
	const char *cert_file;
	const char *cert_key;
	bool tls_skip_verify;
	bool disable_tls;
};

struct fwd_flag_def {
	const char *name;
	bool is_bool;
	size_t offset;
	const char *help;
};

#define FLAG_STR(n, field, h) { n, false, offsetof(struct fwd_flags, field), h }
#define FLAG_BOOL(n, field, h) { n, true, offsetof(struct fwd_flags, field), h }

static const struct fwd_flag_def fwd_flag_defs[] = {
	FLAG_BOOL("version", version, "Show version"),
	FLAG_STR("config", config, "Path to a config file (default " FORWARDER_DEFAULT_CONFIG ")"),
	FLAG_STR("listen", listen, "Listen address (default " FORWARDER_DEFAULT_LISTEN ")"),
	FLAG_STR("kata-agent-socket", agent_socket,
		 "Path to a kata agent socket (default " FORWARDER_DEFAULT_AGENT_SOCKET ")"),
	FLAG_STR("pod-namespace", pod_namespace,
		 "Path to the network namespace where the pod runs (default "
		 FORWARDER_DEFAULT_POD_NAMESPACE ")"),
	FLAG_STR("host-interface", host_interface, "Network interface name that is used for network tunnel traffic"),
	FLAG_STR("ca-cert-file", ca_cert_file, "CA cert file that verifies client certificates"),
	FLAG_STR("cert-file", cert_file, "Server certificate file"),
	FLAG_STR("cert-key", cert_key, "Server private key file"),
	FLAG_BOOL("tls-skip-verify", tls_skip_verify, "Accepted for compatibility; refused together with a client CA"),
	FLAG_BOOL("disable-tls", disable_tls, "Disable TLS (plain TCP; tests only)"),
};

static void fwd_usage(FILE *out)
{
	size_t i;

	fprintf(out, "Usage of %s:\n", PROG);
	for (i = 0; i < sizeof(fwd_flag_defs) / sizeof(fwd_flag_defs[0]); i++)
		fprintf(out, "  -%s%s\n    \t%s\n", fwd_flag_defs[i].name,
			fwd_flag_defs[i].is_bool ? "" : " string", fwd_flag_defs[i].help);
}

static const struct fwd_flag_def *fwd_flag_find(const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < sizeof(fwd_flag_defs) / sizeof(fwd_flag_defs[0]); i++)
		if (strlen(fwd_flag_defs[i].name) == len && !strncmp(fwd_flag_defs[i].name, name, len))
			return &fwd_flag_defs[i];
	return NULL;
}

static int fwd_bool_parse(const char *v, bool *ret)
{
	static const char *const t[] = { "1", "t", "T", "true", "TRUE", "True" };
	static const char *const f[] = { "0", "f", "F", "false", "FALSE", "False" };
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		if (!strcmp(v, t[i])) {
			*ret = true;
			return 0;
		}
		if (!strcmp(v, f[i])) {
			*ret = false;
			return 0;
		}
	}
	return -1;
}

/* Returns FLAGS_RUN, or the exit status to leave with (after -h, or a bad flag). */
static int fwd_flags_parse(int argc, char **argv, struct fwd_flags *fl)
{
	int i;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *name, *eq;
		const struct fwd_flag_def *d;
		size_t nlen;

		if (a[0] != '-' || !a[1])
			break;   /* first non-flag argument ends the flags, as in Go */
		if (!strcmp(a, "--")) {
			i++;
			break;
		}
		name = a + (a[1] == '-' ? 2 : 1);
		eq = strchr(name, '=');
		nlen = eq ? (size_t)(eq - name) : strlen(name);
		if ((nlen == 1 && name[0] == 'h') || (nlen == 4 && !strncmp(name, "help", 4))) {
			fwd_usage(stdout);
			return EXIT_SUCCESS;
		}
		d = fwd_flag_find(name, nlen);
		if (!d) {
			fprintf(stderr, "flag provided but not defined: -%.*s\n", (int)nlen, name);
			fwd_usage(stderr);
			return FLAG_EXIT_USAGE;
		}
		if (d->is_bool) {
			bool *b = (bool *)((char *)fl + d->offset);

			if (!eq) {
				*b = true;
			} else if (fwd_bool_parse(eq + 1, b) < 0) {
				fprintf(stderr, "invalid boolean value \"%s\" for -%s\n", eq + 1, d->name);
				return FLAG_EXIT_USAGE;
			}
			continue;
		}
		if (!eq && i + 1 >= argc) {
			fprintf(stderr, "flag needs an argument: -%s\n", d->name);
			fwd_usage(stderr);
			return FLAG_EXIT_USAGE;
		}
		*(const char **)((char *)fl + d->offset) = eq ? eq + 1 : argv[++i];
	}
	if (i < argc) {
		fprintf(stderr, "unexpected argument: %s\n", argv[i]);
		return FLAG_EXIT_USAGE;
	}
	return FLAGS_RUN;
}

/* ---- TLS ---- */

static const char *fwd_min_version_name(int v)
{
	if (v == APF_TLS_1_3)
		return "VersionTLS13";
	if (v == APF_TLS_1_2)
		return "VersionTLS12";
	return NULL;
}

static int fwd_read_pem(const char *path, char **ret, struct pp_err *err)
{
	uint8_t *data;
	size_t len;

	if (file_read_all(path, PKI_PEM_MAX, &data, &len, err) < 0)
		return -1;
	*ret = (char *)data;
	return 0;
}

/* The client trust anchors: -ca-cert-file, else tls-client-ca from apf.json; NULL if none. */
static int fwd_client_anchors(const struct fwd_flags *fl, const struct apf_config *apf,
			      STACK_OF(X509) **ret, struct pp_err *err)
{
	char *pem = NULL;

	*ret = NULL;
	if (fl->ca_cert_file && *fl->ca_cert_file) {
		if (fwd_read_pem(fl->ca_cert_file, &pem, err) < 0)
			return -1;
		*ret = tls_certs_from_pem(pem, err);
		free(pem);
		if (!*ret)
			return pp_err_prefix(err, "%s", fl->ca_cert_file);
		return 0;
	}
	if (apf->tls_client_ca && *apf->tls_client_ca) {
		*ret = tls_certs_from_pem(apf->tls_client_ca, err);
		if (!*ret)
			return pp_err_prefix(err, "apf.json tls-client-ca");
	}
	return 0;
}

static struct pki_identity *fwd_server_identity(const struct fwd_flags *fl,
						const struct apf_config *apf, struct pp_err *err)
{
	bool files = (fl->cert_file && *fl->cert_file) || (fl->cert_key && *fl->cert_key);

	if (files) {
		if (!fl->cert_file || !*fl->cert_file || !fl->cert_key || !*fl->cert_key) {
			pp_err_set(err, PP_INVALID_ARGUMENT, "-cert-file and -cert-key go together");
			return NULL;
		}
		return pki_identity_from_files(fl->cert_file, fl->cert_key, err);
	}
	if (!apf->tls_server_cert || !apf->tls_server_key) {
		pp_err_set(err, PP_INVALID_ARGUMENT,
			   "no server certificate: give -cert-file/-cert-key, tls-server-cert/-key in "
			   "the config file, or -disable-tls");
		return NULL;
	}
	return pki_identity_from_pem(apf->tls_server_cert, apf->tls_server_key, err);
}

static SSL_CTX *fwd_tls_ctx(const struct fwd_flags *fl, const struct apf_config *apf,
			    struct pp_err *err)
{
	struct tls_profile prof;
	struct pki_identity *id = NULL;
	STACK_OF(X509) *anchors = NULL;
	SSL_CTX *ctx = NULL;

	if (tls_profile_parse(fwd_min_version_name(apf->tls_min_version),
			      (const char *const *)apf->tls_cipher_suites, apf->n_tls_cipher_suites,
			      &prof, err) < 0)
		return NULL;
	if (fwd_client_anchors(fl, apf, &anchors, err) < 0)
		return NULL;
	if (anchors && fl->tls_skip_verify) {
		pp_err_set(err, PP_INVALID_ARGUMENT,
			   "specifying a client CA together with -tls-skip-verify is not allowed");
		goto out;
	}
	if (!anchors)
		log_warn("no client CA configured: client certificates are not verified", "");
	id = fwd_server_identity(fl, apf, err);
	if (id)
		ctx = tls_server_ctx_new(&prof, id, anchors, err);
out:
	pki_identity_free(id);
	tls_certs_free(anchors);
	return ctx;
}

/* ---- run ---- */

static void fwd_on_signal(void *arg, uint32_t events)
{
	struct loop *l = arg;

	(void)events;
	loop_stop(l);
}

static int fwd_signals(struct loop *l, int *ret_fd, struct pp_err *err)
{
	sigset_t set;
	int fd;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return pp_err_errno(err, PP_INTERNAL, errno, "blocking signals");
	fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0)
		return pp_err_errno(err, PP_INTERNAL, errno, "signalfd");
	*ret_fd = fd;
	return loop_fd_add(l, fd, EPOLLIN, fwd_on_signal, l, err);
}

static void fwd_notify_ready(const struct forwarder *f)
{
	char msg[NOTIFY_MAX];
	int n;

	n = snprintf(msg, sizeof(msg), "READY=1\nSTATUS=listening on %s\n", forwarder_listen_addr(f));
	if (n < 0 || (size_t)n >= sizeof(msg) || sd_notify_send(msg) < 0)
		log_warn("sd_notify failed", "socket=%s", getenv("NOTIFY_SOCKET"));
}

static int fwd_run(const struct fwd_flags *fl, SSL_CTX *tls, struct pp_err *err)
{
	struct forwarder_config fc = {
		.listen = fl->listen,
		.agent_socket = fl->agent_socket,
		.pod_namespace = fl->pod_namespace,
		.tls = tls,
	};
	struct forwarder *f = NULL;
	struct loop *l;
	int sfd = -1, rc = -1;

	l = loop_new(err);
	if (!l)
		return -1;
	if (fwd_signals(l, &sfd, err) < 0)
		goto out;
	f = forwarder_start(l, &fc, err);
	if (!f)
		goto out;
	fwd_notify_ready(f);
	loop_run(l);
	log_info("forwarder stopping", "");
	sd_notify_send("STOPPING=1");
	rc = 0;
out:
	forwarder_stop(f);
	if (sfd >= 0) {
		loop_fd_del(l, sfd);
		close(sfd);
	}
	loop_free(l);
	return rc;
}

int main(int argc, char **argv)
{
	struct fwd_flags fl = {
		.config = FORWARDER_DEFAULT_CONFIG,
		.listen = FORWARDER_DEFAULT_LISTEN,
		.agent_socket = FORWARDER_DEFAULT_AGENT_SOCKET,
		.pod_namespace = FORWARDER_DEFAULT_POD_NAMESPACE,
	};
	struct apf_config *apf = NULL;
	struct pp_err err = { 0 };
	char q[PP_ERR_MSG_MAX];
	SSL_CTX *tls = NULL;
	struct podnet_info net = { 0 };
	struct podnet_vm_opts net_opts = { 0 };
	bool net_up = false;
	int rc;

	pp_malloc_tune();
	log_init("forwarder", 2);
	rc = fwd_flags_parse(argc, argv, &fl);
	if (rc != FLAGS_RUN)
		return rc;
	net_opts.podns_path = fl.pod_namespace;
	net_opts.host_interface = fl.host_interface && *fl.host_interface ? fl.host_interface : NULL;
	if (fl.version) {
		printf("%s version %s\n", PROG, PP_VERSION);
		return EXIT_SUCCESS;
	}
	log_info("starting", "version=%s config=%s", PP_VERSION, log_quote(q, sizeof(q), fl.config));
	if (apf_config_load(fl.config, &apf, &err) < 0) {
		log_error("cannot read the config file", "error=%s", log_quote(q, sizeof(q), err.msg));
		return EXIT_FAILURE;
	}
	if (!fl.disable_tls && !(tls = fwd_tls_ctx(&fl, apf, &err))) {
		log_error("TLS set-up failed", "error=%s", log_quote(q, sizeof(q), err.msg));
		apf_config_free(apf);
		return EXIT_FAILURE;
	}
	/* The pod network comes up before the forwarder listens (upstream's order): the agent's
	 * containers need it. An empty tunnel-type means none (a process sandbox). */
	if (apf->has_pod_network && apf->pod_network.tunnel_type && *apf->pod_network.tunnel_type &&
	    (podnet_vm_info(&apf->pod_network, &net, &err) < 0 ||
	     podnet_vm_setup(&net_opts, &apf->pod_network, &net_up, &err) < 0)) {
		log_error("pod network set-up failed", "error=%s", log_quote(q, sizeof(q), err.msg));
		podnet_info_clear(&net);
		apf_config_free(apf);
		SSL_CTX_free(tls);
		return EXIT_FAILURE;
	}
	apf_config_free(apf);
	rc = fwd_run(&fl, tls, &err);
	SSL_CTX_free(tls);
	if (net_up && podnet_vm_teardown(&net_opts, &net, &err) < 0)
		log_warn("pod network teardown failed", "error=%s", log_quote(q, sizeof(q), err.msg));
	podnet_info_clear(&net);
	if (rc < 0) {
		log_error("forwarder failed", "error=%s", log_quote(q, sizeof(q), err.msg));
		return EXIT_FAILURE;
	}
	return EXIT_SUCCESS;
}
