#!/bin/sh
# Fails (exit 1) listing file:line of every call to a banned C function in the tree: calls that
# cannot be bounded or checked (STYLE.md "Unsafe calls are out"). Use snprintf (result checked),
# pp_strlcpy, parse_int64/parse_uint64 and strtok_r instead.
#
# usage: check-banned-calls.sh [ROOT]   (default: the repository this script lives in)
# Build directories (any directory holding a CMakeCache.txt, or named build*), .git and
# third-party folders are skipped. Lines that are comments (starting with /*, * or //) are
# ignored, so a comment may name a banned function.
set -u

root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
banned='strcpy|strcat|sprintf|vsprintf|atoi|atol|atoll|gets|strtok'

# Directories to prune: .git, build*, and every directory that contains a CMakeCache.txt.
prune_args=$(find "$root" -name CMakeCache.txt -not -path '*/.git/*' 2>/dev/null |
	while IFS= read -r f; do printf ' -o -path %s' "$(dirname "$f")"; done)

# shellcheck disable=SC2086
hits=$(find "$root" \( -name .git -o -name 'build*' -type d $prune_args \) -prune -o \
	-type f \( -name '*.c' -o -name '*.h' \) -print 2>/dev/null | sort |
	while IFS= read -r f; do
		grep -nE "(^|[^A-Za-z0-9_])($banned)[[:space:]]*\(" "$f" /dev/null |
			grep -vE '^[^:]*:[0-9]+:[[:space:]]*(/\*|\*|//)'
	done)

if [ -n "$hits" ]; then
	echo "banned calls found (use snprintf, pp_strlcpy, parse_int64, strtok_r):"
	printf '%s\n' "$hits" | sed "s|^$root/||"
	exit 1
fi
echo "no banned calls under $root"
exit 0
