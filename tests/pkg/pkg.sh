#!/usr/bin/env bash
# Packaging: cmake --install into a scratch prefix, and the Debian package
# built from a copy of the source tree (dpkg-buildpackage -b, about a
# minute: it compiles punch again, without tests).  Checks what each
# installs, runs the packaged punch, has systemd-analyze verify the unit
# (no warning allowed) and rate its sandbox, and has lintian find nothing.
# Nothing is installed on this machine.
#   pkg.sh SOURCE_DIR BUILD_DIR PROJECT_VERSION UNITDIR|none
set -euo pipefail
src=$1 build=$2 version=$3 unitdir=$4
failures=0
tmp=$(mktemp -d /tmp/punch-pkg.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

fail() {
	echo "FAIL: $*" >&2
	failures=$((failures + 1))
}

# verify UNIT MANDIR: systemd-analyze verify with the man page where the
# unit's Documentation= looks; its warnings (unknown keys, bad values) exit
# 0, so any output at all fails.
verify() {
	local out rc=0
	out=$(cd "$tmp" && MANPATH=$2 timeout 60 systemd-analyze verify "$1" 2>&1) || rc=$?
	if ((rc)) || [[ -n $out ]]; then
		fail "systemd-analyze verify $1: expected exit 0 and no output; seen exit $rc: $out"
	else
		echo "ok: systemd-analyze verify $1"
	fi
	# Exposure 0-10, as tenths: 1.8 when written; the sandbox may not loosen.
	if ! out=$(cd "$tmp" && timeout 60 systemd-analyze security --offline=true \
		--threshold=25 "$1" 2>&1); then
		fail "systemd-analyze security $1: exposure over 2.5: $(tail -1 <<<"$out")"
	else
		echo "ok: $(tail -1 <<<"$out")"
	fi
}

# has LISTING PATH...: each PATH is a line of LISTING.
has() {
	local listing=$1 p
	shift
	for p; do
		grep -qxF -- "$p" <<<"$listing" || fail "expected $p in the listing; seen: $listing"
	done
}

# 1. cmake --install from the build directory into a scratch prefix: the
# unit's ExecStart must name the installed binary, so verify checks it
# exists.  A unit directory given absolute would land outside the prefix.
if [[ $unitdir == /* ]]; then
	echo "skipped: cmake --install (PUNCH_SYSTEMD_UNITDIR=$unitdir is absolute)"
else
	prefix=$tmp/prefix
	timeout 60 cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" ||
		fail "cmake --install: $(cat "$tmp/install.log")"
	installed=$(cd "$prefix" && find . -type f | sort)
	has "$installed" ./bin/punch ./share/man/man1/punch.1 ./share/doc/punch/README.md \
		./share/doc/punch/protocol.md
	if [[ $unitdir == none ]]; then
		[[ $installed != *.service* ]] || fail "a unit installed with PUNCH_INSTALL_SYSTEMD=OFF: $installed"
	else
		has "$installed" "./$unitdir/punch-server.service"
		unit=$prefix/$unitdir/punch-server.service
		grep -qxF "ExecStart=$prefix/bin/punch server -state /var/lib/punch \$PUNCH_SERVER_ARGS" "$unit" ||
			fail "$unit: ExecStart does not name $prefix/bin/punch: $(grep ExecStart "$unit")"
		verify "$unit" "$prefix/share/man"
	fi
fi

# 2. The package, from the files git knows (tracked and new, not ignored:
# no build directory), or the whole tree but build*/ outside git.
mkdir "$tmp/punch"
if git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
	git -C "$src" ls-files -z -c -o --exclude-standard |
		tar -C "$src" --null --no-recursion -T - -cf - | tar -xf - -C "$tmp/punch"
else
	tar -C "$src" -cf - --exclude='./build*' --exclude=./.git . | tar -xf - -C "$tmp/punch"
fi
start=$SECONDS
if ! (cd "$tmp/punch" && timeout 600 dpkg-buildpackage -us -uc -b -j"$(nproc)") >"$tmp/build.log" 2>&1; then
	tail -40 "$tmp/build.log" >&2
	echo "FAIL: dpkg-buildpackage -us -uc -b (the log's end above)" >&2
	exit 1
fi
echo "ok: dpkg-buildpackage -b in $((SECONDS - start)) s"
deb=$tmp/punch_${version}_$(dpkg --print-architecture).deb
[[ -f $deb ]] || {
	echo "FAIL: no $deb (is debian/changelog at $version, the CMake version?): $(ls "$tmp")" >&2
	exit 1
}

has "$(dpkg-deb -c "$deb" | awk '$1 !~ /^d/ { print $6 }')" ./usr/bin/punch \
	./usr/share/man/man1/punch.1.gz ./lib/systemd/system/punch-server.service \
	./etc/default/punch-server ./usr/share/doc/punch/README.md.gz ./usr/share/doc/punch/README.Debian
depends=$(dpkg-deb -f "$deb" Depends)
for lib in libc6 libuv1 libgnutls30 libngtcp2- libngtcp2-crypto-gnutls libsodium23 zlib1g libhiredis0.14 libmicrohttpd12; do
	[[ $depends == *"$lib"* ]] || fail "Depends lacks $lib: $depends"
done
# shellcheck disable=SC2016 # a literal ${shlibs:Depends} left over
[[ $depends != *'${'* ]] || fail "Depends has an unresolved substitution: $depends"
[[ $(dpkg-deb -f "$deb" Version) == "$version" ]] ||
	fail "the package's version $(dpkg-deb -f "$deb" Version) is not CMake's $version"
has "$(dpkg-deb -I "$deb" conffiles)" /etc/default/punch-server

# Installed, neither enabled nor started (debian/README.Debian).
dpkg-deb -e "$deb" "$tmp/control"
if grep -q deb-systemd-invoke "$tmp/control/postinst"; then
	fail "postinst starts the service: $(grep deb-systemd-invoke "$tmp/control/postinst")"
fi

root=$tmp/root
dpkg-deb -x "$deb" "$root"
out=$("$root/usr/bin/punch" version 2>&1) || fail "the packaged punch version: exit $?: $out"
if [[ $out == "punch $version" ]]; then
	echo "ok: the packaged $out"
else
	fail "the packaged punch version said '$out', expected 'punch $version'"
fi
unit=$root/lib/systemd/system/punch-server.service
# shellcheck disable=SC2016 # the unit's own $PUNCH_SERVER_ARGS, literally
grep -qxF 'ExecStart=/usr/bin/punch server -state /var/lib/punch $PUNCH_SERVER_ARGS' "$unit" ||
	fail "$unit: ExecStart is not /usr/bin/punch: $(grep ExecStart "$unit")"
# The packaged unit with ExecStart at the unpacked binary: verify checks
# that the binary exists on this machine, where the package is not installed.
sed "s|^ExecStart=/usr/bin/punch |ExecStart=$root/usr/bin/punch |" "$unit" >"$tmp/punch-server.service"
verify "$tmp/punch-server.service" "$root/usr/share/man"

# Overrides, with their reasons, are in debian/*lintian-overrides.
if out=$(timeout 120 lintian --pedantic --fail-on error,warning,info,pedantic \
	"$tmp/punch_${version}_$(dpkg --print-architecture).changes" 2>&1); then
	echo "ok: lintian --pedantic"
else
	fail "lintian --pedantic: $out"
fi

if ((failures)); then
	echo "pkg.sh: $failures failure(s)" >&2
	exit 1
fi
echo "pkg.sh: all checks passed"
