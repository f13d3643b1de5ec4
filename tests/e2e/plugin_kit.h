/* plugin_kit (prefix tk_) — what the plugin tests share: a plugin host loaded from the
 * built plugin directory (with optional plugin settings), one call's context
 * with the issues it gathers, mapping a format through the host in both
 * directions, issue checks, lookups in Bundles, and reading files.
 *
 * One host per process at a time (a plugin is dlopen'ed once per process,
 * so its settings belong to the host that started it last). Failures end
 * the current cmocka test. */
#ifndef CW_TEST_TK_PLUGIN_KIT_H
#define CW_TEST_TK_PLUGIN_KIT_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "base/arena.h"
#include "fhir/outcome.h"
#include "plugin/plugin_host.h"

extern struct plugin_host *tk_host;

/* Starts tk_host with the plugins of CW_PLUGIN_DIR (default
 * lib/crosswalk/plugins) and settings (the configuration's "plugins"
 * object as JSON text, or NULL); 0 when a plugin maps format. */
int tk_host_up(const char *format, const char *settings);
/* tk_host_up with the shipped code packs (profiles/codes) loaded, as the
 * gateway loads them; tk_host_down frees them. */
int tk_host_up_codes(const char *format, const char *settings);
void tk_host_down(void);

/* One call's context, and the issues it gathered. */
struct tk_call {
	struct arena arena;
	struct outcome oo;
	struct cw_ctx ctx;
};

void tk_call_begin(struct tk_call *c);
void tk_call_end(struct tk_call *c);

/* Maps text in format to FHIR: the Bundle, or NULL with the issues in c. */
cJSON *tk_to_fhir(struct tk_call *c, const char *format, enum cw_media media, const char *text);
/* Maps a FHIR tree (consumed) to native text (malloc'd), or NULL. */
char *tk_from_fhir(struct tk_call *c, const char *format, enum cw_media media, cJSON *in);

/* A document that came back (out) is the one that went in (doc): byte for
 * byte for CSV, the same JSON otherwise; path names it in the failure. */
void tk_expect_same_document(const char *path, bool csv, const char *doc, const char *out);

/* Every example of format in dir ("<format>-*.json" and "-*.csv") goes to
 * FHIR twice (the same Bundle both times), then back to the same document
 * without an issue; check (may be NULL) sees each Bundle first. Returns
 * how many examples there were. */
int tk_round_trip_examples(const char *dir, const char *format, void (*check)(const cJSON *bundle));
/* The CSV document at csv_path and its JSON form (made by the plugin) map
 * to the same resources (compared as sets: JSON groups by person). */
void tk_expect_csv_and_json_agree(const char *format, const char *csv_path);

/* Prints every issue to stderr as a TAP comment. */
void tk_dump(const struct outcome *oo);
/* Is there an issue of severity sev with code, at where (exactly) and whose
 * diagnostics contain text? NULL matches anything. */
bool tk_has_issue(const struct outcome *oo, enum outcome_severity sev, const char *code, const char *where,
		  const char *text);
/* The same, failing the test (with every issue printed) when there is none. */
void tk_expect_issue(const struct outcome *oo, enum outcome_severity sev, const char *code, const char *where,
		     const char *text);
size_t tk_count_severity(const struct outcome *oo, enum outcome_severity sev);
/* The JSON document doc in format is refused: no Bundle, and exactly the n
 * errors of expected, each {code, where, text} as tk_has_issue takes them
 * (NULL matches anything); fails the test otherwise. */
void tk_expect_json_refused(const char *format, const char *doc, size_t n, const char *const (*expected)[3]);

/* The JSON shapes every person-document format refuses: not an object, an
 * empty array, and an array of two documents (version 1, each with an empty
 * list member list, e.g. "encounters") for the same person. */
void tk_expect_json_shapes_refused(const char *format, const char *list);
/* The same for a CSV document. */
void tk_expect_csv_refused(const char *format, const char *doc, size_t n, const char *const (*expected)[3]);
/* The CSV shapes every CSV format refuses: a header of two columns (both of
 * its lines), an empty document (no header) and good_header alone (the
 * error's text no_rows, e.g. "no encounter rows"). */
void tk_expect_csv_shapes_refused(const char *format, const char *good_header, const char *no_rows);

/* Over HTTP, on a gateway of the harness (e2e/harness.h); each fails the
 * test when the gateway answers otherwise. */
struct gw;
struct resp;
/* POSTs doc (len bytes, Content-Type content_type) to /ingest/FORMAT?preview=true
 * twice: 200 both times (the answer printed when not) with the same
 * Bundle. The first answer in *r (resp_free it). */
void tk_http_preview_twice(const struct gw *g, const char *format, const char *content_type, const char *doc,
			   size_t len, struct resp *r);
/* POSTs the FHIR JSON bundle (len bytes) to /export/FORMAT asking for the
 * media accept ("application/json", "text/csv"): 200, the answer in *r
 * (resp_free it). */
void tk_http_export(const struct gw *g, const char *format, const char *accept, const char *bundle, size_t len,
		    struct resp *r);
/* tk_http_export as JSON gives the JSON document doc back (the same members,
 * in any order). */
void tk_http_export_json_is(const struct gw *g, const char *format, const char *bundle, size_t len, const char *doc);
/* The CSV document in the file csv_path, previewed through /ingest/FORMAT
 * and exported as CSV, comes back byte for byte. */
void tk_http_csv_round_trip(const struct gw *g, const char *format, const char *csv_path);
/* POSTs doc to /ingest/FORMAT (stored, no preview) as content_type: 422
 * with an OperationOutcome of exactly n issues, the i-th at the expression
 * exprs[i]. */
void tk_http_expect_refused(const struct gw *g, const char *format, const char *content_type, const char *doc, size_t n,
			    const char *const *exprs);

const cJSON *tk_get(const cJSON *o, const char *key);
/* A member's string, or NULL. */
const char *tk_sget(const cJSON *o, const char *key);
/* The n-th resource (0-based) of type in a Bundle, or NULL. */
const cJSON *tk_nth(const cJSON *bundle, const char *type, int n);
int tk_count_type(const cJSON *bundle, const char *type);

/* The whole file (malloc'd, NUL-terminated); its length in *len when not
 * NULL. Fails the test when it cannot be read. */
char *tk_slurp(const char *path, size_t *len);
/* getenv(name), or dflt when unset or empty. */
const char *tk_env_or(const char *name, const char *dflt);

#endif
