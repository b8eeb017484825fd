#!/usr/bin/env bash
# No upward includes: every #include "x.h" in src/ must point to the
# including file's own layer or to a lower one, as tests/lint/layers.txt
# lists them; and no two modules may include each other's headers (a cycle
# is two modules that cannot be understood, or tested, apart).
# Usage: tests/lint/layers.sh REPO
set -euo pipefail
cd "$1"
table=tests/lint/layers.txt

declare -A layer_of rank_of except_used group_of
declare -a excepts=()
# The modules of each layer (fields 3 onwards), glob patterns allowed; and
# the exceptions.
while read -r name r mods; do
	case $name in
	'' | '#'*) continue ;;
	except)
		read -r h _ <<<"$mods"
		excepts+=("$r $h")
		continue
		;;
	group)
		# one module written as several files: no cycle check inside
		for pat in $mods; do
			for f in src/*.c src/*.h; do
				m=${f##*/}; m=${m%.[ch]}
				# shellcheck disable=SC2053 # $pat is a glob on purpose
				[[ $m == $pat ]] && group_of[$m]=$r
			done
		done
		continue
		;;
	esac
	for pat in $mods; do
		for f in src/*.c src/*.h; do
			m=${f##*/}; m=${m%.[ch]}
			# shellcheck disable=SC2053 # $pat is a glob on purpose
			if [[ $m == $pat ]]; then
				if [[ -n ${layer_of[$m]:-} && ${layer_of[$m]} != "$name" ]]; then
					echo "$table: $m is in both ${layer_of[$m]} and $name" >&2
					exit 1
				fi
				layer_of[$m]=$name
				rank_of[$m]=$r
			fi
		done
	done
done <"$table"

fail=0
for f in src/*.c src/*.h; do
	m=${f##*/}; m=${m%.[ch]}
	if [[ -z ${layer_of[$m]:-} ]]; then
		echo "$f: in no layer; add it to $table" >&2
		fail=1
	fi
done
((fail == 0)) || exit 1

declare -A includes # "from to" for the cycle check
nviol=0
for f in src/*.c src/*.h; do
	file=${f##*/}; m=${file%.[ch]}
	while IFS= read -r h; do
		t=${h%.h}
		[[ $t == "$m" ]] && continue
		if [[ -z ${layer_of[$t]:-} ]]; then
			echo "$f: includes $h, which is in no layer of $table" >&2
			fail=1
			continue
		fi
		includes["$m $t"]=1
		from=${layer_of[$m]} to=${layer_of[$t]}
		if ((rank_of[$t] < rank_of[$m])) || [[ $from == "$to" ]]; then
			continue
		fi
		if [[ " ${excepts[*]/%/,} " == *" $file $h,"* ]]; then
			except_used["$file $h"]=1
			echo "known exception: $f ($from) includes $h ($to)"
			continue
		fi
		dir=upward
		((rank_of[$t] == rank_of[$m])) && dir=sideways
		echo "$f: $dir include of $h: $from (rank ${rank_of[$m]}) may not include $to (rank ${rank_of[$t]})" >&2
		nviol=$((nviol + 1))
	done < <(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f")
done

for k in "${!includes[@]}"; do
	read -r a b <<<"$k"
	if [[ -n ${group_of[$a]:-} && ${group_of[$a]} == "${group_of[$b]:-}" ]]; then
		continue
	fi
	if [[ $a < $b && -n ${includes["$b $a"]:-} ]]; then
		echo "src: $a and $b include each other's headers" >&2
		nviol=$((nviol + 1))
	fi
done

for e in "${excepts[@]}"; do
	if [[ -z ${except_used[$e]:-} ]]; then
		echo "$table: the exception \"$e\" no longer occurs; remove it" >&2
		fail=1
	fi
done

if ((nviol)); then
	echo "layers: $nviol include(s) against $table" >&2
	exit 1
fi
exit "$fail"
