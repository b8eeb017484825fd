#include "chat.h"

#include <gnutls/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

void chat_init(struct chat *c, struct agent *agent,
               void (*on_line)(void *, const char *, size_t),
               void (*on_bye)(void *), void *ctx)
{
	memset(c, 0, sizeof(*c));
	c->agent = agent;
	c->on_line = on_line;
	c->on_bye = on_bye;
	c->ctx = ctx;
}

void chat_free(struct chat *c)
{
	for (size_t i = 0; i < c->count; i++)
		free(c->queue[(c->head + i) % CHAT_QUEUE_MAX]);
	c->count = 0;
}

int chat_can_queue(const struct chat *c)
{
	return c->count < CHAT_QUEUE_MAX;
}

int chat_send_line(struct chat *c, const char *text, size_t len)
{
	size_t tail = (c->head + c->count) % CHAT_QUEUE_MAX;
	char *copy;

	if (!chat_can_queue(c) || c->bye_queued)
		return -1;
	if (len > PUNCH_DATA_MAX)
		len = PUNCH_DATA_MAX;
	if (!(copy = malloc(len ? len : 1)))
		return -1;
	memcpy(copy, text, len);
	c->queue[tail] = copy;
	c->qlen[tail] = len;
	c->count++;
	return 0;
}

void chat_bye(struct chat *c)
{
	/* The goodbye is an empty line at the end of the queue. */
	if (!c->bye_queued && chat_send_line(c, "", 0) == 0)
		c->bye_queued = 1;
}

static void send_head(struct chat *c, uint64_t now_ms)
{
	const struct agent_pair *p = agent_selected(c->agent);
	uint8_t buf[PUNCH_MSG_MAX];
	struct stun_writer w;
	int n;

	if (!p)
		return;
	stun_writer_init(&w, buf, sizeof(buf), PUNCH_DATA, STUN_REQUEST,
	                 c->txid);
	agent_put_username(c->agent, &w);
	stun_put_u32(&w, PUNCH_ATTR_SEQ, c->seq_out);
	stun_put_bytes(&w, PUNCH_ATTR_DATA, c->queue[c->head],
	               c->qlen[c->head]);
	agent_put_request_integrity(c->agent, &w);
	stun_put_fingerprint(&w);
	n = stun_writer_finish(&w);
	if (n > 0)
		c->agent->send(c->agent->ctx, p->sock,
		               (const struct sockaddr *)
		               &agent_pair_remote(c->agent, p)->addr,
		               buf, (size_t)n, 0);
	c->next_ms = now_ms + c->rto_ms;
	c->rto_ms = c->rto_ms * 2 > CHAT_RTO_MAX_MS ? CHAT_RTO_MAX_MS :
	                                             c->rto_ms * 2;
}

uint64_t chat_tick(struct chat *c, uint64_t now_ms)
{
	if (c->agent->state != AGENT_STATE_CONNECTED || !c->count)
		return UINT64_MAX;
	if (!c->inflight) {
		gnutls_rnd(GNUTLS_RND_NONCE, c->txid, sizeof(c->txid));
		c->inflight = 1;
		c->rto_ms = CHAT_RTO_MS;
		c->next_ms = now_ms;
	}
	if (now_ms >= c->next_ms)
		send_head(c, now_ms);
	return c->next_ms;
}

static void respond(struct chat *c, int sock, const struct sockaddr *from,
                    const struct stun_msg *m)
{
	uint8_t buf[128];
	struct stun_writer w;
	int n;

	stun_writer_init(&w, buf, sizeof(buf), PUNCH_DATA, STUN_SUCCESS,
	                 m->txid);
	agent_put_response_integrity(c->agent, &w);
	stun_put_fingerprint(&w);
	n = stun_writer_finish(&w);
	if (n > 0)
		c->agent->send(c->agent->ctx, sock, from, buf, (size_t)n, 0);
}

static void on_request(struct chat *c, int sock, const struct sockaddr *from,
                       const struct stun_msg *m)
{
	const struct stun_attr *seq = punch_attr_find(m, PUNCH_ATTR_SEQ);
	const struct stun_attr *data = punch_attr_find(m, PUNCH_ATTR_DATA);
	uint32_t s;

	if (!seq || seq->len != 4 || !data)
		return;
	s = (uint32_t)seq->value[0] << 24 | (uint32_t)seq->value[1] << 16 |
	    (uint32_t)seq->value[2] << 8 | seq->value[3];
	respond(c, sock, from, m);
	if (c->peer_session != c->agent->peer.session) {
		/* the peer restarted: its numbering starts again */
		c->peer_session = c->agent->peer.session;
		c->seq_in = 0;
	}
	if (s < c->seq_in)
		return; /* a retransmission we already delivered */
	c->seq_in = s + 1;
	if (data->len == 0) {
		if (!c->peer_left) {
			c->peer_left = 1;
			c->on_bye(c->ctx);
		}
		return;
	}
	c->on_line(c->ctx, (const char *)data->value, data->len);
}

int chat_on_stun(struct chat *c, int sock, const struct sockaddr *from,
                 const uint8_t *buf, size_t len, const struct stun_msg *m,
                 uint64_t now_ms)
{
	if (m->method != PUNCH_DATA)
		return 0;
	if (m->cls == STUN_REQUEST) {
		if (!agent_auth_request(c->agent, m, buf, len)) {
			log_debug("chat: dropped a line that failed authentication");
			return 1;
		}
		on_request(c, sock, from, m);
		return 1;
	}
	if (m->cls != STUN_SUCCESS || !c->inflight ||
	    memcmp(m->txid, c->txid, STUN_TXID_LEN) ||
	    !agent_auth_response(c->agent, m, buf, len))
		return 1;
	if (c->qlen[c->head] == 0 && c->bye_queued)
		c->bye_acked = 1;
	free(c->queue[c->head]);
	c->head = (c->head + 1) % CHAT_QUEUE_MAX;
	c->count--;
	c->seq_out++;
	c->inflight = 0;
	(void)chat_tick(c, now_ms);
	return 1;
}
