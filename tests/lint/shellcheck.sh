#!/usr/bin/env bash
# Runs shellcheck over every shell script under scripts/ and tests/: the files
# named *.sh and those whose first line asks for sh or bash.  Sourced files
# are followed (-x), relative to the script that sources them.  The default
# severity (style) is kept: an exception is justified where it is, with
# "# shellcheck disable=SCxxxx # reason".
# Usage: tests/lint/shellcheck.sh PATH_TO_SHELLCHECK REPO
set -euo pipefail
shellcheck=$1
cd "$2"

files=()
while IFS= read -r -d '' f; do
	first=
	IFS= read -r first <"$f" || true
	if [[ $f == *.sh || $first =~ ^\#!.*[/\ ](ba)?sh(\ |$) ]]; then
		files+=("$f")
	fi
done < <(find scripts tests -type f ! -path '*/corpus/*' -print0 | sort -z)

# A listing that missed the scripts would pass vacuously.
[[ " ${files[*]} " == *" scripts/test "* && " ${files[*]} " == *" tests/lint/shellcheck.sh "* ]] || {
	echo "shellcheck.sh: scripts/test or this script is not in the listing: ${files[*]}" >&2
	exit 1
}
echo "shellcheck: ${#files[@]} scripts"
# One shellcheck per few files, on every core: following sourced files makes
# each run slow (about 90 s for all of them in one process).
printf '%s\0' "${files[@]}" |
	xargs -0 -n 4 -P "$(nproc)" "$shellcheck" -x -P SCRIPTDIR
