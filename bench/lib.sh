# shellcheck shell=bash
# Shared by the benchmarks that run Nebula beside punch (punch_time.sh,
# throughput.sh): the certificates and the configuration of a lighthouse on
# the server node and hosts on alice and bob.  Sourced; the caller sets
# NEB_NET (the overlay /24, lighthouse .1, alice .2, bob .3) and NEB_PORT
# (the lighthouse's UDP port).

# neb_certs DIR: a CA and certificates for the lighthouse, alice and bob.
neb_certs() {
	local dir=$1 name ip
	mkdir -p "$dir"
	nebula-cert ca -name "punch bench" -out-crt "$dir/ca.crt" -out-key "$dir/ca.key"
	for name in lighthouse:1 alice:2 bob:3; do
		ip=${name#*:} name=${name%%:*}
		nebula-cert sign -ca-crt "$dir/ca.crt" -ca-key "$dir/ca.key" -name "$name" \
			-ip "$NEB_NET.$ip/24" -out-crt "$dir/$name.crt" -out-key "$dir/$name.key"
	done
}

# neb_config CERTS DIR NAME DELAY SERVER_IP: DIR/NAME.yml, with the
# certificates in CERTS: punchy on, Nebula's defaults otherwise (tun MTU
# 1300, one routine).  DELAY empty: Nebula's default punchy.delay (1s).
# Log lines carry microsecond timestamps (punch_time.sh reads them).
neb_config() {
	local certs=$1 dir=$2 name=$3 delay=$4 server=$5 port=0
	[[ $name == lighthouse ]] && port=$NEB_PORT
	{
		cat <<EOF
pki:
  ca: $certs/ca.crt
  cert: $certs/$name.crt
  key: $certs/$name.key
listen:
  host: 0.0.0.0
  port: $port
punchy:
  punch: true
EOF
		[[ -z $delay ]] || echo "  delay: $delay"
		if [[ $name == lighthouse ]]; then
			printf 'static_host_map: {}\nlighthouse:\n  am_lighthouse: true\n'
		else
			cat <<EOF
static_host_map:
  "$NEB_NET.1": ["$server:$NEB_PORT"]
lighthouse:
  am_lighthouse: false
  interval: 60
  hosts:
    - "$NEB_NET.1"
EOF
		fi
		cat <<EOF
tun:
  dev: nebula1
  mtu: 1300
logging:
  level: info
  format: text
  timestamp_format: "2006-01-02T15:04:05.000000Z07:00"
firewall:
  outbound:
    - port: any
      proto: any
      host: any
  inbound:
    - port: any
      proto: any
      host: any
EOF
	} >"$dir/$name.yml"
}
