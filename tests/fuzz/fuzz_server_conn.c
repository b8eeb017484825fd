/*
 * Fuzz harness for the client's server connection (src/server_conn.c):
 * what a server, or anyone on the path of a plain TCP connection, sends
 * the client.
 *
 * The input's first byte picks the read sizes (1 to 64 bytes, cycling
 * through a pattern made from it); the rest is the stream, fed to a
 * server_conn without a socket.  Every message handed out must be whole
 * and well formed (STUN with its cookie and its length, or ChannelData
 * with its length), within FRAME_MAX; once the connection has closed
 * (broken framing), no message may follow, and it must say why.
 *
 * Built with libFuzzer and with replay.c's main(), like the others.
 */
#include <string.h>

#include "server_conn.h"
#include "fuzz.h"

struct seen {
	int closed;
	size_t msgs;
};

static void on_message(void *ctx, enum frame_kind kind, const uint8_t *msg,
                       size_t len)
{
	struct seen *s = ctx;

	CHECK(!s->closed);
	CHECK(len <= FRAME_MAX);
	if (kind == FRAME_STUN) {
		CHECK(len >= FRAME_STUN_HEADER && (msg[0] & 0xC0) == 0);
		CHECK((size_t)(msg[2] << 8 | msg[3]) + FRAME_STUN_HEADER == len);
		CHECK(msg[4] == 0x21 && msg[5] == 0x12 && msg[6] == 0xA4 &&
		      msg[7] == 0x42);
	} else {
		CHECK(kind == FRAME_CHANNEL && (msg[0] & 0xC0) == 0x40);
		CHECK((size_t)(msg[2] << 8 | msg[3]) + FRAME_CHANNEL_HEADER == len);
	}
	s->msgs++;
}

static void on_state(void *ctx, enum sconn_state old, enum sconn_state now,
                     const char *why)
{
	struct seen *s = ctx;

	CHECK(old != SCONN_CLOSED);
	if (now == SCONN_CLOSED) {
		CHECK(why && *why);
		s->closed++;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct seen s = { 0 };
	struct server_conn *sc;
	size_t seed, at = 0;

	if (size < 1)
		return 0;
	seed = data[0];
	data++;
	size--;
	sc = server_conn_new(NULL, on_message, on_state, &s);
	CHECK(sc);
	for (size_t read = 0; at < size; read++) {
		size_t n = 1 + (seed * 31 + read * 7) % 64;

		n = n < size - at ? n : size - at;
		server_conn_feed(sc, data + at, n);
		at += n;
	}
	CHECK(s.closed <= 1);
	CHECK(s.closed == (server_conn_state(sc) == SCONN_CLOSED));
	server_conn_free(sc);
	return 0;
}
