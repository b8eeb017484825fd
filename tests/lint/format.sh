#!/usr/bin/env bash
# The C in src/ and tests/unit/ is as .clang-format says: clang-format
# --dry-run -Werror over every file, which names each file and line that
# would change.  To apply the format instead:
#   tests/lint/format.sh REPO --fix
# Usage: tests/lint/format.sh REPO [--fix]
set -euo pipefail
cd "$1"
cf=${CLANG_FORMAT:-clang-format-19}
command -v "$cf" >/dev/null || {
	echo "format: $cf is missing; run scripts/deps.sh" >&2
	exit 1
}
files=(src/*.[ch] tests/unit/*.[ch])
# A listing without the sources would pass vacuously.
if ((${#files[@]} < 50)) || [[ ! -f src/stun.c ]]; then
	echo "format: only ${#files[@]} files under src/ and tests/unit/; wrong directory?" >&2
	exit 1
fi
if [[ ${2:-} == --fix ]]; then
	# A braced list whose last element has a trailing comma is set one
	# element to a line (clang-format's rule, with ColumnLimit 0): drop
	# that comma where the line holds several elements, so that tables
	# (byte vectors, word lists) keep their rows.  C allows either.
	perl -0pi -e 's/^([^\n]*,[^\n]*),\n(\s*\};)/$1\n$2/mg' "${files[@]}"
	# Twice: clang-format 19 puts a tab before some trailing comments it
	# leaves in place, then measures that tab as one column on the next
	# pass; the second pass settles it (a third changes nothing).
	"$cf" --style=file -i "${files[@]}"
	"$cf" --style=file -i "${files[@]}"
	exit 0
fi
"$cf" --style=file --dry-run -Werror "${files[@]}"
echo "format: ${#files[@]} files as .clang-format says"
