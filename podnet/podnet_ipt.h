/*
 * The raw-table NOTRACK rules that keep VXLAN packets out of conntrack (upstream #2015,
 * PR #2023), made with the `iptables` program exactly as upstream does, so that they show up
 * the same in `iptables-save` and follow the host's iptables flavour (nft or legacy):
 *
 *   -t raw -N peerpod-OUTPUT;      -A OUTPUT     -j peerpod-OUTPUT
 *   -A peerpod-OUTPUT     -m comment --comment "peerpod [vni:V]" -d R -p udp -m udp --dport P -j NOTRACK
 *   -t raw -N peerpod-PREROUTING;  -A PREROUTING -j peerpod-PREROUTING
 *   -A peerpod-PREROUTING -m comment --comment "peerpod [vni:V]" -s R -p udp -m udp --dport P -j NOTRACK
 *
 * R is the VM's IP on the worker and the worker's IP in the VM. The program is run with
 * posix_spawn and an argument vector (never a shell), `-w` to wait for the xtables lock, and a
 * process-wide mutex around each check-then-change sequence.
 *
 * The one idea: a VNI's rules are identified by their comment alone, so removal finds them
 * whatever remote or port they were made with (a stale rule from a crash included), and
 * adding first removes them: podnet_ipt_add is idempotent.
 */
#ifndef PP_PODNET_IPT_H
#define PP_PODNET_IPT_H

#include <netinet/in.h>
#include <stdint.h>

#include "lib/err.h"

#define PODNET_IPT_DEFAULT "iptables"
#define PODNET_IPT_CHAIN_OUTPUT "peerpod-OUTPUT"
#define PODNET_IPT_CHAIN_PREROUTING "peerpod-PREROUTING"

struct podnet_ipt_rule {
	uint32_t vni;
	uint16_t port;
	struct in_addr remote;
};

/* iptables: the program (searched in PATH when it has no '/'); NULL = "iptables". */
/* Replaces the VNI's rules (if any) with rule's, creating the chains and jumps if needed. */
int podnet_ipt_add(const char *iptables, const struct podnet_ipt_rule *rule, struct pp_err *err);
/* Removes every rule of vni from both chains, and a chain (and its jump) once it is empty.
 * Nothing to remove is success. */
int podnet_ipt_del(const char *iptables, uint32_t vni, struct pp_err *err);
/* 1 if both of rule's rules are present exactly, 0 if not. */
int podnet_ipt_check(const char *iptables, const struct podnet_ipt_rule *rule,
		     struct pp_err *err);

#endif
