/*
 * punch recv [DIR] [-f]: the receiving end of app_file.c's exchange, one
 * file a run.  The states: RECV_HEADER until the request (the sender's
 * hello, app.h), RECV_DATA while the file goes to DIR/.punch-recv-XXXXXX,
 * RECV_ANSWERED once "ok" or "bad ..." is queued; the exit follows the
 * sender's acknowledgement of the answer (or its clean close of the link;
 * a clean close before the answer cut the file short: exit 1).
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

/* A name or path from the peer, escaped for the terminal (term.h). */
typedef char shown_path[TERM_ESCAPE_SIZE(PATH_MAX)];

static const char tmp_prefix[] = ".punch-recv-";

enum recv_state {
	RECV_HEADER,     /* waiting for "punch/1 file NAME SIZE" */
	RECV_DATA,       /* writing the file */
	RECV_ANSWERED,   /* "ok" or "bad" sent; waiting for the acknowledgement */
};

struct recv_app {
	struct file_end e;        /* first: the app pointer is this */
	const char *dir;
	int force;
	enum recv_state state;
	int64_t out, peer;        /* our stream and the sender's (app_hello) */
	char name[FILE_NAME_MAX + 1];
	char tmp[PATH_MAX], dest[PATH_MAX];
	int fd;
	uint64_t size, got;
	uint8_t trailer[FILE_HASH_LEN];
	size_t trailer_len;
	gnutls_hash_hd_t hash;
	int hashing;
	uint8_t digest[FILE_HASH_LEN];
	int answer_code;          /* the exit status once the answer is acked */
	mode_t mode;              /* 0666 less the umask, as open(2) would */
	struct progress prog;
};

static const char *recv_state_str(enum recv_state s)
{
	static const char *const names[] = { "header", "data", "answered" };

	return names[s];
}

static void recv_set_state(struct recv_app *r, enum recv_state s)
{
	log_debug("recv: %s -> %s", recv_state_str(r->state), recv_state_str(s));
	r->state = s;
}

static uint64_t recv_got(void *ctx)
{
	return ((struct recv_app *)ctx)->got;
}

static void recv_drop_tmp(struct recv_app *r)
{
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
	if (r->tmp[0])
		unlink(r->tmp);
	r->tmp[0] = '\0';
}

/* Answer the sender ("ok", or "bad REASON ..."), end our stream, and exit
 * once the sender has acknowledged it (recv_stream_close). */
static void recv_answer(struct recv_app *r, const char *answer)
{
	char line[FILE_REPLY_MAX];
	int n = snprintf(line, sizeof(line), "%s\n", answer);

	if (strcmp(answer, "ok")) {
		progress_abort(&r->prog);
		recv_drop_tmp(r);
	}
	r->answer_code = strcmp(answer, "ok") ? 1 : 0;
	recv_set_state(r, RECV_ANSWERED);
	if (n < 0 || (size_t)n >= sizeof(line))
		n = snprintf(line, sizeof(line), "bad write\n");
	if (quic_write(r->e.env.quic, r->out, line, (size_t)n) != n ||
	    quic_write_fin(r->e.env.quic, r->out)) {
		file_end_now(&r->e, 1);
		return;
	}
	r->e.env.kick(r->e.env.ctx);
}

/* After the header: refuse what must be refused before any data is
 * written, then open the temporary file. */
static int recv_begin(struct recv_app *r, const char *rest)
{
	struct stat st;
	shown_path shown;
	int n;

	const char *bad;
	char why[TERM_ESCAPE_SIZE(FILE_WIRE_NAME_MAX) + 128];

	if ((bad = recv_parse_header(rest, r->name, &r->size, why, sizeof(why)))) {
		if (!strcmp(bad, "name"))
			log_error("refusing the file %s offered as %s", r->e.env.peer_id, why);
		else
			log_error("%s sent %s", r->e.env.peer_id, why);
		recv_answer(r, !strcmp(bad, "name") ? "bad name" : "bad header");
		return -1;
	}
	n = snprintf(r->dest, sizeof(r->dest), "%s/%s", r->dir, r->name);
	if (n < 0 || (size_t)n >= sizeof(r->dest)) {
		log_error("the path %s/%s is too long", r->dir,
		          term_str(shown, sizeof(shown), r->name));
		recv_answer(r, "bad name");
		return -1;
	}
	if (lstat(r->dest, &st) == 0 && S_ISDIR(st.st_mode)) {
		log_error("%s is a directory; not replacing it",
		          term_str(shown, sizeof(shown), r->dest));
		recv_answer(r, "bad exists");
		return -1;
	}
	if (lstat(r->dest, &st) == 0 && !r->force) {
		log_error("%s already exists; not overwriting it without -f",
		          term_str(shown, sizeof(shown), r->dest));
		recv_answer(r, "bad exists");
		return -1;
	}
	n = snprintf(r->tmp, sizeof(r->tmp), "%s/%sXXXXXX", r->dir, tmp_prefix);
	if (n < 0 || (size_t)n >= sizeof(r->tmp)) {
		r->tmp[0] = '\0';
		log_error("the directory name %s is too long", r->dir);
		recv_answer(r, "bad write");
		return -1;
	}
	if ((r->fd = mkostemp(r->tmp, O_CLOEXEC)) < 0) {
		char answer[FILE_REPLY_MAX];
		int err = errno;

		log_error("cannot create a file in %s: %s", r->dir, strerror(err));
		snprintf(answer, sizeof(answer), "bad write %s", strerror(err));
		r->tmp[0] = '\0';
		recv_answer(r, answer);
		return -1;
	}
	if (gnutls_hash_init(&r->hash, GNUTLS_DIG_SHA256) < 0) {
		log_error("cannot start SHA-256");
		recv_answer(r, "bad write");
		return -1;
	}
	r->hashing = 1;
	fprintf(stderr, "Receiving %s (%llu bytes) from %s\n",
	        term_str(shown, sizeof(shown), r->name),
	        (unsigned long long)r->size, r->e.env.peer_id);
	progress_start(&r->prog, r->size);
	recv_set_state(r, RECV_DATA);
	return 0;
}

static int recv_write(struct recv_app *r, const uint8_t *data, size_t len)
{
	while (len) {
		ssize_t n = write(r->fd, data, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			char answer[FILE_REPLY_MAX];
			int err = errno;

			log_error("cannot write %s: %s", r->tmp, strerror(err));
			snprintf(answer, sizeof(answer), "bad write %s", strerror(err));
			recv_answer(r, answer);
			return -1;
		}
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Everything is here: check, and put the file in place. */
static void recv_finish(struct recv_app *r)
{
	char what[TERM_ESCAPE_SIZE(FILE_NAME_MAX) + 16], hex[2 * FILE_HASH_LEN + 1];
	char tail[TERM_ESCAPE_SIZE(PATH_MAX) + 96];
	shown_path shown;
	int err;

	if (r->got != r->size || r->trailer_len != FILE_HASH_LEN) {
		log_error("%s ended the transfer early: %llu of %llu bytes", r->e.env.peer_id,
		          (unsigned long long)r->got, (unsigned long long)r->size);
		recv_answer(r, "bad size");
		return;
	}
	gnutls_hash_deinit(r->hash, r->digest);
	r->hashing = 0;
	/* Not a secret: a plain comparison is fine. */
	if (memcmp(r->digest, r->trailer, FILE_HASH_LEN)) {
		log_error("%s arrived corrupted: its SHA-256 does not match the sender's; not keeping it",
		          term_str(shown, sizeof(shown), r->name));
		recv_answer(r, "bad sha256");
		return;
	}
	err = fchmod(r->fd, r->mode) || fsync(r->fd) ? errno : 0;
	if (close(r->fd) && !err)
		err = errno;
	r->fd = -1;
	if (err) {
		log_error("cannot write %s: %s", r->tmp, strerror(err));
		recv_answer(r, "bad write");
		return;
	}
	/* Without -f, never replace: a file of that name may have appeared
	 * since the header.  (link(2) where renameat2 is not supported.) */
	if (renameat2(AT_FDCWD, r->tmp, AT_FDCWD, r->dest,
	              r->force ? 0 : RENAME_NOREPLACE)) {
		err = errno;

		if (!r->force && (err == EINVAL || err == ENOSYS)) {
			err = link(r->tmp, r->dest) ? errno : 0;
			if (!err)
				unlink(r->tmp);
		}
		if (err) {
			log_error("cannot put %s in place: %s",
			          term_str(shown, sizeof(shown), r->dest), strerror(err));
			recv_answer(r, err == EEXIST ? "bad exists" : "bad write");
			return;
		}
	}
	r->tmp[0] = '\0';
	snprintf(what, sizeof(what), "received %s",
	         term_str(shown, sizeof(shown), r->name));
	file_hash_hex(r->digest, hex);
	snprintf(tail, sizeof(tail), ", SHA-256 %s; saved as %s", hex,
	         term_str(shown, sizeof(shown), r->dest));
	progress_end(&r->prog, what, tail);
	recv_answer(r, "ok");
}

static void recv_body(struct recv_app *r, const uint8_t *data, size_t len)
{
	uint64_t left = r->size - r->got;
	size_t take = len < left ? len : (size_t)left;

	if (take) {
		gnutls_hash(r->hash, data, take);
		if (recv_write(r, data, take))
			return;
		r->got += take;
		data += take;
		len -= take;
	}
	if (len > FILE_HASH_LEN - r->trailer_len) {
		log_error("%s sent more than the %llu bytes it announced",
		          r->e.env.peer_id, (unsigned long long)r->size);
		recv_answer(r, "bad size");
		return;
	}
	memcpy(r->trailer + r->trailer_len, data, len);
	r->trailer_len += len;
}

static void recv_data(struct app *a, int64_t id, const uint8_t *data,
                      size_t len, int fin)
{
	struct recv_app *r = (struct recv_app *)a;

	if (file_end_ending(&r->e) || r->state != RECV_DATA || id != r->peer)
		return;  /* after an answer: the sender stops; drop the rest */
	recv_body(r, data, len);
	if (fin && r->state == RECV_DATA)
		recv_finish(r);
}

static void recv_stream_close(struct app *a, int64_t id, uint64_t err)
{
	struct recv_app *r = (struct recv_app *)a;

	if (id != r->out || r->state != RECV_ANSWERED)
		return;
	file_end_now(&r->e, err ? 1 : r->answer_code);
}

static struct app *recv_create(const struct app_env *env,
                               const struct app_args *args)
{
	struct recv_app *r = calloc(1, sizeof(*r));
	mode_t mask;

	if (!r)
		return NULL;
	file_end_init(&r->e, env);
	r->dir = args->dir ? args->dir : args->argc ? args->argv[0] :
	                                              ".";
	r->force = args->force;
	r->out = r->peer = -1;
	r->fd = -1;
	mask = umask(0);
	umask(mask);
	r->mode = 0666 & ~mask;
	progress_init(&r->prog, env->loop, env->tty, "receiving", recv_got, r);
	return (struct app *)r;
}

static void recv_ready(struct app *a, const struct app_hello *h)
{
	struct recv_app *r = (struct recv_app *)a;

	r->out = h->out;
	r->peer = h->in;
	if (file_peer_rest(&r->e, h->rest, 1)) {
		file_end_now(&r->e, 1);
		return;
	}
	recv_begin(r, h->rest);
}

/* The sender closed the link: after our answer, as it does, the answer
 * decides; before, it left in the middle of the file. */
static void recv_closed(struct app *a)
{
	struct recv_app *r = (struct recv_app *)a;

	if (file_end_ending(&r->e))
		return;
	if (r->state != RECV_ANSWERED) {
		progress_abort(&r->prog);
		log_error("%s closed the link before the file was complete (%llu of %llu bytes); the partial file is removed",
		          r->e.env.peer_id, (unsigned long long)r->got,
		          (unsigned long long)r->size);
		recv_drop_tmp(r);
		file_end_now(&r->e, 1);
		return;
	}
	file_end_now(&r->e, r->answer_code);
}

static void recv_interrupt(struct app *a)
{
	struct recv_app *r = (struct recv_app *)a;

	progress_abort(&r->prog);
	fprintf(stderr, "punch recv: interrupted%s\n",
	        r->state == RECV_DATA ? "; the partial file is removed" : "");
	recv_drop_tmp(r);
	file_end_now(&r->e, 130);
}

static void recv_destroy(struct app *a)
{
	struct recv_app *r = (struct recv_app *)a;

	recv_drop_tmp(r);  /* a link that died in the middle */
	if (r->hashing)
		gnutls_hash_deinit(r->hash, NULL);
	free(r);
}

const struct app_ops app_recv = {
	.name = "recv",
	.wire = "file",
	.peer_cmd = "send",
	.hint = "run punch send FILE on one side and punch recv on the other",
	.create = recv_create,
	.on_ready = recv_ready,
	.on_data = recv_data,
	.on_stream_close = recv_stream_close,
	.on_interrupt = recv_interrupt,
	.on_closed = recv_closed,
	.destroy = recv_destroy,
};
