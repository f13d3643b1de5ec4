#include "upstream/upstream.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "base/crypto.h"
#include "base/log.h"

struct upstream {
	char *base;      /* without trailing slash */
	size_t base_len;
	bool loopback_http;
	char *auth_header; /* "Authorization: Bearer …" or NULL */
	char *user, *password;
	char *ca_file, *cert, *key;
	long connect_timeout_ms, timeout_ms;
	size_t max_bytes;
	pthread_key_t tl; /* this thread's CURL handle */
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static bool global_ok;

static void global_init(void) { global_ok = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK; }

static void handle_free(void *h) { curl_easy_cleanup(h); }

static bool clean_value(const char *v) { return v && !strpbrk(v, "\r\n"); }

/* The TLS files are checked once at start, so a missing or mismatched one
 * stops the gateway instead of failing every request. Without client_key,
 * the key is read from client_cert's file (as libcurl does). */
static bool tls_files_ok(const struct config_upstream *c, char *err, size_t errlen)
{
	char why[1024];
	if (c->client_key && !c->client_cert) {
		snprintf(err, errlen, "upstream.client_key needs upstream.client_cert");
		return false;
	}
	if (c->ca_file && crypto_check_certificate(c->ca_file, why, sizeof why) != 0) {
		snprintf(err, errlen, "upstream.ca_file: %s", why);
		return false;
	}
	if (c->client_cert && crypto_check_certificate(c->client_cert, why, sizeof why) != 0) {
		snprintf(err, errlen, "upstream.client_cert: %s", why);
		return false;
	}
	if (c->client_cert &&
	    crypto_check_private_key(c->client_cert, c->client_key ? c->client_key : c->client_cert, why, sizeof why) != 0) {
		snprintf(err, errlen, "%s: %s", c->client_key ? "upstream.client_key" : "upstream.client_cert (no client_key)",
			 why);
		return false;
	}
	return true;
}

struct upstream *upstream_new(const struct config *cfg, char *err, size_t errlen)
{
	const struct config_upstream *c = &cfg->upstream;
	if (!c->base_url) {
		snprintf(err, errlen, "no upstream is configured");
		return NULL;
	}
	if (!tls_files_ok(c, err, errlen))
		return NULL;
	pthread_once(&global_once, global_init);
	if (!global_ok) {
		snprintf(err, errlen, "libcurl could not start");
		return NULL;
	}
	struct upstream *u = calloc(1, sizeof *u);
	if (!u) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	u->base = strdup(c->base_url);
	if (!u->base)
		goto oom;
	u->base_len = strlen(u->base);
	while (u->base_len > 0 && u->base[u->base_len - 1] == '/')
		u->base[--u->base_len] = '\0';
	u->loopback_http = !strncmp(u->base, "http://", 7);
	if (c->bearer_token_env) {
		const char *tok = getenv(c->bearer_token_env);
		if (!tok || !*tok || !clean_value(tok) || strlen(tok) > 8192) {
			snprintf(err, errlen, "upstream.bearer_token_env: %s is unset, empty or not a valid token",
				 c->bearer_token_env);
			upstream_free(u);
			return NULL;
		}
		size_t n = strlen(tok) + 32;
		u->auth_header = malloc(n);
		if (!u->auth_header)
			goto oom;
		snprintf(u->auth_header, n, "Authorization: Bearer %s", tok);
	}
	if (c->basic_user) {
		const char *pw = c->basic_password_env ? getenv(c->basic_password_env) : NULL;
		if (!pw) {
			snprintf(err, errlen, "upstream.basic_user needs basic_password_env naming a set variable");
			upstream_free(u);
			return NULL;
		}
		u->user = strdup(c->basic_user);
		u->password = strdup(pw);
		if (!u->user || !u->password)
			goto oom;
	}
	if ((c->ca_file && !(u->ca_file = strdup(c->ca_file))) || (c->client_cert && !(u->cert = strdup(c->client_cert))) ||
	    (c->client_key && !(u->key = strdup(c->client_key))))
		goto oom;
	u->connect_timeout_ms = (long)c->connect_timeout_ms;
	u->timeout_ms = (long)c->timeout_ms;
	u->max_bytes = (size_t)c->max_response_bytes;
	if (pthread_key_create(&u->tl, handle_free) != 0)
		goto oom;
	return u;
oom:
	snprintf(err, errlen, "out of memory");
	upstream_free(u);
	return NULL;
}

void upstream_free(struct upstream *u)
{
	if (!u)
		return;
	CURL *h = u->tl ? pthread_getspecific(u->tl) : NULL;
	if (h) {
		curl_easy_cleanup(h);
		pthread_setspecific(u->tl, NULL);
	}
	free(u->base);
	if (u->auth_header) {
		memset(u->auth_header, 0, strlen(u->auth_header));
		free(u->auth_header);
	}
	free(u->user);
	if (u->password) {
		memset(u->password, 0, strlen(u->password));
		free(u->password);
	}
	free(u->ca_file);
	free(u->cert);
	free(u->key);
	free(u);
}

const char *upstream_base(const struct upstream *u) { return u->base; }

struct sink {
	struct upstream_response *r;
	size_t cap, max;
};

static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
	struct sink *s = ud;
	size_t len = size * n;
	if (s->r->len + len > s->max) {
		s->r->too_large = true;
		return 0; /* aborts the transfer */
	}
	if (s->r->len + len + 1 > s->cap) {
		size_t cap = s->cap ? s->cap : 16384;
		while (cap < s->r->len + len + 1)
			cap *= 2;
		char *p = realloc(s->r->body, cap);
		if (!p)
			return 0;
		s->r->body = p;
		s->cap = cap;
	}
	memcpy(s->r->body + s->r->len, data, len);
	s->r->len += len;
	s->r->body[s->r->len] = '\0';
	return len;
}

static void header_value(const char *line, size_t n, size_t namelen, char *out, size_t cap)
{
	const char *v = line + namelen;
	size_t vl = n - namelen;
	while (vl > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		vl--;
	}
	while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
		vl--;
	if (vl >= cap)
		vl = cap - 1;
	memcpy(out, v, vl);
	out[vl] = '\0';
}

static size_t on_header(char *line, size_t size, size_t n, void *ud)
{
	struct upstream_response *r = ud;
	size_t len = size * n;
	char tmp[32];
	if (len > 14 && !strncasecmp(line, "Content-Type:", 13))
		header_value(line, len, 13, r->content_type, sizeof r->content_type);
	else if (len > 9 && !strncasecmp(line, "Location:", 9))
		header_value(line, len, 9, r->location, sizeof r->location);
	else if (len > 5 && !strncasecmp(line, "ETag:", 5))
		header_value(line, len, 5, r->etag, sizeof r->etag);
	else if (len > 14 && !strncasecmp(line, "Last-Modified:", 14))
		header_value(line, len, 14, r->last_modified, sizeof r->last_modified);
	else if (len > 12 && !strncasecmp(line, "Retry-After:", 12)) {
		header_value(line, len, 12, tmp, sizeof tmp);
		char *end;
		long v = strtol(tmp, &end, 10);
		r->retry_after_s = *tmp && !*end && v >= 0 ? v : 1;
	} else if (len > 5 && !strncasecmp(line, "HTTP/", 5)) {
		/* a new response (e.g. after 100 Continue): forget the previous headers */
		r->content_type[0] = r->location[0] = r->etag[0] = r->last_modified[0] = '\0';
		r->retry_after_s = -1;
	}
	return len;
}

static CURL *thread_handle(struct upstream *u)
{
	CURL *h = pthread_getspecific(u->tl);
	if (h) {
		curl_easy_reset(h);
		return h;
	}
	h = curl_easy_init();
	if (h && pthread_setspecific(u->tl, h) != 0) {
		curl_easy_cleanup(h);
		return NULL;
	}
	return h;
}

int upstream_request(struct upstream *u, const char *method, const char *path, const char *const *headers,
		     const char *body, size_t len, struct upstream_response *out)
{
	memset(out, 0, sizeof *out);
	out->retry_after_s = -1;
	size_t ul = u->base_len + strlen(path) + 2;
	char *url = malloc(ul);
	if (!url) {
		snprintf(out->error, sizeof out->error, "out of memory");
		return -1;
	}
	snprintf(url, ul, "%s%s%s", u->base, *path ? "/" : "", path); /* "": the base itself */
	if (strpbrk(url, " \r\n\t")) {
		free(url);
		snprintf(out->error, sizeof out->error, "refusing a URL with whitespace");
		return -1;
	}
	struct curl_slist *list = NULL;
	bool bad = false;
	for (size_t i = 0; headers && headers[i]; i++) {
		if (!clean_value(headers[i])) {
			bad = true;
			break;
		}
		struct curl_slist *n = curl_slist_append(list, headers[i]);
		if (!n) {
			bad = true;
			break;
		}
		list = n;
	}
	if (!bad && u->auth_header) {
		struct curl_slist *n = curl_slist_append(list, u->auth_header);
		bad = !n;
		list = n ? n : list;
	}
	/* no "Expect: 100-continue" round trip */
	struct curl_slist *n2 = bad ? NULL : curl_slist_append(list, "Expect:");
	if (!bad && n2)
		list = n2;
	CURL *h = bad ? NULL : thread_handle(u);
	if (!h) {
		curl_slist_free_all(list);
		free(url);
		snprintf(out->error, sizeof out->error, bad ? "refusing a header with CR or LF" : "no HTTP client");
		return -1;
	}
	struct sink sink = {.r = out, .max = u->max_bytes};
	char detail[CURL_ERROR_SIZE] = "";
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, detail);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, u->loopback_http ? "http" : "https");
	curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_PROXY, "");
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	if (u->ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, u->ca_file);
	if (u->cert)
		curl_easy_setopt(h, CURLOPT_SSLCERT, u->cert);
	if (u->key)
		curl_easy_setopt(h, CURLOPT_SSLKEY, u->key);
	if (u->user) {
		curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(h, CURLOPT_USERNAME, u->user);
		curl_easy_setopt(h, CURLOPT_PASSWORD, u->password);
	}
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, u->connect_timeout_ms);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, u->timeout_ms);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, (u->timeout_ms + 999) / 1000 > 10 ? 10L : (u->timeout_ms + 999) / 1000);
	curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)u->max_bytes);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, list);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, out);
	if (!strcmp(method, "GET")) {
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	} else {
		if (strcmp(method, "POST") != 0)
			curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
		if (body || strcmp(method, "DELETE") != 0) {
			curl_easy_setopt(h, CURLOPT_POST, 1L);
			curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
			curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? len : 0));
		}
	}
	CURLcode rc = curl_easy_perform(h);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL); /* detail is about to go out of scope */
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->status);
	curl_slist_free_all(list);
	free(url);
	if (rc != CURLE_OK) {
		out->timed_out = rc == CURLE_OPERATION_TIMEDOUT;
		if (rc == CURLE_FILESIZE_EXCEEDED)
			out->too_large = true;
		snprintf(out->error, sizeof out->error, "%s",
			 out->too_large ? "the upstream answer is too large" : *detail ? detail : curl_easy_strerror(rc));
		free(out->body);
		out->body = NULL;
		out->len = 0;
		/* a failed handle may hold a broken connection: start afresh */
		curl_easy_cleanup(h);
		pthread_setspecific(u->tl, NULL);
		return -1;
	}
	return 0;
}

void upstream_response_release(struct upstream_response *r)
{
	free(r->body);
	r->body = NULL;
	r->len = 0;
}

/* A URL reference with a scheme ("https:", "urn:"): letters, digits, + - . then ':'. */
static bool has_scheme(const char *url)
{
	if (!isalpha((unsigned char)url[0]))
		return false;
	const char *p = url + 1;
	while (isalnum((unsigned char)*p) || *p == '+' || *p == '-' || *p == '.')
		p++;
	return *p == ':';
}

const char *upstream_rewrite_url(const struct upstream *u, const char *url, const char *gateway_base, char *out,
				 size_t n)
{
	if (url && !strncmp(url, u->base, u->base_len) && (url[u->base_len] == '/' || url[u->base_len] == '?' ||
							    url[u->base_len] == '\0')) {
		snprintf(out, n, "%s%s", gateway_base, url + u->base_len);
		return out;
	}
	snprintf(out, n, "%s", url ? url : "");
	return out;
}

const char *upstream_rewrite_location(const struct upstream *u, const char *loc, const char *gateway_base, char *out,
				      size_t n)
{
	if (!loc || !*loc || has_scheme(loc))
		return upstream_rewrite_url(u, loc, gateway_base, out, n);
	/* the base's path ("/fhir/R4" of "https://host/fhir/R4") */
	const char *sep = strstr(u->base, "://");
	const char *path = sep ? strchr(sep + 3, '/') : NULL;
	size_t pl = path ? u->base_len - (size_t)(path - u->base) : 0;
	if (loc[0] != '/')
		snprintf(out, n, "%s/%s", gateway_base, loc);
	else if (pl && !strncmp(loc, path, pl) && loc[pl] == '/')
		snprintf(out, n, "%s%s", gateway_base, loc + pl);
	else if (!pl)
		snprintf(out, n, "%s%s", gateway_base, loc);
	else
		snprintf(out, n, "%s", loc);
	return out;
}

static void rewrite(const struct upstream *u, cJSON *node, const char *gateway_base, size_t depth)
{
	if (depth > 1000)
		return;
	for (cJSON *c = node ? node->child : NULL; c; c = c->next) {
		if (cJSON_IsString(c) && !strncmp(c->valuestring, u->base, u->base_len)) {
			char buf[4096];
			upstream_rewrite_url(u, c->valuestring, gateway_base, buf, sizeof buf);
			cJSON_SetValuestring(c, buf);
		} else if (cJSON_IsObject(c) || cJSON_IsArray(c)) {
			rewrite(u, c, gateway_base, depth + 1);
		}
	}
}

/* entry.response.location of the Bundles a server answers with (batch and
 * transaction responses, histories; and the Bundles among a batch's answers),
 * where relative ones are relative to the upstream's base. */
static void rewrite_locations(const struct upstream *u, cJSON *bundle, const char *gateway_base, size_t depth)
{
	const cJSON *rt = cJSON_GetObjectItemCaseSensitive(bundle, "resourceType");
	const cJSON *bt = cJSON_GetObjectItemCaseSensitive(bundle, "type");
	if (depth > 8 || !cJSON_IsString(rt) || strcmp(rt->valuestring, "Bundle") != 0 || !cJSON_IsString(bt))
		return;
	bool answers = !strcmp(bt->valuestring, "batch-response") || !strcmp(bt->valuestring, "transaction-response");
	if (!answers && strcmp(bt->valuestring, "history") != 0)
		return;
	cJSON *e;
	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(bundle, "entry"))
	{
		cJSON *loc = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(e, "response"), "location");
		if (cJSON_IsString(loc)) {
			char buf[4096];
			upstream_rewrite_location(u, loc->valuestring, gateway_base, buf, sizeof buf);
			cJSON_SetValuestring(loc, buf);
		}
		if (answers)
			rewrite_locations(u, cJSON_GetObjectItemCaseSensitive(e, "resource"), gateway_base, depth + 1);
	}
}

void upstream_rewrite_urls(const struct upstream *u, cJSON *tree, const char *gateway_base)
{
	rewrite(u, tree, gateway_base, 0);
	rewrite_locations(u, tree, gateway_base, 0);
}
