/* End-to-end tests of what the HTTP front door refuses, over raw sockets to
 * the real gateway: requests that two HTTP parsers could read differently
 * (header names, bare CR, hidden NUL, folding, Host, Transfer-Encoding), a
 * request target that means something else once decoded (%00, %2F, dot
 * segments), too many query parameters, links built from a forged Host, and
 * a second gateway on a port in use. Each refusal is one well-formed answer
 * with an OperationOutcome, at once, and the connection is closed. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

struct exchange {
	char buf[32768];
	long n;
	long ms; /* until the server closed (or the wait ended) */
};

/* Sends len bytes of req on a new connection and reads until the server
 * closes it (or 4 s pass). */
static void exchange(const struct gw *gw, const char *req, size_t len, struct exchange *x)
{
	int fd = raw_connect(gw, NULL);
	assert_true(fd >= 0);
	long start = now_ms();
	assert_int_equal(raw_send(fd, req, len), 0);
	x->n = raw_recv_all(fd, x->buf, sizeof x->buf, 4000);
	x->ms = now_ms() - start;
	close(fd);
}

/* Status lines ("HTTP/1.1 ddd ") in an answer stream. */
static size_t status_lines(const char *hay)
{
	size_t n = 0;
	for (const char *p = strstr(hay, "HTTP/1.1 "); p; p = strstr(p + 1, "HTTP/1.1 "))
		if (p[9] >= '1' && p[9] <= '5' && p[10] >= '0' && p[10] <= '9' && p[11] >= '0' && p[11] <= '9' &&
		    p[12] == ' ')
			n++;
	return n;
}

/* One answer with status, an OperationOutcome, at once; the server closed
 * the connection, so nothing behind the request was read as another one. */
static void assert_refused(const struct exchange *x, int status, const char *diag)
{
	char line[32];
	snprintf(line, sizeof line, "HTTP/1.1 %d ", status);
	if (strncmp(x->buf, line, strlen(line)) != 0)
		fail_msg("expected %s, got: %.300s", line, x->buf);
	assert_int_equal(status_lines(x->buf), 1);
	assert_non_null(strstr(x->buf, "Connection: close"));
	assert_non_null(strstr(x->buf, "\"resourceType\":\"OperationOutcome\""));
	if (diag && !strstr(x->buf, diag))
		fail_msg("expected \"%s\" in: %.600s", diag, x->buf);
	assert_true(x->ms < 2500);
}

static void refused_text(const char *req, int status, const char *diag)
{
	struct exchange *x = malloc(sizeof *x);
	assert_non_null(x);
	exchange(&shared_gw, req, strlen(req), x);
	assert_refused(x, status, diag);
	free(x);
}

/* A smuggling attempt: the refused request's body is a complete second
 * request. It must never be answered. */
#define SMUGGLED "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-Id: smuggled\r\n\r\n"

static void header_name_not_a_token_refused(void **state)
{
	(void)state;
	static const char *const reqs[] = {
		"POST /fhir/metadata HTTP/1.1\r\nHost: x\r\nContent-Length : 61\r\n\r\n" SMUGGLED,
		"POST /fhir/metadata HTTP/1.1\r\nHost: x\r\nContent-Length\t: 61\r\n\r\n" SMUGGLED,
		"GET /healthz HTTP/1.1\r\nHost: x\r\nX(A): a\r\n\r\n",
		"GET /healthz HTTP/1.1\r\nHost: x\r\nX A: a\r\n\r\n",
		"GET /healthz HTTP/1.1\r\nHost: x\r\nX-\x7f: a\r\n\r\n",
	};
	for (size_t i = 0; i < sizeof reqs / sizeof *reqs; i++) {
		refused_text(reqs[i], 400, "not a token");
	}
	struct exchange x;
	exchange(&shared_gw, reqs[0], strlen(reqs[0]), &x);
	assert_null(strstr(x.buf, "smuggled"));
	assert_null(strstr(x.buf, "\"status\":\"ok\""));
}

static void bare_cr_in_header_line_refused(void **state)
{
	(void)state;
	refused_text("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Foo: a\rContent-Length: 61\r\n\r\n" SMUGGLED, 400,
		     "control character");
	refused_text("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Foo: a\r\r\n\r\n", 400, "control character");
	refused_text("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Foo: a\x01" "b\r\n\r\n", 400, "control character");
}

/* A NUL ends the value the library reports and hides the rest of the line,
 * wherever the header stands and whatever follows the NUL. */
static void nul_in_header_value_refused(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		size_t len;
	} reqs[] = {
#define R(s) {s, sizeof s - 1}
		R("GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\0Content-Length: 61\r\nX-B: b\r\n\r\n" SMUGGLED),
		R("GET /healthz HTTP/1.1\r\nX-A: a\0b\r\nHost: x\r\n\r\n"),
		R("GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n"),
		R("GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\0\r\n\r\n"),
		R("GET /healthz HTTP/1.1\r\nHost: x\0evil\r\n\r\n"),
		R("GET /healthz\0/../secret HTTP/1.1\r\nHost: x\r\n\r\n"),
#undef R
	};
	for (size_t i = 0; i < sizeof reqs / sizeof *reqs; i++) {
		struct exchange x;
		exchange(&shared_gw, reqs[i].text, reqs[i].len, &x);
		assert_refused(&x, 400, "NUL");
		assert_null(strstr(x.buf, "smuggled"));
	}
	/* After the version, the library itself refuses (its own plain 400). */
	static const char v[] = "GET /healthz HTTP/1.1\0junk\r\nHost: x\r\n\r\n" SMUGGLED;
	struct exchange x;
	exchange(&shared_gw, v, sizeof v - 1, &x);
	assert_int_equal(strncmp(x.buf, "HTTP/1.1 400 ", 13), 0);
	assert_int_equal(status_lines(x.buf), 1);
	assert_true(x.ms < 2500);
}

static void folded_header_refused(void **state)
{
	(void)state;
	refused_text("GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\r\n folded\r\n\r\n", 400, "NUL");
	refused_text("GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\r\n\tContent-Length: 5\r\n\r\n", 400, NULL);
}

static void host_header_rules(void **state)
{
	(void)state;
	refused_text("GET /healthz HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400, "more than one Host");
	refused_text("GET /healthz HTTP/1.1\r\nHost: x\r\nhost: x\r\n\r\n", 400, "more than one Host");
	/* Without Host the library's own refusal wrote its header block twice. */
	refused_text("GET /healthz HTTP/1.1\r\n\r\n", 400, "must carry a Host");
	refused_text("GET /healthz HTTP/1.1\r\nHost: a/b@c\r\n\r\n", 400, "Host header");
	/* HTTP/1.0 needs no Host; a good one with a port is fine. */
	struct exchange x;
	const char *ok10 = "GET /healthz HTTP/1.0\r\n\r\n";
	exchange(&shared_gw, ok10, strlen(ok10), &x);
	assert_non_null(strstr(x.buf, "HTTP/1.1 200"));
	const char *ok11 = "GET /healthz HTTP/1.1\r\nHost: [::1]:8080\r\nConnection: close\r\n\r\n";
	exchange(&shared_gw, ok11, strlen(ok11), &x);
	assert_non_null(strstr(x.buf, "HTTP/1.1 200"));
}

static void transfer_codings_other_than_chunked(void **state)
{
	(void)state;
	static const struct {
		const char *te;
		int status;
	} cases[] = {
		{"Transfer-Encoding: gzip", 501},
		{"Transfer-Encoding: gzip, chunked", 501},
		{"Transfer-Encoding: identity", 501},
		{"Transfer-Encoding: chunked, identity", 400},
		{"Transfer-Encoding: chunked, chunked", 400},
		{"Transfer-Encoding: chunked ", 400},
		{"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked", 400},
		{"Transfer-Encoding: ,chunked", 400},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		char req[512];
		snprintf(req, sizeof req, "POST /fhir/Patient HTTP/1.1\r\nHost: x\r\nContent-Type: application/fhir+json\r\n"
			 "%s\r\n\r\n5\r\n{\"a\":\r\n", cases[i].te);
		refused_text(req, cases[i].status, "Transfer-Encoding");
	}
	/* A plain chunked body still works. */
	struct exchange x;
	const char *ok = "POST /fhir/Patient HTTP/1.1\r\nHost: x\r\nContent-Type: application/fhir+json\r\n"
			 "Transfer-Encoding: Chunked\r\nConnection: close\r\n\r\n"
			 "1a\r\n{\"resourceType\":\"Patient\"}\r\n0\r\n\r\n";
	exchange(&shared_gw, ok, strlen(ok), &x);
	assert_non_null(strstr(x.buf, "HTTP/1.1 201"));
}

static void get_status(const char *method, const char *target, long expect)
{
	char req[1024];
	snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", method,
		 target);
	struct exchange x;
	exchange(&shared_gw, req, strlen(req), &x);
	char line[32];
	snprintf(line, sizeof line, "HTTP/1.1 %ld ", expect);
	if (strncmp(x.buf, line, strlen(line)) != 0)
		fail_msg("%s %s: expected %s, got: %.300s", method, target, line, x.buf);
}

/* %00 ended the path or a value early (Patient/nul1%00X read Patient/nul1)
 * and %2F was decoded before routing. */
static void target_nul_slash_and_dots_refused(void **state)
{
	(void)state;
	struct resp r;
	const char *ct[] = {"Content-Type: application/fhir+json", NULL};
	const char *pat = "{\"resourceType\":\"Patient\",\"id\":\"nul1\",\"name\":[{\"family\":\"Vic\"}]}";
	assert_int_equal(http_do(&shared_gw, "PUT", "/fhir/Patient/nul1", ct, pat, strlen(pat), &r), 0);
	assert_true(r.status == 200 || r.status == 201);
	resp_free(&r);
	get_status("GET", "/fhir/Patient/nul1", 200);
	refused_text("GET /fhir/Patient/nul1%00ANYTHING HTTP/1.1\r\nHost: x\r\n\r\n", 400, "%00");
	refused_text("DELETE /fhir/Patient/nul1%00 HTTP/1.1\r\nHost: x\r\n\r\n", 400, "%00");
	refused_text("GET /fhir/Patient?family=Vic%00tim HTTP/1.1\r\nHost: x\r\n\r\n", 400, "%00");
	refused_text("GET /fhir/Patient?fam%00ily=Vic HTTP/1.1\r\nHost: x\r\n\r\n", 400, "%00");
	refused_text("POST /ingest/billing%00 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 400, "%00");
	refused_text("GET /fhir/Patient%2Fnul1 HTTP/1.1\r\nHost: x\r\n\r\n", 400, "%2F");
	refused_text("GET /fhir/Patient%2fnul1 HTTP/1.1\r\nHost: x\r\n\r\n", 400, "%2F");
	refused_text("GET /fhir/Patient%5Cnul1 HTTP/1.1\r\nHost: x\r\n\r\n", 400, "%5C");
	refused_text("GET /fhir/Patient\\nul1 HTTP/1.1\r\nHost: x\r\n\r\n", 400, "backslash");
	refused_text("GET /fhir/Patient/../Patient/nul1 HTTP/1.1\r\nHost: x\r\n\r\n", 400, "segment");
	refused_text("GET /fhir/Patient/%2e%2E/Patient/nul1 HTTP/1.1\r\nHost: x\r\n\r\n", 400, "segment");
	refused_text("GET /fhir/./metadata HTTP/1.1\r\nHost: x\r\n\r\n", 400, "segment");
	refused_text("GET /fhir/Patient/nul%zz HTTP/1.1\r\nHost: x\r\n\r\n", 400, "hexadecimal");
	refused_text("GET /fhir/Patient?family=50% HTTP/1.1\r\nHost: x\r\n\r\n", 400, "hexadecimal");
	refused_text("GET /fhir/Patient/nul%0A1 HTTP/1.1\r\nHost: x\r\n\r\n", 400, "control character");
	/* A space in the target was closed without any answer. */
	refused_text("GET /fhir/Patient/nul1 x HTTP/1.1\r\nHost: x\r\n\r\n", 400, "space");
	refused_text("GET /fhir/Patient/nul1#frag HTTP/1.1\r\nHost: x\r\n\r\n", 400, "'#'");
	refused_text("GET http://x/fhir/Patient/nul1 HTTP/1.1\r\nHost: x\r\n\r\n", 400, "starting with '/'");
	/* Ordinary escapes still decode: a space, '+', '|' and ':' in values. */
	get_status("GET", "/fhir/Patient?family=Vic", 200);
	get_status("GET", "/fhir/Patient?family:exact=V%69c&_count=5", 200);
	get_status("GET", "/fhir/Patient?name=Vic+x&identifier=urn:x|1", 200);
	get_status("GET", "/fhir/Patient/nu%6C1", 200);
	get_status("GET", "/fhir/Patient?family=Vic&&", 200);
	/* The same decoding for a form-encoded _search body and for the
	 * criteria of a conditional create. */
	const char *form[] = {"Content-Type: application/x-www-form-urlencoded", NULL};
	assert_int_equal(http_do(&shared_gw, "POST", "/fhir/Patient/_search", form, "family=Vic%00tim", 16, &r), 0);
	assert_int_equal(r.status, 400);
	assert_non_null(strstr(r.body, "encoded NUL"));
	resp_free(&r);
	assert_int_equal(http_do(&shared_gw, "POST", "/fhir/Patient/_search", form, "family=V%69c", 12, &r), 0);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "\"total\":1"));
	resp_free(&r);
	const char *ine[] = {"Content-Type: application/fhir+json", "If-None-Exist: family=Vic%00tim", NULL};
	assert_int_equal(http_do(&shared_gw, "POST", "/fhir/Patient", ine, pat, strlen(pat), &r), 0);
	assert_int_equal(r.status, 400);
	resp_free(&r);
	assert_int_equal(http_do(&shared_gw, "GET", "/fhir/Patient?family=V%69c", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "\"total\":1"));
	resp_free(&r);
}

/* About 500 parameters in a 5 KB URL got no answer at all: the library ran
 * out of connection memory recording them and the connection hung until the
 * header deadline. */
static void too_many_query_parameters_get_414(void **state)
{
	(void)state;
	static const size_t counts[] = {201, 500, 1200, 4000};
	for (size_t k = 0; k < sizeof counts / sizeof *counts; k++) {
		size_t cap = 64 + counts[k] * 8 + 128;
		char *req = malloc(cap);
		assert_non_null(req);
		size_t n = (size_t)snprintf(req, cap, "GET /fhir/Patient?");
		for (size_t i = 0; i < counts[k]; i++)
			n += (size_t)snprintf(req + n, cap - n, "%sp%zu=v", i ? "&" : "", i % 1000);
		n += (size_t)snprintf(req + n, cap - n, " HTTP/1.1\r\nHost: x\r\n\r\n");
		struct exchange *x = malloc(sizeof *x);
		assert_non_null(x);
		exchange(&shared_gw, req, n, x);
		assert_refused(x, 414, "more than 200 query parameters");
		free(x);
		free(req);
	}
	/* 200 empty pieces between '&'s do not count as parameters. */
	get_status("GET", "/fhir/Patient?_count=1&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&", 200);
}

/* libmicrohttpd 0.9.75 refuses a Content-Length that is not a plain number
 * itself, before the gateway sees the request, and writes its header block
 * twice (a library defect). This pins what happens so a change is noticed:
 * a 400, the connection closed, nothing behind the request answered. */
static void malformed_content_length_answered_by_the_library(void **state)
{
	(void)state;
	static const char *const values[] = {"+5", "abc", "0, 0", "5 5", "-1"};
	for (size_t i = 0; i < sizeof values / sizeof *values; i++) {
		char req[512];
		snprintf(req, sizeof req, "POST /fhir/Patient HTTP/1.1\r\nHost: x\r\nContent-Length: %s\r\n\r\n" SMUGGLED,
			 values[i]);
		struct exchange x;
		exchange(&shared_gw, req, strlen(req), &x);
		assert_int_equal(strncmp(x.buf, "HTTP/1.1 400 ", 13), 0);
		assert_true(x.ms < 2500);
		assert_null(strstr(x.buf, "smuggled"));
		assert_null(strstr(x.buf, "HTTP/1.1 200"));
		assert_int_equal(status_lines(x.buf), 2);
	}
}

/* Links come from the configured base URL, never from Host. */
static void forged_host_does_not_reach_links(void **state)
{
	(void)state;
	struct gw gw;
	assert_int_equal(gw_start(&gw, "\"public_base_url\":\"https://fhir.example.org/r4\""), 0);
	const char *h[] = {"Host: evil.example", "Content-Type: application/fhir+json", NULL};
	const char *pat = "{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"Host\"}]}";
	struct resp r;
	assert_int_equal(http_do(&gw, "POST", "/fhir/Patient", h, pat, strlen(pat), &r), 0);
	assert_int_equal(r.status, 201);
	char loc[512];
	assert_non_null(resp_header(&r, "Location", loc, sizeof loc));
	assert_int_equal(strncmp(loc, "https://fhir.example.org/r4/Patient/", 36), 0);
	resp_free(&r);
	assert_int_equal(http_do(&gw, "GET", "/fhir/Patient?family=Host", h, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	assert_null(strstr(r.body, "evil.example"));
	assert_non_null(strstr(r.body, "\"fullUrl\":\"https://fhir.example.org/r4/Patient/"));
	assert_non_null(strstr(r.body, "\"url\":\"https://fhir.example.org/r4/Patient?"));
	resp_free(&r);
	assert_int_equal(gw_stop(&gw, 10000), 0);

	/* Without the setting: the listen address, whatever Host says. */
	assert_int_equal(http_do(&shared_gw, "POST", "/fhir/Patient", h, pat, strlen(pat), &r), 0);
	assert_int_equal(r.status, 201);
	assert_non_null(resp_header(&r, "Location", loc, sizeof loc));
	char want[64];
	snprintf(want, sizeof want, "http://127.0.0.1:%u/fhir/Patient/", shared_gw.port);
	if (strncmp(loc, want, strlen(want)) != 0)
		fail_msg("Location %s does not start with %s", loc, want);
	resp_free(&r);

	char out[2048];
	assert_int_equal(gw_run_expect_exit("\"public_base_url\":\"ftp://x/fhir\"", NULL, 5000, out, sizeof out), 2);
	assert_non_null(strstr(out, "public_base_url"));
	assert_int_equal(gw_run_expect_exit("\"public_base_url\":\"https://x/fhir?a=b\"", NULL, 5000, out, sizeof out), 2);
	assert_int_equal(gw_run_expect_exit("\"public_base_url\":\"https://x/fhir/\"", NULL, 5000, out, sizeof out), 2);
}

/* The README promises exit code 1 when the port is taken: a second gateway
 * must not start and share the port (SO_REUSEPORT). */
static void second_gateway_on_a_taken_port_exits_1(void **state)
{
	(void)state;
	char extra[64], out[2048];
	snprintf(extra, sizeof extra, "\"listen\":\"127.0.0.1:%u\"", shared_gw.port);
	assert_int_equal(gw_run_expect_exit(extra, NULL, 5000, out, sizeof out), 1);
	assert_non_null(strstr(out, "cannot listen"));
	get_status("GET", "/healthz", 200);
}

int main(void)
{
	const struct CMUnitTest shared[] = {
		cmocka_unit_test(header_name_not_a_token_refused),
		cmocka_unit_test(bare_cr_in_header_line_refused),
		cmocka_unit_test(nul_in_header_value_refused),
		cmocka_unit_test(folded_header_refused),
		cmocka_unit_test(host_header_rules),
		cmocka_unit_test(transfer_codings_other_than_chunked),
		cmocka_unit_test(target_nul_slash_and_dots_refused),
		cmocka_unit_test(too_many_query_parameters_get_414),
		cmocka_unit_test(malformed_content_length_answered_by_the_library),
		cmocka_unit_test(forged_host_does_not_reach_links),
		cmocka_unit_test(second_gateway_on_a_taken_port_exits_1),
	};
	return cmocka_run_group_tests_name("http-framing", shared, start_shared, stop_shared);
}
