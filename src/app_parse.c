/*
 * The apps' parsers of what a peer sends: a stream's first line, and the
 * file request with its percent-encoded name.  Pure and bounds-checked: no
 * I/O, no state beyond their arguments, so that the unit tests and the
 * fuzz harness (tests/fuzz/fuzz_app.c) take them alone.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "app_file.h"
#include "term.h"

static const char magic[] = "punch/1 ";

long app_header_feed(struct app_header *h, const uint8_t *data, size_t len)
{
	const uint8_t *nl = memchr(data, '\n', len);
	size_t take = nl ? (size_t)(nl - data) + 1 : len;
	char *sp;

	if (h->done)
		return 0;
	if (h->len + take > sizeof(h->line) - 1)
		return -1;
	memcpy(h->line + h->len, data, take);
	h->len += take;
	/* Reject early what cannot become "punch/1 " */
	if (memcmp(h->line, magic, h->len < 8 ? h->len : 8))
		return -1;
	/* A NUL would cut NAME or REST short of what was sent. */
	if (memchr(h->line + h->len - take, '\0', take))
		return -1;
	if (!nl)
		return (long)take;
	h->line[h->len - 1] = '\0';
	/* NAME: at least one byte, up to a space or the end */
	if (h->len < 10 || h->line[8] == ' ')
		return -1;
	h->name = h->line + 8;
	sp = strchr(h->line + 8, ' ');
	if (sp) {
		*sp = '\0';
		h->rest = sp + 1;
	} else {
		h->rest = "";
	}
	h->done = 1;
	return (long)take;
}

/* ---- names ------------------------------------------------------------- */

const char *file_name_check(const char *name, size_t len)
{
	if (!len)
		return "the name is empty";
	if (len > FILE_NAME_MAX)
		return "the name is longer than 255 bytes";
	if (name[0] == '.')
		return "the name starts with '.' (hidden files, '.' and '..' are refused)";
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)name[i];

		if (ch == '/' || ch == '\\')
			return "the name holds a path separator ('/' or '\\')";
		if (ch < 0x20 || ch == 0x7f)
			return "the name holds a control character";
	}
	return NULL;
}

static int must_escape(unsigned char ch)
{
	return ch <= 0x20 || ch == 0x7f || ch == '%';
}

int file_name_encode(const char *name, size_t len, char *out, size_t outlen)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)name[i];
		size_t need = must_escape(ch) ? 3 : 1;

		if (o + need >= outlen)
			return -1;
		if (need == 1) {
			out[o++] = (char)ch;
			continue;
		}
		out[o++] = '%';
		out[o++] = hex[ch >> 4];
		out[o++] = hex[ch & 15];
	}
	if (o >= outlen)
		return -1;
	out[o] = '\0';
	return (int)o;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int file_name_decode(const char *in, char *out, size_t outlen)
{
	size_t o = 0;

	for (size_t i = 0; in[i]; i++) {
		unsigned char ch = (unsigned char)in[i];

		if (o + 1 >= outlen)
			return -1;
		if (ch == '%') {
			int hi = hexval(in[i + 1]), lo = hi < 0 ? -1 : hexval(in[i + 2]);

			if (hi < 0 || lo < 0)
				return -1;
			out[o++] = (char)(hi << 4 | lo);
			i += 2;
		} else if (must_escape(ch)) {
			return -1;
		} else {
			out[o++] = (char)ch;
		}
	}
	out[o] = '\0';
	return (int)o;
}

/* ---- the file request ----------------------------------------------- */

const char *recv_parse_header(const char *rest, char name[FILE_NAME_MAX + 1],
                              uint64_t *size, char *why, size_t whylen)
{
	const char *sp = strchr(rest, ' '), *bad;
	char wire[FILE_WIRE_NAME_MAX + 1], decoded[FILE_WIRE_NAME_MAX + 1];
	char shown[TERM_ESCAPE_SIZE(FILE_WIRE_NAME_MAX)], *end;
	unsigned long long n;
	int len;

	if (!sp || (size_t)(sp - rest) > FILE_WIRE_NAME_MAX || sp[1] < '0' ||
	    sp[1] > '9') {
		snprintf(why, whylen, "a request punch cannot read");
		return "header";
	}
	memcpy(wire, rest, (size_t)(sp - rest));
	wire[sp - rest] = '\0';
	errno = 0;
	n = strtoull(sp + 1, &end, 10);
	if (*end || errno || n > (unsigned long long)INT64_MAX) {
		snprintf(why, whylen, "a request punch cannot read (size '%s')",
		         term_str(shown, sizeof(shown), sp + 1));
		return "header";
	}
	/* Decoded into room for the whole wire name, so that a long one is
	 * refused as too long rather than as badly encoded. */
	len = file_name_decode(wire, decoded, sizeof(decoded));
	if (len < 0 || (bad = file_name_check(decoded, (size_t)len))) {
		snprintf(why, whylen, "'%s': %s", term_str(shown, sizeof(shown), wire),
		         len < 0 ? "the name is not encoded properly" : bad);
		return "name";
	}
	memcpy(name, decoded, (size_t)len + 1);
	*size = n;
	return NULL;
}
