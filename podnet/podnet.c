/*
 * Values of pod networking (see podnet.h): text forms, strict parsers and the route order both
 * sides agree on. Pure functions, no I/O.
 */
#include "podnet/podnet.h"

#include <arpa/inet.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

struct podnet_name {
	int value;
	const char *name;
};

static const struct podnet_name podnet_protocols[] = {
	{ RTPROT_KERNEL, "kernel" }, { RTPROT_BOOT, "boot" },
	{ RTPROT_STATIC, "static" }, { RTPROT_DHCP, "dhcp" },
};

static const struct podnet_name podnet_scopes[] = {
	{ RT_SCOPE_UNIVERSE, "universe" }, { RT_SCOPE_SITE, "site" }, { RT_SCOPE_LINK, "link" },
	{ RT_SCOPE_HOST, "host" },         { RT_SCOPE_NOWHERE, "nowhere" },
};

static const struct podnet_name podnet_nuds[] = {
	{ NUD_NONE, "none" },   { NUD_INCOMPLETE, "incomplete" }, { NUD_REACHABLE, "reachable" },
	{ NUD_STALE, "stale" }, { NUD_DELAY, "delay" },           { NUD_PROBE, "probe" },
	{ NUD_FAILED, "failed" }, { NUD_NOARP, "noarp" },         { NUD_PERMANENT, "permanent" },
};

static const char *podnet_name_of(const struct podnet_name *t, size_t n, int value)
{
	for (size_t i = 0; i < n; i++)
		if (t[i].value == value)
			return t[i].name;
	return NULL;
}

const char *podnet_protocol_name(int protocol)
{
	return podnet_name_of(podnet_protocols, PP_ARRAY_SIZE(podnet_protocols), protocol);
}

const char *podnet_scope_name(int scope)
{
	return podnet_name_of(podnet_scopes, PP_ARRAY_SIZE(podnet_scopes), scope);
}

const char *podnet_nud_name(int state)
{
	return podnet_name_of(podnet_nuds, PP_ARRAY_SIZE(podnet_nuds), state);
}

void podnet_info_clear(struct podnet_info *info)
{
	if (!info)
		return;
	free(info->routes);
	free(info->neighs);
	memset(info, 0, sizeof(*info));
}

const char *podnet_addr_format(struct in_addr a, char *out, size_t size)
{
	if (size == 0)
		return out;
	out[0] = '\0';
	if (a.s_addr != htonl(INADDR_ANY) && !inet_ntop(AF_INET, &a, out, (socklen_t)size))
		out[0] = '\0';
	return out;
}

const char *podnet_prefix_format(const struct podnet_prefix *p, char *out, size_t size)
{
	char a[INET_ADDRSTRLEN];
	int n;

	if (size == 0)
		return out;
	if (!inet_ntop(AF_INET, &p->addr, a, sizeof(a)))
		a[0] = '\0';
	n = snprintf(out, size, "%s/%u", a, p->len);
	if (n < 0 || (size_t)n >= size)
		out[0] = '\0';
	return out;
}

const char *podnet_mac_format(const uint8_t mac[PODNET_MAC_LEN], char *out, size_t size)
{
	int n = snprintf(out, size, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2],
			 mac[3], mac[4], mac[5]);

	if ((n < 0 || (size_t)n >= size) && size > 0)
		out[0] = '\0';
	return out;
}

int podnet_addr_parse(const char *s, struct in_addr *ret)
{
	struct in_addr a;

	if (!s || inet_pton(AF_INET, s, &a) != 1)
		return -1;
	*ret = a;
	return 0;
}

int podnet_prefix_parse(const char *s, struct podnet_prefix *ret)
{
	char text[INET_ADDRSTRLEN + 4];
	struct podnet_prefix p;
	char *slash;
	uint32_t len;

	if (!s || !pp_strlcpy(text, s, sizeof(text)) || !(slash = strchr(text, '/')))
		return -1;
	*slash = '\0';
	if (podnet_addr_parse(text, &p.addr) < 0 || parse_uint32(slash + 1, &len) < 0 ||
	    len > 32 || (slash[1] == '0' && slash[2] != '\0'))
		return -1;
	p.len = len;
	*ret = p;
	return 0;
}

static int podnet_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int podnet_mac_parse(const char *s, uint8_t mac[PODNET_MAC_LEN])
{
	uint8_t m[PODNET_MAC_LEN];

	if (!s || strlen(s) != PODNET_MAC_STRLEN - 1)
		return -1;
	for (int i = 0; i < PODNET_MAC_LEN; i++) {
		const char *p = s + 3 * i;
		int hi = podnet_hex(p[0]), lo = podnet_hex(p[1]);

		if (hi < 0 || lo < 0 || (i < PODNET_MAC_LEN - 1 && p[2] != ':'))
			return -1;
		m[i] = (uint8_t)(hi << 4 | lo);
	}
	memcpy(mac, m, sizeof(m));
	return 0;
}

struct in_addr podnet_prefix_network(const struct podnet_prefix *p)
{
	struct in_addr a;
	uint32_t mask = p->len == 0 ? 0 : 0xffffffffu << (32 - p->len);

	a.s_addr = htonl(ntohl(p->addr.s_addr) & mask);
	return a;
}

int podnet_route_cmp(const struct podnet_route *a, const struct podnet_route *b)
{
	int c = memcmp(&a->dst.addr, &b->dst.addr, sizeof(a->dst.addr));

	if (c != 0)
		return c;
	if (a->dst.len != b->dst.len)
		return a->dst.len < b->dst.len ? -1 : 1;
	if (a->metric != b->metric)
		return a->metric < b->metric ? -1 : 1;
	return 0;
}
