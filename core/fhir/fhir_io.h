/* fhir_io — reading and writing FHIR resources in either official format.
 *
 * The one place that turns bytes in a negotiated format (core/fhir/format.h) into a
 * cJSON resource tree and back: JSON through the strict reader (core/base/fjson.h),
 * XML through core/fhir/fhir_xml.h. Every FHIR endpoint and the CLI use it.
 *
 * Ownership: returned trees and buffers belong to the caller (cJSON_Delete,
 * free). Threads: reentrant. Errors: issues are added to oo with a location,
 * *status receives the HTTP status (400 malformed, 413 over budget, 500 out of
 * memory) and NULL is returned. */
#ifndef CW_FHIR_IO_H
#define CW_FHIR_IO_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "base/fjson.h"
#include "fhir/format.h"
#include "fhir/outcome.h"

/* Reads one resource: a JSON object with a resourceType naming an R4
 * resource, or a FHIR XML document. */
cJSON *fhir_io_read(enum format f, const char *buf, size_t len, const struct fjson_limits *lim,
		    struct outcome *oo, int *status);

/* Writes a resource tree. JSON output keeps decimal literals; XML output is
 * built from the model and fails (400) for a tree that is not valid FHIR. */
char *fhir_io_write(enum format f, const cJSON *resource, bool pretty, size_t *out_len, struct outcome *oo,
		    int *status);

/* Converts a resource from one format to another: XML to compact JSON goes
 * straight to text (fhir_xml_to_json_text), every other pair through a tree.
 * Returns malloc'd text and *out_len, or NULL with issues and *status. */
char *fhir_io_convert(enum format from, enum format to, const char *buf, size_t len, bool pretty,
		      const struct fjson_limits *lim, size_t *out_len, struct outcome *oo, int *status);
/* The same, a JSON input's tree built in scratch (emptied by the caller
 * afterwards; NULL: an arena of its own, released before returning). The
 * result is malloc'd, never in scratch. Sets scratch's budget. */
char *fhir_io_convert_in(struct arena *scratch, enum format from, enum format to, const char *buf, size_t len,
			 bool pretty, const struct fjson_limits *lim, size_t *out_len, struct outcome *oo, int *status);

#endif
