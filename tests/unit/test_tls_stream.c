/*
 * tls_stream.c: a client and a server session back to back in memory (each
 * one's push is the other's input), with certificates made here by GnuTLS:
 * a CA, a server certificate it signs for IP 127.0.0.1, and another CA.
 * The handshake completes and bytes cross both ways; the client refuses a
 * certificate for another address, or from a CA it does not trust, saying
 * why; garbage instead of a ClientHello fails the server's side.
 */
#include "unit.h"

#include <gnutls/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "tls_stream.h"

enum { WIRE_MAX = 65536,
       PUMP_ROUNDS = 64 };

struct wire {
	uint8_t buf[WIRE_MAX];
	size_t len;
};

static char dir[] = "/tmp/punch-tls-unit.XXXXXX";
static char ca_pem[64], other_pem[64], cert_pem[64], key_pem[64];

static int wire_push(void *ctx, const uint8_t *buf, size_t len)
{
	struct wire *w = ctx;

	if (len > sizeof(w->buf) - w->len)
		return -1;
	memcpy(w->buf + w->len, buf, len);
	w->len += len;
	return 0;
}

static void write_pem(const char *path, gnutls_datum_t *d)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fwrite(d->data, 1, d->size, f), d->size);
	fclose(f);
	gnutls_free(d->data);
}

static gnutls_x509_privkey_t new_key(void)
{
	gnutls_x509_privkey_t k;

	assert_int_equal(gnutls_x509_privkey_init(&k), 0);
	assert_int_equal(gnutls_x509_privkey_generate(
				 k, GNUTLS_PK_ECDSA,
				 GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0),
	                 0);
	return k;
}

/* A certificate for key k: a CA (signed by itself) or a server for
 * 127.0.0.1 signed by ca/ca_key. */
static gnutls_x509_crt_t new_cert(gnutls_x509_privkey_t k, const char *cn,
                                  gnutls_x509_crt_t ca,
                                  gnutls_x509_privkey_t ca_key)
{
	static const uint8_t ip[4] = { 127, 0, 0, 1 };
	static unsigned serial = 1;
	gnutls_x509_crt_t c;
	time_t now = time(NULL);

	assert_int_equal(gnutls_x509_crt_init(&c), 0);
	gnutls_x509_crt_set_version(c, 3);
	gnutls_x509_crt_set_serial(c, &serial, sizeof(serial));
	serial++;
	gnutls_x509_crt_set_activation_time(c, now - 60);
	gnutls_x509_crt_set_expiration_time(c, now + 3600);
	gnutls_x509_crt_set_dn_by_oid(c, GNUTLS_OID_X520_COMMON_NAME, 0, cn,
	                              strlen(cn));
	gnutls_x509_crt_set_key(c, k);
	if (!ca) {
		gnutls_x509_crt_set_basic_constraints(c, 1, -1);
		gnutls_x509_crt_set_key_usage(c, GNUTLS_KEY_KEY_CERT_SIGN);
		assert_int_equal(gnutls_x509_crt_sign2(c, c, k, GNUTLS_DIG_SHA256, 0),
		                 0);
	} else {
		gnutls_x509_crt_set_basic_constraints(c, 0, -1);
		gnutls_x509_crt_set_key_usage(c, GNUTLS_KEY_DIGITAL_SIGNATURE);
		gnutls_x509_crt_set_key_purpose_oid(c, GNUTLS_KP_TLS_WWW_SERVER, 0);
		gnutls_x509_crt_set_subject_alt_name(c, GNUTLS_SAN_IPADDRESS, ip,
		                                     sizeof(ip),
		                                     GNUTLS_FSAN_APPEND);
		assert_int_equal(gnutls_x509_crt_sign2(c, ca, ca_key,
		                                       GNUTLS_DIG_SHA256, 0),
		                 0);
	}
	return c;
}

static void save_cert(gnutls_x509_crt_t c, const char *path)
{
	gnutls_datum_t d;

	assert_int_equal(gnutls_x509_crt_export2(c, GNUTLS_X509_FMT_PEM, &d), 0);
	write_pem(path, &d);
}

static int setup_certs(void **state)
{
	gnutls_x509_privkey_t ca_k, other_k, k;
	gnutls_x509_crt_t ca, other, crt;
	gnutls_datum_t d;

	(void)state;
	if (!mkdtemp(dir))
		return -1;
	snprintf(ca_pem, sizeof(ca_pem), "%s/ca.pem", dir);
	snprintf(other_pem, sizeof(other_pem), "%s/other.pem", dir);
	snprintf(cert_pem, sizeof(cert_pem), "%s/cert.pem", dir);
	snprintf(key_pem, sizeof(key_pem), "%s/key.pem", dir);
	ca_k = new_key();
	other_k = new_key();
	k = new_key();
	ca = new_cert(ca_k, "test CA", NULL, NULL);
	other = new_cert(other_k, "other CA", NULL, NULL);
	crt = new_cert(k, "server", ca, ca_k);
	save_cert(ca, ca_pem);
	save_cert(other, other_pem);
	save_cert(crt, cert_pem);
	assert_int_equal(gnutls_x509_privkey_export2(k, GNUTLS_X509_FMT_PEM, &d),
	                 0);
	write_pem(key_pem, &d);
	gnutls_x509_crt_deinit(ca);
	gnutls_x509_crt_deinit(other);
	gnutls_x509_crt_deinit(crt);
	gnutls_x509_privkey_deinit(ca_k);
	gnutls_x509_privkey_deinit(other_k);
	gnutls_x509_privkey_deinit(k);
	return 0;
}

static int teardown_certs(void **state)
{
	(void)state;
	unlink(ca_pem);
	unlink(other_pem);
	unlink(cert_pem);
	unlink(key_pem);
	rmdir(dir);
	return 0;
}

struct pair {
	gnutls_certificate_credentials_t ccred, scred;
	struct tls_stream c, s;
	struct wire to_s, to_c;     /* what each side pushed, not yet given */
	uint8_t got_c[256], got_s[256];
	size_t n_c, n_s;
	int c_failed, s_failed;
};

/* Give each side what the other pushed, and take plaintext, until nothing
 * moves. */
static void give_all(struct tls_stream *t, struct wire *w, uint8_t *got,
                     size_t *n, int *failed)
{
	uint8_t in[WIRE_MAX];
	size_t len = w->len;
	ssize_t r;

	memcpy(in, w->buf, len);
	w->len = 0;
	tls_stream_give(t, in, len);
	for (int i = 0; i < TLS_STREAM_ROUNDS_MAX; i++) {
		r = tls_stream_recv(t, got + *n, 256 - *n);
		if (r < 0)
			*failed = 1;
		if (r <= 0)
			return;
		*n += (size_t)r;
	}
}

static void pump(struct pair *p)
{
	for (int i = 0; i < PUMP_ROUNDS && (p->to_s.len || p->to_c.len); i++) {
		if (p->to_s.len)
			give_all(&p->s, &p->to_s, p->got_s, &p->n_s, &p->s_failed);
		if (p->to_c.len)
			give_all(&p->c, &p->to_c, p->got_c, &p->n_c, &p->c_failed);
	}
}

static struct pair *pair_new(const char *ca, const char *host)
{
	struct pair *p = calloc(1, sizeof(*p));
	char why[256];

	assert_non_null(p);
	assert_int_equal(tls_cred_client(&p->ccred, ca, why, sizeof(why)), 0);
	assert_int_equal(tls_cred_server(&p->scred, cert_pem, key_pem, why,
	                                 sizeof(why)),
	                 0);
	assert_int_equal(tls_stream_client(&p->c, p->ccred, host, wire_push,
	                                   &p->to_s),
	                 0);
	assert_int_equal(tls_stream_server(&p->s, p->scred, wire_push, &p->to_c),
	                 0);
	assert_int_equal(tls_stream_start(&p->c), 0);
	pump(p);
	return p;
}

static void pair_free(struct pair *p)
{
	tls_stream_free(&p->c);
	tls_stream_free(&p->s);
	gnutls_certificate_free_credentials(p->ccred);
	gnutls_certificate_free_credentials(p->scred);
	free(p);
}

static void test_handshake_and_data(void **state)
{
	struct pair *p = pair_new(ca_pem, "127.0.0.1");

	(void)state;
	assert_true(p->c.ready);
	assert_true(p->s.ready);
	assert_int_equal(p->c_failed + p->s_failed, 0);
	assert_int_equal(tls_stream_send(&p->c, (const uint8_t *)"ping", 4), 0);
	assert_int_equal(tls_stream_send(&p->s, (const uint8_t *)"pong!", 5), 0);
	pump(p);
	assert_size(p->n_s, 4);
	assert_memory_equal(p->got_s, "ping", 4);
	assert_size(p->n_c, 5);
	assert_memory_equal(p->got_c, "pong!", 5);
	pair_free(p);
}

/* The certificate names 127.0.0.1; a client that asked for another
 * address refuses it. */
static void test_wrong_host(void **state)
{
	struct pair *p = pair_new(ca_pem, "127.0.0.2");

	(void)state;
	assert_false(p->c.ready);
	assert_int_equal(p->c_failed, 1);
	assert_non_null(strstr(p->c.reason,
	                       "the server's certificate is not trusted for 127.0.0.2"));
	assert_int_equal(tls_stream_send(&p->c, (const uint8_t *)"x", 1), -1);
	pair_free(p);
}

static void test_untrusted_ca(void **state)
{
	struct pair *p = pair_new(other_pem, "127.0.0.1");

	(void)state;
	assert_false(p->c.ready);
	assert_int_equal(p->c_failed, 1);
	assert_non_null(strstr(p->c.reason, "not trusted for 127.0.0.1"));
	assert_non_null(strstr(p->c.reason, "issuer is unknown"));
	/* GnuTLS's trailing space is gone */
	assert_true(p->c.reason[strlen(p->c.reason) - 1] != ' ');
	pair_free(p);
}

/* Bytes that are no ClientHello: the server's side fails, with a reason,
 * and stays failed. */
static void test_garbage_to_server(void **state)
{
	static const uint8_t junk[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	gnutls_certificate_credentials_t cred;
	struct tls_stream s;
	struct wire out = { .len = 0 };
	uint8_t buf[64];
	char why[256];

	(void)state;
	assert_int_equal(tls_cred_server(&cred, cert_pem, key_pem, why,
	                                 sizeof(why)),
	                 0);
	assert_int_equal(tls_stream_server(&s, cred, wire_push, &out), 0);
	tls_stream_give(&s, junk, sizeof(junk) - 1);
	assert_int_equal(tls_stream_recv(&s, buf, sizeof(buf)), -1);
	assert_true(s.reason[0] != '\0');
	assert_int_equal(tls_stream_recv(&s, buf, sizeof(buf)), -1);
	tls_stream_free(&s);
	gnutls_certificate_free_credentials(cred);
}

static void test_bad_files(void **state)
{
	gnutls_certificate_credentials_t cred;
	char why[256];

	(void)state;
	assert_int_equal(tls_cred_server(&cred, cert_pem, ca_pem, why,
	                                 sizeof(why)),
	                 -1);
	assert_non_null(strstr(why, "cannot use -cert"));
	assert_int_equal(tls_cred_client(&cred, "/nonexistent/ca.pem", why,
	                                 sizeof(why)),
	                 -1);
	assert_non_null(strstr(why, "no CA certificate read from /nonexistent/ca.pem"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_handshake_and_data),
		cmocka_unit_test(test_wrong_host),
		cmocka_unit_test(test_untrusted_ca),
		cmocka_unit_test(test_garbage_to_server),
		cmocka_unit_test(test_bad_files),
	};

	return cmocka_run_group_tests(tests, setup_certs, teardown_certs);
}
