/*
 * Text from the network on a terminal.  A peer's chat line, a file name,
 * an id or a server's reason phrase may carry ESC sequences (which can set
 * the window title, clear the screen, remap keys on some terminals), bidi
 * overrides that make text read differently from what it is (CVE-2021-42574,
 * "Trojan Source"), or invisible characters that make two ids look alike.
 * Everything that came over the wire goes through term_escape() on its way
 * to stdout or stderr.
 *
 * Pure: no I/O, no locale.  Valid UTF-8 is passed through, so names and
 * chat in any script print as they are.
 */
#ifndef PUNCH_TERM_H
#define PUNCH_TERM_H

#include <stddef.h>
#include <stdint.h>

/* Worst case: every input byte becomes "\xNN". */
#define TERM_ESCAPE_SIZE(n) (4 * (size_t)(n) + 1)

/* Render src (srclen bytes, NULs allowed) into dst (dstlen bytes) as text
 * that is safe to print:
 *   - C0 controls, DEL and any byte that is not part of well-formed UTF-8
 *     become "\xNN" (so ESC is "\x1b", and the rest of an ESC sequence is
 *     then plain text);
 *   - C1 controls (U+0080-U+009F), bidi controls, zero-width and other
 *     invisible format characters (term_invisible()) become "\u{XXXX}";
 *   - everything else, backslash included, is copied as it is.
 * The output is always NUL-terminated when dstlen > 0, and never ends in
 * the middle of an escape or of a UTF-8 sequence; input that does not fit
 * is dropped.  TERM_ESCAPE_SIZE(srclen) bytes always suffice.  Returns the
 * length written, without the NUL. */
size_t term_escape(char *dst, size_t dstlen, const void *src, size_t srclen);

/* term_escape() of a NUL-terminated string into buf; returns buf, for use
 * as a printf argument. */
const char *term_str(char *buf, size_t len, const char *s);

/* Decode the UTF-8 sequence at s (at most n bytes, n > 0) into *cp.
 * Returns its length (1-4), or 0 if it is not well formed (RFC 3629: no
 * overlongs, no surrogates, nothing above U+10FFFF). */
size_t term_utf8_decode(const uint8_t *s, size_t n, uint32_t *cp);

/* Is cp a character that changes how the text around it is shown without
 * being seen itself: bidi controls (U+061C, U+200E-U+200F, U+202A-U+202E,
 * U+2066-U+2069), zero-width and joiner characters (U+200B-U+200D,
 * U+2060-U+2064, U+FEFF), other invisible format characters (U+180E,
 * U+206A-U+206F, U+FFF9-U+FFFB, tags U+E0000-U+E007F), and the line and
 * paragraph separators U+2028-U+2029? */
int term_invisible(uint32_t cp);

#endif
