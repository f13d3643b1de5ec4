/* End-to-end harness: starts the real bin/crosswalk on 127.0.0.1 with an
 * ephemeral port and a private temporary directory, drives it over loopback
 * with libcurl or raw sockets, and stops it by its own PID.
 *
 * Environment (set by `make test`): CW_BIN, the gateway binary;
 * CW_PLUGIN_DIR, the built plugins; CW_TEST_PLUGIN_DIR, the test plugins;
 * CW_TEST_SHIM_DIR, the test shims (tests/shims). Optional: CW_TEST_FILTER,
 * a cmocka name pattern ('*', '?'): only the matching test cases run. */
#ifndef CW_TEST_HARNESS_H
#define CW_TEST_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <cjson/cJSON.h>

#include "testenv.h"

struct gw {
	pid_t pid;
	unsigned port;
	char dir[256];  /* private temporary directory */
	char conf[300]; /* its configuration file */
	char log[300];  /* its stderr */
};

/* Starts a gateway, which inherits the test program's environment (setenv
 * first, e.g. for upstream.bearer_token_env). extra_json is spliced into the
 * top-level configuration object (e.g. "\"limits\":{\"max_body_bytes\":2048}")
 * and may be NULL; listen, data_dir and plugin_dir are set by the harness
 * unless extra_json gives them. Returns 0 once the gateway logs that it
 * listens, else -1. */
int gw_start(struct gw *gw, const char *extra_json);

/* As gw_start, with the shared object shim (a path) preloaded into the
 * gateway only and env (NAME, VALUE pairs, NULL-terminated; may be NULL) set
 * for its start; the test's own environment is restored afterwards. Under
 * AddressSanitizer (CW_SANITIZE) the runtime's link-order check is turned off
 * for the gateway: a preloaded library comes before the runtime, which is
 * harmless here. */
int gw_start_preloaded(struct gw *gw, const char *extra_json, const char *shim, const char *const *env);

/* As gw_start, with extra arguments after "serve -c FILE" (NULL-terminated,
 * e.g. {"--plugins", dir, NULL}). */
int gw_start_args(struct gw *gw, const char *extra_json, const char *const *args);

/* As gw_start, but with extra arguments after "serve -c FILE" and without
 * waiting: returns the exit status if the process ends within timeout_ms,
 * else -1 (the process is then killed). For refusal tests. */
int gw_run_expect_exit(const char *extra_json, const char *const *args, int timeout_ms, char *out,
		       size_t outlen);

/* Runs the gateway binary with args (a command and its arguments,
 * NULL-terminated) followed by "-c FILE", FILE written as for gw_start.
 * Returns the exit status if the process ends within timeout_ms, else -1
 * (it is then killed); its standard output then standard error go to out. */
int gw_run_command(const char *extra_json, const char *const *args, int timeout_ms, char *out, size_t outlen);

/* Sends SIGTERM and waits up to timeout_ms; returns the exit status (or
 * 128+signal, or -1 on timeout after which it is killed). */
int gw_stop(struct gw *gw, int timeout_ms);

/* Reads the gateway's stderr so far into a new malloc'd string. */
char *gw_log(const struct gw *gw);

struct resp {
	long status;
	char *body;
	size_t len;
	char headers[8192];
};

/* One HTTP request with libcurl. headers: NULL-terminated "Name: value"
 * lines or NULL. body may be NULL. Returns 0 if an HTTP answer came back. */
int http_do(const struct gw *gw, const char *method, const char *path, const char *const *headers,
	    const char *body, size_t body_len, struct resp *out);
/* The same, given up (-1) when no answer came within timeout_ms (http_do
 * waits 30 s): for a test that an answer comes while something else waits. */
int http_do_within(const struct gw *gw, long timeout_ms, const char *method, const char *path,
		   const char *const *headers, const char *body, size_t body_len, struct resp *out);
void resp_free(struct resp *r);
/* Header value from a response (case-insensitive name), copied into buf. */
const char *resp_header(const struct resp *r, const char *name, char *buf, size_t cap);

/* What an HTTPS client trusts and shows: a CA file, a client certificate
 * and its key (empty: the system's CAs, no certificate); tls_min and
 * tls_max (CURL_SSLVERSION_* and CURL_SSLVERSION_MAX_* values, 0: libcurl's
 * defaults) pin the protocol version. */
struct tls_files {
	char ca_file[300], client_cert[300], client_key[300];
	long tls_min, tls_max;
};

/* One request to any loopback URL (a test server of the suite). */
int url_do(const char *url, const char *method, const char *const *headers, const char *body, size_t body_len,
	   struct resp *out);

/* As http_do, over HTTPS to a gateway serving TLS (https://127.0.0.1:PORT). */
int https_do(const struct gw *gw, const struct tls_files *tls, const char *method, const char *path,
	     const char *const *headers, const char *body, size_t body_len, struct resp *out);

/* Raw TCP to the gateway from source address src (NULL = 127.0.0.1). */
int raw_connect(const struct gw *gw, const char *src);
int raw_send(int fd, const char *data, size_t len);
/* Reads until EOF, timeout_ms or cap; returns bytes read (>=0) or -1. */
long raw_recv_all(int fd, char *buf, size_t cap, int timeout_ms);
/* True when the server closed the connection within timeout_ms (EOF or
 * reset, with or without any bytes first). */
bool raw_closed_within(int fd, int timeout_ms);

long now_ms(void);
void sleep_ms(long ms);

/* The number the gateway's GET /outbox summary gives for key ("pending",
 * "dead", ...); -1 when it cannot be read. */
long gw_outbox_number(const struct gw *g, const char *key);
/* crosswalk_auth_refused_total{reason="reason"} of the gateway's GET
 * /metrics (asked from loopback without credentials); -1 when it cannot be
 * read. */
long gw_auth_refused(const struct gw *g, const char *reason);
/* Waits until the outbox has nothing pending; false after timeout_ms. */
bool gw_outbox_drained(const struct gw *g, long timeout_ms);

/* An access token of gateway g for client with scope (space-separated), as
 * its token endpoint issues them: signed with the key the gateway generated
 * (g->dir/var/auth-signing-key.pem; kid its thumbprint), iss and aud its own
 * /auth and /fhir on 127.0.0.1, sub and client_id the client, valid for ten
 * minutes, a jti of its own. malloc'd; fails the test when the key cannot
 * be read or the token signed. */
char *gw_token(const struct gw *g, const char *client, const char *scope);

/* A compact JWS (typ at+jwt) of claims signed with the private key in the
 * PEM file key_file (the core's JWS code, OpenSSL), kid its thumbprint, the
 * key's default algorithm (RS384 for RSA): for an issuer's tokens of one's
 * own making. malloc'd; fails the test as gw_token does. */
char *harness_sign_token(const char *key_file, const cJSON *claims);

/* method path on gateway g with "Authorization: Bearer token", Content-Type
 * content_type (application/fhir+json when NULL) and body (may be NULL).
 * Returns the HTTP status, the answer in *r (resp_free it); fails the test
 * when no answer came. */
long gw_call_bearer(const struct gw *g, const char *token, const char *method, const char *path,
		    const char *content_type, const char *body, struct resp *r);
/* Every resource a search of g finds: GET path (e.g.
 * "/fhir/AuditEvent?_count=500"), then each page its Bundle's "next" link
 * names, their entries' resources in one array (the caller's: cJSON_Delete).
 * Fails the test on an answer other than 200. */
cJSON *gw_search_all(const struct gw *g, const char *path);
/* PUT path with body as a client holding token: fails the test unless the
 * gateway answers 200 or 201. For a test's setup. */
void gw_put_bearer(const struct gw *g, const char *token, const char *path, const char *body);

/* POSTs doc (len bytes, Content-Type content_type) to /ingest/format of g
 * and fails the test unless it is stored: 201 with a transaction-response
 * (the answer is printed when not). The id of the first Patient written
 * (from its location) goes to patient_id; fails the test when there is
 * none. */
void gw_ingest_stored(const struct gw *g, const char *format, const char *content_type, const char *doc, size_t len,
		      char *patient_id, size_t n);
/* GET /export/format?patient=patient_id&_format=json of g answers 200 with
 * the same JSON as doc (members in any order); fails the test otherwise,
 * printing what came. */
void gw_expect_export_json(const struct gw *g, const char *format, const char *patient_id, const char *doc);

/* ------------------------------------------------------------ upstream */

/* The independent upstream FHIR server of tests/upstream (Medplum's FHIR
 * router over its in-memory repository, in Node). */
struct upstream_srv {
	pid_t pid;
	unsigned port;
	char base[128]; /* http://127.0.0.1:PORT/fhir/R4 (https:// when started with --tls-cert) */
	char log[300];
	/* For upstream_do over https, set after starting: the CA to trust and,
	 * when the server asks for one (--client-ca), a client certificate and
	 * its key. Empty: the system's CAs, no client certificate. */
	char ca_file[300], client_cert[300], client_key[300];
};

/* NULL when the tools the upstream test server needs (node and npm, both
 * optional for the suite) are on PATH, else the reason its tests skip. */
const char *upstream_missing(void);
/* At the top of a test that needs the upstream test server: skips the test
 * (tests/testenv.h, skip_because) when upstream_missing() says why. */
#define UPSTREAM_NEEDED()                                                                                              \
	do {                                                                                                           \
		if (upstream_missing())                                                                                \
			skip_because(upstream_missing());                                                              \
	} while (0)
/* Installs the Node packages once (tests/upstream/install.sh); 0 when ready. */
int upstream_install(void);
/* Starts the server on port (0: any free one) and waits for its "listening"
 * line; 0 on success. */
int upstream_start(struct upstream_srv *u, unsigned port);
/* The same with extra arguments for server.mjs (NULL-terminated, e.g.
 * {"--tls-cert", file, "--tls-key", file, NULL}; see tests/upstream/README.md). */
int upstream_start_args(struct upstream_srv *u, unsigned port, const char *const *args);
/* Any Node test server: runs `node script --port PORT args...` and waits
 * (up to three minutes) for its "listening 127.0.0.1:PORT" line; u->base is then
 * http(s)://127.0.0.1:PORT. Stop it with upstream_stop. */
int node_server_start(struct upstream_srv *u, const char *script, unsigned port, const char *const *args);
/* Installs the packages of the independent OpenID provider (tests/idp,
 * oidc-provider) once; 0 when ready. */
int idp_install(void);
/* Installs the provider's packages (idp_install) and starts
 * tests/idp/server.mjs on a free loopback port with args (its --client
 * options, NULL-terminated; tests/idp/README.md); 0 once it listens, else
 * -1 with the reason on stderr. Stop it with upstream_stop. */
int idp_start(struct upstream_srv *u, const char *const *args);
/* An access token of the provider p by client credentials (HTTP Basic
 * client:secret) for scope and resource, both already form-encoded.
 * malloc'd; NULL when the provider refuses (its answer then on stderr). */
char *idp_token(const struct upstream_srv *p, const char *client, const char *secret, const char *scope,
		const char *resource);
/* Stops it by its PID (SIGTERM, then SIGKILL). */
void upstream_stop(struct upstream_srv *u);
/* A free loopback port (bound and released). */
unsigned free_port(void);
/* One request to the upstream server itself (admin API or FHIR). */
int upstream_do(const struct upstream_srv *u, const char *method, const char *path, const char *body,
		struct resp *out);

/* The "upstream" member of a gateway configuration for u: routes (the
 * members of upstream.routes), short retry delays and timeouts for tests,
 * then extra (members starting with a comma, or NULL). */
void upstream_gw_config(char *buf, size_t n, const struct upstream_srv *u, const char *routes, const char *extra);
/* How many resources of type with identifier system|value the upstream has
 * (admin count); -1 when it cannot tell. */
long upstream_count(const struct upstream_srv *u, const char *type, const char *ident);
/* The versions the upstream holds of type/id (its history), oldest first,
 * as the first given name of each joined with commas ("v1,v2"); "" when
 * none or unreadable ("?" for a version without one). */
void upstream_history_given(const struct upstream_srv *u, const char *type, const char *id, char *out, size_t n);
/* Adds a fault (admin API, a JSON object or array); 0 when accepted. */
int upstream_fault(const struct upstream_srv *u, const char *json);

/* Removes dir (a /tmp/cw-… directory) when the test program exits, unless
 * CW_KEEP_TMP is set. */
void harness_remove_at_exit(const char *dir);

/* The built plugins' folder (CW_PLUGIN_DIR, else lib/crosswalk/plugins) and
 * the test plugins' (CW_TEST_PLUGIN_DIR, else build/default/test-plugins). */
const char *harness_plugin_dir(void);
const char *harness_test_plugin_dir(void);
/* A fresh private folder /tmp/cw-plug-XXXXXX written into buf (cap bytes),
 * mode 0755 as a plugin folder must be (no one else may write to it),
 * removed at exit; fails the test when it cannot be made. Returns buf. */
char *harness_new_dir(char *buf, size_t cap);
/* Copies the file from to the file to (made or truncated) and gives it mode;
 * fails the test when it cannot. */
void harness_copy_file(const char *from, const char *to, mode_t mode);
/* Copies the plugin NAME.so of folder src into folder dir as AS.so (as
 * NULL: NAME.so) with mode; fails the test when it cannot. */
void harness_put_plugin(const char *dir, const char *src, const char *name, const char *as, mode_t mode);
/* A fresh private plugin folder (harness_new_dir, into buf) holding a copy,
 * mode 0755, of each test plugin named (NAME.so of harness_test_plugin_dir;
 * the list ends with NULL): for `serve --plugins DIR`. Fails the test when
 * it cannot be made. Returns buf. */
char *harness_test_plugins(char *buf, size_t cap, ...) __attribute__((sentinel));

/* The issue of the OperationOutcome oo (a parsed answer) whose details carry
 * the validator's message id msgid (code system
 * https://crosswalk.example.org/fhir/CodeSystem/validation-message) at the
 * expression expr; NULL when there is none. */
const cJSON *harness_oo_issue(const cJSON *oo, const char *msgid, const char *expr);

/* Bulk export (docs/bulk.md) as a client runs it, on gateway g with token
 * (NULL: no Authorization header). Each fails the test when the gateway
 * answers otherwise.
 * - bulk_path_of: the path of an absolute URL the gateway gave.
 * - bulk_kickoff: GET path (body NULL) or POST path with body (a
 *   Parameters resource) with "Prefer: respond-async" (prefer NULL) or
 *   "Prefer: " prefer: 202 with Content-Location; the status path
 *   (malloc'd).
 * - bulk_wait_manifest: polls the status path until it answers 200 (within
 *   timeout_ms): every 202 on the way carries X-Progress and Retry-After,
 *   the 200 is application/json; the manifest (cJSON_Delete it).
 * - bulk_download: every file of type the manifest lists: 200,
 *   application/fhir+ndjson, every line ending in a newline and holding one
 *   resource of type, as many lines as the manifest's count; the
 *   resources in order (an array; cJSON_Delete it).
 * - bulk_flow: the whole flow for path: kick-off (GET), the manifest into
 *   *manifest (NULL: deleted), every output fetched: an object of each
 *   type's resources (bulk_download), which holds every type the manifest
 *   lists; *status_path (NULL: freed) the status path. */
const char *bulk_path_of(const char *url);
char *bulk_kickoff(const struct gw *g, const char *token, const char *method, const char *path, const char *body,
		   const char *prefer);
cJSON *bulk_wait_manifest(const struct gw *g, const char *token, const char *status_path, long timeout_ms);
cJSON *bulk_download(const struct gw *g, const char *token, const cJSON *manifest, const char *type);
cJSON *bulk_flow(const struct gw *g, const char *token, const char *path, cJSON **manifest, char **status_path);
/* Runs the Node bulk client (tests/e2e/node/bulk_client.js) with args
 * (run from the repository's root); its output (trimmed) into out. The
 * exit status; a failing run's output goes to stderr. */
int bulk_node_client(const char *args, char *out, size_t cap);

/* Gateways on one PostgreSQL database (a real server, tests/pgserver.h).
 * harness_pg_store writes into buf the configuration member that puts a
 * gateway's store on pg's database, with more members of "postgresql"
 * (e.g. "\"lease_ms\":3000") or none (NULL), and returns buf.
 * harness_pg_gateways starts a fresh server into pg, then n gateways g[0..n)
 * (n may be 0) on its database, each configured with extra_json (NULL:
 * nothing more) and the store member; 0, or -1 with the reason on stderr
 * (what was started is left for the caller to stop: pg_server_stop, and
 * gw_stop on each g[i] with a pid > 0: harness_pg_stop).
 * harness_pg_stop stops each g[i] with a pid > 0 (within 10 s; its pid
 * then 0), then the server, and removes its directory. */
struct pg_server;
char *harness_pg_store(char *buf, size_t cap, const struct pg_server *pg, const char *more);
int harness_pg_gateways(struct pg_server *pg, struct gw *g, int n, const char *extra_json);
void harness_pg_stop(struct pg_server *pg, struct gw *g, int n);

/* Makes the test PKI (tests/upstream/pki.sh: a CA, server and client
 * certificates) in a fresh /tmp/cw-pki-… directory written into dir, removed
 * at exit. Without the openssl command it leaves dir empty and returns 0, so
 * the tests that need the PKI skip; -1 when making it failed. */
int harness_make_pki(char *dir, size_t n);

#endif
