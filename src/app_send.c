/*
 * punch send FILE: the sending end of app_file.c's exchange.  The file is
 * read in chunks on the loop (app_input), hashed, and queued on our stream;
 * when the stream's buffer is full, reading pauses until on_writable.  The
 * progress shown is what the receiver has acknowledged.
 */
#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app_file.h"
#include "log.h"
#include "progress.h"
#include "term.h"

/* Our stream, after its header. */
enum send_state {
	SEND_WAITING, /* for the link and the receiver's stream */
	SEND_DATA,    /* the file's bytes */
	SEND_TRAILER, /* its SHA-256, queued */
	SEND_FIN,     /* FIN queued */
};

struct send_app {
	struct file_end e;        /* first: the app pointer is this */
	struct app_input in;
	int fd, input_open;
	const char *path;
	char wire[FILE_WIRE_NAME_MAX + 1];
	uint64_t size, read;      /* bytes of the file read so far */
	uint64_t written;         /* bytes handed to the stream, header included */
	size_t header_len;
	gnutls_hash_hd_t hash;
	uint8_t digest[FILE_HASH_LEN];
	int hashing;              /* the hash is live (and must be freed) */
	enum send_state state;
	uint8_t pend[FILE_CHUNK + FILE_HASH_LEN];
	size_t pend_len;
	int64_t out, peer;        /* our stream and the receiver's (app_hello) */
	char rest[APP_HEADER_MAX]; /* our hello's REST: "NAME SIZE" */
	char reply[FILE_REPLY_MAX];
	size_t reply_len;
	struct progress prog;
};

static void send_fail(struct send_app *s, int code)
{
	progress_abort(&s->prog);
	if (s->input_open)
		app_input_pause(&s->in);
	file_end_now(&s->e, code);
}

/* Bytes the receiver has acknowledged, less the header. */
static uint64_t send_acked(void *ctx)
{
	struct send_app *s = ctx;
	uint64_t unacked = s->out >= 0 ? quic_unacked(s->e.env.quic, s->out) : 0;
	uint64_t acked = s->written > unacked ? s->written - unacked : 0;

	acked = acked > s->header_len ? acked - s->header_len : 0;
	return acked < s->size ? acked : s->size;
}

static const char *send_state_str(enum send_state st)
{
	switch (st) {
	case SEND_WAITING: return "waiting";
	case SEND_DATA: return "data";
	case SEND_TRAILER: return "trailer";
	case SEND_FIN: return "fin";
	}
	return "?";
}

/* Every state change goes through here, and is logged old -> new. */
static void send_set_state(struct send_app *s, enum send_state st)
{
	log_debug("send: %s -> %s", send_state_str(s->state),
	          send_state_str(st));
	s->state = st;
}

static void send_fin(struct send_app *s)
{
	if (s->state != SEND_TRAILER || s->pend_len)
		return;
	send_set_state(s, SEND_FIN);
	quic_write_fin(s->e.env.quic, s->out);
	s->e.env.kick(s->e.env.ctx);
}

/* Queue bytes behind anything pending; what does not fit waits for
 * on_writable, and input pauses meanwhile. */
static void send_push(struct send_app *s, const uint8_t *data, size_t len)
{
	long n = 0;

	if (!s->pend_len && (n = quic_write(s->e.env.quic, s->out, data, len)) < 0) {
		log_error("send: the stream to %s is gone", s->e.env.peer_id);
		send_fail(s, 1);
		return;
	}
	s->written += (uint64_t)n;
	if ((size_t)n < len) {
		memcpy(s->pend + s->pend_len, data + n, len - (size_t)n);
		s->pend_len += len - (size_t)n;
		if (s->input_open)
			app_input_pause(&s->in);
	}
	s->e.env.kick(s->e.env.ctx);
}

static void send_trailer(struct send_app *s)
{
	gnutls_hash_deinit(s->hash, s->digest);
	s->hashing = 0;
	if (s->input_open) {
		app_input_close(&s->in);
		s->input_open = 0;
	}
	send_set_state(s, SEND_TRAILER);
	send_push(s, s->digest, sizeof(s->digest));
	send_fin(s);
}

static void on_file(void *ctx, const uint8_t *data, size_t len)
{
	struct send_app *s = ctx;

	if (file_end_ending(&s->e))
		return;
	if (!len) {
		log_error("%s shrank while it was being sent (%llu of %llu bytes); send it again",
		          s->path, (unsigned long long)s->read,
		          (unsigned long long)s->size);
		send_fail(s, 1);
		return;
	}
	if (len > s->size - s->read) {
		log_warn("%s grew while it was being sent; sending its first %llu bytes",
		         s->path, (unsigned long long)s->size);
		len = (size_t)(s->size - s->read);
	}
	gnutls_hash(s->hash, data, len);
	s->read += len;
	send_push(s, data, len);
	if (!file_end_ending(&s->e) && s->read == s->size)
		send_trailer(s);
}

static void send_writable(struct app *a, int64_t id)
{
	struct send_app *s = (struct send_app *)a;
	long n;

	if (id != s->out || !s->pend_len || file_end_ending(&s->e))
		return;
	if ((n = quic_write(s->e.env.quic, s->out, s->pend, s->pend_len)) < 0) {
		send_fail(s, 1);
		return;
	}
	s->written += (uint64_t)n;
	memmove(s->pend, s->pend + n, s->pend_len - (size_t)n);
	s->pend_len -= (size_t)n;
	s->e.env.kick(s->e.env.ctx);
	if (s->pend_len)
		return;
	if (s->state >= SEND_TRAILER)
		send_fin(s);
	else if (s->input_open)
		app_input_resume(&s->in);
}

static const char *refusal(const char *reason)
{
	static const struct {
		const char *reason, *text;
	} map[] = {
		{ "exists", "a file of that name is already there (punch recv -f overwrites it)" },
		{ "name", "it does not accept that file name" },
		{ "size", "the file arrived with the wrong size" },
		{ "sha256", "the file arrived corrupted (SHA-256 mismatch)" },
		{ "write", "it could not write the file" },
		{ "header", "it could not read our request" }
	};
	size_t n = strcspn(reason, " ");

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strlen(map[i].reason) == n && !strncmp(reason, map[i].reason, n))
			return map[i].text;
	return "it gave no known reason";
}

static void send_reply(struct send_app *s)
{
	char *line = s->reply;
	char shown[TERM_ESCAPE_SIZE(FILE_REPLY_MAX)];

	s->reply[s->reply_len] = '\0';
	if (!strcmp(line, "ok")) {
		char what[PATH_MAX + 8], hex[2 * FILE_HASH_LEN + 1], tail[160];

		snprintf(what, sizeof(what), "sent %s", s->path);
		file_hash_hex(s->digest, hex);
		snprintf(tail, sizeof(tail), ", SHA-256 %s; %s checked it", hex,
		         s->e.env.peer_id);
		progress_end(&s->prog, what, tail);
		file_end_now(&s->e, 0);
		return;
	}
	progress_abort(&s->prog);
	term_escape(shown, sizeof(shown), line, s->reply_len);
	if (!strncmp(line, "bad ", 4))
		log_error("%s refused %s: %s (%s)", s->e.env.peer_id, s->path,
		          refusal(line + 4), shown + 4);
	else
		log_error("%s sent an answer punch does not know: '%s'",
		          s->e.env.peer_id, shown);
	send_fail(s, 1);
}

static void send_data(struct app *a, int64_t id, const uint8_t *data,
                      size_t len, int fin)
{
	struct send_app *s = (struct send_app *)a;

	if (file_end_ending(&s->e) || id != s->peer)
		return;
	for (size_t i = 0; i < len; i++) {
		if (data[i] == '\n') {
			send_reply(s);
			return;
		}
		if (s->reply_len == sizeof(s->reply) - 1) {
			log_error("%s sent an answer that is too long", s->e.env.peer_id);
			send_fail(s, 1);
			return;
		}
		s->reply[s->reply_len++] = (char)data[i];
	}
	if (fin) {
		log_error("%s ended its stream without an answer", s->e.env.peer_id);
		send_fail(s, 1);
	}
}

static struct app *send_create(const struct app_env *env,
                               const struct app_args *args)
{
	struct send_app *s = calloc(1, sizeof(*s));
	const char *name;
	struct stat st;

	if (!s)
		return NULL;
	s->out = s->peer = -1;
	s->path = args->argv[0];
	name = file_base_name(s->path);
	if ((s->fd = open(s->path, O_RDONLY | O_CLOEXEC)) < 0 ||
	    fstat(s->fd, &st)) {
		log_error("cannot read %s: %s", s->path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		log_error("cannot send %s: not a regular file", s->path);
		goto fail;
	}
	s->size = (uint64_t)st.st_size;
	if (file_name_encode(name, strlen(name), s->wire, sizeof(s->wire)) < 0) {
		log_error("the name of %s is too long to send", s->path);
		goto fail;
	}
	snprintf(s->rest, sizeof(s->rest), "%s %llu", s->wire,
	         (unsigned long long)s->size);
	if (gnutls_hash_init(&s->hash, GNUTLS_DIG_SHA256) < 0) {
		log_error("cannot start SHA-256");
		goto fail;
	}
	s->hashing = 1;
	/* Handles last: nothing may fail once the loop holds them. */
	file_end_init(&s->e, env);
	progress_init(&s->prog, env->loop, env->tty, "sending", send_acked, s);
	return (struct app *)s;
fail:
	if (s->fd >= 0)
		close(s->fd);
	free(s);
	return NULL;
}

static const char *send_hello_rest(struct app *a)
{
	return ((struct send_app *)a)->rest;
}

/* The receiver runs recv: the file goes. */
static void send_ready(struct app *a, const struct app_hello *h)
{
	struct send_app *s = (struct send_app *)a;
	int rc;

	s->out = h->out;
	s->peer = h->in;
	s->header_len = h->out_len;
	s->written = s->header_len;
	if (file_peer_rest(&s->e, h->rest, 0)) {
		send_fail(s, 1);
		return;
	}
	send_set_state(s, SEND_DATA);
	progress_start(&s->prog, s->size);
	if (!s->size) {
		send_trailer(s);
		return;
	}
	if ((rc = app_input_open(&s->in, s->e.env.loop, s->fd, on_file, s))) {
		log_error("cannot read %s: %s", s->path, uv_strerror(rc));
		send_fail(s, 1);
		return;
	}
	s->input_open = 1;
}

/* The receiver closes the link only after its answer, which ends the run
 * here first: a close before it left the file undelivered. */
static void send_closed(struct app *a)
{
	struct send_app *s = (struct send_app *)a;

	if (file_end_ending(&s->e))
		return;
	log_error("%s closed the link before answering; it may not have %s",
	          s->e.env.peer_id, s->path);
	send_fail(s, 1);
}

static void send_interrupt(struct app *a)
{
	struct send_app *s = (struct send_app *)a;

	progress_abort(&s->prog);
	fprintf(stderr, "punch send: interrupted; %s did not get %s\n",
	        s->e.env.peer_id, s->path);
	send_fail(s, 130);
}

static void send_destroy(struct app *a)
{
	struct send_app *s = (struct send_app *)a;

	if (s->input_open)
		app_input_close(&s->in);
	if (s->hashing)
		gnutls_hash_deinit(s->hash, NULL);
	close(s->fd);
	free(s);
}

const struct app_ops app_send = {
	.name = "send",
	.wire = "file",
	.peer_cmd = "recv",
	.hint = "run punch send FILE on one side and punch recv on the other",
	.create = send_create,
	.hello_rest = send_hello_rest,
	.on_ready = send_ready,
	.on_data = send_data,
	.on_writable = send_writable,
	.on_interrupt = send_interrupt,
	.destroy = send_destroy,
	.on_closed = send_closed,
};
