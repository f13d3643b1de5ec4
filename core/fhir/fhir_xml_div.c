/* fhir_xml_div — the narrative check's fast path, with no libxml2: a div
 * written in a plain subset of XML is recognised as well-formed here, so
 * writing XML need not load and run libxml2 for it (see fhir_xml_int.h).
 *
 * The subset: the text starts with "<div", whose only namespace declaration
 * is xmlns="http://www.w3.org/1999/xhtml" written out; element and attribute
 * names of ASCII letters, digits, '_', '-', '.' (no prefix, no other xmlns);
 * text, attribute values and comments of valid UTF-8 holding XML characters
 * (no C0 control but tab, LF, CR; no DEL or C1 control); the five predefined
 * entities and character references; at most DIV_MAX_DEPTH levels, at most
 * DIV_MAX_ATTRS attributes an element, at most DIV_MAX_LEN bytes; nothing
 * after the root but white space. Anything else (a CDATA section, a
 * processing instruction, a DOCTYPE, an XML declaration, a prefix, an
 * undeclared entity, a malformed tag...) is left to libxml2, which gives the
 * answer then: this file only ever says "well-formed", never "not". */
#include "fhir/fhir_xml_int.h"

#include <string.h>

#define DIV_MAX_DEPTH 64
#define DIV_MAX_ATTRS 32
#define DIV_MAX_NAME 64
#define DIV_MAX_LEN ((size_t)1 << 20)

static const char XHTML_NS[] = "http://www.w3.org/1999/xhtml";

struct name {
	const unsigned char *s;
	size_t n;
};

static bool is_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static bool is_name_start(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }

static bool is_name_char(unsigned char c) { return is_name_start(c) || (c >= '0' && c <= '9') || c == '-' || c == '.'; }

/* The length of the name at p (0: none, or not in the subset). */
static size_t name_len(const unsigned char *p, const unsigned char *end)
{
	if (p >= end || !is_name_start(*p))
		return 0;
	size_t n = 1;
	while (p + n < end && is_name_char(p[n]))
		if (++n > DIV_MAX_NAME)
			return 0;
	return n;
}

static bool is_xml_char(unsigned long c)
{
	return c == 0x9 || c == 0xA || c == 0xD || (c >= 0x20 && c < 0x7F) || (c >= 0xA0 && c <= 0xD7FF) ||
	       (c >= 0xE000 && c <= 0xFFFD) || (c >= 0x10000 && c <= 0x10FFFF);
}

/* The byte length of the UTF-8 character at p when it is an XML character
 * of the subset; 0 otherwise (malformed, overlong, a surrogate...). */
static size_t char_len(const unsigned char *p, const unsigned char *end)
{
	unsigned char c = *p;
	if (c < 0x80)
		return is_xml_char(c) ? 1 : 0;
	size_t n = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
	if (!n || (size_t)(end - p) < n)
		return 0;
	unsigned long v = c & (0x7F >> n);
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return 0;
		v = v << 6 | (p[i] & 0x3F);
	}
	static const unsigned long least[5] = {0, 0, 0x80, 0x800, 0x10000};
	return v >= least[n] && is_xml_char(v) ? n : 0;
}

/* The length of the reference at p ('&' ... ';') when it is one of the five
 * predefined entities or a character reference to an XML character; 0
 * otherwise. */
static size_t ref_len(const unsigned char *p, const unsigned char *end)
{
	static const char *const named[] = {"&lt;", "&gt;", "&amp;", "&quot;", "&apos;"};
	size_t left = (size_t)(end - p);
	for (size_t i = 0; i < sizeof named / sizeof *named; i++) {
		size_t n = strlen(named[i]);
		if (left >= n && !memcmp(p, named[i], n))
			return n;
	}
	if (left < 4 || p[1] != '#')
		return 0;
	bool hex = p[2] == 'x';
	size_t i = hex ? 3 : 2, digits = 0;
	unsigned long v = 0;
	for (; p + i < end && p[i] != ';'; i++, digits++) {
		unsigned char c = p[i];
		unsigned d;
		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (hex && c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (hex && c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			return 0;
		if (digits >= 7)
			return 0;
		v = v * (hex ? 16 : 10) + d;
	}
	if (p + i >= end || !digits || !is_xml_char(v))
		return 0;
	return i + 1;
}

/* Character data up to the next '<' (or the end): characters and
 * references, no "]]>"; in an attribute value (quote set) up to the quote,
 * with no '<'. Returns where it stopped, NULL when outside the subset. */
static const unsigned char *chars(const unsigned char *p, const unsigned char *end, unsigned char quote)
{
	while (p < end && *p != (quote ? quote : '<')) {
		size_t n;
		if (*p == '&')
			n = ref_len(p, end);
		else if (*p == '<')
			n = 0;
		else if (*p == ']' && end - p >= 3 && p[1] == ']' && p[2] == '>')
			n = 0;
		else
			n = char_len(p, end);
		if (!n)
			return NULL;
		p += n;
	}
	return p;
}

/* A start tag after its '<': the name, the attributes, '>' or "/>".
 * root: the div that must declare the XHTML namespace. Returns the end of
 * the tag, NULL when outside the subset; *name and *empty describe it. */
static const unsigned char *start_tag(const unsigned char *p, const unsigned char *end, bool root, struct name *name,
				      bool *empty)
{
	name->s = p;
	name->n = name_len(p, end);
	if (!name->n)
		return NULL;
	if (root && (name->n != 3 || memcmp(p, "div", 3) != 0))
		return NULL;
	p += name->n;
	struct name attrs[DIV_MAX_ATTRS];
	size_t na = 0;
	bool xhtml = false;
	for (;;) {
		const unsigned char *ws = p;
		while (p < end && is_space(*p))
			p++;
		if (p >= end)
			return NULL;
		if (*p == '>' || (*p == '/' && end - p >= 2 && p[1] == '>')) {
			*empty = *p == '/';
			return root && !xhtml ? NULL : p + (*empty ? 2 : 1);
		}
		if (p == ws || na == DIV_MAX_ATTRS)
			return NULL;
		struct name a = {p, name_len(p, end)};
		if (!a.n)
			return NULL;
		for (size_t i = 0; i < na; i++)
			if (attrs[i].n == a.n && !memcmp(attrs[i].s, a.s, a.n))
				return NULL;
		attrs[na++] = a;
		p += a.n;
		while (p < end && is_space(*p))
			p++;
		if (p >= end || *p != '=')
			return NULL;
		p++;
		while (p < end && is_space(*p))
			p++;
		if (p >= end || (*p != '"' && *p != '\''))
			return NULL;
		const unsigned char *v = p + 1, *ve = chars(v, end, *p);
		if (!ve || ve >= end)
			return NULL;
		if (a.n == 5 && !memcmp(a.s, "xmlns", 5)) {
			size_t nsl = sizeof XHTML_NS - 1;
			if (!root || (size_t)(ve - v) != nsl || memcmp(v, XHTML_NS, nsl) != 0)
				return NULL;
			xhtml = true;
		}
		p = ve + 1;
	}
}

bool fhir_xml_div_plain(const char *text, size_t len)
{
	if (len > DIV_MAX_LEN || len < 4 || memcmp(text, "<div", 4) != 0)
		return false;
	const unsigned char *p = (const unsigned char *)text, *end = p + len;
	struct name open[DIV_MAX_DEPTH];
	size_t depth = 0;
	bool root = true;
	while (p < end) {
		if (*p != '<') {
			p = chars(p, end, 0);
			if (!p)
				return false;
			continue;
		}
		p++;
		if (p < end && *p == '/') {
			if (!depth)
				return false;
			struct name *top = &open[depth - 1];
			p++;
			if ((size_t)(end - p) < top->n || memcmp(p, top->s, top->n) != 0)
				return false;
			p += top->n;
			while (p < end && is_space(*p))
				p++;
			if (p >= end || *p != '>')
				return false;
			p++;
			if (!--depth)
				break;
		} else if (end - p >= 3 && !memcmp(p, "!--", 3)) {
			if (!depth)
				return false;
			p += 3;
			for (;;) {
				if (end - p < 3)
					return false;
				if (p[0] == '-' && p[1] == '-') {
					if (p[2] != '>')
						return false;
					p += 3;
					break;
				}
				size_t n = char_len(p, end);
				if (!n)
					return false;
				p += n;
			}
		} else {
			if (depth == DIV_MAX_DEPTH || (!root && !depth))
				return false;
			struct name name;
			bool empty = false;
			p = start_tag(p, end, root, &name, &empty);
			if (!p)
				return false;
			root = false;
			if (empty) {
				if (!depth)
					break;
			} else {
				open[depth++] = name;
			}
		}
	}
	if (depth || root)
		return false;
	while (p < end && is_space(*p))
		p++;
	return p == end;
}
