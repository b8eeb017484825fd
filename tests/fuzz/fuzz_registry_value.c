/*
 * Fuzz harness for what a server reads back from the shared registry in
 * Redis (registry_value.c), where anyone with access to the database may
 * have written anything: a registration's value, a message from another
 * server, and (from the command line) the -registry URL
 * (registry_url.c).  Every input is read as all three.
 *
 * A value that checks must describe a registration this server would
 * take itself: two different, valid ids, at most PUNCH_CANDIDATES_MAX
 * candidates, a key fingerprint and an observed address; encoded again,
 * it is the same bytes.
 */
#include <string.h>

#include "fuzz.h"
#include "registry_url.h"
#include "registry_value.h"

static void value_check(const uint8_t *v, size_t len)
{
	static struct punch_peer p;
	static uint8_t again[REGVAL_MAX];
	const char *why = NULL;
	size_t head, n;

	if (regval_decode(v, len, &p, &why)) {
		CHECK(why != NULL);
		return;
	}
	CHECK(p.id[0] && p.peer_id[0] && strcmp(p.id, p.peer_id));
	CHECK(!punch_id_check((const uint8_t *)p.id, strlen(p.id)));
	CHECK(!punch_id_check((const uint8_t *)p.peer_id, strlen(p.peer_id)));
	CHECK(p.n_cand <= PUNCH_CANDIDATES_MAX);
	CHECK(p.has_key_fp && p.has_observed);
	head = v[3] == 4 ? 10 : 22;
	CHECK(!regval_encode(again, sizeof(again), &n,
	                     (const struct sockaddr *)&p.observed, v + head,
	                     len - head));
	CHECK(n == len && !memcmp(again, v, len));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char target[PUNCH_ID_MAX + 1], url[512];
	struct registry_url u;
	const uint8_t *value;
	size_t value_len;
	const char *why;

	value_check(data, size);
	if (!regmsg_split(data, size, target, &value, &value_len, &why)) {
		CHECK(strlen(target) >= 1 && strlen(target) <= PUNCH_ID_MAX);
		CHECK(value >= data && value + value_len == data + size);
		value_check(value, value_len);
	}
	if (size < sizeof(url)) {
		char err[600], back[600];

		memcpy(url, data, size);
		url[size] = '\0';
		if (!registry_url_parse(url, "env", &u, err, sizeof(err))) {
			CHECK(u.is_unix ? u.path[0] == '/' : u.host[0] && u.port);
			/* what the logs show never holds the password */
			registry_url_str(&u, back, sizeof(back));
			CHECK(u.is_unix || !strchr(back, '@'));
		}
	}
	return 0;
}
