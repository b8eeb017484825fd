#include <getopt.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>

#include "addr.h"
#include "cmd.h"
#include "identity.h"
#include "log.h"
#include "registry.h"
#include "registry_url.h"
#include "server.h"
#include "server_state.h"

static const char usage[] =
	"usage: punch server [-listen ADDR:PORT]... [-port PORT] [-alt ADDR[:PORT]]\n"
	"                    [-max-peers N] [-lifetime DURATION] [-state DIR]\n"
	"                    [-id-ttl DURATION]\n"
	"                    [-auth-secret SECRET | -auth-secret-file FILE]\n"
	"                    [-relay-ip ADDR] [-relay-ports LO-HI] [-relay-bps N]\n"
	"                    [-max-allocations N] [-max-allocations-per-prefix N]\n"
	"                    [-relay-allow-private] [-realm REALM]\n"
	"                    [-no-tcp] [-max-tcp N]\n"
	"                    [-tls-listen ADDR:PORT -cert FILE -key FILE]\n"
	"                    [-metrics ADDR:PORT [-metrics-public]]\n"
	"                    [-registry redis://HOST[:PORT][/DB] | unix:///PATH]\n"
	"                    [-threads N] [-log quiet|info|debug] [-v]\n"
	"       punch server [-state DIR] -print-key\n"
	"\n"
	"Answer STUN Binding requests (RFC 8489) over UDP and TCP, and introduce\n"
	"peers that register to reach each other (punch chat, over UDP).\n"
	"\n"
	"  -listen ADDR:PORT  listen here; may be repeated (default 0.0.0.0:3478\n"
	"                     and [::]:3478). IPv6 as [::1]:3478. Port 0 picks one.\n"
	"  -port PORT         port for the default addresses (default 3478);\n"
	"                     not with -listen, which names its own port\n"
	"  -alt ADDR[:PORT]   an alternate address, for RFC 5780 NAT behaviour\n"
	"                     discovery: OTHER-ADDRESS, RESPONSE-ORIGIN and\n"
	"                     CHANGE-REQUEST. Also \":PORT\" (alternate port only).\n"
	"                     A missing port is the listen port + 1. Needs exactly\n"
	"                     one -listen with a specific address and port (not 0).\n"
	"  -max-peers N       registrations held at most, 1-1000000 (default 4096;\n"
	"                     about 400 bytes each, taken as they come).\n"
	"                     64 at most per IPv4 /24 or IPv6 /64, each of which\n"
	"                     may send 20 REGISTERs at once, then 5 per second\n"
	"  -lifetime DURATION how long a registration lives without a refresh:\n"
	"                     30s (default) to 1d; clients refresh at a third\n"
	"                     of it. Not with -registry\n"
	"  -state DIR         keep the server's key and the id bindings here\n"
	"                     (default /var/lib/punch for root, else\n"
	"                     $XDG_STATE_HOME/punch or ~/.local/state/punch)\n"
	"  -id-ttl DURATION   an id stays bound to the key that registered it for\n"
	"                     this long after its last use: 30d (default), 12h,\n"
	"                     90m, 3600s\n"
	"  -auth-secret SECRET  turn on the TURN relay (RFC 8656, UDP, same port),\n"
	"                     with coturn's REST credentials: username\n"
	"                     EXPIRY:NAME (EXPIRY in Unix seconds), password\n"
	"                     base64(HMAC-SHA1(SECRET, username)); at most 256 bytes\n"
	"  -auth-secret-file FILE  the same, read from the first line of FILE\n"
	"                     (not shown by ps)\n"
	"  -relay-ip ADDR     the relayed address to advertise (default: the\n"
	"                     -listen address, which must then be specific)\n"
	"  -relay-ports LO-HI relayed ports (default 49152-65535)\n"
	"  -relay-bps N       bytes per second per allocation, both ways\n"
	"                     together (default: no limit)\n"
	"  -max-allocations N relay allocations at most, 1-100000 (default 1000;\n"
	"                     about 1.5 KB each beside the socket), then 508\n"
	"  -max-allocations-per-prefix N  per IPv4 /24 or IPv6 /64 (default 16),\n"
	"                     then 486\n"
	"  -relay-allow-private  let the relay reach loopback and private\n"
	"                     addresses (refused with 403 by default)\n"
	"  -realm REALM       the TURN realm (default punch)\n"
	"  -no-tcp            UDP only: no TCP listener beside each UDP socket\n"
	"                     (Binding and TURN over TCP, RFC 8489 6.2.2)\n"
	"  -max-tcp N         TCP connections at most, 1-100000 (default 1000;\n"
	"                     about 4.5 KB each); more are accepted and closed\n"
	"  -tls-listen ADDR:PORT  also serve the TCP protocol inside TLS here\n"
	"                     (443 in deployments), for clients whose networks\n"
	"                     let only TLS out (punch chat -server-tls); TLS\n"
	"                     connections count in -max-tcp (about 27 KB each)\n"
	"  -cert FILE, -key FILE  -tls-listen's certificate chain and private key\n"
	"                     (PEM)\n"
	"  -metrics ADDR:PORT serve the server's counters for Prometheus at\n"
	"                     http://ADDR:PORT/metrics (GET only), e.g.\n"
	"                     127.0.0.1:9478; a loopback address unless\n"
	"                     -metrics-public is given too\n"
	"  -metrics-public    allow -metrics on an address other than loopback:\n"
	"                     anyone who reaches it reads the counters\n"
	"  -registry URL      share the registry with other servers in Redis:\n"
	"                     redis://[:PASSWORD@]HOST[:PORT][/DB] or\n"
	"                     unix:///PATH (password also from\n"
	"                     PUNCH_REDIS_PASSWORD); pairs that registered at\n"
	"                     two servers are introduced. While Redis is away,\n"
	"                     the server serves from memory (see punch(1))\n"
	"  -threads N         run N event loops, 1-64, each with its own socket\n"
	"                     on every listen address (SO_REUSEPORT): the kernel\n"
	"                     spreads clients over them (default: the number of\n"
	"                     CPUs it may use). TCP, TLS and -metrics are thread\n"
	"                     0's\n"
	"  -print-key         print the server's key fingerprint (made on first\n"
	"                     use), for clients' -server-key, and exit\n"
	"  -log LEVEL         quiet: the start and stop lines, warnings, errors\n"
	"                     (the default); info: also one line per rendezvous\n"
	"                     event (registered, waiting, introduced, expired,\n"
	"                     refused and why); debug: also every packet\n"
	"  -v                 the same as -log debug\n"
	"  -h, -help          show this help\n"
	"\n"
	"A response is never more than 4 times the size of its request.\n"
	"Rendezvous answers are signed with the server's key; clients pin it.\n"
	"Stops cleanly on SIGINT or SIGTERM.\n";

static int parse_alt(struct server_config *cfg, const char *s)
{
	const struct sockaddr *p = (const struct sockaddr *)&cfg->listen[0];

	/* Pre-fill with the primary address and port + 1, so that "-alt IP"
	 * and "-alt :PORT" keep what they do not name. */
	cfg->alt = cfg->listen[0];
	addr_set_port((struct sockaddr *)&cfg->alt, (uint16_t)(addr_port(p) + 1));
	if (addr_parse(&cfg->alt, s))
		return -1;
	if (cfg->alt.ss_family != p->sa_family)
		return -1;
	return addr_equal(p, (const struct sockaddr *)&cfg->alt) ? -1 : 0;
}

/* quiet, info, debug: see the usage text */
static int parse_log_level(const char *s)
{
	if (!strcmp(s, "quiet"))
		log_set_level(LOG_INFO);
	else if (!strcmp(s, "info"))
		log_set_level(LOG_EVENT);
	else if (!strcmp(s, "debug"))
		log_set_level(LOG_DEBUG);
	else
		return -1;
	return 0;
}

/* "30d", "12h", "90m", "3600s" or "3600": seconds, 1 s to 10 years. */
static int parse_duration(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	uint64_t unit = 1;

	if (end == s || *s == '-' || *s == '+')
		return -1;
	if (*end) {
		unit = *end == 'd' ? 86400 : *end == 'h' ? 3600 :
		                     *end == 'm'         ? 60 :
		                     *end == 's'         ? 1 :
		                                           0;
		if (!unit || end[1])
			return -1;
	}
	if (v == 0 || v > 3650ULL * 86400 / unit)
		return -1;
	*out = v * unit;
	return 0;
}

/* -print-key: the fingerprint clients give as -server-key. */
static int print_key(const char *state_dir)
{
	char dir[STATE_PATH_MAX], err[STATE_PATH_MAX + 128];
	char fps[IDENTITY_FP_STRLEN];
	uint8_t fp[SIGN_FP_LEN];
	struct sign_key k;
	int created;

	if (state_dir)
		snprintf(dir, sizeof(dir), "%s", state_dir);
	else if (state_dir_default(dir, sizeof(dir))) {
		fprintf(stderr, "punch server: no state directory: set HOME or use -state DIR\n");
		return 1;
	}
	if (state_dir_make(dir, err, sizeof(err)) ||
	    state_key_load(dir, &k, &created, err, sizeof(err))) {
		fprintf(stderr, "punch server: %s\n", err);
		return 1;
	}
	sign_fp(k.pk, fp);
	sign_key_wipe(&k);
	identity_fp_str(fp, fps);
	printf("%s\n", fps);
	return 0;
}

/* -alt, once the listen addresses are known: RFC 5780 needs exactly one
 * specific primary address, and a port fixed before binding. */
static int apply_alt(struct server_config *cfg, const char *alt)
{
	if (cfg->n_listen != 1 ||
	    addr_is_any((struct sockaddr *)&cfg->listen[0]))
		return cmd_bad("server", "-alt needs exactly one -listen with a specific address, e.g. -listen 192.0.2.1:3478 -alt 192.0.2.2:3479");
	/* RFC 5780 advertises the alternate in OTHER-ADDRESS, so its port
	 * must be known before binding: "listen port + 1" of a port the
	 * kernel has yet to choose would be port 1. */
	if (!addr_port((struct sockaddr *)&cfg->listen[0]))
		return cmd_bad("server", "-alt needs a fixed -listen port, not 0 (the alternate port is derived from it)");
	if (parse_alt(cfg, alt))
		return cmd_bad("server", "-alt wants ADDR[:PORT] or :PORT of the listen address's family, different from it; got '%s'", alt);
	cfg->has_alt = 1;
	return 0;
}

/* A decimal number in [lo, hi], nothing else.  Returns 0 or -1. */
static int parse_range(const char *s, long lo, long hi, long *out)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (*end || end == s || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

/* "LO-HI" relayed ports, 1024-65535. */
static int parse_ports(const char *s, uint16_t *lo, uint16_t *hi)
{
	char *end;
	long a = strtol(s, &end, 10), b;

	if (end == s || *end != '-')
		return -1;
	s = end + 1;
	b = strtol(s, &end, 10);
	if (end == s || *end || a < 1024 || b > 65535 || a > b)
		return -1;
	*lo = (uint16_t)a;
	*hi = (uint16_t)b;
	return 0;
}

/* The first line of FILE, without its newline: the REST secret. */
static int read_secret(const char *path, uint8_t *buf, size_t cap,
                       size_t *len)
{
	FILE *f = fopen(path, "r");
	char line[512];
	size_t n;

	if (!f)
		return cmd_bad("server", "cannot read -auth-secret-file %s", path);
	if (!fgets(line, sizeof(line), f))
		line[0] = '\0';
	fclose(f);
	n = strcspn(line, "\r\n");
	if (!n || n > cap)
		return cmd_bad("server", "-auth-secret-file %s: the first line must hold the secret, 1-256 bytes", path);
	memcpy(buf, line, n);
	*len = n;
	return 0;
}

/* -metrics ADDR:PORT, once the flags are read: the counters tell how
 * busy the server is and what it refuses, so they stay on loopback unless
 * the operator says otherwise with -metrics-public. */
static int apply_metrics(struct server_config *cfg, const char *s,
                         int public)
{
	if (!s)
		return public ? cmd_bad("server", "-metrics-public goes with -metrics ADDR:PORT") :
		                0;
	cfg->metrics.ss_family = AF_INET;
	if (addr_parse(&cfg->metrics, s) || !strchr(s, ':'))
		return cmd_bad("server", "-metrics wants ADDR:PORT, e.g. 127.0.0.1:9478; got '%s'", s);
	if (!public && addr_classify((struct sockaddr *)&cfg->metrics) !=
	                       ADDR_CLASS_LOOPBACK)
		return cmd_bad("server", "-metrics %s is not a loopback address: anyone who reaches it could read the counters; add -metrics-public if that is what you want", s);
	cfg->has_metrics = 1;
	return 0;
}

static int add_listen(struct server_config *cfg, const char *s)
{
	struct sockaddr_storage *a = &cfg->listen[cfg->n_listen];

	if (cfg->n_listen == SERVER_LISTEN_MAX)
		return cmd_bad("server", "too many -listen addresses (at most 8)");
	a->ss_family = AF_INET;
	if (addr_parse(a, s) || !strchr(s, ':'))
		return cmd_bad("server", "-listen wants ADDR:PORT, got '%s'", s);
	cfg->n_listen++;
	return 0;
}

/* No -listen: 0.0.0.0:PORT and [::]:PORT, or only the IPv4 one for -alt
 * (whose check then asks for a specific address). */
static void listen_defaults(struct server_config *cfg, uint16_t port,
                            int v4_only)
{
	struct sockaddr_in *v4 = (struct sockaddr_in *)&cfg->listen[0];
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&cfg->listen[1];

	v4->sin_family = AF_INET;
	v4->sin_port = htons(port);
	v6->sin6_family = AF_INET6;
	v6->sin6_port = htons(port);
	cfg->n_listen = v4_only ? 1 : 2;
}

/* The relay's options (c as in cmd_server()'s table): 0, a cmd_bad()
 * status, or -1 when c is none of them. */
static int relay_opt(struct server_config *cfg, int c, const char *arg)
{
	static uint8_t secret[256];
	long n;
	int rc;

	switch (c) {
	case 'A':
		if (!*arg || strlen(arg) > sizeof(secret))
			return cmd_bad("server", "-auth-secret wants 1-256 bytes");
		cfg->auth_secret_len = strlen(arg);
		memcpy(secret, arg, cfg->auth_secret_len);
		cfg->auth_secret = secret;
		return 0;
	case 'F':
		if ((rc = read_secret(arg, secret, sizeof(secret),
		                      &cfg->auth_secret_len)))
			return rc;
		cfg->auth_secret = secret;
		return 0;
	case 'R':
		if (addr_parse(&cfg->relay_ip, arg) ||
		    addr_is_any((struct sockaddr *)&cfg->relay_ip))
			return cmd_bad("server", "-relay-ip wants an IPv4 or IPv6 address, got '%s'", arg);
		return 0;
	case 'Q':
		if (parse_ports(arg, &cfg->relay_lo, &cfg->relay_hi))
			return cmd_bad("server", "-relay-ports wants LO-HI within 1024-65535, got '%s'", arg);
		return 0;
	case 'B':
		if (parse_range(arg, 1, 1000000000, &n))
			return cmd_bad("server", "-relay-bps wants bytes per second, 1-1000000000, got '%s'", arg);
		cfg->relay_bps = (uint64_t)n;
		return 0;
	case 'M':
		if (parse_range(arg, 1, 100000, &n))
			return cmd_bad("server", "-max-allocations wants a number 1-100000, got '%s'", arg);
		cfg->max_allocs = (size_t)n;
		return 0;
	case 'X':
		if (parse_range(arg, 1, 100000, &n))
			return cmd_bad("server", "-max-allocations-per-prefix wants a number 1-100000, got '%s'", arg);
		cfg->max_per_prefix = (size_t)n;
		return 0;
	case 'W':
		cfg->relay_allow_private = 1;
		return 0;
	case 'E':
		if (!*arg || strlen(arg) > 64)
			return cmd_bad("server", "-realm wants 1-64 characters");
		cfg->realm = arg;
		return 0;
	default:
		return -1;
	}
}

/* One loop per CPU this process may run on (its affinity: taskset, a
 * cgroup's cpuset), else per online CPU; within 1-SERVER_THREADS_MAX. */
static int default_threads(void)
{
	cpu_set_t set;
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (!sched_getaffinity(0, sizeof(set), &set) && CPU_COUNT(&set) > 0)
		n = CPU_COUNT(&set);

	if (n < 1)
		return 1;
	return n > SERVER_THREADS_MAX ? SERVER_THREADS_MAX : (int)n;
}

int cmd_server(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "port", required_argument, NULL, 'p' },
		{ "alt", required_argument, NULL, 'a' },
		{ "max-peers", required_argument, NULL, 'm' },
		/* "-max" was -max-peers before -max-allocations came; an exact
		 * name keeps it so (README: "-max is -max-peers") */
		{ "max", required_argument, NULL, 'm' },
		{ "state", required_argument, NULL, 'S' },
		{ "id-ttl", required_argument, NULL, 'T' },
		{ "lifetime", required_argument, NULL, 'J' },
		{ "print-key", no_argument, NULL, 'P' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "log", required_argument, NULL, 'L' },
		{ "help", no_argument, NULL, 'h' },
		{ "auth-secret", required_argument, NULL, 'A' },
		{ "auth-secret-file", required_argument, NULL, 'F' },
		{ "relay-ip", required_argument, NULL, 'R' },
		{ "relay-ports", required_argument, NULL, 'Q' },
		{ "relay-bps", required_argument, NULL, 'B' },
		{ "max-allocations", required_argument, NULL, 'M' },
		{ "max-allocations-per-prefix", required_argument, NULL, 'X' },
		{ "relay-allow-private", no_argument, NULL, 'W' },
		{ "realm", required_argument, NULL, 'E' },
		{ "no-tcp", no_argument, NULL, 'N' },
		{ "max-tcp", required_argument, NULL, 'C' },
		{ "tls-listen", required_argument, NULL, 'G' },
		{ "cert", required_argument, NULL, 'c' },
		{ "key", required_argument, NULL, 'k' },
		{ "metrics", required_argument, NULL, 'H' },
		{ "metrics-public", no_argument, NULL, 'U' },
		{ "registry", required_argument, NULL, 'Y' },
		{ "threads", required_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 }
	};
	struct server_config cfg = { 0 };
	const char *alt = NULL, *metrics = NULL, *why = NULL;
	int want_key = 0, metrics_public = 0;
	long port = SERVER_DEFAULT_PORT, max_peers, max_tcp, threads;
	int port_given = 0, rc;
	char err[REGISTRY_URL_HOST_MAX + 256];
	int c;

	optind = 1;
	while ((c = getopt_long_only(argc, argv, "vh", opts, NULL)) != -1) {
		switch (c) {
		case 'l':
			if ((rc = add_listen(&cfg, optarg)))
				return rc;
			break;
		case 'p':
			if (parse_range(optarg, 0, 65535, &port))
				return cmd_bad("server", "-port wants a number 0-65535, got '%s'", optarg);
			port_given = 1;
			break;
		case 'a':
			alt = optarg;
			break;
		case 'm':
			if (parse_range(optarg, 1, 1000000, &max_peers))
				return cmd_bad("server", "-max-peers wants a number 1-1000000, got '%s'", optarg);
			cfg.max_peers = (size_t)max_peers;
			break;
		case 'S':
			if (!*optarg)
				return cmd_bad("server", "-state wants a directory");
			cfg.state_dir = optarg;
			break;
		case 'T':
			if (parse_duration(optarg, &cfg.id_ttl_s))
				return cmd_bad("server", "-id-ttl wants a duration such as 30d, 12h, 90m or 3600s (1 s to 3650 days), got '%s'", optarg);
			break;
		case 'J':
			if (parse_duration(optarg, &cfg.lifetime_s) ||
			    cfg.lifetime_s < REGISTRY_LIFETIME_MS / 1000 ||
			    cfg.lifetime_s > 86400)
				return cmd_bad("server", "-lifetime wants a duration from 30s to 1d, such as 300s or 10m, got '%s'", optarg);
			break;
		case 'P':
			want_key = 1;
			break;
		case 'N':
			cfg.no_tcp = 1;
			break;
		case 'C':
			if (parse_range(optarg, 1, 100000, &max_tcp))
				return cmd_bad("server", "-max-tcp wants a number 1-100000, got '%s'", optarg);
			cfg.max_tcp = (size_t)max_tcp;
			break;
		case 'G':
			if (addr_resolve(&cfg.tls_listen, optarg, AF_UNSPEC, &why) ||
			    !addr_port((struct sockaddr *)&cfg.tls_listen))
				return cmd_bad("server", "-tls-listen wants ADDR:PORT with a port, e.g. 0.0.0.0:443; got '%s'%s%s",
				               optarg, why ? ": " : "", why ? why : "");
			cfg.has_tls = 1;
			break;
		case 'c':
			cfg.tls_cert = optarg;
			break;
		case 'k':
			cfg.tls_key = optarg;
			break;
		case 'v':
			log_set_level(LOG_DEBUG);
			break;
		case 'L':
			if (parse_log_level(optarg))
				return cmd_bad("server", "-log wants quiet, info or debug, got '%s'", optarg);
			break;
		case 'H':
			metrics = optarg;
			break;
		case 'U':
			metrics_public = 1;
			break;
		case 'Y':
			if (registry_url_parse(optarg, getenv("PUNCH_REDIS_PASSWORD"),
			                       &cfg.registry, err, sizeof(err)))
				return cmd_bad("server", "%s", err);
			cfg.has_registry = 1;
			break;
		case 'j':
			if (parse_range(optarg, 1, SERVER_THREADS_MAX, &threads))
				return cmd_bad("server", "-threads wants a number 1-%d, got '%s'",
				               SERVER_THREADS_MAX, optarg);
			cfg.threads = (int)threads;
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		default:
			if ((rc = relay_opt(&cfg, c, optarg)) < 0)
				return cmd_bad("server", "unknown option");
			if (rc)
				return rc;
			break;
		}
	}
	if (optind < argc)
		return cmd_bad("server", "unexpected argument '%s'", argv[optind]);
	if (want_key)
		return print_key(cfg.state_dir);
	/* -port names the port of the default addresses; beside -listen it
	 * would be dropped without a word. */
	if (port_given && cfg.n_listen)
		return cmd_bad("server", "-port applies only without -listen; put the port in -listen ADDR:PORT");
	if (!cfg.n_listen)
		listen_defaults(&cfg, (uint16_t)port, alt != NULL);
	if (alt && (rc = apply_alt(&cfg, alt)))
		return rc;
	if (cfg.lifetime_s && cfg.has_registry)
		return cmd_bad("server", "-lifetime applies to the in-memory registry; registrations in Redis live 30 s");
	if (cfg.no_tcp && cfg.max_tcp)
		return cmd_bad("server", "-max-tcp limits TCP connections, which -no-tcp turns off; give one of them");
	if (cfg.has_tls != (cfg.tls_cert && cfg.tls_key) ||
	    (!cfg.has_tls && (cfg.tls_cert || cfg.tls_key)))
		return cmd_bad("server", "-tls-listen, -cert and -key go together; give all three");
	if ((rc = apply_metrics(&cfg, metrics, metrics_public)))
		return rc;
	if (!cfg.auth_secret && (cfg.relay_ip.ss_family || cfg.relay_lo ||
	                         cfg.relay_bps || cfg.max_allocs ||
	                         cfg.max_per_prefix || cfg.relay_allow_private ||
	                         cfg.realm))
		return cmd_bad("server", "the relay flags need -auth-secret or -auth-secret-file, which turn the relay on");
	if (!cfg.threads)
		cfg.threads = default_threads();
	log_set_tag("punch server");
	return server_run(&cfg);
}
