#!/usr/bin/env bash
# Install every Debian 12 package punch needs to build, test, run the lab
# and benchmark.  Idempotent; prints nothing when everything is present.
set -euo pipefail

packages=(
	# build
	build-essential cmake pkg-config clang libclang-rt-14-dev
	libuv1-dev libgnutls28-dev zlib1g-dev
	libngtcp2-dev libngtcp2-crypto-gnutls-dev libsodium-dev libmicrohttpd-dev
	libhiredis-dev libminiupnpc-dev
	# tests
	libcmocka-dev python3 python3-nacl python3-prometheus-client procps strace shellcheck clang-format-19
	# certificates for the TLS tests (tests/tls_certs.sh)
	openssl
	# the Debian package and its unit (tests/pkg)
	dpkg-dev debhelper lintian systemd
	# the shared registry's tests (punch server -registry)
	redis-server
	# interop peers and the benchmark's reference server
	coturn stun-client
	# the namespace lab and captures
	iproute2 iptables nftables conntrack tcpdump tshark tmux util-linux
	# the lab's port-mapping gateway (scripts/lab --portmap-a)
	miniupnpd miniupnpd-iptables
	# the benchmarks' reference tools
	nebula iperf3 iputils-ping python3-aioice
)

missing=()
for p in "${packages[@]}"; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	[[ $status == "install ok installed" ]] || missing+=("$p")
done
((${#missing[@]})) || exit 0

if ((EUID != 0)); then
	echo "deps: missing packages: ${missing[*]}" >&2
	echo "deps: run as root (or: sudo $0) to install them" >&2
	exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
