/* The strict TOML subset reader for initdata: every accepted form, and each rejection with
 * the line and column a person needs to fix the document. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "forwarder/toml.h"

static struct toml_doc *parse_ok(const char *text)
{
	struct toml_doc *doc = NULL;
	struct pp_err err = { 0 };

	if (toml_parse(text, strlen(text), &doc, &err) < 0)
		fail_msg("unexpected TOML error: %s", err.msg);
	return doc;
}

static void expect_error(const char *text, const char *want)
{
	struct toml_doc *doc = NULL;
	struct pp_err err = { 0 };

	if (toml_parse(text, strlen(text), &doc, &err) == 0) {
		toml_free(doc);
		fail_msg("accepted invalid TOML: %s", text);
	}
	assert_null(doc);
	assert_int_equal(err.code, PP_INVALID_ARGUMENT);
	if (!strstr(err.msg, want))
		fail_msg("error \"%s\" does not contain \"%s\"", err.msg, want);
}

static const char *str_of(const struct toml_table *t, const char *key)
{
	const struct toml_value *v = toml_get(t, key);

	assert_non_null(v);
	assert_int_equal(v->type, TOML_STRING);
	assert_int_equal(v->str_len, strlen(v->str));
	return v->str;
}

static void test_string_forms(void **state)
{
	(void)state;
	struct toml_doc *doc = parse_ok(
		"basic = \"tab\\there \\\"q\\\" back\\\\slash \\u00e9 \\U0001F600\"\n"
		"literal = 'C:\\Users\\no escapes \"here\"'\n"
		"ml_basic = \"\"\"\nline1\nline2 \\\n     joined\n\"\"\"\n"
		"ml_literal = '''\nraw \\n text\n'''\n"
		"quotes_at_end = \"\"\"a\"\"\"\"\"\n"
		"lit_quotes = '''b'''''\n"
		"empty = \"\"\n"
		"empty_ml = '''\n'''\n");
	const struct toml_table *root = toml_table_get(doc, NULL);

	assert_string_equal(str_of(root, "basic"),
			    "tab\there \"q\" back\\slash \xc3\xa9 \xf0\x9f\x98\x80");
	assert_string_equal(str_of(root, "literal"), "C:\\Users\\no escapes \"here\"");
	assert_string_equal(str_of(root, "ml_basic"), "line1\nline2 joined\n");
	assert_string_equal(str_of(root, "ml_literal"), "raw \\n text\n");
	assert_string_equal(str_of(root, "quotes_at_end"), "a\"\"");
	assert_string_equal(str_of(root, "lit_quotes"), "b''");
	assert_string_equal(str_of(root, "empty"), "");
	assert_string_equal(str_of(root, "empty_ml"), "");
	toml_free(doc);
}

static void test_tables_ints_bools_comments(void **state)
{
	(void)state;
	struct toml_doc *doc = parse_ok(
		"# leading comment\r\n"
		"algorithm = \"sha384\"   # trailing comment\r\n"
		"n = -42\n"
		"big = 1_000_000\n"
		"zero = 0\n"
		"min = -9223372036854775808\n"
		"yes = true\n"
		"no = false\n"
		"\n"
		"  [data]  # table comment\n"
		"\"aa.toml\" = '''\n[token_configs]\nurl = \"x\"\n'''\n"
		"'cdh.toml' = \"\"\n"
		"bare-key_1 = 7\n"
		"[\"quoted table\"]\n"
		"k = 'v'\n");
	const struct toml_table *root = toml_table_get(doc, NULL);
	const struct toml_table *data = toml_table_get(doc, "data");
	const struct toml_table *qt = toml_table_get(doc, "quoted table");

	assert_int_equal(doc->n_tables, 3);
	assert_string_equal(str_of(root, "algorithm"), "sha384");
	assert_int_equal(toml_get(root, "n")->integer, -42);
	assert_int_equal(toml_get(root, "big")->integer, 1000000);
	assert_int_equal(toml_get(root, "zero")->integer, 0);
	assert_true(toml_get(root, "min")->integer == INT64_MIN);
	assert_int_equal(toml_get(root, "yes")->type, TOML_BOOLEAN);
	assert_true(toml_get(root, "yes")->boolean);
	assert_false(toml_get(root, "no")->boolean);
	assert_non_null(data);
	assert_string_equal(str_of(data, "aa.toml"), "[token_configs]\nurl = \"x\"\n");
	assert_string_equal(str_of(data, "cdh.toml"), "");
	assert_int_equal(toml_get(data, "bare-key_1")->integer, 7);
	assert_null(toml_get(data, "algorithm"));   /* keys belong to their table */
	assert_non_null(qt);
	assert_string_equal(str_of(qt, "k"), "v");
	assert_null(toml_table_get(doc, "missing"));
	toml_free(doc);
}

static void test_empty_documents(void **state)
{
	(void)state;
	struct toml_doc *doc = parse_ok("");
	assert_int_equal(doc->n_tables, 1);
	assert_int_equal(doc->tables[0].n_kvs, 0);
	toml_free(doc);
	doc = parse_ok("# only a comment\n\n   \n");
	assert_int_equal(doc->tables[0].n_kvs, 0);
	toml_free(doc);
}

static void test_duplicates(void **state)
{
	(void)state;
	expect_error("a = 1\na = 2\n", "line 2, column 3: duplicate key \"a\" (first defined on line 1)");
	expect_error("\"a\" = 1\n'a' = 2\n", "duplicate key \"a\"");
	expect_error("[t]\n[t]\n", "duplicate table \"t\"");
	expect_error("data = 1\n[data]\n", "table redefines key \"data\"");
	expect_error("[data]\nx = 1\ny = 2\nx = 3\n", "line 4, column 3: duplicate key \"x\"");
}

static void test_unterminated(void **state)
{
	(void)state;
	expect_error("a = \"abc\n", "line 1, column 9: unterminated string");
	expect_error("a = 'abc", "line 1, column 9: unterminated string");
	expect_error("a = \"\"\"abc\nmore\n", "line 3, column 1: unterminated string");
	expect_error("a = '''abc\n''", "unterminated string");
	expect_error("a = \"abc\\", "unterminated string");
}

static void test_bad_escapes(void **state)
{
	(void)state;
	expect_error("a = \"\\q\"\n", "line 1, column 7: bad escape sequence");
	expect_error("a = \"\\x41\"\n", "bad escape sequence");
	expect_error("a = \"\\u12\"\n", "bad unicode escape: expected a hex digit");
	expect_error("a = \"\\uD800\"\n", "not a Unicode scalar value");
	expect_error("a = \"\\U00110000\"\n", "not a Unicode scalar value");
	expect_error("a = \"\\u0000\"\n", "NUL is not supported");
	expect_error("a = \"x\\ y\"\n", "bad escape");
	expect_error("a = \"\"\"x\\ y\"\"\"\n", "a backslash before whitespace must end the line");
}

static void test_garbage_and_unsupported(void **state)
{
	(void)state;
	expect_error("?? = 1\n", "line 1, column 1: expected a key");
	expect_error("a = 1 b\n", "line 1, column 7: expected the end of the line");
	expect_error("a\n", "expected '=' after the key");
	expect_error("a =\n", "missing value");
	expect_error("a = yes\n", "unsupported value");
	expect_error("a = truex\n", "unsupported value");
	expect_error("a.b = 1\n", "dotted keys are not supported");
	expect_error("[a.b]\n", "dotted keys are not supported");
	expect_error("[[t]]\n", "arrays of tables are not supported");
	expect_error("a = [1, 2]\n", "arrays are not supported");
	expect_error("a = { b = 1 }\n", "inline tables are not supported");
	expect_error("a = 3.14\n", "floats are not supported");
	expect_error("a = 1e3\n", "floats are not supported");
	expect_error("a = 0x1f\n", "only decimal integers");
	expect_error("a = 1979-05-27\n", "dates and times are not supported");
	expect_error("a = 012\n", "invalid integer");
	expect_error("a = 1__2\n", "invalid integer");
	expect_error("a = 1_\n", "invalid integer");
	expect_error("a = +inf\n", "invalid integer");
	expect_error("a = 9223372036854775808\n", "integer out of range");
	expect_error("[t] x\n", "expected the end of the line");
	expect_error("[t\n", "expected ']'");
	expect_error("\"\"\"k\"\"\" = 1\n", "multi-line strings cannot be keys");
}

static void test_control_chars_and_utf8(void **state)
{
	(void)state;
	expect_error("a = \"x\x01y\"\n", "line 1, column 7: control character in string");
	expect_error("a = 'x\x7fy'\n", "control character in string");
	expect_error("a = '''x\ry'''\n", "control character in string");
	expect_error("# bell \x07\n", "control character in comment");
	expect_error("a = \"\xc3\x28\"\n", "line 1, column 6: invalid UTF-8");
	expect_error("a = \"\xed\xa0\x80\"\n", "invalid UTF-8");   /* encoded surrogate */
	expect_error("a = \"\xc0\xaf\"\n", "invalid UTF-8");       /* overlong '/' */
	expect_error("a = \"x\"\r b = 1\n", "expected the end of the line");

	/* NUL bytes in the input never reach a string. */
	static const char nul_doc[] = "a = \"x\0y\"\n";
	struct toml_doc *doc = NULL;
	struct pp_err err = { 0 };
	assert_int_equal(toml_parse(nul_doc, sizeof(nul_doc) - 1, &doc, &err), -1);
	assert_non_null(strstr(err.msg, "control character"));
}

static void test_limits(void **state)
{
	(void)state;
	struct toml_doc *doc = NULL;
	struct pp_err err = { 0 };
	size_t big = TOML_MAX_DOC + 1, i;
	char *text = malloc(big + 1);
	char key[TOML_MAX_KEY + 16];

	memset(text, '#', big);
	text[big] = '\0';
	assert_int_equal(toml_parse(text, big, &doc, &err), -1);
	assert_int_equal(err.code, PP_RESOURCE_EXHAUSTED);
	assert_non_null(strstr(err.msg, "too large"));
	free(text);

	memset(key, 'k', TOML_MAX_KEY + 1);
	memcpy(key + TOML_MAX_KEY + 1, " = 1\n", 6);
	expect_error(key, "key too long");

	/* TOML_MAX_TABLES + 1 table headers */
	text = calloc(1, (TOML_MAX_TABLES + 2) * 16);
	for (i = 0; i <= TOML_MAX_TABLES; i++)
		snprintf(text + strlen(text), 16, "[t%zu]\n", i);
	expect_error(text, "too many tables");
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_string_forms),
		cmocka_unit_test(test_tables_ints_bools_comments),
		cmocka_unit_test(test_empty_documents),
		cmocka_unit_test(test_duplicates),
		cmocka_unit_test(test_unterminated),
		cmocka_unit_test(test_bad_escapes),
		cmocka_unit_test(test_garbage_and_unsupported),
		cmocka_unit_test(test_control_chars_and_utf8),
		cmocka_unit_test(test_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
