/*
 * regload.c - registration load generator for punch's rendezvous server.
 *
 * Registers N ids the way real clients do, through the project's own
 * rendezvous client (src/rendezvous_client.c): signed REGISTERs (Ed25519,
 * PUNCH-PUBKEY and PUNCH-SIGNATURE), the server's address-bound NONCE
 * (learned from its 438, once per source address), the server's key pinned
 * on first use and every answer's signature checked, and each PEER-INFO
 * answered.  Ids come in pairs that look for each other (2k and 2k+1), so
 * every second registration makes an introduction.
 *
 * Sources: the server's limits are per /24 (REGISTRY_PER_PREFIX_MAX
 * registrations, a token bucket of REGISTRY_RATE_BURST REGISTERs), so each
 * group of -g ids (default 16) has a UDP socket of its own on its own /24
 * of 127.0.0.0/8 (127.X.Y.1; Linux routes all of 127/8 to lo), which is
 * what many clients behind many NATs look like.  Only the first pair of a
 * group starts at once; the rest start when the group has the server's
 * NONCE, so a group sends -g + 2 REGISTERs in all, within the bucket's
 * burst.
 *
 * At most -w ids are in flight at once.  An id is done when it is
 * registered and has its PEER-INFO (or, for an id whose peer failed, 5 s
 * after registering).  It prints one line at the end:
 *
 *   regload: ids=N registered=R introduced=I failed=F secs=S
 *     reg_per_s=... intro_per_s=... [server_cpu_us_per_reg=...
 *     server_rss_bytes_per_reg=...]
 *
 * introduced counts ids that got their PEER-INFO (two per introduction);
 * intro_per_s is introductions (pairs) per second.  With -P PID (the
 * server's), the server's CPU time and resident memory are read from
 * /proc before and after: CPU per registration, and the growth of its
 * resident set per registration held (registrations live 30 s after their
 * last refresh, and there are no refreshes here, so the run must be
 * shorter than that for "held" to mean all of them: -d bounds it).
 *
 * With -r ROUNDS, ids are kept once done, and then each is refreshed
 * ROUNDS times the way the client does it once the server gave it a key:
 * RENEW, a MAC and no signature (docs/protocol.md, "RENEW").  A round
 * starts every RENEW_GAP_MS, so that each /24's REGISTER bucket (a burst
 * of 20, then 5 a second) has room for its 16 again.  The registration
 * phase and the RENEW phase are timed and measured apart:
 *
 *   regload: ... renewed=N renew_secs=S renew_per_s=...
 *     server_cpu_us_per_renew=...
 *
 * and server_cpu_us_per_reg then counts the registration phase alone,
 * less the RENEWs ids made on their own in it (a third of the lifetime
 * after registering), at the RENEW phase's cost each.
 *
 * Exit: 0, or 1 if any id failed, or 2 on a usage or setup error.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "hostport.h"
#include "punch_attr.h"
#include "rendezvous_client.h"
#include "sign.h"
#include "stun.h"

enum {
	GROUP_MAX = 32,          /* ids per source /24, at most */
	KEYS_MAX = 4096,
	DONE_WAIT_MS = 5000,     /* registered, but the peer never came */
	TICK_MS = 5,
	BATCH = 64,              /* datagrams read per recvmmsg */
	RENEW_GAP_MS = 3600,     /* a /24's 16 tokens come back in 3.2 s */
	RENEW_WAIT_MS = 3000,    /* for a round's answers, at most */
	ROUNDS_MAX = 1000,
};

struct lg_id {
	struct rdv_client rc;
	uint32_t idx;
	int registered, introduced;
	int kept;                /* -r: done, and kept for the RENEWs */
	uint64_t registered_ms;
};

struct lg_group {
	int fd;
	uint32_t started;        /* ids of the group started so far */
	uint32_t retired;        /* and freed: all of them, its socket goes */
	char nonce[RDVC_NONCE_MAX + 1];
	struct lg_id *live[GROUP_MAX];
};

struct lg {
	struct sockaddr_storage server;
	uint32_t n_ids, group, window, n_groups, opened, first_live;
	struct lg_group *groups;
	struct sign_key *keys;
	uint32_t n_keys;
	uint32_t *ready;         /* groups with a nonce and ids to start */
	uint32_t ready_head, ready_tail;
	uint32_t active;
	uint64_t registered, introduced, failed, done;
	uint64_t renewed, renewed_early; /* RENEWs answered; before -r's */
	uint64_t renews_sent;
	uint32_t rounds;
	int keep;                /* -r: ids stay once done */
	int ep;
};

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct lg *g_lg; /* the callbacks' context: one run per process */

static void id_name(uint32_t idx, char *out, size_t len)
{
	snprintf(out, len, "lg%08u", idx);
}

static void lg_send(void *ctx, const struct sockaddr *to, const uint8_t *buf,
                    size_t len)
{
	struct lg_id *id = ctx;
	struct lg_group *gr = &g_lg->groups[id->idx / g_lg->group];

	(void)sendto(gr->fd, buf, len, 0, to,
	             to->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) :
	                                         sizeof(struct sockaddr_in));
}

static void lg_event(void *ctx, int event, const void *arg)
{
	struct lg_id *id = ctx;
	struct lg_group *gr = &g_lg->groups[id->idx / g_lg->group];

	(void)arg;
	switch (event) {
	case RDVC_EV_REGISTERED:
		if (id->registered && id->rc.method == PUNCH_RENEW)
			g_lg->renewed++;
		if (id->registered)
			break;
		id->registered = 1;
		id->registered_ms = mono_ms();
		g_lg->registered++;
		if (!gr->nonce[0] && id->rc.nonce[0]) {
			memcpy(gr->nonce, id->rc.nonce, sizeof(gr->nonce));
			if (gr->started < g_lg->group &&
			    id->idx / g_lg->group * g_lg->group + gr->started <
			            g_lg->n_ids)
				g_lg->ready[g_lg->ready_tail++ % g_lg->n_groups] =
					id->idx / g_lg->group;
		}
		break;
	case RDVC_EV_PEER_INFO:
		if (!id->introduced) {
			id->introduced = 1;
			g_lg->introduced++;
		}
		break;
	case RDVC_EV_REFUSED:
		if (g_lg->failed < 3)
			fprintf(stderr, "regload: lg%08u refused: %s\n", id->idx,
			        (const char *)arg);
		id->registered = -1; /* failed: retired on the next pass */
		break;
	case RDVC_EV_UNREACHABLE:
	case RDVC_EV_SERVER_KEY_CHANGED:
		if (g_lg->failed < 3)
			fprintf(stderr, "regload: lg%08u: %s\n", id->idx,
			        event == RDVC_EV_UNREACHABLE ? "no answer" :
			                                       "the server's key changed");
		id->registered = -1; /* failed: retired on the next pass */
		break;
	default:
		break;
	}
}

static int group_open(struct lg *lg, uint32_t g)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = g };
	struct lg_group *gr = &lg->groups[g];
	int rcvbuf = 1 << 20;

	/* 127.X.Y.1, X from 1: /24s of their own, never 127.0.0.0/24. */
	a.sin_addr.s_addr = htonl(0x7f000001u + ((g + 256) << 8));
	gr->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	if (gr->fd < 0 || bind(gr->fd, (struct sockaddr *)&a, sizeof(a)) ||
	    epoll_ctl(lg->ep, EPOLL_CTL_ADD, gr->fd, &ev)) {
		fprintf(stderr, "regload: socket for group %u: %s\n", g,
		        strerror(errno));
		return -1;
	}
	(void)setsockopt(gr->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	return 0;
}

static int id_start(struct lg *lg, uint32_t g, uint64_t now)
{
	struct lg_group *gr = &lg->groups[g];
	uint32_t slot = gr->started++, idx = g * lg->group + slot;
	struct punch_peer self;
	struct lg_id *id = calloc(1, sizeof(*id));
	struct sockaddr_in host = { .sin_family = AF_INET };
	socklen_t hl = sizeof(host);

	if (!id)
		return -1;
	memset(&self, 0, sizeof(self));
	id_name(idx, self.id, sizeof(self.id));
	id_name(idx ^ 1, self.peer_id, sizeof(self.peer_id));
	snprintf(self.ufrag, sizeof(self.ufrag), "u%07u", idx);
	snprintf(self.pwd, sizeof(self.pwd), "p%023u", idx);
	self.session = ((uint64_t)rand() << 32) ^ (uint64_t)rand() ^ idx;
	getsockname(gr->fd, (struct sockaddr *)&host, &hl);
	self.cand[0].type = CAND_HOST;
	self.cand[0].priority = 2130706431u;
	memcpy(&self.cand[0].addr, &host, sizeof(host));
	self.n_cand = 1;
	id->idx = idx;
	rdvc_init(&id->rc, (struct sockaddr *)&lg->server, &self, lg_send,
	          lg_event, id);
	rdvc_set_key(&id->rc, &lg->keys[idx % lg->n_keys]);
	memcpy(id->rc.nonce, gr->nonce, sizeof(gr->nonce));
	gr->live[slot] = id;
	lg->active++;
	rdvc_register(&id->rc, now);
	return 0;
}

/* Start ids while the window has room: first the rest of groups that have
 * their nonce, then the first id of a new group. */
static int fill(struct lg *lg, uint64_t now)
{
	while (lg->active < lg->window) {
		if (lg->ready_head != lg->ready_tail) {
			uint32_t g = lg->ready[lg->ready_head % lg->n_groups];
			struct lg_group *gr = &lg->groups[g];

			if (gr->started >= lg->group ||
			    g * lg->group + gr->started >= lg->n_ids) {
				lg->ready_head++;
				continue;
			}
			if (id_start(lg, g, now))
				return -1;
			continue;
		}
		/* A new group's first pair starts together (the second one
		 * without the nonce: one 438 more), so that no id waits for a
		 * peer that has no room in the window. */
		if (lg->opened >= lg->n_groups || lg->active + 2 > lg->window)
			break;
		if (group_open(lg, lg->opened) || id_start(lg, lg->opened, now) ||
		    (lg->opened * lg->group + 1 < lg->n_ids &&
		     id_start(lg, lg->opened, now)))
			return -1;
		lg->opened++;
	}
	return 0;
}

/* A group whose ids are all done gives its socket back: the open files
 * limit (often 20,000 or less) then bounds the groups in flight, not the
 * groups of a run of 1,000,000 ids. */
static void group_close(struct lg *lg, struct lg_group *gr)
{
	uint32_t g = (uint32_t)(gr - lg->groups), size = lg->group;

	if (g * lg->group + size > lg->n_ids)
		size = lg->n_ids - g * lg->group;
	if (++gr->retired < size || gr->fd < 0)
		return;
	epoll_ctl(lg->ep, EPOLL_CTL_DEL, gr->fd, NULL);
	close(gr->fd);
	gr->fd = -1;
}

static void retire(struct lg *lg, struct lg_group *gr, uint32_t slot,
                   uint64_t now)
{
	struct lg_id *id = gr->live[slot];

	if (!id || (id->kept && id->registered >= 0))
		return;
	if (id->kept) { /* refused in the RENEW phase */
		lg->failed++;
		gr->live[slot] = NULL;
		free(id);
		return;
	}
	if (id->registered < 0 ||
	    (id->registered && !id->introduced &&
	     now > id->registered_ms + DONE_WAIT_MS))
		lg->failed++;
	else if (!(id->registered && id->introduced))
		return;
	if (lg->keep && id->registered > 0 && id->introduced) {
		id->kept = 1;
		lg->active--;
		lg->done++;
		return;
	}
	gr->live[slot] = NULL;
	free(id);
	lg->active--;
	lg->done++;
	group_close(lg, gr);
}

/* One -r round: a RENEW from every kept id that is not waiting on
 * another answer.  Returns how many were sent. */
static uint64_t renew_round(struct lg *lg, uint64_t now)
{
	uint64_t n = 0;

	for (uint32_t g = 0; g < lg->opened; g++)
		for (uint32_t s = 0; s < lg->group; s++) {
			struct lg_id *id = lg->groups[g].live[s];

			if (!id || !id->kept || id->registered < 0 || id->rc.busy ||
			    !id->rc.has_renew_key)
				continue;
			rdvc_refresh(&id->rc, now);
			n++;
		}
	return n;
}

static void on_datagram(struct lg *lg, uint32_t g, const uint8_t *buf,
                        size_t len, uint64_t now)
{
	struct lg_group *gr = &lg->groups[g];
	struct stun_msg m;

	if (stun_decode(&m, buf, len) != STUN_OK)
		return;
	if (m.cls == STUN_REQUEST && m.method == PUNCH_PEER_INFO) {
		/* It describes the peer: it is for the peer's pair. */
		struct punch_peer p;
		const char *why;
		unsigned idx;

		if (punch_peer_parse(&p, &m, &why) ||
		    sscanf(p.id, "lg%8u", &idx) != 1 || !(idx ^= 1, 1) ||
		    idx / lg->group != g || !gr->live[idx % lg->group])
			return;
		rdvc_on_stun(&gr->live[idx % lg->group]->rc, buf, len, &m, now);
		return;
	}
	for (uint32_t s = 0; s < lg->group; s++)
		if (gr->live[s] &&
		    rdvc_on_stun(&gr->live[s]->rc, buf, len, &m, now))
			return;
}

static void read_group(struct lg *lg, uint32_t g, uint64_t now)
{
	static uint8_t bufs[BATCH][1500];
	struct mmsghdr mh[BATCH];
	struct iovec iov[BATCH];
	int n;

	memset(mh, 0, sizeof(mh));
	for (int i = 0; i < BATCH; i++) {
		iov[i].iov_base = bufs[i];
		iov[i].iov_len = sizeof(bufs[i]);
		mh[i].msg_hdr.msg_iov = &iov[i];
		mh[i].msg_hdr.msg_iovlen = 1;
	}
	while ((n = recvmmsg(lg->groups[g].fd, mh, BATCH, MSG_DONTWAIT,
	                     NULL)) > 0)
		for (int i = 0; i < n; i++)
			on_datagram(lg, g, bufs[i], mh[i].msg_len, now);
}

static void tick_all(struct lg *lg, uint64_t now)
{
	/* groups finish about in the order they opened: skip the closed
	 * ones at the front, not to walk a million ids every tick */
	while (lg->first_live < lg->opened && lg->groups[lg->first_live].fd < 0)
		lg->first_live++;
	for (uint32_t g = lg->first_live; g < lg->opened; g++) {
		struct lg_group *gr = &lg->groups[g];

		if (gr->fd < 0)
			continue;
		for (uint32_t s = 0; s < lg->group; s++) {
			if (!gr->live[s])
				continue;
			rdvc_tick(&gr->live[s]->rc, now);
			retire(lg, gr, s, now);
		}
	}
}

/* utime + stime of pid, in seconds, and its resident set in bytes. */
static int proc_usage(long pid, double *cpu_s, double *rss)
{
	char path[64], line[1024], *p;
	unsigned long ut, st;
	long pages;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	if (!(f = fopen(path, "r")))
		return -1;
	p = fgets(line, sizeof(line), f);
	fclose(f);
	if (!p || !(p = strrchr(line, ')')) ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
	           &ut, &st) != 2)
		return -1;
	snprintf(path, sizeof(path), "/proc/%ld/statm", pid);
	if (!(f = fopen(path, "r")))
		return -1;
	if (fscanf(f, "%*d %ld", &pages) != 1)
		pages = 0;
	fclose(f);
	*cpu_s = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
	*rss = (double)pages * (double)sysconf(_SC_PAGESIZE);
	return 0;
}

static const char usage[] =
	"usage: regload -s HOST:PORT [-n IDS] [-w WINDOW] [-g PER_24] [-k KEYS]\n"
	"               [-d SECONDS] [-r ROUNDS] [-P SERVER_PID]\n";

/* Read the datagrams of one wait and tick every id: one step of a phase. */
static void step(struct lg *lg, uint64_t *last_tick)
{
	struct epoll_event ev[256];
	uint64_t now;
	int n = epoll_wait(lg->ep, ev, 256, TICK_MS);

	now = mono_ms();
	for (int i = 0; i < n; i++)
		read_group(lg, ev[i].data.u32, now);
	if (now - *last_tick >= TICK_MS) {
		tick_all(lg, now);
		*last_tick = now;
	}
}

/* The registration phase: every id registered and introduced, or the
 * time is up.  0, or 2 on a setup error. */
static int run_register(struct lg *lg, double limit_s)
{
	double t0 = mono_s();
	uint64_t last_tick = 0;

	while (lg->done < lg->n_ids && mono_s() - t0 < limit_s) {
		if (fill(lg, mono_ms()))
			return 2;
		step(lg, &last_tick);
	}
	return 0;
}

/* -r: rounds of RENEWs, RENEW_GAP_MS apart; each round waits for its
 * answers (RENEW_WAIT_MS at most).  Returns the RENEWs answered. */
static uint64_t run_renew(struct lg *lg)
{
	uint64_t before = lg->renewed, last_tick = 0;

	for (uint32_t r = 0; r < lg->rounds; r++) {
		uint64_t start = mono_ms(), want;

		want = lg->renewed + renew_round(lg, start);
		while (lg->renewed < want && mono_ms() < start + RENEW_WAIT_MS)
			step(lg, &last_tick);
		while (r + 1 < lg->rounds && mono_ms() < start + RENEW_GAP_MS)
			step(lg, &last_tick);
	}
	return lg->renewed - before;
}

static int parse_args(struct lg *lg, int argc, char **argv, double *limit_s,
                      long *pid)
{
	socklen_t sl;
	char err[128];
	int c;

	while ((c = getopt(argc, argv, "s:n:w:g:k:d:r:P:")) != -1) {
		switch (c) {
		case 's':
			if (hostport_parse(optarg, &lg->server, &sl, err, sizeof(err))) {
				fprintf(stderr, "regload: -s: %s\n", err);
				return 2;
			}
			break;
		case 'n': lg->n_ids = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'w': lg->window = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'g': lg->group = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'k': lg->n_keys = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'd': *limit_s = strtod(optarg, NULL); break;
		case 'r': lg->rounds = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'P': *pid = strtol(optarg, NULL, 10); break;
		default: fputs(usage, stderr); return 2;
		}
	}
	if (!lg->server.ss_family || !lg->n_ids || !lg->window ||
	    lg->group < 2 || lg->group > GROUP_MAX || lg->group % 2 ||
	    !lg->n_keys || lg->n_keys > KEYS_MAX || *limit_s <= 0 ||
	    lg->rounds > ROUNDS_MAX) {
		fputs(usage, stderr);
		fprintf(stderr, "regload: -g must be even, 2-%d; -k 1-%d; -r 0-%d\n",
		        GROUP_MAX, KEYS_MAX, ROUNDS_MAX);
		return 2;
	}
	lg->keep = lg->rounds > 0;
	lg->n_groups = (lg->n_ids + lg->group - 1) / lg->group;
	if (lg->n_groups > 65000) {
		fprintf(stderr, "regload: %u groups of -g %u: at most 65000 /24s in 127/8\n",
		        lg->n_groups, lg->group);
		return 2;
	}
	return 0;
}

static int setup(struct lg *lg)
{
	struct rlimit rl;

	/* as many sockets as groups, up to the hard limit (group_close()) */
	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl))
			fprintf(stderr, "regload: cannot raise the open files limit: %s\n",
			        strerror(errno));
	}
	lg->groups = calloc(lg->n_groups, sizeof(*lg->groups));
	lg->ready = calloc(lg->n_groups, sizeof(*lg->ready));
	lg->keys = calloc(lg->n_keys, sizeof(*lg->keys));
	lg->ep = epoll_create1(0);
	if (!lg->groups || !lg->ready || !lg->keys || lg->ep < 0)
		return 2;
	for (uint32_t k = 0; k < lg->n_keys; k++)
		if (sign_key_from_seed(&lg->keys[k], NULL))
			return 2;
	g_lg = lg;
	srand((unsigned)time(NULL));
	return 0;
}

int main(int argc, char **argv)
{
	struct lg lg = { .n_ids = 10000, .group = 16, .window = 2048, .n_keys = 256 };
	double limit_s = 25, t0, t1, t1r, t2 = 0, cpu0 = 0, cpu1 = 0, cpu2 = 0;
	double rss0 = 0, rss1 = 0, rss2 = 0, reg_cpu, renew_cpu = 0;
	uint64_t renewed = 0;
	long pid = 0;
	int rc;

	if ((rc = parse_args(&lg, argc, argv, &limit_s, &pid)) ||
	    (rc = setup(&lg)))
		return rc;
	if (pid && proc_usage(pid, &cpu0, &rss0)) {
		fprintf(stderr, "regload: cannot read /proc/%ld\n", pid);
		return 2;
	}
	t0 = mono_s();
	if ((rc = run_register(&lg, limit_s)))
		return rc;
	t1 = mono_s();
	if (lg.rounds) {
		/* the last /24s' buckets spent their burst on registering:
		 * let them fill (counted with the registrations, idle) */
		uint64_t last_tick = 0, t = mono_ms();

		while (mono_ms() < t + RENEW_GAP_MS)
			step(&lg, &last_tick);
	}
	if (pid)
		proc_usage(pid, &cpu1, &rss1);
	lg.renewed_early = lg.renewed;
	t1r = mono_s();
	if (lg.rounds) {
		renewed = run_renew(&lg);
		t2 = mono_s();
		if (pid)
			proc_usage(pid, &cpu2, &rss2);
		if (renewed)
			renew_cpu = (cpu2 - cpu1) / (double)renewed;
	}
	printf("regload: ids=%u registered=%llu introduced=%llu failed=%llu unfinished=%llu secs=%.2f reg_per_s=%.0f intro_per_s=%.0f",
	       lg.n_ids, (unsigned long long)lg.registered,
	       (unsigned long long)lg.introduced,
	       (unsigned long long)lg.failed,
	       (unsigned long long)(lg.n_ids - lg.done), t1 - t0,
	       (double)lg.registered / (t1 - t0),
	       (double)lg.introduced / 2 / (t1 - t0));
	/* RENEWs the ids made on their own during the registrations, at
	 * the RENEW phase's cost each (none without -r to measure it) */
	reg_cpu = cpu1 - cpu0 - renew_cpu * (double)lg.renewed_early;
	if (pid && lg.registered)
		printf(" server_cpu_us_per_reg=%.1f server_rss_bytes_per_reg=%.0f",
		       reg_cpu * 1e6 / (double)lg.registered,
		       (rss1 - rss0) / (double)lg.registered);
	if (lg.rounds)
		printf(" renewed=%llu renewed_early=%llu renew_secs=%.2f renew_per_s=%.0f",
		       (unsigned long long)renewed,
		       (unsigned long long)lg.renewed_early, t2 - t1r,
		       (double)renewed / (t2 - t1r));
	if (pid && renewed)
		printf(" server_cpu_us_per_renew=%.2f rss_growth_renew=%.0f",
		       renew_cpu * 1e6, rss2 - rss1);
	printf("\n");
	return lg.failed || lg.done < lg.n_ids ||
	                       (lg.rounds && !renewed) ?
	               1 :
	               0;
}
