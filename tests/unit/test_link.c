/*
 * The link (link.c) and the apps on it, over a fake QUIC (fake_quic.h):
 * the hello each side's first stream starts with, what runs when the names
 * differ, and the exit status when the peer closes the link cleanly before
 * the app is done (on_link_closed).
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"
#include "fake_quic.h"
#include "link.h"

enum {
	TURNS_MAX = 200, /* loop turns for an app to finish: it needs a few */
	/* RFC 9000 2.1: the QUIC client's first streams */
	CLIENT_UNI = 2,
	CLIENT_BIDI = 0,
	SERVER_UNI = 3,
	SERVER_BIDI = 1
};

struct run {
	uv_loop_t loop;
	struct identity id;
	char dir[64];
	struct link *link;
	int finished, code;
	int saved_in, saved_out;
	uv_timer_t guard;         /* bounds settle() */
};

static struct run R;

static void env_send(void *ctx, const struct sockaddr *to, const uint8_t *buf,
                     size_t len)
{
	(void)ctx, (void)to, (void)buf, (void)len;
}

static void env_finish(void *ctx, int code)
{
	(void)ctx;
	if (R.finished++)
		return;
	R.code = code;
}

static void env_kick(void *ctx)
{
	(void)ctx;
}

/* A link running app as the QUIC client or server, with stdin from
 * /dev/null and stdout to a scratch file (for pipe). */
static void start(const struct app_ops *app, struct app_args *args,
                  int is_client)
{
	struct link_env env = {
		.id = &R.id,
		.peer_id = "alice",
		.is_client = is_client,
		.send = env_send,
		.finish = env_finish,
		.kick = env_kick,
	};
	char err[200], out[96];
	int fd;

	memset(&R, 0, sizeof(R));
	assert_int_equal(uv_loop_init(&R.loop), 0);
	snprintf(R.dir, sizeof(R.dir), "/tmp/punch-test-link.XXXXXX");
	assert_non_null(mkdtemp(R.dir));
	snprintf(R.id.dir, sizeof(R.id.dir), "%s", R.dir);
	R.saved_in = dup(0);
	R.saved_out = dup(1);
	fd = open("/dev/null", O_RDONLY);
	dup2(fd, 0);
	close(fd);
	snprintf(out, sizeof(out), "%s/stdout", R.dir);
	fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	dup2(fd, 1);
	close(fd);
	env.loop = &R.loop;
	if (app == &app_recv)
		args->dir = R.dir;  /* recv writes into the scratch folder */
	R.link = link_new(&env, app, args, 0, err, sizeof(err));
	assert_non_null(R.link);
	assert_non_null(fq);
}

static void close_one(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

static void stop(void)
{
	char cmd[128];

	uv_walk(&R.loop, close_one, NULL);
	uv_run(&R.loop, UV_RUN_DEFAULT);  /* only closing handles are left */
	link_free(R.link);
	assert_int_equal(uv_loop_close(&R.loop), 0);
	dup2(R.saved_in, 0);
	dup2(R.saved_out, 1);
	close(R.saved_in);
	close(R.saved_out);
	R.saved_in = R.saved_out = -1;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", R.dir);
	assert_int_equal(system(cmd), 0);
}

/* Turn the loop (and the link's tick, as client.c does) until the app has
 * finished; its exit status.  The asserts come after stop(), which gives
 * the test its stdout back. */
static int finish_code(void)
{
	for (int i = 0; i < TURNS_MAX && !R.finished; i++) {
		link_tick(R.link, 0);
		uv_run(&R.loop, UV_RUN_NOWAIT);
	}
	return R.finished ? R.code : -1;  /* -1: it did not finish */
}

/* ---- the peer closes cleanly before the app is done ------------------------ */

static void recv_peer_closes_mid_file(void **state)
{
	struct app_args args = { .argv = { NULL }, .argc = 0 };

	int code;

	(void)state;
	start(&app_recv, &args, 0);
	fq_up();
	fq_peer_str(CLIENT_UNI, "punch/1 file x.bin 1000\n", 0);
	fq_peer_data(CLIENT_UNI, "0123456789", 10, 0);
	fq_peer_close(NULL);
	code = finish_code();
	stop();
	if (code == 0)
		fail_msg("recv exited 0 though alice closed the link after 10 of 1000 bytes");
	assert_int_equal(code, 1);
}

static void pipe_peer_closes_before_fin(void **state)
{
	struct app_args args = { 0 };

	int code;

	(void)state;
	start(&app_pipe, &args, 0);
	fq_up();
	fq_peer_str(CLIENT_UNI, "punch/1 pipe\nsome data", 0);
	fq_peer_close(NULL);
	code = finish_code();
	stop();
	if (code == 0)
		fail_msg("pipe exited 0 though alice closed the link before its stream ended");
	assert_int_equal(code, 1);
}

/* The control: a peer done with its stream closes, and pipe exits 0. */
static void pipe_peer_closes_after_fin(void **state)
{
	struct app_args args = { 0 };

	int code;

	(void)state;
	start(&app_pipe, &args, 0);
	fq_up();
	fq_peer_str(CLIENT_UNI, "punch/1 pipe\nsome data", 1);
	fq_peer_close(NULL);
	code = finish_code();
	stop();
	assert_int_equal(code, 0);
}

static void forward_peer_closes_with_conn_open(void **state)
{
	struct app_args args = { .allows = { "127.0.0.1:9" }, .n_allows = 1 };

	int code;

	(void)state;
	start(&app_forward, &args, 0);
	fq_up();
	fq_peer_str(CLIENT_UNI, "punch/1 forward\n", 1);
	/* A connection the peer opened; its connect is still under way. */
	fq_peer_str(CLIENT_BIDI, "punch/1 forward 127.0.0.1 9\n", 0);
	fq_peer_close(NULL);
	code = finish_code();
	stop();
	if (code == 0)
		fail_msg("forward exited 0 though alice closed the link with a connection open");
	assert_int_equal(code, 1);
}

/* With nothing in flight, a peer that stops forwarding is no error. */
static void forward_peer_closes_idle(void **state)
{
	struct app_args args = { 0 };

	int code;

	(void)state;
	start(&app_forward, &args, 0);
	fq_up();
	fq_peer_str(CLIENT_UNI, "punch/1 forward\n", 1);
	fq_peer_close(NULL);
	code = finish_code();
	stop();
	assert_int_equal(code, 0);
}

/* ---- the hello -------------------------------------------------------------- */

/* The server speaks first; the client only once the server has. */
static void hello_order(void **state)
{
	struct app_args args = { 0 };
	char before[64], after[64], server[64];

	(void)state;
	start(&app_pipe, &args, 1);
	fq_up();
	snprintf(before, sizeof(before), "%s", fq_written(CLIENT_UNI));
	fq_peer_str(SERVER_UNI, "punch/1 pipe\n", 0);
	snprintf(after, sizeof(after), "%s", fq_written(CLIENT_UNI));
	stop();
	assert_string_equal(before, "");
	assert_string_equal(after, "punch/1 pipe\n");

	start(&app_pipe, &args, 0);
	fq_up();
	snprintf(server, sizeof(server), "%s", fq_written(SERVER_UNI));
	stop();
	assert_string_equal(server, "punch/1 pipe\n");
}

/* A peer running another app: we say what we run, and exit 1. */
static void hello_mismatch(void **state)
{
	struct app_args args = { 0 };
	char said[64];
	int code;

	(void)state;
	start(&app_pipe, &args, 1);
	fq_up();
	fq_peer_str(SERVER_UNI, "punch/1 chat\n", 0);
	code = finish_code();
	snprintf(said, sizeof(said), "%s", fq_written(CLIENT_UNI));
	stop();
	assert_int_equal(code, 1);
	assert_string_equal(said, "punch/1 pipe\n");

	start(&app_recv, &args, 0);
	fq_up();
	fq_peer_str(CLIENT_UNI, "GET / HTTP/1.1\r\n", 0);
	code = finish_code();
	stop();
	assert_int_equal(code, 1);
}

/* on_ready waits for the names to match: the server's pipe does not read
 * its input (here /dev/null, whose end would FIN our stream) before the
 * client's hello. */
static void hello_ready_after_match(void **state)
{
	struct app_args args = { 0 };
	int fin_before, fin_after;

	(void)state;
	start(&app_pipe, &args, 0);
	fq_up();
	finish_code();  /* turns the loop: input would be read now */
	fin_before = fq_stream(fq, SERVER_UNI)->fin;
	fq_peer_str(CLIENT_UNI, "punch/1 pipe\n", 0);
	for (int i = 0; i < TURNS_MAX && !fq_stream(fq, SERVER_UNI)->fin; i++)
		uv_run(&R.loop, UV_RUN_NOWAIT);
	fin_after = fq_stream(fq, SERVER_UNI)->fin;
	stop();
	assert_false(fin_before);
	assert_true(fin_after);
}

/* The hello a byte at a time, and the data behind it in the same chunk,
 * reach pipe's output whole. */
static void hello_split_and_data(void **state)
{
	const char hello[] = "punch/1 pipe\n";
	struct app_args args = { 0 };
	char out[96], got[64] = "";
	FILE *f;
	int code;

	(void)state;
	start(&app_pipe, &args, 1);
	fq_up();
	for (size_t i = 0; i + 1 < sizeof(hello); i++)
		fq_peer_data(SERVER_UNI, hello + i, 1, 0);
	fq_peer_str(SERVER_UNI, "", 0);
	fq_peer_data(SERVER_UNI, "abc\n", 4, 1);
	code = finish_code();  /* our stream is not acknowledged: no finish */
	snprintf(out, sizeof(out), "%s/stdout", R.dir);
	if ((f = fopen(out, "r"))) {
		if (!fgets(got, sizeof(got), f))
			got[0] = '\0';
		fclose(f);
	}
	stop();
	assert_int_equal(code, -1);
	assert_string_equal(got, "abc\n");
}

/* send's hello is its request, "punch/1 file NAME SIZE", written only
 * after the receiver's; a second sender is told apart. */
static void hello_send_request(void **state)
{
	struct app_args args = { .argc = 1 };
	char path[96], said[128];
	FILE *f;
	int code;

	(void)state;
	snprintf(path, sizeof(path), "/tmp/punch-test-link-send.%d", (int)getpid());
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("hello", f);
	fclose(f);
	args.argv[0] = path;
	start(&app_send, &args, 1);
	fq_up();
	fq_peer_str(SERVER_UNI, "punch/1 file other.txt 3\n", 0);
	code = finish_code();
	snprintf(said, sizeof(said), "%s", fq_written(CLIENT_UNI));
	stop();
	unlink(path);
	assert_int_equal(code, 1);  /* the peer sends too */
	assert_non_null(strstr(said, "punch/1 file punch-test-link-send."));
	assert_non_null(strstr(said, " 5\n"));
}

/* A peer that ends its stream, or the link, before its hello. */
static void hello_missing(void **state)
{
	struct app_args args = { 0 };
	int code;

	(void)state;
	start(&app_pipe, &args, 0);
	fq_up();
	fq_peer_str(CLIENT_UNI, "punch/1 pi", 1);
	code = finish_code();
	stop();
	assert_int_equal(code, 1);

	start(&app_pipe, &args, 0);
	fq_up();
	fq_peer_close(NULL);
	code = finish_code();
	stop();
	assert_int_equal(code, 1);
}

/* ---- forward_conn ----------------------------------------------------------- */

static int guard_fired;

static void on_guard(uv_timer_t *t)
{
	(void)t;
	guard_fired = 1;
}

/* A listening socket on 127.0.0.1 nobody accepts on: a connection to it
 * waits in its backlog.  Its fd; its port in *port. */
static int target_listen(unsigned *port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t slen = sizeof(sin);
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);

	assert_true(lfd >= 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(lfd, 4), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&sin, &slen), 0);
	*port = ntohs(sin.sin_port);
	return lfd;
}

/* Turn the loop until nothing but the guard is left, or 5 s. */
static void settle(void)
{
	guard_fired = 0;
	uv_timer_init(&R.loop, &R.guard);
	uv_timer_start(&R.guard, on_guard, 5000, 0);
	uv_unref((uv_handle_t *)&R.guard);
	while (!guard_fired && uv_loop_alive(&R.loop))
		uv_run(&R.loop, UV_RUN_ONCE);
}

/* Did anything connect to the target?  Closes it. */
static int target_reached(int lfd)
{
	int fd = accept(lfd, NULL, NULL);

	if (fd >= 0)
		close(fd);
	close(lfd);
	return fd >= 0;
}

/* A request the peer gives up (its stream stopped) while the target's
 * name is being resolved: nothing connects to the target afterwards. */
static void forward_given_up_while_resolving(void **state)
{
	struct app_args args = { .n_allows = 1 };
	char allow[32], req[64];
	unsigned port;
	int lfd, reached;

	(void)state;
	lfd = target_listen(&port);
	snprintf(allow, sizeof(allow), "127.0.0.1:%u", port);
	snprintf(req, sizeof(req), "punch/1 forward 127.0.0.1 %u\n", port);
	args.allows[0] = allow;
	start(&app_forward, &args, 0);
	fq_up();
	fq_peer_str(CLIENT_UNI, "punch/1 forward\n", 1);
	fq_peer_str(CLIENT_BIDI, req, 0);
	fq_stream_closed(CLIENT_BIDI, 1);
	settle();  /* until the resolution is over */
	reached = target_reached(lfd);
	stop();
	if (reached)
		fail_msg("forward connected to the target after the peer gave up the request");
}

static void find_listener(uv_handle_t *h, void *arg)
{
	struct sockaddr_in sin;
	int len = sizeof(sin);

	if (h->type == UV_TCP &&
	    !uv_tcp_getsockname((uv_tcp_t *)h, (struct sockaddr *)&sin, &len))
		*(int *)arg = ntohs(sin.sin_port);
}

/* Turn the loop until cond holds (bounded); whether it does. */
#define TURN_UNTIL(cond)                                      \
	do {                                                  \
		for (int t_ = 0; t_ < 20000 && !(cond); t_++) \
			uv_run(&R.loop, UV_RUN_NOWAIT);       \
	} while (0)

/* A connection to -L, through its whole life: the request, the answer,
 * bytes both ways, each end passed on, the stream closed; then no
 * connection is left, so the peer's clean close ends with status 0. */
static void forward_opener_life(void **state)
{
	struct app_args args = { .forwards = { "0:127.0.0.1:9" }, .n_forwards = 1 };
	struct sockaddr_in sin = { .sin_family = AF_INET };
	struct fq_stream *st = NULL;
	char buf[64];
	ssize_t n = -1, eof = -1;
	int port = 0, fd, code, fin;

	(void)state;
	start(&app_forward, &args, 0);
	fq_up();
	fq_peer_str(CLIENT_UNI, "punch/1 forward\n", 1);
	uv_walk(&R.loop, find_listener, &port);
	assert_true(port > 0);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons((uint16_t)port);
	connect(fd, (struct sockaddr *)&sin, sizeof(sin));  /* EINPROGRESS */
	TURN_UNTIL((st = fq_stream(fq, SERVER_BIDI)) != NULL);
	assert_non_null(st);
	TURN_UNTIL(send(fd, "ping", 4, MSG_NOSIGNAL) == 4);
	TURN_UNTIL(st->len >= 33);
	assert_string_equal(fq_written(SERVER_BIDI), "punch/1 forward 127.0.0.1 9\nping");
	/* The answer, bytes, then the peer's FIN: the socket is shut down. */
	fq_peer_str(SERVER_BIDI, "ok\npong", 0);
	TURN_UNTIL((n = recv(fd, buf, sizeof(buf), 0)) > 0);
	assert_int_equal(n, 4);
	assert_memory_equal(buf, "pong", 4);
	fq_peer_data(SERVER_BIDI, "", 0, 1);
	TURN_UNTIL((eof = recv(fd, buf, sizeof(buf), 0)) == 0);
	assert_int_equal(eof, 0);
	/* Our end of input becomes FIN on the stream. */
	shutdown(fd, SHUT_WR);
	TURN_UNTIL(st->fin);
	fin = st->fin;
	fq_stream_closed(SERVER_BIDI, 0);
	TURN_UNTIL(0);  /* the socket's close completes */
	close(fd);
	fq_peer_close(NULL);
	code = finish_code();
	stop();
	assert_true(fin);
	assert_int_equal(code, 0);  /* no connection left open */
}

/* After a test that failed half-way: the test binary's stdin and stdout
 * back, so that the next tests are seen. */
static int restore_fds(void **state)
{
	(void)state;
	if (R.saved_out > 0) {
		dup2(R.saved_in, 0);
		dup2(R.saved_out, 1);
		close(R.saved_in);
		close(R.saved_out);
		R.saved_in = R.saved_out = -1;
	}
	return 0;
}

/* After a mismatch, what the peer sends on other streams reaches no app:
 * a forward request does not connect. */
static void hello_mismatch_then_request(void **state)
{
	struct app_args args = { .n_allows = 1 };
	char allow[32], req[64];
	unsigned port;
	int lfd, reached;

	(void)state;
	lfd = target_listen(&port);
	snprintf(allow, sizeof(allow), "127.0.0.1:%u", port);
	snprintf(req, sizeof(req), "punch/1 forward 127.0.0.1 %u\n", port);
	args.allows[0] = allow;
	start(&app_forward, &args, 0);
	fq_up();
	fq_peer_str(CLIENT_UNI, "punch/1 chat\n", 0);
	fq_peer_str(CLIENT_BIDI, req, 0);
	settle();
	reached = target_reached(lfd);
	stop();
	if (reached)
		fail_msg("forward served a request from a peer that runs chat");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(recv_peer_closes_mid_file, restore_fds),
		cmocka_unit_test_teardown(pipe_peer_closes_before_fin, restore_fds),
		cmocka_unit_test_teardown(pipe_peer_closes_after_fin, restore_fds),
		cmocka_unit_test_teardown(forward_peer_closes_with_conn_open, restore_fds),
		cmocka_unit_test_teardown(forward_peer_closes_idle, restore_fds),
		cmocka_unit_test_teardown(hello_order, restore_fds),
		cmocka_unit_test_teardown(hello_mismatch, restore_fds),
		cmocka_unit_test_teardown(hello_ready_after_match, restore_fds),
		cmocka_unit_test_teardown(hello_split_and_data, restore_fds),
		cmocka_unit_test_teardown(hello_send_request, restore_fds),
		cmocka_unit_test_teardown(hello_missing, restore_fds),
		cmocka_unit_test_teardown(forward_given_up_while_resolving, restore_fds),
		cmocka_unit_test_teardown(forward_opener_life, restore_fds),
		cmocka_unit_test_teardown(hello_mismatch_then_request, restore_fds)
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
