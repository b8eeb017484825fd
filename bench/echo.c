/*
 * echo.c - the least a UDP server can do: recvmmsg a batch, sendmmsg it back.
 *
 * It answers every datagram with itself, on one thread, so that
 * `stun_loadgen -e` against it shows the ceiling of this machine's loopback
 * for the STUN benchmark: a STUN server cannot beat it. Stops on SIGINT or
 * SIGTERM, or by itself after -t seconds.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "hostport.h"

#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum {
	ECHO_BUF = 2048,
	ECHO_DEFAULT_BATCH = 64,
	ECHO_MAX_BATCH = 1024,
	ECHO_DEFAULT_LIFETIME_S = 600,
	ECHO_SOCK_BUF_BYTES = 4 << 20,
	ECHO_WAKE_MS = 200, /* how often a blocked receive looks at the clock */
};

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: stun_echo -l HOST:PORT [-b BATCH] [-t SECONDS]\n"
	           "  -l  address to listen on, IPv4 or [IPv6] with port (required)\n"
	           "  -b  datagrams per recvmmsg/sendmmsg (default %d, at most %d)\n"
	           "  -t  exit after this many seconds (default %d)\n",
	        ECHO_DEFAULT_BATCH, ECHO_MAX_BATCH, ECHO_DEFAULT_LIFETIME_S);
}

static long parse_num(const char *arg, char opt, long lo, long hi)
{
	char *end;
	errno = 0;
	long v = strtol(arg, &end, 10);
	if (errno || *arg == '\0' || *end != '\0' || v < lo || v > hi) {
		fprintf(stderr, "stun_echo: -%c must be a number from %ld to %ld\n", opt, lo, hi);
		exit(2);
	}
	return v;
}

static int echo_open(const struct sockaddr_storage *addr, socklen_t len)
{
	int fd = socket(addr->ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int size = ECHO_SOCK_BUF_BYTES;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	struct timeval tv = { .tv_sec = 0, .tv_usec = ECHO_WAKE_MS * 1000 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (bind(fd, (const struct sockaddr *)addr, len) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

int main(int argc, char **argv)
{
	const char *listen_text = NULL;
	long batch = ECHO_DEFAULT_BATCH, lifetime = ECHO_DEFAULT_LIFETIME_S;
	int c;

	while ((c = getopt(argc, argv, "l:b:t:h")) != -1) {
		switch (c) {
		case 'l': listen_text = optarg; break;
		case 'b': batch = parse_num(optarg, 'b', 1, ECHO_MAX_BATCH); break;
		case 't': lifetime = parse_num(optarg, 't', 1, 86400); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (listen_text == NULL || optind != argc) {
		usage(stderr);
		return 2;
	}
	struct sockaddr_storage addr;
	socklen_t addrlen;
	char err[160];
	if (hostport_parse(listen_text, &addr, &addrlen, err, sizeof(err)) < 0) {
		fprintf(stderr, "stun_echo: bad -l %s\n", err);
		return 2;
	}
	int fd = echo_open(&addr, addrlen);
	if (fd < 0) {
		fprintf(stderr, "stun_echo: cannot listen on %s: %s\n", listen_text, strerror(errno));
		return 2;
	}

	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	static uint8_t bufs[ECHO_MAX_BATCH][ECHO_BUF];
	static struct sockaddr_storage peers[ECHO_MAX_BATCH];
	static struct iovec iov[ECHO_MAX_BATCH];
	static struct mmsghdr msgs[ECHO_MAX_BATCH];
	time_t end = time(NULL) + lifetime;
	unsigned long long echoed = 0;
	int rc = 0;

	while (!stop_requested && time(NULL) < end) {
		for (long i = 0; i < batch; i++) {
			iov[i] = (struct iovec){ .iov_base = bufs[i], .iov_len = ECHO_BUF };
			msgs[i].msg_hdr = (struct msghdr){
				.msg_name = &peers[i],
				.msg_namelen = sizeof(peers[i]),
				.msg_iov = &iov[i],
				.msg_iovlen = 1,
			};
		}
		/* Block for the first datagram, then take whatever else is queued. */
		int n = recvmmsg(fd, msgs, (unsigned)batch, MSG_WAITFORONE, NULL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				continue;
			perror("stun_echo: recvmmsg");
			rc = 1;
			break;
		}
		for (int i = 0; i < n; i++)
			iov[i].iov_len = msgs[i].msg_len;
		int done = 0;
		while (done < n) {
			int k = sendmmsg(fd, msgs + done, (unsigned)(n - done), 0);
			if (k < 0) {
				if (errno == EINTR)
					continue;
				break; /* a peer gone away; drop the rest of the batch */
			}
			done += k;
		}
		echoed += (unsigned long long)done;
	}
	fprintf(stderr, "stun_echo: echoed %llu datagrams\n", echoed);
	close(fd);
	return rc;
}
