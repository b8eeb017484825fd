/*
 * The commands that connect to a peer: chat, pipe, send, recv, forward.
 * They share the rendezvous options and differ in the app they run.
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "cmd.h"
#include "log.h"

struct peer_cmd {
	const char *name;
	const struct app_ops *app;
	const char *synopsis;     /* after "punch NAME -server ... " */
	const char *about;
	int min_operands, max_operands;
};

static const struct peer_cmd cmds[] = {
	{ "chat", &app_chat, "",
	  "Find THEM through the rendezvous server, punch through both NATs,\n"
	  "and chat: lines typed on stdin go to the peer; its lines come out on\n"
	  "stdout as 'THEM: text'. 'quit' or end of input ends the chat on both\n"
	  "sides. The task's form also works:\n"
	  "  punch -mode=client -stun=HOST:PORT -peer=ME -target=THEM\n",
	  0, 0 },
};

static const char usage_common[] =
	"  -server HOST:PORT  the punch server (STUN and rendezvous)\n"
	"  -id ME             my id: UTF-8, 1-64 bytes, no spaces\n"
	"  -peer THEM         the id to reach; the peer runs with -id THEM -peer ME\n"
	"  -peer-key SHA256:… trust only this key for THEM (the peer's 'punch id')\n"
	"  -wait SEC          give up if the peer has not shown up in SEC seconds\n"
	"                     (default: wait, refreshing the registration)\n"
	"  -v                 show the protocol: every message, state change\n"
	"  -h, -help          show this help\n"
	"\n"
	"Progress goes to stderr: Step 1 (STUN), 2 (register), 3 (ready),\n"
	"4 (peer info), 5 (punching), 'Connection established', then the secure\n"
	"link (QUIC with TLS 1.3) and a short code both sides can compare.\n"
	"The peer's key is checked against -peer-key, else known_peers (trust on\n"
	"first use, in $XDG_CONFIG_HOME/punch/), else the key it registered.\n";

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

__attribute__((format(printf, 2, 3)))
static int bad(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "punch %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'punch %s -help'.\n", cmd);
	return EXIT_USAGE;
}

static int set_id(const char *cmd, char *dst, const char *src,
                  const char *flag)
{
	const char *why = punch_id_check((const uint8_t *)src, strlen(src));

	if (why)
		return bad(cmd, "bad %s '%s': %s", flag, src, why);
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
		{ "wait", required_argument, NULL, 'w' },
		{ "force", no_argument, NULL, 'f' },
		{ "L", required_argument, NULL, 'L' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const struct peer_cmd *pc = find_cmd(argv[0]);
	struct client_config cfg = { 0 };
	const char *cmd = argv[0];
	char *end;
	long v;
	int c, rc;

	if (!pc)
		return bad(cmd, "unknown command");
	cfg.app = pc->app;
	optind = 1;
	while ((c = getopt_long_only(argc, argv, "vhfL:", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			cfg.server = optarg;
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
				return bad(cmd, "-peer-key wants a fingerprint as 'punch id' prints it (SHA256:...), got '%s'", optarg);
			cfg.has_peer_key = 1;
			break;
		case 'w':
			v = strtol(optarg, &end, 10);
			if (*end || end == optarg || v < 0 || v > 86400)
				return bad(cmd, "-wait wants seconds (0-86400), got '%s'", optarg);
			cfg.wait_s = (unsigned)v;
			break;
		case 'f':
			cfg.args.force = 1;
			break;
		case 'L':
			if (cfg.args.n_forwards == APP_ARGS_MAX)
				return bad(cmd, "too many -L (at most %d)", APP_ARGS_MAX);
			cfg.args.forwards[cfg.args.n_forwards++] = optarg;
			break;
		case 'v':
			log_set_level(LOG_DEBUG);
			break;
		case 'h':
			help(pc);
			return 0;
		default:
			return bad(cmd, "unknown option");
		}
	}
	if (argc - optind < pc->min_operands)
		return bad(cmd, "missing operand");
	if (argc - optind > pc->max_operands)
		return bad(cmd, "unexpected argument '%s'", argv[optind + pc->max_operands]);
	for (int i = optind; i < argc; i++)
		cfg.args.argv[cfg.args.argc++] = argv[i];
	if (!cfg.server)
		return bad(cmd, "-server HOST:PORT is required");
	if (!cfg.id[0] || !cfg.peer[0])
		return bad(cmd, "both -id and -peer are required");
	if (!strcmp(cfg.id, cfg.peer))
		return bad(cmd, "-id and -peer must differ");
	return client_run(&cfg);
}
