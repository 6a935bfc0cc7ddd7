/*
 * Persisting a sandbox: its row in state.db (adaptor/store.h) and its rendered user-data,
 * kept beside the database as <state-dir>/user-data/<sandbox-id> (mode 0600: it holds the VM's
 * TLS server key) so that a StartVM after a daemon restart still has it. Workers call these;
 * the store serialises its own access.
 */
#ifndef PP_ADAPTOR_SANDBOX_DB_H
#define PP_ADAPTOR_SANDBOX_DB_H

#include "adaptor/daemon.h"

int sandbox_db_insert(struct daemon *d, const struct sandbox *sb, struct pp_err *err);
/* to == SANDBOX_FAILED records why (error_text); otherwise error_text is ignored. */
int sandbox_db_transition(struct daemon *d, const char *id, enum sandbox_state from,
			  enum sandbox_state to, const char *error_text, struct pp_err *err);
int sandbox_db_set_instance(struct daemon *d, const struct sandbox *sb, struct pp_err *err);
/* Removes the row and the user-data file; a missing row is not an error. */
int sandbox_db_remove(struct daemon *d, const char *id, struct pp_err *err);
/* Reads the user-data saved at CreateVM. */
int sandbox_db_load_user_data(struct daemon *d, const char *id, char **ret, size_t *ret_len,
			      struct pp_err *err);
/* Fills a sandbox from a row (reconcile). */
void sandbox_from_row(struct sandbox *sb, const struct sandbox_row *row);

#endif
