#include "gather.h"

#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"

static int usable(const struct ifaddrs *ifa, int family)
{
	if (!ifa->ifa_addr || ifa->ifa_addr->sa_family != family)
		return 0;
	if (!(ifa->ifa_flags & IFF_UP) || (ifa->ifa_flags & IFF_LOOPBACK))
		return 0;
	/* Link-local reaches no further than the link (and in IPv6 needs a
	 * scope); RFC 8445 5.1.1.1 says not to use it, nor loopback.  The
	 * peer would skip them anyway (agent.c). */
	if (addr_classify(ifa->ifa_addr) != ADDR_CLASS_ROUTABLE)
		return 0;
	if (family == AF_INET6 &&
	    IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *)ifa->ifa_addr)->sin6_addr))
		return 0;
	return 1;
}

size_t gather_host(int family, uint16_t port, struct punch_candidate *out,
                   size_t max)
{
	struct ifaddrs *list, *ifa;
	size_t n = 0;

	if (getifaddrs(&list))
		return 0;
	for (ifa = list; ifa && n < max; ifa = ifa->ifa_next) {
		struct punch_candidate *c = &out[n];
		int dup = 0;

		if (!usable(ifa, family))
			continue;
		memset(c, 0, sizeof(*c));
		memcpy(&c->addr, ifa->ifa_addr, addr_len(ifa->ifa_addr));
		addr_set_port((struct sockaddr *)&c->addr, port);
		for (size_t i = 0; i < n; i++)
			dup |= addr_equal((struct sockaddr *)&out[i].addr,
			                  (struct sockaddr *)&c->addr);
		if (dup)
			continue;
		c->type = CAND_HOST;
		/* RFC 8445 5.1.2.1: local preference tells one interface
		 * from another; RFC 8421 prefers IPv6 a little. */
		c->priority = punch_cand_priority(
			CAND_HOST, (uint16_t)((family == AF_INET6 ? 65535 : 65279) - n));
		n++;
	}
	freeifaddrs(list);
	return n;
}

int gather_source_for(const struct sockaddr *to, uint16_t port,
                      struct sockaddr_storage *out)
{
	socklen_t len = sizeof(*out);
	int fd = socket(to->sa_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int rc = -1;

	if (fd < 0)
		return -1;
	/* connect() on UDP sends nothing; it only picks the route. */
	if (!connect(fd, to, addr_len(to)) &&
	    !getsockname(fd, (struct sockaddr *)out, &len)) {
		addr_set_port((struct sockaddr *)out, port);
		rc = 0;
	}
	close(fd);
	return rc;
}
