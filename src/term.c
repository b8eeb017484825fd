#include "term.h"

#include <stdio.h>
#include <string.h>

size_t term_utf8_decode(const uint8_t *s, size_t n, uint32_t *cp)
{
	uint32_t c;
	size_t len;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if (s[0] >= 0xC2 && s[0] <= 0xDF)
		len = 2, c = s[0] & 0x1F;
	else if (s[0] >= 0xE0 && s[0] <= 0xEF)
		len = 3, c = s[0] & 0x0F;
	else if (s[0] >= 0xF0 && s[0] <= 0xF4)
		len = 4, c = s[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3F);
	}
	if ((len == 3 && c < 0x800) || (len == 4 && c < 0x10000) ||
	    (c >= 0xD800 && c <= 0xDFFF) || c > 0x10FFFF)
		return 0;
	*cp = c;
	return len;
}

int term_invisible(uint32_t cp)
{
	return cp == 0x061C || cp == 0x180E ||
	       (cp >= 0x200B && cp <= 0x200F) || /* ZWSP ZWNJ ZWJ LRM RLM */
	       (cp >= 0x2028 && cp <= 0x202E) || /* LS PS LRE RLE PDF LRO RLO */
	       (cp >= 0x2060 && cp <= 0x206F) || /* WJ, invisible operators, LRI RLI FSI PDI */
	       cp == 0xFEFF || (cp >= 0xFFF9 && cp <= 0xFFFB) ||
	       (cp >= 0xE0000 && cp <= 0xE007F);
}

/* One input unit (a byte or a UTF-8 sequence) as it is to be printed:
 * fills piece and returns its length, and the input length in *used. */
static size_t render(const uint8_t *s, size_t n, char piece[16], size_t *used)
{
	uint32_t cp;
	size_t len = term_utf8_decode(s, n, &cp);

	if (!len || cp < 0x20 || cp == 0x7F) {
		/* a C0 control, DEL, or a byte of malformed UTF-8 */
		*used = 1;
		return (size_t)snprintf(piece, 16, "\\x%02x", s[0]);
	}
	*used = len;
	if ((cp >= 0x80 && cp <= 0x9F) || term_invisible(cp))
		return (size_t)snprintf(piece, 16, "\\u{%x}", (unsigned)cp);
	memcpy(piece, s, len);
	return len;
}

size_t term_escape(char *dst, size_t dstlen, const void *src, size_t srclen)
{
	const uint8_t *s = src;
	size_t out = 0;

	if (!dstlen)
		return 0;
	for (size_t i = 0; i < srclen;) {
		char piece[16];
		size_t used, n = render(s + i, srclen - i, piece, &used);

		if (n >= dstlen - out)
			break; /* it would not fit with the NUL: stop cleanly */
		memcpy(dst + out, piece, n);
		out += n;
		i += used;
	}
	dst[out] = '\0';
	return out;
}

const char *term_str(char *buf, size_t len, const char *s)
{
	term_escape(buf, len, s, s ? strlen(s) : 0);
	return buf;
}
