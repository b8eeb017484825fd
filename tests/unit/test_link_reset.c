/*
 * The link (src/link.c) between two ends of quic_pair.h, with a probe app
 * of the test's own: a stream the peer resets or stops reaches the app as
 * one sentence naming the peer, the code and its meaning, or, for an app
 * with no on_stream_error, ends the session with status 1 on both sides.
 */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>

#include "quic_pair.h"

#define MS 1000000ull         /* a millisecond of the fake clock, in ns */
#define S (1000ull * MS)

struct probe {
	struct app_env env;
	int index;                 /* QP_CLIENT or QP_SERVER */
	int ready;
	uint64_t rx;
	int errors;
	int64_t err_id;
	uint64_t err_code;
	char why[256];
};

static struct probe *probes[2];

static struct app *probe_create(const struct app_env *env,
                                const struct app_args *args)
{
	struct probe *p = calloc(1, sizeof(*p));

	(void)args;
	if (!p)
		return NULL;
	p->env = *env;
	/* qp_init_links() names the client alice and the server bob */
	p->index = strcmp(env->peer_id, "bob") ? QP_SERVER : QP_CLIENT;
	probes[p->index] = p;
	return (struct app *)p;
}

static void probe_ready(struct app *a, const struct app_hello *h)
{
	(void)h;
	((struct probe *)a)->ready = 1;
}

static void probe_data(struct app *a, int64_t id, const uint8_t *data,
                       size_t len, int fin)
{
	(void)id, (void)data, (void)fin;
	((struct probe *)a)->rx += len;
}

static void probe_error(struct app *a, int64_t id, uint64_t code,
                        const char *why)
{
	struct probe *p = (struct probe *)a;

	p->errors++;
	p->err_id = id;
	p->err_code = code;
	snprintf(p->why, sizeof(p->why), "%s", why);
}

static void probe_destroy(struct app *a)
{
	struct probe *p = (struct probe *)a;

	probes[p->index] = NULL;
	free(p);
}

static const struct app_ops probe_plain = {
	.name = "probe",
	.wire = "probe",
	.create = probe_create,
	.on_ready = probe_ready,
	.on_data = probe_data,
	.destroy = probe_destroy,
};

static const struct app_ops probe_hooked = {
	.name = "probe",
	.wire = "probe",
	.create = probe_create,
	.on_ready = probe_ready,
	.on_data = probe_data,
	.on_stream_error = probe_error,
	.destroy = probe_destroy,
};

static int both_ready(struct qp *p, void *arg)
{
	(void)p, (void)arg;
	return probes[0] && probes[1] && probes[0]->ready && probes[1]->ready;
}

struct want_rx {
	int end;
	uint64_t rx;
};

static int got_rx(struct qp *p, void *arg)
{
	const struct want_rx *w = arg;

	(void)p;
	return probes[w->end]->rx >= w->rx;
}

static int both_finished(struct qp *p, void *arg)
{
	(void)arg;
	return p->e[0].finished && p->e[1].finished;
}

static void links_up(struct qp *p, const struct app_ops *client,
                     const struct app_ops *server)
{
	const struct app_ops *ops[2] = { client, server };

	if (qp_init_links(p, NULL, ops))
		fail_msg("quic_pair set-up failed");
	if (!qp_run(p, both_ready, NULL, 10 * S))
		fail_msg("expected both apps ready within 10 s");
}

/* A unidirectional stream from end `from`, with some bytes on their way. */
static int64_t open_and_write(struct qp *p, int from)
{
	static uint8_t buf[100000];
	struct quic *q = probes[from]->env.quic;
	struct want_rx w = { !from, probes[!from]->rx + 10000 };
	int64_t id = quic_open_stream(q, 0);

	assert_true(id >= 0);
	memcpy(buf, "punch/1 probe\n", 14);
	assert_true(quic_write(q, id, buf, sizeof(buf)) > 0);
	assert_true(qp_run(p, got_rx, &w, 10 * S));
	return id;
}

/* With on_stream_error, the app hears one sentence and the link stays. */
static void test_errors_reach_the_app(void **state)
{
	static struct qp p;
	int64_t a, b;

	(void)state;
	links_up(&p, &probe_hooked, &probe_hooked);
	a = open_and_write(&p, QP_CLIENT);
	assert_int_equal(quic_reset_stream(probes[QP_CLIENT]->env.quic, a,
	                                   APP_ERR_CORRUPT),
	                 0);
	b = open_and_write(&p, QP_CLIENT);
	assert_int_equal(quic_stop_sending(probes[QP_SERVER]->env.quic, b,
	                                   APP_ERR_ABORTED),
	                 0);
	qp_run(&p, NULL, NULL, 1 * S);

	assert_int_equal(probes[QP_SERVER]->errors, 1);
	assert_u64(probes[QP_SERVER]->err_id, a);
	assert_u64(probes[QP_SERVER]->err_code, APP_ERR_CORRUPT);
	assert_str(probes[QP_SERVER]->why,
	           "alice reset the stream it was sending "
	           "(code 3: the transfer failed its check)");
	assert_int_equal(probes[QP_CLIENT]->errors, 1);
	assert_u64(probes[QP_CLIENT]->err_id, b);
	assert_u64(probes[QP_CLIENT]->err_code, APP_ERR_ABORTED);
	assert_str(probes[QP_CLIENT]->why,
	           "bob stopped reading our stream (code 2: aborted)");
	assert_int_equal(p.e[0].finished + p.e[1].finished, 0);
	qp_free(&p);
}

/* Without on_stream_error, the side that hears the reset (or the stop)
 * ends with status 1 and closes the link, and the peer ends with 1. */
static void ends_session(int stop)
{
	static struct qp p;
	int64_t id;
	int hearer;

	links_up(&p, &probe_plain, &probe_plain);
	id = open_and_write(&p, QP_CLIENT);
	if (stop) {
		hearer = QP_CLIENT;
		assert_int_equal(quic_stop_sending(probes[QP_SERVER]->env.quic, id,
		                                   APP_ERR_ABORTED),
		                 0);
	} else {
		hearer = QP_SERVER;
		assert_int_equal(quic_reset_stream(probes[QP_CLIENT]->env.quic, id,
		                                   APP_ERR_ABORTED),
		                 0);
	}
	if (!qp_run(&p, both_finished, NULL, 10 * S))
		print_error("expected both sessions over; %s finished %d, "
		            "%s finished %d\n",
		            hearer ? "server" : "client",
		            p.e[hearer].finished, hearer ? "client" : "server",
		            p.e[!hearer].finished);
	assert_int_equal(p.e[hearer].finished, 1);
	assert_int_equal(p.e[hearer].finish_code, 1);
	assert_int_equal(p.e[!hearer].finished, 1);
	assert_int_equal(p.e[!hearer].finish_code, 1);
	qp_free(&p);
}

static void test_reset_ends_session(void **state)
{
	(void)state;
	ends_session(0);
}

static void test_stop_ends_session(void **state)
{
	(void)state;
	ends_session(1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_errors_reach_the_app),
		cmocka_unit_test(test_reset_ends_session),
		cmocka_unit_test(test_stop_ends_session),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
