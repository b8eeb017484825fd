#include "registry_value.h"

#include <netinet/in.h>
#include <string.h>

#include "sign.h"
#include "stun.h"

static const uint8_t magic[3] = { 'P', 'R', '1' };

int regval_encode(uint8_t *out, size_t cap, size_t *len,
                  const struct sockaddr *from, const uint8_t *msg,
                  size_t msg_len)
{
	const uint8_t *ip;
	size_t ip_len, n;
	uint16_t port;

	if (from->sa_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)from;

		ip = (const uint8_t *)&s->sin_addr;
		ip_len = 4;
		port = s->sin_port;
	} else if (from->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)from;

		ip = s->sin6_addr.s6_addr;
		ip_len = 16;
		port = s->sin6_port;
	} else {
		return -1;
	}
	n = sizeof(magic) + 1 + 2 + ip_len;
	if (msg_len > PUNCH_MSG_MAX || n + msg_len > cap)
		return -1;
	memcpy(out, magic, sizeof(magic));
	out[3] = ip_len == 4 ? 4 : 6;
	memcpy(out + 4, &port, 2);
	memcpy(out + 6, ip, ip_len);
	memcpy(out + n, msg, msg_len);
	*len = n + msg_len;
	return 0;
}

/* The address in front of the message; its length, or 0 if malformed. */
static size_t head_decode(const uint8_t *v, size_t len,
                          struct sockaddr_storage *out)
{
	size_t ip_len;

	if (len < 6 || memcmp(v, magic, sizeof(magic)))
		return 0;
	if (v[3] != 4 && v[3] != 6)
		return 0;
	ip_len = v[3] == 4 ? 4 : 16;
	if (len < 6 + ip_len)
		return 0;
	memset(out, 0, sizeof(*out));
	if (ip_len == 4) {
		struct sockaddr_in *s = (struct sockaddr_in *)out;

		s->sin_family = AF_INET;
		memcpy(&s->sin_port, v + 4, 2);
		memcpy(&s->sin_addr, v + 6, 4);
	} else {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)out;

		s->sin6_family = AF_INET6;
		memcpy(&s->sin6_port, v + 4, 2);
		memcpy(&s->sin6_addr, v + 6, 16);
	}
	return 6 + ip_len;
}

int regval_decode(const uint8_t *v, size_t len, struct punch_peer *p,
                  const char **why)
{
	struct sockaddr_storage from;
	uint8_t pk[SIGN_PK_LEN];
	struct stun_msg m;
	size_t head = head_decode(v, len, &from);
	int rc;

	memset(p, 0, sizeof(*p));
	if (!head) {
		*why = "not a registration value (bad header)";
		return -1;
	}
	if (len - head > PUNCH_MSG_MAX ||
	    stun_decode(&m, v + head, len - head)) {
		*why = "the registration is not a STUN message";
		return -1;
	}
	if (m.cls != STUN_REQUEST || m.method != PUNCH_REGISTER) {
		*why = "the message is not a REGISTER request";
		return -1;
	}
	if ((rc = sign_verify(&m, v + head, len - head, PUNCH_ATTR_PUBKEY,
	                      pk))) {
		*why = sign_err_str(rc);
		return -1;
	}
	if (punch_peer_parse(p, &m, why))
		return -1;
	if (!p->peer_id[0] || !strcmp(p->id, p->peer_id)) {
		*why = "the peer id is missing or the id's own";
		return -1;
	}
	sign_fp(pk, p->key_fp);
	p->has_key_fp = 1;
	p->observed = from;
	p->has_observed = 1;
	return 0;
}

int regmsg_encode(uint8_t *out, size_t cap, size_t *len, const char *target,
                  const uint8_t *value, size_t value_len)
{
	size_t t = strlen(target);

	if (t > PUNCH_ID_MAX || t + 1 + value_len > cap)
		return -1;
	memcpy(out, target, t);
	out[t] = '\n';
	memcpy(out + t + 1, value, value_len);
	*len = t + 1 + value_len;
	return 0;
}

int regmsg_split(const uint8_t *msg, size_t len,
                 char target[PUNCH_ID_MAX + 1], const uint8_t **value,
                 size_t *value_len, const char **why)
{
	size_t scan = len < PUNCH_ID_MAX + 1 ? len : PUNCH_ID_MAX + 1;
	const uint8_t *nl = memchr(msg, '\n', scan);

	if (!nl) {
		*why = "no target id";
		return -1;
	}
	if ((*why = punch_id_check(msg, (size_t)(nl - msg))))
		return -1;
	memcpy(target, msg, (size_t)(nl - msg));
	target[nl - msg] = '\0';
	*value = nl + 1;
	*value_len = len - (size_t)(nl - msg) - 1;
	return 0;
}

int regval_server_id_ok(const char *s, size_t len)
{
	if (len != REGISTRY_SERVER_ID_LEN)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}
