#!/usr/bin/env bash
# Certificates for the TLS tests (punch server -tls-listen, punch chat
# -server-tls -tls-ca), made fresh for each run with openssl:
#
#   tests/tls_certs.sh DIR IP...
#
# DIR/ca.pem        a CA that signed ...
# DIR/cert.pem      the server's certificate, with an IP address SAN for
#                   each IP, and DIR/key.pem its key (P-256)
# DIR/other-ca.pem  a CA that signed nothing here: trusting it instead
#                   must fail the handshake
# Valid for 2 days.  Prints nothing unless openssl fails.
set -euo pipefail
dir=$1
shift
(($#)) || { echo "usage: $0 DIR IP..." >&2; exit 2; }
command -v openssl >/dev/null || { echo "tls_certs: openssl not found (scripts/deps.sh installs it)" >&2; exit 1; }
san=$(printf 'IP:%s,' "$@")
san=${san%,}
mkdir -p "$dir"
cd "$dir"
ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
for ca in ca other-ca; do
	openssl req -x509 "${ec[@]}" -keyout "$ca.key" -out "$ca.pem" -days 2 \
		-subj "/CN=punch test $ca" -addext basicConstraints=critical,CA:TRUE \
		-addext keyUsage=critical,keyCertSign 2>/dev/null
done
openssl req "${ec[@]}" -keyout key.pem -out server.csr -subj /CN=punch-test-server 2>/dev/null
printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' "$san" >server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
	-out cert.pem -days 2 -extfile server.ext 2>/dev/null
