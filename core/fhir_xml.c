#include "fhir_xml.h"

#include <limits.h>
#include <stdarg.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/tree.h>
#include <libxml/xmlsave.h>

#include "model.h"
#include "strbuf.h"

/* ------------------------------------------------------------ hardening */

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static xmlParserInputPtr no_external(const char *url, const char *id, xmlParserCtxtPtr ctxt)
{
	(void)url;
	(void)id;
	(void)ctxt;
	return NULL;
}

static void init_libxml(void)
{
	xmlInitParser();
	xmlSetExternalEntityLoader(no_external);
}

void fhir_xml_init(void) { pthread_once(&init_once, init_libxml); }

struct guard {
	bool doctype;
};

static void on_subset(void *vctxt, const xmlChar *name, const xmlChar *ext, const xmlChar *sys)
{
	(void)name;
	(void)ext;
	(void)sys;
	xmlParserCtxtPtr ctxt = vctxt;
	struct guard *g = ctxt->_private;
	g->doctype = true;
	xmlStopParser(ctxt);
}

static bool bad_encoding_prefix(const unsigned char *b, size_t len)
{
	if (len >= 2 && ((b[0] == 0xFE && b[1] == 0xFF) || (b[0] == 0xFF && b[1] == 0xFE)))
		return true; /* UTF-16/32 byte order marks */
	if (len >= 4 && b[0] == 0 && b[1] == 0 && b[2] == 0xFE && b[3] == 0xFF)
		return true;
	if (len >= 2 && (b[0] == 0 || b[1] == 0))
		return true; /* UTF-16/32 without a mark */
	return false;
}

static void silent(void *ctx, const char *msg, ...)
{
	(void)ctx;
	(void)msg;
}

/* Parses with the hardening described in the header; NULL with a message. */
static xmlDocPtr safe_parse(const char *buf, size_t len, char *msg, size_t msglen)
{
	fhir_xml_init();
	if (len > INT_MAX) {
		snprintf(msg, msglen, "XML document too large");
		return NULL;
	}
	if (bad_encoding_prefix((const unsigned char *)buf, len)) {
		snprintf(msg, msglen, "XML must be encoded in UTF-8");
		return NULL;
	}
	xmlSetGenericErrorFunc(NULL, silent);
	xmlSetStructuredErrorFunc(NULL, NULL);
	xmlParserCtxtPtr ctxt = xmlCreateMemoryParserCtxt(buf, (int)len);
	if (!ctxt) {
		snprintf(msg, msglen, "cannot create an XML parser");
		return NULL;
	}
	struct guard g = {false};
	ctxt->_private = &g;
	ctxt->sax->internalSubset = on_subset;
	ctxt->sax->externalSubset = on_subset;
	ctxt->sax->entityDecl = NULL;
	xmlCtxtUseOptions(ctxt, XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOCDATA | XML_PARSE_COMPACT);
	xmlParseDocument(ctxt);
	xmlDocPtr doc = ctxt->myDoc;
	if (g.doctype) {
		snprintf(msg, msglen, "a DOCTYPE is not allowed in FHIR XML");
	} else if (!ctxt->wellFormed || !doc) {
		const xmlError *e = &ctxt->lastError;
		char text[200];
		snprintf(text, sizeof text, "%s", e->message ? e->message : "not well-formed");
		size_t tl = strlen(text);
		while (tl > 0 && (text[tl - 1] == '\n' || text[tl - 1] == ' '))
			text[--tl] = '\0';
		snprintf(msg, msglen, "XML is not well-formed at line %d column %d: %s", e->line, e->int2, text);
	} else if (doc->encoding && strcasecmp((const char *)doc->encoding, "UTF-8") != 0) {
		snprintf(msg, msglen, "XML must be encoded in UTF-8, not %s", (const char *)doc->encoding);
	} else {
		ctxt->myDoc = NULL;
		xmlFreeParserCtxt(ctxt);
		return doc;
	}
	if (doc)
		xmlFreeDoc(doc);
	ctxt->myDoc = NULL;
	xmlFreeParserCtxt(ctxt);
	return NULL;
}

/* ------------------------------------------------------------ shared */

struct path {
	char buf[512];
	size_t len;
	bool truncated;
};

static size_t path_push(struct path *p, const char *seg, long index)
{
	size_t mark = p->len, n = strlen(seg);
	char num[24];
	size_t nl = 0;
	if (index >= 0) {
		char rev[24];
		unsigned long v = (unsigned long)index;
		do {
			rev[nl++] = (char)('0' + v % 10);
			v /= 10;
		} while (v);
		for (size_t i = 0; i < nl; i++)
			num[i] = rev[nl - 1 - i];
	}
	size_t need = (mark ? 1 : 0) + n + (index >= 0 ? nl + 2 : 0);
	if (need >= sizeof p->buf - mark) {
		p->truncated = true;
		return mark;
	}
	char *w = p->buf + mark;
	if (mark)
		*w++ = '.';
	memcpy(w, seg, n);
	w += n;
	if (index >= 0) {
		*w++ = '[';
		memcpy(w, num, nl);
		w += nl;
		*w++ = ']';
	}
	*w = '\0';
	p->len = (size_t)(w - p->buf);
	return mark;
}

static void path_pop(struct path *p, size_t mark)
{
	p->len = mark;
	p->buf[mark] = '\0';
}

static bool is_blank(const char *s)
{
	for (; *s; s++)
		if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r')
			return false;
	return true;
}

static bool is_fhir_ns(const xmlNode *n) { return n->ns && n->ns->href && !strcmp((const char *)n->ns->href, FHIR_XML_NS); }

static bool is_xhtml_ns(const xmlNode *n)
{
	return n->ns && n->ns->href && !strcmp((const char *)n->ns->href, FHIR_XHTML_NS);
}

/* ------------------------------------------------------------ XML → JSON */

struct rd {
	struct outcome *oo;
	struct fjson_limits lim;
	struct path path;
	size_t used;
	int status;
	bool failed;
};

static void rd_fail(struct rd *r, int status, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void rd_fail(struct rd *r, int status, const char *code, const char *fmt, ...)
{
	if (status > r->status)
		r->status = status;
	r->failed = true;
	char msg[300];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	outcome_add(r->oo, OUTCOME_ERROR, code, r->path.len ? r->path.buf : NULL, "%s", msg);
}

static bool charge(struct rd *r, size_t bytes)
{
	r->used += bytes + sizeof(cJSON);
	if (r->used > r->lim.memory_budget) {
			if (!r->failed)
			rd_fail(r, 413, "too-costly", "the document exceeds the memory budget for one request");
		r->status = 413;
		return false;
	}
	return true;
}

/* One element of the object being built: its JSON name, value(s), and the
 * "_name" sibling(s) for a primitive's id and extensions. */
struct slot {
	char name[72];
	const struct model_elem *e;
	cJSON *val;   /* value, or array of values (null placeholders) */
	cJSON *under; /* "_name" object, or array aligned with val */
	size_t count;
	bool any_val, any_under;
};

struct slots {
	struct slot *s;
	size_t n, cap;
	struct slot inline_slots[12];
};

static struct slot *slot_get(struct slots *ss, const char *name, const struct model_elem *e)
{
	for (size_t i = 0; i < ss->n; i++)
		if (!strcmp(ss->s[i].name, name))
			return &ss->s[i];
	if (!ss->s) {
		ss->s = ss->inline_slots;
		ss->cap = sizeof ss->inline_slots / sizeof *ss->inline_slots;
	}
	if (ss->n == ss->cap) {
		size_t cap = ss->cap * 2;
		struct slot *p = ss->s == ss->inline_slots ? malloc(cap * sizeof *p) : realloc(ss->s, cap * sizeof *p);
		if (!p)
			return NULL;
		if (ss->s == ss->inline_slots)
			memcpy(p, ss->inline_slots, sizeof ss->inline_slots);
		ss->s = p;
		ss->cap = cap;
	}
	size_t nl = strlen(name);
	if (nl >= sizeof ss->s[0].name)
		return NULL;
	struct slot *s = &ss->s[ss->n++];
	memset(s, 0, sizeof *s);
	memcpy(s->name, name, nl + 1);
	s->e = e;
	return s;
}

static void slots_free(struct slots *ss)
{
	for (size_t i = 0; i < ss->n; i++) {
		cJSON_Delete(ss->s[i].val);
		cJSON_Delete(ss->s[i].under);
	}
	if (ss->s != ss->inline_slots)
		free(ss->s);
}

static cJSON *rd_resource(struct rd *r, xmlNode *node, size_t depth);
static bool rd_children(struct rd *r, xmlNode *node, const struct model_type *t, cJSON *obj, size_t depth);

static cJSON *rd_primitive_value(struct rd *r, const struct model_type *t, const char *v)
{
	if (!charge(r, strlen(v)))
		return NULL;
	cJSON *out = NULL;
	switch (t->json) {
	case MODEL_JSON_BOOL:
		if (!strcmp(v, "true"))
			out = cJSON_CreateTrue();
		else if (!strcmp(v, "false"))
			out = cJSON_CreateFalse();
		else {
			rd_fail(r, 400, "value", "not a valid boolean: \"%s\"", v);
			return NULL;
		}
		break;
	case MODEL_JSON_NUMBER:
		if (!fjson_valid_number(v, strlen(v))) {
			rd_fail(r, 400, "value", "not a valid number: \"%s\"", v);
			return NULL;
		}
		out = fjson_create_number_literal(v);
		break;
	default:
		out = cJSON_CreateString(v);
		break;
	}
	if (!out)
		rd_fail(r, 500, "exception", "out of memory");
	return out;
}

/* Serialises the narrative div, declaring the XHTML namespace on it. */
static cJSON *rd_xhtml(struct rd *r, xmlNode *node)
{
	xmlDocPtr doc = xmlNewDoc((const xmlChar *)"1.0");
	xmlNodePtr copy = doc ? xmlDocCopyNode(node, doc, 1) : NULL;
	xmlBufferPtr buf = xmlBufferCreate();
	cJSON *out = NULL;
	if (doc && copy && buf) {
		xmlDocSetRootElement(doc, copy);
		xmlReconciliateNs(doc, copy);
		if (xmlNodeDump(buf, doc, copy, 0, 0) >= 0) {
			const char *s = (const char *)xmlBufferContent(buf);
			if (charge(r, strlen(s)))
				out = cJSON_CreateString(s);
		}
	}
	if (!out && !r->failed)
		rd_fail(r, 500, "exception", "cannot serialise the narrative");
	xmlBufferFree(buf);
	xmlFreeDoc(doc);
	return out;
}

static bool rd_array_limit(struct rd *r, struct slot *s)
{
	if (s->count >= r->lim.max_array_items) {
		rd_fail(r, 400, "too-costly", "more than %zu repetitions of one element", r->lim.max_array_items);
		return false;
	}
	return true;
}

static bool rd_add(struct slot *s, bool array, cJSON *val, cJSON *under)
{
	if (!array) {
		s->val = val;
		s->under = under;
		s->any_val = val != NULL;
		s->any_under = under != NULL;
		s->count = 1;
		return true;
	}
	if (!s->val)
		s->val = cJSON_CreateArray();
	if (!s->under)
		s->under = cJSON_CreateArray();
	if (!s->val || !s->under) {
		cJSON_Delete(val);
		cJSON_Delete(under);
		return false;
	}
	cJSON_AddItemToArray(s->val, val ? val : cJSON_CreateNull());
	cJSON_AddItemToArray(s->under, under ? under : cJSON_CreateNull());
	s->any_val |= val != NULL;
	s->any_under |= under != NULL;
	s->count++;
	return true;
}

/* A child element of a FHIR element: decides its element definition and type. */
static bool rd_child(struct rd *r, xmlNode *c, const struct model_type *t, struct slots *ss, size_t depth)
{
	const char *name = (const char *)c->name;
	const struct model_type *ct = NULL;
	const struct model_elem *e = model_find_elem(t, name, strlen(name), &ct);
	size_t mark = path_push(&r->path, name, -1);
	if (!e || (e->flags & MODEL_F_ATTR)) {
		rd_fail(r, 400, "structure", "unknown element \"%s\"", name);
		path_pop(&r->path, mark);
		return false;
	}
	bool xhtml = !strcmp(ct->name, "xhtml");
	if (xhtml ? !is_xhtml_ns(c) : !is_fhir_ns(c)) {
		rd_fail(r, 400, "structure", "element \"%s\" is in the wrong namespace", name);
		path_pop(&r->path, mark);
		return false;
	}
	struct slot *s = slot_get(ss, name, e);
	if (!s) {
		rd_fail(r, 500, "exception", "out of memory");
		path_pop(&r->path, mark);
		return false;
	}
	bool array = e->max != 1;
	if (!array && s->count) {
		rd_fail(r, 400, "structure", "element \"%s\" repeats but allows one value", name);
		path_pop(&r->path, mark);
		return false;
	}
	if (array && !rd_array_limit(r, s)) {
		path_pop(&r->path, mark);
		return false;
	}
	path_pop(&r->path, mark);
	mark = path_push(&r->path, name, array ? (long)s->count : -1);
	cJSON *val = NULL, *under = NULL;
	bool ok = true;
	if (xhtml) {
		val = rd_xhtml(r, c);
		ok = val != NULL;
	} else if (ct->kind == MODEL_PRIMITIVE) {
		xmlChar *v = xmlGetNoNsProp(c, (const xmlChar *)"value");
		if (v) {
			val = rd_primitive_value(r, ct, (const char *)v);
			ok = val != NULL;
			xmlFree(v);
		}
		/* id and extensions go to "_name" */
		cJSON *u = ok ? cJSON_CreateObject() : NULL;
		if (ok && !u) {
			rd_fail(r, 500, "exception", "out of memory");
			ok = false;
		}
		if (ok)
			ok = rd_children(r, c, ct, u, depth + 1);
		if (ok && u->child)
			under = u;
		else
			cJSON_Delete(u);
		if (ok && !val && !under) {
			rd_fail(r, 400, "required", "element has neither a value nor extensions");
			ok = false;
		}
	} else if (!strcmp(ct->name, "Resource")) {
		xmlNode *inner = NULL;
		for (xmlNode *k = c->children; k; k = k->next) {
			if (k->type == XML_ELEMENT_NODE) {
				if (inner) {
					rd_fail(r, 400, "structure", "more than one resource in one element");
					ok = false;
					break;
				}
				inner = k;
			} else if (k->type == XML_TEXT_NODE && !is_blank((const char *)k->content)) {
				rd_fail(r, 400, "structure", "text is not allowed here");
				ok = false;
				break;
			}
		}
		if (ok && !inner) {
			rd_fail(r, 400, "required", "the element holds no resource");
			ok = false;
		}
		if (ok) {
			val = rd_resource(r, inner, depth + 1);
			ok = val != NULL;
		}
	} else {
		val = cJSON_CreateObject();
		if (!val || !charge(r, 0)) {
			if (!val)
				rd_fail(r, 500, "exception", "out of memory");
			ok = false;
		} else {
			ok = rd_children(r, c, ct, val, depth + 1);
		}
		if (ok && !val->child) {
			rd_fail(r, 400, "required", "element is empty");
			ok = false;
		}
	}
	path_pop(&r->path, mark);
	if (!ok) {
		cJSON_Delete(val);
		cJSON_Delete(under);
		return false;
	}
	if (!rd_add(s, array, val, under)) {
		rd_fail(r, 500, "exception", "out of memory");
		return false;
	}
	return true;
}

/* Reads the attributes and children of node (of type t) into obj. */
static bool rd_children(struct rd *r, xmlNode *node, const struct model_type *t, cJSON *obj, size_t depth)
{
	if (depth > r->lim.max_depth) {
		rd_fail(r, 400, "too-costly", "nesting too deep");
		return false;
	}
	for (xmlAttr *a = node->properties; a; a = a->next) {
		const char *an = (const char *)a->name;
		if (a->ns) {
			rd_fail(r, 400, "structure", "unexpected attribute \"%s\"", an);
			return false;
		}
		if (t->kind == MODEL_PRIMITIVE && !strcmp(an, "value"))
			continue;
		const struct model_elem *e = t->kind == MODEL_RESOURCE ? NULL : model_find_elem(t, an, strlen(an), NULL);
		if (!e || !(e->flags & MODEL_F_ATTR)) {
			rd_fail(r, 400, "structure", "unexpected attribute \"%s\"", an);
			return false;
		}
		xmlChar *v = xmlNodeListGetString(node->doc, a->children, 1);
		cJSON *s = v && charge(r, strlen((const char *)v)) ? cJSON_CreateString((const char *)v) : NULL;
		xmlFree(v);
		if (!s) {
			if (!r->failed)
				rd_fail(r, 500, "exception", "out of memory");
			return false;
		}
		cJSON_AddItemToObject(obj, an, s);
	}
	struct slots ss = {.s = NULL};
	bool ok = true;
	size_t members = 0;
	for (xmlNode *c = node->children; c && ok; c = c->next) {
		if (c->type == XML_TEXT_NODE) {
			if (!is_blank((const char *)c->content)) {
				rd_fail(r, 400, "structure", "text is not allowed here (FHIR data goes in value attributes)");
				ok = false;
			}
			continue;
		}
		if (c->type != XML_ELEMENT_NODE)
			continue; /* comments and processing instructions */
		if (++members > r->lim.max_members) {
			rd_fail(r, 400, "too-costly", "too many child elements");
			ok = false;
			break;
		}
		ok = rd_child(r, c, t, &ss, depth);
	}
	for (size_t i = 0; ok && i < ss.n; i++) {
		struct slot *s = &ss.s[i];
		if (s->any_val) {
			cJSON_AddItemToObject(obj, s->name, s->val);
			s->val = NULL;
		}
		if (s->any_under) {
			char uname[80];
			uname[0] = '_';
			memcpy(uname + 1, s->name, strlen(s->name) + 1);
			cJSON_AddItemToObject(obj, uname, s->under);
			s->under = NULL;
		}
	}
	slots_free(&ss);
	return ok;
}

static cJSON *rd_resource(struct rd *r, xmlNode *node, size_t depth)
{
	const char *name = (const char *)node->name;
	const struct model_type *t = model_resource(name);
	if (!is_fhir_ns(node)) {
		rd_fail(r, 400, "structure", "element \"%s\" is not in the FHIR namespace http://hl7.org/fhir", name);
		return NULL;
	}
	if (!t) {
		rd_fail(r, 400, "structure", "\"%s\" is not a FHIR R4 resource type", name);
		return NULL;
	}
	cJSON *obj = cJSON_CreateObject();
	cJSON *rt = obj ? cJSON_AddStringToObject(obj, "resourceType", name) : NULL;
	if (!rt) {
		cJSON_Delete(obj);
		rd_fail(r, 500, "exception", "out of memory");
		return NULL;
	}
	size_t mark = r->path.len == 0 ? path_push(&r->path, name, -1) : r->path.len;
	bool ok = rd_children(r, node, t, obj, depth + 1);
	path_pop(&r->path, mark);
	if (!ok) {
		cJSON_Delete(obj);
		return NULL;
	}
	return obj;
}

cJSON *fhir_xml_to_json(const char *buf, size_t len, const struct fjson_limits *lim, struct outcome *oo, int *status)
{
	struct rd r = {.oo = oo, .status = 400};
	if (lim)
		r.lim = *lim;
	else
		fjson_limits_default(&r.lim);
	char msg[300];
	xmlDocPtr doc = safe_parse(buf, len, msg, sizeof msg);
	if (!doc) {
		outcome_add(oo, OUTCOME_ERROR, "invalid", NULL, "%s", msg);
		if (status)
			*status = 400;
		return NULL;
	}
	xmlNode *root = xmlDocGetRootElement(doc);
	cJSON *out = root ? rd_resource(&r, root, 0) : NULL;
	if (!root)
		rd_fail(&r, 400, "invalid", "the document has no root element");
	xmlFreeDoc(doc);
	if (!out && status)
		*status = r.status;
	return out;
}

/* ------------------------------------------------------------ JSON → XML */

struct wr {
	struct strbuf b;
	struct outcome *oo;
	struct path path;
	bool pretty;
	bool failed;
	int status;
};

static void wr_fail(struct wr *w, const char *code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void wr_fail(struct wr *w, const char *code, const char *fmt, ...)
{
	w->failed = true;
	char msg[300];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	outcome_add(w->oo, OUTCOME_ERROR, code, w->path.len ? w->path.buf : NULL, "%s", msg);
}

static void indent(struct wr *w, size_t level)
{
	if (!w->pretty)
		return;
	strbuf_addc(&w->b, '\n');
	for (size_t i = 0; i < level; i++)
		strbuf_add(&w->b, "  ", 2);
}

static void esc(struct strbuf *b, const char *s, bool attr)
{
	const char *run = s;
	for (; *s; s++) {
		const char *rep = NULL;
		switch (*s) {
		case '&': rep = "&amp;"; break;
		case '<': rep = "&lt;"; break;
		case '>': rep = "&gt;"; break;
		case '"': rep = attr ? "&quot;" : NULL; break;
		case '\n': rep = attr ? "&#10;" : NULL; break;
		case '\r': rep = "&#13;"; break;
		case '\t': rep = attr ? "&#9;" : NULL; break;
		default: break;
		}
		if (rep) {
			strbuf_add(b, run, (size_t)(s - run));
			strbuf_adds(b, rep);
			run = s + 1;
		}
	}
	strbuf_add(b, run, (size_t)(s - run));
}

/* XML 1.0 cannot carry C0 controls other than tab, LF, CR, nor U+FFFE/U+FFFF. */
static bool xml_chars_ok(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p < 0x20 && *p != '\t' && *p != '\n' && *p != '\r')
			return false;
		if (p[0] == 0xEF && p[1] == 0xBF && (p[2] == 0xBE || p[2] == 0xBF))
			return false;
	}
	return true;
}

static void attr(struct wr *w, const char *name, const char *value)
{
	if (!xml_chars_ok(value)) {
		wr_fail(w, "value", "the value holds a control character that XML cannot carry");
		return;
	}
	strbuf_addc(&w->b, ' ');
	strbuf_adds(&w->b, name);
	strbuf_add(&w->b, "=\"", 2);
	esc(&w->b, value, true);
	strbuf_addc(&w->b, '"');
}

/* A JSON member mapped onto the model: element, chosen type, value, "_name". */
struct mem {
	const struct model_elem *e;
	const struct model_type *t;
	const cJSON *val, *under;
	char name[72];
};

static int mem_cmp(const void *a, const void *b)
{
	const struct mem *x = a, *y = b;
	if (x->e != y->e)
		return x->e < y->e ? -1 : 1;
	return 0;
}

static void wr_object(struct wr *w, const cJSON *obj, const struct model_type *t, size_t level, bool resource);
static void wr_resource(struct wr *w, const cJSON *res, size_t level, bool top);

static bool number_text(const cJSON *v, char *buf, size_t n, const char **out)
{
	const char *lit = fjson_number_literal(v);
	if (lit) {
		*out = lit;
		return true;
	}
	double d = v->valuedouble;
	if (!isfinite(d))
		return false;
	if (d == floor(d) && fabs(d) < 1e15)
		snprintf(buf, n, "%.0f", d);
	else
		snprintf(buf, n, "%.17g", d);
	*out = buf;
	return true;
}

static void wr_primitive(struct wr *w, const char *name, const struct model_type *t, const cJSON *val,
			 const cJSON *under, size_t level)
{
	char nb[64];
	const char *text = NULL;
	if (val && !cJSON_IsNull(val)) {
		switch (t->json) {
		case MODEL_JSON_BOOL:
			if (!cJSON_IsBool(val))
				return wr_fail(w, "value", "expected true or false");
			text = cJSON_IsTrue(val) ? "true" : "false";
			break;
		case MODEL_JSON_NUMBER:
			if (!cJSON_IsNumber(val) || !number_text(val, nb, sizeof nb, &text))
				return wr_fail(w, "value", "expected a JSON number");
			break;
		default:
			if (!cJSON_IsString(val))
				return wr_fail(w, "value", "expected a JSON string");
			text = val->valuestring;
			break;
		}
	}
	if (under && !cJSON_IsNull(under) && !cJSON_IsObject(under))
		return wr_fail(w, "structure", "the \"_\" sibling of a primitive must be an object");
	if (under && cJSON_IsNull(under))
		under = NULL;
	if (!text && !under)
		return wr_fail(w, "required", "a primitive needs a value or extensions");
	indent(w, level);
	strbuf_addc(&w->b, '<');
	strbuf_adds(&w->b, name);
	const cJSON *id = under ? cJSON_GetObjectItemCaseSensitive(under, "id") : NULL;
	if (id) {
		if (!cJSON_IsString(id))
			return wr_fail(w, "value", "id must be a string");
		attr(w, "id", id->valuestring);
	}
	if (text)
		attr(w, "value", text);
	bool children = false;
	for (const cJSON *m = under ? under->child : NULL; m; m = m->next)
		if (strcmp(m->string, "id") != 0)
			children = true;
	if (!children) {
		strbuf_add(&w->b, "/>", 2);
		return;
	}
	strbuf_addc(&w->b, '>');
	wr_object(w, under, t, level + 1, false);
	indent(w, level);
	strbuf_add(&w->b, "</", 2);
	strbuf_adds(&w->b, name);
	strbuf_addc(&w->b, '>');
}

static void wr_complex(struct wr *w, const char *name, const struct model_type *t, const cJSON *val, size_t level)
{
	if (!cJSON_IsObject(val))
		return wr_fail(w, "structure", "expected a JSON object");
	if (!val->child)
		return wr_fail(w, "structure", "an object must not be empty");
	indent(w, level);
	strbuf_addc(&w->b, '<');
	strbuf_adds(&w->b, name);
	bool children = false;
	for (const cJSON *m = val->child; m; m = m->next) {
		const struct model_elem *e = model_find_elem(t, m->string, strlen(m->string), NULL);
		if (e && (e->flags & MODEL_F_ATTR)) {
			if (!cJSON_IsString(m)) {
				size_t mk = path_push(&w->path, m->string, -1);
				wr_fail(w, "value", "expected a JSON string");
				path_pop(&w->path, mk);
				return;
			}
			attr(w, m->string, m->valuestring);
		} else {
			children = true;
		}
	}
	if (!children) {
		strbuf_add(&w->b, "/>", 2);
		return;
	}
	strbuf_addc(&w->b, '>');
	wr_object(w, val, t, level + 1, false);
	indent(w, level);
	strbuf_add(&w->b, "</", 2);
	strbuf_adds(&w->b, name);
	strbuf_addc(&w->b, '>');
}

static void wr_value(struct wr *w, const struct mem *m, const cJSON *val, const cJSON *under, size_t level)
{
	const struct model_type *t = m->t;
	if (!strcmp(t->name, "xhtml")) {
		if (under)
			return wr_fail(w, "structure", "the narrative takes no \"_div\"");
		if (!cJSON_IsString(val))
			return wr_fail(w, "value", "the narrative div must be a string");
		size_t n = strlen(val->valuestring);
		if (!fhir_xml_valid_div(val->valuestring, n))
			return wr_fail(w, "value", "the narrative must be a well-formed <div> in the XHTML namespace");
		indent(w, level);
		strbuf_add(&w->b, val->valuestring, n);
		return;
	}
	if (t->kind == MODEL_PRIMITIVE)
		return wr_primitive(w, m->name, t, val, under, level);
	if (under)
		return wr_fail(w, "structure", "only primitives have a \"_\" sibling");
	if (!strcmp(t->name, "Resource")) {
		if (!cJSON_IsObject(val))
			return wr_fail(w, "structure", "expected a resource object");
		indent(w, level);
		strbuf_addc(&w->b, '<');
		strbuf_adds(&w->b, m->name);
		strbuf_addc(&w->b, '>');
		wr_resource(w, val, level + 1, false);
		indent(w, level);
		strbuf_add(&w->b, "</", 2);
		strbuf_adds(&w->b, m->name);
		strbuf_addc(&w->b, '>');
		return;
	}
	wr_complex(w, m->name, t, val, level);
}

static void wr_member(struct wr *w, const struct mem *m, size_t level)
{
	bool array = m->e->max != 1;
	const cJSON *v = m->val, *u = m->under;
	size_t mark = path_push(&w->path, m->name, -1);
	if (!array) {
		if (cJSON_IsArray(v) || cJSON_IsArray(u))
			wr_fail(w, "structure", "the element allows one value, not an array");
		else if (cJSON_IsNull(v))
			wr_fail(w, "structure", "null is not a value");
		else
			wr_value(w, m, v, u, level);
		path_pop(&w->path, mark);
		return;
	}
	if ((v && !cJSON_IsArray(v)) || (u && !cJSON_IsArray(u))) {
		wr_fail(w, "structure", "the element repeats: expected an array");
		path_pop(&w->path, mark);
		return;
	}
	int nv = v ? cJSON_GetArraySize(v) : 0, nu = u ? cJSON_GetArraySize(u) : 0;
	if (v && u && nv != nu) {
		wr_fail(w, "structure", "the value array and its \"_\" array differ in length");
		path_pop(&w->path, mark);
		return;
	}
	if ((v && nv == 0) || (u && nu == 0)) {
		wr_fail(w, "structure", "an array must not be empty");
		path_pop(&w->path, mark);
		return;
	}
	path_pop(&w->path, mark);
	const cJSON *vi = v ? v->child : NULL, *ui = u ? u->child : NULL;
	for (long i = 0; (vi || ui) && !w->failed; i++) {
		size_t mk = path_push(&w->path, m->name, i);
		if (vi && cJSON_IsNull(vi) && m->t->kind != MODEL_PRIMITIVE)
			wr_fail(w, "structure", "null is not a value");
		else
			wr_value(w, m, vi && !cJSON_IsNull(vi) ? vi : NULL, ui && !cJSON_IsNull(ui) ? ui : NULL,
				 level);
		path_pop(&w->path, mk);
		vi = vi ? vi->next : NULL;
		ui = ui ? ui->next : NULL;
	}
}

/* Writes the child elements of obj (type t) in model order. */
static void wr_object(struct wr *w, const cJSON *obj, const struct model_type *t, size_t level, bool resource)
{
	size_t n = 0;
	for (const cJSON *m = obj->child; m; m = m->next)
		n++;
	if (level > 1000)
		return wr_fail(w, "too-costly", "nesting too deep");
	struct mem *mems = calloc(n ? n : 1, sizeof *mems);
	if (!mems) {
		w->status = 500;
		return wr_fail(w, "exception", "out of memory");
	}
	size_t k = 0;
	for (const cJSON *m = obj->child; m && !w->failed; m = m->next) {
		const char *name = m->string;
		if (resource && !strcmp(name, "resourceType"))
			continue;
		bool under = name[0] == '_';
		const char *base = under ? name + 1 : name;
		const struct model_type *ct = NULL;
		const struct model_elem *e = model_find_elem(t, base, strlen(base), &ct);
		if (!e) {
			size_t mk = path_push(&w->path, name, -1);
			wr_fail(w, "structure", "unknown element \"%s\"", name);
			path_pop(&w->path, mk);
			break;
		}
		if (e->flags & MODEL_F_ATTR) {
			if (under) {
				size_t mk = path_push(&w->path, name, -1);
				wr_fail(w, "structure", "unknown element \"%s\"", name);
				path_pop(&w->path, mk);
			}
			continue; /* written as an attribute by the caller */
		}
		struct mem *slot = NULL;
		for (size_t i = 0; i < k; i++)
			if (mems[i].e == e)
				slot = &mems[i];
		if (slot && slot->t != ct) {
			size_t mk = path_push(&w->path, name, -1);
			wr_fail(w, "structure", "more than one type given for the choice element \"%s[x]\"", e->name);
			path_pop(&w->path, mk);
			break;
		}
		if (!slot) {
			slot = &mems[k++];
			slot->e = e;
			slot->t = ct;
			model_elem_json_name(e, ct, slot->name, sizeof slot->name);
		}
		if (under)
			slot->under = m;
		else
			slot->val = m;
	}
	if (!w->failed)
		qsort(mems, k, sizeof *mems, mem_cmp);
	for (size_t i = 0; i < k && !w->failed; i++)
		wr_member(w, &mems[i], level);
	free(mems);
}

static void wr_resource(struct wr *w, const cJSON *res, size_t level, bool top)
{
	const cJSON *rt = cJSON_IsObject(res) ? cJSON_GetObjectItemCaseSensitive(res, "resourceType") : NULL;
	if (!cJSON_IsString(rt))
		return wr_fail(w, "required", "a resource needs a resourceType");
	const struct model_type *t = model_resource(rt->valuestring);
	if (!t)
		return wr_fail(w, "structure", "\"%s\" is not a FHIR R4 resource type", rt->valuestring);
	size_t mark = top ? path_push(&w->path, rt->valuestring, -1) : w->path.len;
	indent(w, level);
	strbuf_addc(&w->b, '<');
	strbuf_adds(&w->b, rt->valuestring);
	if (top)
		strbuf_adds(&w->b, " xmlns=\"" FHIR_XML_NS "\"");
	strbuf_addc(&w->b, '>');
	wr_object(w, res, t, level + 1, true);
	indent(w, level);
	strbuf_add(&w->b, "</", 2);
	strbuf_adds(&w->b, rt->valuestring);
	strbuf_addc(&w->b, '>');
	path_pop(&w->path, mark);
}

char *fhir_json_to_xml(const cJSON *resource, bool pretty, size_t *out_len, struct outcome *oo, int *status)
{
	struct wr w = {.oo = oo, .pretty = pretty, .status = 400};
	strbuf_adds(&w.b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
	if (!pretty)
		strbuf_addc(&w.b, '\n');
	wr_resource(&w, resource, 0, true);
	if (pretty)
		strbuf_addc(&w.b, '\n');
	if (!w.failed && w.b.oom) {
		w.failed = true;
		w.status = 500;
		outcome_add(oo, OUTCOME_ERROR, "exception", NULL, "out of memory writing XML");
	}
	if (w.failed) {
		strbuf_release(&w.b);
		if (status)
			*status = w.status;
		return NULL;
	}
	return strbuf_take(&w.b, out_len);
}

/* ------------------------------------------------------------ narrative */

bool fhir_xml_valid_div(const char *s, size_t len)
{
	char msg[300];
	xmlDocPtr doc = safe_parse(s, len, msg, sizeof msg);
	if (!doc)
		return false;
	xmlNode *root = xmlDocGetRootElement(doc);
	bool ok = root && !strcmp((const char *)root->name, "div") && is_xhtml_ns(root);
	xmlFreeDoc(doc);
	return ok;
}

/* ------------------------------------------------------------ canonical */

struct canon_attr {
	char *key;
	xmlChar *value;
};

static int canon_attr_cmp(const void *a, const void *b)
{
	return strcmp(((const struct canon_attr *)a)->key, ((const struct canon_attr *)b)->key);
}

static void canon_node(struct strbuf *b, const xmlNode *n, bool xhtml, size_t depth)
{
	if (depth > 1000) {
		b->oom = true;
		return;
	}
	for (; n; n = n->next) {
		if (n->type == XML_TEXT_NODE) {
			const char *t = (const char *)n->content;
			if (!xhtml && is_blank(t))
				continue;
			strbuf_addc(b, '"');
			esc(b, t, true);
			strbuf_add(b, "\"\n", 2);
			continue;
		}
		if (n->type != XML_ELEMENT_NODE)
			continue;
		bool inx = xhtml || is_xhtml_ns(n);
		strbuf_addc(b, '<');
		if (n->ns && n->ns->href) {
			strbuf_addc(b, '{');
			strbuf_adds(b, (const char *)n->ns->href);
			strbuf_addc(b, '}');
		}
		strbuf_adds(b, (const char *)n->name);
		size_t na = 0;
		for (const xmlAttr *a = n->properties; a; a = a->next)
			na++;
		struct canon_attr *as = calloc(na ? na : 1, sizeof *as);
		if (!as) {
			b->oom = true;
			return;
		}
		size_t i = 0;
		for (const xmlAttr *a = n->properties; a; a = a->next, i++) {
			const char *ns = a->ns && a->ns->href ? (const char *)a->ns->href : "";
			size_t kl = strlen(ns) + strlen((const char *)a->name) + 3;
			as[i].key = malloc(kl);
			if (as[i].key)
				snprintf(as[i].key, kl, "{%s}%s", ns, (const char *)a->name);
			else
				b->oom = true;
			as[i].value = xmlNodeListGetString(n->doc, a->children, 1);
		}
		if (!b->oom)
			qsort(as, na, sizeof *as, canon_attr_cmp);
		for (i = 0; i < na; i++) {
			if (as[i].key) {
				strbuf_addc(b, ' ');
				strbuf_adds(b, as[i].key);
				strbuf_add(b, "=\"", 2);
				esc(b, as[i].value ? (const char *)as[i].value : "", true);
				strbuf_addc(b, '"');
			}
			free(as[i].key);
			xmlFree(as[i].value);
		}
		free(as);
		strbuf_add(b, ">\n", 2);
		canon_node(b, n->children, inx, depth + 1);
		strbuf_add(b, "</>\n", 4);
	}
}

char *fhir_xml_canonical(const char *buf, size_t len, size_t *out_len)
{
	char msg[300];
	xmlDocPtr doc = safe_parse(buf, len, msg, sizeof msg);
	if (!doc)
		return NULL;
	struct strbuf b = STRBUF_INIT;
	canon_node(&b, xmlDocGetRootElement(doc), false, 0);
	xmlFreeDoc(doc);
	if (b.oom) {
		strbuf_release(&b);
		return NULL;
	}
	return strbuf_take(&b, out_len);
}
