/* Tests for lib/log: line format, quoting, level filtering, one line per event. */
#include <pthread.h>
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "lib/log.h"

/* Logs into a temporary file; read_back returns everything written so far. */
static FILE *log_file;

static int setup(void **state)
{
	(void)state;
	log_file = tmpfile();
	if (!log_file)
		return -1;
	log_init("testcomp", fileno(log_file));
	log_set_level(LOG_LVL_INFO);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	log_init("testcomp", 2);
	fclose(log_file);
	return 0;
}

static char *read_back(void)
{
	long n = lseek(fileno(log_file), 0, SEEK_END);
	char *s = calloc(1, (size_t)n + 1);

	assert_int_equal(pread(fileno(log_file), s, (size_t)n, 0), n);
	return s;
}

static void test_format(void **state)
{
	regex_t re;
	char *out;

	(void)state;
	log_info("VM created", "sandbox=%s instance=%s", "abc", "podvm-x");
	out = read_back();
	assert_int_equal(regcomp(&re,
				 "^time=[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "
				 "level=info comp=testcomp msg=\"VM created\" sandbox=abc instance=podvm-x\n$",
				 REG_EXTENDED), 0);
	assert_int_equal(regexec(&re, out, 0, NULL, 0), 0);
	regfree(&re);
	free(out);
}

static void test_msg_always_quoted_no_fields(void **state)
{
	char *out;

	(void)state;
	log_warn("starting", "");
	log_error("say \"hi\"\n", NULL);
	out = read_back();
	assert_non_null(strstr(out, " level=warn comp=testcomp msg=\"starting\"\n"));
	assert_non_null(strstr(out, " level=error comp=testcomp msg=\"say \\\"hi\\\"\\n\"\n"));
	free(out);
}

static void test_level_filter(void **state)
{
	enum log_level l;
	char *out;

	(void)state;
	log_debug("hidden", "k=%d", 1);
	log_set_level(LOG_LVL_WARN);
	log_info("hidden too", "");
	log_warn("shown", "");
	assert_false(log_enabled(LOG_LVL_INFO));
	assert_true(log_enabled(LOG_LVL_ERROR));
	out = read_back();
	assert_null(strstr(out, "hidden"));
	assert_non_null(strstr(out, "msg=\"shown\""));
	free(out);
	assert_int_equal(log_level_parse("debug", &l), 0);
	assert_int_equal(l, LOG_LVL_DEBUG);
	assert_int_equal(log_level_parse("WARN", &l), 0);
	assert_int_equal(l, LOG_LVL_WARN);
	assert_int_equal(log_level_parse("verbose", &l), -1);
}

static void test_quote(void **state)
{
	char b[64], small[10];
	char *out;

	(void)state;
	assert_string_equal(log_quote(b, sizeof(b), "plain-value"), "plain-value");
	assert_string_equal(log_quote(b, sizeof(b), "two words"), "\"two words\"");
	assert_string_equal(log_quote(b, sizeof(b), "a=b"), "\"a=b\"");
	assert_string_equal(log_quote(b, sizeof(b), "q\"\\\n"), "\"q\\\"\\\\\\n\"");
	assert_string_equal(log_quote(b, sizeof(b), ""), "\"\"");
	log_quote(small, sizeof(small), "a long value with spaces");
	assert_true(strlen(small) < sizeof(small));
	assert_int_equal(small[0], '"');
	assert_int_equal(small[strlen(small) - 1], '"');
	/* a raw newline in a field never splits the event */
	log_info("free text", "err=%s", "line1\nline2");
	out = read_back();
	assert_non_null(strstr(out, "err=line1 line2\n"));
	free(out);
}

static void test_long_line_truncated(void **state)
{
	char *big = malloc(10000), *out, *nl;

	(void)state;
	memset(big, 'x', 9999);
	big[9999] = '\0';
	log_info("big", "v=%s", big);
	out = read_back();
	nl = strchr(out, '\n');
	assert_non_null(nl);
	assert_int_equal(nl[1], '\0');   /* exactly one line */
	assert_non_null(strstr(out, " truncated=true\n"));
	free(out);
	free(big);
}

#define THREADS 4
#define LINES 200
#define PAD "................................................................"
#define PAD_FIELD " pad=" PAD

static void *log_many(void *arg)
{
	int i;

	for (i = 0; i < LINES; i++)
		log_info("tick", "thread=%d i=%d pad=%s", (int)(intptr_t)arg, i, PAD);
	return NULL;
}

static void test_threads_whole_lines(void **state)
{
	pthread_t th[THREADS];
	char *out, *line, *save = NULL;
	int i, n = 0;

	(void)state;
	for (i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, log_many, (void *)(intptr_t)i), 0);
	for (i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	out = read_back();
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		assert_true(strncmp(line, "time=", 5) == 0);
		/* whole lines only: each ends with the complete padding field */
		assert_non_null(strstr(line, " level=info comp=testcomp msg=\"tick\" thread="));
		assert_true(strlen(line) > strlen(PAD_FIELD));
		assert_string_equal(line + strlen(line) - strlen(PAD_FIELD), PAD_FIELD);
		n++;
	}
	assert_int_equal(n, THREADS * LINES);
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_format, setup, teardown),
		cmocka_unit_test_setup_teardown(test_msg_always_quoted_no_fields, setup, teardown),
		cmocka_unit_test_setup_teardown(test_level_filter, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quote, setup, teardown),
		cmocka_unit_test_setup_teardown(test_long_line_truncated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_threads_whole_lines, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
