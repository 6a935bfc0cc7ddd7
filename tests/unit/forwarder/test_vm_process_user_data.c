/* process-user-data end to end: the real binary, run in a temporary root, reading user-data from
 * a cidata directory or from a loopback fake AWS metadata service, checked by what it leaves on
 * disk, what it prints and its exit status. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fake_http.h"
#include "forwarder/initdata.h"
#include "vm_test_util.h"

#ifndef PUD_BINARY
#error "PUD_BINARY must name the process-user-data executable"
#endif

#define TOKEN "imds-token-123"

static const char initdata_toml[] =
	"algorithm = \"sha512\"\n"
	"version = \"0.1.0\"\n"
	"[data]\n"
	"\"aa.toml\" = '''\n[token_configs.kbs]\nurl = \"http://kbs:8080\"\n'''\n"
	"\"cdh.toml\" = '''\n[kbc]\nname = \"cc_kbc\"\n'''\n"
	"\"policy.rego\" = '''\npackage agent_policy\n'''\n";

struct run {
	int status;       /* exit status, or -1 when killed */
	char *out;        /* stdout */
	char *errout;     /* stderr */
	long elapsed_ms;
};

/* Runs the binary with args (NULL-terminated), stdout/stderr captured in files under root. */
static void run_pud(const char *root, const char *const *args, struct run *r)
{
	char out_path[128], err_path[128];
	const char *argv[32] = { PUD_BINARY };
	posix_spawn_file_actions_t fa;
	struct timespec t0, t1;
	size_t i;
	pid_t pid;
	int st;

	for (i = 0; args[i]; i++)
		argv[i + 1] = args[i];
	snprintf(out_path, sizeof(out_path), "%s/stdout", root);
	snprintf(err_path, sizeof(err_path), "%s/stderr", root);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	posix_spawn_file_actions_addopen(&fa, 2, err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(posix_spawn(&pid, PUD_BINARY, &fa, NULL, (char *const *)argv, environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	r->elapsed_ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	r->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	r->out = vt_read(root, "/stdout", NULL);
	r->errout = vt_read(root, "/stderr", NULL);
}

static void run_free(struct run *r)
{
	free(r->out);
	free(r->errout);
}

/* The user-data text in upstream's shape with the given files. */
static char *make_userdata(const char *apf, const char *initdata_b64)
{
	char *doc = malloc(16384);
	int n = snprintf(doc, 16384,
			 "#cloud-config\n\nwrite_files:\n"
			 "  - path: /run/peerpod/apf.json\n    content: |\n      %s\n"
			 "  - path: /run/peerpod/auth.json\n    content: |\n      {\"auths\":{}}\n"
			 "  - path: /etc/passwd\n    content: |\n      root::0:0::/:/bin/sh\n",
			 apf);
	if (initdata_b64)
		n += snprintf(doc + n, 16384 - (size_t)n,
			      "  - path: /run/peerpod/initdata\n    content: |\n      %s\n", initdata_b64);
	snprintf(doc + n, 16384 - (size_t)n, "  - path: /run/peerpod/scratch-space.marker\n");
	return doc;
}

static void make_dir(const char *root, const char *rel)
{
	char p[256];

	snprintf(p, sizeof(p), "%s%s", root, rel);
	assert_int_equal(mkdir_p(p, 0755, NULL), 0);
}

static void test_cidata_end_to_end(void **state)
{
	(void)state;
	char root[64], vmroot[128], cidata[128], want[129], *enc, *ud, *digest, *apf, *pol;
	struct run r;

	vt_tmpdir(root, sizeof(root));
	snprintf(vmroot, sizeof(vmroot), "%s/vm", root);
	snprintf(cidata, sizeof(cidata), "%s/cidata", root);
	make_dir(root, "/cidata");
	assert_int_equal(initdata_encode(initdata_toml, strlen(initdata_toml), &enc, NULL), 0);
	ud = make_userdata("{\"pod-name\": \"web\", \"tls-server-key\": \"k\"}", enc);
	vt_write(root, "/cidata/user-data", ud);

	run_pud(root, (const char *[]){ "provision-files", "--root", vmroot, "--cidata", cidata, "-t", "5", NULL }, &r);
	if (r.status != 0)
		fail_msg("exit %d, stderr:\n%s", r.status, r.errout);
	apf = vt_read(vmroot, "/run/peerpod/apf.json", NULL);
	assert_string_equal(apf, "{\"pod-name\": \"web\", \"tls-server-key\": \"k\"}\n");
	assert_int_equal(vt_mode(vmroot, "/run/peerpod/apf.json"), 0600);
	assert_int_equal(vt_mode(vmroot, "/run/peerpod/auth.json"), 0600);
	assert_int_equal(vt_mode(vmroot, "/run/peerpod/scratch-space.marker"), 0644);
	assert_int_equal(vt_mode(vmroot, "/etc/passwd"), -1);
	digest = vt_read(vmroot, "/run/peerpod/initdata.digest", NULL);
	vt_sha_hex("SHA512", initdata_toml, strlen(initdata_toml), want);
	assert_string_equal(digest, want);
	pol = vt_read(vmroot, "/run/peerpod/policy.rego", NULL);
	assert_string_equal(pol, "package agent_policy\n");
	assert_non_null(strstr(r.out, "/run/peerpod/apf.json (43 bytes, mode 0600)"));
	assert_non_null(strstr(r.out, "/run/peerpod/initdata.digest (128 bytes, mode 0644)"));
	assert_null(strstr(r.out, "passwd"));
	assert_non_null(strstr(r.errout, "provider=cidata"));
	assert_non_null(strstr(r.errout, "skipping user-data file not in the allow-list"));
	assert_null(strstr(r.errout, "tls-server-key"));
	free(enc);
	free(ud);
	free(digest);
	free(apf);
	free(pol);
	run_free(&r);
	vt_rmdir(root);
}

/* --provider aws: token PUT, then GET with the token, from a loopback fake IMDS. */
static void test_aws_end_to_end(void **state)
{
	(void)state;
	char root[64], vmroot[128], u1[128], u2[128], *ud, *apf, *digest, want[129];
	struct fake_route routes[] = {
		{ "PUT", "/latest/api/token", "X-aws-ec2-metadata-token-ttl-seconds: 60", 200, TOKEN, 0, 0 },
		{ "GET", "/latest/user-data", "X-aws-ec2-metadata-token: " TOKEN, 200, NULL, 1, 0 },
	};
	struct fake_http *s;
	struct run r;

	ud = make_userdata("{\"pod-name\": \"aws\"}", NULL);
	routes[1].body = ud;
	s = fake_http_start(routes, 2);
	vt_tmpdir(root, sizeof(root));
	snprintf(vmroot, sizeof(vmroot), "%s/vm", root);
	run_pud(root, (const char *[]){ "provision-files", "--root", vmroot, "--provider", "aws",
			"--aws-token-url", fake_http_url(s, "/latest/api/token", u1, sizeof(u1)),
			"--aws-user-data-url", fake_http_url(s, "/latest/user-data", u2, sizeof(u2)),
			"--user-data-fetch-timeout", "20", NULL }, &r);
	fake_http_stop(s);
	if (r.status != 0)
		fail_msg("exit %d, stderr:\n%s", r.status, r.errout);
	/* the first GET got 503: one retry, 5 s later */
	assert_int_equal(routes[0].hits, 2);
	assert_int_equal(routes[1].hits, 2);
	assert_true(r.elapsed_ms >= 4500);
	assert_non_null(strstr(r.errout, "user-data not available yet, retrying"));
	assert_non_null(strstr(r.errout, "HTTP status 503"));
	assert_null(strstr(r.errout, TOKEN));
	apf = vt_read(vmroot, "/run/peerpod/apf.json", NULL);
	assert_string_equal(apf, "{\"pod-name\": \"aws\"}\n");
	/* no initdata in user-data: the dummy is written and digested */
	digest = vt_read(vmroot, "/run/peerpod/initdata.digest", NULL);
	vt_sha_hex("SHA256", initdata_dummy_toml, strlen(initdata_dummy_toml), want);
	assert_string_equal(digest, want);
	free(ud);
	free(apf);
	free(digest);
	run_free(&r);
	vt_rmdir(root);
}

static void test_timeout(void **state)
{
	(void)state;
	struct fake_route routes[] = {
		{ "GET", "/latest/user-data", NULL, 404, "no user data", 0, 0 },
	};
	struct fake_http *s = fake_http_start(routes, 1);
	char root[64], vmroot[128], u[128];
	struct run r;

	vt_tmpdir(root, sizeof(root));
	snprintf(vmroot, sizeof(vmroot), "%s/vm", root);
	run_pud(root, (const char *[]){ "provision-files", "--root", vmroot, "--provider", "aws",
			"--aws-token-url", fake_http_url(s, "/latest/api/token", u, sizeof(u)),
			"--aws-user-data-url", u, "-t", "1", NULL }, &r);
	fake_http_stop(s);
	assert_int_equal(r.status, 1);
	assert_true(r.elapsed_ms < 4000);
	assert_non_null(strstr(r.errout, "no valid user-data within 1 s"));
	assert_int_equal(vt_mode(vmroot, "/run/peerpod/apf.json"), -1);
	assert_int_equal(vt_mode(vmroot, "/run/peerpod/initdata.digest"), -1);
	run_free(&r);
	vt_rmdir(root);
}

static void test_invalid_userdata(void **state)
{
	(void)state;
	char root[64], vmroot[128], cidata[128];
	struct run r;

	vt_tmpdir(root, sizeof(root));
	snprintf(vmroot, sizeof(vmroot), "%s/vm", root);
	snprintf(cidata, sizeof(cidata), "%s/cidata", root);
	make_dir(root, "/cidata");
	vt_write(root, "/cidata/user-data", "#cloud-config\nwrite_files: []\nruncmd:\n  - reboot\n");
	run_pud(root, (const char *[]){ "provision-files", "--root", vmroot, "--cidata", cidata,
			"--provider", "cidata", "-t", "0", NULL }, &r);
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.errout, "unknown key"));
	assert_non_null(strstr(r.errout, "runcmd"));
	assert_int_equal(vt_mode(vmroot, "/run/peerpod"), -1);
	run_free(&r);
	vt_rmdir(root);
}

static void test_provider_none_and_bad_initdata(void **state)
{
	(void)state;
	char root[64], vmroot[128];
	struct run r;

	vt_tmpdir(root, sizeof(root));
	snprintf(vmroot, sizeof(vmroot), "%s/vm", root);
	run_pud(root, (const char *[]){ "provision-files", "--root", vmroot, "--provider", "none", NULL }, &r);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "/run/peerpod/initdata.digest"));
	assert_int_equal(vt_mode(vmroot, "/run/peerpod/apf.json"), -1);
	assert_int_equal(vt_mode(vmroot, "/run/peerpod/aa.toml"), 0644);
	run_free(&r);

	vt_write(vmroot, "/run/peerpod/initdata", "bm90IGd6aXA=\n");  /* "not gzip" */
	{
		char digest_path[192];
		snprintf(digest_path, sizeof(digest_path), "%s/run/peerpod/initdata.digest", vmroot);
		assert_int_equal(unlink(digest_path), 0);
	}
	run_pud(root, (const char *[]){ "provision-files", "--root", vmroot, "--provider", "none", NULL }, &r);
	assert_int_equal(r.status, 4);
	assert_non_null(strstr(r.errout, "initdata is not valid gzip"));
	assert_int_equal(vt_mode(vmroot, "/run/peerpod/initdata.digest"), -1);
	run_free(&r);
	vt_rmdir(root);
}

static void test_usage(void **state)
{
	(void)state;
	char root[64];
	struct run r;

	vt_tmpdir(root, sizeof(root));
	run_pud(root, (const char *[]){ NULL }, &r);
	assert_int_equal(r.status, 2);
	assert_non_null(strstr(r.errout, "missing subcommand"));
	run_free(&r);
	run_pud(root, (const char *[]){ "provision", NULL }, &r);
	assert_int_equal(r.status, 2);
	assert_non_null(strstr(r.errout, "unknown subcommand \"provision\""));
	run_free(&r);
	run_pud(root, (const char *[]){ "provision-files", "-t", "3x", NULL }, &r);
	assert_int_equal(r.status, 2);
	assert_non_null(strstr(r.errout, "invalid --user-data-fetch-timeout \"3x\""));
	run_free(&r);
	run_pud(root, (const char *[]){ "provision-files", "--provider", "ibmcloud", NULL }, &r);
	assert_int_equal(r.status, 2);
	assert_non_null(strstr(r.errout, "unknown provider"));
	run_free(&r);
	run_pud(root, (const char *[]){ "provision-files", "--bogus", NULL }, &r);
	assert_int_equal(r.status, 2);
	run_free(&r);
	run_pud(root, (const char *[]){ "provision-files", "--help", NULL }, &r);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "--user-data-fetch-timeout"));
	run_free(&r);
	vt_rmdir(root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cidata_end_to_end),
		cmocka_unit_test(test_aws_end_to_end),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_invalid_userdata),
		cmocka_unit_test(test_provider_none_and_bad_initdata),
		cmocka_unit_test(test_usage),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
