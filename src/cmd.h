/*
 * Subcommands.  Each takes the arguments after its name (argv[0] is the
 * command name) and returns the process exit status.
 */
#ifndef PUNCH_CMD_H
#define PUNCH_CMD_H

enum {
	EXIT_USAGE = 2, /* bad command line */
};

/* "punch CMD: <message>" and a pointer to the help, on stderr; returns
 * EXIT_USAGE. */
int cmd_bad(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

int cmd_server(int argc, char **argv);
/* chat, pipe, send, recv, forward: argv[0] names which */
int cmd_peer(int argc, char **argv);
int cmd_is_peer(const char *name);
int cmd_id(int argc, char **argv);
int cmd_release(int argc, char **argv);
int cmd_natcheck(int argc, char **argv);

#endif
