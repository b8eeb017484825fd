#include "binding.h"

#include <string.h>

#include "addr.h"
#include "stun.h"
#include "stun3489.h"

static size_t addr_attr_size(const struct sockaddr *sa)
{
	return stun_attr_size(sa->sa_family == AF_INET6 ? 20 : 8);
}

/* An error response: ERROR-CODE, UNKNOWN-ATTRIBUTES for 420, SOFTWARE if it
 * fits the amplification budget, FINGERPRINT. */
static int error_response(const struct binding_service *svc,
                          const struct stun_msg *req, uint16_t code,
                          const char *reason, const uint16_t *unknown,
                          size_t n_unknown, size_t budget, uint8_t *out,
                          size_t cap)
{
	struct stun_writer w;
	size_t need = STUN_HEADER_LEN + stun_attr_size(4 + strlen(reason)) +
	              stun_attr_size(4);

	if (n_unknown)
		need += stun_attr_size(2 * n_unknown);
	stun_writer_init(&w, out, cap, req->method, STUN_ERROR, req->txid);
	stun_put_error(&w, code, reason);
	if (n_unknown)
		stun_put_unknown(&w, unknown, n_unknown);
	if (svc->software &&
	    need + stun_attr_size(strlen(svc->software)) <= budget)
		stun_put_bytes(&w, STUN_ATTR_SOFTWARE, svc->software,
		               strlen(svc->software));
	stun_put_fingerprint(&w);
	return stun_writer_finish(&w);
}

/*
 * The success response.  XOR-MAPPED-ADDRESS and FINGERPRINT always go in
 * (at most 52 bytes, and a request is at least 20, so 4x always covers
 * them).  The optional attributes are added in order of usefulness while
 * they fit the budget: OTHER-ADDRESS (RFC 5780 needs it to find the other
 * server), RESPONSE-ORIGIN, MAPPED-ADDRESS (RFC 3489 clients), SOFTWARE.
 */
static int success_response(const struct binding_service *svc,
                            const struct stun_msg *req,
                            const struct sockaddr *from, int sock_in,
                            int sock_out, size_t budget, uint8_t *out,
                            size_t cap)
{
	const struct sockaddr *other = NULL, *origin = NULL;
	size_t need = STUN_HEADER_LEN + addr_attr_size(from) + stun_attr_size(4);
	size_t sw_len = svc->software ? strlen(svc->software) : 0;
	int want_mapped = 0, want_sw = 0;
	struct stun_writer w;

	if (svc->rfc5780) {
		int o = sock_in ^ 3;

		if (!svc->have[o])
			o = sock_in ^ 1; /* port-only alternate */
		if (svc->have[o] &&
		    need + addr_attr_size((struct sockaddr *)&svc->local[o]) <=
		            budget) {
			other = (const struct sockaddr *)&svc->local[o];
			need += addr_attr_size(other);
		}
		origin = (const struct sockaddr *)&svc->local[sock_out];
		if (need + addr_attr_size(origin) <= budget)
			need += addr_attr_size(origin);
		else
			origin = NULL;
	}
	if (need + addr_attr_size(from) <= budget) {
		want_mapped = 1;
		need += addr_attr_size(from);
	}
	if (sw_len && need + stun_attr_size(sw_len) <= budget)
		want_sw = 1;

	stun_writer_init(&w, out, cap, req->method, STUN_SUCCESS, req->txid);
	stun_put_xor_addr(&w, STUN_ATTR_XOR_MAPPED_ADDRESS, from);
	if (want_mapped)
		stun_put_addr(&w, STUN_ATTR_MAPPED_ADDRESS, from);
	if (origin)
		stun_put_addr(&w, STUN_ATTR_RESPONSE_ORIGIN, origin);
	if (other)
		stun_put_addr(&w, STUN_ATTR_OTHER_ADDRESS, other);
	if (want_sw)
		stun_put_bytes(&w, STUN_ATTR_SOFTWARE, svc->software, sw_len);
	stun_put_fingerprint(&w);
	return stun_writer_finish(&w);
}

static int drop(const char **why, const char *reason)
{
	if (why)
		*why = reason;
	return BINDING_DROP;
}

/* ---- classic STUN (RFC 3489) ------------------------------------------ */

/* The address a reply would come from had both flags of CHANGE-REQUEST
 * been set (RFC 3489 11.2.3), or only the port when -alt has the same IP;
 * -1 without -alt. */
static int other_index(const struct binding_service *svc, int sock_in)
{
	if (!svc->rfc5780)
		return -1;
	if (svc->have[sock_in ^ 3])
		return sock_in ^ 3;
	return svc->have[sock_in ^ 1] ? sock_in ^ 1 : -1;
}

/*
 * RFC 3489 11.2: MAPPED-ADDRESS always (at most 44 bytes with the header,
 * within 4x of a 20-byte request); then, while they fit the budget,
 * CHANGED-ADDRESS (a classic client needs it for its NAT tests), then
 * SOURCE-ADDRESS.  No XOR-MAPPED-ADDRESS and no FINGERPRINT: a client of
 * that RFC knows neither.  No SERVER either: RFC 3489 does not define it,
 * and its reference client refuses a value whose length is not a multiple
 * of 4 ("problem parsing ServerName").
 */
static int classic_success(const struct binding_service *svc,
                           const struct stun3489_msg *req,
                           const struct sockaddr *from, int sock_in,
                           int sock_out, size_t budget, uint8_t *out,
                           size_t cap)
{
	const struct sockaddr *changed = NULL, *source;
	size_t need = STUN_HEADER_LEN + addr_attr_size(from);
	int o = other_index(svc, sock_in);
	struct stun_writer w;

	if (o >= 0)
		changed = (const struct sockaddr *)&svc->local[o];
	if (changed && need + addr_attr_size(changed) <= budget)
		need += addr_attr_size(changed);
	else
		changed = NULL;
	source = (const struct sockaddr *)&svc->local[sock_out];
	if (need + addr_attr_size(source) <= budget)
		need += addr_attr_size(source);
	else
		source = NULL;
	stun3489_writer_init(&w, out, cap, STUN_BINDING, STUN_SUCCESS,
	                     req->txid);
	stun_put_addr(&w, STUN_ATTR_MAPPED_ADDRESS, from);
	if (source)
		stun_put_addr(&w, STUN3489_ATTR_SOURCE_ADDRESS, source);
	if (changed)
		stun_put_addr(&w, STUN3489_ATTR_CHANGED_ADDRESS, changed);
	return stun_writer_finish(&w);
}

/* RFC 3489 11.2.9/11.2.10: a 420 whose reason phrase is a multiple of 4
 * bytes and whose UNKNOWN-ATTRIBUTES list repeats one type when the count
 * is odd.  56 bytes for one type; each further type costs 2 bytes here and
 * at least 4 in the request, so 4x always covers it. */
static int classic_420(const uint16_t *unknown, size_t n, uint8_t *out,
                       size_t cap, const struct stun3489_msg *req)
{
	static const char reason[] = "Unknown Attribute   ";
	uint8_t list[2 * (STUN_MAX_UNKNOWN + 1)];
	struct stun_writer w;
	size_t k = 0;

	for (size_t i = 0; i < n && i < STUN_MAX_UNKNOWN; i++) {
		list[k++] = (uint8_t)(unknown[i] >> 8);
		list[k++] = (uint8_t)unknown[i];
	}
	if (k % 4) {
		list[k] = list[k - 2];
		list[k + 1] = list[k - 1];
		k += 2;
	}
	stun3489_writer_init(&w, out, cap, STUN_BINDING, STUN_ERROR, req->txid);
	stun_put_error(&w, 420, reason);
	stun_put_bytes(&w, STUN_ATTR_UNKNOWN_ATTRIBUTES, list, k);
	return stun_writer_finish(&w);
}

/*
 * A Binding request without the magic cookie.  Only Binding requests are
 * answered: RFC 3489's Shared Secret needs TLS, and the rendezvous and TURN
 * keep their cookie.  RESPONSE-ADDRESS is not honoured (RFC 5389 dropped it
 * because it lets anyone aim the server at a third party): the reply goes
 * to the source, as RFC 5389 19 lets a server do.
 */
static int classic_handle(const struct binding_service *svc, int sock,
                          const uint8_t *req, size_t len,
                          const struct sockaddr *from, size_t budget,
                          uint8_t *out, size_t cap,
                          struct binding_reply *reply, const char **why)
{
	static const uint16_t change_request = STUN_ATTR_CHANGE_REQUEST;
	struct stun3489_msg m;
	int sock_out = sock;
	int rc;

	rc = stun3489_decode(&m, req, len);
	if (rc)
		return drop(why, stun_err_str(rc));
	if (m.method != STUN_BINDING || m.cls != STUN_REQUEST)
		return drop(why, "RFC 3489 message other than a Binding request");
	if (m.change_request & STUN_CHANGE_IP)
		sock_out ^= 2;
	if (m.change_request & STUN_CHANGE_PORT)
		sock_out ^= 1;
	if (m.unknown_required_count) {
		sock_out = sock;
		rc = classic_420(m.unknown_required, m.unknown_required_count,
		                 out, cap, &m);
		reply->is_error = 1;
	} else if (!svc->have[sock_out]) {
		/* as for RFC 5780 6.1 below: cannot change, so unknown */
		sock_out = sock;
		rc = classic_420(&change_request, 1, out, cap, &m);
		reply->is_error = 1;
	} else {
		rc = classic_success(svc, &m, from, sock, sock_out, budget, out,
		                     cap);
	}
	if (rc < 0)
		return drop(why, stun_err_str(rc));
	if ((size_t)rc > budget)
		return drop(why, "reply over the amplification bound");
	reply->sock = sock_out;
	reply->len = (size_t)rc;
	return BINDING_REPLY;
}

int binding_handle(const struct binding_service *svc, int sock,
                   const uint8_t *req, size_t len, const struct sockaddr *from,
                   uint8_t *out, size_t cap, struct binding_reply *reply,
                   const char **why)
{
	static const uint16_t change_request = STUN_ATTR_CHANGE_REQUEST;
	size_t budget = len * BINDING_AMPLIFICATION_MAX;
	struct stun_msg m;
	int sock_out = sock;
	int rc;

	if (cap > BINDING_RESPONSE_MAX)
		cap = BINDING_RESPONSE_MAX;
	if (budget > cap)
		budget = cap;
	if (sock < 0 || sock >= BINDING_SOCKETS_MAX || !svc->have[sock])
		return drop(why, "unknown socket");
	rc = stun_decode(&m, req, len);
	if (rc && rc != STUN_ERR_COOKIE)
		return drop(why, stun_err_str(rc));
	if (!rc && m.cls != STUN_REQUEST)
		return BINDING_IGNORE; /* RFC 8489 6.3: responses are not ours */
	if (from->sa_family != AF_INET && from->sa_family != AF_INET6)
		return drop(why, "source address family");

	memset(reply, 0, sizeof(*reply));
	memcpy(&reply->to, from, addr_len(from));
	if (rc == STUN_ERR_COOKIE) /* RFC 3489: no cookie, 128-bit id */
		return classic_handle(svc, sock, req, len, from, budget, out,
		                      cap, reply, why);
	/* RFC 5780 7.5: send to RESPONSE-PORT, at the same IP address. */
	if (m.present & STUN_HAS_RESPONSE_PORT) {
		if (m.response_port == 0)
			return drop(why, "RESPONSE-PORT 0");
		addr_set_port((struct sockaddr *)&reply->to, m.response_port);
	}

	if (m.method != STUN_BINDING) {
		/* RFC 8489 6.3.1: an unknown method in a request gets a 400 */
		rc = error_response(svc, &m, 400, "Bad Request: unknown method",
		                    NULL, 0, budget, out, cap);
		reply->is_error = 1;
	} else if (m.unknown_required_count) {
		rc = error_response(svc, &m, 420, "Unknown Attribute",
		                    m.unknown_required, m.unknown_required_count,
		                    budget, out, cap);
		reply->is_error = 1;
	} else {
		if (m.present & STUN_HAS_CHANGE_REQUEST) {
			if (m.change_request & STUN_CHANGE_IP)
				sock_out ^= 2;
			if (m.change_request & STUN_CHANGE_PORT)
				sock_out ^= 1;
		}
		if (!svc->have[sock_out]) {
			/* RFC 5780 6.1: a server that cannot change as asked
			 * treats CHANGE-REQUEST as an unknown attribute. */
			sock_out = sock;
			rc = error_response(svc, &m, 420, "Unknown Attribute",
			                    &change_request, 1, budget, out, cap);
			reply->is_error = 1;
		} else {
			rc = success_response(svc, &m, from, sock, sock_out,
			                      budget, out, cap);
		}
	}
	if (rc < 0)
		return drop(why, stun_err_str(rc));
	reply->sock = sock_out;
	reply->len = (size_t)rc;
	return BINDING_REPLY;
}
