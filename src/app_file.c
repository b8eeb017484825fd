/*
 * punch send FILE and punch recv [DIR]: one file, checked end to end.
 *
 * The sender opens a unidirectional stream and writes
 *
 *   punch/1 file NAME SIZE\n      (NAME percent-encoded: app_file.h)
 *   SIZE bytes of the file
 *   32 bytes: SHA-256 of those bytes
 *   FIN
 *
 * without waiting: the receiver's refusal, if any, costs at most the data
 * in flight.  The receiver opens its own unidirectional stream with
 * "punch/1 file\n" as soon as the link is up (so that a sender facing
 * chat, or another sender, is told at once), checks the name, and refuses
 * an existing file unless -f, before it writes anything.  It writes the
 * data to DIR/.punch-recv-XXXXXX, and at FIN checks the size and the
 * SHA-256, then renames the file into place (without -f, atomically
 * refusing to replace a file that appeared meanwhile).  It answers
 *
 *   ok\n                          the file is in place
 *   bad REASON[ DETAIL]\n         REASON: exists, name, header, size,
 *                                 sha256, write
 *
 * and FIN.  The sender exits 0 only after "ok"; the receiver exits 0 only
 * after it answered "ok" (and the sender acknowledged it, or closed the
 * link cleanly, which it does only after "ok").
 */
#include "app_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "term.h"

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

/* The name the sender uses: FILE's last component. */
const char *file_base_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

enum app_status app_send_check(const struct app_args *args, char *why, size_t len)
{
	const char *path = args->argv[0], *name = file_base_name(path);
	const char *bad;
	char wire[FILE_WIRE_NAME_MAX + 1];
	struct stat st;

	if (stat(path, &st)) {
		snprintf(why, len, "cannot send '%s': %s", path, strerror(errno));
		return APP_STATUS_FAILED;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(why, len, "cannot send '%s': not a regular file", path);
		return APP_STATUS_FAILED;
	}
	if (access(path, R_OK)) {
		snprintf(why, len, "cannot read '%s': %s", path, strerror(errno));
		return APP_STATUS_FAILED;
	}
	if (getenv("PUNCH_TEST_SEND_NAME"))
		return APP_STATUS_OK; /* the tests send names recv must refuse */
	if ((bad = file_name_check(name, strlen(name)))) {
		snprintf(why, len, "cannot send '%s': %s, and recv would refuse it; copy it to another name",
		         path, bad);
		return APP_STATUS_FAILED;
	}
	if (file_name_encode(name, strlen(name), wire, sizeof(wire)) < 0) {
		snprintf(why, len, "cannot send '%s': the name is too long once encoded (at most %d bytes; spaces and '%%' take 3)",
		         path, FILE_WIRE_NAME_MAX);
		return APP_STATUS_FAILED;
	}
	return APP_STATUS_OK;
}

enum app_status app_recv_check(const struct app_args *args, char *why, size_t len)
{
	const char *dir = args->argc ? args->argv[0] : ".";
	struct stat st;

	if (stat(dir, &st)) {
		snprintf(why, len, "cannot use directory '%s': %s", dir, strerror(errno));
		return APP_STATUS_FAILED;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(why, len, "'%s' is not a directory", dir);
		return APP_STATUS_USAGE;
	}
	if (access(dir, W_OK | X_OK)) {
		snprintf(why, len, "cannot write in '%s': %s", dir, strerror(errno));
		return APP_STATUS_FAILED;
	}
	return APP_STATUS_OK;
}
/* ---- shared between the two ends -------------------------------------- */

static void on_end(uv_timer_t *t)
{
	struct file_end *e = t->data;

	e->env.finish(e->env.ctx, e->code);
}

void file_end_init(struct file_end *e, const struct app_env *env)
{
	e->env = *env;
	uv_timer_init(env->loop, &e->end);
	e->end.data = e;
}

void file_end_now(struct file_end *e, int code)
{
	if (e->done)
		return;
	e->done = 1;
	e->code = code;
	e->env.kick(e->env.ctx);
	uv_timer_start(&e->end, on_end, 0, 0);
}

int file_peer_header(struct file_end *e, struct app_header *h,
                     const uint8_t **data, size_t *len, int want_args,
                     const char *want_cmd)
{
	long used;

	if (h->done)
		return 0;
	if (!*len)
		return 1;
	used = app_header_feed(h, *data, *len);
	if (used < 0 || (h->done && strcmp(h->name, "file"))) {
		char name[TERM_ESCAPE_SIZE(APP_HEADER_MAX)];

		log_error("%s is not running punch %s (it runs %s); run punch send FILE on one side and punch recv on the other",
		          e->env.peer_id, want_cmd,
		          h->done ? term_str(name, sizeof(name), h->name) : "something else");
		return -1;
	}
	*data += used;
	*len -= (size_t)used;
	if (!h->done)
		return 1;
	if (!*h->rest == !want_args)
		return 0;
	log_error("%s is running punch %s too; run punch %s on one side",
	          e->env.peer_id, want_args ? "recv" : "send",
	          want_args ? "send FILE" : "recv");
	return -1;
}

void file_hash_hex(const uint8_t digest[FILE_HASH_LEN],
                   char out[2 * FILE_HASH_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";

	for (int i = 0; i < FILE_HASH_LEN; i++) {
		out[2 * i] = hex[digest[i] >> 4];
		out[2 * i + 1] = hex[digest[i] & 15];
	}
	out[2 * FILE_HASH_LEN] = '\0';
}
