#include "rendezvous_log.h"

#include "addr.h"
#include "log.h"

const char *rdv_refusal_name(int refusal)
{
	switch (refusal) {
	case RDV_REFUSED_UNKNOWN_ATTR: return "unknown_attribute";
	case RDV_REFUSED_BAD_REQUEST: return "bad_request";
	case RDV_REFUSED_SAME_ID: return "same_id";
	case RDV_REFUSED_FULL: return "full";
	case RDV_REFUSED_KEY: return "key";
	case RDV_REFUSED_BOUND: return "bound";
	case RDV_REFUSED_SIGNATURE: return "signature";
	default: return "?";
	}
}

int rdv_refusal_of(int registry_result)
{
	switch (registry_result) {
	case REG_ERR_SAME_ID: return RDV_REFUSED_SAME_ID;
	case REG_ERR_FULL: return RDV_REFUSED_FULL;
	case REG_ERR_KEY: return RDV_REFUSED_KEY;
	default: return RDV_REFUSED_BAD_REQUEST;
	}
}

/* RFC 8489 9.2's Stale Nonce, as a return-routability check: every client
 * gets one before its first registration, so it is no error. */
void rdv_log_challenge(const struct sockaddr *from)
{
	char a[ADDR_STRLEN];

	log_debug("Step 2: nonce challenge (438) to %s",
	          addr_str(from, a, sizeof(a)));
}

void rdv_log_registered(const struct punch_peer *p,
                        const struct sockaddr *from,
                        const struct sockaddr *was, enum rdv_reg_kind kind)
{
	char a[ADDR_STRLEN], b[ADDR_STRLEN];

	if (log_threshold < LOG_EVENT)
		return;
	addr_str(from, a, sizeof(a));
	switch (kind) {
	case RDV_REG_NEW:
		log_event("Step 2: %s registered from %s, looking for %s (%zu candidate%s)",
		          p->id, a, p->peer_id, p->n_cand,
		          p->n_cand == 1 ? "" : "s");
		break;
	case RDV_REG_RESTART:
		log_event("Step 2: %s registered again from %s, looking for %s (%zu candidate%s; it restarted)",
		          p->id, a, p->peer_id, p->n_cand,
		          p->n_cand == 1 ? "" : "s");
		break;
	case RDV_REG_MOVED:
		log_event("%s now comes from %s (was %s): its NAT gave it a new mapping",
		          p->id, a, addr_str(was, b, sizeof(b)));
		break;
	case RDV_REG_REFRESH:
		log_debug("%s refreshed its registration from %s", p->id, a);
		break;
	}
}

void rdv_log_waiting(const struct punch_peer *p)
{
	log_event("Step 3: %s is ready; waiting for %s", p->id, p->peer_id);
}

void rdv_log_introduced(const struct reg_entry *a, const struct reg_entry *b)
{
	char x[ADDR_STRLEN], y[ADDR_STRLEN];
	struct sockaddr_storage fa, fb;

	if (log_threshold < LOG_EVENT)
		return;
	registry_entry_from(a, &fa);
	registry_entry_from(b, &fb);
	log_event("Step 4: introduced %s at %s and %s at %s: each gets the other's candidates and address (PEER-INFO)",
	          registry_entry_id(a),
	          addr_str((const struct sockaddr *)&fa, x, sizeof(x)),
	          registry_entry_id(b),
	          addr_str((const struct sockaddr *)&fb, y, sizeof(y)));
}

void rdv_log_refused(const char *id, const char *peer_id,
                     const struct sockaddr *from, unsigned code,
                     const char *reason)
{
	char a[ADDR_STRLEN];

	if (log_threshold < LOG_EVENT)
		return;
	addr_str(from, a, sizeof(a));
	if (id[0] && peer_id[0])
		log_event("refused %s (looking for %s) from %s: %u %s", id,
		          peer_id, a, code, reason);
	else
		log_event("refused a registration from %s: %u %s", a, code,
		          reason);
}

void rdv_log_expired(const struct reg_entry *e)
{
	log_event("%s's registration expired: no refresh for %d s",
	          registry_entry_id(e),
	          REGISTRY_LIFETIME_MS / 1000);
}

void rdv_log_peer_info_acked(const char *to_id)
{
	log_debug("Step 4: %s acknowledged its peer info", to_id);
}

void rdv_log_peer_info_gave_up(const char *to_id, int tries)
{
	log_event("Step 4: %s did not acknowledge its peer info (%d tries); it may have gone",
	          to_id, tries);
}
