/* store_sql — search criteria to SQL text, shared by the store's SQL
 * backends (SQLite and PostgreSQL); internal to core/store.
 *
 * The schema both backends give the search: resource r(rid, type, id,
 * version, deleted, last_updated) and the index idx(rid, param, sys, val,
 * lo, hi), as store_sqlite.c and store_pg.c create them. ssql_criterion
 * appends one criterion as " AND …" on r; ssql_sort appends an ORDER BY.
 * Placeholders are "?" in the order of the binds pushed; the PostgreSQL
 * backend numbers them when it prepares the text.
 *
 * Errors: STORE_INVALID naming an unknown parameter, modifier or malformed
 * value; out of memory is recorded in the buffers (oom) and checked by the
 * caller once the text is complete. Threads: no shared state. */
#ifndef CW_STORE_SQL_H
#define CW_STORE_SQL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"
#include "fhir/search_params.h"

struct ssql_buf {
	char *p; /* malloc'd, NUL-terminated; the caller frees */
	size_t len, cap;
	bool oom;
	bool pg; /* PostgreSQL's dialect, else SQLite's */
};

enum ssql_bind_kind { SSQL_BIND_TEXT, SSQL_BIND_INT, SSQL_BIND_REAL };

struct ssql_bind {
	enum ssql_bind_kind kind;
	int64_t i;
	double d;
	char *s; /* owned */
};

struct ssql_binds {
	struct ssql_bind *v;
	size_t n, cap;
	bool oom;
};

/* What the criteria offer the query plan: a positive criterion on the
 * search index, or one on _id. */
enum { SSQL_DRIVE_IDX = 1, SSQL_DRIVE_ID = 2 };

void ssql_add(struct ssql_buf *b, const char *s);
/* Appends a copy of x (its text duplicated). */
void ssql_bind_push(struct ssql_binds *b, const struct ssql_bind *x);
void ssql_bind_str(struct ssql_binds *b, const char *s);
void ssql_bind_int(struct ssql_binds *b, int64_t i);
void ssql_bind_real(struct ssql_binds *b, double d);
void ssql_binds_release(struct ssql_binds *b);

/* _id is searched on the resource table itself: it has no index rows. */
bool ssql_is_id_param(const char *param);

/* One criterion p on resources of type (chains included), appended to sql
 * with its binds; *drive gets SSQL_DRIVE_* bits. */
enum store_status ssql_criterion(const char *type, const struct store_search_param *p, struct ssql_buf *sql,
				 struct ssql_binds *b, unsigned *drive, struct store_error *err);
/* " ORDER BY …" for _sort text sort (NULL: order of creation), ending with
 * r.rid so that ties keep one order. */
enum store_status ssql_sort(const char *type, const char *sort, struct ssql_buf *sql, struct ssql_binds *b,
			    struct store_error *err);

/* A search's two statements: count (how many live resources of the type
 * match; its binds count_binds) and page (id, version, last_updated, body,
 * op and sum of the current versions of one page; its binds page_binds:
 * the criteria's, the sort's, the limit and the offset). */
struct ssql_search {
	struct ssql_buf count, page;
	struct ssql_binds count_binds, page_binds;
};

/* Builds *s from q's criteria, sort, count and offset for resources of
 * type, in PostgreSQL's dialect (pg) or SQLite's. STORE_INVALID from a
 * criterion or the sort, STORE_NO_MEMORY; whatever the result, the caller
 * releases *s with ssql_search_release. */
enum store_status ssql_search_query(const char *type, const struct store_search *q, bool pg, struct ssql_search *s,
				    struct store_error *err);
void ssql_search_release(struct ssql_search *s);

/* "(SELECT <each element>)" of one bound JSON array of strings (the next
 * bind): json_each in SQLite, json_array_elements_text in PostgreSQL. */
void ssql_json_elements(struct ssql_buf *sql);

/* The bulk export's scan of q as one query (appended to sql, its binds to
 * b): id, body, version, last_updated and sum of each version of q->type
 * live at q->upto_seq, in the order of the log. STORE_INVALID from a
 * filter's criterion; STORE_NO_MEMORY when the text or binds ran out. */
enum store_status ssql_export_query(const struct store_export_query *q, struct ssql_buf *sql, struct ssql_binds *b,
				    struct store_error *err);

#endif
