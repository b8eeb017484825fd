/*
 * Unit tests for the rendezvous over a store that answers later
 * (registry_store.h), as the shared registry in Redis does: a fake store
 * keeps the job and the test decides.  The REGISTER is answered by the
 * send callback, once; a refusal of the shared registry is a 403; a peer
 * registered at another server is introduced only when it checks.
 */
#include "rendezvous_unit.h"

#include "registry_store.h"
#include "registry_value.h"

static struct {
	struct reg_job job; /* the one waiting */
	int waiting;
	uint8_t msg[PUNCH_MSG_MAX];
} later;

static void later_submit(void *store, struct reg_job *job)
{
	const struct reg_entry *self = NULL, *peer = NULL;

	/* the local table, as registry_redis.c keeps it */
	assert_true(registry_register(store, &job->p,
	                              (const struct sockaddr *)&job->from,
	                              job->sock, job->now_ms, &self,
	                              &peer) >= 0);
	assert_false(later.waiting);
	later.job = *job;
	memcpy(later.msg, job->msg, job->msg_len);
	later.job.msg = later.msg;
	later.job.out = NULL;
	later.job.reply = NULL;
	later.waiting = 1;
}

static void later_release(void *store, const char *id,
                          const uint8_t fp[PUNCH_KEY_FP_LEN], uint64_t now_ms)
{
	registry_remove(store, id, fp, now_ms);
}

static const struct reg_store_ops later_ops = { "later", later_submit,
	                                        later_release };

static void finish(const struct reg_outcome *o)
{
	assert_true(later.waiting);
	later.waiting = 0;
	later.job.done(&later.job, o);
}

/* Register q from `from` until the store holds it (no answer yet). */
static void submit_one(struct reg_req *q, const struct sockaddr_storage *from)
{
	struct result res;
	char nonce[33];

	rdv_server_set_store(srv, &later_ops, rdv_registry(srv));
	do_register(&res, q, from, T0, nonce);
	assert_int_equal(res.verdict, BINDING_IGNORE);
	assert_true(later.waiting);
	assert_size(cap.n, 0);
}

static void test_answer_later(void **state)
{
	struct sockaddr_storage from = sa_make("198.51.100.1", 4000);
	struct reg_req q = req_make("alice", "bob", 1);
	struct reg_outcome o = { .result = REG_WAITING };
	struct stun_msg m;

	(void)state;
	submit_one(&q, &from);
	finish(&o);
	/* one answer, by the send callback, to the request's source */
	assert_size(cap.n, 1);
	assert_addr(&cap.s[0].to, &from);
	decode_ok(&m, cap.s[0].buf, cap.s[0].len);
	assert_int_equal(m.method, PUNCH_REGISTER);
	assert_int_equal(m.cls, STUN_SUCCESS);
	assert_memory_equal(m.txid, q.txid, STUN_TXID_LEN);
	assert_int_equal(u32_attr(&m, PUNCH_ATTR_STATUS), PUNCH_STATUS_WAITING);
	assert_int_equal(rdv_stats(srv)->registered, 1);
}

static void test_refused_by_shared_binding(void **state)
{
	struct sockaddr_storage from = sa_make("198.51.100.1", 4000);
	struct reg_req q = req_make("alice", "bob", 1);
	struct reg_outcome o = { .result = REG_ERR_BOUND };
	struct stun_msg m;
	char reason[STUN_MAX_REASON + 1];

	(void)state;
	submit_one(&q, &from);
	finish(&o);
	assert_size(cap.n, 1);
	decode_ok(&m, cap.s[0].buf, cap.s[0].len);
	assert_int_equal(m.cls, STUN_ERROR);
	assert_int_equal(m.error_code, 403);
	memcpy(reason, m.reason.ptr, m.reason.len);
	reason[m.reason.len] = '\0';
	assert_str(reason, "Forbidden: id is bound to another key (in the shared registry)");
	assert_int_equal(rdv_stats(srv)->refused[RDV_REFUSED_BOUND], 1);
	assert_int_equal(rdv_stats(srv)->registered, 0);
}

/* bob, registered at another server, as regval_decode() gives him. */
static struct punch_peer remote_bob(const char *peer_id, int key)
{
	struct reg_req q = req_make("bob", peer_id, 2);
	struct sockaddr_storage seen = sa_make("203.0.113.5", 5000);
	uint8_t v[REGVAL_MAX];
	struct punch_peer p;
	const char *why;
	struct raw r;
	size_t len;

	q.key = key;
	q.nonce = "0000000100112233445566778899aabb";
	build_register(&r, &q);
	assert_int_equal(regval_encode(v, sizeof(v), &len, SA(seen), r.b, r.len),
	                 0);
	assert_int_equal(regval_decode(v, len, &p, &why), 0);
	return p;
}

static void test_introduced_from_another_server(void **state)
{
	struct sockaddr_storage from = sa_make("198.51.100.1", 4000);
	struct reg_req q = req_make("alice", "bob", 1);
	struct reg_outcome o = { .result = REG_WAITING };
	struct punch_peer bob = remote_bob("alice", 0x22), stranger;
	struct stun_msg m;
	struct punch_peer p;
	const char *why;

	(void)state;
	submit_one(&q, &from);
	finish(&o);
	cap.n = 0;
	/* a bob who looks for someone else: nobody is told */
	stranger = remote_bob("carol", 0x22);
	assert_int_equal(rdv_remote_introduce(srv, "alice", &stranger, T0), -1);
	/* nor is anyone not registered here */
	assert_int_equal(rdv_remote_introduce(srv, "dave", &bob, T0), -1);
	assert_size(cap.n, 0);
	/* the real one: PEER-INFO to alice, where she registered from */
	assert_int_equal(rdv_remote_introduce(srv, "alice", &bob, T0), 0);
	assert_size(cap.n, 1);
	assert_addr(&cap.s[0].to, &from);
	decode_ok(&m, cap.s[0].buf, cap.s[0].len);
	assert_int_equal(m.method, PUNCH_PEER_INFO);
	assert_int_equal(punch_peer_parse(&p, &m, &why), 0);
	assert_str(p.id, "bob");
	assert_memory_equal(p.key_fp, bob.key_fp, PUNCH_KEY_FP_LEN);
}

static void test_remote_id_bound_here_is_refused(void **state)
{
	struct sockaddr_storage from = sa_make("198.51.100.1", 4000);
	struct sockaddr_storage bob_from = sa_make("198.51.100.2", 4001);
	struct reg_req q = req_make("alice", "bob", 1);
	struct reg_req b = req_make("bob", "carol", 3);
	struct reg_outcome o = { .result = REG_WAITING };
	struct punch_peer other_bob = remote_bob("alice", 0x33);
	struct result res;
	char nonce[33];

	(void)state;
	/* bob registers here first with the default key: bound to it */
	do_register(&res, &b, &bob_from, T0, nonce);
	expect_registered(&res, &bob_from, PUNCH_STATUS_WAITING);
	submit_one(&q, &from);
	finish(&o);
	cap.n = 0;
	/* a "bob" from another server, signed by another key: refused */
	assert_int_equal(rdv_remote_introduce(srv, "alice", &other_bob, T0), -1);
	assert_size(cap.n, 0);
}

static int reset(void **state)
{
	memset(&later, 0, sizeof(later));
	return setup(state);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_answer_later, reset, teardown),
		cmocka_unit_test_setup_teardown(test_refused_by_shared_binding,
		                                reset, teardown),
		cmocka_unit_test_setup_teardown(test_introduced_from_another_server,
		                                reset, teardown),
		cmocka_unit_test_setup_teardown(test_remote_id_bound_here_is_refused,
		                                reset, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
