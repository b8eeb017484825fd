#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "cmd.h"
#include "log.h"

static const char usage[] =
	"usage: punch chat -server HOST:PORT -id ME -peer THEM [-wait SEC] [-v]\n"
	"\n"
	"Find THEM through the rendezvous server, punch through both NATs, and\n"
	"chat: lines typed on stdin go to the peer; its lines come out on stdout\n"
	"as 'THEM: text'. 'quit' or end of input ends the chat on both sides.\n"
	"\n"
	"  -server HOST:PORT  the punch server (STUN and rendezvous)\n"
	"  -id ME             my id: UTF-8, 1-64 bytes, no spaces\n"
	"  -peer THEM         the id to reach; the peer runs with -id THEM -peer ME\n"
	"  -wait SEC          give up if the peer has not shown up in SEC seconds\n"
	"                     (default: wait, refreshing the registration)\n"
	"  -v                 show the protocol: every message, state change\n"
	"  -h, -help          show this help\n"
	"\n"
	"Progress goes to stderr: Step 1 (STUN), 2 (register), 3 (ready),\n"
	"4 (peer info), 5 (punching), then 'Connection established'.\n"
	"The task's form also works: punch -mode=client -stun=HOST:PORT -peer=ME -target=THEM\n";

__attribute__((format(printf, 1, 2)))
static int bad(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "punch chat: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'punch chat -help'.\n");
	return EXIT_USAGE;
}

static int set_id(char *dst, const char *src, const char *flag)
{
	const char *why = punch_id_check((const uint8_t *)src, strlen(src));

	if (why)
		return bad("bad %s '%s': %s", flag, src, why);
	snprintf(dst, PUNCH_ID_MAX + 1, "%s", src);
	return 0;
}

int cmd_chat(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "server", required_argument, NULL, 's' },
		{ "id", required_argument, NULL, 'i' },
		{ "peer", required_argument, NULL, 'p' },
		{ "wait", required_argument, NULL, 'w' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct client_config cfg = { 0 };
	char *end;
	long v;
	int c, rc;

	optind = 1;
	while ((c = getopt_long_only(argc, argv, "vh", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			cfg.server = optarg;
			break;
		case 'i':
			if ((rc = set_id(cfg.id, optarg, "-id")))
				return rc;
			break;
		case 'p':
			if ((rc = set_id(cfg.peer, optarg, "-peer")))
				return rc;
			break;
		case 'w':
			v = strtol(optarg, &end, 10);
			if (*end || end == optarg || v < 0 || v > 86400)
				return bad("-wait wants seconds (0-86400), got '%s'", optarg);
			cfg.wait_s = (unsigned)v;
			break;
		case 'v':
			log_set_level(LOG_DEBUG);
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		default:
			return bad("unknown option");
		}
	}
	if (optind < argc)
		return bad("unexpected argument '%s'", argv[optind]);
	if (!cfg.server)
		return bad("-server HOST:PORT is required");
	if (!cfg.id[0] || !cfg.peer[0])
		return bad("both -id and -peer are required");
	if (!strcmp(cfg.id, cfg.peer))
		return bad("-id and -peer must differ");
	return client_run(&cfg);
}
