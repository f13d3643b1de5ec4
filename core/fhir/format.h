/* format — FHIR content negotiation: which serialisation a request asks for
 * (the `_format` parameter, else `Accept`) and which one its body is in
 * (`Content-Type`), per FHIR R4 http.html#mime-type.
 *
 * Pure functions over strings: no allocation, thread-safe. */
#ifndef CW_FORMAT_H
#define CW_FORMAT_H

#include <stdbool.h>
#include <stddef.h>

enum format { FORMAT_NONE, FORMAT_JSON, FORMAT_XML };

/* The media type Crosswalk sends for a format (with charset). */
const char *format_media_type(enum format f);

/* A `_format` value: json, xml, application/fhir+json, application/json,
 * text/json, application/fhir+xml, application/xml, text/xml (parameters such
 * as fhirVersion ignored). FORMAT_NONE when unknown. */
enum format format_from_param(const char *value);

/* Chooses the response format from _format (may be NULL) and Accept (may be
 * NULL). JSON when neither says anything or Accept allows anything. Returns
 * FORMAT_NONE when the client asked only for formats Crosswalk cannot
 * produce: answer 406. */
enum format format_negotiate(const char *format_param, const char *accept);

/* The format of a request body from its Content-Type. With no Content-Type,
 * the first non-blank byte decides ('{' JSON, '<' XML). FORMAT_NONE for any
 * other media type or a charset other than UTF-8: answer 415. */
enum format format_of_body(const char *content_type, const char *body, size_t len);

#endif
