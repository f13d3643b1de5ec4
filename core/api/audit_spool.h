/* audit_spool — access records made where the store cannot be written
 * (docs/audit.md, "Commands").
 *
 * A command that discloses data beside a running gateway (crosswalk
 * billing) opens the store read-only: the gateway holds its write lock. Its
 * AuditEvents are spooled instead, durably, before anything is disclosed:
 * one file per run in data_dir/audit-spool/ (RUN.ndjson, one AuditEvent a
 * line, each with its id), written under a temporary name, fsync'd,
 * renamed and the directory fsync'd. The store's writer imports the spool:
 * the gateway when it starts (app_init), and the command itself at once
 * when no gateway holds the store. Importing stores each record under its
 * own id (one already stored is skipped: a spool imported twice, after a
 * crash between the commit and the removal, records nothing twice), commits
 * durably, then removes the file.
 *
 * Threads: any; the directory is shared by processes through rename. */
#ifndef CW_API_AUDIT_SPOOL_H
#define CW_API_AUDIT_SPOOL_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "store/store.h"

/* Spools evs (n of them; each gets a new id when it has none; borrowed)
 * under data_dir for run (a name of letters, digits and '-'). 0, or -1
 * with the reason in err: nothing may then be disclosed. */
int audit_spool_put(const char *data_dir, const char *run, cJSON *const *evs, size_t n, char *err, size_t errlen);

/* Imports every spooled run into st (its writer). Returns the number of
 * records stored, or -1 with the reason in err (what could not be stored
 * stays spooled for the next import). */
long audit_spool_import(struct store *st, const char *data_dir, char *err, size_t errlen);

#endif
