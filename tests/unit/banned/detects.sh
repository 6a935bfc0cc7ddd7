#!/bin/sh
# Checks that check-banned-calls.sh reports file:line of a banned call, skips comments and
# build directories, and passes a clean tree. usage: detects.sh path/to/check-banned-calls.sh
set -u
script=$1
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
mkdir -p "$d/src" "$d/build-x"
printf 'int f(void)\n{\n\tchar b[4];\n\treturn snprintf(b, 4, "a") + strtok_r(0, 0, 0);\n}\n/* strcpy( in a comment */\n' >"$d/src/ok.c"
printf 'x = sprintf (buf, "x");\n' >"$d/build-x/skipped.c"
sh "$script" "$d" >"$d/out" 2>&1 || { echo "clean tree reported:"; cat "$d/out"; exit 1; }
printf 'void g(char *b)\n{\n\tstrcat(b, "x");\n}\n' >"$d/src/bad.h"
if sh "$script" "$d" >"$d/out" 2>&1; then
	echo "banned call not detected"; cat "$d/out"; exit 1
fi
grep -q '^src/bad.h:3:' "$d/out" || { echo "file:line missing:"; cat "$d/out"; exit 1; }
if grep -q 'ok.c\|skipped.c' "$d/out"; then echo "false positive:"; cat "$d/out"; exit 1; fi
echo ok
