/* Checks of validation against a profile (fhir/profile.h) that the profile
 * unit tests share: parse a resource, expect it clean, expect an issue.
 * Header-only; include it after cmocka.h. Each check validates against the
 * sealed profile set ps it is given and fails the running test (printing
 * every issue) when the outcome is not the one expected. */
#ifndef CW_TESTS_UNIT_PROFILE_CHECK_H
#define CW_TESTS_UNIT_PROFILE_CHECK_H

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "base/fjson.h"
#include "fhir/outcome.h"
#include "fhir/profile.h"

/* text parsed as JSON (the caller deletes it); fails the test when it is not JSON. */
static inline cJSON *pc_json(const char *text)
{
	cJSON *j = fjson_parse(text, strlen(text), NULL, NULL);
	if (!j)
		fail_msg("not JSON: %s", text);
	return j;
}

/* Prints every issue of oo to stderr, one a line. */
static inline void pc_dump(const struct outcome *oo)
{
	for (size_t i = 0; i < oo->n; i++)
		fprintf(stderr, "  %s %s %s\n", outcome_severity_name(oo->issues[i].severity),
			oo->issues[i].message_id ? oo->issues[i].message_id : "-", oo->issues[i].diagnostics);
}

/* r validated against url in ps has no error. */
static inline void pc_expect_clean_json(struct profile_set *ps, const cJSON *r, const char *url)
{
	struct outcome oo = OUTCOME_INIT;
	size_t n = profile_validate(ps, r, url, &oo, NULL);
	if (n)
		pc_dump(&oo);
	assert_int_equal(n, 0);
	outcome_release(&oo);
}

/* r validated against url in ps breaks the rule msgid at the expression expr
 * (NULL: anywhere), at severity sev. */
static inline void pc_expect_issue_json(struct profile_set *ps, const cJSON *r, const char *url, const char *msgid,
					const char *expr, enum outcome_severity sev)
{
	struct outcome oo = OUTCOME_INIT;
	profile_validate(ps, r, url, &oo, NULL);
	bool found = false;
	for (size_t i = 0; !found && i < oo.n; i++) {
		const struct outcome_issue *x = &oo.issues[i];
		found = x->message_id && !strcmp(x->message_id, msgid) && x->severity == sev &&
			(!expr || (x->expression && !strcmp(x->expression, expr)));
	}
	if (!found) {
		fprintf(stderr, "wanted %s at %s, got:\n", msgid, expr ? expr : "(any)");
		pc_dump(&oo);
		fail();
	}
	outcome_release(&oo);
}

/* The same two checks for a resource given as JSON text. */
static inline void pc_expect_clean(struct profile_set *ps, const char *text, const char *url)
{
	cJSON *r = pc_json(text);
	pc_expect_clean_json(ps, r, url);
	cJSON_Delete(r);
}

static inline void pc_expect_issue(struct profile_set *ps, const char *text, const char *url, const char *msgid,
				   const char *expr, enum outcome_severity sev)
{
	cJSON *r = pc_json(text);
	pc_expect_issue_json(ps, r, url, msgid, expr, sev);
	cJSON_Delete(r);
}

#endif
