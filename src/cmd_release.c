/*
 * punch release -server HOST:PORT -id ID: ask the server to drop the
 * binding of ID to this machine's key (docs/protocol.md, RELEASE), so that
 * another key may register ID.  Only the key that holds ID can do it.
 */
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "cmd.h"
#include "identity.h"
#include "known_servers.h"
#include "log.h"
#include "rendezvous_client.h"
#include "sign.h"

static const char usage[] =
	"usage: punch release -server HOST:PORT -id ID [-server-key SHA256:...] [-v]\n"
	"\n"
	"Ask the server to forget that ID belongs to this machine's key (see\n"
	"'punch id'), so that another key may register it. The request is signed;\n"
	"the server refuses it from any other key. The server's key is checked\n"
	"as punch chat checks it: -server-key, else known_servers.\n";

struct release {
	const char *server_name;
	const char *dir;
	int line;           /* known_servers line of the pinned key */
	int from_flag;      /* pinned by -server-key */
	int fd;
	int done, rc;
};

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void rel_send(void *ctx, const struct sockaddr *to, const uint8_t *buf,
                     size_t len)
{
	const struct release *r = ctx;

	if (sendto(r->fd, buf, len, 0, to, addr_len(to)) < 0)
		log_debug("sendto: failed");
}

static void rel_event(void *ctx, int event, const void *arg)
{
	struct release *r = ctx;
	char fps[IDENTITY_FP_STRLEN];

	switch (event) {
	case RDVC_EV_RELEASED:
		r->done = 1;
		r->rc = 0;
		break;
	case RDVC_EV_REFUSED:
		fprintf(stderr, "punch release: the server refused: %s\n",
		        (const char *)arg);
		r->done = 1;
		r->rc = 1;
		break;
	case RDVC_EV_UNREACHABLE:
		fprintf(stderr, "punch release: cannot reach %s (no answer after %d tries); check -server\n",
		        r->server_name, RTX_RC);
		r->done = 1;
		r->rc = 1;
		break;
	case RDVC_EV_SERVER_KEY:
		identity_fp_str(arg, fps);
		if (known_servers_add(r->dir, r->server_name, arg))
			fprintf(stderr, "punch release: cannot write %s/known_servers\n", r->dir);
		fprintf(stderr, "Server key %s is new; remembered for %s in %s/known_servers\n",
		        fps, r->server_name, r->dir);
		break;
	case RDVC_EV_SERVER_KEY_CHANGED:
		identity_fp_str(arg, fps);
		if (r->from_flag)
			fprintf(stderr, "punch release: the server %s signs with key %s, not the pinned -server-key\n",
			        r->server_name, fps);
		else
			fprintf(stderr, "punch release: the server %s now signs with key %s, but %s/known_servers line %d has another; if that is expected, edit or delete line %d\n",
			        r->server_name, fps, r->dir, r->line, r->line);
		r->done = 1;
		r->rc = 1;
		break;
	}
}

/* Send the RELEASE and wait for its answer; bounded by the RFC 8489
 * retransmission schedule (about 40 s without an answer). */
static void rel_run(struct rdv_client *rc, struct release *r, int fd)
{
	uint8_t buf[2048];
	struct stun_msg m;

	rdvc_release(rc, mono_ms());
	for (int rounds = 0; !r->done && rounds < 10000; rounds++) {
		uint64_t now = mono_ms(), next = rdvc_tick(rc, now);
		struct pollfd p = { .fd = fd, .events = POLLIN };
		struct sockaddr_storage from;
		socklen_t flen = sizeof(from);
		ssize_t n;

		if (r->done)
			break;
		if (poll(&p, 1, next > now ? (int)(next - now < 1000 ? next - now : 1000) : 0) <= 0)
			continue;
		n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &flen);
		if (n <= 0 || !addr_equal((struct sockaddr *)&from, (struct sockaddr *)&rc->server) ||
		    stun_decode(&m, buf, (size_t)n) != STUN_OK)
			continue;
		rdvc_on_stun(rc, buf, (size_t)n, &m, mono_ms());
	}
}

int cmd_release(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "server", required_argument, NULL, 's' },
		{ "id", required_argument, NULL, 'i' },
		{ "server-key", required_argument, NULL, 'K' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct release r = { .rc = 1 };
	struct punch_peer self = { 0 };
	struct sockaddr_storage server;
	struct identity id;
	struct sign_key key;
	struct rdv_client rc;
	uint8_t pin[IDENTITY_FP_LEN];
	const char *server_name = NULL, *err, *why;
	char ebuf[256];
	int c, has_pin = 0, fd;

	optind = 1;
	while ((c = getopt_long_only(argc, argv, "vh", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			server_name = optarg;
			break;
		case 'i':
			if ((why = punch_id_check((const uint8_t *)optarg, strlen(optarg))))
				return cmd_bad("release", "bad -id '%s': %s", optarg, why);
			snprintf(self.id, sizeof(self.id), "%s", optarg);
			break;
		case 'K':
			if (identity_fp_parse(optarg, pin))
				return cmd_bad("release", "-server-key wants a fingerprint as 'punch server -print-key' prints it (SHA256:...), got '%s'", optarg);
			has_pin = 1;
			break;
		case 'v':
			log_set_level(LOG_DEBUG);
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		default:
			return cmd_bad("release", "unknown option");
		}
	}
	if (optind < argc)
		return cmd_bad("release", "unexpected argument '%s'", argv[optind]);
	if (!server_name || !self.id[0])
		return cmd_bad("release", "both -server HOST:PORT and -id are required");
	if (addr_resolve(&server, server_name, AF_UNSPEC, &err))
		return cmd_bad("release", "bad -server '%s': %s", server_name, err);
	if (identity_load(&id, ebuf, sizeof(ebuf))) {
		fprintf(stderr, "punch release: %s\n", ebuf);
		return 1;
	}
	if (sign_key_from_x509(&key, id.key)) {
		fprintf(stderr, "punch release: cannot use the identity key in %s\n", id.dir);
		identity_free(&id);
		return 1;
	}
	r.server_name = server_name;
	r.dir = id.dir;
	fd = r.fd = socket(server.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	rdvc_init(&rc, (struct sockaddr *)&server, &self, rel_send, rel_event, &r);
	rdvc_set_key(&rc, &key);
	if (has_pin) {
		r.from_flag = 1;
		rdvc_pin_server(&rc, pin);
	} else if (known_servers_check(id.dir, server_name, pin, &r.line) ==
	           KNOWN_SERVER_FOUND) {
		rdvc_pin_server(&rc, pin);
	}
	if (fd < 0)
		fprintf(stderr, "punch release: cannot open a UDP socket\n");
	else
		rel_run(&rc, &r, fd);
	if (r.done && r.rc == 0)
		printf("Released %s: another key may now register it\n", self.id);
	if (fd >= 0)
		close(fd);
	sign_key_wipe(&key);
	identity_free(&id);
	return r.rc;
}
