/*
 * The -server list: see server_list.h.
 */
#include "server_list.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* One entry, [s, s + n): HOST:PORT, an IPv6 HOST in brackets.  0, or -1
 * with a sentence in why. */
static int entry_check(const char *s, size_t n, char *why, size_t len)
{
	const char *colon = NULL, *h = s, *he;
	uint16_t port;

	for (size_t i = 0; i < n; i++)
		if (s[i] == ':')
			colon = s + i;
	if (!colon)
		goto bad;
	if (addr_port_parse(colon + 1, n - (size_t)(colon + 1 - s), 0, &port)) {
		snprintf(why, len, "-server '%.*s': PORT must be a number 1-65535",
		         (int)n, s);
		return -1;
	}
	he = colon;
	if (he - h >= 2 && *h == '[' && he[-1] == ']') {
		h++;
		he--;
	} else if (memchr(s, ':', (size_t)(colon - s))) {
		goto bad; /* an IPv6 HOST must be in brackets */
	}
	if (he > h && addr_host_ok(h, (size_t)(he - h)))
		return 0;
bad:
	snprintf(why, len, "-server wants HOST:PORT (an IPv6 HOST in brackets), got '%.*s'",
	         (int)n, s);
	return -1;
}

int server_list_add(struct server_list *l, const char *arg, char *why,
                    size_t len)
{
	int n0 = l->n;
	const char *s = arg;

	for (;;) {
		const char *comma = strchr(s, ',');
		size_t n = comma ? (size_t)(comma - s) : strlen(s);

		if (!n) {
			snprintf(why, len, "-server '%s' has an empty entry; separate HOST:PORT entries with single commas",
			         arg);
			goto fail;
		}
		if (l->n == SERVER_LIST_MAX) {
			snprintf(why, len, "too many servers in -server (at most %d)",
			         SERVER_LIST_MAX);
			goto fail;
		}
		if (n > SERVER_NAME_MAX) {
			snprintf(why, len, "-server wants HOST:PORT, got an entry of %zu bytes (at most %d)",
			         n, SERVER_NAME_MAX);
			goto fail;
		}
		if (entry_check(s, n, why, len))
			goto fail;
		memcpy(l->name[l->n], s, n);
		l->name[l->n][n] = '\0';
		for (int i = 0; i < l->n; i++)
			if (!strcmp(l->name[i], l->name[l->n])) {
				snprintf(why, len, "-server lists '%s' twice",
				         l->name[i]);
				goto fail;
			}
		l->n++;
		if (!comma)
			return 0;
		s = comma + 1;
	}
fail:
	l->n = n0;
	return -1;
}
