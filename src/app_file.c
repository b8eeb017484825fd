/*
 * punch send FILE and punch recv [DIR]: one file, checked end to end.
 *
 * The sender's hello stream (app.h) is the request:
 *
 *   punch/1 file NAME SIZE\n      (NAME percent-encoded: app_file.h)
 *   SIZE bytes of the file
 *   32 bytes: SHA-256 of those bytes
 *   FIN
 *
 * without waiting: the receiver's refusal, if any, costs at most the data
 * in flight.  The receiver's hello is "punch/1 file\n" (so that a sender
 * facing chat, or another sender, is told at once); it checks the name
 * (recv_parse_header), and refuses
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
	e->state = FILE_END_RUNNING;
	uv_timer_init(env->loop, &e->end);
	e->end.data = e;
}

static const char *file_end_state_str(enum file_end_state st)
{
	switch (st) {
	case FILE_END_RUNNING: return "running";
	case FILE_END_ENDING: return "ending";
	}
	return "?";
}

/* Every state change goes through here, and is logged old -> new. */
static void file_end_set_state(struct file_end *e, enum file_end_state st)
{
	log_debug("file: %s -> %s", file_end_state_str(e->state),
	          file_end_state_str(st));
	e->state = st;
}

void file_end_now(struct file_end *e, int code)
{
	if (e->state == FILE_END_ENDING)
		return;
	file_end_set_state(e, FILE_END_ENDING);
	e->code = code;
	e->env.kick(e->env.ctx);
	uv_timer_start(&e->end, on_end, 0, 0);
}

int file_peer_rest(const struct file_end *e, const char *rest, int want_args)
{
	if (!*rest == !want_args)
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
