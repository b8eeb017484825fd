/*
 * The commands that connect to a peer: chat, pipe, send, recv, forward.
 * They share the rendezvous options and differ in the app they run.
 */
#include <ctype.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app_file.h"
#include "agent.h"
#include "app_forward.h"
#include "client.h"
#include "cmd.h"
#include "log.h"
#include "term.h"
#include "turn_client.h"

/* Options only some commands take. */
enum {
	PEER_OPT_FORCE = 1 << 0,  /* -f */
	PEER_OPT_FORWARD = 1 << 1, /* -L */
};

struct peer_cmd {
	const char *name;
	const struct app_ops *app;
	const char *synopsis;     /* after "punch NAME -server ... " */
	const char *about;
	int min_operands, max_operands;
	unsigned opts;            /* PEER_OPT_* */
	/* Before connecting: APP_STATUS_OK, or what is wrong with a
	 * sentence in why. */
	enum app_status (*check)(const struct app_args *args, char *why,
	                         size_t len);
};

static const struct peer_cmd cmds[] = {
	{ "chat", &app_chat, "",
	  "Find THEM through the rendezvous server, punch through both NATs,\n"
	  "and chat: lines typed on stdin go to the peer; its lines come out on\n"
	  "stdout as 'THEM: text'. 'quit' or end of input ends the chat on both\n"
	  "sides. The task's form also works:\n"
	  "  punch -mode=client -stun=HOST:PORT -peer=ME -target=THEM\n",
	  0, 0, 0, NULL },
	{ "pipe", &app_pipe, "",
	  "Connect standard input to THEM's standard output, both ways: run\n"
	  "punch pipe on both sides. Each side's input ends with its end of file.\n"
	  "Exits 0 once both directions have arrived in full; 1 if the link\n"
	  "ended first. Example: tar c dir | punch pipe ... (and on the other\n"
	  "side: punch pipe ... </dev/null | tar x).\n",
	  0, 0, 0, NULL },
	{ "send", &app_send, " FILE",
	  "Send FILE to THEM, who runs punch recv. The file goes under its own\n"
	  "name (the last component of FILE), with its size and SHA-256; recv\n"
	  "checks both before it keeps the file. Exits 0 only once recv has\n"
	  "said the file arrived intact. Names that start with '.' are refused.\n"
	  "A progress bar shows on a terminal; a summary line at the end.\n",
	  1, 1, 0, app_send_check },
	{ "recv", &app_recv, " [DIR] [-f]",
	  "Receive one file from THEM, who runs punch send FILE, into DIR\n"
	  "(default: the current directory). It is written to a temporary\n"
	  "DIR/.punch-recv-XXXXXX and renamed into place only if its size and\n"
	  "SHA-256 match. An existing file is refused unless -f; so is a name\n"
	  "with '/' or '\\', a control character, or a leading '.'.\n"
	  "  -f                 overwrite an existing file of that name\n",
	  0, 1, PEER_OPT_FORCE, app_recv_check },
	{ "forward", &app_forward, " [-L LPORT:HOST:PORT]... [-allow HOST:PORT]...",
	  "Forward TCP connections over the link, as ssh -L does. With -L, listen\n"
	  "on 127.0.0.1:LPORT (0: any free port; the port is printed); each\n"
	  "connection is carried to THEM, which connects to HOST:PORT as it\n"
	  "resolves it there, if it allows that target. THEM runs punch forward\n"
	  "too, with -allow HOST:PORT for each target it serves (as sshd's\n"
	  "PermitOpen); any other target is refused, and both sides say why.\n"
	  "Ctrl-C stops both sides.\n"
	  "  -L LPORT:HOST:PORT forward 127.0.0.1:LPORT here to HOST:PORT there\n"
	  "                     (up to 16; an IPv6 HOST in brackets)\n"
	  "  -allow HOST:PORT   serve the peer's connections to HOST:PORT, exactly\n"
	  "                     as the peer names it (up to 16)\n",
	  0, 0, PEER_OPT_FORWARD, app_forward_check }
};

static const char usage_common[] =
	"  -server HOST:PORT[,HOST:PORT]...  the punch server (STUN and\n"
	"                     rendezvous); several (a list, or -server again, up\n"
	"                     to 8) sharing one registry: the fastest to answer\n"
	"                     is used, the next when it misses 3 refreshes\n"
	"  -id ME             my id: UTF-8, 1-64 bytes, no spaces\n"
	"  -peer THEM         the id to reach; the peer runs with -id THEM -peer ME\n"
	"  -peer-key SHA256:… trust only this key for THEM (the peer's 'punch id')\n"
	"  -server-key SHA256:… trust only this key for the server (its\n"
	"                     'punch server -print-key'); else known_servers.\n"
	"                     Repeat it for a list: any of the keys, any server\n"
	"  -code [new|CODE]   pair with a one-time code: alone or with 'new', make\n"
	"                     one (like 7-amber-falcon) and print it; the other\n"
	"                     side gives it as -code CODE.  Both keys are then\n"
	"                     checked with CPace and pinned in known_peers\n"
	"  -wait SEC          give up if the peer has not shown up in SEC seconds\n"
	"                     (default: wait, refreshing the registration)\n"
	"  -relay-only        connect only through the server's relay (it must\n"
	"                     run with -auth-secret), even where a direct path\n"
	"                     would work\n"
	"  -direct-only       never use the relay: fail where no direct path works\n"
	"  -no-probe          no birthday probing (many sockets or many probes\n"
	"                     toward the peer when exactly one NAT maps\n"
	"                     endpoint-dependently; see the man page)\n"
	"  -no-portmap        ask the gateway for no port mapping (UPnP, NAT-PMP, PCP)\n"
	"  -turn turn:USER:PASS@HOST:PORT\n"
	"                     relay through this TURN server (coturn, say) instead\n"
	"                     of the punch server's own; USER may hold ':'. Up to\n"
	"                     4: tried in order until one gives an allocation\n"
	"  -server-tls HOST:PORT  where UDP and TCP to -server get no answer,\n"
	"                     reach the same server over TLS here (its\n"
	"                     -tls-listen); HOST is checked against its\n"
	"                     certificate\n"
	"  -tls-ca FILE       trust the CA certificates in FILE (PEM) for\n"
	"                     -server-tls, instead of the system's\n"
	"  -v                 show the protocol: every message, state change\n"
	"  -h, -help          show this help\n"
	"\n"
	"Progress goes to stderr: Step 1 (STUN), 2 (register), 3 (ready),\n"
	"4 (peer info), 5 (punching), 'Connection established', then the secure\n"
	"link (QUIC with TLS 1.3) and a short code both sides can compare.\n"
	"A relaying server (punch server -auth-secret), or -turn, adds a relayed\n"
	"candidate ('Relay: ...'), used only when no direct pair works within\n"
	"500 ms; 'Path upgraded' when a direct path opens later.\n"
	"When -server does not answer over UDP within 1 s, the client says so\n"
	"and tries TCP to the same HOST:PORT, then TLS to -server-tls: the\n"
	"rendezvous and the relay then go over that connection.\n"
	"The peer's key is checked against -peer-key, else known_peers (trust on\n"
	"first use, in $XDG_CONFIG_HOME/punch/), else the key it registered,\n"
	"which only the server vouches for; -code proves it.\n"
	"The server signs what it says; its key is checked against -server-key,\n"
	"else known_servers (same folder, pinned on first use).\n";

static const struct peer_cmd *find_cmd(const char *name)
{
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (!strcmp(cmds[i].name, name))
			return &cmds[i];
	return NULL;
}

int cmd_is_peer(const char *name)
{
	return find_cmd(name) != NULL;
}

static void help(const struct peer_cmd *pc)
{
	printf("usage: punch %s -server HOST:PORT -id ME -peer THEM [options]%s\n\n%s\n%s",
	       pc->name, pc->synopsis, pc->about, usage_common);
}

static int set_id(const char *cmd, char *dst, const char *src,
                  const char *flag)
{
	const char *why = punch_id_check((const uint8_t *)src, strlen(src));
	char shown[TERM_ESCAPE_SIZE(PUNCH_ID_MAX + 1)];

	/* Shown escaped, so that a bidi control in it can be seen. */
	if (why)
		return cmd_bad(cmd, "bad %s '%s': %s", flag,
		               term_str(shown, sizeof(shown), src), why);
	snprintf(dst, PUNCH_ID_MAX + 1, "%s", src);
	return 0;
}

int cmd_peer(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "server", required_argument, NULL, 's' },
		{ "id", required_argument, NULL, 'i' },
		{ "peer", required_argument, NULL, 'p' },
		{ "peer-key", required_argument, NULL, 'k' },
		{ "server-key", required_argument, NULL, 'K' },
		{ "code", optional_argument, NULL, 'c' },
		{ "wait", required_argument, NULL, 'w' },
		{ "force", no_argument, NULL, 'f' },
		{ "L", required_argument, NULL, 'L' },
		{ "allow", required_argument, NULL, 'a' },
		{ "relay-only", no_argument, NULL, 'R' },
		{ "direct-only", no_argument, NULL, 'D' },
		{ "no-probe", no_argument, NULL, 'N' },
		{ "turn", required_argument, NULL, 'T' },
		{ "server-tls", required_argument, NULL, 'S' },
		{ "tls-ca", required_argument, NULL, 'C' },
		{ "no-portmap", no_argument, NULL, 'M' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const struct peer_cmd *pc = find_cmd(argv[0]);
	static char turn_host[CLIENT_TURN_MAX][256];
	const char *turn_why;
	struct client_config cfg = { 0 };
	const char *cmd = argv[0];
	char why[512];
	const char *code;
	char *end;
	long v;
	int c, rc, new_code = 0;

	if (!pc)
		return cmd_bad(cmd, "unknown command");
	cfg.app = pc->app;
	optind = 1;
	while ((c = getopt_long_only(argc, argv, "vhfL:", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			if (server_list_add(&cfg.servers, optarg, why, sizeof(why)))
				return cmd_bad(cmd, "%s", why);
			break;
		case 'S':
			cfg.server_tls = optarg;
			break;
		case 'C':
			cfg.tls_ca = optarg;
			break;
		case 'i':
			if ((rc = set_id(cmd, cfg.id, optarg, "-id")))
				return rc;
			break;
		case 'p':
			if ((rc = set_id(cmd, cfg.peer, optarg, "-peer")))
				return rc;
			break;
		case 'k':
			if (identity_fp_parse(optarg, cfg.peer_key))
				return cmd_bad(cmd, "-peer-key wants a fingerprint as 'punch id' prints it (SHA256:...), got '%s'", optarg);
			cfg.has_peer_key = 1;
			break;
		case 'K':
			if (cfg.has_server_key == SERVER_LIST_MAX)
				return cmd_bad(cmd, "too many -server-key (at most %d)",
				               SERVER_LIST_MAX);
			if (identity_fp_parse(optarg, cfg.server_key[cfg.has_server_key]))
				return cmd_bad(cmd, "-server-key wants a fingerprint as 'punch server -print-key' prints it (SHA256:...), got '%s'", optarg);
			cfg.has_server_key++;
			break;
		case 'c':
			/* "-code CODE" as well as "-code=CODE": take the next
			 * word if it looks like a code (starts with a digit)
			 * or is "new". */
			code = optarg;
			if (!code && optind < argc &&
			    (isdigit((unsigned char)argv[optind][0]) ||
			     !strcmp(argv[optind], "new")))
				code = argv[optind++];
			if (!code || !strcmp(code, "new")) {
				pake_code_new(cfg.code);
				new_code = 1;
			} else if (pake_code_parse(code, cfg.code)) {
				return cmd_bad(cmd, "-code wants a code like 7-amber-falcon, as the other side printed it, or 'new'; got '%s'", code);
			} else {
				new_code = 0;
			}
			break;
		case 'w':
			v = strtol(optarg, &end, 10);
			if (*end || end == optarg || v < 0 || v > 86400)
				return cmd_bad(cmd, "-wait wants seconds (0-86400), got '%s'", optarg);
			cfg.wait_s = (unsigned)v;
			break;
		case 'f':
			if (!(pc->opts & PEER_OPT_FORCE))
				return cmd_bad(cmd, "-f is an option of punch recv");
			cfg.args.force = 1;
			break;
		case 'L':
			if (!(pc->opts & PEER_OPT_FORWARD))
				return cmd_bad(cmd, "-L is an option of punch forward");
			if (cfg.args.n_forwards == APP_ARGS_MAX)
				return cmd_bad(cmd, "too many -L (at most %d)", APP_ARGS_MAX);
			cfg.args.forwards[cfg.args.n_forwards++] = optarg;
			break;
		case 'a':
			if (!(pc->opts & PEER_OPT_FORWARD))
				return cmd_bad(cmd, "-allow is an option of punch forward");
			if (cfg.args.n_allows == FORWARD_ALLOW_MAX)
				return cmd_bad(cmd, "too many -allow (at most %d)", FORWARD_ALLOW_MAX);
			cfg.args.allows[cfg.args.n_allows++] = optarg;
			break;
		case 'R':
		case 'D':
			if (cfg.path_policy != AGENT_PATH_ANY)
				return cmd_bad(cmd, "-relay-only and -direct-only exclude each other; give one");
			cfg.path_policy = c == 'R' ? AGENT_PATH_RELAY_ONLY :
			                             AGENT_PATH_DIRECT_ONLY;
			break;
		case 'N':
			cfg.no_probe = 1;
			break;
		case 'M':
			cfg.no_portmap = 1;
			break;
		case 'T':
			if (cfg.n_turn == CLIENT_TURN_MAX)
				return cmd_bad(cmd, "too many -turn (at most %d)",
				               CLIENT_TURN_MAX);
			if (turn_uri_parse(optarg, cfg.turn[cfg.n_turn].user,
			                   cfg.turn[cfg.n_turn].pass,
			                   turn_host[cfg.n_turn],
			                   sizeof(turn_host[cfg.n_turn]), &turn_why))
				return cmd_bad(cmd, "bad -turn: %s", turn_why);
			cfg.turn[cfg.n_turn].host = turn_host[cfg.n_turn];
			cfg.n_turn++;
			break;
		case 'v':
			log_set_level(LOG_DEBUG);
			break;
		case 'h':
			help(pc);
			return 0;
		default:
			return cmd_bad(cmd, "unknown option");
		}
	}
	if (argc - optind < pc->min_operands)
		return cmd_bad(cmd, "missing operand: the command takes%s", pc->synopsis);
	if (argc - optind > pc->max_operands)
		return cmd_bad(cmd, "unexpected argument '%s'", argv[optind + pc->max_operands]);
	for (int i = optind; i < argc; i++)
		cfg.args.argv[cfg.args.argc++] = argv[i];
	if (pc->opts & PEER_OPT_FORCE)
		cfg.args.dir = cfg.args.argc ? cfg.args.argv[0] : ".";
	if (!cfg.servers.n)
		return cmd_bad(cmd, "-server HOST:PORT is required");
	if (cfg.tls_ca && !cfg.server_tls)
		return cmd_bad(cmd, "-tls-ca is the CA for -server-tls; give -server-tls HOST:PORT too");
	if (!cfg.id[0] || !cfg.peer[0])
		return cmd_bad(cmd, "both -id and -peer are required");
	if (!strcmp(cfg.id, cfg.peer))
		return cmd_bad(cmd, "-id and -peer must differ");
	/* What can be wrong locally is said now, not after the punch. */
	switch (pc->check ? pc->check(&cfg.args, why, sizeof(why)) :
	                    APP_STATUS_OK) {
	case APP_STATUS_OK:
		break;
	case APP_STATUS_USAGE:
		return cmd_bad(cmd, "%s", why);
	case APP_STATUS_FAILED:
		fprintf(stderr, "punch %s: %s\n", cmd, why);
		return 1;
	}
	if (new_code)
		fprintf(stderr, "Pairing code: %s (on the other side, run the same command with -code %s; it is good for this run only)\n",
		        cfg.code, cfg.code);
	return client_run(&cfg);
}
