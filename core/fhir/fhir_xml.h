/* fhir_xml — FHIR R4 XML ⇄ JSON, driven by the model (core/fhir/model.h).
 *
 * The only file that includes libxml2. Reading is hardened for hostile input:
 * any DOCTYPE is refused before a single entity is declared (FHIR: "there SHALL
 * be no DTD"), no entity substitution, no DTD loading, no network, no XInclude,
 * a failing external-entity loader, lim->max_depth, and only UTF-8 (a BOM for
 * UTF-16/32 or another declared encoding is refused).
 *
 * Size: the document is fed to libxml2's push parser in chunks, with the
 * library's own size caps lifted (XML_PARSE_HUGE; its depth cap is then
 * 2048), so the only limits are the caller's (lim: depth, members,
 * repetitions, memory; the HTTP body limit before that) with this module's
 * messages. Syntax errors are described in this module's words with the line
 * and column, never with the library's text.
 *
 * Conversion rules (R4 xml.html and json.html): namespace http://hl7.org/fhir;
 * elements in model order; primitives as value attributes, their id and
 * extensions in "_name" siblings (arrays aligned with null); choice elements
 * named name+Type; Element.id and Extension.url as attributes; resources inside
 * contained, Bundle.entry.resource, Parameters.parameter.resource and other
 * Resource-typed elements; the narrative div carried verbatim in the XHTML
 * namespace; numbers keep their exact literal (core/base/fjson.h).
 *
 * Loading: libxml2 is not linked but loaded on first use (dlopen of its
 * SONAME, CW_LIBXML2_SONAME from the build), so a program that never reads
 * XML does not load it nor what it brings (ICU, libstdc++). Writing XML needs
 * it only for a narrative (its div is parsed to check it). When it cannot be
 * loaded, reading XML fails with status 500 ("exception") and a narrative
 * cannot be written.
 *
 * Threads: all functions are reentrant; fhir_xml_init (called by the others on
 * first use) loads libxml2 and sets its process-wide state once.
 * Errors: every function reports problems as OperationOutcome issues in oo
 * with a FHIRPath-style location (or line:column for XML syntax), and returns
 * NULL. *status (may be NULL) receives the HTTP status to answer: 400 for
 * malformed or non-conformant input, 413 when the memory budget is exceeded,
 * 500 on out of memory. */
#ifndef CW_FHIR_XML_H
#define CW_FHIR_XML_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "base/fjson.h"
#include "fhir/outcome.h"

#define FHIR_XML_NS "http://hl7.org/fhir"
#define FHIR_XHTML_NS "http://www.w3.org/1999/xhtml"

/* Loads libxml2 and sets it up, once per process; true when it is usable. */
bool fhir_xml_init(void);

/* Parses FHIR XML (len bytes) into a new JSON resource tree (caller frees with
 * cJSON_Delete). lim bounds depth, members per object, items per array and the
 * memory the tree may take (NULL: the defaults). */
cJSON *fhir_xml_to_json(const char *buf, size_t len, const struct fjson_limits *lim, struct outcome *oo,
			int *status);

/* The same conversion straight to FHIR JSON text (compact), with no tree:
 * for converting. Stricter in one way: an element's repetitions must be
 * together, as FHIR XML requires (the tree reader merges them). Returns
 * malloc'd text (caller frees) and *out_len, or NULL as above; the memory
 * budget bounds the output. */
char *fhir_xml_to_json_text(const char *buf, size_t len, const struct fjson_limits *lim, size_t *out_len,
			    struct outcome *oo, int *status);

/* Writes a JSON resource tree as FHIR XML; returns malloc'd text (caller
 * frees), *out_len its length. pretty indents by two spaces per level (the
 * narrative div is written verbatim either way). */
char *fhir_json_to_xml(const cJSON *resource, bool pretty, size_t *out_len, struct outcome *oo, int *status);

/* True when s is a well-formed XML document whose root is <div> in the
 * XHTML namespace (the FHIR narrative), parsed with the same hardening. A
 * div in plain XHTML is recognised without loading libxml2 (fhir_xml_div.c;
 * see fhir_xml_int.h); the answer is libxml2's either way. */
bool fhir_xml_valid_div(const char *s, size_t len);

/* The R4 narrative rules on top: txt-1, only basic XHTML (an allow-list of
 * elements and attributes; no script, style, form, frame, object, event
 * attribute, or URL other than http, https, mailto, tel, urn, ftp, relative,
 * or data:image/ in <img>; inline style that loads or runs nothing) and
 * txt-2, some non-whitespace content. True when s passes; else false with
 * the rule broken, in why (wl bytes). Reentrant. */
bool fhir_xml_check_div(const char *s, size_t len, char *why, size_t wl);

/* A canonical serialisation of any well-formed XML (same hardening as
 * above) for comparing documents by infoset: namespace-qualified names,
 * attributes sorted, namespace declarations dropped, whitespace-only text
 * dropped except inside XHTML. NULL if not well-formed. Caller frees. */
char *fhir_xml_canonical(const char *buf, size_t len, size_t *out_len);

/* A local file read through libxml2's I/O layer, which gunzips a gzip file
 * transparently (libxml2 is built with zlib): how a FHIR package.tgz is read
 * without an archive library. path must name an existing regular file (no
 * URL: "scheme://" is refused, so nothing is fetched). NULL with a reason in
 * why when it cannot be opened. fhir_xml_file_read returns the bytes read
 * into buf (at most n), 0 at the end, -1 on an error (a corrupt gzip
 * stream). One handle belongs to one thread at a time; close it once. */
struct fhir_xml_file;
struct fhir_xml_file *fhir_xml_file_open(const char *path, char *why, size_t wl);
long fhir_xml_file_read(void *file, void *buf, size_t n);
void fhir_xml_file_close(struct fhir_xml_file *f);

#endif
