/* Tests for lib/config: source precedence, typed parsing with errors naming option, text and
 * source, flags syntax, config file syntax, secret redaction, usage. */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "lib/config.h"
#include "lib/fileutil.h"
#include "lib/util.h"

#define SECRET_VALUE "wJalrXUtnFEMI-K7MDENG-bPxRfiCYzzz"

static const struct config_option COMMON[] = {
	{ "PROXY_TIMEOUT", "proxy-timeout", "PROXY_TIMEOUT", CFG_DURATION, "5m", 0,
	  "How long to wait for the agent" },
	{ "PODS_DIR", "pods-dir", "PODS_DIR", CFG_STRING, "/run/peerpod/pods", 0,
	  "Where per-pod sockets live" },
	{ "DISABLECVM", "disable-cvm", "DISABLECVM", CFG_BOOL, "false", 0, "Use plain VMs" },
	{ "MAX_PODS", "max-pods", "MAX_PODS", CFG_INT, "10", 0, "Pods per node" },
	{ "SOCKET", "socket", NULL, CFG_STRING, "/run/peerpod/hypervisor.sock", 0,
	  "Hypervisor socket (flag only)" },
	{ NULL },
};

static const struct config_option PROVIDER[] = {
	{ "INSTANCE_TYPES", "instance-types", "PODVM_INSTANCE_TYPES", CFG_LIST, NULL, 0,
	  "Allowed instance types" },
	{ "TAGS", "tags", "TAGS", CFG_KEYVALUE, NULL, 0, "Tags for instances" },
	{ "AWS_SECRET_ACCESS_KEY", "aws-secret-key", "AWS_SECRET_ACCESS_KEY", CFG_STRING, NULL,
	  CFG_SECRET | CFG_REQUIRED, "AWS secret key" },
	{ "FILE_ONLY", NULL, NULL, CFG_STRING, NULL, 0, "Only from the file" },
	{ NULL },
};

static const struct config_option *const TABLES[] = { COMMON, PROVIDER, NULL };

struct fixture {
	struct config *c;
	char dir[64];
	char path[128];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct pp_err err = { 0 };

	snprintf(f->dir, sizeof(f->dir), "/tmp/pp-test-config-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/aws.conf", f->dir);
	f->c = config_new(TABLES, &err);
	if (!f->c)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	struct pp_err err = { 0 };

	config_free(f->c);
	rm_rf(f->dir, &err);
	free(f);
	return 0;
}

static void write_conf(struct fixture *f, const char *text)
{
	struct pp_err err = { 0 };

	assert_int_equal(file_write_atomic(f->path, text, strlen(text), 0600, &err), 0);
}

/* Runs config_parse_args over a NULL-terminated list of arguments. */
static int parse_flags(struct config *c, int *rest, bool *help, struct pp_err *err, ...)
{
	char *argv[16];
	va_list ap;
	int argc = 0;

	va_start(ap, err);
	while (argc < 15 && (argv[argc] = va_arg(ap, char *)))
		argc++;
	va_end(ap);
	argv[argc] = NULL;
	return config_parse_args(c, argc, argv, rest, help, err);
}

static void test_defaults(void **state)
{
	struct fixture *f = *state;
	size_t n = 9;

	assert_int_equal(config_duration_ms(f->c, "PROXY_TIMEOUT"), 300000);
	assert_string_equal(config_str(f->c, "PODS_DIR"), "/run/peerpod/pods");
	assert_false(config_bool(f->c, "DISABLECVM"));
	assert_int_equal(config_int(f->c, "MAX_PODS"), 10);
	assert_null(config_list(f->c, "INSTANCE_TYPES", &n)[0]);
	assert_int_equal(n, 0);
	assert_string_equal(config_secret(f->c, "AWS_SECRET_ACCESS_KEY"), "");
	assert_string_equal(config_source(f->c, "MAX_PODS"), "default");
	assert_false(config_is_set(f->c, "MAX_PODS"));
}

static void test_precedence(void **state)
{
	struct fixture *f = *state;
	char *envp[] = { "MAX_PODS=30", "PROXY_TIMEOUT=", "PODS_DIR=/env/pods", NULL };
	struct pp_err err = { 0 };
	int rest = -1;

	write_conf(f, "MAX_PODS=20\nPODS_DIR=/file/pods\nDISABLECVM=true\n"
		      "PROXY_TIMEOUT=10s\n");
	assert_int_equal(config_load_file(f->c, f->path, true, &err), 0);
	/* file beats default */
	assert_int_equal(config_int(f->c, "MAX_PODS"), 20);
	assert_string_equal(config_source(f->c, "MAX_PODS"), "file");
	assert_true(config_is_set(f->c, "MAX_PODS"));
	assert_int_equal(config_load_env(f->c, envp, &err), 0);
	/* env beats file; an empty env var is ignored */
	assert_int_equal(config_int(f->c, "MAX_PODS"), 30);
	assert_string_equal(config_source(f->c, "MAX_PODS"), "env");
	assert_int_equal(config_duration_ms(f->c, "PROXY_TIMEOUT"), 10000);
	assert_string_equal(config_source(f->c, "PROXY_TIMEOUT"), "file");
	assert_true(config_bool(f->c, "DISABLECVM"));
	assert_int_equal(parse_flags(f->c, &rest, NULL, &err, "-max-pods", "40", NULL), 0);
	/* flag beats env */
	assert_int_equal(config_int(f->c, "MAX_PODS"), 40);
	assert_string_equal(config_source(f->c, "MAX_PODS"), "flag");
	assert_string_equal(config_str(f->c, "PODS_DIR"), "/env/pods");
	assert_int_equal(rest, 2);
}

static void test_flag_only_not_from_env(void **state)
{
	struct fixture *f = *state;
	char *envp[] = { "SOCKET=/env.sock", "FILE_ONLY=x", "PODVM_INSTANCE_TYPES=a, b,,c ",
			 "INSTANCE_TYPES=ignored", NULL };
	struct pp_err err = { 0 };
	const char *const *l;
	size_t n;

	assert_int_equal(config_load_env(f->c, envp, &err), 0);
	assert_string_equal(config_str(f->c, "SOCKET"), "/run/peerpod/hypervisor.sock");
	assert_string_equal(config_str(f->c, "FILE_ONLY"), "");
	/* the env name, not the option name, is what the environment is searched for */
	l = config_list(f->c, "INSTANCE_TYPES", &n);
	assert_int_equal(n, 3);
	assert_string_equal(l[0], "a");
	assert_string_equal(l[1], "b");
	assert_string_equal(l[2], "c");
	assert_null(l[3]);
}

static void test_flag_forms(void **state)
{
	struct fixture *f = *state;
	struct pp_err err = { 0 };
	bool help = true;
	int rest = -1;

	assert_int_equal(parse_flags(f->c, &rest, &help, &err, "--pods-dir=/a", "-socket", "/s",
				     "-disable-cvm", "-proxy-timeout=1h30m", "--max-pods", "-3",
				     "create", "-x", NULL), 0);
	assert_string_equal(config_str(f->c, "PODS_DIR"), "/a");
	assert_string_equal(config_str(f->c, "SOCKET"), "/s");
	assert_true(config_bool(f->c, "DISABLECVM"));
	assert_int_equal(config_duration_ms(f->c, "PROXY_TIMEOUT"), 5400000);
	assert_int_equal(config_int(f->c, "MAX_PODS"), -3);
	assert_int_equal(rest, 7);   /* "create": the first non-flag */
	assert_false(help);
	assert_int_equal(parse_flags(f->c, &rest, &help, &err, "-disable-cvm=false", "--",
				     "-not-a-flag", NULL), 0);
	assert_false(config_bool(f->c, "DISABLECVM"));
	assert_int_equal(rest, 2);
	assert_int_equal(parse_flags(f->c, &rest, &help, &err, "-max-pods=1", "--help",
				     "-unknown", NULL), 0);
	assert_true(help);
	assert_int_equal(config_int(f->c, "MAX_PODS"), 1);
}

static void test_flag_errors(void **state)
{
	struct fixture *f = *state;
	struct pp_err err = { 0 };
	int rest = 99;

	assert_int_equal(parse_flags(f->c, &rest, NULL, &err, "-max-pods=5", "-no-such-flag=1",
				     NULL), -1);
	assert_int_equal(err.code, PP_INVALID_ARGUMENT);
	assert_string_equal(err.msg, "unknown flag \"-no-such-flag\"");
	assert_int_equal(rest, 99);
	/* all or nothing: the valid flag before the bad one was not applied */
	assert_int_equal(config_int(f->c, "MAX_PODS"), 10);
	assert_int_equal(parse_flags(f->c, &rest, NULL, &err, "-pods-dir", NULL), -1);
	assert_string_equal(err.msg, "flag -pods-dir needs a value");
	assert_int_equal(parse_flags(f->c, &rest, NULL, &err, "--proxy-timeout", "abc", NULL), -1);
	assert_string_equal(err.msg,
			    "PROXY_TIMEOUT: \"abc\" is not a duration (from flag -proxy-timeout)");
	assert_int_equal(parse_flags(f->c, &rest, NULL, &err, "-max-pods=", NULL), -1);
	assert_string_equal(err.msg, "MAX_PODS: \"\" is not an integer (from flag -max-pods)");
}

static void test_bad_values_name_source(void **state)
{
	struct fixture *f = *state;
	char *env_dur[] = { "PROXY_TIMEOUT=abc", NULL };
	char *env_int[] = { "MAX_PODS=12x", NULL };
	char *env_big[] = { "MAX_PODS=99999999999999999999", NULL };
	char *env_bool[] = { "DISABLECVM=maybe", NULL };
	char *env_kv[] = { "TAGS=owner=me,team", NULL };
	char *env_ok[] = { "MAX_PODS=7", "TAGS= owner=me , a=b=c,", NULL };
	struct pp_err err = { 0 };
	const char *const *l;
	size_t n;

	assert_int_equal(config_load_env(f->c, env_dur, &err), -1);
	assert_string_equal(err.msg, "PROXY_TIMEOUT: \"abc\" is not a duration (from environment)");
	assert_int_equal(config_load_env(f->c, env_int, &err), -1);
	assert_string_equal(err.msg, "MAX_PODS: \"12x\" is not an integer (from environment)");
	assert_int_equal(config_load_env(f->c, env_big, &err), -1);
	assert_string_equal(err.msg, "MAX_PODS: \"99999999999999999999\" is not an integer in "
				     "range (from environment)");
	assert_int_equal(config_load_env(f->c, env_bool, &err), -1);
	assert_string_equal(err.msg, "DISABLECVM: \"maybe\" is not a boolean (true/false, yes/no, "
				     "1/0) (from environment)");
	assert_int_equal(config_load_env(f->c, env_kv, &err), -1);
	assert_string_equal(err.msg, "TAGS: \"owner=me,team\" is not a list of key=value pairs "
				     "(from environment)");
	assert_int_equal(config_int(f->c, "MAX_PODS"), 10);   /* nothing changed */
	assert_int_equal(config_load_env(f->c, env_ok, &err), 0);
	assert_int_equal(config_int(f->c, "MAX_PODS"), 7);
	l = config_list(f->c, "TAGS", &n);
	assert_int_equal(n, 2);
	assert_string_equal(l[0], "owner=me");
	assert_string_equal(l[1], "a=b=c");
}

static void test_bool_values(void **state)
{
	static const char *const yes[] = { "1", "true", "TRUE", "yes", "Yes" };
	static const char *const no[] = { "0", "false", "False", "no", "NO" };
	bool b;
	size_t i;

	(void)state;
	for (i = 0; i < PP_ARRAY_SIZE(yes); i++) {
		assert_int_equal(config_parse_bool(yes[i], &b), 0);
		assert_true(b);
		assert_int_equal(config_parse_bool(no[i], &b), 0);
		assert_false(b);
	}
	assert_int_equal(config_parse_bool("", &b), -1);
	assert_int_equal(config_parse_bool("on", &b), -1);
	assert_int_equal(config_parse_bool("2", &b), -1);
}

static void test_durations(void **state)
{
	static const struct {
		const char *text;
		uint64_t ms;
	} ok[] = {
		{ "300ms", 300 }, { "5s", 5000 }, { "5m", 300000 }, { "1h30m", 5400000 },
		{ "90", 90000 }, { "0", 0 }, { "1.5s", 1500 }, { "2h45m30.5s", 9930500 },
		{ "1500us", 1 }, { "1500000ns", 1 }, { "0.5m", 30000 }, { ".5s", 500 },
		{ "1\xc2\xb5s", 0 },
	};
	static const char *const bad[] = { "", "abc", "-5s", "5x", "s", "1h30", "5 s", " 5s",
					   "1.5", "99999999999h", "+5s", "5.s.", "." };
	uint64_t ms;
	size_t i;

	(void)state;
	for (i = 0; i < PP_ARRAY_SIZE(ok); i++) {
		assert_int_equal(config_parse_duration_ms(ok[i].text, &ms), 0);
		assert_true(ms == ok[i].ms);
	}
	for (i = 0; i < PP_ARRAY_SIZE(bad); i++) {
		ms = 12345;
		if (config_parse_duration_ms(bad[i], &ms) == 0)
			fail_msg("duration \"%s\" accepted as %ju ms", bad[i], (uintmax_t)ms);
	}
}

static void test_file_syntax(void **state)
{
	struct fixture *f = *state;
	struct pp_err err = { 0 };

	write_conf(f, "# peer-pods-cm for aws\n\n  PODS_DIR = \"/quoted dir\" \r\n"
		      "FILE_ONLY='single'\nMAX_PODS=\"\"\nINSTANCE_TYPES=m6a.large,c6a.xlarge\n"
		      "TAGS=\n");
	assert_int_equal(config_load_file(f->c, f->path, true, &err), 0);
	assert_string_equal(config_str(f->c, "PODS_DIR"), "/quoted dir");
	assert_string_equal(config_str(f->c, "FILE_ONLY"), "single");
	assert_string_equal(config_source(f->c, "FILE_ONLY"), "file");
	/* an empty value is like an unset variable: the default stays */
	assert_int_equal(config_int(f->c, "MAX_PODS"), 10);
	assert_string_equal(config_source(f->c, "MAX_PODS"), "default");
	assert_string_equal(config_list(f->c, "INSTANCE_TYPES", NULL)[1], "c6a.xlarge");
}

static void test_file_errors(void **state)
{
	struct fixture *f = *state;
	struct pp_err err = { 0 };
	char want[PP_ERR_MSG_MAX];

	write_conf(f, "MAX_PODS=20\n# comment\nAWS_REGIN=us-east-1\n");
	assert_int_equal(config_load_file(f->c, f->path, true, &err), -1);
	snprintf(want, sizeof(want), "%s:3: unknown option \"AWS_REGIN\"", f->path);
	assert_string_equal(err.msg, want);
	assert_int_equal(config_int(f->c, "MAX_PODS"), 10);   /* all or nothing */

	write_conf(f, "MAX_PODS=20\nPROXY_TIMEOUT=abc\n");
	assert_int_equal(config_load_file(f->c, f->path, true, &err), -1);
	snprintf(want, sizeof(want), "PROXY_TIMEOUT: \"abc\" is not a duration (from file %s:2)",
		 f->path);
	assert_string_equal(err.msg, want);

	write_conf(f, "just some words\n");
	assert_int_equal(config_load_file(f->c, f->path, true, &err), -1);
	snprintf(want, sizeof(want), "%s:1: expected KEY=VALUE", f->path);
	assert_string_equal(err.msg, want);

	/* a missing file is fine unless it must exist */
	snprintf(f->path, sizeof(f->path), "%s/missing.conf", f->dir);
	assert_int_equal(config_load_file(f->c, f->path, false, &err), 0);
	assert_int_equal(config_load_file(f->c, f->path, true, &err), -1);
	assert_int_equal(err.code, PP_NOT_FOUND);
	assert_non_null(strstr(err.msg, f->path));
}

static char *capture(void (*fn)(const struct config *, FILE *), const struct config *c)
{
	char *out = NULL;
	size_t n = 0;
	FILE *fp = open_memstream(&out, &n);

	assert_non_null(fp);
	fn(c, fp);
	fclose(fp);
	return out;
}

static void test_secret_redacted(void **state)
{
	struct fixture *f = *state;
	char *envp[] = { "AWS_SECRET_ACCESS_KEY=" SECRET_VALUE, NULL };
	struct pp_err err = { 0 };
	char *out;

	out = capture(config_print, f->c);
	assert_non_null(strstr(out, "AWS_SECRET_ACCESS_KEY= # default\n"));
	assert_non_null(strstr(out, "PROXY_TIMEOUT=5m # default\n"));
	free(out);
	assert_int_equal(config_load_env(f->c, envp, &err), 0);
	assert_string_equal(config_secret(f->c, "AWS_SECRET_ACCESS_KEY"), SECRET_VALUE);
	out = capture(config_print, f->c);
	assert_non_null(strstr(out, "AWS_SECRET_ACCESS_KEY=<redacted> # env\n"));
	assert_null(strstr(out, "wJalr"));
	free(out);
}

static void test_print_quotes(void **state)
{
	struct fixture *f = *state;
	struct pp_err err = { 0 };
	char *out;

	assert_int_equal(config_set(f->c, "PODS_DIR", "/a b#c", &err), 0);
	out = capture(config_print, f->c);
	assert_non_null(strstr(out, "PODS_DIR=\"/a b#c\" # flag\n"));
	free(out);
	assert_int_equal(config_set(f->c, "NOPE", "x", &err), -1);
	assert_string_equal(err.msg, "unknown option \"NOPE\"");
	assert_int_equal(config_set(f->c, "MAX_PODS", "x", &err), -1);
	assert_string_equal(err.msg, "MAX_PODS: \"x\" is not an integer (from the program)");
}

static void test_required(void **state)
{
	struct fixture *f = *state;
	struct pp_err err = { 0 };
	int rest;

	assert_int_equal(config_check_required(f->c, &err), -1);
	assert_string_equal(err.msg, "AWS_SECRET_ACCESS_KEY is required (set environment variable "
				     "AWS_SECRET_ACCESS_KEY or flag -aws-secret-key)");
	assert_int_equal(parse_flags(f->c, &rest, NULL, &err, "-aws-secret-key", "bad\"value",
				     NULL), 0);
	assert_int_equal(config_check_required(f->c, &err), 0);
}

static void test_secret_bad_value_not_echoed(void **state)
{
	static const struct config_option opts[] = {
		{ "TOKEN_TTL", "token-ttl", "TOKEN_TTL", CFG_DURATION, NULL, CFG_SECRET, "ttl" },
		{ NULL },
	};
	static const struct config_option *const tables[] = { opts, NULL };
	char *envp[] = { "TOKEN_TTL=hunter2", NULL };
	struct pp_err err = { 0 };
	struct config *c = config_new(tables, &err);

	(void)state;
	assert_non_null(c);
	assert_int_equal(config_load_env(c, envp, &err), -1);
	assert_string_equal(err.msg, "TOKEN_TTL: the value is not a duration (from environment)");
	config_free(c);
}

static void test_bad_tables(void **state)
{
	static const struct config_option bad_default[] = {
		{ "N", "n", "N", CFG_INT, "ten", 0, "n" },
		{ NULL },
	};
	static const struct config_option dup[] = {
		{ "MAX_PODS", "other", NULL, CFG_INT, NULL, 0, "dup" },
		{ NULL },
	};
	static const struct config_option *const t1[] = { bad_default, NULL };
	static const struct config_option *const t2[] = { COMMON, dup, NULL };
	struct pp_err err = { 0 };

	(void)state;
	assert_null(config_new(t1, &err));
	assert_string_equal(err.msg, "N: \"ten\" is not an integer (from default)");
	assert_null(config_new(t2, &err));
	assert_string_equal(err.msg, "option MAX_PODS is defined twice");
}

static void test_usage(void **state)
{
	struct fixture *f = *state;
	char *out = capture(config_usage, f->c);

	assert_non_null(strstr(out, "  -proxy-timeout, PROXY_TIMEOUT <duration>  How long to wait "
				    "for the agent (default \"5m\")\n"));
	assert_non_null(strstr(out, "  -socket <string>  Hypervisor socket (flag only) (default "
				    "\"/run/peerpod/hypervisor.sock\")\n"));
	assert_non_null(strstr(out, "  -aws-secret-key, AWS_SECRET_ACCESS_KEY <string>  AWS "
				    "secret key (required) (secret)\n"));
	assert_non_null(strstr(out, "  FILE_ONLY (config file) <string>"));
	assert_non_null(strstr(out, "  -instance-types, PODVM_INSTANCE_TYPES <list>"));
	free(out);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_defaults),
		T(test_precedence),
		T(test_flag_only_not_from_env),
		T(test_flag_forms),
		T(test_flag_errors),
		T(test_bad_values_name_source),
		cmocka_unit_test(test_bool_values),
		cmocka_unit_test(test_durations),
		T(test_file_syntax),
		T(test_file_errors),
		T(test_secret_redacted),
		T(test_print_quotes),
		T(test_required),
		cmocka_unit_test(test_secret_bad_value_not_echoed),
		cmocka_unit_test(test_bad_tables),
		T(test_usage),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
