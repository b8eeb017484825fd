/*
 * known_servers: the key each rendezvous server signed with the first time
 * (trust on first use, as known_peers does for peers), in the same folder
 * and the same line format as known_peers, one server address as given to
 * -server (HOST:PORT) per line:
 *
 *	# comment
 *	198.51.100.50:3478 SHA256:Wm4Zk...
 */
#ifndef PUNCH_KNOWN_SERVERS_H
#define PUNCH_KNOWN_SERVERS_H

#include <stddef.h>
#include <stdint.h>

enum {
	KNOWN_SERVER_NAME_MAX = 255,
	KNOWN_SERVERS_LINE_MAX = 512,
	KNOWN_SERVERS_LINES_MAX = 100000, /* a longer file is not read further */
};

enum known_server_result {
	KNOWN_SERVER_NONE = 0,   /* no line for this server */
	KNOWN_SERVER_FOUND = 1,  /* fp and *line filled in */
	KNOWN_SERVER_BAD = -1,   /* the server's line is malformed (*line) */
	KNOWN_SERVER_ERROR = -2, /* the file cannot be read */
};

/* One line (without its newline): 1 with name and fp, 0 for a blank line
 * or a comment, -1 if malformed. */
int known_servers_parse_line(const char *line, size_t len,
                             char name[KNOWN_SERVER_NAME_MAX + 1],
                             uint8_t fp[32]);
/* Look server up in dir/known_servers. */
int known_servers_check(const char *dir, const char *server, uint8_t fp[32],
                        int *line);
/* Append a line for server.  Returns 0 or -1. */
int known_servers_add(const char *dir, const char *server,
                      const uint8_t fp[32]);
/* The path of the file, for messages. */
void known_servers_path(const char *dir, char *out, size_t len);

#endif
