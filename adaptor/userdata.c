/*
 * User-data assembly (see userdata.h): choose the files, encode initdata, render with
 * cloudinit_render(), check the size. Pure: no I/O, so the check really happens before anything
 * is created.
 */
#include "adaptor/userdata.h"

#include <stdlib.h>
#include <string.h>

#include "adaptor/cloudinit.h"
#include "adaptor/initdata.h"

#define USERDATA_MAX_FILES 4

static bool userdata_set(const char *s)
{
	return s && s[0] != '\0';
}

static void userdata_add(struct cloudinit_file *files, size_t *n, const char *path,
			 const char *content)
{
	files[*n].path = path;
	files[*n].content = content;
	files[*n].content_len = content ? strlen(content) : 0;
	(*n)++;
}

/* The initdata file's content: the pod's TOML re-encoded, else INITDATA verbatim, else none. */
static int userdata_initdata(const struct userdata_input *in, char **ret_owned,
			     const char **ret, struct pp_err *err)
{
	*ret_owned = NULL;
	*ret = NULL;
	if (userdata_set(in->initdata_toml)) {
		/* Refused here, at CreateVM, rather than by the VM after it booted. */
		if (initdata_check_toml(in->initdata_toml, strlen(in->initdata_toml),
					"annotation io.katacontainers.config.hypervisor.cc_init_data", err) < 0)
			return -1;
		if (initdata_encode(in->initdata_toml, strlen(in->initdata_toml), ret_owned, err) < 0)
			return -1;
		*ret = *ret_owned;
	} else if (userdata_set(in->default_initdata)) {
		*ret = in->default_initdata;
	}
	return 0;
}

int userdata_render(const struct userdata_input *in, char **ret_text, size_t *ret_len,
		    struct pp_err *err)
{
	struct cloudinit_file files[USERDATA_MAX_FILES];
	const char *initdata;
	char *initdata_owned, *text;
	size_t n = 0, len;
	int rc;

	if (!userdata_set(in->apf_json))
		return pp_err_set(err, PP_INTERNAL, "user-data: apf.json is empty");
	if (userdata_set(in->auth_json) && strlen(in->auth_json) > USERDATA_AUTH_JSON_MAX)
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "auth.json is %zu bytes, more than the limit of %d",
				  strlen(in->auth_json), USERDATA_AUTH_JSON_MAX);
	if (userdata_initdata(in, &initdata_owned, &initdata, err) < 0)
		return -1;

	userdata_add(files, &n, USERDATA_PATH_APF_JSON, in->apf_json);
	if (userdata_set(in->auth_json))
		userdata_add(files, &n, USERDATA_PATH_AUTH_JSON, in->auth_json);
	if (initdata)
		userdata_add(files, &n, USERDATA_PATH_INITDATA, initdata);
	if (in->scratch_space)
		userdata_add(files, &n, USERDATA_PATH_SCRATCH, NULL);

	rc = cloudinit_render(files, n, &text, &len, err);
	free(initdata_owned);
	if (rc < 0)
		return -1;
	if (in->max_user_data != 0 && len > in->max_user_data) {
		free(text);
		return pp_err_set(err, PP_INVALID_ARGUMENT,
				  "user-data is %zu bytes, more than the %s limit of %zu", len,
				  in->provider_name ? in->provider_name : "provider",
				  in->max_user_data);
	}
	*ret_text = text;
	*ret_len = len;
	return 0;
}
