/*
 * process-user-data: the pod VM's one-shot provisioning step (spec §5.3), run by systemd before
 * the agent-protocol-forwarder. `provision-files` finds the user-data (cidata volume or cloud
 * metadata service), retries fetch+parse every 5 s until the timeout, writes the allow-listed
 * files, then processes initdata (a dummy one when none was given) and writes its digest.
 *
 * For local runs and tests every in-VM path can be moved under --root, the cidata volume can be
 * any directory (--cidata), the provider can be named (--provider) and each metadata endpoint
 * overridden. Each file written is printed on stdout; diagnostics go to stderr as log lines.
 *
 * Exit codes: 0 done; 1 no valid user-data before the timeout; 2 usage; 3 writing the
 * user-data files failed; 4 initdata missing a valid form or could not be written.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "forwarder/initdata.h"
#include "forwarder/metadata.h"
#include "forwarder/userdata.h"
#include "lib/err.h"
#include "lib/log.h"
#include "lib/util.h"

#define PUD_DEFAULT_TIMEOUT_S 180
#define PUD_MAX_TIMEOUT_S     86400
#define PUD_RETRY_INTERVAL_MS 5000
#define PUD_MIN_REQUEST_MS    1000
#define PUD_LOG_VALUE_MAX     600

enum pud_exit {
	PUD_EXIT_OK = 0,
	PUD_EXIT_NO_USERDATA = 1,
	PUD_EXIT_USAGE = 2,
	PUD_EXIT_WRITE = 3,
	PUD_EXIT_INITDATA = 4,
};

struct pud_opts {
	uint32_t timeout_s;
	bool provider_given;
	enum metadata_provider provider;
	struct metadata_opts md;
};

enum {
	OPT_ROOT = 256, OPT_CIDATA, OPT_PROVIDER, OPT_AZURE_URL, OPT_AWS_TOKEN_URL,
	OPT_AWS_USERDATA_URL, OPT_GCP_PROBE_URL, OPT_GCP_USERDATA_URL, OPT_ALIBABA_URL,
	OPT_LOG_LEVEL,
};

static const struct option pud_long_opts[] = {
	{ "user-data-fetch-timeout", required_argument, NULL, 't' },
	{ "root", required_argument, NULL, OPT_ROOT },
	{ "cidata", required_argument, NULL, OPT_CIDATA },
	{ "provider", required_argument, NULL, OPT_PROVIDER },
	{ "azure-url", required_argument, NULL, OPT_AZURE_URL },
	{ "aws-token-url", required_argument, NULL, OPT_AWS_TOKEN_URL },
	{ "aws-user-data-url", required_argument, NULL, OPT_AWS_USERDATA_URL },
	{ "gcp-probe-url", required_argument, NULL, OPT_GCP_PROBE_URL },
	{ "gcp-user-data-url", required_argument, NULL, OPT_GCP_USERDATA_URL },
	{ "alibaba-url", required_argument, NULL, OPT_ALIBABA_URL },
	{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static void pud_usage(FILE *f)
{
	fprintf(f,
		"Usage: process-user-data provision-files [options]\n"
		"\n"
		"Fetches the pod VM's user-data, writes its allow-listed files under /run/peerpod,\n"
		"then processes initdata and writes /run/peerpod/initdata.digest.\n"
		"\n"
		"Options:\n"
		"  -t, --user-data-fetch-timeout SECONDS  keep retrying fetch+parse for this long (default %d)\n"
		"      --provider NAME       auto|cidata|azure|aws|gcp|alibaba|none (default auto: detect)\n"
		"      --root DIR            prefix for every in-VM path (/run/peerpod, /media/cidata, /sys)\n"
		"      --cidata DIR          directory holding user-data (default <root>/media/cidata)\n"
		"      --azure-url URL       --aws-token-url URL   --aws-user-data-url URL\n"
		"      --gcp-probe-url URL   --gcp-user-data-url URL   --alibaba-url URL\n"
		"                            metadata endpoints (for tests and local runs)\n"
		"      --log-level LEVEL     error|warn|info|debug (default info)\n"
		"  -h, --help\n"
		"\n"
		"Exit status: 0 done, 1 no valid user-data before the timeout, 2 usage,\n"
		"3 writing user-data files failed, 4 initdata invalid or not written.\n",
		PUD_DEFAULT_TIMEOUT_S);
}

static int pud_usage_error(const char *what, const char *value)
{
	char q[128];

	fprintf(stderr, "process-user-data: %s %s\n", what, value ? str_quote(q, sizeof(q), value) : "");
	pud_usage(stderr);
	return -1;
}

static int pud_set_provider(struct pud_opts *o, const char *v)
{
	if (strcmp(v, "auto") == 0) {
		o->provider_given = false;
		return 0;
	}
	if (metadata_provider_parse(v, &o->provider) < 0)
		return pud_usage_error("unknown provider", v);
	o->provider_given = true;
	return 0;
}

static int pud_set_option(struct pud_opts *o, int c, const char *v)
{
	enum log_level lvl;

	switch (c) {
	case 't':
		if (parse_uint32(v, &o->timeout_s) < 0 || o->timeout_s > PUD_MAX_TIMEOUT_S)
			return pud_usage_error("invalid --user-data-fetch-timeout", v);
		return 0;
	case OPT_ROOT: o->md.root = v; return 0;
	case OPT_CIDATA: o->md.cidata_dir = v; return 0;
	case OPT_PROVIDER: return pud_set_provider(o, v);
	case OPT_AZURE_URL: o->md.azure_url = v; return 0;
	case OPT_AWS_TOKEN_URL: o->md.aws_token_url = v; return 0;
	case OPT_AWS_USERDATA_URL: o->md.aws_userdata_url = v; return 0;
	case OPT_GCP_PROBE_URL: o->md.gcp_probe_url = v; return 0;
	case OPT_GCP_USERDATA_URL: o->md.gcp_userdata_url = v; return 0;
	case OPT_ALIBABA_URL: o->md.alibaba_url = v; return 0;
	case OPT_LOG_LEVEL:
		if (log_level_parse(v, &lvl) < 0)
			return pud_usage_error("invalid --log-level", v);
		log_set_level(lvl);
		return 0;
	default:
		return pud_usage_error("unknown option", NULL);
	}
}

/* argv[1] is the subcommand; options follow it. 1 = help shown, 0 = run, -1 = usage error. */
static int pud_parse_args(int argc, char **argv, struct pud_opts *o)
{
	int c;

	if (argc < 2)
		return pud_usage_error("missing subcommand", NULL);
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		pud_usage(stdout);
		return 1;
	}
	if (strcmp(argv[1], "provision-files") != 0)
		return pud_usage_error("unknown subcommand", argv[1]);
	optind = 2;
	opterr = 1;
	while ((c = getopt_long(argc, argv, "t:h", pud_long_opts, NULL)) != -1) {
		if (c == 'h') {
			pud_usage(stdout);
			return 1;
		}
		if (c == '?' || pud_set_option(o, c, optarg) < 0)
			return c == '?' ? pud_usage_error("invalid arguments", NULL) : -1;
	}
	if (optind != argc)
		return pud_usage_error("unexpected argument", argv[optind]);
	return 0;
}

static void pud_sleep_ms(uint64_t ms)
{
	struct timespec ts = { .tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int pud_fetch_and_parse(struct pud_opts *o, struct userdata **ret, struct pp_err *err)
{
	char *text = NULL;
	size_t len;
	int r;

	if (metadata_fetch(&o->md, o->provider, &text, &len, err) < 0)
		return -1;
	r = userdata_parse(text, len, ret, err);
	explicit_bzero(text, len);  /* apf.json inside carries a private key */
	free(text);
	return r;
}

/* Fetch+parse, retried every PUD_RETRY_INTERVAL_MS until the timeout. */
static int pud_get_userdata(struct pud_opts *o, struct userdata **ret, struct pp_err *err)
{
	uint64_t deadline = pp_monotonic_ms() + (uint64_t)o->timeout_s * 1000;
	char q[PUD_LOG_VALUE_MAX];

	for (;;) {
		uint64_t now = pp_monotonic_ms();
		uint64_t left = deadline > now ? deadline - now : 0;

		/* each attempt gets what is left of the timeout, within sane bounds */
		if (left < PUD_MIN_REQUEST_MS)
			left = PUD_MIN_REQUEST_MS;
		o->md.timeout_ms = left < METADATA_DEFAULT_TIMEOUT_MS ? (long)left
								 : METADATA_DEFAULT_TIMEOUT_MS;
		if (pud_fetch_and_parse(o, ret, err) == 0)
			return 0;
		now = pp_monotonic_ms();
		if (now >= deadline)
			return pp_err_prefix(err, "no valid user-data within %u s", (unsigned)o->timeout_s);
		log_warn("user-data not available yet, retrying", "provider=%s error=%s",
			 metadata_provider_name(o->provider), log_quote(q, sizeof(q), err->msg));
		left = deadline - now;
		pud_sleep_ms(left < PUD_RETRY_INTERVAL_MS ? left : PUD_RETRY_INTERVAL_MS);
	}
}

static int pud_provision_userdata(struct pud_opts *o)
{
	struct userdata *ud = NULL;
	struct pp_err err = { 0 };
	char q[PUD_LOG_VALUE_MAX];

	if (!o->provider_given)
		o->provider = metadata_detect(&o->md);
	log_info("user-data provider", "provider=%s", metadata_provider_name(o->provider));
	if (o->provider == METADATA_NONE)
		return PUD_EXIT_OK;
	if (pud_get_userdata(o, &ud, &err) < 0) {
		log_error("cannot get user-data", "error=%s", log_quote(q, sizeof(q), err.msg));
		return PUD_EXIT_NO_USERDATA;
	}
	if (userdata_write_files(ud, o->md.root, stdout, &err) < 0) {
		log_error("cannot write user-data files", "error=%s", log_quote(q, sizeof(q), err.msg));
		userdata_free(ud);
		return PUD_EXIT_WRITE;
	}
	userdata_free(ud);
	return PUD_EXIT_OK;
}

static int pud_provision_files(struct pud_opts *o)
{
	struct pp_err err = { 0 };
	char q[PUD_LOG_VALUE_MAX];
	int r;

	if (metadata_init(&err) < 0) {
		log_error("cannot initialise", "error=%s", log_quote(q, sizeof(q), err.msg));
		return PUD_EXIT_NO_USERDATA;
	}
	r = pud_provision_userdata(o);
	metadata_fini();
	if (r != PUD_EXIT_OK)
		return r;
	if (initdata_provision(o->md.root, stdout, &err) < 0) {
		log_error("cannot process initdata", "error=%s", log_quote(q, sizeof(q), err.msg));
		return PUD_EXIT_INITDATA;
	}
	return PUD_EXIT_OK;
}

int main(int argc, char **argv)
{
	struct pud_opts o = { .timeout_s = PUD_DEFAULT_TIMEOUT_S };
	int r;

	log_init("process-user-data", 2);
	r = pud_parse_args(argc, argv, &o);
	if (r != 0)
		return r > 0 ? PUD_EXIT_OK : PUD_EXIT_USAGE;
	return pud_provision_files(&o);
}
