/*
 * TLS over a stream the owner reads and writes: GnuTLS's transport
 * functions over the ciphertext the owner gives and the push it offers.
 */
#include "tls_stream.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

int tls_cred_client(gnutls_certificate_credentials_t *cred, const char *ca,
                    char *why, size_t why_len)
{
	int rc;

	if ((rc = gnutls_certificate_allocate_credentials(cred))) {
		snprintf(why, why_len, "%s", gnutls_strerror(rc));
		return -1;
	}
	rc = ca ? gnutls_certificate_set_x509_trust_file(*cred, ca,
	                                                 GNUTLS_X509_FMT_PEM) :
	          gnutls_certificate_set_x509_system_trust(*cred);
	/* these return how many CAs they took */
	if (rc <= 0) {
		if (ca)
			snprintf(why, why_len, "no CA certificate read from %s%s%s",
			         ca, rc < 0 ? ": " : "",
			         rc < 0 ? gnutls_strerror(rc) : "");
		else
			snprintf(why, why_len,
			         "the system has no trusted CAs; give -tls-ca FILE");
		gnutls_certificate_free_credentials(*cred);
		return -1;
	}
	return 0;
}

int tls_cred_server(gnutls_certificate_credentials_t *cred, const char *cert,
                    const char *key, char *why, size_t why_len)
{
	int rc;

	if ((rc = gnutls_certificate_allocate_credentials(cred))) {
		snprintf(why, why_len, "%s", gnutls_strerror(rc));
		return -1;
	}
	rc = gnutls_certificate_set_x509_key_file(*cred, cert, key,
	                                          GNUTLS_X509_FMT_PEM);
	if (rc < 0) {
		snprintf(why, why_len, "cannot use -cert %s and -key %s: %s",
		         cert, key, gnutls_strerror(rc));
		gnutls_certificate_free_credentials(*cred);
		return -1;
	}
	return 0;
}

/* GnuTLS's pull: what was given, then EAGAIN. */
static ssize_t pull(gnutls_transport_ptr_t p, void *buf, size_t len)
{
	struct tls_stream *t = p;
	size_t n = len < t->in_len ? len : t->in_len;

	if (!n) {
		gnutls_transport_set_errno(t->s, EAGAIN);
		return -1;
	}
	memcpy(buf, t->in, n);
	t->in += n;
	t->in_len -= n;
	return (ssize_t)n;
}

static ssize_t push(gnutls_transport_ptr_t p, const void *buf, size_t len)
{
	struct tls_stream *t = p;

	if (t->push(t->ctx, buf, len)) {
		gnutls_transport_set_errno(t->s, EPIPE);
		return -1;
	}
	return (ssize_t)len;
}

static int session_new(struct tls_stream *t,
                       gnutls_certificate_credentials_t cred, unsigned flags,
                       tls_push_fn *push_fn, void *ctx)
{
	int rc;

	memset(t, 0, sizeof(*t));
	t->push = push_fn;
	t->ctx = ctx;
	if ((rc = gnutls_init(&t->s, flags | GNUTLS_NONBLOCK)) ||
	    (rc = gnutls_set_default_priority(t->s)) ||
	    (rc = gnutls_credentials_set(t->s, GNUTLS_CRD_CERTIFICATE, cred))) {
		snprintf(t->reason, sizeof(t->reason), "%s", gnutls_strerror(rc));
		t->failed = 1;
		return -1;
	}
	gnutls_transport_set_ptr(t->s, t);
	gnutls_transport_set_pull_function(t->s, pull);
	gnutls_transport_set_push_function(t->s, push);
	return 0;
}

static int is_ip(const char *host)
{
	uint8_t b[16];

	return inet_pton(AF_INET, host, b) == 1 ||
	       inet_pton(AF_INET6, host, b) == 1;
}

int tls_stream_client(struct tls_stream *t,
                      gnutls_certificate_credentials_t cred, const char *host,
                      tls_push_fn *push_fn, void *ctx)
{
	if (session_new(t, cred, GNUTLS_CLIENT, push_fn, ctx))
		return -1;
	t->is_client = 1;
	snprintf(t->host, sizeof(t->host), "%s", host);
	/* RFC 6066 3: SNI is a DNS name, never an address literal */
	if (!is_ip(host))
		gnutls_server_name_set(t->s, GNUTLS_NAME_DNS, host, strlen(host));
	/* the chain to a trusted CA, and the name (or IP address SAN) */
	gnutls_session_set_verify_cert(t->s, t->host, 0);
	return 0;
}

int tls_stream_server(struct tls_stream *t,
                      gnutls_certificate_credentials_t cred, tls_push_fn *push_fn,
                      void *ctx)
{
	if (session_new(t, cred, GNUTLS_SERVER, push_fn, ctx))
		return -1;
	gnutls_certificate_server_set_request(t->s, GNUTLS_CERT_IGNORE);
	return 0;
}

/* Why the handshake failed, in words: for a certificate, what was wrong
 * with it. */
static void handshake_failed(struct tls_stream *t, int rc)
{
	gnutls_datum_t out = { NULL, 0 };
	unsigned status;

	t->failed = 1;
	if (rc == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR &&
	    (status = gnutls_session_get_verify_cert_status(t->s)) &&
	    !gnutls_certificate_verification_status_print(
		    status, gnutls_certificate_type_get(t->s), &out, 0)) {
		size_t n;

		snprintf(t->reason, sizeof(t->reason),
		         "the server's certificate is not trusted for %s: %s",
		         t->host, (const char *)out.data);
		gnutls_free(out.data);
		/* GnuTLS ends each sentence with a space */
		for (n = strlen(t->reason); n && t->reason[n - 1] == ' '; n--)
			t->reason[n - 1] = '\0';
		return;
	}
	snprintf(t->reason, sizeof(t->reason), "TLS handshake failed: %s",
	         gnutls_strerror(rc));
}

static int handshake(struct tls_stream *t)
{
	int rc = gnutls_handshake(t->s);

	if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED)
		return 0;
	if (rc < 0 && !gnutls_error_is_fatal(rc))
		return 0;
	if (rc < 0) {
		handshake_failed(t, rc);
		return -1;
	}
	t->ready = 1;
	log_debug("tls: handshake done (%s)",
	          gnutls_protocol_get_name(gnutls_protocol_get_version(t->s)));
	return 0;
}

int tls_stream_start(struct tls_stream *t)
{
	return t->failed ? -1 : handshake(t);
}

void tls_stream_give(struct tls_stream *t, const uint8_t *buf, size_t len)
{
	t->in = buf;
	t->in_len = len;
}

ssize_t tls_stream_recv(struct tls_stream *t, uint8_t *buf, size_t cap)
{
	ssize_t n;

	if (t->failed)
		return -1;
	if (!t->ready) {
		if (handshake(t))
			return -1;
		if (!t->ready)
			return 0;
	}
	n = gnutls_record_recv(t->s, buf, cap);
	if (n > 0)
		return n;
	if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED ||
	    (n < 0 && !gnutls_error_is_fatal((int)n)))
		return 0;
	t->failed = 1;
	snprintf(t->reason, sizeof(t->reason), "%s",
	         n == 0 ? "closed (TLS close_notify)" :
	                  gnutls_strerror((int)n));
	return -1;
}

int tls_stream_send(struct tls_stream *t, const uint8_t *buf, size_t len)
{
	ssize_t n;

	if (t->failed || !t->ready)
		return -1;
	/* push takes everything, so one call sends it all */
	n = gnutls_record_send(t->s, buf, len);
	if (n == (ssize_t)len)
		return 0;
	if (n < 0 && gnutls_error_is_fatal((int)n)) {
		t->failed = 1;
		snprintf(t->reason, sizeof(t->reason), "%s",
		         gnutls_strerror((int)n));
	}
	return -1;
}

void tls_stream_free(struct tls_stream *t)
{
	if (t->s)
		gnutls_deinit(t->s);
	t->s = NULL;
}
