/* End-to-end tests of the HTTP front door: the real gateway on loopback.
 * Each limit has a test that fails when the limit is taken out. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "e2e/harness.h"

static struct gw shared_gw;

static int start_shared(void **state)
{
	(void)state;
	return gw_start(&shared_gw, NULL);
}

static int stop_shared(void **state)
{
	(void)state;
	return gw_stop(&shared_gw, 15000) == 0 ? 0 : -1;
}

static cJSON *parse_body(const struct resp *r)
{
	cJSON *j = cJSON_ParseWithLength(r->body, r->len);
	assert_non_null(j);
	return j;
}

static void assert_outcome(const struct resp *r, const char *code)
{
	char ct[128];
	assert_non_null(resp_header(r, "Content-Type", ct, sizeof ct));
	assert_non_null(strstr(ct, "application/fhir+json"));
	cJSON *j = parse_body(r);
	assert_string_equal(cJSON_GetObjectItem(j, "resourceType")->valuestring, "OperationOutcome");
	cJSON *issue = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "issue"), 0);
	assert_non_null(issue);
	if (code)
		assert_string_equal(cJSON_GetObjectItem(issue, "code")->valuestring, code);
	cJSON_Delete(j);
}

static void metadata_is_a_capability_statement(void **state)
{
	(void)state;
	struct resp r;
	assert_int_equal(http_do(&shared_gw, "GET", "/fhir/metadata", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	cJSON *j = parse_body(&r);
	assert_string_equal(cJSON_GetObjectItem(j, "resourceType")->valuestring, "CapabilityStatement");
	assert_string_equal(cJSON_GetObjectItem(j, "fhirVersion")->valuestring, "4.0.1");
	assert_string_equal(cJSON_GetObjectItem(j, "kind")->valuestring, "instance");
	assert_string_equal(cJSON_GetObjectItem(j, "status")->valuestring, "active");
	assert_non_null(cJSON_GetObjectItem(j, "date"));
	cJSON *sw = cJSON_GetObjectItem(j, "software");
	assert_string_equal(cJSON_GetObjectItem(sw, "name")->valuestring, "Crosswalk");
	assert_true(cJSON_IsString(cJSON_GetObjectItem(sw, "version")));
	cJSON *fmt = cJSON_GetObjectItem(j, "format");
	assert_true(cJSON_GetArraySize(fmt) >= 1);
	cJSON_Delete(j);
	resp_free(&r);
}

static void healthz_and_metrics(void **state)
{
	(void)state;
	struct resp r;
	assert_int_equal(http_do(&shared_gw, "GET", "/healthz", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "\"ok\""));
	resp_free(&r);
	/* a request is counted when the server has finished it, which may be
	 * just after the client has its answer: read /metrics again for up to 2 s */
	long until = now_ms() + 2000;
	for (;;) {
		assert_int_equal(http_do(&shared_gw, "GET", "/metrics", NULL, NULL, 0, &r), 0);
		assert_int_equal(r.status, 200);
		bool counted = strstr(r.body, "crosswalk_http_requests_total{route=\"/healthz\",status=\"200\"}") &&
			       strstr(r.body, "crosswalk_http_request_duration_seconds_bucket{route=\"/healthz\"") &&
			       strstr(r.body, "crosswalk_http_requests_in_flight 1\n");
		if (counted || now_ms() > until)
			break;
		resp_free(&r);
		sleep_ms(20);
	}
	assert_non_null(strstr(r.body, "crosswalk_http_requests_total{route=\"/healthz\",status=\"200\"}"));
	assert_non_null(strstr(r.body, "crosswalk_http_request_duration_seconds_bucket{route=\"/healthz\""));
	assert_non_null(strstr(r.body, "crosswalk_http_requests_in_flight 1\n"));
	assert_non_null(strstr(r.body, "crosswalk_http_connections "));
	resp_free(&r);
}

static void unknown_route_and_wrong_method(void **state)
{
	(void)state;
	struct resp r;
	assert_int_equal(http_do(&shared_gw, "GET", "/nowhere", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 404);
	assert_outcome(&r, "not-found");
	resp_free(&r);
	assert_int_equal(http_do(&shared_gw, "DELETE", "/fhir/metadata", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 405);
	assert_outcome(&r, "not-supported");
	char allow[64];
	assert_non_null(resp_header(&r, "Allow", allow, sizeof allow));
	assert_string_equal(allow, "GET");
	resp_free(&r);
}

static void request_id_echoed_validated_generated(void **state)
{
	(void)state;
	struct resp r;
	char v[128];
	const char *good[] = {"X-Request-Id: abc-123.DEF_9", NULL};
	assert_int_equal(http_do(&shared_gw, "GET", "/healthz", good, NULL, 0, &r), 0);
	assert_string_equal(resp_header(&r, "X-Request-Id", v, sizeof v), "abc-123.DEF_9");
	resp_free(&r);
	const char *bad[] = {"X-Request-Id: <script>\"", NULL};
	assert_int_equal(http_do(&shared_gw, "GET", "/healthz", bad, NULL, 0, &r), 0);
	assert_non_null(resp_header(&r, "X-Request-Id", v, sizeof v));
	assert_null(strchr(v, '<'));
	assert_int_equal(strlen(v), 32);
	resp_free(&r);
	assert_int_equal(http_do(&shared_gw, "GET", "/healthz", NULL, NULL, 0, &r), 0);
	assert_non_null(resp_header(&r, "X-Request-Id", v, sizeof v));
	assert_int_equal(strlen(v), 32);
	resp_free(&r);
}

/* A request id of 64 characters is kept; one of 65 is replaced. */
static void request_id_length_bound(void **state)
{
	(void)state;
	char id[80], h[100], v[128];
	memset(id, 'r', 65);
	id[64] = '\0';
	snprintf(h, sizeof h, "X-Request-Id: %s", id);
	const char *at64[] = {h, NULL};
	struct resp r;
	assert_int_equal(http_do(&shared_gw, "GET", "/healthz", at64, NULL, 0, &r), 0);
	assert_string_equal(resp_header(&r, "X-Request-Id", v, sizeof v), id);
	resp_free(&r);
	id[64] = 'r';
	id[65] = '\0';
	snprintf(h, sizeof h, "X-Request-Id: %s", id);
	const char *at65[] = {h, NULL};
	assert_int_equal(http_do(&shared_gw, "GET", "/healthz", at65, NULL, 0, &r), 0);
	assert_non_null(resp_header(&r, "X-Request-Id", v, sizeof v));
	assert_int_equal(strlen(v), 32);
	resp_free(&r);
}

static void log_lines_are_json_without_query_values(void **state)
{
	(void)state;
	struct resp r;
	const char *rid[] = {"X-Request-Id: log-probe-1", NULL};
	assert_int_equal(http_do(&shared_gw, "GET", "/healthz?patient=SECRET-ID-42", rid, NULL, 0, &r), 0);
	resp_free(&r);
	sleep_ms(100);
	char *log = gw_log(&shared_gw);
	assert_null(strstr(log, "SECRET-ID-42"));
	char *line = strstr(log, "\"request_id\":\"log-probe-1\"");
	assert_non_null(line);
	while (line > log && line[-1] != '\n')
		line--;
	char *eol = strchr(line, '\n');
	assert_non_null(eol);
	*eol = '\0';
	cJSON *j = cJSON_Parse(line);
	assert_non_null(j);
	assert_string_equal(cJSON_GetObjectItem(j, "event")->valuestring, "request");
	assert_string_equal(cJSON_GetObjectItem(j, "method")->valuestring, "GET");
	assert_string_equal(cJSON_GetObjectItem(j, "route")->valuestring, "/healthz");
	assert_string_equal(cJSON_GetObjectItem(j, "status")->valuestring, "200");
	assert_string_equal(cJSON_GetObjectItem(j, "client")->valuestring, "127.0.0.1");
	assert_non_null(cJSON_GetObjectItem(j, "duration_ms"));
	cJSON_Delete(j);
	free(log);
}

/* A declared Content-Length over the limit is refused before the body is
 * read: the 413 arrives although no body byte was sent. */
static void oversized_content_length_gets_413_before_body(void **state)
{
	(void)state;
	struct gw gw;
	assert_int_equal(gw_start(&gw, "\"limits\":{\"max_body_bytes\":65536}"), 0);
	int fd = raw_connect(&gw, NULL);
	assert_true(fd >= 0);
	const char *req = "POST /fhir/metadata HTTP/1.1\r\nHost: x\r\nContent-Type: application/fhir+json\r\n"
			  "Content-Length: 1073741824\r\n\r\n";
	assert_int_equal(raw_send(fd, req, strlen(req)), 0);
	char buf[4096];
	long n = raw_recv_all(fd, buf, sizeof buf, 3000);
	assert_true(n > 0);
	assert_non_null(strstr(buf, "HTTP/1.1 413"));
	assert_non_null(strstr(buf, "OperationOutcome"));
	assert_non_null(strstr(buf, "too-long"));
	close(fd);
	assert_int_equal(gw_stop(&gw, 10000), 0);
}

/* A chunked body is cut off at the limit: the server closes the connection
 * long before the client has sent everything it wanted to. */
static void chunked_body_cut_off_at_limit(void **state)
{
	(void)state;
	struct gw gw;
	assert_int_equal(gw_start(&gw, "\"limits\":{\"max_body_bytes\":65536}"), 0);
	int fd = raw_connect(&gw, NULL);
	assert_true(fd >= 0);
	const char *hdr = "POST /fhir/metadata HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
	assert_int_equal(raw_send(fd, hdr, strlen(hdr)), 0);
	char chunk[4096 + 16];
	int hl = snprintf(chunk, sizeof chunk, "1000\r\n");
	memset(chunk + hl, 'a', 4096);
	memcpy(chunk + hl + 4096, "\r\n", 2);
	size_t clen = (size_t)hl + 4096 + 2;
	size_t sent = 0;
	bool closed = false;
	/* Try to send 64 MiB; the server must stop us near 64 KiB. */
	for (int i = 0; i < 16384; i++) {
		if (raw_send(fd, chunk, clen) != 0) {
			closed = true;
			break;
		}
		sent += clen;
		if (i % 16 == 15 && raw_closed_within(fd, 5)) {
			closed = true;
			break;
		}
	}
	if (!closed)
		closed = raw_closed_within(fd, 2000);
	assert_true(closed);
	assert_true(sent < 8u * 1024 * 1024);
	close(fd);
	struct resp r;
	assert_int_equal(http_do(&gw, "GET", "/metrics", NULL, NULL, 0, &r), 0);
	assert_non_null(strstr(r.body, "crosswalk_http_body_too_large_total 1"));
	resp_free(&r);
	assert_int_equal(gw_stop(&gw, 10000), 0);
}

/* Content-Length with Transfer-Encoding: 400, connection closed, and the
 * request smuggled behind it is never answered. */
static void cl_and_te_refused(void **state)
{
	(void)state;
	int fd = raw_connect(&shared_gw, NULL);
	assert_true(fd >= 0);
	const char *req = "POST /fhir/metadata HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\n"
			  "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
	assert_int_equal(raw_send(fd, req, strlen(req)), 0);
	char buf[8192];
	long n = raw_recv_all(fd, buf, sizeof buf, 3000);
	assert_true(n > 0);
	assert_non_null(strstr(buf, "HTTP/1.1 400"));
	assert_non_null(strstr(buf, "Transfer-Encoding"));
	assert_null(strstr(buf + 12, "HTTP/1.1 "));
	close(fd);
}

static void duplicate_content_length_refused(void **state)
{
	(void)state;
	const char *variants[] = {
		"POST /fhir/metadata HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\n"
		"abcdeGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /fhir/metadata HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 5\r\n\r\n"
		"abcdeGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
	};
	for (size_t i = 0; i < 2; i++) {
		int fd = raw_connect(&shared_gw, NULL);
		assert_true(fd >= 0);
		assert_int_equal(raw_send(fd, variants[i], strlen(variants[i])), 0);
		char buf[8192];
		long n = raw_recv_all(fd, buf, sizeof buf, 3000);
		assert_true(n > 0);
		assert_non_null(strstr(buf, "HTTP/1.1 400"));
		/* The request smuggled behind the body is never answered. The
		 * comma-listed form is refused by the HTTP library itself, with
		 * its own (non-FHIR) body. */
		assert_null(strstr(buf, "HTTP/1.1 200"));
		assert_null(strstr(buf, "\"status\":\"ok\""));
		if (i == 0)
			assert_non_null(strstr(buf, "OperationOutcome"));
		close(fd);
	}
}

/* A signed Content-Length is no number: 400, nothing smuggled behind it. */
static void signed_content_length_refused(void **state)
{
	(void)state;
	const char *req = "POST /fhir/metadata HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\n"
			  "abcGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
	int fd = raw_connect(&shared_gw, NULL);
	assert_true(fd >= 0);
	assert_int_equal(raw_send(fd, req, strlen(req)), 0);
	char buf[8192];
	long n = raw_recv_all(fd, buf, sizeof buf, 3000);
	assert_true(n > 0);
	assert_non_null(strstr(buf, "HTTP/1.1 400"));
	assert_null(strstr(buf, "HTTP/1.1 200"));
	assert_null(strstr(buf, "\"status\":\"ok\""));
	close(fd);
}

/* One raw request with a body of len bytes ('a'), declared (Content-Length)
 * or chunked (in 1000-byte chunks); what came back, up to cap, in buf. */
static long send_body(const struct gw *gw, size_t len, bool chunked, char *buf, size_t cap)
{
	int fd = raw_connect(gw, NULL);
	assert_true(fd >= 0);
	char hdr[200];
	if (chunked)
		snprintf(hdr, sizeof hdr, "POST /fhir/metadata HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
					  "Transfer-Encoding: chunked\r\n\r\n");
	else
		snprintf(hdr, sizeof hdr, "POST /fhir/metadata HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
					  "Content-Length: %zu\r\n\r\n", len);
	assert_int_equal(raw_send(fd, hdr, strlen(hdr)), 0);
	char chunk[1100];
	for (size_t done = 0; done < len;) {
		size_t k = len - done < 1000 ? len - done : 1000;
		int hl = chunked ? snprintf(chunk, sizeof chunk, "%zx\r\n", k) : 0;
		memset(chunk + hl, 'a', k);
		size_t cl = (size_t)hl + k;
		if (chunked) {
			memcpy(chunk + cl, "\r\n", 2);
			cl += 2;
		}
		if (raw_send(fd, chunk, cl) != 0)
			break; /* cut off */
		done += k;
	}
	if (chunked)
		raw_send(fd, "0\r\n\r\n", 5);
	long n = raw_recv_all(fd, buf, cap - 1, 3000);
	buf[n > 0 ? n : 0] = '\0';
	close(fd);
	return n;
}

/* The body limit is inclusive: exactly max_body_bytes is read and answered
 * (405: metadata takes no POST), one byte more is refused, declared (413)
 * or chunked (cut off, no answer). */
static void body_limit_bounds(void **state)
{
	(void)state;
	struct gw gw;
	assert_int_equal(gw_start(&gw, "\"limits\":{\"max_body_bytes\":2048}"), 0);
	char buf[8192];
	assert_true(send_body(&gw, 2048, false, buf, sizeof buf) > 0);
	assert_non_null(strstr(buf, "HTTP/1.1 405"));
	assert_true(send_body(&gw, 2049, false, buf, sizeof buf) > 0);
	assert_non_null(strstr(buf, "HTTP/1.1 413"));
	assert_true(send_body(&gw, 2048, true, buf, sizeof buf) > 0);
	assert_non_null(strstr(buf, "HTTP/1.1 405"));
	send_body(&gw, 2049, true, buf, sizeof buf);
	assert_null(strstr(buf, "HTTP/1.1 405"));
	struct resp r;
	assert_int_equal(http_do(&gw, "GET", "/metrics", NULL, NULL, 0, &r), 0);
	assert_non_null(strstr(r.body, "crosswalk_http_body_too_large_total 2"));
	resp_free(&r);
	assert_int_equal(gw_stop(&gw, 10000), 0);
}

/* A JSON Binary of n data bytes ('Q', or 'Z' when zed) for $convert. */
static char *binary_json(size_t n, bool zed, size_t *len)
{
	const char *head = "{\"resourceType\":\"Binary\",\"contentType\":\"text/plain\",\"data\":\"";
	size_t hl = strlen(head);
	char *b = malloc(hl + n + 3);
	assert_non_null(b);
	memcpy(b, head, hl);
	memset(b + hl, zed ? 'Z' : 'Q', n);
	memcpy(b + hl + n, "\"}", 3);
	*len = hl + n + 2;
	return b;
}

/* POST /fhir/$convert (JSON to XML) on a connection of its own: the body
 * declared with Content-Length declared (chunked when 0), sent up to len
 * bytes, then the client stops sending (half-close) when cut. The answer,
 * up to cap, in buf. */
static long convert_raw(const struct gw *gw, const char *body, size_t len, size_t declared, bool cut, char *buf,
			size_t cap)
{
	int fd = raw_connect(gw, NULL);
	assert_true(fd >= 0);
	char hdr[300];
	int hl = snprintf(hdr, sizeof hdr,
			  "POST /fhir/$convert HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
			  "Content-Type: application/fhir+json\r\nAccept: application/fhir+xml\r\n");
	if (declared)
		hl += snprintf(hdr + hl, sizeof hdr - (size_t)hl, "Content-Length: %zu\r\n\r\n", declared);
	else
		hl += snprintf(hdr + hl, sizeof hdr - (size_t)hl, "Transfer-Encoding: chunked\r\n\r\n%zx\r\n", len);
	assert_int_equal(raw_send(fd, hdr, (size_t)hl), 0);
	if (len)
		raw_send(fd, body, len);
	if (!declared)
		raw_send(fd, "\r\n0\r\n\r\n", 7);
	if (cut)
		shutdown(fd, SHUT_WR);
	long n = raw_recv_all(fd, buf, cap, 10000);
	close(fd);
	return n;
}

/* The answer in buf holds a Binary whose data is exactly n bytes of c. */
static bool xml_data_is(const char *buf, size_t n, char c)
{
	const char *v = strstr(buf, "<data value=\"");
	if (!v)
		return false;
	v += strlen("<data value=\"");
	for (size_t i = 0; i < n; i++)
		if (v[i] != c)
			return false;
	return v[n] == '"';
}

/* Request bodies and the converter's memory are kept between requests: a
 * body sized from Content-Length in a buffer an earlier, larger body used, a
 * chunked body (no Content-Length), a Content-Length larger than the body
 * sent (no answer made of what the buffer held before), one over the limit
 * (413 before any byte is read), and a body larger than every kept buffer:
 * each answer is made of its own request's bytes alone. */
static void content_length_edges_with_kept_buffers(void **state)
{
	(void)state;
	struct gw gw;
	/* the request deadline ends the request whose body never comes whole */
	assert_int_equal(gw_start(&gw, "\"limits\":{\"max_body_bytes\":1048576,\"header_timeout_ms\":2000,"
				       "\"request_timeout_ms\":3000}"),
			 0);
	size_t cap = 4u << 20;
	char *buf = malloc(cap);
	assert_non_null(buf);
	size_t blen, slen, hlen;
	char *big = binary_json(300000, false, &blen);
	char *small = binary_json(1000, true, &slen);
	char *huge = binary_json(900000, true, &hlen);
	for (int round = 0; round < 2; round++) {
		/* exact Content-Length, large: kept afterwards */
		assert_true(convert_raw(&gw, big, blen, blen, false, buf, cap) > 0);
		assert_non_null(strstr(buf, "HTTP/1.1 200"));
		assert_true(xml_data_is(buf, 300000, 'Q'));
		/* exact Content-Length, small, after it */
		assert_true(convert_raw(&gw, small, slen, slen, false, buf, cap) > 0);
		assert_non_null(strstr(buf, "HTTP/1.1 200"));
		assert_true(xml_data_is(buf, 1000, 'Z'));
		/* no Content-Length: chunked */
		assert_true(convert_raw(&gw, small, slen, 0, false, buf, cap) > 0);
		assert_non_null(strstr(buf, "HTTP/1.1 200"));
		assert_true(xml_data_is(buf, 1000, 'Z'));
		/* Content-Length larger than the body sent: never answered from
		 * the buffer's earlier bytes (the connection ends at the deadline) */
		convert_raw(&gw, small, slen, blen, true, buf, cap);
		assert_null(strstr(buf, "HTTP/1.1 200"));
		assert_null(strstr(buf, "QQQQ"));
		/* Content-Length over the limit: 413 OperationOutcome */
		assert_true(convert_raw(&gw, NULL, 0, 1048577, false, buf, cap) > 0);
		assert_non_null(strstr(buf, "HTTP/1.1 413"));
		assert_non_null(strstr(buf, "OperationOutcome"));
		assert_non_null(strstr(buf, "limits.max_body_bytes"));
		/* larger than any buffer kept so far */
		assert_true(convert_raw(&gw, huge, hlen, hlen, false, buf, cap) > 0);
		assert_non_null(strstr(buf, "HTTP/1.1 200"));
		assert_true(xml_data_is(buf, 900000, 'Z'));
	}
	free(big);
	free(small);
	free(huge);
	free(buf);
	assert_int_equal(gw_stop(&gw, 10000), 0);
}

static void oversized_header_gets_431(void **state)
{
	(void)state;
	int fd = raw_connect(&shared_gw, NULL);
	assert_true(fd >= 0);
	char *req = malloc(50000);
	int n = snprintf(req, 50000, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ");
	memset(req + n, 'a', 40000);
	memcpy(req + n + 40000, "\r\n\r\n", 5);
	raw_send(fd, req, strlen(req));
	char buf[4096];
	assert_true(raw_recv_all(fd, buf, sizeof buf, 3000) > 0);
	assert_non_null(strstr(buf, "HTTP/1.1 431"));
	free(req);
	close(fd);
}

/* A client trickling one header line every 200 ms never trips an idle
 * timeout, but the absolute header deadline (1 s here) closes it. */
static void header_trickle_closed_at_deadline(void **state)
{
	(void)state;
	struct gw gw;
	assert_int_equal(gw_start(&gw, "\"limits\":{\"header_timeout_ms\":1000,\"request_timeout_ms\":5000}"), 0);
	int fd = raw_connect(&gw, NULL);
	assert_true(fd >= 0);
	long start = now_ms();
	assert_int_equal(raw_send(fd, "GET /healthz HTTP/1.1\r\nHost: x\r\n", 32), 0);
	bool closed = false;
	for (int i = 0; i < 40 && !closed; i++) {
		char line[32];
		int n = snprintf(line, sizeof line, "X-Drip-%d: y\r\n", i);
		if (raw_send(fd, line, (size_t)n) != 0 || raw_closed_within(fd, 200))
			closed = true;
	}
	long took = now_ms() - start;
	assert_true(closed);
	assert_true(took >= 900);
	assert_true(took < 3000);
	close(fd);
	struct resp r;
	assert_int_equal(http_do(&gw, "GET", "/metrics", NULL, NULL, 0, &r), 0);
	assert_non_null(strstr(r.body, "crosswalk_http_deadline_closed_total 1"));
	resp_free(&r);
	assert_int_equal(gw_stop(&gw, 10000), 0);
}

/* The whole request has a deadline too: a body trickled byte by byte. */
static void body_trickle_closed_at_request_deadline(void **state)
{
	(void)state;
	struct gw gw;
	assert_int_equal(gw_start(&gw, "\"limits\":{\"header_timeout_ms\":1000,\"request_timeout_ms\":1500}"), 0);
	int fd = raw_connect(&gw, NULL);
	assert_true(fd >= 0);
	long start = now_ms();
	const char *hdr = "POST /fhir/metadata HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n";
	assert_int_equal(raw_send(fd, hdr, strlen(hdr)), 0);
	bool closed = false;
	for (int i = 0; i < 60 && !closed; i++)
		if (raw_send(fd, "a", 1) != 0 || raw_closed_within(fd, 100))
			closed = true;
	long took = now_ms() - start;
	assert_true(closed);
	assert_true(took >= 1400);
	assert_true(took < 4000);
	close(fd);
	assert_int_equal(gw_stop(&gw, 10000), 0);
}

/* Per-client cap: with 3 allowed, the fourth connection from 127.0.0.1 is
 * closed at once, while another client address still gets in. */
static void per_ip_connection_cap(void **state)
{
	(void)state;
	struct gw gw;
	assert_int_equal(gw_start(&gw, "\"limits\":{\"max_connections_per_ip\":3}"), 0);
	int fds[3];
	for (int i = 0; i < 3; i++) {
		fds[i] = raw_connect(&gw, NULL);
		assert_true(fds[i] >= 0);
	}
	sleep_ms(100);
	for (int i = 0; i < 3; i++)
		assert_false(raw_closed_within(fds[i], 50));
	int extra = raw_connect(&gw, NULL);
	assert_true(extra >= 0);
	assert_true(raw_closed_within(extra, 2000));
	close(extra);
	int other = raw_connect(&gw, "127.0.0.2");
	assert_true(other >= 0);
	const char *req = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
	assert_int_equal(raw_send(other, req, strlen(req)), 0);
	char buf[2048];
	assert_true(raw_recv_all(other, buf, sizeof buf, 3000) > 0);
	assert_non_null(strstr(buf, "HTTP/1.1 200"));
	close(other);
	for (int i = 0; i < 3; i++)
		close(fds[i]);
	assert_int_equal(gw_stop(&gw, 10000), 0);
}

/* Global cap: with one worker thread and 3 connections allowed, a fourth
 * connection (from another address, so the per-client cap is not what bites)
 * is not served while the three are open, and is served once one closes. */
static void total_connection_cap(void **state)
{
	(void)state;
	struct gw gw;
	assert_int_equal(gw_start(&gw, "\"threads\":1,\"limits\":{\"max_connections\":3}"), 0);
	int fds[3];
	for (int i = 0; i < 3; i++) {
		fds[i] = raw_connect(&gw, NULL);
		assert_true(fds[i] >= 0);
	}
	sleep_ms(100);
	for (int i = 0; i < 3; i++)
		assert_false(raw_closed_within(fds[i], 50));
	int extra = raw_connect(&gw, "127.0.0.3");
	assert_true(extra >= 0);
	const char *req = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
	assert_int_equal(raw_send(extra, req, strlen(req)), 0);
	char buf[2048];
	long n = raw_recv_all(extra, buf, sizeof buf, 1000);
	assert_true(n <= 0 || strstr(buf, "HTTP/1.1 200") == NULL);
	close(fds[0]);
	n = raw_recv_all(extra, buf, sizeof buf, 3000);
	assert_true(n > 0);
	assert_non_null(strstr(buf, "HTTP/1.1 200"));
	close(extra);
	for (int i = 1; i < 3; i++)
		close(fds[i]);
	assert_int_equal(gw_stop(&gw, 10000), 0);
}

/* SIGTERM while a request is in flight: the listener closes, the request
 * still completes, and the process exits 0. */
static void shutdown_drains_in_flight(void **state)
{
	(void)state;
	struct gw gw;
	assert_int_equal(gw_start(&gw, NULL), 0);
	int fd = raw_connect(&gw, NULL);
	assert_true(fd >= 0);
	const char *hdr = "POST /fhir/metadata HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345";
	assert_int_equal(raw_send(fd, hdr, strlen(hdr)), 0);
	sleep_ms(200);
	kill(gw.pid, SIGTERM);
	sleep_ms(300);
	/* No new connections once draining. */
	int late = raw_connect(&gw, NULL);
	if (late >= 0) {
		const char *req = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
		raw_send(late, req, strlen(req));
		char lb[512];
		long ln = raw_recv_all(late, lb, sizeof lb, 500);
		assert_true(ln <= 0 || strstr(lb, "HTTP/1.1 200") == NULL);
		close(late);
	}
	assert_int_equal(raw_send(fd, "67890", 5), 0);
	char buf[4096];
	long n = raw_recv_all(fd, buf, sizeof buf, 5000);
	assert_true(n > 0);
	assert_non_null(strstr(buf, "HTTP/1.1 405"));
	close(fd);
	int st = gw_stop(&gw, 10000); /* already signalled: waits for exit */
	assert_int_equal(st, 0);
}

/* The configured JSON limits apply to request bodies: depth → 400, the
 * memory budget → 413, both as OperationOutcome. */
static void configured_json_limits_apply(void **state)
{
	(void)state;
	struct gw gw;
	assert_int_equal(gw_start(&gw, "\"limits\":{\"json_max_depth\":8,\"json_memory_budget_bytes\":1048576,"
				       "\"json_max_array_items\":1000000}"),
			 0);
	const char *ct[] = {"Content-Type: application/json", NULL};
	const char *deep = "{\"a\":[[[[[[[[[[1]]]]]]]]]]}";
	struct resp r;
	assert_int_equal(http_do(&gw, "POST", "/ingest/echo", ct, deep, strlen(deep), &r), 0);
	assert_int_equal(r.status, 400);
	assert_outcome(&r, "structure");
	assert_non_null(strstr(r.body, "nesting too deep"));
	resp_free(&r);
	size_t n = 0, cap = 600000;
	char *big = malloc(cap);
	n += (size_t)snprintf(big, cap, "{\"a\":[");
	while (n + 4 < cap) {
		big[n++] = '0';
		big[n++] = ',';
	}
	big[n - 1] = ']';
	big[n++] = '}';
	assert_int_equal(http_do(&gw, "POST", "/ingest/echo", ct, big, n, &r), 0);
	assert_int_equal(r.status, 413);
	assert_outcome(&r, "too-costly");
	resp_free(&r);
	free(big);
	assert_int_equal(gw_stop(&gw, 10000), 0);
}

static void bad_configuration_exits_2(void **state)
{
	(void)state;
	char out[2048];
	assert_int_equal(gw_run_expect_exit("\"limits\":{\"max_body_bytes\":\"big\"}", NULL, 5000, out, sizeof out), 2);
	assert_non_null(strstr(out, "limits.max_body_bytes"));
	assert_int_equal(gw_run_expect_exit("\"limits\":{\"max_body_bytes\":10}", NULL, 5000, out, sizeof out), 2);
	assert_non_null(strstr(out, "limits.max_body_bytes"));
	assert_int_equal(gw_run_expect_exit("\"colour\":\"blue\"", NULL, 5000, out, sizeof out), 2);
	assert_non_null(strstr(out, "colour: unknown key"));
	assert_int_equal(gw_run_expect_exit("\"threads\":1,\"threads\":2", NULL, 5000, out, sizeof out), 2);
	assert_int_equal(gw_run_expect_exit("\"listen\":\"0.0.0.0:8080\"", NULL, 5000, out, sizeof out), 2);
	assert_non_null(strstr(out, "authentication"));
	const char *args[] = {"--bogus", NULL};
	assert_int_equal(gw_run_expect_exit(NULL, args, 5000, out, sizeof out), 2);
}

int main(void)
{
	const struct CMUnitTest shared[] = {
		cmocka_unit_test(metadata_is_a_capability_statement),
		cmocka_unit_test(healthz_and_metrics),
		cmocka_unit_test(unknown_route_and_wrong_method),
		cmocka_unit_test(request_id_echoed_validated_generated),
		cmocka_unit_test(request_id_length_bound),
		cmocka_unit_test(log_lines_are_json_without_query_values),
		cmocka_unit_test(cl_and_te_refused),
		cmocka_unit_test(duplicate_content_length_refused),
		cmocka_unit_test(signed_content_length_refused),
		cmocka_unit_test(oversized_header_gets_431),
	};
	const struct CMUnitTest own[] = {
		cmocka_unit_test(oversized_content_length_gets_413_before_body),
		cmocka_unit_test(chunked_body_cut_off_at_limit),
		cmocka_unit_test(body_limit_bounds),
		cmocka_unit_test(header_trickle_closed_at_deadline),
		cmocka_unit_test(body_trickle_closed_at_request_deadline),
		cmocka_unit_test(per_ip_connection_cap),
		cmocka_unit_test(total_connection_cap),
		cmocka_unit_test(shutdown_drains_in_flight),
		cmocka_unit_test(content_length_edges_with_kept_buffers),
		cmocka_unit_test(configured_json_limits_apply),
		cmocka_unit_test(bad_configuration_exits_2),
	};
	int rc = cmocka_run_group_tests_name("http-shared", shared, start_shared, stop_shared);
	rc |= cmocka_run_group_tests_name("http-own", own, NULL, NULL);
	return rc;
}
