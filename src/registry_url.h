/*
 * `punch server -registry URL`: where the shared registry lives.  Pure
 * parsing, no sockets (registry_redis.c connects).
 *
 *   redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]   TCP; PORT 6379, DB 0
 *   unix:///PATH                                 a Unix socket, DB 0
 *
 * HOST is an IPv4 address, a name, or an IPv6 address in brackets.  A
 * password in the URL is visible to every local user in the process list:
 * PUNCH_REDIS_PASSWORD (given to registry_url_parse() as env_password) is
 * the better place, and is used when the URL has none.
 */
#ifndef PUNCH_REGISTRY_URL_H
#define PUNCH_REGISTRY_URL_H

#include <stddef.h>

enum {
	REGISTRY_URL_HOST_MAX = 255,
	REGISTRY_URL_PATH_MAX = 107, /* sun_path less its NUL */
	REGISTRY_URL_PASSWORD_MAX = 255,
	REGISTRY_URL_DB_MAX = 1000000, /* databases beyond: a typo */
	REGISTRY_URL_PORT_DEFAULT = 6379,
};

struct registry_url {
	int is_unix;
	char host[REGISTRY_URL_HOST_MAX + 1]; /* without brackets */
	unsigned port;
	char path[REGISTRY_URL_PATH_MAX + 1]; /* is_unix */
	char password[REGISTRY_URL_PASSWORD_MAX + 1]; /* "" for none */
	unsigned db;
};

/* 0, or -1 with a one-sentence reason in err.  env_password may be NULL. */
int registry_url_parse(const char *url, const char *env_password,
                       struct registry_url *out, char *err, size_t err_len);

/* The URL without its password, for logs. */
void registry_url_str(const struct registry_url *u, char *buf, size_t len);

#endif
