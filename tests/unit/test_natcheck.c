/*
 * natcheck.c over a simulated NAT (natcheck_net.h) and punch's own Binding
 * service: for each behaviour RFC 4787 names, natcheck must name it, and a
 * server or network that cannot tell must leave it unknown, not guessed.
 */
#include "natcheck_net.h"

#include <stdio.h>

static const struct natcheck_result *res(void)
{
	return natcheck_result(&sim.nc);
}

#define assert_words(seen, expected)                                         \
	do {                                                                 \
		const char *s_ = (seen), *e_ = (expected);                   \
		if ((s_ == NULL) != (e_ == NULL) ||                          \
		    (s_ && strcmp(s_, e_))) {                                \
			print_error("%s: expected %s, saw %s\n", #seen,      \
			            e_ ? e_ : "(null)", s_ ? s_ : "(null)"); \
			fail();                                              \
		}                                                            \
	} while (0)

static void expect_type(enum natcheck_behaviour mapping,
                        enum natcheck_behaviour filtering, const char *type,
                        int status)
{
	uint64_t took;

	sim_init(mapping, filtering, 1);
	if (mapping != NATCHECK_INDEPENDENT)
		sim.alloc = SIM_RANDOM;
	took = sim_run(0);
	assert_true(res()->udp);
	assert_true(res()->has_other);
	assert_words(natcheck_behaviour_str(res()->mapping),
	             natcheck_behaviour_str(mapping));
	assert_words(natcheck_behaviour_str(res()->filtering),
	             natcheck_behaviour_str(filtering));
	assert_words(natcheck_type_str(res()), type);
	assert_int_equal(natcheck_exit_status(res()), status);
	assert_int_equal(res()->nat, 1);
	assert_int_equal(res()->hairpin, 0);
	/* the 1.5 s budget: one round trip, then the 1 s wait for the
	 * answers that a filter drops */
	if (took > 1500)
		print_error("took %llu ms\n", (unsigned long long)took);
	assert_true(took <= 1500);
	assert_size(sim.nc.dropped, 0);
}

static void full_cone(void **state)
{
	(void)state;
	expect_type(NATCHECK_INDEPENDENT, NATCHECK_INDEPENDENT, "full cone", 0);
	assert_int_equal(res()->pattern, NATCHECK_PAT_PRESERVING);
	assert_true(res()->port_preserved);
	assert_int_equal(addr_port(SA(res()->public_v4)), sim_local_port(NATCHECK_SOCK_MAP));
}

static void restricted_cone(void **state)
{
	(void)state;
	expect_type(NATCHECK_INDEPENDENT, NATCHECK_ADDRESS, "restricted cone", 0);
}

static void port_restricted_cone(void **state)
{
	(void)state;
	expect_type(NATCHECK_INDEPENDENT, NATCHECK_ADDRESS_PORT,
	            "port-restricted cone", 0);
}

static void symmetric(void **state)
{
	(void)state;
	expect_type(NATCHECK_ADDRESS_PORT, NATCHECK_ADDRESS_PORT, "symmetric", 3);
	assert_int_equal(res()->pattern, NATCHECK_PAT_RANDOM);
	assert_false(res()->port_preserved);
	assert_size(res()->n_deltas, NATCHECK_SAMPLES_MAX - 1);
}

static void address_dependent_mapping(void **state)
{
	(void)state;
	expect_type(NATCHECK_ADDRESS, NATCHECK_ADDRESS, "symmetric", 3);
}

/* A symmetric NAT whose filter admits any source: RFC 4787 allows it. */
static void symmetric_open_filter(void **state)
{
	(void)state;
	expect_type(NATCHECK_ADDRESS_PORT, NATCHECK_INDEPENDENT, "symmetric", 3);
}

static void sequential_ports(void **state)
{
	(void)state;
	sim_init(NATCHECK_INDEPENDENT, NATCHECK_ADDRESS_PORT, 1);
	sim.alloc = SIM_SEQUENTIAL;
	sim.step = 2;
	sim_run(0);
	assert_int_equal(res()->pattern, NATCHECK_PAT_SEQUENTIAL);
	assert_size(res()->n_deltas, NATCHECK_SAMPLES_MAX - 1);
	for (size_t i = 0; i < res()->n_deltas; i++)
		assert_int_equal(res()->deltas[i], 2);
	assert_false(res()->port_preserved);
	assert_int_equal(addr_port(SA(res()->public_v4)), SIM_PUBLIC_PORT0);
}

static void hairpin(void **state)
{
	(void)state;
	sim_init(NATCHECK_INDEPENDENT, NATCHECK_ADDRESS_PORT, 1);
	sim.hairpin = 1;
	sim_run(0);
	assert_int_equal(res()->hairpin, 1);
	assert_words(natcheck_type_str(res()), "port-restricted cone");
}

static void no_nat(void **state)
{
	(void)state;
	sim_init(NATCHECK_INDEPENDENT, NATCHECK_INDEPENDENT, 1);
	sim.no_nat = 1;
	sim_run(0);
	assert_int_equal(res()->nat, 0);
	assert_int_equal(res()->mapping, NATCHECK_INDEPENDENT);
	assert_words(natcheck_type_str(res()), "no NAT");
	assert_int_equal(natcheck_exit_status(res()), 0);
}

/* Nothing answers: "no UDP" (exit 4) after the first tests' 2 s, with
 * the requests retransmitted meanwhile, and nothing else tried. */
static void no_udp(void **state)
{
	uint64_t took;

	(void)state;
	sim_init(NATCHECK_INDEPENDENT, NATCHECK_INDEPENDENT, 1);
	sim.drop_all = 1;
	took = sim_run(0);
	assert_false(res()->udp);
	assert_false(res()->has_public_v4);
	assert_int_equal(natcheck_exit_status(res()), NATCHECK_EXIT_NO_UDP);
	assert_true(took >= NATCHECK_FIRST_TIMEOUT_MS &&
	            took <= NATCHECK_FIRST_TIMEOUT_MS + 6 * NATCHECK_STAGGER_MS);
	assert_true(sim.sent > 6 && sim.sent < 6 * 12);
	assert_int_equal(res()->mapping, NATCHECK_UNKNOWN);
	assert_null(natcheck_type_str(res()));
}

/* Everything MAP sends is lost, FILT's gets through (found by
 * fuzz_natcheck): UDP works and the filter is known, so the run must say
 * so, with FILT's mapping as the public address, not "no UDP". */
static void map_socket_lost(void **state)
{
	(void)state;
	sim_init(NATCHECK_INDEPENDENT, NATCHECK_ADDRESS, 1);
	sim.drop_sock = 1 + NATCHECK_SOCK_MAP;
	sim_run(0);
	assert_true(res()->udp);
	assert_true(res()->has_public_v4);
	assert_int_equal(addr_port(SA(res()->public_v4)), sim_local_port(NATCHECK_SOCK_FILT));
	assert_int_equal(res()->filtering, NATCHECK_ADDRESS);
	assert_int_equal(res()->mapping, NATCHECK_UNKNOWN);
	assert_int_equal(natcheck_exit_status(res()), NATCHECK_EXIT_UNKNOWN);
}

/* A server without -alt: no OTHER-ADDRESS, so mapping and filtering are
 * not determinable (exit 1), but the public address and port still are. */
static void server_without_alt(void **state)
{
	(void)state;
	sim_init(NATCHECK_ADDRESS_PORT, NATCHECK_ADDRESS_PORT, 0);
	sim.alloc = SIM_RANDOM;
	sim_run(0);
	assert_true(res()->udp);
	assert_true(res()->has_public_v4);
	assert_false(res()->has_other);
	assert_int_equal(res()->mapping, NATCHECK_UNKNOWN);
	assert_int_equal(res()->filtering, NATCHECK_UNKNOWN);
	assert_null(natcheck_type_str(res()));
	assert_int_equal(natcheck_exit_status(res()), NATCHECK_EXIT_UNKNOWN);
	assert_int_equal(res()->pattern, NATCHECK_PAT_RANDOM);
}

/* A server that answers CHANGE-REQUEST from the address it was asked at
 * (as if it had no alternate): the answers do not prove a full cone, so
 * filtering stays unknown rather than "endpoint-independent". */
static void server_ignores_change_request(void **state)
{
	(void)state;
	sim_init(NATCHECK_INDEPENDENT, NATCHECK_INDEPENDENT, 1);
	sim.ignore_change = 1;
	sim_run(0);
	assert_int_equal(res()->mapping, NATCHECK_INDEPENDENT);
	assert_int_equal(res()->filtering, NATCHECK_UNKNOWN);
	assert_null(natcheck_type_str(res()));
}

/* RFC 5780 4.6: mappings that live 30 s idle survive 25 s, not 35 s. */
static void lifetime(void **state)
{
	uint64_t took;

	(void)state;
	sim_init(NATCHECK_INDEPENDENT, NATCHECK_ADDRESS_PORT, 1);
	sim.lifetime_ms = 30000;
	took = sim_run(NATCHECK_LIFETIME);
	assert_true(res()->lifetime_checked);
	assert_int_equal(res()->lifetime_s, 25);
	assert_int_equal(res()->lifetime_max_s, 35);
	/* stops at the first failure: 35 s and a 1 s wait */
	assert_true(took < 37000);
	assert_words(natcheck_type_str(res()), "port-restricted cone");
}

static void lifetime_long(void **state)
{
	(void)state;
	sim_init(NATCHECK_INDEPENDENT, NATCHECK_INDEPENDENT, 1);
	sim.lifetime_ms = 600000;
	sim_run(NATCHECK_LIFETIME);
	assert_int_equal(res()->lifetime_s, 130);
	assert_int_equal(res()->lifetime_max_s, 0);
}

static void lifetime_not_asked(void **state)
{
	(void)state;
	sim_init(NATCHECK_INDEPENDENT, NATCHECK_INDEPENDENT, 1);
	sim_run(0);
	assert_false(res()->lifetime_checked);
	assert_int_equal(natcheck_sock_family(&sim.nc, NATCHECK_SOCK_LIFE0), -1);
}

/* Datagrams natcheck did not ask for are dropped and counted, and change
 * nothing: garbage, a response with an unknown transaction id, one from
 * the wrong address, one on the wrong socket. */
static void unexpected_dropped(void **state)
{
	struct sockaddr_storage srv = sim_addr("198.51.100.10:3478");
	struct sockaddr_storage other = sim_addr("192.0.2.99:3478");
	static const uint8_t rnd[16] = "0123456789abcdef";
	uint8_t buf[128] = { 0 }, resp[128];
	struct natcheck_tx tx;
	struct stun_writer w;
	struct stun_msg m;
	int n;

	(void)state;
	sim_init(NATCHECK_INDEPENDENT, NATCHECK_INDEPENDENT, 1);
	assert_int_equal(natcheck_init(&sim.nc, SA(srv), NULL, 0, rnd, 0), 0);
	assert_true(natcheck_poll_send(&sim.nc, 0, &tx));
	assert_int_equal(tx.sock, NATCHECK_SOCK_MAP);
	decode_ok(&m, tx.buf, tx.len);

	assert_int_equal(natcheck_on_recv(&sim.nc, 0, SA(srv), buf, 20, 1), -1);
	/* a success for MAP's transaction */
	stun_writer_init(&w, resp, sizeof(resp), STUN_BINDING, STUN_SUCCESS, m.txid);
	stun_put_xor_addr(&w, STUN_ATTR_XOR_MAPPED_ADDRESS, SA(other));
	stun_put_fingerprint(&w);
	n = stun_writer_finish(&w);
	assert_true(n > 0);
	/* from elsewhere, on another socket, as a request */
	assert_int_equal(natcheck_on_recv(&sim.nc, 0, SA(other), resp, (size_t)n, 1), -1);
	assert_int_equal(natcheck_on_recv(&sim.nc, 1, SA(srv), resp, (size_t)n, 1), -1);
	assert_int_equal(natcheck_on_recv(&sim.nc, 99, SA(srv), resp, (size_t)n, 1), -1);
	assert_int_equal(natcheck_on_recv(&sim.nc, -1, SA(srv), resp, (size_t)n, 1), -1);
	resp[n - 1] ^= 1; /* broken FINGERPRINT */
	assert_int_equal(natcheck_on_recv(&sim.nc, 0, SA(srv), resp, (size_t)n, 1), -1);
	resp[n - 1] ^= 1;
	resp[19] ^= 1; /* unknown transaction */
	assert_int_equal(natcheck_on_recv(&sim.nc, 0, SA(srv), resp, (size_t)n, 1), -1);
	resp[19] ^= 1;
	assert_size(sim.nc.dropped, 7);
	/* the right one is taken, once */
	assert_int_equal(natcheck_on_recv(&sim.nc, 0, SA(srv), resp, (size_t)n, 1), 0);
	assert_int_equal(natcheck_on_recv(&sim.nc, 0, SA(srv), resp, (size_t)n, 1), -1);
}

/* A hostile server names this host's loopback as the mapped address and
 * a multicast group as OTHER-ADDRESS: natcheck must send nothing there
 * (no hairpin probe to 127.0.0.1:22, no tests to the group), and so
 * cannot determine mapping or filtering. */
static void hostile_targets(void **state)
{
	struct sockaddr_storage srv = sim_addr("198.51.100.10:3478");
	struct sockaddr_storage lo = sim_addr("127.0.0.1:22");
	struct sockaddr_storage group = sim_addr("224.0.0.251:5353");
	static const uint8_t rnd[16] = "0123456789abcdef";
	uint8_t resp[128];
	struct natcheck_tx tx;
	struct stun_writer w;
	struct stun_msg m[2];
	uint64_t now = 0;
	int n, k = 0;

	(void)state;
	assert_int_equal(natcheck_init(&sim.nc, SA(srv), NULL, 0, rnd, 0), 0);
	for (; now <= NATCHECK_STAGGER_MS; now++)
		while (natcheck_poll_send(&sim.nc, now, &tx))
			if (k < 2 && (tx.sock == NATCHECK_SOCK_MAP ||
			              tx.sock == NATCHECK_SOCK_FILT))
				decode_ok(&m[k++], tx.buf, tx.len);
	assert_int_equal(k, 2);
	for (int i = 0; i < 2; i++) {
		stun_writer_init(&w, resp, sizeof(resp), STUN_BINDING, STUN_SUCCESS, m[i].txid);
		stun_put_xor_addr(&w, STUN_ATTR_XOR_MAPPED_ADDRESS, SA(lo));
		stun_put_addr(&w, STUN_ATTR_OTHER_ADDRESS, SA(group));
		stun_put_fingerprint(&w);
		n = stun_writer_finish(&w);
		assert_true(n > 0);
		assert_int_equal(natcheck_on_recv(&sim.nc, i, SA(srv), resp, (size_t)n, now), 0);
	}
	while (!natcheck_done(&sim.nc) && now < 10000) {
		while (natcheck_poll_send(&sim.nc, now, &tx)) {
			if (!addr_equal(SA(tx.to), SA(srv)))
				print_error("sent to %s\n", addr_str(SA(tx.to), (char[ADDR_STRLEN]){ 0 }, ADDR_STRLEN));
			assert_true(addr_equal(SA(tx.to), SA(srv)));
			assert_int_equal(0, tx.len >= 24 && tx.buf[20] == 0 && tx.buf[21] == 3);
		}
		now = natcheck_next(&sim.nc, now);
	}
	assert_true(natcheck_done(&sim.nc));
	assert_int_equal(res()->mapping, NATCHECK_UNKNOWN);
	assert_int_equal(res()->filtering, NATCHECK_UNKNOWN);
	assert_int_equal(res()->hairpin, -1);
}

/* Beside an IPv4 server, one Binding over IPv6 gives the public IPv6
 * address; its answer must come from the server's IPv6 address. */
static void public_v6(void **state)
{
	struct sockaddr_storage s4 = sim_addr("198.51.100.10:3478");
	struct sockaddr_storage s6 = { .ss_family = AF_INET6 };
	struct sockaddr_storage mapped = { .ss_family = AF_INET6 };
	static const uint8_t rnd[16] = "0123456789abcdef";
	uint8_t resp[128];
	struct natcheck_tx tx;
	struct stun_writer w;
	struct stun_msg m;
	int n, found = 0;

	(void)state;
	assert_int_equal(addr_parse(&s6, "[2001:db8::10]:3478"), 0);
	assert_int_equal(addr_parse(&mapped, "[2001:db8:1::2]:40000"), 0);
	assert_int_equal(natcheck_init(&sim.nc, SA(s4), SA(s6), 0, rnd, 0), 0);
	assert_int_equal(natcheck_sock_family(&sim.nc, NATCHECK_SOCK_V6), AF_INET6);
	assert_int_equal(natcheck_sock_family(&sim.nc, NATCHECK_SOCK_MAP), AF_INET);
	while (natcheck_poll_send(&sim.nc, 0, &tx))
		if (tx.sock == NATCHECK_SOCK_V6) {
			assert_addr(&tx.to, &s6);
			decode_ok(&m, tx.buf, tx.len);
			found = 1;
		}
	assert_true(found);
	stun_writer_init(&w, resp, sizeof(resp), STUN_BINDING, STUN_SUCCESS, m.txid);
	stun_put_xor_addr(&w, STUN_ATTR_XOR_MAPPED_ADDRESS, SA(mapped));
	stun_put_fingerprint(&w);
	n = stun_writer_finish(&w);
	assert_true(n > 0);
	/* from the IPv4 address: not the answer */
	assert_int_equal(natcheck_on_recv(&sim.nc, NATCHECK_SOCK_V6, SA(s4), resp, (size_t)n, 5), -1);
	assert_int_equal(natcheck_on_recv(&sim.nc, NATCHECK_SOCK_V6, SA(s6), resp, (size_t)n, 5), 0);
	for (uint64_t now = 5; !natcheck_done(&sim.nc) && now < 10000;) {
		while (natcheck_poll_send(&sim.nc, now, &tx))
			;
		now = natcheck_next(&sim.nc, now);
	}
	assert_true(natcheck_done(&sim.nc));
	assert_true(res()->has_public_v6);
	assert_addr(&res()->public_v6, &mapped);
	assert_false(res()->has_public_v4); /* nothing answered over IPv4 */
	assert_true(res()->udp);
	assert_int_equal(natcheck_exit_status(res()), NATCHECK_EXIT_UNKNOWN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(full_cone),
		cmocka_unit_test(restricted_cone),
		cmocka_unit_test(port_restricted_cone),
		cmocka_unit_test(symmetric),
		cmocka_unit_test(address_dependent_mapping),
		cmocka_unit_test(symmetric_open_filter),
		cmocka_unit_test(sequential_ports),
		cmocka_unit_test(hairpin),
		cmocka_unit_test(no_nat),
		cmocka_unit_test(no_udp),
		cmocka_unit_test(map_socket_lost),
		cmocka_unit_test(server_without_alt),
		cmocka_unit_test(server_ignores_change_request),
		cmocka_unit_test(lifetime),
		cmocka_unit_test(lifetime_long),
		cmocka_unit_test(lifetime_not_asked),
		cmocka_unit_test(unexpected_dropped),
		cmocka_unit_test(public_v6),
		cmocka_unit_test(hostile_targets),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
