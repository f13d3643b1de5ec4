/* Unit tests: JSON Patch (RFC 6902) with JSON Pointer (RFC 6901). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/fjson.h"
#include "base/json_patch.h"

static cJSON *J(const char *text)
{
	struct fjson_error fe;
	cJSON *j = fjson_parse(text, strlen(text), NULL, &fe);
	if (!j)
		fail_msg("bad test JSON %s: %s", text, fe.message);
	return j;
}

/* Applies patch to doc and compares the result (compact, as printed) with
 * want; for a failure, checks the status and that doc is unchanged. */
static void check(const char *doc, const char *patch, enum json_patch_status want_st, const char *want)
{
	cJSON *d = J(doc), *p = J(patch);
	char msg[256];
	enum json_patch_status st = json_patch_apply(d, p, msg, sizeof msg);
	char *got = fjson_print(d, false, NULL);
	if (st != want_st)
		fail_msg("%s on %s: status %d, want %d (%s)", patch, doc, st, want_st, msg);
	const char *expect = want_st == JSON_PATCH_OK ? want : doc;
	if (strcmp(got, expect) != 0)
		fail_msg("%s on %s: got %s, want %s", patch, doc, got, expect);
	if (st != JSON_PATCH_OK && !strstr(msg, "operation "))
		fail_msg("no operation named in '%s'", msg);
	free(got);
	cJSON_Delete(d);
	cJSON_Delete(p);
}

static void add_remove_replace(void **state)
{
	(void)state;
	check("{\"a\":1}", "[{\"op\":\"add\",\"path\":\"/b\",\"value\":[1,2]}]", JSON_PATCH_OK, "{\"a\":1,\"b\":[1,2]}");
	check("{\"a\":1}", "[{\"op\":\"add\",\"path\":\"/a\",\"value\":2}]", JSON_PATCH_OK, "{\"a\":2}");
	check("{\"a\":[1,3]}", "[{\"op\":\"add\",\"path\":\"/a/1\",\"value\":2}]", JSON_PATCH_OK, "{\"a\":[1,2,3]}");
	check("{\"a\":[1]}", "[{\"op\":\"add\",\"path\":\"/a/-\",\"value\":{\"x\":null}}]", JSON_PATCH_OK,
	      "{\"a\":[1,{\"x\":null}]}");
	check("{\"a\":[1]}", "[{\"op\":\"add\",\"path\":\"/a/1\",\"value\":2}]", JSON_PATCH_OK, "{\"a\":[1,2]}");
	check("{\"a\":[1]}", "[{\"op\":\"add\",\"path\":\"/a/2\",\"value\":2}]", JSON_PATCH_FAILED, NULL);
	check("{\"a\":[1]}", "[{\"op\":\"add\",\"path\":\"/a/01\",\"value\":2}]", JSON_PATCH_FAILED, NULL);
	check("{\"a\":1}", "[{\"op\":\"add\",\"path\":\"/x/y\",\"value\":2}]", JSON_PATCH_FAILED, NULL);
	check("{\"a\":1}", "[{\"op\":\"add\",\"path\":\"/a/y\",\"value\":2}]", JSON_PATCH_FAILED, NULL);
	check("{\"a\":1,\"b\":2}", "[{\"op\":\"remove\",\"path\":\"/a\"}]", JSON_PATCH_OK, "{\"b\":2}");
	check("{\"a\":[1,2,3]}", "[{\"op\":\"remove\",\"path\":\"/a/0\"}]", JSON_PATCH_OK, "{\"a\":[2,3]}");
	check("{\"a\":1}", "[{\"op\":\"remove\",\"path\":\"/b\"}]", JSON_PATCH_FAILED, NULL);
	check("{\"a\":1}", "[{\"op\":\"remove\",\"path\":\"\"}]", JSON_PATCH_FAILED, NULL);
	/* replace keeps the member where it was */
	check("{\"a\":1,\"b\":2}", "[{\"op\":\"replace\",\"path\":\"/a\",\"value\":\"x\"}]", JSON_PATCH_OK,
	      "{\"a\":\"x\",\"b\":2}");
	check("{\"a\":[1,2]}", "[{\"op\":\"replace\",\"path\":\"/a/1\",\"value\":9}]", JSON_PATCH_OK, "{\"a\":[1,9]}");
	check("{\"a\":1}", "[{\"op\":\"replace\",\"path\":\"/b\",\"value\":2}]", JSON_PATCH_FAILED, NULL);
	check("{\"a\":1}", "[{\"op\":\"replace\",\"path\":\"\",\"value\":{\"z\":0}}]", JSON_PATCH_OK, "{\"z\":0}");
	check("{\"a\":1}", "[{\"op\":\"replace\",\"path\":\"\",\"value\":[1]}]", JSON_PATCH_FAILED, NULL);
	/* decimal literals survive */
	check("{\"a\":1}", "[{\"op\":\"add\",\"path\":\"/d\",\"value\":1.50}]", JSON_PATCH_OK, "{\"a\":1,\"d\":1.50}");
}

static void move_copy_test(void **state)
{
	(void)state;
	check("{\"a\":{\"b\":1},\"c\":[]}", "[{\"op\":\"move\",\"from\":\"/a/b\",\"path\":\"/c/0\"}]", JSON_PATCH_OK,
	      "{\"a\":{},\"c\":[1]}");
	check("{\"a\":[1,2,3]}", "[{\"op\":\"move\",\"from\":\"/a/0\",\"path\":\"/a/2\"}]", JSON_PATCH_OK,
	      "{\"a\":[2,3,1]}");
	check("{\"a\":{\"b\":1}}", "[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"/a/b/c\"}]", JSON_PATCH_MALFORMED, NULL);
	check("{\"a\":1}", "[{\"op\":\"move\",\"from\":\"/x\",\"path\":\"/y\"}]", JSON_PATCH_FAILED, NULL);
	check("{\"a\":{\"b\":[1]}}", "[{\"op\":\"copy\",\"from\":\"/a/b\",\"path\":\"/c\"}]", JSON_PATCH_OK,
	      "{\"a\":{\"b\":[1]},\"c\":[1]}");
	check("{\"n\":1,\"o\":{\"x\":1,\"y\":[true,null]}}",
	      "[{\"op\":\"test\",\"path\":\"/n\",\"value\":1.0},"
	      "{\"op\":\"test\",\"path\":\"/o\",\"value\":{\"y\":[true,null],\"x\":1}}]",
	      JSON_PATCH_OK, "{\"n\":1,\"o\":{\"x\":1,\"y\":[true,null]}}");
	check("{\"n\":1}", "[{\"op\":\"test\",\"path\":\"/n\",\"value\":\"1\"}]", JSON_PATCH_FAILED, NULL);
	check("{\"o\":{\"x\":1}}", "[{\"op\":\"test\",\"path\":\"/o\",\"value\":{\"x\":1,\"y\":2}}]", JSON_PATCH_FAILED,
	      NULL);
	check("{\"a\":[1,2]}", "[{\"op\":\"test\",\"path\":\"/a\",\"value\":[1]}]", JSON_PATCH_FAILED, NULL);
	/* all or nothing: a later failure undoes the earlier operations */
	check("{\"a\":1}",
	      "[{\"op\":\"add\",\"path\":\"/b\",\"value\":2},{\"op\":\"test\",\"path\":\"/a\",\"value\":5}]",
	      JSON_PATCH_FAILED, NULL);
}

static void pointers_and_malformed_patches(void **state)
{
	(void)state;
	check("{\"a/b\":1,\"m~n\":2}",
	      "[{\"op\":\"replace\",\"path\":\"/a~1b\",\"value\":3},{\"op\":\"remove\",\"path\":\"/m~0n\"}]",
	      JSON_PATCH_OK, "{\"a/b\":3}");
	check("{\"\":1}", "[{\"op\":\"replace\",\"path\":\"/\",\"value\":2}]", JSON_PATCH_OK, "{\"\":2}");
	check("{\"a\":1}", "[{\"op\":\"remove\",\"path\":\"/a~2\"}]", JSON_PATCH_MALFORMED, NULL);
	check("{\"a\":1}", "[{\"op\":\"remove\",\"path\":\"a\"}]", JSON_PATCH_MALFORMED, NULL);
	check("{\"a\":1}", "{\"op\":\"remove\",\"path\":\"/a\"}", JSON_PATCH_MALFORMED, NULL);
	check("{\"a\":1}", "[{\"op\":\"delete\",\"path\":\"/a\"}]", JSON_PATCH_MALFORMED, NULL);
	check("{\"a\":1}", "[{\"path\":\"/a\"}]", JSON_PATCH_MALFORMED, NULL);
	check("{\"a\":1}", "[{\"op\":\"add\",\"path\":\"/b\"}]", JSON_PATCH_MALFORMED, NULL);
	check("{\"a\":1}", "[{\"op\":\"copy\",\"path\":\"/b\"}]", JSON_PATCH_MALFORMED, NULL);
	check("{\"a\":1}", "[{\"op\":\"add\",\"value\":1}]", JSON_PATCH_MALFORMED, NULL);
	check("{\"a\":1}", "[1]", JSON_PATCH_MALFORMED, NULL);
	check("{\"a\":1}", "[]", JSON_PATCH_OK, "{\"a\":1}");
	/* the message names the failing operation by index */
	cJSON *d = J("{\"a\":1}"), *p = J("[{\"op\":\"test\",\"path\":\"/a\",\"value\":1},{\"op\":\"remove\",\"path\":\"/zz\"}]");
	char msg[128];
	assert_int_equal(json_patch_apply(d, p, msg, sizeof msg), JSON_PATCH_FAILED);
	assert_non_null(strstr(msg, "operation 1"));
	cJSON_Delete(d);
	cJSON_Delete(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(add_remove_replace),
		cmocka_unit_test(move_copy_test),
		cmocka_unit_test(pointers_and_malformed_patches),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
