/*
 * Options of the `local` provider and the start-up check of the binaries an instance runs.
 *
 * The binaries are looked up in LOCAL_BIN_DIR, by default the directory the daemon itself was
 * started from (/proc/self/exe), where the build puts them side by side. A missing one is
 * reported at init by name and path, not later when the first pod starts.
 */
#include "providers/local/local_priv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const struct config_option local_options[] = {
	{ "LOCAL_BIN_DIR", "local-bin-dir", "LOCAL_BIN_DIR", CFG_STRING, NULL, 0,
	  "directory holding process-user-data, agent-protocol-forwarder and mock-agent "
	  "(default: the daemon's own directory)" },
	{ "LOCAL_AGENT_BIN", "local-agent-bin", "LOCAL_AGENT_BIN", CFG_STRING, NULL, 0,
	  "a real kata agent to run instead of mock-agent (given KATA_AGENT_SERVER_ADDR)" },
	{ "LOCAL_FORWARDER_ARGS", "local-forwarder-args", "LOCAL_FORWARDER_ARGS", CFG_STRING, NULL, 0,
	  "extra arguments for agent-protocol-forwarder, space-separated (e.g. -disable-tls)" },
	{ "LOCAL_BOOT_DELAY", "local-boot-delay", "LOCAL_BOOT_DELAY", CFG_DURATION, "0s", 0,
	  "testing: how long an instance waits before starting its forwarder (a slow VM boot)" },
	{ NULL, NULL, NULL, CFG_STRING, NULL, 0, NULL },
};

static int conf_join(char *out, size_t size, const char *dir, const char *name, struct pp_err *err)
{
	int n = snprintf(out, size, "%s/%s", dir, name);

	if (n < 0 || (size_t)n >= size)
		return pp_err_set(err, PP_INVALID_ARGUMENT, "path %s/%s is too long", dir, name);
	return 0;
}

static int conf_exe_dir(char *out, size_t size, struct pp_err *err)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *slash;

	if (n < 0)
		return pp_err_errno(err, PP_INTERNAL, errno, "reading /proc/self/exe to find LOCAL_BIN_DIR");
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	if (!slash)
		return pp_err_set(err, PP_INTERNAL, "/proc/self/exe is not an absolute path: %s", exe);
	*slash = '\0';
	if (snprintf(out, size, "%s", exe[0] ? exe : "/") >= (int)size)
		return pp_err_set(err, PP_INTERNAL, "daemon directory %s is too long", exe);
	return 0;
}

static int conf_split_args(struct local_priv *lp, const char *text, struct pp_err *err)
{
	char *save = NULL;
	char *tok;

	lp->fwd_args_buf = strdup(text);
	if (!lp->fwd_args_buf)
		return pp_err_set(err, PP_RESOURCE_EXHAUSTED, "out of memory");
	for (tok = strtok_r(lp->fwd_args_buf, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
		if (lp->n_fwd_args == LOCAL_MAX_FORWARDER_ARGS)
			return pp_err_set(err, PP_INVALID_ARGUMENT,
					  "LOCAL_FORWARDER_ARGS has more than %d arguments",
					  LOCAL_MAX_FORWARDER_ARGS);
		lp->fwd_args[lp->n_fwd_args++] = tok;
	}
	return 0;
}

int local_conf_load(struct local_priv *lp, const struct config *cfg, struct pp_err *err)
{
	char dir[PATH_MAX];
	const char *agent = config_str(cfg, "LOCAL_AGENT_BIN");
	const char *bin_dir = config_str(cfg, "LOCAL_BIN_DIR");

	if (bin_dir[0]) {
		if (snprintf(dir, sizeof(dir), "%s", bin_dir) >= (int)sizeof(dir))
			return pp_err_set(err, PP_INVALID_ARGUMENT, "LOCAL_BIN_DIR is too long");
	} else if (conf_exe_dir(dir, sizeof(dir), err) < 0) {
		return -1;
	}
	if (conf_join(lp->bin_user_data, sizeof(lp->bin_user_data), dir, LOCAL_BIN_USER_DATA, err) < 0 ||
	    conf_join(lp->bin_forwarder, sizeof(lp->bin_forwarder), dir, LOCAL_BIN_FORWARDER, err) < 0)
		return -1;
	if (agent[0]) {
		if (snprintf(lp->bin_agent, sizeof(lp->bin_agent), "%s", agent) >= (int)sizeof(lp->bin_agent))
			return pp_err_set(err, PP_INVALID_ARGUMENT, "LOCAL_AGENT_BIN is too long");
		lp->agent_is_mock = false;
	} else {
		if (conf_join(lp->bin_agent, sizeof(lp->bin_agent), dir, LOCAL_BIN_MOCK_AGENT, err) < 0)
			return -1;
		lp->agent_is_mock = true;
	}
	lp->boot_delay_ms = config_duration_ms(cfg, "LOCAL_BOOT_DELAY");
	return conf_split_args(lp, config_str(cfg, "LOCAL_FORWARDER_ARGS"), err);
}

static int conf_check_bin(const char *path, const char *what, struct pp_err *err)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return pp_err_errno(err, PP_FAILED_PRECONDITION, errno,
				    "local provider: %s not found at %s (set LOCAL_BIN_DIR)", what, path);
	if (!S_ISREG(st.st_mode) || access(path, X_OK) < 0)
		return pp_err_set(err, PP_FAILED_PRECONDITION,
				  "local provider: %s at %s is not an executable file", what, path);
	return 0;
}

int local_conf_check_bins(const struct local_priv *lp, struct pp_err *err)
{
	if (conf_check_bin(lp->bin_user_data, LOCAL_BIN_USER_DATA, err) < 0 ||
	    conf_check_bin(lp->bin_forwarder, LOCAL_BIN_FORWARDER, err) < 0)
		return -1;
	if (lp->agent_is_mock)
		return conf_check_bin(lp->bin_agent, LOCAL_BIN_MOCK_AGENT, err);
	return conf_check_bin(lp->bin_agent, "LOCAL_AGENT_BIN", err);
}

void local_conf_free(struct local_priv *lp)
{
	if (!lp)
		return;
	free(lp->fwd_args_buf);
	lp->fwd_args_buf = NULL;
	lp->n_fwd_args = 0;
}
