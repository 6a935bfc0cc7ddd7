/*
 * Fuzz target: every parser of what ARM, Entra ID and IMDS send the azure provider (VM, NIC,
 * public IP, VM list, VM sizes, operation status, ARM error, token response, VM id), over the
 * same arbitrary bytes. The parsers take NUL-terminated text, so the input is copied into one.
 * Its corpus (tests/fixtures/azure/fuzz/) is replayed by the normal test run.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "providers/azure/azure_priv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_check_nic(const struct azure_nic *n)
{
	if (n->n_private < 0 || n->n_private > PROVIDER_MAX_IPS || n->n_public < 0 ||
	    n->n_public > PROVIDER_MAX_IPS)
		__builtin_trap();
	for (int i = 0; i < n->n_private; i++)
		if (strnlen(n->private_ips[i], PROVIDER_IP_MAX) == PROVIDER_IP_MAX || !n->private_ips[i][0])
			__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const want[] = { "Standard_DC2as_v5", "Standard_DC4as_v5" };
	char *text = malloc(size + 1);
	struct azure_vm vm;
	struct azure_nic nic;
	struct owned_instance_list l = { NULL, 0 };
	struct instance_type_info *t = NULL;
	char ip[PROVIDER_IP_MAX], code[96], msg[300], name[AZURE_NAME_MAX], *next = NULL, *tok = NULL;
	size_t n = 0;
	int64_t exp;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (azure_vm_parse(text, &vm, NULL) == 0 && (vm.n_nics > AZURE_MAX_NICS || !vm.id[0]))
		__builtin_trap();
	if (azure_nic_parse(text, &nic, NULL) == 0)
		fuzz_check_nic(&nic);
	azure_pip_parse(text, ip, sizeof(ip), NULL);
	if (azure_vm_list_parse(text, "node-a", &l, &next, NULL) == 0)
		free(next);
	owned_instance_list_free(&l);
	if (azure_vm_sizes_parse(text, want, 2, &t, &n, NULL) == 0) {
		if (n > 2)
			__builtin_trap();
		azure_vm_sizes_free(t, n);
	}
	azure_op_status_parse(text, "fuzz", NULL);
	azure_arm_error_parse(text, code, sizeof(code), msg, sizeof(msg));
	if (azure_token_parse(text, &tok, &exp, NULL) == 0) {
		if (exp <= 0 || !tok[0])
			__builtin_trap();
		azure_secret_free(tok);
	}
	if (azure_vm_name_from_id(text, name, sizeof(name), NULL) == 0 && (!name[0] || strchr(name, '/')))
		__builtin_trap();
	azure_parse_time(text);
	free(text);
	return 0;
}
