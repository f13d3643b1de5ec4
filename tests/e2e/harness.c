#include "harness.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "auth/jwt.h"
#include "base/crypto.h"
#include "pgserver.h"

#define HARNESS_MSG_SYSTEM "https://crosswalk.example.org/fhir/CodeSystem/validation-message"

/* CW_TEST_FILTER: only the test cases whose name matches (cmocka's pattern,
 * '*' and '?'), set before main runs them (tools/mutate.sh uses it). */
__attribute__((constructor)) static void test_filter(void)
{
	const char *f = getenv("CW_TEST_FILTER");
	if (f && *f)
		cmocka_set_test_filter(f);
}

long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

long gw_outbox_number(const struct gw *g, const char *key)
{
	struct resp r;
	if (http_do(g, "GET", "/outbox?_count=0", NULL, NULL, 0, &r) != 0 || r.status != 200) {
		resp_free(&r);
		return -1;
	}
	cJSON *j = cJSON_Parse(r.body);
	resp_free(&r);
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
	long n = cJSON_IsNumber(v) ? (long)v->valuedouble : -1;
	cJSON_Delete(j);
	return n;
}

long gw_auth_refused(const struct gw *g, const char *reason)
{
	struct resp r;
	if (http_do(g, "GET", "/metrics", NULL, NULL, 0, &r) != 0 || r.status != 200) {
		resp_free(&r);
		return -1;
	}
	char key[128];
	snprintf(key, sizeof key, "crosswalk_auth_refused_total{reason=\"%s\"} ", reason);
	const char *p = strstr(r.body, key);
	long n = p ? strtol(p + strlen(key), NULL, 10) : -1;
	resp_free(&r);
	return n;
}

char *harness_sign_token(const char *key_file, const cJSON *claims)
{
	char why[256], kid[44];
	assert_int_equal(crypto_init(), 0);
	struct crypto_key *k = crypto_key_load_private(key_file, why, sizeof why);
	if (!k)
		fail_msg("%s: %s", key_file, why);
	assert_int_equal(crypto_key_thumbprint(k, kid), 0);
	char *t = jwt_sign(k, crypto_key_default_alg(k, true), kid, "at+jwt", claims);
	crypto_key_free(k);
	assert_non_null(t);
	return t;
}

char *gw_token(const struct gw *g, const char *client, const char *scope)
{
	static int serial;
	char key[400], iss[128], aud[128], jti[32];
	snprintf(key, sizeof key, "%s/var/auth-signing-key.pem", g->dir);
	snprintf(iss, sizeof iss, "http://127.0.0.1:%u/auth", g->port);
	snprintf(aud, sizeof aud, "http://127.0.0.1:%u/fhir", g->port);
	snprintf(jti, sizeof jti, "gw-token-%d", ++serial);
	cJSON *c = cJSON_CreateObject();
	assert_non_null(c);
	cJSON_AddStringToObject(c, "iss", iss);
	cJSON_AddStringToObject(c, "aud", aud);
	cJSON_AddStringToObject(c, "sub", client);
	cJSON_AddStringToObject(c, "client_id", client);
	cJSON_AddStringToObject(c, "scope", scope);
	cJSON_AddNumberToObject(c, "exp", (double)(time(NULL) + 600));
	cJSON_AddStringToObject(c, "jti", jti);
	char *t = harness_sign_token(key, c);
	cJSON_Delete(c);
	return t;
}

long gw_call_bearer(const struct gw *g, const char *token, const char *method, const char *path,
		    const char *content_type, const char *body, struct resp *r)
{
	char h[9000], c[128];
	snprintf(h, sizeof h, "Authorization: Bearer %s", token);
	snprintf(c, sizeof c, "Content-Type: %s", content_type ? content_type : "application/fhir+json");
	const char *hdrs[] = {h, c, NULL};
	assert_int_equal(http_do(g, method, path, hdrs, body, body ? strlen(body) : 0, r), 0);
	return r->status;
}

void gw_put_bearer(const struct gw *g, const char *token, const char *path, const char *body)
{
	struct resp r;
	long st = gw_call_bearer(g, token, "PUT", path, NULL, body, &r);
	resp_free(&r);
	if (st != 200 && st != 201)
		fail_msg("PUT %s: %ld", path, st);
}

cJSON *gw_search_all(const struct gw *g, const char *path)
{
	cJSON *out = cJSON_CreateArray();
	char at[1024]; /* a page's path; http_do prefixes the origin within its 2048 */
	snprintf(at, sizeof at, "%s", path);
	while (at[0]) {
		struct resp r;
		assert_int_equal(http_do(g, "GET", at, NULL, NULL, 0, &r), 0);
		if (r.status != 200)
			fail_msg("GET %s: %ld %s", at, r.status, r.body);
		cJSON *b = cJSON_Parse(r.body);
		resp_free(&r);
		assert_non_null(b);
		cJSON *e;
		cJSON_ArrayForEach(e, cJSON_GetObjectItem(b, "entry"))
		{
			cJSON_AddItemToArray(out, cJSON_Duplicate(cJSON_GetObjectItem(e, "resource"), 1));
		}
		at[0] = '\0';
		cJSON *l;
		cJSON_ArrayForEach(l, cJSON_GetObjectItem(b, "link"))
		{
			const char *rel = cJSON_GetStringValue(cJSON_GetObjectItem(l, "relation"));
			const char *url = cJSON_GetStringValue(cJSON_GetObjectItem(l, "url"));
			const char *p = url ? strstr(url, "/fhir/") : NULL;
			if (rel && p && !strcmp(rel, "next"))
				snprintf(at, sizeof at, "%s", p);
		}
		cJSON_Delete(b);
	}
	return out;
}

void gw_ingest_stored(const struct gw *g, const char *format, const char *content_type, const char *doc, size_t len,
		      char *patient_id, size_t n)
{
	char path[200], ct[160];
	snprintf(path, sizeof path, "/ingest/%s", format);
	snprintf(ct, sizeof ct, "Content-Type: %s", content_type);
	const char *hdrs[] = {ct, NULL};
	struct resp r;
	assert_int_equal(http_do(g, "POST", path, hdrs, doc, len, &r), 0);
	if (r.status != 201)
		fprintf(stderr, "# %s\n", r.body ? r.body : "");
	assert_int_equal(r.status, 201);
	cJSON *tr = cJSON_Parse(r.body);
	resp_free(&r);
	const cJSON *type = cJSON_GetObjectItemCaseSensitive(tr, "type");
	assert_true(cJSON_IsString(type) && strcmp(type->valuestring, "transaction-response") == 0);
	patient_id[0] = '\0';
	const cJSON *e;
	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(tr, "entry"))
	{
		const cJSON *loc =
			cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(e, "response"), "location");
		const char *p = cJSON_IsString(loc) ? strstr(loc->valuestring, "/Patient/") : NULL;
		if (p) {
			snprintf(patient_id, n, "%.*s", (int)strcspn(p + 9, "/"), p + 9);
			break;
		}
	}
	cJSON_Delete(tr);
	if (!patient_id[0])
		fail_msg("POST %s wrote no Patient", path);
}

void gw_expect_export_json(const struct gw *g, const char *format, const char *patient_id, const char *doc)
{
	char path[300];
	snprintf(path, sizeof path, "/export/%s?patient=%s&_format=json", format, patient_id);
	struct resp r;
	assert_int_equal(http_do(g, "GET", path, NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	cJSON *want = cJSON_Parse(doc), *got = cJSON_Parse(r.body);
	bool same = want && cJSON_Compare(want, got, true);
	if (!same)
		fprintf(stderr, "# got %s\n", r.body ? r.body : "");
	cJSON_Delete(want);
	cJSON_Delete(got);
	resp_free(&r);
	assert_true(same);
}

bool gw_outbox_drained(const struct gw *g, long timeout_ms)
{
	long until = now_ms() + timeout_ms;
	while (now_ms() < until) {
		if (gw_outbox_number(g, "pending") == 0)
			return true;
		sleep_ms(50);
	}
	return false;
}

/* Temporary directories made here go when the test program exits, unless
 * CW_KEEP_TMP is set (a failing stop prints the gateway's log tail first). */
static char *tmp_dirs[512];
static size_t n_tmp_dirs;

static void remove_tmp_dirs(void)
{
	const char *keep = getenv("CW_KEEP_TMP");
	if (keep && *keep)
		return;
	for (size_t i = 0; i < n_tmp_dirs; i++) {
		char cmd[600];
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_dirs[i]);
		if (system(cmd) != 0)
			fprintf(stderr, "# could not remove %s\n", tmp_dirs[i]);
		free(tmp_dirs[i]);
	}
	n_tmp_dirs = 0;
}

void harness_remove_at_exit(const char *dir)
{
	if (n_tmp_dirs == 0)
		atexit(remove_tmp_dirs);
	if (n_tmp_dirs < sizeof tmp_dirs / sizeof *tmp_dirs && strncmp(dir, "/tmp/cw-", 8) == 0)
		tmp_dirs[n_tmp_dirs++] = strdup(dir);
}

int harness_make_pki(char *dir, size_t n)
{
	dir[0] = '\0';
	if (!have_tool("openssl"))
		return 0;
	char tmpl[] = "/tmp/cw-pki-XXXXXX";
	if (!mkdtemp(tmpl))
		return -1;
	harness_remove_at_exit(tmpl);
	char cmd[256];
	snprintf(cmd, sizeof cmd, "bash tests/upstream/pki.sh '%s'", tmpl);
	if (system(cmd) != 0) {
		fprintf(stderr, "# tests/upstream/pki.sh failed (is the openssl command installed?)\n");
		return -1;
	}
	snprintf(dir, n, "%s", tmpl);
	return 0;
}

static const char *env_or(const char *name, const char *dflt)
{
	const char *v = getenv(name);
	return v && *v ? v : dflt;
}

const char *harness_plugin_dir(void) { return env_or("CW_PLUGIN_DIR", "lib/crosswalk/plugins"); }

const char *harness_test_plugin_dir(void) { return env_or("CW_TEST_PLUGIN_DIR", "build/default/test-plugins"); }

char *harness_new_dir(char *buf, size_t cap)
{
	assert_true(cap > sizeof "/tmp/cw-plug-XXXXXX");
	snprintf(buf, cap, "/tmp/cw-plug-XXXXXX");
	assert_non_null(mkdtemp(buf));
	harness_remove_at_exit(buf);
	assert_int_equal(chmod(buf, 0755), 0);
	return buf;
}

void harness_copy_file(const char *from, const char *to, mode_t mode)
{
	FILE *in = fopen(from, "rb");
	if (!in)
		fail_msg("cannot read %s", from);
	FILE *out = fopen(to, "wb");
	if (!out) {
		fclose(in);
		fail_msg("cannot write %s", to);
	}
	char buf[65536];
	size_t n;
	bool ok = true;
	while (ok && (n = fread(buf, 1, sizeof buf, in)) > 0)
		ok = fwrite(buf, 1, n, out) == n;
	ok = ok && !ferror(in);
	fclose(in);
	ok = fclose(out) == 0 && ok;
	if (!ok)
		fail_msg("cannot copy %s to %s", from, to);
	assert_int_equal(chmod(to, mode), 0);
}

void harness_put_plugin(const char *dir, const char *src, const char *name, const char *as, mode_t mode)
{
	char from[512], to[512];
	snprintf(from, sizeof from, "%s/%s.so", src, name);
	snprintf(to, sizeof to, "%s/%s.so", dir, as ? as : name);
	harness_copy_file(from, to, mode);
}

char *harness_test_plugins(char *buf, size_t cap, ...)
{
	harness_new_dir(buf, cap);
	va_list ap;
	va_start(ap, cap);
	for (const char *name; (name = va_arg(ap, const char *)) != NULL;)
		harness_put_plugin(buf, harness_test_plugin_dir(), name, NULL, 0755);
	va_end(ap);
	return buf;
}

const cJSON *harness_oo_issue(const cJSON *oo, const char *msgid, const char *expr)
{
	const cJSON *is;
	cJSON_ArrayForEach(is, cJSON_GetObjectItem(oo, "issue"))
	{
		const cJSON *c =
			cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(is, "details"), "coding"), 0);
		const cJSON *e = cJSON_GetArrayItem(cJSON_GetObjectItem(is, "expression"), 0);
		if (c && !strcmp(cJSON_GetObjectItem(c, "system")->valuestring, HARNESS_MSG_SYSTEM) &&
		    !strcmp(cJSON_GetObjectItem(c, "code")->valuestring, msgid) && e && !strcmp(e->valuestring, expr))
			return is;
	}
	return NULL;
}

static int write_conf(struct gw *gw, const char *extra_json)
{
	char tmpl[] = "/tmp/cw-e2e-XXXXXX";
	if (!mkdtemp(tmpl))
		return -1;
	harness_remove_at_exit(tmpl);
	snprintf(gw->dir, sizeof gw->dir, "%s", tmpl);
	snprintf(gw->conf, sizeof gw->conf, "%s/crosswalk.json", gw->dir);
	snprintf(gw->log, sizeof gw->log, "%s/stderr.log", gw->dir);
	FILE *f = fopen(gw->conf, "w");
	if (!f)
		return -1;
	bool own_plugins = extra_json && strstr(extra_json, "\"plugin_dir\"");
	bool own_listen = extra_json && strstr(extra_json, "\"listen\"");
	bool own_data = extra_json && strstr(extra_json, "\"data_dir\"");
	const char *sep = "";
	fputc('{', f);
	if (!own_data) {
		fprintf(f, "%s\"data_dir\":\"%s/var\"", sep, gw->dir);
		sep = ",";
	}
	if (!own_listen) {
		fprintf(f, "%s\"listen\":\"127.0.0.1:0\"", sep);
		sep = ",";
	}
	if (!own_plugins) {
		fprintf(f, "%s\"plugin_dir\":\"%s\"", sep, harness_plugin_dir());
		sep = ",";
	}
	if (extra_json && *extra_json)
		fprintf(f, "%s%s", sep, extra_json);
	fprintf(f, "}\n");
	fclose(f);
	return 0;
}

static pid_t spawn_argv(const struct gw *gw, const char *const *argv, const char *out_path)
{
	pid_t pid = fork();
	if (pid == 0) {
		int fd = open(gw->log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd >= 0) {
			dup2(fd, 2);
			if (!out_path)
				dup2(fd, 1);
			close(fd);
		}
		if (out_path && (fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) >= 0) {
			dup2(fd, 1);
			close(fd);
		}
		unsetenv("CROSSWALK_LISTEN");
		unsetenv("CROSSWALK_CONFIG");
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	return pid;
}

static pid_t spawn(const struct gw *gw, const char *const *args)
{
	const char *argv[32];
	size_t n = 0;
	argv[n++] = env_or("CW_BIN", "bin/crosswalk");
	argv[n++] = "serve";
	argv[n++] = "-c";
	argv[n++] = gw->conf;
	for (size_t i = 0; args && args[i] && n < 31; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	return spawn_argv(gw, argv, NULL);
}

char *gw_log(const struct gw *gw)
{
	FILE *f = fopen(gw->log, "r");
	if (!f)
		return strdup("");
	size_t cap = 65536, len = 0;
	char *buf = malloc(cap + 1);
	size_t r;
	while (buf && (r = fread(buf + len, 1, cap - len, f)) > 0) {
		len += r;
		if (len == cap) {
			char *nb = realloc(buf, cap * 2 + 1);
			if (!nb)
				break;
			buf = nb;
			cap *= 2;
		}
	}
	fclose(f);
	if (buf)
		buf[len] = '\0';
	return buf;
}

int gw_start_preloaded(struct gw *gw, const char *extra_json, const char *shim, const char *const *env)
{
	const char *old_asan = getenv("ASAN_OPTIONS");
	char *saved_asan = old_asan ? strdup(old_asan) : NULL;
	const char *san = getenv("CW_SANITIZE");
	if (san && strstr(san, "address")) {
		char opts[600];
		snprintf(opts, sizeof opts, "%s%sverify_asan_link_order=0", old_asan ? old_asan : "",
			 old_asan && *old_asan ? ":" : "");
		setenv("ASAN_OPTIONS", opts, 1);
	}
	setenv("LD_PRELOAD", shim, 1);
	for (size_t i = 0; env && env[i] && env[i + 1]; i += 2)
		setenv(env[i], env[i + 1], 1);
	int started = gw_start(gw, extra_json);
	unsetenv("LD_PRELOAD");
	for (size_t i = 0; env && env[i] && env[i + 1]; i += 2)
		unsetenv(env[i]);
	if (saved_asan)
		setenv("ASAN_OPTIONS", saved_asan, 1);
	else
		unsetenv("ASAN_OPTIONS");
	free(saved_asan);
	return started;
}

int gw_start(struct gw *gw, const char *extra_json) { return gw_start_args(gw, extra_json, NULL); }

int gw_start_args(struct gw *gw, const char *extra_json, const char *const *args)
{
	memset(gw, 0, sizeof *gw);
	if (write_conf(gw, extra_json) != 0)
		return -1;
	gw->pid = spawn(gw, args);
	if (gw->pid <= 0)
		return -1;
	long until = now_ms() + 10000;
	while (now_ms() < until) {
		char *log = gw_log(gw);
		const char *p = log ? strstr(log, "\"event\":\"listening\"") : NULL;
		if (p) {
			const char *q = strstr(p, "\"port\":\"");
			if (q)
				gw->port = (unsigned)strtoul(q + 8, NULL, 10);
		}
		free(log);
		if (gw->port)
			return 0;
		int st;
		if (waitpid(gw->pid, &st, WNOHANG) == gw->pid) {
			char *l = gw_log(gw);
			fprintf(stderr, "# gateway exited early: %s\n", l ? l : "");
			free(l);
			gw->pid = 0;
			return -1;
		}
		sleep_ms(10);
	}
	kill(gw->pid, SIGKILL);
	waitpid(gw->pid, NULL, 0);
	gw->pid = 0;
	return -1;
}

static int wait_exit(pid_t pid, int timeout_ms)
{
	long until = now_ms() + timeout_ms;
	int st;
	while (now_ms() < until) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		sleep_ms(10);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return -1;
}

int gw_run_expect_exit(const char *extra_json, const char *const *args, int timeout_ms, char *out,
		       size_t outlen)
{
	struct gw gw;
	memset(&gw, 0, sizeof gw);
	if (write_conf(&gw, extra_json) != 0)
		return -1;
	pid_t pid = spawn(&gw, args);
	int rc = wait_exit(pid, timeout_ms);
	char *log = gw_log(&gw);
	if (out && outlen)
		snprintf(out, outlen, "%s", log ? log : "");
	free(log);
	return rc;
}

int gw_run_command(const char *extra_json, const char *const *args, int timeout_ms, char *out, size_t outlen)
{
	struct gw gw;
	memset(&gw, 0, sizeof gw);
	if (write_conf(&gw, extra_json) != 0)
		return -1;
	const char *argv[32];
	size_t n = 0;
	argv[n++] = env_or("CW_BIN", "bin/crosswalk");
	for (size_t i = 0; args && args[i] && n < 29; i++)
		argv[n++] = args[i];
	argv[n++] = "-c";
	argv[n++] = gw.conf;
	argv[n] = NULL;
	char out_path[300];
	snprintf(out_path, sizeof out_path, "%s/stdout.log", gw.dir);
	pid_t pid = spawn_argv(&gw, argv, out_path);
	int rc = wait_exit(pid, timeout_ms);
	struct gw outgw = gw;
	snprintf(outgw.log, sizeof outgw.log, "%s", out_path);
	char *o = gw_log(&outgw), *e = gw_log(&gw);
	if (out && outlen)
		snprintf(out, outlen, "%s%s", o ? o : "", e ? e : "");
	free(o);
	free(e);
	return rc;
}

int gw_stop(struct gw *gw, int timeout_ms)
{
	if (gw->pid <= 0)
		return -1;
	kill(gw->pid, SIGTERM);
	int rc = wait_exit(gw->pid, timeout_ms);
	gw->pid = 0;
	if (rc != 0) {
		/* say why in the test log: the exit status and the end of the gateway's log */
		char *log = gw_log(gw);
		size_t n = log ? strlen(log) : 0;
		fprintf(stderr, "# gateway stopped with %d (-1: did not stop in %d ms); log tail:\n%s\n", rc, timeout_ms,
			log ? log + (n > 2000 ? n - 2000 : 0) : "");
		free(log);
	}
	return rc;
}

/* ------------------------------------------------------------- libcurl */

static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
	struct resp *r = ud;
	size_t add = size * n;
	char *nb = realloc(r->body, r->len + add + 1);
	if (!nb)
		return 0;
	r->body = nb;
	memcpy(r->body + r->len, data, add);
	r->len += add;
	r->body[r->len] = '\0';
	return add;
}

static size_t on_header(char *data, size_t size, size_t n, void *ud)
{
	struct resp *r = ud;
	size_t add = size * n, have = strlen(r->headers);
	if (have + add < sizeof r->headers) {
		memcpy(r->headers + have, data, add);
		r->headers[have + add] = '\0';
	}
	return add;
}

/* One request to url; over https, tls (not NULL) says whom to trust and
 * which client certificate to show. */
static int curl_do(const char *url, const struct tls_files *tls, long timeout_ms, const char *method,
		   const char *const *headers, const char *body, size_t body_len, struct resp *out)
{
	memset(out, 0, sizeof *out);
	CURL *c = curl_easy_init();
	if (!c)
		return -1;
	struct curl_slist *hl = NULL;
	for (size_t i = 0; headers && headers[i]; i++)
		hl = curl_slist_append(hl, headers[i]);
	hl = curl_slist_append(hl, "Expect:");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, out);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_PROXY, "");
	if (tls && tls->ca_file[0])
		curl_easy_setopt(c, CURLOPT_CAINFO, tls->ca_file);
	if (tls && tls->client_cert[0])
		curl_easy_setopt(c, CURLOPT_SSLCERT, tls->client_cert);
	if (tls && tls->client_key[0])
		curl_easy_setopt(c, CURLOPT_SSLKEY, tls->client_key);
	if (tls && tls->tls_max) {
		/* an old version on purpose: the client's own policy must not be
		 * what refuses it */
		curl_easy_setopt(c, CURLOPT_SSLVERSION, (long)(tls->tls_min | tls->tls_max));
		curl_easy_setopt(c, CURLOPT_SSL_CIPHER_LIST, "DEFAULT@SECLEVEL=0");
	}
	if (strcmp(method, "HEAD") == 0)
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	if (body) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
	}
	CURLcode rc = curl_easy_perform(c);
	if (rc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
	curl_slist_free_all(hl);
	curl_easy_cleanup(c);
	if (!out->body)
		out->body = calloc(1, 1);
	return rc == CURLE_OK ? 0 : -1;
}

int http_do(const struct gw *gw, const char *method, const char *path, const char *const *headers,
	    const char *body, size_t body_len, struct resp *out)
{
	char url[2048];
	snprintf(url, sizeof url, "http://127.0.0.1:%u%s", gw->port, path);
	return curl_do(url, NULL, 30000L, method, headers, body, body_len, out);
}

int http_do_within(const struct gw *gw, long timeout_ms, const char *method, const char *path,
		   const char *const *headers, const char *body, size_t body_len, struct resp *out)
{
	char url[2048];
	snprintf(url, sizeof url, "http://127.0.0.1:%u%s", gw->port, path);
	return curl_do(url, NULL, timeout_ms, method, headers, body, body_len, out);
}

int url_do(const char *url, const char *method, const char *const *headers, const char *body, size_t body_len,
	   struct resp *out)
{
	return curl_do(url, NULL, 30000L, method, headers, body, body_len, out);
}

int https_do(const struct gw *gw, const struct tls_files *tls, const char *method, const char *path,
	     const char *const *headers, const char *body, size_t body_len, struct resp *out)
{
	char url[2048];
	snprintf(url, sizeof url, "https://127.0.0.1:%u%s", gw->port, path);
	return curl_do(url, tls, 30000L, method, headers, body, body_len, out);
}

void resp_free(struct resp *r)
{
	free(r->body);
	r->body = NULL;
}

const char *resp_header(const struct resp *r, const char *name, char *buf, size_t cap)
{
	size_t nl = strlen(name);
	const char *line = r->headers;
	while (*line) {
		const char *eol = strstr(line, "\r\n");
		size_t ll = eol ? (size_t)(eol - line) : strlen(line);
		if (ll > nl && strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
			const char *v = line + nl + 1;
			while (*v == ' ')
				v++;
			size_t vl = ll - (size_t)(v - line);
			if (vl >= cap)
				vl = cap - 1;
			memcpy(buf, v, vl);
			buf[vl] = '\0';
			return buf;
		}
		if (!eol)
			break;
		line = eol + 2;
	}
	return NULL;
}

/* ---------------------------------------------------------- raw sockets */

int raw_connect(const struct gw *gw, const char *src)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	if (src) {
		struct sockaddr_in s = {.sin_family = AF_INET};
		inet_pton(AF_INET, src, &s.sin_addr);
		if (bind(fd, (struct sockaddr *)&s, sizeof s) != 0) {
			close(fd);
			return -1;
		}
	}
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)gw->port)};
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
		close(fd);
		return -1;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	return fd;
}

int raw_send(int fd, const char *data, size_t len)
{
	size_t off = 0;
	while (off < len) {
		ssize_t w = send(fd, data + off, len - off, MSG_NOSIGNAL);
		if (w <= 0)
			return -1;
		off += (size_t)w;
	}
	return 0;
}

long raw_recv_all(int fd, char *buf, size_t cap, int timeout_ms)
{
	size_t len = 0;
	long until = now_ms() + timeout_ms;
	while (len + 1 < cap) {
		long left = until - now_ms();
		if (left <= 0)
			break;
		struct pollfd p = {fd, POLLIN, 0};
		int r = poll(&p, 1, (int)left);
		if (r <= 0)
			break;
		ssize_t n = recv(fd, buf + len, cap - 1 - len, 0);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	return (long)len;
}

bool raw_closed_within(int fd, int timeout_ms)
{
	long until = now_ms() + timeout_ms;
	char tmp[4096];
	for (;;) {
		long left = until - now_ms();
		if (left <= 0)
			return false;
		struct pollfd p = {fd, POLLIN, 0};
		int r = poll(&p, 1, (int)left);
		if (r == 0)
			return false;
		if (r < 0)
			return errno == EINTR ? false : true;
		ssize_t n = recv(fd, tmp, sizeof tmp, 0);
		if (n <= 0)
			return true;
	}
}

/* ------------------------------------------------------------- upstream */

const char *upstream_missing(void)
{
	if (!have_tool("node") || !have_tool("npm"))
		return "node and npm are not installed (the upstream test server runs on Node; tools/deps.sh test)";
	return NULL;
}

int upstream_install(void)
{
	int rc = system("bash tests/upstream/install.sh >/dev/null 2>build/upstream-install.log");
	return rc == 0 ? 0 : -1;
}

unsigned free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof sa;
	unsigned port = 0;
	if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
		port = ntohs(sa.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

int upstream_start(struct upstream_srv *u, unsigned port) { return upstream_start_args(u, port, NULL); }

int upstream_start_args(struct upstream_srv *u, unsigned port, const char *const *args)
{
	if (node_server_start(u, "tests/upstream/server.mjs", port, args) != 0)
		return -1;
	size_t n = strlen(u->base);
	snprintf(u->base + n, sizeof u->base - n, "/fhir/R4");
	return 0;
}

int idp_install(void)
{
	int rc = system("bash tests/upstream/install.sh tests/idp >/dev/null 2>build/idp-install.log");
	return rc == 0 ? 0 : -1;
}

int idp_start(struct upstream_srv *u, const char *const *args)
{
	if (idp_install() != 0) {
		fprintf(stderr, "# npm install of tests/idp failed (see build/idp-install.log)\n");
		return -1;
	}
	return node_server_start(u, "tests/idp/server.mjs", free_port(), args);
}

char *idp_token(const struct upstream_srv *p, const char *client, const char *secret, const char *scope,
		const char *resource)
{
	char url[256], body[1024], pair[256], basic[360], auth[400];
	snprintf(url, sizeof url, "%s/token", p->base);
	snprintf(body, sizeof body, "grant_type=client_credentials&scope=%s&resource=%s", scope, resource);
	int n = snprintf(pair, sizeof pair, "%s:%s", client, secret);
	assert_true(n > 0 && (size_t)n < sizeof pair);
	assert_true(crypto_b64_encode(pair, (size_t)n, basic, sizeof basic) > 0);
	snprintf(auth, sizeof auth, "Authorization: Basic %s", basic);
	const char *h[] = {"Content-Type: application/x-www-form-urlencoded", auth, NULL};
	struct resp r;
	assert_int_equal(url_do(url, "POST", h, body, strlen(body), &r), 0);
	char *tok = NULL;
	cJSON *j = r.status == 200 ? cJSON_Parse(r.body) : NULL;
	const cJSON *t = cJSON_GetObjectItem(j, "access_token");
	if (cJSON_IsString(t))
		tok = strdup(t->valuestring);
	else
		fprintf(stderr, "# token request to %s: %ld %s\n", url, r.status, r.body ? r.body : "");
	cJSON_Delete(j);
	resp_free(&r);
	return tok;
}

int node_server_start(struct upstream_srv *u, const char *script, unsigned port, const char *const *args)
{
	memset(u, 0, sizeof *u);
	const char *argv[32] = {"node", script, "--port", NULL};
	size_t argc = 4;
	bool tls = false;
	for (size_t i = 0; args && args[i] && argc < 31; i++) {
		tls = tls || !strcmp(args[i], "--tls-cert");
		argv[argc++] = args[i];
	}
	argv[argc] = NULL;
	char tmpl[] = "/tmp/cw-up-XXXXXX";
	if (!mkdtemp(tmpl))
		return -1;
	harness_remove_at_exit(tmpl);
	snprintf(u->log, sizeof u->log, "%s/upstream.log", tmpl);
	char out[320];
	snprintf(out, sizeof out, "%s/stdout", tmpl);
	char portarg[16];
	snprintf(portarg, sizeof portarg, "%u", port);
	argv[3] = portarg;
	pid_t pid = fork();
	if (pid == 0) {
		int fd = open(u->log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd >= 0) {
			dup2(fd, 2);
			close(fd);
		}
		if ((fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600)) >= 0) {
			dup2(fd, 1);
			close(fd);
		}
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	if (pid < 0)
		return -1;
	u->pid = pid;
	/* Node loads the whole FHIR router before it listens: seconds on a quiet
	 * machine, about a minute on a loaded one. */
	long deadline = now_ms() + 180000;
	while (now_ms() < deadline) {
		FILE *f = fopen(out, "r");
		char line[128] = "";
		if (f) {
			if (!fgets(line, sizeof line, f))
				line[0] = '\0';
			fclose(f);
		}
		unsigned p = 0;
		if (sscanf(line, "listening 127.0.0.1:%u", &p) == 1 && p > 0) {
			u->port = p;
			snprintf(u->base, sizeof u->base, "%s://127.0.0.1:%u", tls ? "https" : "http", p);
			return 0;
		}
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			u->pid = 0;
			return -1;
		}
		sleep_ms(50);
	}
	upstream_stop(u);
	return -1;
}

void upstream_stop(struct upstream_srv *u)
{
	if (u->pid <= 0)
		return;
	kill(u->pid, SIGTERM);
	wait_exit(u->pid, 5000); /* SIGKILLs when it does not stop */
	u->pid = 0;
}

int upstream_do(const struct upstream_srv *u, const char *method, const char *path, const char *body,
		struct resp *out)
{
	char url[2048];
	const char *host = strstr(u->base, "://");
	int origin = host ? (int)(host + 3 - u->base) + (int)strcspn(host + 3, "/") : 0; /* scheme://host:port */
	snprintf(url, sizeof url, "%.*s%s", origin, u->base, path);
	const char *h[] = {"Content-Type: application/json", NULL};
	struct tls_files tls = {0};
	snprintf(tls.ca_file, sizeof tls.ca_file, "%s", u->ca_file);
	snprintf(tls.client_cert, sizeof tls.client_cert, "%s", u->client_cert);
	snprintf(tls.client_key, sizeof tls.client_key, "%s", u->client_key);
	return curl_do(url, &tls, 30000L, method, body ? h : NULL, body, body ? strlen(body) : 0, out);
}

void upstream_gw_config(char *buf, size_t n, const struct upstream_srv *u, const char *routes, const char *extra)
{
	snprintf(buf, n,
		 "\"upstream\":{\"base_url\":\"%s\",\"routes\":{%s},\"retry_base_ms\":50,\"retry_max_ms\":400,"
		 "\"timeout_ms\":1500,\"connect_timeout_ms\":500,\"max_response_bytes\":1048576%s}",
		 u->base, routes, extra ? extra : "");
}

long upstream_count(const struct upstream_srv *u, const char *type, const char *ident)
{
	char path[300];
	snprintf(path, sizeof path, "/_admin/count?type=%s&identifier=%s&_count=5000", type, ident);
	struct resp r;
	if (upstream_do(u, "GET", path, NULL, &r) != 0 || r.status != 200) {
		resp_free(&r);
		return -1;
	}
	cJSON *j = cJSON_Parse(r.body);
	resp_free(&r);
	const cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "count");
	long n = cJSON_IsNumber(c) ? (long)c->valuedouble : -1;
	cJSON_Delete(j);
	return n;
}

int upstream_fault(const struct upstream_srv *u, const char *json)
{
	struct resp r;
	int rc = upstream_do(u, "POST", "/_admin/faults", json, &r);
	if (rc == 0 && r.status != 200)
		fprintf(stderr, "# fault %s: %s\n", json, r.body);
	rc = rc == 0 && r.status == 200 ? 0 : -1;
	resp_free(&r);
	return rc;
}

/* The versions the upstream holds of type/id, oldest first, as the first
 * given name of each (the marker the test wrote); "" when none. */
void upstream_history_given(const struct upstream_srv *u, const char *type, const char *id, char *out, size_t n)
{
	char path[256];
	snprintf(path, sizeof path, "/fhir/R4/%s/%s/_history?_count=100", type, id);
	out[0] = '\0';
	struct resp r;
	if (upstream_do(u, "GET", path, NULL, &r) == 0 && r.status == 200) {
		cJSON *j = cJSON_Parse(r.body);
		const cJSON *e;
		char tmp[512] = "";
		/* newest first: each one goes in front */
		cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(j, "entry"))
		{
			const cJSON *name =
				cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(
							   cJSON_GetObjectItemCaseSensitive(e, "resource"), "name"),
						   0);
			const cJSON *g = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(name, "given"), 0);
			snprintf(tmp, sizeof tmp, "%s%s%s", cJSON_IsString(g) ? g->valuestring : "?", out[0] ? "," : "",
				 out);
			snprintf(out, n, "%s", tmp);
		}
		cJSON_Delete(j);
	}
	resp_free(&r);
}

char *harness_pg_store(char *buf, size_t cap, const struct pg_server *pg, const char *more)
{
	snprintf(buf, cap, "\"store\":{\"backend\":\"postgresql\",\"postgresql\":{\"conninfo\":\"%s\"%s%s}}",
		 pg->conninfo, more ? "," : "", more ? more : "");
	return buf;
}

int harness_pg_gateways(struct pg_server *pg, struct gw *g, int n, const char *extra_json)
{
	if (pg_server_start(pg) != 0) {
		fprintf(stderr, "PostgreSQL: %s\n", pg->why);
		return -1;
	}
	char store[512], extra[4096];
	harness_pg_store(store, sizeof store, pg, NULL);
	if (snprintf(extra, sizeof extra, "%s%s%s", extra_json ? extra_json : "", extra_json ? "," : "", store) >=
	    (int)sizeof extra) {
		fprintf(stderr, "the configuration of the gateways is too long\n");
		return -1;
	}
	for (int i = 0; i < n; i++)
		g[i].pid = 0;
	for (int i = 0; i < n; i++) {
		if (gw_start(&g[i], extra) != 0) {
			fprintf(stderr, "gateway %d on PostgreSQL did not start\n", i);
			return -1;
		}
	}
	return 0;
}

void harness_pg_stop(struct pg_server *pg, struct gw *g, int n)
{
	for (int i = 0; i < n; i++) {
		if (g[i].pid > 0)
			gw_stop(&g[i], 10000);
		g[i].pid = 0;
	}
	pg_server_stop(pg);
}

/* --- bulk export ------------------------------------------------------------ */

/* method path on g with token (NULL: none) and the headers more
 * (NULL-terminated, may be NULL); the answer in *r. */
static void bulk_call(const struct gw *g, const char *token, const char *method, const char *path,
		      const char *const *more, const char *body, struct resp *r)
{
	char authz[9000];
	const char *h[8];
	size_t n = 0;
	if (token) {
		snprintf(authz, sizeof authz, "Authorization: Bearer %s", token);
		h[n++] = authz;
	}
	for (size_t i = 0; more && more[i] && n < 7; i++)
		h[n++] = more[i];
	h[n] = NULL;
	memset(r, 0, sizeof *r);
	assert_int_equal(http_do(g, method, path, h, body, body ? strlen(body) : 0, r), 0);
}

const char *bulk_path_of(const char *url)
{
	const char *p = strstr(url, "://");
	assert_non_null(p);
	p = strchr(p + 3, '/');
	assert_non_null(p);
	return p;
}

char *bulk_kickoff(const struct gw *g, const char *token, const char *method, const char *path, const char *body,
		   const char *prefer)
{
	char pf[256];
	snprintf(pf, sizeof pf, "Prefer: %s", prefer ? prefer : "respond-async");
	const char *h[] = {pf, body ? "Content-Type: application/fhir+json" : "Accept: application/fhir+json", NULL};
	struct resp r;
	bulk_call(g, token, method, path, h, body, &r);
	if (r.status != 202)
		fprintf(stderr, "# kick-off %s: %ld %s\n", path, r.status, r.body ? r.body : "");
	assert_int_equal(r.status, 202);
	char loc[1024];
	assert_non_null(resp_header(&r, "Content-Location", loc, sizeof loc));
	resp_free(&r);
	char *st = strdup(bulk_path_of(loc));
	assert_non_null(st);
	return st;
}

cJSON *bulk_wait_manifest(const struct gw *g, const char *token, const char *status_path, long timeout_ms)
{
	long until = now_ms() + timeout_ms;
	do {
		struct resp r;
		bulk_call(g, token, "GET", status_path, NULL, NULL, &r);
		if (r.status == 200) {
			char ct[128];
			assert_non_null(resp_header(&r, "Content-Type", ct, sizeof ct));
			assert_non_null(strstr(ct, "application/json"));
			cJSON *m = cJSON_Parse(r.body);
			resp_free(&r);
			assert_non_null(m);
			return m;
		}
		if (r.status != 202)
			fprintf(stderr, "# status: %ld %s\n", r.status, r.body ? r.body : "");
		assert_int_equal(r.status, 202);
		char v[256];
		assert_non_null(resp_header(&r, "X-Progress", v, sizeof v));
		assert_non_null(resp_header(&r, "Retry-After", v, sizeof v));
		resp_free(&r);
		sleep_ms(50);
	} while (now_ms() < until);
	fail_msg("the export did not finish");
	return NULL;
}

cJSON *bulk_download(const struct gw *g, const char *token, const cJSON *manifest, const char *type)
{
	cJSON *all = cJSON_CreateArray();
	assert_non_null(all);
	const cJSON *o;
	cJSON_ArrayForEach(o, cJSON_GetObjectItem(manifest, "output"))
	{
		if (strcmp(cJSON_GetObjectItem(o, "type")->valuestring, type) != 0)
			continue;
		struct resp r;
		bulk_call(g, token, "GET", bulk_path_of(cJSON_GetObjectItem(o, "url")->valuestring), NULL, NULL, &r);
		assert_int_equal(r.status, 200);
		char ct[128];
		assert_non_null(resp_header(&r, "Content-Type", ct, sizeof ct));
		assert_string_equal(ct, "application/fhir+ndjson");
		int n = 0;
		for (char *line = r.body, *nl; line && *line; line = nl + 1) {
			nl = strchr(line, '\n');
			assert_non_null(nl); /* every line ends */
			*nl = '\0';
			cJSON *res = cJSON_Parse(line);
			assert_non_null(res);
			assert_string_equal(cJSON_GetObjectItem(res, "resourceType")->valuestring, type);
			cJSON_AddItemToArray(all, res);
			n++;
		}
		assert_int_equal(n, cJSON_GetObjectItem(o, "count")->valueint);
		resp_free(&r);
	}
	return all;
}

cJSON *bulk_flow(const struct gw *g, const char *token, const char *path, cJSON **manifest, char **status_path)
{
	char *st = bulk_kickoff(g, token, "GET", path, NULL, NULL);
	cJSON *m = bulk_wait_manifest(g, token, st, 60000);
	cJSON *by_type = cJSON_CreateObject();
	assert_non_null(by_type);
	const cJSON *o;
	cJSON_ArrayForEach(o, cJSON_GetObjectItem(m, "output"))
	{
		const char *type = cJSON_GetObjectItem(o, "type")->valuestring;
		if (!cJSON_GetObjectItem(by_type, type))
			cJSON_AddItemToObject(by_type, type, bulk_download(g, token, m, type));
	}
	if (manifest)
		*manifest = m;
	else
		cJSON_Delete(m);
	if (status_path)
		*status_path = st;
	else
		free(st);
	return by_type;
}

int bulk_node_client(const char *args, char *out, size_t cap)
{
	char cmd[2048];
	snprintf(cmd, sizeof cmd, "node tests/e2e/node/bulk_client.js %s 2>&1", args);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	size_t n = fread(out, 1, cap - 1, p);
	out[n] = '\0';
	while (n && (out[n - 1] == '\n' || out[n - 1] == ' '))
		out[--n] = '\0';
	int rc = pclose(p);
	if (rc != 0)
		fprintf(stderr, "# node %s: %s\n", args, out);
	return rc;
}
