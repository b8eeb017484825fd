#include "punch_attr.h"

#include <netinet/in.h>
#include <string.h>

#include "addr.h"
#include "term.h"

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* C0 and C1 controls, DEL, and the Unicode space characters (Zs, and the
 * line and paragraph separators): ids are printed on terminals. */
static int id_forbidden(uint32_t cp)
{
	return cp <= 0x20 || (cp >= 0x7F && cp <= 0xA0) || cp == 0x1680 ||
	       (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
	       cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

const char *punch_id_check(const uint8_t *s, size_t len)
{
	if (len == 0)
		return "id is empty";
	if (len > PUNCH_ID_MAX)
		return "id is longer than 64 bytes";
	/* known_peers and known_servers take '#' for a comment */
	if (s[0] == '#')
		return "id starts with '#'";
	for (size_t i = 0; i < len;) {
		uint32_t cp;
		size_t n = term_utf8_decode(s + i, len - i, &cp);

		if (!n)
			return "id is not valid UTF-8";
		if (id_forbidden(cp))
			return "id contains a space or control character";
		/* Two ids that look the same must not be two ids. */
		if (term_invisible(cp))
			return "id contains a bidi control or an invisible character";
		i += n;
	}
	return NULL;
}

uint32_t punch_cand_priority(uint8_t type, uint16_t local_pref)
{
	/* RFC 8445 5.1.2.1, with its recommended type preferences;
	 * component 1 (one UDP flow). */
	/* A mapped (NAT-assisted) candidate ranks between host and srflx:
	 * the gateway forwards to us whatever arrives, with no filter to
	 * open first, so it beats srflx, but is one hop more than host. */
	uint32_t type_pref = type == CAND_HOST ? 126 : type == CAND_PRFLX ? 110 :
	                                       type == CAND_MAPPED        ? 105 :
	                                       type == CAND_SRFLX         ? 100 :
	                                                                    0;

	return (type_pref << 24) | ((uint32_t)local_pref << 8) | (256 - 1);
}

const char *punch_cand_type_str(uint8_t type)
{
	switch (type) {
	case CAND_HOST: return "host";
	case CAND_SRFLX: return "srflx";
	case CAND_PRFLX: return "prflx";
	case CAND_RELAY: return "relay";
	case CAND_MAPPED: return "mapped";
	default: return "?";
	}
}

void punch_put_candidate(struct stun_writer *w, const struct punch_candidate *c)
{
	uint8_t a[20], v[24];
	int n = stun_addr_encode(a, sizeof(a), (const struct sockaddr *)&c->addr,
	                         w->buf + 8);

	if (n < 0) {
		if (!w->err)
			w->err = n;
		return;
	}
	v[0] = c->type;
	v[1] = a[1];
	memcpy(v + 2, a + 2, 2);
	put32(v + 4, c->priority);
	memcpy(v + 8, a + 4, (size_t)n - 4);
	stun_put_bytes(w, PUNCH_ATTR_CANDIDATE, v, (size_t)n + 4);
}

int punch_parse_candidate(struct punch_candidate *c, const struct stun_attr *a,
                          const uint8_t txid[STUN_TXID_LEN])
{
	uint8_t v[20];

	if (a->len != 12 && a->len != 24)
		return -1;
	if (a->value[0] < CAND_HOST || a->value[0] > CAND_MAPPED)
		return -1;
	v[0] = 0;
	v[1] = a->value[1];
	memcpy(v + 2, a->value + 2, 2);
	memcpy(v + 4, a->value + 8, (size_t)a->len - 8);
	if (stun_addr_decode(&c->addr, v, (size_t)a->len - 4, txid))
		return -1;
	c->type = a->value[0];
	c->priority = get32(a->value + 4);
	return 0;
}

int punch_method_is_rendezvous(int method)
{
	return method == PUNCH_REGISTER || method == PUNCH_PEER_INFO ||
	       method == PUNCH_RELEASE || method == PUNCH_RENEW;
}

int punch_attr_known(uint16_t type)
{
	return type >= PUNCH_ATTR_ID && type <= PUNCH_ATTR_RENEW_SEQ;
}

size_t punch_unknown_required(const struct stun_msg *m, uint16_t *out)
{
	size_t n = 0;

	for (size_t i = 0; i < m->unknown_required_count; i++)
		if (!punch_attr_known(m->unknown_required[i]))
			out[n++] = m->unknown_required[i];
	return n;
}

/* Only before a MESSAGE-INTEGRITY(-SHA256): what follows it is covered by
 * no MAC, and RFC 8489 14.5/14.6 has it ignored.  (A signed message's
 * PUNCH-SIGNATURE is last before FINGERPRINT, sign.h.) */
const struct stun_attr *punch_attr_find(const struct stun_msg *m,
                                        uint16_t type)
{
	for (size_t i = 0; i < m->attrs_count; i++) {
		if (m->attrs[i].type == type)
			return &m->attrs[i];
		if (m->attrs[i].type == STUN_ATTR_MESSAGE_INTEGRITY ||
		    m->attrs[i].type == STUN_ATTR_MESSAGE_INTEGRITY_SHA256)
			break;
	}
	return NULL;
}

/* Copy a string attribute into a NUL-terminated buffer of max+1 bytes. */
static int get_str(char *dst, size_t max, const struct stun_attr *a)
{
	if (!a || a->len == 0 || a->len > max || memchr(a->value, 0, a->len))
		return -1;
	memcpy(dst, a->value, a->len);
	dst[a->len] = '\0';
	return 0;
}

static int get_id(char *dst, const struct stun_attr *a, const char **why)
{
	if (!a) {
		*why = "id missing";
		return -1;
	}
	if ((*why = punch_id_check(a->value, a->len)))
		return -1;
	memcpy(dst, a->value, a->len);
	dst[a->len] = '\0';
	return 0;
}

int punch_peer_parse(struct punch_peer *p, const struct stun_msg *m,
                     const char **why)
{
	const struct stun_attr *a;

	memset(p, 0, sizeof(*p));
	if (get_id(p->id, punch_attr_find(m, PUNCH_ATTR_ID), why))
		return -1;
	if ((a = punch_attr_find(m, PUNCH_ATTR_PEER_ID))) {
		if (get_id(p->peer_id, a, why))
			return -1;
	}
	*why = "bad or missing credentials";
	if (get_str(p->ufrag, PUNCH_UFRAG_MAX, punch_attr_find(m, PUNCH_ATTR_UFRAG)) ||
	    get_str(p->pwd, PUNCH_PWD_MAX, punch_attr_find(m, PUNCH_ATTR_PWD)))
		return -1;
	*why = "bad or missing session";
	if (!(a = punch_attr_find(m, PUNCH_ATTR_SESSION)) || a->len != 8)
		return -1;
	p->session = (uint64_t)get32(a->value) << 32 | get32(a->value + 4);
	if ((a = punch_attr_find(m, PUNCH_ATTR_KEY_FP))) {
		*why = "bad key fingerprint";
		if (a->len != PUNCH_KEY_FP_LEN)
			return -1;
		memcpy(p->key_fp, a->value, PUNCH_KEY_FP_LEN);
		p->has_key_fp = 1;
	}
	if ((a = punch_attr_find(m, PUNCH_ATTR_OBSERVED))) {
		*why = "bad observed address";
		if (stun_addr_decode(&p->observed, a->value, a->len, m->txid))
			return -1;
		p->has_observed = 1;
	}
	for (size_t i = 0; i < m->attrs_count; i++) {
		if (m->attrs[i].type != PUNCH_ATTR_CANDIDATE)
			continue;
		*why = "too many candidates";
		if (p->n_cand == PUNCH_CANDIDATES_MAX)
			return -1;
		*why = "bad candidate";
		if (punch_parse_candidate(&p->cand[p->n_cand], &m->attrs[i],
		                          m->txid))
			return -1;
		p->n_cand++;
	}
	if ((a = punch_attr_find(m, PUNCH_ATTR_NAT))) {
		*why = "bad NAT behaviour";
		if (punch_parse_nat(&p->nat, a))
			return -1;
	}
	*why = NULL;
	return 0;
}

void punch_peer_put(struct stun_writer *w, const struct punch_peer *p,
                    int with_peer_id)
{
	uint8_t session[8];

	stun_put_bytes(w, PUNCH_ATTR_ID, p->id, strlen(p->id));
	if (with_peer_id)
		stun_put_bytes(w, PUNCH_ATTR_PEER_ID, p->peer_id,
		               strlen(p->peer_id));
	stun_put_bytes(w, PUNCH_ATTR_UFRAG, p->ufrag, strlen(p->ufrag));
	stun_put_bytes(w, PUNCH_ATTR_PWD, p->pwd, strlen(p->pwd));
	put32(session, (uint32_t)(p->session >> 32));
	put32(session + 4, (uint32_t)p->session);
	stun_put_bytes(w, PUNCH_ATTR_SESSION, session, sizeof(session));
	if (p->has_key_fp)
		stun_put_bytes(w, PUNCH_ATTR_KEY_FP, p->key_fp, PUNCH_KEY_FP_LEN);
	if (p->has_observed)
		stun_put_xor_addr(w, PUNCH_ATTR_OBSERVED,
		                  (const struct sockaddr *)&p->observed);
	for (size_t i = 0; i < p->n_cand; i++)
		punch_put_candidate(w, &p->cand[i]);
	if (p->nat.mapping != PUNCH_NAT_UNKNOWN)
		punch_put_nat(w, &p->nat);
}

void punch_put_nat(struct stun_writer *w, const struct punch_nat *n)
{
	uint16_t d = (uint16_t)n->delta;
	uint8_t v[4] = { n->mapping, n->ports, (uint8_t)(d >> 8), (uint8_t)d };

	stun_put_bytes(w, PUNCH_ATTR_NAT, v, sizeof(v));
}

int punch_parse_nat(struct punch_nat *n, const struct stun_attr *a)
{
	if (a->len != 4 || a->value[0] > PUNCH_NAT_DEPENDENT ||
	    a->value[1] > PUNCH_PORTS_RANDOM)
		return -1;
	memset(n, 0, sizeof(*n));
	/* Mapping 0 says "unknown", as no PUNCH-NAT does: nothing else of
	 * it counts (and punch_peer_put() writes none). */
	if (a->value[0] == PUNCH_NAT_UNKNOWN)
		return 0;
	n->mapping = a->value[0];
	n->ports = a->value[1];
	n->delta = (int16_t)(uint16_t)((unsigned)a->value[2] << 8 | a->value[3]);
	return 0;
}

void punch_nat_classify(struct punch_nat *n, uint16_t local_port,
                        const struct sockaddr *mapped,
                        const struct sockaddr *alt)
{
	int delta;

	memset(n, 0, sizeof(*n));
	if (!alt)
		return;
	delta = (int)addr_port(alt) - (int)addr_port(mapped);
	n->delta = (int16_t)delta;
	/* RFC 4787 4.1: the same mapping toward another destination is
	 * endpoint-independent (as far as one more Binding can tell). */
	n->mapping = addr_equal(mapped, alt) ? PUNCH_NAT_INDEPENDENT :
	                                       PUNCH_NAT_DEPENDENT;
	if (addr_port(mapped) == local_port && addr_port(alt) == local_port)
		n->ports = PUNCH_PORTS_PRESERVED;
	else if (n->mapping == PUNCH_NAT_INDEPENDENT)
		n->ports = PUNCH_PORTS_UNKNOWN;
	else if (delta != 0 && delta >= -PUNCH_PORTS_SEQUENTIAL_DELTA_MAX &&
	         delta <= PUNCH_PORTS_SEQUENTIAL_DELTA_MAX)
		n->ports = PUNCH_PORTS_SEQUENTIAL;
	else
		n->ports = PUNCH_PORTS_RANDOM;
}

const char *punch_nat_mapping_str(uint8_t mapping)
{
	switch (mapping) {
	case PUNCH_NAT_INDEPENDENT: return "endpoint-independent";
	case PUNCH_NAT_DEPENDENT: return "endpoint-dependent";
	default: return "unknown";
	}
}

const char *punch_nat_ports_str(uint8_t ports)
{
	switch (ports) {
	case PUNCH_PORTS_PRESERVED: return "preserved";
	case PUNCH_PORTS_SEQUENTIAL: return "sequential";
	case PUNCH_PORTS_RANDOM: return "random";
	default: return "unknown";
	}
}
