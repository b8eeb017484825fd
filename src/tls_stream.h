/*
 * TLS (GnuTLS) over a byte stream that someone else reads and writes: the
 * client's connection to its server (server_conn.c) and the server's TLS
 * listener (server_tcp.c).  No sockets here: ciphertext read from the
 * socket goes in with tls_stream_give(), plaintext comes out of
 * tls_stream_recv(); plaintext goes in with tls_stream_send(), and the
 * ciphertext it makes leaves through the owner's push callback, which
 * must take it all (queue what the socket cannot take at once).
 *
 * The client checks the server's certificate against the CA file it is
 * given (-tls-ca), or the system's trusted CAs, and against the server's
 * name: a DNS name (also sent as SNI, RFC 6066 3) or an IP address, which
 * must then be one of the certificate's IP address SANs.
 */
#ifndef PUNCH_TLS_STREAM_H
#define PUNCH_TLS_STREAM_H

#include <gnutls/gnutls.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum {
	TLS_STREAM_REASON_MAX = 512,
	TLS_STREAM_HOST_MAX = 255,
	/* tls_stream_recv() rounds per tls_stream_give(), at most: each
	 * takes a record or ends it (a read of at most 64 KiB of
	 * ciphertext holds at most 64 KiB / 22 bytes of records). */
	TLS_STREAM_ROUNDS_MAX = 4096,
};

/* Ciphertext to write; 0, or -1 when the stream is broken. */
typedef int tls_push_fn(void *ctx, const uint8_t *buf, size_t len);

struct tls_stream {
	gnutls_session_t s;
	int is_client;
	int ready;               /* handshake done */
	int failed;
	const uint8_t *in;       /* ciphertext given, not yet taken */
	size_t in_len;
	tls_push_fn *push;
	void *ctx;
	char host[TLS_STREAM_HOST_MAX + 1];
	char reason[TLS_STREAM_REASON_MAX];
};

/* Credentials.  The client's trust the CA file ca (PEM), or the system's
 * CAs when ca is NULL; the server's hold its certificate chain and key
 * (PEM files).  0, or -1 with a sentence in why. */
int tls_cred_client(gnutls_certificate_credentials_t *cred, const char *ca,
                    char *why, size_t why_len);
int tls_cred_server(gnutls_certificate_credentials_t *cred, const char *cert,
                    const char *key, char *why, size_t why_len);

/* A session; host: the server's name or IP address (client only).  0, or
 * -1 with t->reason. */
int tls_stream_client(struct tls_stream *t,
                      gnutls_certificate_credentials_t cred, const char *host,
                      tls_push_fn *push, void *ctx);
int tls_stream_server(struct tls_stream *t,
                      gnutls_certificate_credentials_t cred, tls_push_fn *push,
                      void *ctx);
/* Start the handshake (the client's first flight).  0, or -1. */
int tls_stream_start(struct tls_stream *t);
/* Ciphertext read from the socket, valid until the tls_stream_recv()
 * calls after it have returned 0 or less. */
void tls_stream_give(struct tls_stream *t, const uint8_t *buf, size_t len);
/* The handshake, then plaintext: > 0 bytes put in buf, 0 when nothing more
 * can be had from what was given, -1 when the stream is over (closed, or
 * broken: t->reason says which). */
ssize_t tls_stream_recv(struct tls_stream *t, uint8_t *buf, size_t cap);
/* Plaintext out (after the handshake).  0, or -1. */
int tls_stream_send(struct tls_stream *t, const uint8_t *buf, size_t len);
void tls_stream_free(struct tls_stream *t);

#endif
