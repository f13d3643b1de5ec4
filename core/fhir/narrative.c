#include "fhir/narrative.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* The basic XHTML the R4 narrative may hold (txt-1): the formatting
 * elements of HTML 4.0 chapters 7-11 and 15 without forms, frames, scripts,
 * objects or styles, plus <a> and <img>. Anything else is refused. */
static const char *const div_elements[] = {
	"a",     "abbr", "acronym", "address",  "area",  "b",     "bdo",  "big",    "blockquote", "br",  "caption",
	"cite",  "code", "col",     "colgroup", "dd",    "dfn",   "div",  "dl",     "dt",         "em",  "h1",
	"h2",    "h3",   "h4",      "h5",       "h6",    "hr",    "i",    "img",    "kbd",        "li",  "map",
	"ol",    "p",    "pre",     "q",        "samp",  "small", "span", "strong", "sub",        "sup", "table",
	"tbody", "td",   "tfoot",   "th",       "thead", "tr",    "tt",   "u",      "ul",         "var",
};

/* Attributes any allowed element may carry (core attributes, i18n and the
 * table layout attributes); none of them is a URL or a script. */
static const char *const div_attrs[] = {
	"abbr",   "accesskey", "align", "axis",  "border",  "cellpadding", "cellspacing", "char",   "charoff",
	"class",  "colspan",   "dir",   "frame", "headers", "height",      "id",          "lang",   "rowspan",
	"rules",  "scope",     "span",  "style", "summary", "tabindex",    "title",       "valign", "width",
	"nowrap", "bgcolor",   "start", "type",  "value",   "compact",
};

/* Attributes only some elements carry; those marked as URLs have their
 * scheme checked. */
static const struct {
	const char *elem, *attr;
	bool url;
} div_elem_attrs[] = {
	{"a", "href", true},          {"a", "name", false},    {"a", "rel", false},      {"a", "rev", false},
	{"a", "hreflang", false},     {"a", "charset", false}, {"a", "shape", false},    {"a", "coords", false},
	{"area", "href", true},       {"area", "alt", false},  {"area", "shape", false}, {"area", "coords", false},
	{"area", "nohref", false},    {"img", "src", true},    {"img", "alt", false},    {"img", "longdesc", true},
	{"img", "usemap", true},      {"img", "ismap", false}, {"img", "hspace", false}, {"img", "vspace", false},
	{"blockquote", "cite", true}, {"q", "cite", true},     {"map", "name", false},   {"pre", "space", false},
};

static bool in_list(const char *const *list, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(list[i], s))
			return true;
	return false;
}

/* A URL in the narrative: no control character or whitespace inside (they
 * hide "java\tscript:" from naive checks), and either relative or one of the
 * schemes that cannot run code; data: only for raster images in <img>. */
bool narrative_url_ok(const char *elem, const char *u)
{
	size_t n = strlen(u);
	while (n && (u[n - 1] == ' '))
		n--;
	while (n && *u == ' ')
		u++, n--;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)u[i] < 0x20 || u[i] == 0x7f || u[i] == '\\')
			return false;
	size_t k = strcspn(u, ":/?#");
	if (k >= n || u[k] != ':')
		return true; /* relative: no scheme */
	static const char *const schemes[] = {"http", "https", "mailto", "tel", "urn", "ftp"};
	for (size_t i = 0; i < sizeof schemes / sizeof *schemes; i++)
		if (strlen(schemes[i]) == k && !strncasecmp(u, schemes[i], k))
			return true;
	if (!strcmp(elem, "img") && !strncasecmp(u, "data:image/", 11) && strncasecmp(u + 11, "svg", 3) != 0)
		return true;
	return false;
}

/* Inline style may lay out but not load or run anything. */
bool narrative_style_ok(const char *s)
{
	static const char *const bad[] = {
		"expression", "url(", "@import", "javascript:", "vbscript:", "behavior", "binding", "\\", "<", "/*"};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		if (strcasestr(s, bad[i]))
			return false;
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 && *s != ' ' && *s != '\t' && *s != '\n' && *s != '\r')
			return false;
	return true;
}

bool narrative_element_ok(const char *elem)
{
	return in_list(div_elements, sizeof div_elements / sizeof *div_elements, elem);
}

bool narrative_attr_ok(const char *elem, const char *name, const char *value, char *why, size_t wl)
{
	bool url = false, known = in_list(div_attrs, sizeof div_attrs / sizeof *div_attrs, name);
	for (size_t i = 0; !known && i < sizeof div_elem_attrs / sizeof *div_elem_attrs; i++)
		if (!strcmp(div_elem_attrs[i].elem, elem) && !strcmp(div_elem_attrs[i].attr, name)) {
			known = true;
			url = div_elem_attrs[i].url;
		}
	if (!known) {
		snprintf(why, wl, "txt-1: the attribute %.40s is not allowed on <%s> in the narrative%s", name, elem,
			 !strncasecmp(name, "on", 2) ? " (event attributes are active content)" : "");
		return false;
	}
	bool ok = url ? narrative_url_ok(elem, value) : !strcmp(name, "style") ? narrative_style_ok(value) : true;
	if (!ok)
		snprintf(why, wl, "txt-1: the %s of <%s> is active content (%s), not allowed in the narrative", name,
			 elem,
			 url ? "only http, https, mailto, tel, urn, ftp or relative URLs"
			     : "a style that loads or runs something");
	return ok;
}
