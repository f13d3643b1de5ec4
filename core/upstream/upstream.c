#include "upstream/upstream.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "base/crypto.h"
#include "base/fjson.h"
#include "base/log.h"
#include "base/metrics.h"

struct upstream {
	char *base;      /* without trailing slash */
	size_t base_len;
	bool loopback_http;
	char *auth_header; /* "Authorization: Bearer …" or NULL */
	char *user, *password;
	char *ca_file, *cert, *key;
	long connect_timeout_ms, timeout_ms;
	size_t max_bytes;
	int64_t retry_cap_ms; /* Retry-After values are clamped to this (retry_max_ms) */
	pthread_key_t tl; /* this thread's CURL handle (upstream_request) */
	bool tl_made, mu_made;
	/* asynchronous calls: one pump thread drives them all */
	CURLM *multi;
	pthread_t pump;
	bool pump_running;
	pthread_mutex_t mu; /* guards what follows */
	struct call *queue; /* started, not yet handed to the pump */
	unsigned in_flight, max_concurrent;
	bool stopping;
	uint64_t refused_busy;
	int64_t last_success_ms, last_failure_ms;
	char last_error[128];
};

struct call;
static void *pump_main(void *arg);

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
	u->retry_cap_ms = (int64_t)c->retry_max_ms;
	u->max_concurrent = (unsigned)c->max_concurrent;
	if (pthread_key_create(&u->tl, handle_free) != 0)
		goto oom;
	u->tl_made = true;
	pthread_mutex_init(&u->mu, NULL);
	u->mu_made = true;
	if (!(u->multi = curl_multi_init()))
		goto oom;
	if (pthread_create(&u->pump, NULL, pump_main, u) != 0) {
		snprintf(err, errlen, "cannot start the upstream client thread");
		upstream_free(u);
		return NULL;
	}
	u->pump_running = true;
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
	upstream_shutdown(u);
	if (u->multi)
		curl_multi_cleanup(u->multi);
	if (u->mu_made)
		pthread_mutex_destroy(&u->mu);
	CURL *h = u->tl_made ? pthread_getspecific(u->tl) : NULL;
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

/* ------------------------------------------------------------ Retry-After */

static bool two_digits(const char *s, int *out)
{
	if (!isdigit((unsigned char)s[0]) || !isdigit((unsigned char)s[1]))
		return false;
	*out = (s[0] - '0') * 10 + (s[1] - '0');
	return true;
}

static int month_of(const char *s)
{
	static const char names[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	for (int m = 0; m < 12; m++)
		if (!strncmp(s, names + 3 * m, 3))
			return m;
	return -1;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (month 0..11). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m < 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t mp = (m + 10) % 12; /* March is 0 */
	int64_t doy = (153 * mp + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* "HH:MM:SS" */
static bool clock_of(const char *s, int *secs)
{
	int h, mi, se;
	if (!two_digits(s, &h) || s[2] != ':' || !two_digits(s + 3, &mi) || s[5] != ':' || !two_digits(s + 6, &se) ||
	    h > 23 || mi > 59 || se > 60)
		return false;
	*secs = h * 3600 + mi * 60 + se;
	return true;
}

static bool valid_day(int64_t y, int m, int d)
{
	static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	return d >= 1 && d <= mdays[m] + (m == 1 && leap);
}

/* An HTTP-date (RFC 9110 §5.6.7: IMF-fixdate, and the obsolete RFC 850 and
 * asctime forms a recipient must accept) as Unix seconds. */
static bool http_date(const char *s, int64_t *out)
{
	static const char *const days[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
	static const char *const longdays[] = {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"};
	int d, m, secs, yy, y2;
	int64_t y;
	for (size_t i = 0; i < 7; i++) {
		size_t n = strlen(longdays[i]);
		if (!strncmp(s, longdays[i], n) && s[n] == ',' && s[n + 1] == ' ') {
			/* RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT"; two-digit years within 50 years of now */
			const char *p = s + n + 2;
			if (!two_digits(p, &d) || p[2] != '-' || (m = month_of(p + 3)) < 0 || p[6] != '-' ||
			    !two_digits(p + 7, &yy) || p[9] != ' ' || !clock_of(p + 10, &secs) || strcmp(p + 18, " GMT") != 0)
				return false;
			y = 1900 + yy;
			if (y < 1970)
				y += 100;
			goto done;
		}
	}
	for (size_t i = 0; i < 7; i++) {
		if (strncmp(s, days[i], 3) != 0)
			continue;
		if (s[3] == ',' && s[4] == ' ') {
			/* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" */
			const char *p = s + 5;
			if (!two_digits(p, &d) || p[2] != ' ' || (m = month_of(p + 3)) < 0 || p[6] != ' ' ||
			    !two_digits(p + 7, &yy) || !two_digits(p + 9, &y2) || p[11] != ' ' || !clock_of(p + 12, &secs) ||
			    strcmp(p + 20, " GMT") != 0)
				return false;
			y = yy * 100 + y2;
			goto done;
		}
		if (s[3] == ' ') {
			/* asctime: "Sun Nov  6 08:49:37 1994" */
			const char *p = s + 4;
			if ((m = month_of(p)) < 0 || p[3] != ' ')
				return false;
			p += 4;
			if (p[0] == ' ' && isdigit((unsigned char)p[1]))
				d = p[1] - '0';
			else if (!two_digits(p, &d))
				return false;
			if (p[2] != ' ' || !clock_of(p + 3, &secs) || p[11] != ' ' || !two_digits(p + 12, &yy) ||
			    !two_digits(p + 14, &y2) || p[16] != '\0')
				return false;
			y = yy * 100 + y2;
			goto done;
		}
		return false;
	}
	return false;
done:
	if (!valid_day(y, m, d))
		return false;
	*out = days_from_civil(y, m, d) * 86400 + secs;
	return true;
}

int64_t upstream_retry_after_ms(const char *value, int64_t now_unix_s, int64_t cap_ms)
{
	if (!value || cap_ms < 0)
		return -1;
	while (*value == ' ' || *value == '\t')
		value++;
	size_t n = strlen(value);
	while (n && (value[n - 1] == ' ' || value[n - 1] == '\t'))
		n--;
	if (!n || n > 64)
		return -1;
	char v[65];
	memcpy(v, value, n);
	v[n] = '\0';
	if (isdigit((unsigned char)v[0])) {
		/* delta-seconds: 1*DIGIT, saturating at the cap (never overflowing) */
		int64_t secs = 0, cap_s = cap_ms / 1000 + 1;
		for (const char *p = v; *p; p++) {
			if (!isdigit((unsigned char)*p))
				return -1;
			if (secs < cap_s)
				secs = secs * 10 + (*p - '0');
		}
		return secs >= cap_s ? cap_ms : secs * 1000 > cap_ms ? cap_ms : secs * 1000;
	}
	int64_t when;
	if (!http_date(v, &when))
		return -1;
	if (when <= now_unix_s)
		return 0;
	int64_t d = when - now_unix_s;
	return d > cap_ms / 1000 ? cap_ms : d * 1000;
}

/* ------------------------------------------------------------ one exchange */

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

/* One exchange in progress, for either interface: what libcurl reads and
 * writes, and whom to tell when it ends. */
struct call {
	struct call *next;
	struct upstream *u;
	CURL *h;
	bool own_handle; /* an asynchronous call's handle, cleaned up at the end */
	struct curl_slist *list;
	char *url, *body;
	struct sink sink;
	char detail[CURL_ERROR_SIZE];
	struct upstream_response *out;
	upstream_done_fn done;
	void *ctx;
};

static size_t on_header(char *line, size_t size, size_t n, void *ud)
{
	struct call *c = ud;
	struct upstream_response *r = c->out;
	size_t len = size * n;
	char tmp[80];
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
		r->retry_after_ms = upstream_retry_after_ms(tmp, (int64_t)time(NULL), c->u->retry_cap_ms);
	} else if (len > 5 && !strncasecmp(line, "HTTP/", 5)) {
		/* a new response (e.g. after 100 Continue): forget the previous headers */
		r->content_type[0] = r->location[0] = r->etag[0] = r->last_modified[0] = '\0';
		r->retry_after_ms = -1;
	}
	return len;
}

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Remembers how the upstream did, for upstream_health. */
static void note_outcome(struct upstream *u, const struct upstream_response *r, bool answered)
{
	pthread_mutex_lock(&u->mu);
	if (answered && r->status < 500) {
		u->last_success_ms = wall_ms();
	} else {
		u->last_failure_ms = wall_ms();
		if (answered)
			snprintf(u->last_error, sizeof u->last_error, "HTTP %ld", r->status);
		else
			snprintf(u->last_error, sizeof u->last_error, "%.120s", r->error);
	}
	pthread_mutex_unlock(&u->mu);
}

static void call_free(struct call *c)
{
	if (c->own_handle && c->h)
		curl_easy_cleanup(c->h);
	curl_slist_free_all(c->list);
	free(c->url);
	free(c->body);
	free(c);
}

/* Readies c->h for method path (see upstream_request). Returns 0, or -1
 * with out->error set. */
static int call_prepare(struct call *c, const char *method, const char *path, const char *const *headers,
			const char *body, size_t len)
{
	struct upstream *u = c->u;
	struct upstream_response *out = c->out;
	size_t ul = u->base_len + strlen(path) + 2;
	c->url = malloc(ul);
	if (!c->url) {
		snprintf(out->error, sizeof out->error, "out of memory");
		return -1;
	}
	snprintf(c->url, ul, "%s%s%s", u->base, *path ? "/" : "", path); /* "": the base itself */
	if (strpbrk(c->url, " \r\n\t")) {
		snprintf(out->error, sizeof out->error, "refusing a URL with whitespace");
		return -1;
	}
	bool bad = false;
	for (size_t i = 0; !bad && headers && headers[i]; i++) {
		struct curl_slist *n = clean_value(headers[i]) ? curl_slist_append(c->list, headers[i]) : NULL;
		bad = !n;
		c->list = n ? n : c->list;
	}
	if (!bad && u->auth_header) {
		struct curl_slist *n = curl_slist_append(c->list, u->auth_header);
		bad = !n;
		c->list = n ? n : c->list;
	}
	/* no "Expect: 100-continue" round trip */
	struct curl_slist *n2 = bad ? NULL : curl_slist_append(c->list, "Expect:");
	if (n2)
		c->list = n2;
	if (bad || !c->h) {
		snprintf(out->error, sizeof out->error, bad ? "refusing a header with CR or LF" : "no HTTP client");
		return -1;
	}
	if (body && !(c->body = malloc(len ? len : 1))) {
		snprintf(out->error, sizeof out->error, "out of memory");
		return -1;
	}
	if (body)
		memcpy(c->body, body, len);
	c->sink = (struct sink){.r = out, .max = u->max_bytes};
	CURL *h = c->h;
	c->detail[0] = '\0';
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->detail);
	curl_easy_setopt(h, CURLOPT_PRIVATE, c);
	curl_easy_setopt(h, CURLOPT_URL, c->url);
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
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, c->list);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &c->sink);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, c);
	if (!strcmp(method, "GET")) {
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	} else {
		if (strcmp(method, "POST") != 0)
			curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
		if (body || strcmp(method, "DELETE") != 0) {
			curl_easy_setopt(h, CURLOPT_POST, 1L);
			curl_easy_setopt(h, CURLOPT_POSTFIELDS, c->body ? c->body : "");
			curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? len : 0));
		}
	}
	return 0;
}

/* Fills c->out from how the transfer ended. Returns 0 when an HTTP answer
 * arrived. */
static int call_end(struct call *c, CURLcode rc)
{
	struct upstream_response *out = c->out;
	curl_easy_setopt(c->h, CURLOPT_ERRORBUFFER, NULL);
	curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &out->status);
	if (rc != CURLE_OK) {
		out->timed_out = rc == CURLE_OPERATION_TIMEDOUT;
		if (rc == CURLE_FILESIZE_EXCEEDED)
			out->too_large = true;
		snprintf(out->error, sizeof out->error, "%s",
			 out->too_large                     ? "the upstream answer is too large"
			 : *c->detail                       ? c->detail
			 : rc == CURLE_ABORTED_BY_CALLBACK ? "cut off: the gateway is stopping"
							     : curl_easy_strerror(rc));
		free(out->body);
		out->body = NULL;
		out->len = 0;
		out->status = 0;
	}
	out->answered = rc == CURLE_OK;
	note_outcome(c->u, out, out->answered);
	return out->answered ? 0 : -1;
}

static void response_init(struct upstream_response *out)
{
	memset(out, 0, sizeof *out);
	out->retry_after_ms = -1;
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
	response_init(out);
	struct call *c = calloc(1, sizeof *c);
	if (!c) {
		snprintf(out->error, sizeof out->error, "out of memory");
		return -1;
	}
	c->u = u;
	c->out = out;
	c->h = thread_handle(u);
	if (call_prepare(c, method, path, headers, body, len) != 0) {
		call_free(c);
		return -1;
	}
	int rc = call_end(c, curl_easy_perform(c->h));
	if (rc != 0) {
		/* a failed handle may hold a broken connection: start afresh */
		curl_easy_cleanup(c->h);
		pthread_setspecific(u->tl, NULL);
	}
	call_free(c);
	return rc;
}

/* ------------------------------------------------------------ asynchronous calls */

/* Ends c: fills its response, tells its owner, frees it. Pump thread. */
static void call_done(struct call *c, CURLcode rc)
{
	struct upstream *u = c->u;
	call_end(c, rc);
	upstream_done_fn done = c->done;
	void *ctx = c->ctx;
	call_free(c);
	pthread_mutex_lock(&u->mu);
	u->in_flight--;
	pthread_mutex_unlock(&u->mu);
	metrics_gauge_add(METRICS_UPSTREAM_INFLIGHT, -1);
	done(ctx);
}

static void *pump_main(void *arg)
{
	struct upstream *u = arg;
	struct call *active = NULL; /* handed to libcurl, not yet ended */
	for (;;) {
		pthread_mutex_lock(&u->mu);
		struct call *fresh = u->queue;
		u->queue = NULL;
		bool stop = u->stopping;
		pthread_mutex_unlock(&u->mu);
		while (fresh) {
			struct call *c = fresh;
			fresh = c->next;
			c->next = NULL;
			if (stop || curl_multi_add_handle(u->multi, c->h) != CURLM_OK) {
				call_done(c, stop ? CURLE_ABORTED_BY_CALLBACK : CURLE_OUT_OF_MEMORY);
			} else {
				c->next = active;
				active = c;
			}
		}
		if (stop)
			break;
		int running = 0;
		curl_multi_perform(u->multi, &running);
		CURLMsg *msg;
		int left;
		while ((msg = curl_multi_info_read(u->multi, &left))) {
			if (msg->msg != CURLMSG_DONE)
				continue;
			CURL *h = msg->easy_handle;
			CURLcode rc = msg->data.result;
			struct call *c = NULL;
			curl_easy_getinfo(h, CURLINFO_PRIVATE, (char **)&c);
			curl_multi_remove_handle(u->multi, h);
			for (struct call **pp = &active; c && *pp; pp = &(*pp)->next)
				if (*pp == c) {
					*pp = c->next;
					break;
				}
			if (c)
				call_done(c, rc);
		}
		curl_multi_poll(u->multi, NULL, 0, 1000, NULL);
	}
	/* stopping: every transfer still running ends as cut off */
	while (active) {
		struct call *c = active;
		active = c->next;
		curl_multi_remove_handle(u->multi, c->h);
		c->detail[0] = '\0';
		call_done(c, CURLE_ABORTED_BY_CALLBACK);
	}
	return NULL;
}

int upstream_start(struct upstream *u, const char *method, const char *path, const char *const *headers,
		   const char *body, size_t len, struct upstream_response *out, upstream_done_fn done, void *ctx)
{
	response_init(out);
	struct call *c = calloc(1, sizeof *c);
	if (!c) {
		snprintf(out->error, sizeof out->error, "out of memory");
		return -1;
	}
	c->u = u;
	c->out = out;
	c->done = done;
	c->ctx = ctx;
	c->own_handle = true;
	c->h = curl_easy_init();
	if (call_prepare(c, method, path, headers, body, len) != 0) {
		call_free(c);
		return -1;
	}
	pthread_mutex_lock(&u->mu);
	bool refused = u->stopping || !u->pump_running || u->in_flight >= u->max_concurrent;
	if (refused) {
		out->busy = !u->stopping && u->pump_running;
		if (out->busy)
			u->refused_busy++;
	} else {
		u->in_flight++;
		metrics_gauge_add(METRICS_UPSTREAM_INFLIGHT, 1);
		c->next = u->queue;
		u->queue = c;
	}
	pthread_mutex_unlock(&u->mu);
	if (out->busy)
		metrics_counter_add(METRICS_UPSTREAM_BUSY, 1);
	if (refused) {
		snprintf(out->error, sizeof out->error, "%s",
			 out->busy ? "too many calls to the upstream are in flight" : "the upstream client is stopping");
		call_free(c);
		return -1;
	}
	curl_multi_wakeup(u->multi);
	return 0;
}

void upstream_shutdown(struct upstream *u)
{
	if (!u || !u->pump_running)
		return;
	pthread_mutex_lock(&u->mu);
	u->stopping = true;
	pthread_mutex_unlock(&u->mu);
	curl_multi_wakeup(u->multi);
	pthread_join(u->pump, NULL);
	u->pump_running = false;
}

void upstream_health(struct upstream *u, struct upstream_health *out)
{
	pthread_mutex_lock(&u->mu);
	out->in_flight = u->in_flight;
	out->max_concurrent = u->max_concurrent;
	out->refused_busy = u->refused_busy;
	out->last_success_ms = u->last_success_ms;
	out->last_failure_ms = u->last_failure_ms;
	snprintf(out->last_error, sizeof out->last_error, "%s", u->last_error);
	pthread_mutex_unlock(&u->mu);
}

void upstream_response_release(struct upstream_response *r)
{
	free(r->body);
	r->body = NULL;
	r->len = 0;
}

void upstream_lines_add(struct upstream_lines *l, const char *name, const char *value)
{
	if (l->n >= UPSTREAM_MAX_LINES)
		return;
	size_t n = strlen(name) + strlen(value) + 3;
	char *line = malloc(n);
	if (!line)
		return;
	snprintf(line, n, "%s: %s", name, value);
	l->line[l->n++] = line;
}

void upstream_lines_release(struct upstream_lines *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->line[i]);
	l->n = 0;
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

/* An absolute URL that names a host (a scheme, not "urn:"). */
static bool names_host(const char *url) { return has_scheme(url) && strncasecmp(url, "urn:", 4) != 0; }

const char *upstream_rewrite_location(const struct upstream *u, const char *loc, const char *gateway_base, char *out,
				      size_t n)
{
	if (!loc || !*loc)
		return NULL;
	if (has_scheme(loc)) {
		if (!strncmp(loc, u->base, u->base_len) &&
		    (loc[u->base_len] == '/' || loc[u->base_len] == '?' || loc[u->base_len] == '\0'))
			return upstream_rewrite_url(u, loc, gateway_base, out, n);
		size_t gl = strlen(gateway_base);
		bool ours = !strncmp(loc, gateway_base, gl) && (loc[gl] == '/' || loc[gl] == '?' || loc[gl] == '\0');
		if (names_host(loc) && !ours)
			return NULL; /* another host, or outside the base */
		snprintf(out, n, "%s", loc);
		return out;
	}
	/* the base's path ("/fhir/R4" of "https://host/fhir/R4") */
	const char *sep = strstr(u->base, "://");
	const char *path = sep ? strchr(sep + 3, '/') : NULL;
	size_t pl = path ? u->base_len - (size_t)(path - u->base) : 0;
	if (loc[0] == '/' && loc[1] == '/')
		return NULL; /* scheme-relative: another host */
	if (loc[0] != '/')
		snprintf(out, n, "%s/%s", gateway_base, loc);
	else if (pl && !strncmp(loc, path, pl) && loc[pl] == '/')
		snprintf(out, n, "%s%s", gateway_base, loc + pl);
	else if (!pl)
		snprintf(out, n, "%s%s", gateway_base, loc);
	else
		return NULL; /* on the upstream's host, outside its FHIR base */
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
		cJSON *resp = cJSON_GetObjectItemCaseSensitive(e, "response");
		cJSON *loc = cJSON_GetObjectItemCaseSensitive(resp, "location");
		if (cJSON_IsString(loc)) {
			char buf[4096];
			const char *to = upstream_rewrite_location(u, loc->valuestring, gateway_base, buf, sizeof buf);
			if (to)
				cJSON_SetValuestring(loc, to);
			else
				cJSON_DeleteItemFromObjectCaseSensitive(resp, "location");
		}
		if (answers)
			rewrite_locations(u, cJSON_GetObjectItemCaseSensitive(e, "resource"), gateway_base, depth + 1);
	}
}

/* After rewrite: a Bundle's links and its entries' fullUrl that name
 * another host than the gateway's go (and so in the Bundles among its
 * entries). */
static void drop_foreign(cJSON *bundle, const char *gateway_base, size_t depth)
{
	const cJSON *rt = cJSON_GetObjectItemCaseSensitive(bundle, "resourceType");
	if (depth > 8 || !cJSON_IsString(rt) || strcmp(rt->valuestring, "Bundle") != 0)
		return;
	size_t gl = strlen(gateway_base);
	cJSON *links = cJSON_GetObjectItemCaseSensitive(bundle, "link");
	for (cJSON *l = links ? links->child : NULL, *next; l; l = next) {
		next = l->next;
		const cJSON *url = cJSON_GetObjectItemCaseSensitive(l, "url");
		if (cJSON_IsString(url) && names_host(url->valuestring) && strncmp(url->valuestring, gateway_base, gl) != 0)
			cJSON_Delete(cJSON_DetachItemViaPointer(links, l));
	}
	cJSON *e;
	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(bundle, "entry"))
	{
		const cJSON *fu = cJSON_GetObjectItemCaseSensitive(e, "fullUrl");
		if (cJSON_IsString(fu) && names_host(fu->valuestring) && strncmp(fu->valuestring, gateway_base, gl) != 0)
			cJSON_DeleteItemFromObjectCaseSensitive(e, "fullUrl");
		drop_foreign(cJSON_GetObjectItemCaseSensitive(e, "resource"), gateway_base, depth + 1);
	}
}

void upstream_rewrite_urls(const struct upstream *u, cJSON *tree, const char *gateway_base)
{
	rewrite(u, tree, gateway_base, 0);
	rewrite_locations(u, tree, gateway_base, 0);
	drop_foreign(tree, gateway_base, 0);
}

/* ------------------------------------------------------------ the upstream's words */

/* An IssueType code as FHIR spells them: lower-case letters and '-'. */
static bool issue_code_ok(const char *s)
{
	size_t n = 0;
	for (; s[n]; n++)
		if (n >= 32 || !((s[n] >= 'a' && s[n] <= 'z') || s[n] == '-'))
			return false;
	return n > 0;
}

void upstream_describe(const struct upstream_response *r, char *out, size_t n)
{
	size_t pos = (size_t)snprintf(out, n, "HTTP %ld", r->status);
	cJSON *j = r->body ? fjson_parse(r->body, r->len, NULL, NULL) : NULL;
	const cJSON *issue;
	int k = 0;
	cJSON_ArrayForEach(issue, cJSON_GetObjectItemCaseSensitive(j, "issue"))
	{
		const cJSON *code = cJSON_GetObjectItemCaseSensitive(issue, "code");
		if (!cJSON_IsString(code) || k == 4 || pos + 40 >= n || !issue_code_ok(code->valuestring))
			continue;
		pos += (size_t)snprintf(out + pos, n - pos, "%s%s", k++ ? ", " : ", issue ", code->valuestring);
	}
	cJSON_Delete(j);
}

#define SCRUBBED "as the upstream FHIR server reported it"
#define TEXT_MAX 200

/* A token that names a file: an absolute path of two segments or more
 * ("/srv/app/x.js", not "http://host/x", whose slashes follow a ':' or a
 * host), a Windows path, or the marks of a stack trace. */
static bool names_file(const char *s)
{
	static const char *const marks[] = {"node_modules", "file:", ".js:", ".ts:", ".mjs:", ".py\"", ".py:", ".java:",
					    ".c:", ".go:", ".rb:", ".php", "Traceback", "\tat ", "    at ", NULL};
	for (size_t i = 0; marks[i]; i++)
		if (strstr(s, marks[i]))
			return true;
	for (const char *p = s; *p; p++) {
		bool start = p == s || p[-1] == ' ' || p[-1] == '(' || p[-1] == '"' || p[-1] == '\'' || p[-1] == '=';
		if (start && *p == '/' && (isalnum((unsigned char)p[1]) || p[1] == '.' || p[1] == '_')) {
			size_t seg = 1 + strspn(p + 1, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-");
			if (p[seg] == '/')
				return true;
		}
		if (start && isalpha((unsigned char)*p) && p[1] == ':' && p[2] == '\\')
			return true;
	}
	return false;
}

/* text as it may reach a client: its first line, at most TEXT_MAX bytes (cut
 * at a character boundary), nothing that names a file. false when nothing
 * of it may. */
static bool clean_text(const char *text, char *out, size_t n)
{
	size_t len = strcspn(text, "\r\n");
	if (len >= n)
		len = n - 1;
	if (len > TEXT_MAX)
		len = TEXT_MAX;
	while (len > 0 && ((unsigned char)text[len] & 0xC0) == 0x80)
		len--; /* not inside a UTF-8 sequence */
	memcpy(out, text, len);
	out[len] = '\0';
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f)
			out[i] = ' ';
	return len > 0 && !names_file(out);
}

/* A text member of obj as it may reach a client: cleaned (a 4xx's words
 * are meant for the client), or (a 5xx's words are the server's own)
 * replaced by with, or removed when with is NULL. */
static void scrub_text(cJSON *obj, const char *key, bool keep, const char *with)
{
	cJSON *t = cJSON_GetObjectItemCaseSensitive(obj, key);
	if (!t)
		return;
	char buf[TEXT_MAX + 8];
	bool ok = keep && cJSON_IsString(t) && clean_text(t->valuestring, buf, sizeof buf);
	if (ok)
		cJSON_SetValuestring(t, buf);
	else if (with)
		cJSON_ReplaceItemInObjectCaseSensitive(obj, key, cJSON_CreateString(with));
	else
		cJSON_DeleteItemFromObjectCaseSensitive(obj, key);
}

/* Scrubs one OperationOutcome that came with status: each issue keeps its
 * severity, its code (when it is one) and the codes of its details; its
 * text is cleaned, or replaced when the status is a 5xx. */
static void scrub_outcome(cJSON *oo, long status)
{
	bool keep = status < 500;
	cJSON *issue;
	cJSON_ArrayForEach(issue, cJSON_GetObjectItemCaseSensitive(oo, "issue"))
	{
		scrub_text(issue, "diagnostics", keep, SCRUBBED);
		scrub_text(cJSON_GetObjectItemCaseSensitive(issue, "details"), "text", keep, NULL);
		const cJSON *code = cJSON_GetObjectItemCaseSensitive(issue, "code");
		if (!cJSON_IsString(code) || !issue_code_ok(code->valuestring))
			cJSON_ReplaceItemInObjectCaseSensitive(issue, "code", cJSON_CreateString("exception"));
	}
}

static bool is_type(const cJSON *node, const char *type)
{
	const cJSON *rt = cJSON_GetObjectItemCaseSensitive(node, "resourceType");
	return cJSON_IsString(rt) && !strcmp(rt->valuestring, type);
}

static void scrub(cJSON *node, long status, size_t depth)
{
	if (depth > 8 || !cJSON_IsObject(node))
		return;
	if (is_type(node, "OperationOutcome")) {
		scrub_outcome(node, status);
		return;
	}
	if (!is_type(node, "Bundle"))
		return;
	cJSON *e;
	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(node, "entry"))
	{
		cJSON *resp = cJSON_GetObjectItemCaseSensitive(e, "response");
		const cJSON *st = cJSON_GetObjectItemCaseSensitive(resp, "status");
		long est = cJSON_IsString(st) ? strtol(st->valuestring, NULL, 10) : status;
		scrub(cJSON_GetObjectItemCaseSensitive(e, "resource"), est, depth + 1);
		scrub(cJSON_GetObjectItemCaseSensitive(resp, "outcome"), est, depth + 1);
	}
}

void upstream_scrub_outcomes(cJSON *tree, long status) { scrub(tree, status, 0); }

/* upstream_fetch and upstream_post_form: a GET, or with form a POST of it. */
static int fetch_one(const char *url, const char *ca_file, const char *form, size_t max_bytes, long timeout_ms,
		     struct upstream_response *out)
{
	response_init(out);
	char why[256];
	if (!config_upstream_url_ok(url, why, sizeof why)) {
		snprintf(out->error, sizeof out->error, "%s", why);
		return -1;
	}
	pthread_once(&global_once, global_init);
	CURL *h = global_ok ? curl_easy_init() : NULL;
	if (!h) {
		snprintf(out->error, sizeof out->error, "the HTTP client could not start");
		return -1;
	}
	struct sink sink = {.r = out, .max = max_bytes};
	char detail[CURL_ERROR_SIZE] = "";
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, detail);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, strncmp(url, "https://", 8) ? "http" : "https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_PROXY, "");
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	if (ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, ca_file);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)max_bytes);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
	struct curl_slist *hdrs = NULL;
	if (form) {
		hdrs = curl_slist_append(NULL, "Content-Type: application/x-www-form-urlencoded");
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, form);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(form));
	}
	CURLcode rc = form && !hdrs ? CURLE_OUT_OF_MEMORY : curl_easy_perform(h);
	if (rc == CURLE_OK) {
		out->answered = true;
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->status);
	} else {
		out->timed_out = rc == CURLE_OPERATION_TIMEDOUT;
		snprintf(out->error, sizeof out->error, "%s", detail[0] ? detail : curl_easy_strerror(rc));
	}
	curl_easy_cleanup(h);
	curl_slist_free_all(hdrs);
	return out->answered && out->status >= 200 && out->status < 300 ? 0 : -1;
}

int upstream_fetch(const char *url, const char *ca_file, size_t max_bytes, long timeout_ms,
		   struct upstream_response *out)
{
	return fetch_one(url, ca_file, NULL, max_bytes, timeout_ms, out);
}

int upstream_post_form(const char *url, const char *ca_file, const char *form, size_t max_bytes, long timeout_ms,
		       struct upstream_response *out)
{
	return fetch_one(url, ca_file, form, max_bytes, timeout_ms, out);
}
