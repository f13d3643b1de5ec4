/* privacy — security labels on the way in (docs/privacy.md).
 *
 * Every write path calls privacy_label_write on each resource after the
 * before-store (or before-upstream) hooks and before validation: REST
 * create, update and patch, batch and transaction entries, /ingest, the
 * writes passed through to the upstream. What is built from stored data
 * (a plugin operation's answer such as Claim/$build, an export's gathered
 * Bundle) goes through privacy_label_derived. The rules are app->labels
 * (fhir/seclabel.h, loaded from profiles_dir/security/labels.tsv).
 *
 * The writer. privacy_writer_of says who wrote a request: the request's
 * principal (core/auth: its client id, and part2_program from
 * auth.clients[].part2_program) while the handler runs; the local operator
 * when nobody was identified. A Part 2 program's writes carry the table's
 * "part2" labels (42CFRPart2 by default).
 *
 * Threads: any worker thread; nothing here keeps state. */
#ifndef CW_API_PRIVACY_H
#define CW_API_PRIVACY_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "api/context.h"
#include "store/store.h"

#define PRIVACY_LOCAL_OPERATOR "local-operator"
/* The meta.tag that records which client wrote 42CFRPart2 data (the code is
 * its client id): consent lets that program read its own records. */
#define PRIVACY_WRITER_SYSTEM "https://crosswalk.example.org/fhir/NamingSystem/client"

/* Who writes: the client id ("local-operator" for an unauthenticated
 * caller) and whether it is a Part 2 program. Strings are borrowed from the
 * request or static. */
struct privacy_writer {
	const char *client_id;
	bool part2_program;
};

void privacy_writer_of(const struct app *app, const struct http_request *req, struct privacy_writer *w);

/* The other resources of one Bundle, which a resource may reference before
 * they are stored. */
struct privacy_sibling {
	const char *type, *id;
	cJSON *resource; /* NULL: none (a DELETE, a GET) */
	bool written;    /* stored already */
};

/* Labels res (in place) before it is written: the table's labels for its
 * codes, the writer's ("part2" when a Part 2 program), and those of the
 * resources it references that pass theirs on (the table's "from" lines),
 * found among siblings (n of them; NULL: none) first, else in the store.
 * Labels already on res stay. Returns 0, or -1 on OOM. */
int privacy_label_write(const struct app *app, const struct privacy_writer *w, cJSON *res,
			const struct privacy_sibling *siblings, size_t n);

/* True when a write of type may pass its labels on to other resources
 * (a "to" line of the table): the write then runs in one transaction with
 * privacy_pass_on. */
bool privacy_passes_on(const struct app *app, const char *type);

/* Passes the labels of res (as it was stored) on to the resources it
 * references that take them ("to" lines): a sibling not written yet gets
 * them in place; a stored one that lacks any is stored again with them
 * added, and recorded for delivery when its type is delivered
 * (config_delivers). Call inside the write's transaction, after res is
 * stored. Returns STORE_OK, or the store's failure with err filled. */
enum store_status privacy_pass_on(const struct app *app, const cJSON *res, struct privacy_sibling *siblings, size_t n,
				  struct store_error *err);

/* Labels what was built from stored data: res by its codes and what it
 * references (as above, from the store); a Bundle each entry's resource so,
 * and the Bundle itself with the union of its entries' labels. Returns 0,
 * or -1 on OOM. */
int privacy_label_derived(const struct app *app, cJSON *res);

/* "system|code" of every label of res, comma-separated, into out (n bytes;
 * "" for none). For the X-Security-Labels header. */
void privacy_labels_text(const cJSON *res, char *out, size_t n);

#endif
