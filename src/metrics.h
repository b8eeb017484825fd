/*
 * `punch server -metrics`: the server's counters in Prometheus's text
 * exposition format (version 0.0.4), as pure formatting.  No sockets and
 * no HTTP here (metrics_http.h serves the text); the numbers come from
 * the stats the server already keeps, in a snapshot the caller fills.
 *
 * Every metric is named punch_*, and is preceded by its HELP and TYPE
 * lines; man/punch.1 documents each one.
 */
#ifndef PUNCH_METRICS_H
#define PUNCH_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "registry_redis.h"
#include "rendezvous_server.h"
#include "turn_server.h"

/* The methods of punch_requests_total's method label. */
enum metrics_method {
	METRICS_BINDING = 0,
	METRICS_REGISTER,
	METRICS_RELEASE,
	METRICS_ALLOCATE,
	METRICS_REFRESH,
	METRICS_CREATE_PERMISSION,
	METRICS_CHANNEL_BIND,
	METRICS_OTHER,          /* a method the server does not serve: 400 */
	METRICS_METHODS_N,
};

/* The results of its result label: "ok", or one of the error codes the
 * server sends (RFC 8489 14.8, RFC 8656 19, docs/protocol.md); any other
 * code is "other_error". */
enum metrics_result {
	METRICS_OK = 0,
	METRICS_300,
	METRICS_400,
	METRICS_401,
	METRICS_403,
	METRICS_420,
	METRICS_437,
	METRICS_438,
	METRICS_440,
	METRICS_441,
	METRICS_442,
	METRICS_443,
	METRICS_446,
	METRICS_447,
	METRICS_486,
	METRICS_500,
	METRICS_508,
	METRICS_OTHER_ERROR,
	METRICS_RESULTS_N,
};

/* Responses sent, by the request's method and the response's result. */
struct metrics_requests {
	uint64_t n[METRICS_METHODS_N][METRICS_RESULTS_N];
};

/* Count one response the server is about to send: method is the
 * request's STUN method, reply the whole response (an error response's
 * ERROR-CODE gives the result; one without a readable ERROR-CODE counts
 * as "other_error"). */
void metrics_count_reply(struct metrics_requests *r, int method,
                         const uint8_t *reply, size_t len, int is_error);

/* The code in an error response's ERROR-CODE attribute (RFC 8489 14.8),
 * 300-699, or 0 if it has none or the message is not STUN.  Pure, and
 * paranoid about lengths although the server only hands it its own
 * responses. */
int metrics_error_code(const uint8_t *msg, size_t len);

/* What one scrape reports.  The pointers stay the caller's. */
struct metrics_snapshot {
	const struct metrics_requests *requests;
	const struct rdv_stats *rdv;
	const struct turn_stats *turn; /* NULL: the relay is off */
	const struct registry_redis_stats *redis; /* NULL: no -registry */
	uint64_t malformed;            /* server_stats: listen sockets */
	uint64_t ignored;
	uint64_t send_failed;
	uint64_t registrations;        /* held now */
	uint64_t allocations;          /* held now (relay on) */
	uint64_t uptime_s;
	const char *version;
	/* -threads: datagrams each thread read from the listen sockets */
	const uint64_t *thread_received;
	size_t n_threads;
};

/* The exposition text, NUL-terminated, in a buffer from malloc() that the
 * caller frees; its length in *len.  NULL when out of memory. */
char *metrics_format(const struct metrics_snapshot *s, size_t *len);

#endif
