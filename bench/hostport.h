/* hostport.h - "HOST:PORT" / "[V6]:PORT" parsing shared by the bench tools. */
#ifndef PUNCH_BENCH_HOSTPORT_H
#define PUNCH_BENCH_HOSTPORT_H

#include <stddef.h>
#include <sys/socket.h>

/* Parse "1.2.3.4:3478", "[::1]:3478" or "localhost:3478" into *ss.
 * Returns 0, or -1 with a one-line reason in err (size errlen). */
int hostport_parse(const char *text, struct sockaddr_storage *ss, socklen_t *sslen,
                   char *err, size_t errlen);

/* Format *sa as "1.2.3.4:3478" or "[::1]:3478" into buf (size len). */
void hostport_format(const struct sockaddr *sa, char *buf, size_t len);

#endif
