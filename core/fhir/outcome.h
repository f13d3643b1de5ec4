/* outcome — collecting issues and rendering a FHIR R4 OperationOutcome.
 *
 * Every error Crosswalk returns is an OperationOutcome. Code paths collect
 * issues in a struct outcome (severity, IssueType code, diagnostics text and an
 * optional FHIRPath location), then render it with outcome_to_json().
 *
 * Ownership: a struct outcome owns copies of every string added. Threads: a
 * struct outcome is used by one thread at a time; the functions keep no global
 * state. Errors: allocation failure is recorded (outcome.oom) and rendering
 * then yields a fixed "out of memory" issue rather than failing. */
#ifndef CW_OUTCOME_H
#define CW_OUTCOME_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

enum outcome_severity { OUTCOME_FATAL, OUTCOME_ERROR, OUTCOME_WARNING, OUTCOME_INFORMATION };

struct outcome_issue {
	enum outcome_severity severity;
	const char *code;       /* static IssueType code, e.g. "invalid", "not-found" */
	char *diagnostics;      /* owned */
	char *expression;       /* owned, may be NULL: FHIRPath-style location */
	const char *message_id; /* static stable message id (outcome_add_id), or NULL */
};

struct outcome {
	struct outcome_issue *issues;
	size_t n, cap;
	bool oom;
};

#define OUTCOME_INIT {0}

/* Adds one issue; fmt is printf-style diagnostics. expression may be NULL. */
void outcome_add(struct outcome *oo, enum outcome_severity severity, const char *code,
		 const char *expression, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* outcome_add with a stable message id (a static string, e.g.
 * "profile-cardinality-min"), rendered as the issue's details.coding in the
 * system OUTCOME_MESSAGE_SYSTEM. */
#define OUTCOME_MESSAGE_SYSTEM "https://crosswalk.example.org/fhir/CodeSystem/validation-message"
void outcome_add_id(struct outcome *oo, enum outcome_severity severity, const char *code, const char *message_id,
		    const char *expression, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Number of issues at error or fatal severity. */
size_t outcome_errors(const struct outcome *oo);

/* Renders a new OperationOutcome tree (caller frees with cJSON_Delete).
 * With no issues, renders one "information"/"informational" issue saying all
 * is well, as FHIR requires at least one issue. Returns NULL only if even the
 * fallback cannot be allocated. */
cJSON *outcome_to_json(const struct outcome *oo);

/* One-issue convenience: renders directly. */
cJSON *outcome_single(enum outcome_severity severity, const char *code, const char *diagnostics,
		      const char *expression);

/* Frees all issues; the struct can be reused afterwards. */
void outcome_release(struct outcome *oo);

const char *outcome_severity_name(enum outcome_severity s);

#endif
