/*
 * Apps on the secure link: chat, pipe, file transfer, port forwarding.
 *
 * The session (client.c) punches, sets up QUIC and then hands the link to
 * one app.  Each app is a table of event handlers; it reads and writes its
 * own local side (stdin, stdout, files, TCP) on the session's libuv loop,
 * and its streams through quic.h.
 *
 * Every app stream starts with one line naming the app, "punch/1 NAME
 * ...\n", so that two sides running different commands (say, send against
 * chat) are told so instead of exchanging garbage.  The first such line on
 * each side, the hello, is the link's (link.c): see struct app_hello.
 */
#ifndef PUNCH_APP_H
#define PUNCH_APP_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "quic.h"

enum {
	APP_HEADER_MAX = 512,   /* the first line of a stream */
	APP_ARGS_MAX = 16,
	APP_PEER_UNI = 4,       /* the peer's unidirectional streams at once */
};

/* Error codes an app closes the link or a stream with. */
enum app_error {
	APP_OK = 0,
	APP_ERR_MISMATCH = 1,   /* the two sides run different apps */
	APP_ERR_ABORTED = 2,    /* interrupted, or a local failure */
	APP_ERR_CORRUPT = 3,    /* a transfer failed its check */
	APP_ERR_PAIRING = 0x10, /* pairing with a code failed (link_pair.c) */
};

/* What an app's check of its arguments found, before anything connects
 * (the cli layer maps it to an exit status). */
enum app_status {
	APP_STATUS_OK = 0,
	APP_STATUS_FAILED,  /* a local problem: a file, a directory */
	APP_STATUS_USAGE,   /* the command line is wrong */
};

/* What the session gives an app. */
struct app_env {
	uv_loop_t *loop;
	struct quic *quic;
	const char *peer_id;
	int tty;    /* stderr is a terminal: show progress */
	/* End the session with this exit status, after the link is closed
	 * cleanly (the app has flushed what it must). */
	void (*finish)(void *ctx, int exit_code);
	/* Something was queued on a stream: send it soon. */
	void (*kick)(void *ctx);
	void *ctx;
};

struct app_args {
	const char *argv[APP_ARGS_MAX]; /* the command's operands and options */
	int argc;
	int force;                /* recv: overwrite existing files */
	const char *dir;          /* recv: where to put files */
	const char *forwards[APP_ARGS_MAX]; /* forward: -L specs */
	int n_forwards;
	const char *allows[APP_ARGS_MAX]; /* forward: -allow HOST:PORT */
	int n_allows;
};

struct app;

/* ---- the hello (link.c) --------------------------------------------------
 * Once the link is up (and paired), each side opens one unidirectional
 * stream and writes "punch/1 WIRE[ REST]\n" on it: the QUIC server side at
 * once, the client once the server's hello has arrived, so that each side
 * learns what the other runs before anything else is sent.  If the names
 * differ, the link says so and closes with APP_ERR_MISMATCH; the app's
 * on_ready runs only once they match, and the stream is then the app's. */
struct app_hello {
	int64_t out;              /* our stream, our hello written on it */
	size_t out_len;           /* the bytes of our hello line */
	int64_t in;               /* the peer's stream; on_data gets what follows its hello */
	const char *rest;         /* the peer's REST: "" if none */
};

/* RFC 9000 2.1: bit 0x2 of a stream id marks a unidirectional stream. */
static inline int app_stream_is_uni(int64_t id)
{
	return (id & 0x2) != 0;
}

struct app_ops {
	const char *name;         /* the command: chat, pipe, send, recv, forward */
	const char *wire;         /* the name on the wire: send and recv share "file" */
	/* For a mismatch: the command the peer should run, and what to do. */
	const char *peer_cmd, *hint;
	struct app *(*create)(const struct app_env *env, const struct app_args *args);
	/* REST for our hello line (NULL: none), asked once, as it is written. */
	const char *(*hello_rest)(struct app *a);
	/* The link is up, the peer verified, and it runs the same app. */
	void (*on_ready)(struct app *a, const struct app_hello *h);
	void (*on_data)(struct app *a, int64_t id, const uint8_t *data, size_t len,
	                int fin);
	void (*on_writable)(struct app *a, int64_t id);
	void (*on_stream_close)(struct app *a, int64_t id, uint64_t app_error);
	/* The peer reset a stream it was sending, or stopped reading one of
	 * ours (RESET_STREAM, STOP_SENDING); why is a sentence for the user.
	 * NULL: the link says why and ends the session with status 1. */
	void (*on_stream_error)(struct app *a, int64_t id, uint64_t app_error,
	                        const char *why);
	/* The user interrupted (Ctrl-C): wind down. */
	void (*on_interrupt)(struct app *a);
	void (*destroy)(struct app *a);
	/* The peer closed the link cleanly (error 0) after on_ready.  The app
	 * calls env->finish: with 0 once it has flushed what it must, if the
	 * peer had sent all it meant to; else with 1 after saying, in one
	 * sentence, what was cut short.  NULL: the session ends at once, with
	 * status 0. */
	void (*on_closed)(struct app *a);
	/* Set: the app calls quic_consume() for every byte on_data gave it,
	 * once written out (or dropped), so that a slow output holds the peer
	 * back.  Unset: the link does, as soon as on_data returns. */
	int defers_credit;
	/* The streams the peer may open at once; NULL: no bidirectional
	 * ones, APP_PEER_UNI unidirectional ones. */
	void (*limits)(const struct app_args *args, struct quic_limits *lim);
};

extern const struct app_ops app_chat, app_pipe, app_send, app_recv, app_forward;

/* A stream's first line, "punch/1 NAME REST\n", gathered as it arrives. */
struct app_header {
	char line[APP_HEADER_MAX];
	size_t len;
	int done;
	const char *name, *rest;  /* into line, once done */
};

/* Feed stream data to h.  Returns the bytes it used (all of them until the
 * newline), or -1 if this is not a punch header. */
long app_header_feed(struct app_header *h, const uint8_t *data, size_t len);
/* Write "punch/1 NAME REST\n" on stream id.  The line's length, or -1 if
 * it did not fit. */
int app_header_write(struct quic *q, int64_t id, const char *name,
                     const char *rest);

/* Input from a file descriptor (stdin, a file, a pipe, a terminal) on the
 * loop, in chunks, with pause and resume for back-pressure. */
struct app_input {
	int fd, kind;             /* kind: 0 stream (tty/pipe), 1 regular file */
	union {
		uv_tty_t tty;
		uv_pipe_t pipe;
		uv_idle_t idle;
	} h;
	int open, reading, eof;
	/* len 0 means end of input. */
	void (*on_data)(void *ctx, const uint8_t *data, size_t len);
	void *ctx;
	uint8_t buf[65536];
};

int app_input_open(struct app_input *in, uv_loop_t *loop, int fd,
                   void (*on_data)(void *, const uint8_t *, size_t),
                   void *ctx);
void app_input_pause(struct app_input *in);
void app_input_resume(struct app_input *in);
void app_input_close(struct app_input *in);

#endif
