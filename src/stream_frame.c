/*
 * STUN and ChannelData framing over a stream (RFC 8489 6.2.2, RFC 8656
 * 12.5).  Every length is checked against what is held before it is used.
 */
#include "stream_frame.h"

#include <string.h>

enum {
	MAGIC_COOKIE = 0x2112A442, /* RFC 8489 5 */
	BROKEN = (size_t)-1,       /* framer.start once the stream broke */
};

size_t frame_padded(size_t msg_len)
{
	return (msg_len + 3) & ~(size_t)3;
}

long frame_peek(const uint8_t *buf, size_t len, size_t max, size_t *msg_len,
                enum frame_kind *kind)
{
	size_t body, whole;

	if (len < 1)
		return 0;
	if ((buf[0] & 0xC0) == 0x40) {
		/* RFC 8656 12: ChannelData, 0x4000-0x7FFF */
		if (len < FRAME_CHANNEL_HEADER)
			return 0;
		body = (size_t)buf[2] << 8 | buf[3];
		*msg_len = FRAME_CHANNEL_HEADER + body;
		*kind = FRAME_CHANNEL;
		whole = frame_padded(*msg_len);
	} else if ((buf[0] & 0xC0) == 0) {
		/* RFC 8489 5: the cookie tells STUN from noise early */
		if (len < 8)
			return 0;
		body = (size_t)buf[2] << 8 | buf[3];
		if (body % 4 ||
		    ((uint32_t)buf[4] << 24 | (uint32_t)buf[5] << 16 |
		     (uint32_t)buf[6] << 8 | buf[7]) != MAGIC_COOKIE)
			return -1;
		*msg_len = whole = FRAME_STUN_HEADER + body;
		*kind = FRAME_STUN;
	} else {
		return -1;
	}
	if (whole > max)
		return -1;
	return whole <= len ? (long)whole : 0;
}

void framer_init(struct framer *f)
{
	f->start = 0;
	f->len = 0;
}

uint8_t *framer_space(struct framer *f, size_t *cap)
{
	if (f->start == BROKEN) {
		*cap = 0;
		return f->buf;
	}
	if (f->start) {
		memmove(f->buf, f->buf + f->start, f->len - f->start);
		f->len -= f->start;
		f->start = 0;
	}
	*cap = sizeof(f->buf) - f->len;
	return f->buf + f->len;
}

void framer_wrote(struct framer *f, size_t n)
{
	if (f->start != BROKEN && n <= sizeof(f->buf) - f->len)
		f->len += n;
}

int framer_next(struct framer *f, const uint8_t **msg, size_t *len,
                enum frame_kind *kind)
{
	long whole;

	if (f->start == BROKEN)
		return -1;
	whole = frame_peek(f->buf + f->start, f->len - f->start,
	                   sizeof(f->buf), len, kind);
	if (whole < 0) {
		f->start = BROKEN;
		return -1;
	}
	if (whole == 0)
		return 0;
	*msg = f->buf + f->start;
	f->start += (size_t)whole;
	return 1;
}
