/*
 * STUN and ChannelData over a byte stream (TCP): where one message ends and
 * the next begins.  Pure: bytes in, whole messages out; no sockets.
 *
 * RFC 8489 6.2.2: over TCP each STUN message delimits itself, its header's
 * length field giving the bytes after the 20-byte header.  RFC 8656 12.5:
 * ChannelData (first two bits 01) says how many data bytes follow its
 * 4-byte header, and over TCP is padded to a multiple of 4, the padding
 * not counted in that length.  Any other first two bits are not ours: the
 * stream is broken and the connection should close.
 *
 *   0                   1                   2                   3
 *   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |0 0|     STUN Message Type     |         Message Length        |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |                   Magic Cookie 0x2112A442 ...                 |
 *
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |0 1|      Channel Number       |            Length             |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |          Application Data, then padding to 4 bytes ...        |
 */
#ifndef PUNCH_STREAM_FRAME_H
#define PUNCH_STREAM_FRAME_H

#include <stddef.h>
#include <stdint.h>

enum {
	/* The largest message taken from a stream, padding included: a
	 * longer one is a protocol error.  The relay's datagrams are at most
	 * 2 KB (server_internal.h), so 4 KB holds any request or ChannelData
	 * worth relaying, and 1000 connections cost 4 MB of buffers. */
	FRAME_MAX = 4096,
	FRAME_STUN_HEADER = 20,
	FRAME_CHANNEL_HEADER = 4,
};

enum frame_kind {
	FRAME_STUN = 1,
	FRAME_CHANNEL = 2,
};

/* The first message in buf[0..len): returns the bytes it takes on the
 * stream (padding included) and sets *msg_len (without the padding) and
 * *kind; 0 when more bytes are needed to know or to hold it all; -1 when
 * the stream is broken (neither STUN nor ChannelData, a STUN length not a
 * multiple of 4 or without the magic cookie, or more than max bytes). */
long frame_peek(const uint8_t *buf, size_t len, size_t max, size_t *msg_len,
                enum frame_kind *kind);

/* The bytes ChannelData of msg_len bytes takes on a stream (RFC 8656
 * 12.5); STUN messages are already a multiple of 4. */
size_t frame_padded(size_t msg_len);

/* One connection's input: reads go into framer_space(), whole messages
 * come out of framer_next(). */
struct framer {
	size_t start;             /* first byte not yet handed out */
	size_t len;               /* bytes held */
	uint8_t buf[FRAME_MAX];
};

void framer_init(struct framer *f);
/* Where the next read may write, *cap bytes (never 0 on a framer that has
 * not failed); moves what is held to the front, so the messages handed
 * out before are no longer valid. */
uint8_t *framer_space(struct framer *f, size_t *cap);
/* n bytes were written at framer_space(). */
void framer_wrote(struct framer *f, size_t n);
/* The next whole message: 1 with *msg (valid until framer_space()), *len
 * (without padding) and *kind; 0 when none is whole yet; -1 when the
 * stream is broken (see frame_peek()), and from then on. */
int framer_next(struct framer *f, const uint8_t **msg, size_t *len,
                enum frame_kind *kind);

#endif
