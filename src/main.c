/*
 * punch: connect two computers directly when both sit behind NATs.
 *
 * main() picks the subcommand.  The task's own command lines
 * (punch -mode=server -port=3478) are mapped onto the subcommands.
 */
#include <stdio.h>
#include <string.h>

#include "cmd.h"

static const char usage[] =
	"usage: punch COMMAND [OPTIONS]\n"
	"\n"
	"Commands:\n"
	"  server     STUN and rendezvous server (RFC 8489, RFC 5780), UDP 3478\n"
	"  chat       find a peer through the server, punch through NATs, chat\n"
	"  pipe       the same, then stdin to the peer's stdout, both ways\n"
	"  send FILE  the same, then send a file (the peer runs recv)\n"
	"  recv [DIR] receive a file into DIR (never replaces one without -f)\n"
	"  forward    forward TCP ports over the link (-L LPORT:HOST:PORT)\n"
	"  id         print this machine's key fingerprint (made on first use)\n"
	"  release    give up an id on a server, so another key may take it\n"
	"  natcheck   what this network's NAT does to UDP (RFC 5780 tests)\n"
	"  version    print the version\n"
	"  help       show this help\n"
	"\n"
	"The task's forms also work: punch -mode=server -port=3478\n"
	"  punch -mode=client -stun=HOST:PORT -peer=ME -target=THEM\n"
	"Options take one dash or two. 'punch COMMAND -help' shows a command's\n"
	"options; 'man punch' has the details.\n";

/* "--x" reads as "-x".  Checks the first byte before the second, so that
 * an empty argument is never read past its end. */
static const char *skip_dash(const char *a)
{
	return a + (a[0] == '-' && a[1] == '-');
}

/* The task's command lines, rewritten into subcommands:
 *   -mode=server [-port=N]                  -> server [-port N]
 *   -mode=client -stun=H:P -peer=A -target=B -> chat -server H:P -id A -peer B
 */
static int legacy_mode(int argc, char **argv)
{
	static const char *const client_map[][2] = {
		{ "stun", "-server" }, { "peer", "-id" }, { "target", "-peer" }
	};
	const char *mode = NULL;
	char *args[64], *rest[64];
	int n = 0, nrest = 0;

	for (int i = 1; i < argc && nrest < 60; i++) {
		const char *a = skip_dash(argv[i]);

		if (!strncmp(a, "-mode=", 6))
			mode = a + 6;
		else if (!strcmp(a, "-mode") && i + 1 < argc)
			mode = argv[++i];
		else
			rest[nrest++] = argv[i];
	}
	if (!mode) {
		fprintf(stderr, "punch: unknown command line; try 'punch help'\n");
		return EXIT_USAGE;
	}
	if (!strcmp(mode, "server")) {
		args[n++] = "server";
		for (int i = 0; i < nrest; i++)
			args[n++] = rest[i];
		args[n] = NULL;
		return cmd_server(n, args);
	}
	if (strcmp(mode, "client")) {
		fprintf(stderr, "punch: -mode=%s is not known; use -mode=server or -mode=client\n", mode);
		return EXIT_USAGE;
	}
	args[n++] = "chat";
	for (int i = 0; i < nrest && n < 60; i++) {
		const char *a = skip_dash(rest[i]);
		const char *eq = strchr(a, '=');
		size_t k;

		for (k = 0; k < 3; k++) {
			size_t len = strlen(client_map[k][0]);

			if (a[0] == '-' && !strncmp(a + 1, client_map[k][0], len) &&
			    (a[1 + len] == '=' || a[1 + len] == '\0'))
				break;
		}
		if (k == 3) {
			args[n++] = rest[i];
			continue;
		}
		args[n++] = (char *)client_map[k][1];
		if (eq)
			args[n++] = (char *)eq + 1;
		else if (i + 1 < nrest)
			args[n++] = rest[++i];
	}
	args[n] = NULL;
	return cmd_peer(n, args);
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "help";

	if (cmd[0] == '-' && strcmp(cmd, "-h") && strcmp(cmd, "-help") &&
	    strcmp(cmd, "--help") && strcmp(cmd, "--version") &&
	    strcmp(cmd, "-version"))
		return legacy_mode(argc, argv);
	if (!strcmp(cmd, "server"))
		return cmd_server(argc - 1, argv + 1);
	if (cmd_is_peer(cmd))
		return cmd_peer(argc - 1, argv + 1);
	if (!strcmp(cmd, "id"))
		return cmd_id(argc - 1, argv + 1);
	if (!strcmp(cmd, "release"))
		return cmd_release(argc - 1, argv + 1);
	if (!strcmp(cmd, "natcheck"))
		return cmd_natcheck(argc - 1, argv + 1);
	if (!strcmp(cmd, "version") || !strcmp(cmd, "--version") ||
	    !strcmp(cmd, "-version")) {
		printf("punch %s\n", PUNCH_VERSION);
		return 0;
	}
	if (!strcmp(cmd, "help") || !strcmp(cmd, "-h") ||
	    !strcmp(cmd, "-help") || !strcmp(cmd, "--help")) {
		fputs(usage, stdout);
		return 0;
	}
	fprintf(stderr, "punch: unknown command '%s'; try 'punch help'\n", cmd);
	return EXIT_USAGE;
}
