/*
 * punch send and punch recv: one file over the secure link.
 *
 * On the wire (both are "file"; see app_file.c for the whole exchange):
 *
 *   sender   -> "punch/1 file NAME SIZE\n", SIZE bytes, 32-byte SHA-256, FIN
 *   receiver -> "punch/1 file\n", then "ok\n" or "bad REASON[ DETAIL]\n", FIN
 *
 * NAME is the file's name with '%', space, control characters and DEL
 * written as %XX (two hex digits); every other byte, UTF-8 included, is
 * itself.  The name rules below are the receiver's; the sender applies
 * them too, so that a user learns before connecting.
 */
#ifndef PUNCH_APP_FILE_H
#define PUNCH_APP_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "app.h"

enum {
	FILE_NAME_MAX = 255,      /* bytes, decoded: NAME_MAX on Linux */
	FILE_WIRE_NAME_MAX = 470, /* encoded, so that the header fits APP_HEADER_MAX */
	FILE_HASH_LEN = 32,       /* the trailer: SHA-256 */
	FILE_REPLY_MAX = 256,     /* "ok" or "bad REASON DETAIL" */
	FILE_CHUNK = sizeof(((struct app_input *)0)->buf),
};

/* NULL if `name` (len bytes, decoded) is acceptable as a file name in the
 * receiver's directory, else why not: empty, too long, a path separator
 * ('/' or '\'), a leading '.' (which covers "." and ".."), or a control
 * character (NUL included). */
const char *file_name_check(const char *name, size_t len);

/* Percent-encode name (len bytes) into out, NUL-terminated.  Returns the
 * encoded length, or -1 if it does not fit in outlen. */
int file_name_encode(const char *name, size_t len, char *out, size_t outlen);

/* Decode a wire NAME into out (NUL-terminated; the name itself may hold a
 * NUL, which file_name_check refuses).  Returns the decoded length, or -1
 * for a malformed escape, a raw space or control byte, or no room. */
int file_name_decode(const char *in, char *out, size_t outlen);

/* The name send uses for a path: its last component. */
const char *file_base_name(const char *path);

/* Before connecting: is FILE a readable regular file with a name recv
 * will take?  Is DIR a directory we can write?  APP_STATUS_OK, or what
 * was wrong with a sentence in why. */
enum app_status app_send_check(const struct app_args *args, char *why,
                               size_t len);
enum app_status app_recv_check(const struct app_args *args, char *why,
                               size_t len);

/* ---- for app_send.c and app_recv.c -------------------------------- */

/* What both ends keep: the link, and a finish that runs from the loop
 * rather than from inside ngtcp2's callbacks, after a kick has sent what
 * is queued. */
enum file_end_state {
	FILE_END_RUNNING, /* the transfer goes on */
	FILE_END_ENDING,  /* the exit status is set; the finish timer runs */
};

struct file_end {
	struct app_env env;
	uv_timer_t end;
	enum file_end_state state;
	int code;                 /* the exit status, once FILE_END_ENDING */
};

void file_end_init(struct file_end *e, const struct app_env *env);
/* Finish with this exit status (the first call wins). */
void file_end_now(struct file_end *e, int code);
/* Has file_end_now run? */
static inline int file_end_ending(const struct file_end *e)
{
	return e->state == FILE_END_ENDING;
}

/* The peer's hello said "file": is it the other end?  REST holds the
 * request if the peer sends (want_args: we are recv), nothing if it
 * receives.  0, or -1 after telling the user. */
int file_peer_rest(const struct file_end *e, const char *rest, int want_args);

/* The request, REST of the sender's hello: "NAME SIZE", NAME encoded.
 * NULL with the decoded name in name and its size, or the reason recv
 * answers with ("header" or "name") and a sentence in why (peer text
 * escaped for the terminal).  Pure: bounds-checked, no I/O. */
const char *recv_parse_header(const char *rest, char name[FILE_NAME_MAX + 1],
                              uint64_t *size, char *why, size_t whylen);

/* The SHA-256 as 64 lowercase hex digits. */
void file_hash_hex(const uint8_t digest[FILE_HASH_LEN],
                   char out[2 * FILE_HASH_LEN + 1]);

#endif
