/* store_schema — what both backends decide when they open a database:
 * create the schema when there is none, upgrade one of an older version,
 * refuse one of a newer version (the gateway exits 2: upgrade it first) or
 * one whose version table is empty. The backend gives the steps as
 * functions on its own connection and holds its own lock around
 * sschema_setup (SQLite: BEGIN IMMEDIATE; PostgreSQL: an advisory lock), so
 * that of several openers one decides and the others find it done.
 * Any thread; no state of its own. */
#ifndef CW_STORE_SCHEMA_H
#define CW_STORE_SCHEMA_H

#include <stddef.h>
#include <stdint.h>

struct sschema_ops {
	/* 1 when the database has a schema version table, 0 when not, -1
	 * with the reason in err */
	int (*exists)(void *conn, char *err, size_t errlen);
	/* creates the whole schema, recording the current version: 0, or -1 */
	int (*create)(void *conn, char *err, size_t errlen);
	/* the version recorded (0 when the table is empty), or -1 */
	int64_t (*version)(void *conn, char *err, size_t errlen);
	/* brings a database of version from (1 … current - 1) to the current
	 * version and records it: 0, or -1 */
	int (*upgrade)(void *conn, int64_t from, char *err, size_t errlen);
};

/* Runs the decision above for a build that writes version current.
 * 0 when the schema is current (created, upgraded or found so); -1 with the
 * reason in err (a newer version's names both numbers). */
int sschema_setup(const struct sschema_ops *ops, void *conn, int current, char *err, size_t errlen);

#endif
