/*
 * cloud-api-adaptor: the peer-pods node daemon.
 *
 *   cloud-api-adaptor <provider> [flags]      run the daemon (providers: see `help`)
 *   cloud-api-adaptor ls [-state-dir DIR]     list sandboxes from state.db
 *   cloud-api-adaptor gc <provider> [--dry-run] [flags]
 *   cloud-api-adaptor version | help
 *
 * Configuration sources, lowest first: defaults < config file < environment < flags.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "adaptor/daemon.h"
#include "adaptor/options.h"
#include "lib/http.h"
#include "lib/log.h"

#ifndef PP_VERSION
#define PP_VERSION "dev"
#endif

extern char **environ;

static void usage(FILE *out)
{
	fprintf(out,
		"usage: cloud-api-adaptor <provider> [flags]   run the node daemon\n"
		"       cloud-api-adaptor ls [-state-dir DIR]   list sandboxes (safe while the daemon runs)\n"
		"       cloud-api-adaptor gc <provider> [--dry-run] [flags]\n"
		"                                               delete this node's leaked instances\n"
		"       cloud-api-adaptor version | help\n"
		"providers:");
	for (size_t i = 0; provider_registry[i]; i++)
		fprintf(out, " %s", provider_registry[i]->name);
	fprintf(out, "\n`cloud-api-adaptor <provider> -help` lists the flags.\n");
}

/* The config file is named by a flag or the environment, so it is looked up before the flags
 * are parsed properly (they are parsed again after, and win). */
static const char *config_file_arg(int argc, char **argv)
{
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];

		if (a[0] == '-' && a[1] == '-')
			a++;
		if (strcmp(a, "-config-file") == 0 && i + 1 < argc)
			return argv[i + 1];
		if (strncmp(a, "-config-file=", 13) == 0)
			return a + 13;
	}
	return getenv("CLOUD_API_ADAPTOR_CONFIG");
}

static struct config *load_config(const struct provider_ops *ops, int argc, char **argv,
				  bool *ret_help, struct pp_err *err)
{
	const struct config_option *tables[3] = { adaptor_options, ops ? ops->options : NULL, NULL };
	const char *file = config_file_arg(argc, argv);
	char def[512];
	struct config *cfg;
	int rest = 0;

	if (!tables[1])
		tables[1] = NULL;
	cfg = config_new(tables, err);
	if (!cfg)
		return NULL;
	if (file && *file) {
		if (config_load_file(cfg, file, true, err) < 0)
			goto fail;
	} else if (ops) {
		snprintf(def, sizeof(def), "%s/%s.conf", ADAPTOR_DEFAULT_CONFIG_DIR, ops->name);
		if (config_load_file(cfg, def, false, err) < 0)
			goto fail;
	}
	if (config_load_env(cfg, environ, err) < 0 ||
	    config_parse_args(cfg, argc, argv, &rest, ret_help, err) < 0)
		goto fail;
	if (!*ret_help && rest < argc) {
		pp_err_set(err, PP_INVALID_ARGUMENT, "unexpected argument \"%s\"", argv[rest]);
		goto fail;
	}
	return cfg;
fail:
	config_free(cfg);
	return NULL;
}

static int fail_with(const struct pp_err *err)
{
	fprintf(stderr, "cloud-api-adaptor: %s\n", err->msg);
	return 1;
}

static int cmd_ls(int argc, char **argv)
{
	struct pp_err err = { 0 };
	bool help = false;
	struct config *cfg = load_config(NULL, argc, argv, &help, &err);
	int rc;

	if (!cfg)
		return fail_with(&err);
	if (help) {
		printf("usage: cloud-api-adaptor ls [-state-dir DIR]\n");
		config_free(cfg);
		return 0;
	}
	rc = admin_ls(config_str(cfg, "STATE_DIR"), stdout, &err);
	config_free(cfg);
	return rc < 0 ? fail_with(&err) : 0;
}

static const struct provider_ops *provider_arg(const char *name)
{
	const struct provider_ops *ops = provider_lookup(name);

	if (!ops) {
		fprintf(stderr, "cloud-api-adaptor: unknown provider \"%s\"\n", name);
		usage(stderr);
	}
	return ops;
}

static int cmd_gc(int argc, char **argv)
{
	const struct provider_ops *ops;
	struct pp_err err = { 0 };
	bool help = false, dry_run = false;
	struct config *cfg;
	char **args;
	int n = 0, rc;

	if (argc < 1 || argv[0][0] == '-') {
		fprintf(stderr, "usage: cloud-api-adaptor gc <provider> [--dry-run] [flags]\n");
		return 1;
	}
	ops = provider_arg(argv[0]);
	if (!ops)
		return 1;
	args = calloc((size_t)argc, sizeof(*args));
	if (!args)
		return 1;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--dry-run") == 0 || strcmp(argv[i], "-dry-run") == 0)
			dry_run = true;
		else
			args[n++] = argv[i];
	}
	cfg = load_config(ops, n, args, &help, &err);
	free(args);
	if (!cfg)
		return fail_with(&err);
	rc = help ? 0 : admin_gc(cfg, ops, dry_run, &err);
	config_free(cfg);
	return rc < 0 ? fail_with(&err) : 0;
}

static int cmd_run(const struct provider_ops *ops, int argc, char **argv)
{
	struct pp_err err = { 0 };
	struct daemon d;
	bool help = false;
	enum log_level lvl;
	struct config *cfg = load_config(ops, argc, argv, &help, &err);
	int rc;

	if (!cfg)
		return fail_with(&err);
	if (help) {
		printf("usage: cloud-api-adaptor %s [flags]\n\n", ops->name);
		config_usage(cfg, stdout);
		config_free(cfg);
		return 0;
	}
	if (config_bool(cfg, "PRINT_CONFIG")) {
		config_print(cfg, stdout);
		config_free(cfg);
		return 0;
	}
	if (log_level_parse(config_str(cfg, "LOG_LEVEL"), &lvl) < 0) {
		fprintf(stderr, "cloud-api-adaptor: LOG_LEVEL \"%s\" is not one of error, warn, info, debug\n",
			config_str(cfg, "LOG_LEVEL"));
		config_free(cfg);
		return 1;
	}
	log_set_level(lvl);
	log_info("starting", "version=%s provider=%s", PP_VERSION, ops->name);
	rc = daemon_init(&d, cfg, ops, &err);
	if (rc == 0)
		rc = daemon_run(&d, &err);
	if (rc < 0)
		log_error("cannot run", "error=\"%s\"", err.msg);
	daemon_fini(&d);
	config_free(cfg);
	return rc < 0 ? 1 : 0;
}

static int dispatch(int argc, char **argv)
{
	const struct provider_ops *ops;

	if (argc < 2) {
		usage(stderr);
		return 1;
	}
	if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "-version") == 0 ||
	    strcmp(argv[1], "--version") == 0) {
		printf("cloud-api-adaptor %s\n", PP_VERSION);
		return 0;
	}
	if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "-help") == 0 ||
	    strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "ls") == 0)
		return cmd_ls(argc - 2, argv + 2);
	if (strcmp(argv[1], "gc") == 0)
		return cmd_gc(argc - 2, argv + 2);
	if (argv[1][0] == '-') {
		usage(stderr);
		return 1;
	}
	ops = provider_arg(argv[1]);
	if (!ops)
		return 1;
	return cmd_run(ops, argc - 2, argv + 2);
}

int main(int argc, char **argv)
{
	struct pp_err err = { 0 };
	int rc;

	pp_malloc_tune();
	log_init("adaptor", 2);
	/* libcurl's global state, once, before any thread starts. */
	if (http_global_init(&err) < 0) {
		fprintf(stderr, "cloud-api-adaptor: %s\n", err.msg);
		return 1;
	}
	rc = dispatch(argc, argv);
	http_global_fini();
	return rc;
}
