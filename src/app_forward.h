/*
 * punch forward: TCP port forwarding over the secure link (app_forward.c).
 *
 * On the wire, one bidirectional stream per TCP connection:
 *
 *   opener    -> "punch/1 forward HOST PORT\n", then the connection's bytes, FIN
 *   other end -> "ok\n" once connected to HOST:PORT, then the bytes back, FIN
 *                or "bad denied REASON\n" and FIN if HOST:PORT was not
 *                allowed there with -allow,
 *                or "bad connect REASON\n" and FIN if it could not connect
 *
 * and, from each side as the link comes up, a unidirectional stream
 * "punch/1 forward\n" + FIN that says which command runs there.
 */
#ifndef PUNCH_APP_FORWARD_H
#define PUNCH_APP_FORWARD_H

#include <stddef.h>
#include <stdint.h>

#include "app.h"
#include "forward_spec.h"

/* Before connecting: are the -L and -allow specs well formed?
 * APP_STATUS_OK, or APP_STATUS_USAGE with a sentence in why. */
enum app_status app_forward_check(const struct app_args *args, char *why,
                                  size_t len);

#endif
