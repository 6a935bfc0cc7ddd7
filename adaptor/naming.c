/*
 * Instance and pod names (see naming.h). Pure string work; the instance name rule must stay
 * identical to upstream's, since other tools recognise our VMs by the `podvm-` prefix.
 */
#include "adaptor/naming.h"

#include <stdio.h>
#include <string.h>

#define CRIO_PREFIX "k8s_"

static char naming_sanitize_char(char c)
{
	if (c >= 'A' && c <= 'Z')
		return (char)(c - 'A' + 'a');
	if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')
		return c;
	return '-';
}

/* Appends at most max sanitised characters of s to out[*pos]; out has room (checked by caller). */
static void naming_append_sanitized(char *out, size_t *pos, const char *s, size_t max)
{
	for (size_t i = 0; i < max && s[i] != '\0'; i++)
		out[(*pos)++] = naming_sanitize_char(s[i]);
}

int naming_instance_name(const char *pod_name, const char *sandbox_id, char *out,
			 size_t out_size, struct pp_err *err)
{
	char name[INSTANCE_NAME_MAX + 1];
	size_t pos = 0;

	if (!pod_name || pod_name[0] == '\0')
		return pp_err_set(err, PP_INVALID_ARGUMENT, "instance name: pod name is empty");
	if (!sandbox_id || sandbox_id[0] == '\0')
		return pp_err_set(err, PP_INVALID_ARGUMENT, "instance name: sandbox id is empty");
	_Static_assert(sizeof(NAMING_PREFIX) - 1 + NAMING_POD_PART_MAX + 1 + NAMING_SID_PART_MAX
		       <= INSTANCE_NAME_MAX, "instance name budget");

	memcpy(name, NAMING_PREFIX, sizeof(NAMING_PREFIX) - 1);
	pos = sizeof(NAMING_PREFIX) - 1;
	naming_append_sanitized(name, &pos, pod_name, NAMING_POD_PART_MAX);
	name[pos++] = '-';
	naming_append_sanitized(name, &pos, sandbox_id, NAMING_SID_PART_MAX);
	name[pos] = '\0';

	if (pos + 1 > out_size)
		return pp_err_set(err, PP_INTERNAL, "instance name: buffer of %zu bytes is too small",
				  out_size);
	memcpy(out, name, pos + 1);
	return 0;
}

int naming_pod_name(const char *sandbox_name, char *out, size_t out_size, struct pp_err *err)
{
	const char *start = sandbox_name ? sandbox_name : "";
	size_t len = strlen(start);

	/* CRI-O: k8s_<pod>_<ns>_<uid>_<attempt>; upstream takes the second '_' field whenever the
	 * value has more than one field and the first one is "k8s". */
	if (strncmp(start, CRIO_PREFIX, sizeof(CRIO_PREFIX) - 1) == 0) {
		const char *end;

		start += sizeof(CRIO_PREFIX) - 1;
		end = strchr(start, '_');
		len = end ? (size_t)(end - start) : strlen(start);
	}
	if (len > NAMING_POD_NAME_MAX)
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "pod name in io.kubernetes.cri.sandbox-name is %zu characters, more than %d",
				  len, NAMING_POD_NAME_MAX);
	if (len + 1 > out_size)
		return pp_err_set(err, PP_INTERNAL, "pod name: buffer of %zu bytes is too small",
				  out_size);
	memcpy(out, start, len);
	out[len] = '\0';
	return 0;
}
