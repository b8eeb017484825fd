/*
 * The Prometheus text of `punch server -metrics` (metrics.h).
 *
 * The text format: https://prometheus.io/docs/instrumenting/exposition_formats/
 * "# HELP name text", "# TYPE name counter|gauge", then one line per
 * sample, "name{label="value",...} number".  Label values here are fixed
 * words of ours (and the version, digits and dots), so nothing needs
 * escaping.
 */
#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "punch_attr.h"
#include "stun.h"

enum {
	METRICS_BUF_START = 8192, /* the whole text, with the relay on, fits */
	STUN_HEADER = 20,
};

static const char *const method_names[METRICS_METHODS_N] = {
	"binding", "register", "release", "allocate", "refresh",
	"create_permission", "channel_bind", "other"
};

static const uint16_t result_codes[METRICS_RESULTS_N] = {
	0, 300, 400, 401, 403, 420, 437, 438, 440, 441, 442, 443, 446, 447,
	486, 500, 508, 0
};

static int method_index(int method)
{
	switch (method) {
	case STUN_BINDING: return METRICS_BINDING;
	case PUNCH_REGISTER: /* a RENEW keeps a registration */
	case PUNCH_RENEW: return METRICS_REGISTER;
	case PUNCH_RELEASE: return METRICS_RELEASE;
	case STUN_ALLOCATE: return METRICS_ALLOCATE;
	case STUN_REFRESH: return METRICS_REFRESH;
	case STUN_CREATE_PERMISSION: return METRICS_CREATE_PERMISSION;
	case STUN_CHANNEL_BIND: return METRICS_CHANNEL_BIND;
	default: return METRICS_OTHER;
	}
}

static int result_index(int code)
{
	for (int i = METRICS_300; i < METRICS_OTHER_ERROR; i++)
		if (result_codes[i] == code)
			return i;
	return METRICS_OTHER_ERROR;
}

/* RFC 8489 5 and 14: the header's length, then TLVs padded to 4 bytes;
 * 14.8: ERROR-CODE is 2 reserved bytes, the class (3 bits), the number.
 * The magic cookie is not required: a classic RFC 3489 request gets a
 * response without one. */
int metrics_error_code(const uint8_t *msg, size_t len)
{
	size_t off = STUN_HEADER, end;

	if (!msg || len < STUN_HEADER || (msg[0] & 0xC0))
		return 0;
	end = STUN_HEADER + (((size_t)msg[2] << 8) | msg[3]);
	if (end > len || (end & 3))
		return 0;
	while (end - off >= 4) {
		unsigned type = ((unsigned)msg[off] << 8) | msg[off + 1];
		size_t alen = ((size_t)msg[off + 2] << 8) | msg[off + 3];
		unsigned cls, number;

		off += 4;
		if (alen > end - off)
			return 0;
		if (type == STUN_ATTR_ERROR_CODE) {
			if (alen < 4)
				return 0;
			cls = msg[off + 2] & 7;
			number = msg[off + 3];
			if (cls < 3 || cls > 6 || number > 99)
				return 0;
			return (int)(cls * 100 + number);
		}
		off += (alen + 3) & ~(size_t)3;
		if (off > end)
			return 0;
	}
	return 0;
}

void metrics_count_reply(struct metrics_requests *r, int method,
                         const uint8_t *reply, size_t len, int is_error)
{
	int result = METRICS_OK;

	if (is_error)
		result = result_index(metrics_error_code(reply, len));
	r->n[method_index(method)][result]++;
}

/* ---- the text ----------------------------------------------------------- */

struct text {
	char *p;
	size_t len, cap;
	int oom;
};

static void text_printf(struct text *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void text_printf(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (t->oom)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(t->p + t->len, t->cap - t->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			t->oom = 1;
			return;
		}
		if ((size_t)n < t->cap - t->len)
			break;
		char *bigger = realloc(t->p, t->cap * 2 + (size_t)n);

		if (!bigger) {
			t->oom = 1;
			return;
		}
		t->p = bigger;
		t->cap = t->cap * 2 + (size_t)n;
	}
	t->len += (size_t)n;
}

/* The HELP and TYPE lines of one metric. */
static void family(struct text *t, const char *name, const char *type,
                   const char *help)
{
	text_printf(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A metric with one sample and no labels. */
static void single(struct text *t, const char *name, const char *type,
                   const char *help, uint64_t v)
{
	family(t, name, type, help);
	text_printf(t, "%s %llu\n", name, (unsigned long long)v);
}

static void labelled(struct text *t, const char *name, const char *label,
                     const char *value, uint64_t v)
{
	text_printf(t, "%s{%s=\"%s\"} %llu\n", name, label, value,
	            (unsigned long long)v);
}

static void requests(struct text *t, const struct metrics_snapshot *s)
{
	family(t, "punch_requests_total", "counter",
	       "Responses sent, by the request's method and the result (ok or the error code).");
	for (int m = 0; m < METRICS_METHODS_N; m++) {
		/* ok always for the methods the server serves, so that a
		 * rate() has a series from the start; errors once seen */
		int served = m <= METRICS_RELEASE ||
		             (s->turn && m != METRICS_OTHER);

		for (int r = 0; r < METRICS_RESULTS_N; r++) {
			uint64_t v = s->requests->n[m][r];
			char code[16];

			if (!v && !(r == METRICS_OK && served))
				continue;
			if (r == METRICS_OK)
				snprintf(code, sizeof(code), "ok");
			else if (r == METRICS_OTHER_ERROR)
				snprintf(code, sizeof(code), "other_error");
			else
				snprintf(code, sizeof(code), "%u",
				         result_codes[r]);
			text_printf(t,
			            "punch_requests_total{method=\"%s\",result=\"%s\"} %llu\n",
			            method_names[m], code,
			            (unsigned long long)v);
		}
	}
}

static void rendezvous(struct text *t, const struct metrics_snapshot *s)
{
	const struct rdv_stats *rs = s->rdv;

	single(t, "punch_registrations", "gauge",
	       "Registrations the rendezvous holds now.", s->registrations);
	single(t, "punch_registrations_total", "counter",
	       "REGISTER requests that succeeded, refreshes included.",
	       rs->registered);
	single(t, "punch_registration_refreshes_total", "counter",
	       "Successful REGISTERs that refreshed a live registration (same session).",
	       rs->refreshed);
	single(t, "punch_registrations_expired_total", "counter",
	       "Registrations dropped because they were not refreshed in time.",
	       rs->expired);
	single(t, "punch_registrations_released_total", "counter",
	       "Registrations given up with a signed RELEASE.", rs->released);
	single(t, "punch_register_challenges_total", "counter",
	       "438 responses that handed a source a fresh NONCE (a normal step of every registration).",
	       rs->challenged);
	family(t, "punch_register_refusals_total", "counter",
	       "REGISTER requests refused, by reason.");
	for (int i = 0; i < RDV_REFUSED_N; i++)
		labelled(t, "punch_register_refusals_total", "reason",
		         rdv_refusal_name(i), rs->refused[i]);
	single(t, "punch_bad_signatures_total", "counter",
	       "Rendezvous requests whose signature was missing or did not verify.",
	       rs->bad_signature);
	single(t, "punch_introductions_total", "counter",
	       "Pairs of peers introduced to each other (PEER-INFO sent both ways).",
	       rs->introduced);
	single(t, "punch_peer_info_updates_total", "counter",
	       "PEER-INFO sent again because a paired peer's candidates changed.",
	       rs->updated);
	single(t, "punch_peer_info_acked_total", "counter",
	       "PEER-INFO requests a client acknowledged.", rs->acked);
	single(t, "punch_peer_info_retransmissions_total", "counter",
	       "PEER-INFO requests sent again for want of an acknowledgement.",
	       rs->retransmitted);
	single(t, "punch_peer_info_gave_up_total", "counter",
	       "PEER-INFO requests given up on: never acknowledged, or evicted from a full table.",
	       rs->gave_up);
}

static void relay(struct text *t, const struct metrics_snapshot *s)
{
	const struct turn_stats *ts = s->turn;

	single(t, "punch_relay_allocations", "gauge",
	       "TURN allocations held now.", s->allocations);
	single(t, "punch_relay_allocations_total", "counter",
	       "TURN allocations made.", ts->allocated);
	single(t, "punch_relay_allocations_expired_total", "counter",
	       "TURN allocations that expired unrefreshed.", ts->expired);
	single(t, "punch_relay_allocations_deleted_total", "counter",
	       "TURN allocations the client deleted (Refresh with lifetime 0).",
	       ts->deleted);
	family(t, "punch_relay_packets_total", "counter",
	       "Datagrams relayed, by direction.");
	labelled(t, "punch_relay_packets_total", "direction", "to_peer",
	         ts->relayed_out);
	labelled(t, "punch_relay_packets_total", "direction", "to_client",
	         ts->relayed_in);
	family(t, "punch_relay_bytes_total", "counter",
	       "Application bytes relayed, by direction.");
	labelled(t, "punch_relay_bytes_total", "direction", "to_peer",
	         ts->bytes_out);
	labelled(t, "punch_relay_bytes_total", "direction", "to_client",
	         ts->bytes_in);
	family(t, "punch_relay_refusals_total", "counter",
	       "TURN requests refused, by reason: quota (486, 508), forbidden (403, a peer address not allowed), other (other errors but 401 and 438).");
	labelled(t, "punch_relay_refusals_total", "reason", "quota", ts->quota);
	labelled(t, "punch_relay_refusals_total", "reason", "forbidden",
	         ts->forbidden);
	labelled(t, "punch_relay_refusals_total", "reason", "other",
	         ts->refused);
	single(t, "punch_relay_no_permission_packets_total", "counter",
	       "Datagrams dropped for want of a permission or channel.",
	       ts->no_permission);
}

/* -registry: the registry shared in Redis (registry_redis.h). */
static void redis(struct text *t, const struct metrics_snapshot *s)
{
	const struct registry_redis_stats *r = s->redis;

	single(t, "punch_redis_up", "gauge",
	       "1 while registrations go through the shared registry in Redis, 0 while the server serves from memory.",
	       (uint64_t)r->up);
	single(t, "punch_redis_errors_total", "counter",
	       "Redis replies missing, failed or malformed, and values or messages read from Redis that did not check.",
	       r->errors);
	single(t, "punch_redis_served_from_memory_total", "counter",
	       "Registrations answered from this server's memory alone, Redis being unreachable or behind.",
	       r->from_memory);
	family(t, "punch_redis_introductions_total", "counter",
	       "Introductions across servers, by direction: sent to the peer's server, received from it.");
	labelled(t, "punch_redis_introductions_total", "direction", "sent",
	         r->published);
	labelled(t, "punch_redis_introductions_total", "direction", "received",
	         r->received);
}

/* Datagrams dropped unanswered, whoever counted them. */
static void drops(struct text *t, const struct metrics_snapshot *s)
{
	family(t, "punch_malformed_packets_total", "counter",
	       "Datagrams dropped as malformed, by the service that read them.");
	labelled(t, "punch_malformed_packets_total", "service", "stun",
	         s->malformed);
	if (s->turn) {
		labelled(t, "punch_malformed_packets_total", "service", "turn",
		         s->turn->malformed);
		labelled(t, "punch_malformed_packets_total", "service",
		         "channel_data", s->turn->malformed_channel);
	}
	family(t, "punch_rate_limited_packets_total", "counter",
	       "Datagrams dropped by a rate limit: REGISTERs past their prefix's rate, relayed data past -relay-bps.");
	labelled(t, "punch_rate_limited_packets_total", "limit", "register",
	         s->rdv->rate_limited);
	if (s->turn)
		labelled(t, "punch_rate_limited_packets_total", "limit",
		         "relay_bps", s->turn->over_rate);
	single(t, "punch_ignored_packets_total", "counter",
	       "Valid STUN messages that needed no answer.", s->ignored);
	single(t, "punch_send_failures_total", "counter",
	       "Datagrams the kernel would not send (a full buffer, an unreachable address).",
	       s->send_failed);
}

/* -threads: how the kernel spread the clients over the threads. */
static void threads(struct text *t, const struct metrics_snapshot *s)
{
	family(t, "punch_thread_datagrams_total", "counter",
	       "Datagrams read from the listen sockets, by the thread that read them (-threads).");
	for (size_t i = 0; i < s->n_threads; i++)
		text_printf(t, "punch_thread_datagrams_total{thread=\"%zu\"} %llu\n",
		            i, (unsigned long long)s->thread_received[i]);
}

char *metrics_format(const struct metrics_snapshot *s, size_t *len)
{
	struct text t = { malloc(METRICS_BUF_START), 0, METRICS_BUF_START, 0 };

	if (!t.p)
		return NULL;
	t.p[0] = '\0';
	family(&t, "punch_build_info", "gauge",
	       "Always 1; the version label says which punch this is.");
	text_printf(&t, "punch_build_info{version=\"%s\"} 1\n", s->version);
	single(&t, "punch_uptime_seconds", "gauge",
	       "Seconds since the server started.", s->uptime_s);
	requests(&t, s);
	drops(&t, s);
	rendezvous(&t, s);
	if (s->turn)
		relay(&t, s);
	if (s->redis)
		redis(&t, s);
	threads(&t, s);
	if (t.oom) {
		free(t.p);
		return NULL;
	}
	*len = t.len;
	return t.p;
}
