/* narrative — the one allow-list of the FHIR R4 narrative (txt-1): which
 * XHTML elements and attributes a narrative div may hold, and which URL and
 * inline-style values are inert. No XML here: fhir_xml.c parses the div
 * (libxml2 is its alone) and asks these predicates about each element and
 * attribute it meets; validation (validate.c, txt-1/txt-2 on every write),
 * the neutralising of upstream narrative and any page that shows stored
 * narrative all go through that one check (fhir_xml_check_div).
 *
 * Threads: pure functions over static tables; reentrant. */
#ifndef CW_NARRATIVE_H
#define CW_NARRATIVE_H

#include <stdbool.h>
#include <stddef.h>

/* Whether elem (a local name in the XHTML namespace) is basic XHTML the
 * narrative may hold: the formatting elements of HTML 4.0 chapters 7-11 and
 * 15 without forms, frames, scripts, objects or styles, plus a and img. */
bool narrative_element_ok(const char *elem);

/* Whether the attribute name (no namespace; xml:lang is the caller's to
 * allow) with value may appear on the allowed element elem. False with the
 * reason (naming the rule, txt-1) in why (wl bytes): an unknown attribute
 * (event attributes say they are active content), a URL attribute whose
 * value is not inert (narrative_url_ok), a style that loads or runs
 * something (narrative_style_ok). */
bool narrative_attr_ok(const char *elem, const char *name, const char *value, char *why, size_t wl);

/* A URL in the narrative: no control character, whitespace inside or
 * backslash, and either relative or of a scheme that cannot run code (http,
 * https, mailto, tel, urn, ftp); data:image/ (not SVG) only in img. */
bool narrative_url_ok(const char *elem, const char *url);

/* Inline style that lays out but neither loads nor runs anything. */
bool narrative_style_ok(const char *style);

#endif
