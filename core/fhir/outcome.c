#include "fhir/outcome.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const severity_names[] = {"fatal", "error", "warning", "information"};

const char *outcome_severity_name(enum outcome_severity s)
{
	return (unsigned)s < 4 ? severity_names[s] : "error";
}

void outcome_add(struct outcome *oo, enum outcome_severity severity, const char *code,
		 const char *expression, const char *fmt, ...)
{
	if (oo->n == oo->cap) {
		size_t ncap = oo->cap ? oo->cap * 2 : 4;
		struct outcome_issue *ni = realloc(oo->issues, ncap * sizeof *ni);
		if (!ni) {
			oo->oom = true;
			return;
		}
		oo->issues = ni;
		oo->cap = ncap;
	}
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	struct outcome_issue *is = &oo->issues[oo->n];
	is->severity = severity;
	is->code = code ? code : "processing";
	is->diagnostics = strdup(buf);
	is->expression = expression ? strdup(expression) : NULL;
	is->message_id = NULL;
	if (!is->diagnostics || (expression && !is->expression)) {
		free(is->diagnostics);
		free(is->expression);
		oo->oom = true;
		return;
	}
	oo->n++;
}

void outcome_add_id(struct outcome *oo, enum outcome_severity severity, const char *code, const char *message_id,
		    const char *expression, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	size_t n = oo->n;
	outcome_add(oo, severity, code, expression, "%s", buf);
	if (oo->n > n)
		oo->issues[n].message_id = message_id;
}

size_t outcome_errors(const struct outcome *oo)
{
	size_t n = 0;
	for (size_t i = 0; i < oo->n; i++)
		if (oo->issues[i].severity <= OUTCOME_ERROR)
			n++;
	return n + (oo->oom ? 1 : 0);
}

static bool add_issue(cJSON *arr, enum outcome_severity sev, const char *code, const char *diag,
		      const char *expr, const char *msgid)
{
	cJSON *is = cJSON_CreateObject();
	if (!is)
		return false;
	cJSON_AddItemToArray(arr, is);
	if (!cJSON_AddStringToObject(is, "severity", outcome_severity_name(sev)) ||
	    !cJSON_AddStringToObject(is, "code", code))
		return false;
	if (msgid) {
		cJSON *det = cJSON_AddObjectToObject(is, "details");
		cJSON *codings = det ? cJSON_AddArrayToObject(det, "coding") : NULL;
		cJSON *c = cJSON_CreateObject();
		if (!codings || !c) {
			cJSON_Delete(c);
			return false;
		}
		cJSON_AddItemToArray(codings, c);
		if (!cJSON_AddStringToObject(c, "system", OUTCOME_MESSAGE_SYSTEM) ||
		    !cJSON_AddStringToObject(c, "code", msgid))
			return false;
	}
	if (diag && *diag && !cJSON_AddStringToObject(is, "diagnostics", diag))
		return false;
	if (expr && *expr) {
		cJSON *ex = cJSON_AddArrayToObject(is, "expression");
		cJSON *s = cJSON_CreateString(expr);
		if (!ex || !s) {
			cJSON_Delete(s);
			return false;
		}
		cJSON_AddItemToArray(ex, s);
	}
	return true;
}

cJSON *outcome_to_json(const struct outcome *oo)
{
	cJSON *root = cJSON_CreateObject();
	if (!root)
		return NULL;
	cJSON *arr = NULL;
	bool ok = cJSON_AddStringToObject(root, "resourceType", "OperationOutcome") &&
		  (arr = cJSON_AddArrayToObject(root, "issue")) != NULL;
	for (size_t i = 0; ok && i < oo->n; i++) {
		const struct outcome_issue *is = &oo->issues[i];
		ok = add_issue(arr, is->severity, is->code, is->diagnostics, is->expression, is->message_id);
	}
	if (ok && oo->oom)
		ok = add_issue(arr, OUTCOME_FATAL, "exception", "out of memory while reporting issues", NULL, NULL);
	if (ok && oo->n == 0 && !oo->oom)
		ok = add_issue(arr, OUTCOME_INFORMATION, "informational", "All OK", NULL, NULL);
	if (!ok) {
		cJSON_Delete(root);
		return NULL;
	}
	return root;
}

cJSON *outcome_single(enum outcome_severity severity, const char *code, const char *diagnostics,
		      const char *expression)
{
	struct outcome oo = OUTCOME_INIT;
	outcome_add(&oo, severity, code, expression, "%s", diagnostics ? diagnostics : "");
	cJSON *r = outcome_to_json(&oo);
	outcome_release(&oo);
	return r;
}

void outcome_release(struct outcome *oo)
{
	for (size_t i = 0; i < oo->n; i++) {
		free(oo->issues[i].diagnostics);
		free(oo->issues[i].expression);
	}
	free(oo->issues);
	memset(oo, 0, sizeof *oo);
}
