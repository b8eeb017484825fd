/*
 * The rendezvous server's story: one line per event, worded after the
 * task's steps, so that the server's pane reads beside the clients'
 * "Step N:" lines.  Events go out at LOG_EVENT (`punch server -log info`);
 * what happens on every packet (challenges, refreshes, acknowledgements)
 * at LOG_DEBUG (`-log debug`, `-v`).  Formatting only: the counting stays
 * in rendezvous_server.c.
 */
#ifndef PUNCH_RENDEZVOUS_LOG_H
#define PUNCH_RENDEZVOUS_LOG_H

#include <stdint.h>
#include <sys/socket.h>

#include "punch_attr.h"
#include "registry.h"

/* Why a REGISTER was refused; rdv_stats counts each. */
enum rdv_refusal {
	RDV_REFUSED_UNKNOWN_ATTR = 0, /* 420 */
	RDV_REFUSED_BAD_REQUEST,      /* 400: attributes missing or malformed */
	RDV_REFUSED_SAME_ID,          /* 400: id and peer id are the same */
	RDV_REFUSED_FULL,             /* 508: no room, in all or for this IP */
	RDV_REFUSED_KEY,              /* 403: the id is live with another key */
	RDV_REFUSED_BOUND,            /* 403: the id is bound to another key */
	RDV_REFUSED_SIGNATURE,        /* 401: no or a bad signature */
	RDV_REFUSED_N,
};

/* A short name for counters: "unknown_attribute", "full", ... */
const char *rdv_refusal_name(int refusal);
int rdv_refusal_of(int registry_result);

enum rdv_reg_kind {
	RDV_REG_NEW,      /* not registered before */
	RDV_REG_RESTART,  /* registered, now with a new session */
	RDV_REG_MOVED,    /* same session, seen from a new address */
	RDV_REG_REFRESH,  /* same session, same address */
};

void rdv_log_challenge(const struct sockaddr *from);
void rdv_log_registered(const struct punch_peer *p,
                        const struct sockaddr *from,
                        const struct sockaddr *was, enum rdv_reg_kind kind);
void rdv_log_waiting(const struct punch_peer *p);
void rdv_log_introduced(const struct reg_entry *a, const struct reg_entry *b);
/* id and peer_id may be empty (the request did not parse). */
void rdv_log_refused(const char *id, const char *peer_id,
                     const struct sockaddr *from, unsigned code,
                     const char *reason);
void rdv_log_expired(const struct reg_entry *e);
void rdv_log_peer_info_acked(const char *to_id);
void rdv_log_peer_info_gave_up(const char *to_id, int tries);

#endif
