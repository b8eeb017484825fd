#include "registry_redis.h"

#include <arpa/inet.h>
#include <hiredis/adapters/libuv.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "log.h"
#include "registry_value.h"
#include "rnd.h"

/* The pairing script (registry_redis.h).  ARGV: prefix, id, peer id, key
 * fingerprint (hex), session, server, value, lifetime (ms), binding TTL
 * (s).  A key under the prefix of another type than ours is damaged or
 * another program's: a read of it fails (WRONGTYPE), and it is dropped
 * rather than trusted; SET overwrites whatever was there.  (pcall and a
 * drop on failure cost less than a TYPE before every read.) */
static const char pair_lua[] =
	"local P, id, peer, fp, sess, srv, val, life, bttl = unpack(ARGV)\n"
	"local function get(cmd, k, ...)\n"
	"  local r = redis.pcall(cmd, k, ...)\n"
	"  if type(r) == 'table' and r.err then redis.call('DEL', k) return false end\n"
	"  return r\n"
	"end\n"
	"local rk, bk = P .. 'r:' .. id, P .. 'b:' .. id\n"
	"local b = get('GET', bk)\n"
	"if b and b ~= fp then return {'bound'} end\n"
	"local cur = get('HGET', rk, 'fp')\n"
	"if cur and cur ~= fp then return {'key'} end\n"
	"redis.call('SET', bk, fp, 'EX', bttl)\n"
	"redis.call('HSET', rk, 'v', val, 'fp', fp, 'peer', peer, 'sess', sess, 'srv', srv)\n"
	"redis.call('PEXPIRE', rk, life)\n"
	"local pv = get('HMGET', P .. 'r:' .. peer, 'v', 'peer', 'sess', 'srv')\n"
	"if not pv or not pv[1] or pv[2] ~= id or not pv[3] or not pv[4] then return {'waiting'} end\n"
	"local ik, st\n"
	"if id < peer then ik, st = P .. 'i:' .. id .. '\\n' .. peer, sess .. ':' .. pv[3]\n"
	"else ik, st = P .. 'i:' .. peer .. '\\n' .. id, pv[3] .. ':' .. sess end\n"
	"local was = get('GET', ik)\n"
	"redis.call('SET', ik, st, 'PX', life)\n"
	"if was == st then return {'paired', pv[4], pv[1], ik} end\n"
	"return {'introduce', pv[4], pv[1], ik}\n";

/* RELEASE: ARGV prefix, id, fingerprint (hex). */
static const char release_lua[] =
	"local P, id, fp = unpack(ARGV)\n"
	"local bk, rk = P .. 'b:' .. id, P .. 'r:' .. id\n"
	"if redis.call('TYPE', bk).ok == 'string' and redis.call('GET', bk) == fp then redis.call('DEL', bk) end\n"
	"if redis.call('TYPE', rk).ok == 'hash' and redis.call('HGET', rk, 'fp') == fp then redis.call('DEL', rk) end\n"
	"return 1\n";

struct registry_redis {
	uv_loop_t *loop;
	struct registry_url url;
	char ip[INET6_ADDRSTRLEN]; /* the host, resolved once at start */
	char where[REGISTRY_URL_HOST_MAX + 32];
	struct rdv_server *rs;
	struct registry *local;
	redisAsyncContext *cmd, *sub;
	int cmd_up, sub_up, closing, was_up;
	char sha[41]; /* of pair_lua, as SCRIPT LOAD said */
	uv_timer_t retry, watchdog;
	uint64_t cmd_opened_ms, sub_opened_ms;
	unsigned backoff_ms;
	char id[REGISTRY_SERVER_ID_LEN + 1];
	char channel[sizeof(REGISTRY_REDIS_PREFIX) + 2 + REGISTRY_SERVER_ID_LEN];
	char bind_ttl[24];
	size_t inflight;
	uint64_t last_warn_ms;
	struct registry_redis_stats stats;
	uv_mutex_t *lock; /* NULL: one thread */
};

/* One registration on its way through Redis. */
struct rjob {
	struct registry_redis *rr;
	int local_rc; /* the table's answer: served from memory on failure */
	struct reg_job job;
	size_t value_len;
	uint8_t value[REGVAL_MAX];
};

static void rr_connect(struct registry_redis *rr);
static void rr_error(struct registry_redis *rr, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Count an error and tell it, at most once a second at warning level. */
static void rr_error(struct registry_redis *rr, const char *fmt, ...)
{
	uint64_t now = uv_now(rr->loop);
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	rr->stats.errors++;
	if (!rr->last_warn_ms || now - rr->last_warn_ms >=
	                                 REGISTRY_REDIS_WARN_EVERY_MS) {
		rr->last_warn_ms = now;
		log_warn("redis %s: %s (%llu errors so far)", rr->where, msg,
		         (unsigned long long)rr->stats.errors);
	} else {
		log_debug("redis %s: %s", rr->where, msg);
	}
}

static void set_up(struct registry_redis *rr)
{
	int up = rr->cmd_up && rr->sub_up;

	if (up == rr->stats.up)
		return;
	rr->stats.up = up;
	if (up) {
		log_info("shared registry at %s: connected; this server is %s",
		         rr->where, rr->id);
		rr->was_up = 1;
	} else if (rr->was_up && !rr->closing) {
		log_warn("shared registry at %s: unreachable; serving from memory (pairs split across servers wait) and reconnecting",
		         rr->where);
	}
}

/* ---- connections ---------------------------------------------------------- */

static void on_retry(uv_timer_t *t)
{
	rr_connect(t->data);
}

static void schedule_retry(struct registry_redis *rr)
{
	if (rr->closing || uv_is_active((uv_handle_t *)&rr->retry))
		return;
	uv_timer_start(&rr->retry, on_retry, rr->backoff_ms, 0);
	rr->backoff_ms = rr->backoff_ms * 2 > REGISTRY_REDIS_BACKOFF_MAX_MS ?
	                         REGISTRY_REDIS_BACKOFF_MAX_MS :
	                         rr->backoff_ms * 2;
}

/* ac is gone (hiredis frees it): forget it and try again later. */
static void lost(struct registry_redis *rr, const redisAsyncContext *ac)
{
	if (ac == rr->cmd) {
		rr->cmd = NULL;
		rr->cmd_up = 0;
	} else if (ac == rr->sub) {
		rr->sub = NULL;
		rr->sub_up = 0;
	}
	set_up(rr);
	schedule_retry(rr);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
	struct registry_redis *rr = ac->data;

	if (status == REDIS_OK)
		return;
	log_debug("redis %s: cannot connect: %s", rr->where, ac->errstr);
	lost(rr, ac);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
	struct registry_redis *rr = ac->data;

	if (rr->closing)
		return;
	if (status != REDIS_OK)
		log_debug("redis %s: disconnected: %s", rr->where, ac->errstr);
	lost(rr, ac);
}

static int reply_is_error(struct registry_redis *rr, const redisReply *r,
                          const char *what)
{
	if (!r)
		return 1; /* the connection went: on_disconnect() tells */
	if (r->type == REDIS_REPLY_ERROR) {
		rr_error(rr, "%s: %.*s", what, (int)r->len, r->str);
		return 1;
	}
	return 0;
}

/* AUTH and SELECT: a refusal closes the connection (and it is tried
 * again later: the operator may be fixing Redis). */
static void on_setup(redisAsyncContext *ac, void *reply, void *priv)
{
	struct registry_redis *rr = ac->data;

	if (reply && reply_is_error(rr, reply, priv))
		redisAsyncDisconnect(ac);
}

static void on_script(redisAsyncContext *ac, void *reply, void *priv)
{
	struct registry_redis *rr = ac->data;
	const redisReply *r = reply;

	(void)priv;
	if (reply_is_error(rr, r, "SCRIPT LOAD"))
		return;
	if (r->type != REDIS_REPLY_STRING || r->len != 40) {
		rr_error(rr, "SCRIPT LOAD: an answer that is not a SHA-1");
		redisAsyncDisconnect(ac);
		return;
	}
	memcpy(rr->sha, r->str, 40);
	rr->sha[40] = '\0';
	rr->cmd_up = 1;
	rr->backoff_ms = REGISTRY_REDIS_BACKOFF_MIN_MS;
	set_up(rr);
}

static void on_message(redisAsyncContext *ac, void *reply, void *priv);

static redisAsyncContext *ctx_open(struct registry_redis *rr, int is_sub)
{
	redisAsyncContext *ac = rr->url.is_unix ?
	                                redisAsyncConnectUnix(rr->url.path) :
	                                redisAsyncConnect(rr->ip, (int)rr->url.port);

	if (!ac || ac->err) {
		log_debug("redis %s: cannot connect: %s", rr->where,
		          ac ? ac->errstr : "out of memory");
		if (ac)
			redisAsyncFree(ac);
		schedule_retry(rr);
		return NULL;
	}
	ac->data = rr;
	if (redisLibuvAttach(ac, rr->loop) != REDIS_OK) {
		redisAsyncFree(ac);
		schedule_retry(rr);
		return NULL;
	}
	redisAsyncSetConnectCallback(ac, on_connect);
	redisAsyncSetDisconnectCallback(ac, on_disconnect);
	rr->stats.connects++;
	if (rr->url.password[0])
		redisAsyncCommand(ac, on_setup, "AUTH", "AUTH %s",
		                  rr->url.password);
	if (is_sub) {
		redisAsyncCommand(ac, on_message, NULL, "SUBSCRIBE %s",
		                  rr->channel);
		return ac;
	}
	if (rr->url.db)
		redisAsyncCommand(ac, on_setup, "SELECT", "SELECT %u",
		                  rr->url.db);
	redisAsyncCommand(ac, on_script, NULL, "SCRIPT LOAD %s", pair_lua);
	return ac;
}

static void rr_connect(struct registry_redis *rr)
{
	if (rr->closing)
		return;
	if (!rr->cmd) {
		rr->cmd = ctx_open(rr, 0);
		rr->cmd_opened_ms = uv_now(rr->loop);
	}
	if (!rr->sub) {
		rr->sub = ctx_open(rr, 1);
		rr->sub_opened_ms = uv_now(rr->loop);
	}
}

/* A connection that is not ready in time is given up and tried again:
 * Redis may hang, and hiredis 0.14's libuv adapter never reports a
 * refused connect (uv_poll's error status is dropped). */
static void on_watchdog(uv_timer_t *t)
{
	struct registry_redis *rr = t->data;
	uint64_t now = uv_now(rr->loop);
	redisAsyncContext *ac;

	if (rr->cmd && !rr->cmd_up &&
	    now - rr->cmd_opened_ms >= REGISTRY_REDIS_CONNECT_MS) {
		log_debug("redis %s: not ready in %d ms; trying again",
		          rr->where, REGISTRY_REDIS_CONNECT_MS);
		ac = rr->cmd;
		rr->cmd = NULL;
		redisAsyncFree(ac);
		schedule_retry(rr);
	}
	if (rr->sub && !rr->sub_up &&
	    now - rr->sub_opened_ms >= REGISTRY_REDIS_CONNECT_MS) {
		ac = rr->sub;
		rr->sub = NULL;
		redisAsyncFree(ac);
		schedule_retry(rr);
	}
}

/* ---- between servers ------------------------------------------------------ */

/* A reply element that is a string: its bytes, or NULL. */
static const redisReply *elem_str(const redisReply *r, size_t i)
{
	if (r->type != REDIS_REPLY_ARRAY || i >= r->elements ||
	    !r->element[i] || r->element[i]->type != REDIS_REPLY_STRING)
		return NULL;
	return r->element[i];
}

static void rr_lock(struct registry_redis *rr)
{
	if (rr->lock)
		uv_mutex_lock(rr->lock);
}

static void rr_unlock(struct registry_redis *rr)
{
	if (rr->lock)
		uv_mutex_unlock(rr->lock);
}

static void on_message(redisAsyncContext *ac, void *reply, void *priv)
{
	struct registry_redis *rr = ac->data;
	const redisReply *r = reply, *kind, *data;
	static struct punch_peer about; /* over 1 KB; one thread */
	char target[PUNCH_ID_MAX + 1];
	const uint8_t *value;
	size_t value_len;
	const char *why;

	(void)priv;
	if (reply_is_error(rr, r, "SUBSCRIBE"))
		return;
	kind = elem_str(r, 0);
	if (kind && kind->len == 9 && !memcmp(kind->str, "subscribe", 9)) {
		rr->sub_up = 1;
		set_up(rr);
		return;
	}
	data = elem_str(r, 2);
	if (!kind || kind->len != 7 || memcmp(kind->str, "message", 7) || !data) {
		rr_error(rr, "a pub/sub message of an unknown form");
		return;
	}
	if (regmsg_split((const uint8_t *)data->str, data->len, target, &value,
	                 &value_len, &why) ||
	    regval_decode(value, value_len, &about, &why)) {
		rr_error(rr, "an introduction from another server that does not check: %s",
		         why);
		return;
	}
	rr->stats.received++;
	rr_lock(rr);
	rdv_remote_introduce(rr->rs, target, &about, uv_now(rr->loop));
	rr_unlock(rr);
}

/* A PUBLISH nobody heard: the peer's server is gone (its registrations
 * outlive it by up to their lifetime).  The pair's introduction is
 * forgotten, so that the next refresh of either side, at whatever server,
 * introduces them again. */
static void on_published(redisAsyncContext *ac, void *reply, void *priv)
{
	struct registry_redis *rr = ac->data;
	const redisReply *r = reply;
	char *pair_key = priv;

	if (r && !reply_is_error(rr, r, "PUBLISH") &&
	    r->type == REDIS_REPLY_INTEGER && r->integer == 0 && rr->cmd) {
		log_debug("redis %s: no server heard an introduction; forgetting it",
		          rr->where);
		redisAsyncCommand(rr->cmd, NULL, NULL, "DEL %s", pair_key);
	}
	free(pair_key);
}

/* Tell server srv to introduce its client `target` to ours (value); the
 * script named the pair's key. */
static void publish(struct registry_redis *rr, const char *srv,
                    const redisReply *pair, const char *target,
                    const uint8_t *value, size_t len)
{
	static uint8_t msg[REGMSG_MAX];
	char channel[sizeof(rr->channel)];
	char *pair_key = pair ? strndup(pair->str, pair->len) : NULL;
	size_t n;

	if (!pair_key || regmsg_encode(msg, sizeof(msg), &n, target, value, len)) {
		free(pair_key);
		return;
	}
	snprintf(channel, sizeof(channel), "%ss:%s", REGISTRY_REDIS_PREFIX, srv);
	if (rr->cmd && redisAsyncCommand(rr->cmd, on_published, pair_key,
	                                 "PUBLISH %s %b", channel, msg,
	                                 n) == REDIS_OK)
		rr->stats.published++;
	else
		free(pair_key);
}

/* ---- registrations -------------------------------------------------------- */

/* The table's own answer, when Redis gives none. */
static void from_memory(struct registry_redis *rr, struct reg_job *job,
                        int rc)
{
	struct reg_outcome o = { .result = rc };

	rr->stats.from_memory++;
	if (rc == REG_PAIRED || rc == REG_INTRODUCE) {
		o.self = registry_find(rr->local, job->p.id);
		o.peer = registry_find(rr->local, job->p.peer_id);
	}
	job->done(job, &o);
}

/* What the pairing script said, into o; -1 if it makes no sense. */
static int outcome_read(struct registry_redis *rr, struct rjob *j,
                        const redisReply *r, struct reg_outcome *o,
                        const char **srv)
{
	static struct punch_peer remote; /* over 1 KB; one thread */
	const redisReply *st = elem_str(r, 0), *s, *v;
	const char *why;

	if (!st)
		return -1;
	if (st->len == 7 && !memcmp(st->str, "waiting", 7)) {
		o->result = REG_WAITING;
		return 0;
	}
	if (st->len == 5 && !memcmp(st->str, "bound", 5)) {
		o->result = REG_ERR_BOUND;
		return 0;
	}
	if (st->len == 3 && !memcmp(st->str, "key", 3)) {
		o->result = REG_ERR_KEY;
		return 0;
	}
	s = elem_str(r, 1);
	v = elem_str(r, 2);
	if (!s || !v || !regval_server_id_ok(s->str, s->len))
		return -1;
	if (st->len == 9 && !memcmp(st->str, "introduce", 9))
		o->result = REG_INTRODUCE;
	else if (st->len == 6 && !memcmp(st->str, "paired", 6))
		o->result = REG_PAIRED;
	else
		return -1;
	*srv = s->str;
	if (!strncmp(s->str, rr->id, REGISTRY_SERVER_ID_LEN)) {
		o->peer = registry_find(rr->local, j->job.p.peer_id);
		if (!o->peer)
			o->result = REG_WAITING; /* gone from here since */
		return 0;
	}
	if (regval_decode((const uint8_t *)v->str, v->len, &remote, &why) ||
	    strcmp(remote.id, j->job.p.peer_id)) {
		rr_error(rr, "the registration of %s does not check: %s",
		         j->job.p.peer_id, why ? why : "another id");
		o->result = REG_WAITING;
		return 0;
	}
	o->remote = &remote;
	return 0;
}

static void on_pair_locked(struct registry_redis *rr, struct rjob *j,
                           const redisReply *r);

static void on_pair(redisAsyncContext *ac, void *reply, void *priv)
{
	struct rjob *j = priv;
	struct registry_redis *rr = j->rr;

	(void)ac;
	rr_lock(rr);
	on_pair_locked(rr, j, reply);
	rr_unlock(rr);
}

static void on_pair_locked(struct registry_redis *rr, struct rjob *j,
                           const redisReply *r)
{
	struct reg_outcome o = { 0 };
	const char *srv = NULL;

	rr->inflight--;
	if (!r && !rr->closing)
		rr_error(rr, "no answer from the pairing script: the connection went");
	if (reply_is_error(rr, r, "the pairing script") ||
	    outcome_read(rr, j, r, &o, &srv)) {
		if (r && r->type != REDIS_REPLY_ERROR)
			rr_error(rr, "the pairing script answered nonsense");
		if (r && r->type == REDIS_REPLY_ERROR && !strncmp(r->str, "NOSCRIPT", 8) && rr->cmd)
			redisAsyncCommand(rr->cmd, on_script, NULL,
			                  "SCRIPT LOAD %s", pair_lua);
		from_memory(rr, &j->job, j->local_rc);
		free(j);
		return;
	}
	if (o.result < 0) /* refused there: not here either */
		registry_remove(rr->local, j->job.p.id, j->job.p.key_fp,
		                j->job.now_ms);
	else
		o.self = registry_find(rr->local, j->job.p.id);
	if (o.remote && (o.result == REG_INTRODUCE || j->job.changed))
		publish(rr, srv, elem_str(r, 3), j->job.p.peer_id, j->value,
		        j->value_len);
	j->job.done(&j->job, &o);
	free(j);
}

static void hex(const uint8_t *b, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[b[i] >> 4];
		out[2 * i + 1] = d[b[i] & 15];
	}
	out[2 * n] = '\0';
}

static int pair_send(struct registry_redis *rr, struct rjob *j)
{
	char fp[2 * PUNCH_KEY_FP_LEN + 1], sess[24], life[24];
	const char *argv[12] = { "EVALSHA", rr->sha, "0",
		                 REGISTRY_REDIS_PREFIX, j->job.p.id,
		                 j->job.p.peer_id, fp, sess, rr->id,
		                 (const char *)j->value, life, rr->bind_ttl };
	size_t len[12];

	hex(j->job.p.key_fp, PUNCH_KEY_FP_LEN, fp);
	snprintf(sess, sizeof(sess), "%llu",
	         (unsigned long long)j->job.p.session);
	snprintf(life, sizeof(life), "%d", REGISTRY_LIFETIME_MS);
	for (int i = 0; i < 12; i++)
		len[i] = strlen(argv[i]);
	len[9] = j->value_len;
	return redisAsyncCommandArgv(rr->cmd, on_pair, j, 12, argv, len);
}

static void redis_submit(void *store, struct reg_job *job)
{
	struct registry_redis *rr = store;
	const struct reg_entry *self = NULL, *peer = NULL;
	struct rjob *j;
	int rc;

	/* The limits are this server's: its table first. */
	rc = registry_register(rr->local, &job->p,
	                       (const struct sockaddr *)&job->from, job->sock,
	                       job->now_ms, &self, &peer);
	if (rc < 0) {
		struct reg_outcome o = { .result = rc };

		job->done(job, &o);
		return;
	}
	if (!rr->stats.up || rr->inflight >= REGISTRY_REDIS_INFLIGHT_MAX ||
	    !(j = malloc(sizeof(*j)))) {
		from_memory(rr, job, rc);
		return;
	}
	j->rr = rr;
	j->local_rc = rc;
	j->job = *job;
	j->job.msg = NULL;
	j->job.out = NULL;
	j->job.reply = NULL;
	if (regval_encode(j->value, sizeof(j->value), &j->value_len,
	                  (const struct sockaddr *)&job->from, job->msg,
	                  job->msg_len) ||
	    pair_send(rr, j) != REDIS_OK) {
		free(j);
		from_memory(rr, job, rc);
		return;
	}
	rr->inflight++;
}

static void redis_release(void *store, const char *id,
                          const uint8_t fp[PUNCH_KEY_FP_LEN], uint64_t now_ms)
{
	struct registry_redis *rr = store;
	char h[2 * PUNCH_KEY_FP_LEN + 1];

	registry_remove(rr->local, id, fp, now_ms);
	if (!rr->stats.up)
		return;
	hex(fp, PUNCH_KEY_FP_LEN, h);
	redisAsyncCommand(rr->cmd, NULL, NULL, "EVAL %s 0 %s %s %s",
	                  release_lua, REGISTRY_REDIS_PREFIX, id, h);
}

const struct reg_store_ops registry_redis_ops = {
	.name = "redis",
	.submit = redis_submit,
	.release = redis_release,
};

/* ---- start and stop ------------------------------------------------------- */

static int resolve(struct registry_redis *rr, char *err, size_t err_len)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL;
	int rc;

	if (rr->url.is_unix) {
		snprintf(rr->where, sizeof(rr->where), "unix://%s", rr->url.path);
		return 0;
	}
	/* Once, at start: hiredis's connect would resolve on the loop. */
	rc = getaddrinfo(rr->url.host, NULL, &hints, &ai);
	if (rc || !ai) {
		snprintf(err, err_len, "-registry: cannot resolve %s: %s",
		         rr->url.host, gai_strerror(rc));
		return -1;
	}
	inet_ntop(ai->ai_family,
	          ai->ai_family == AF_INET ?
	                  (void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr :
	                  (void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr,
	          rr->ip, sizeof(rr->ip));
	freeaddrinfo(ai);
	registry_url_str(&rr->url, rr->where, sizeof(rr->where));
	return 0;
}

struct registry_redis *registry_redis_new(uv_loop_t *loop,
                                          const struct registry_url *url,
                                          struct rdv_server *rs,
                                          uint64_t id_ttl_s, char *err,
                                          size_t err_len)
{
	struct registry_redis *rr = calloc(1, sizeof(*rr));
	uint8_t id[REGISTRY_SERVER_ID_LEN / 2];

	if (!rr) {
		snprintf(err, err_len, "out of memory");
		return NULL;
	}
	rr->loop = loop;
	rr->url = *url;
	rr->rs = rs;
	rr->local = rdv_registry(rs);
	if (resolve(rr, err, err_len)) {
		free(rr);
		return NULL;
	}
	rnd_nonce(id, sizeof(id));
	hex(id, sizeof(id), rr->id);
	snprintf(rr->channel, sizeof(rr->channel), "%ss:%s",
	         REGISTRY_REDIS_PREFIX, rr->id);
	snprintf(rr->bind_ttl, sizeof(rr->bind_ttl), "%llu",
	         (unsigned long long)(id_ttl_s ? id_ttl_s : 1));
	rr->backoff_ms = REGISTRY_REDIS_BACKOFF_MIN_MS;
	uv_timer_init(loop, &rr->retry);
	rr->retry.data = rr;
	uv_timer_init(loop, &rr->watchdog);
	rr->watchdog.data = rr;
	uv_timer_start(&rr->watchdog, on_watchdog, REGISTRY_REDIS_CONNECT_MS / 4,
	               REGISTRY_REDIS_CONNECT_MS / 4);
	rr_connect(rr);
	return rr;
}

static void retry_closed(uv_handle_t *h)
{
	free(h->data);
}

static void watchdog_closed(uv_handle_t *h)
{
	(void)h;
}

void registry_redis_free(struct registry_redis *rr)
{
	if (!rr)
		return;
	rr->closing = 1;
	rr->stats.up = 0;
	/* Pending replies come back NULL: answered from memory, now. */
	if (rr->cmd)
		redisAsyncFree(rr->cmd);
	if (rr->sub)
		redisAsyncFree(rr->sub);
	rr->cmd = rr->sub = NULL;
	uv_close((uv_handle_t *)&rr->watchdog, watchdog_closed);
	uv_close((uv_handle_t *)&rr->retry, retry_closed); /* the last */
}

void registry_redis_set_lock(struct registry_redis *rr, uv_mutex_t *lock)
{
	rr->lock = lock;
}

const struct registry_redis_stats *
registry_redis_stats(const struct registry_redis *rr)
{
	return &rr->stats;
}

const char *registry_redis_server_id(const struct registry_redis *rr)
{
	return rr->id;
}
