/* migrate — brings what plugins stored under ids of an older rule to the
 * ids they derive now (struct cw_plugin id_rule and upgrade, ABI 1.3;
 * docs/plugins.md, "Deterministic ids").
 *
 * For each initialised plugin whose id_rule is above the rule the store
 * records for it (the mark "ids:NAME"), every live resource of the store
 * goes through its upgrade: Patients first, then every other type, each
 * with its references to Patients that moved already rewritten. Then, in
 * one store transaction: a resource whose id changed is written under the
 * new id (unless a live resource is there already: that one is kept) and
 * its old id gets a deletion (its history stays readable); every
 * reference "Type/old-id" in the store is rewritten to the new id (a new
 * version of the resource that holds it); the marks are set to the
 * plugins' rules. When forwards(type) says so, each write gets its outbox
 * record in the same transaction, as any write of that type would.
 *
 * Idempotent: a plugin recognises only what its older rule made, and the
 * marks make a second run a no-op without reading the store.
 *
 * Threads: runs alone, before serving (the store's write lock is taken for
 * the whole run). Errors: -1 with the reason in err; nothing is written
 * then. */
#ifndef CW_MIGRATE_H
#define CW_MIGRATE_H

#include <stdbool.h>
#include <stddef.h>

#include "plugin/plugin_host.h"
#include "store/store.h"

struct migrate_counts {
	size_t moved;     /* resources written under a new id (old id deleted) */
	size_t rewritten; /* resources given a new version for their references alone */
};

int migrate_plugin_ids(struct store *s, const struct plugin_host *h, bool (*forwards)(void *ud, const char *type),
		       void *ud, struct migrate_counts *counts, char *err, size_t errlen);

#endif
