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
	"  server     STUN server (RFC 8489, RFC 5780) on UDP port 3478\n"
	"  version    print the version\n"
	"  help       show this help\n"
	"\n"
	"The task's form also works: punch -mode=server -port=3478\n"
	"Options take one dash or two. 'punch COMMAND -help' shows a command's\n"
	"options; 'man punch' has the details.\n";

/* punch -mode=server [-port=N] [-v]: rewrite into punch server ... */
static int legacy_mode(int argc, char **argv)
{
	const char *mode = NULL;
	char *args[32];
	int n = 0;

	args[n++] = "server";
	for (int i = 1; i < argc && n < 31; i++) {
		const char *a = argv[i] + (argv[i][1] == '-');

		if (!strncmp(a, "-mode=", 6))
			mode = a + 6;
		else if (!strcmp(a, "-mode") && i + 1 < argc)
			mode = argv[++i];
		else
			args[n++] = argv[i];
	}
	args[n] = NULL;
	if (!mode) {
		fprintf(stderr, "punch: unknown command line; try 'punch help'\n");
		return EXIT_USAGE;
	}
	if (!strcmp(mode, "server"))
		return cmd_server(n, args);
	fprintf(stderr, "punch: -mode=%s is not supported; -mode=server is\n",
	        mode);
	return EXIT_USAGE;
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
