#include "registry_url.h"

#include <stdio.h>
#include <string.h>

/* A decimal number in [s, e) no greater than max: 0, or -1. */
static int parse_uint(const char *s, const char *e, unsigned max,
                      unsigned *out)
{
	unsigned long v = 0;

	if (s == e || e - s > 7)
		return -1;
	for (; s < e; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (unsigned)(*s - '0');
	}
	if (v > max)
		return -1;
	*out = (unsigned)v;
	return 0;
}

static int copy_part(char *dst, size_t cap, const char *s, const char *e)
{
	if ((size_t)(e - s) >= cap)
		return -1;
	memcpy(dst, s, (size_t)(e - s));
	dst[e - s] = '\0';
	return 0;
}

/* [[USER]:PASSWORD@] at s; moves s past it.  The last '@' ends it: a
 * password may hold one, a host never does. */
static int parse_userinfo(const char **s, const char *end,
                          struct registry_url *u, const char **why)
{
	const char *at = NULL, *colon;

	for (const char *p = *s; p < end; p++)
		if (*p == '@')
			at = p;

	if (!at)
		return 0;
	colon = memchr(*s, ':', (size_t)(at - *s));
	if (!colon) {
		*why = "a user without a password (write redis://:PASSWORD@HOST)";
		return -1;
	}
	if (copy_part(u->password, sizeof(u->password), colon + 1, at)) {
		*why = "the password is longer than 255 bytes";
		return -1;
	}
	*s = at + 1;
	return 0;
}

/* A DNS name or IPv4 address (letters, digits, '-', '.'), or within
 * brackets an IPv6 address (hex digits, ':', '.'). */
static int host_ok(const char *h, int v6)
{
	for (; *h; h++) {
		char c = *h;
		int ok = (c >= '0' && c <= '9') || c == '.' ||
		         (v6 ? (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
		                          c == ':' :
		               (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		                          c == '-');

		if (!ok)
			return 0;
	}
	return 1;
}

/* HOST[:PORT] in [s, e). */
static int parse_hostport(const char *s, const char *e,
                          struct registry_url *u, const char **why)
{
	const char *hs = s, *he, *colon;

	if (s < e && *s == '[') {
		he = memchr(s, ']', (size_t)(e - s));
		if (!he) {
			*why = "an IPv6 address without its closing ']'";
			return -1;
		}
		hs = s + 1;
		colon = he + 1 < e ? he + 1 : NULL;
		if (colon && *colon != ':') {
			*why = "text after the IPv6 address that is not :PORT";
			return -1;
		}
	} else {
		colon = memchr(s, ':', (size_t)(e - s));
		he = colon ? colon : e;
	}
	if (hs == he) {
		*why = "no host";
		return -1;
	}
	if (copy_part(u->host, sizeof(u->host), hs, he)) {
		*why = "the host is longer than 255 bytes";
		return -1;
	}
	if (!host_ok(u->host, hs != s)) {
		*why = "the host is neither a name nor an IP address";
		return -1;
	}
	u->port = REGISTRY_URL_PORT_DEFAULT;
	if (colon && (parse_uint(colon + 1, e, 65535, &u->port) || !u->port)) {
		*why = "the port is not a number from 1 to 65535";
		return -1;
	}
	return 0;
}

static int parse_redis(const char *s, struct registry_url *u,
                       const char **why)
{
	const char *end = s + strlen(s);
	const char *slash;

	if (memchr(s, '?', (size_t)(end - s)) || memchr(s, '#', (size_t)(end - s))) {
		*why = "options (?...) are not supported";
		return -1;
	}
	if (parse_userinfo(&s, end, u, why))
		return -1;
	slash = memchr(s, '/', (size_t)(end - s));
	if (parse_hostport(s, slash ? slash : end, u, why))
		return -1;
	if (slash && slash + 1 < end &&
	    parse_uint(slash + 1, end, REGISTRY_URL_DB_MAX, &u->db)) {
		*why = "the database (after /) is not a number";
		return -1;
	}
	return 0;
}

int registry_url_parse(const char *url, const char *env_password,
                       struct registry_url *out, char *err, size_t err_len)
{
	const char *why = NULL;

	memset(out, 0, sizeof(*out));
	if (!strncmp(url, "redis://", 8)) {
		if (parse_redis(url + 8, out, &why))
			goto fail;
	} else if (!strncmp(url, "unix://", 7)) {
		out->is_unix = 1;
		if (url[7] != '/') {
			why = "a Unix socket needs an absolute path (unix:///PATH)";
			goto fail;
		}
		if (copy_part(out->path, sizeof(out->path), url + 7,
		              url + strlen(url))) {
			why = "the socket path is longer than 107 bytes";
			goto fail;
		}
	} else {
		why = "it starts with neither redis:// nor unix://";
		goto fail;
	}
	if (!out->password[0] && env_password &&
	    copy_part(out->password, sizeof(out->password), env_password,
	              env_password + strlen(env_password))) {
		why = "PUNCH_REDIS_PASSWORD is longer than 255 bytes";
		goto fail;
	}
	return 0;
fail:
	snprintf(err, err_len, "-registry %s: %s", url, why);
	memset(out, 0, sizeof(*out));
	return -1;
}

void registry_url_str(const struct registry_url *u, char *buf, size_t len)
{
	if (u->is_unix)
		snprintf(buf, len, "unix://%s", u->path);
	else
		snprintf(buf, len, "redis://%s%s%s:%u/%u",
		         strchr(u->host, ':') ? "[" : "", u->host,
		         strchr(u->host, ':') ? "]" : "", u->port, u->db);
}
