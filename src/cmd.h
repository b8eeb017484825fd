/*
 * Subcommands.  Each takes the arguments after its name (argv[0] is the
 * command name) and returns the process exit status.
 */
#ifndef PUNCH_CMD_H
#define PUNCH_CMD_H

enum {
	EXIT_USAGE = 2, /* bad command line */
};

int cmd_server(int argc, char **argv);
int cmd_chat(int argc, char **argv);

#endif
