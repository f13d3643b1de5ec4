/* fhir_xml_int — what fhir_xml.c (libxml2: reading FHIR XML, the narrative
 * check, the canonical form) shares with fhir_xml_write.c (JSON → XML, with
 * no libxml2). Not a public interface. */
#ifndef CW_FHIR_XML_INT_H
#define CW_FHIR_XML_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "base/strbuf.h"
#include "fhir/fhir_xml.h"

/* The FHIRPath-style location of what is being read or written, for the
 * issues reported ("Patient.name[0].given"); a location past the buffer is
 * left off (truncated). */
struct fhir_xml_path {
	char buf[512];
	size_t len;
	bool truncated;
};

/* Adds ".seg" (or "seg" first), with "[index]" when index >= 0; returns the
 * mark fhir_xml_path_pop goes back to. */
size_t fhir_xml_path_push(struct fhir_xml_path *p, const char *seg, long index);
void fhir_xml_path_pop(struct fhir_xml_path *p, size_t mark);
/* Adds "[index]" to the segment fhir_xml_path_push added at mark: the same
 * path as popping it and pushing it again with the index, without copying. */
void fhir_xml_path_index(struct fhir_xml_path *p, size_t mark, long index);

/* The location being read or written, kept as the segments
 * fhir_xml_path_push would be given and spelt out only for an issue
 * (fhir_xml_loc_spell): one segment per level, names borrowed (they must
 * outlive the segment: libxml2's dictionary, the tree's keys); a level past
 * FHIR_XML_LOC_SEGS is left off (the readers and the writer refuse nesting
 * that deep anyway). */
#define FHIR_XML_LOC_SEGS 1040
struct fhir_xml_loc {
	struct {
		const char *name;
		long index;
	} seg[FHIR_XML_LOC_SEGS];
	size_t n;
};

/* Adds a segment; returns the mark fhir_xml_loc_pop goes back to. */
static inline size_t fhir_xml_loc_push(struct fhir_xml_loc *l, const char *name, long index)
{
	size_t mark = l->n;
	if (mark < FHIR_XML_LOC_SEGS) {
		l->seg[mark].name = name;
		l->seg[mark].index = index;
		l->n = mark + 1;
	}
	return mark;
}
static inline void fhir_xml_loc_pop(struct fhir_xml_loc *l, size_t mark) { l->n = mark; }
/* Sets the index of the segment pushed at mark (none: nothing). */
static inline void fhir_xml_loc_index(struct fhir_xml_loc *l, size_t mark, long index)
{
	if (mark < l->n)
		l->seg[mark].index = index;
}
/* Spells the location out into p as fhir_xml_path_push would have built it
 * segment by segment; returns its text, or NULL when empty. */
const char *fhir_xml_loc_spell(const struct fhir_xml_loc *l, struct fhir_xml_path *p);

/* Appends s escaped for XML text (attr: for an attribute value). Returns
 * false when s holds what XML 1.0 cannot carry: a C0 control other than
 * tab, LF, CR, or U+FFFE/U+FFFF (what was appended is then to be dropped). */
bool fhir_xml_esc(struct strbuf *b, const char *s, bool attr);

/* The narrative check (fhir_xml_valid_div) in two parts. fhir_xml_div_plain
 * (fhir_xml_div.c, no libxml2) is true only for a div written in a plain
 * subset of XML that is certainly a well-formed <div> in the XHTML
 * namespace; false means "not plain", not "not well-formed".
 * fhir_xml_div_parsed_ok (fhir_xml.c) gives the answer for any text by
 * parsing it with libxml2 (loaded on first use), with the hardening of every
 * XML read. fhir_xml_valid_div asks the first, then the second: its answer
 * is always the second's. Both take text and length (no terminator needed);
 * any thread. */
bool fhir_xml_div_plain(const char *text, size_t len);
bool fhir_xml_div_parsed_ok(const char *text, size_t len);

#endif
