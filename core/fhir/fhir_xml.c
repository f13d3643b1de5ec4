#include "fhir/fhir_xml.h"
#include "fhir/fhir_xml_int.h"

#include <dlfcn.h>
#include <limits.h>
#include <stddef.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/tree.h>
#include <libxml/xmlIO.h>
#include <libxml/xmlsave.h>

#include "fhir/model.h"
#include "fhir/narrative.h"
#include "base/strbuf.h"

/* ------------------------------------------------------------ loading */

/* libxml2 is loaded on first use (dlopen), not linked: a program that never
 * reads XML (converting JSON to XML without a narrative, or any other
 * command) does not load it, nor the libraries it brings (ICU, libstdc++).
 * The functions this file calls are taken from it by name into lx, and the
 * names below stand for them; libxml2's headers give their types. */
#ifndef CW_LIBXML2_SONAME
#define CW_LIBXML2_SONAME "libxml2.so.2"
#endif
#define LX_FUNCS(X)                           \
	X(xmlInitParser)                      \
	X(xmlSetExternalEntityLoader)         \
	X(xmlSetGenericErrorFunc)             \
	X(xmlSetStructuredErrorFunc)          \
	X(xmlCreatePushParserCtxt)            \
	X(xmlCtxtUseOptions)                  \
	X(xmlParseChunk)                      \
	X(xmlStopParser)                      \
	X(xmlFreeParserCtxt)                  \
	X(xmlFreeDoc)                         \
	X(xmlDocGetRootElement)               \
	X(xmlNodeListGetString)               \
	X(xmlGetPredefinedEntity)             \
	X(xmlParserInputBufferCreateFilename) \
	X(xmlFreeParserInputBuffer)
#define LX_FIELD(name) __typeof__(name) *name;
static struct {
	LX_FUNCS(LX_FIELD)
	/* libxml2's deallocator (xmlFree): a variable, or per thread behind
	 * __xmlFree() in a build with thread-local allocators */
	xmlFreeFunc *free_var;
	xmlFreeFunc *(*free_get)(void);
	bool loaded;
} lx;
#undef LX_FIELD

/* Fills lx from the library; false (lx left unusable) when it or a name is
 * missing. The library stays loaded for the life of the process. */
static bool lx_load(void)
{
	void *h = dlopen(CW_LIBXML2_SONAME, RTLD_NOW | RTLD_LOCAL);
	if (!h)
		return false;
	void *f;
#define LX_LOAD(name)               \
	if (!(f = dlsym(h, #name))) \
		return false;       \
	memcpy(&lx.name, &f, sizeof f);
	LX_FUNCS(LX_LOAD)
#undef LX_LOAD
	if ((f = dlsym(h, "__xmlFree")))
		memcpy(&lx.free_get, &f, sizeof f);
	else if ((f = dlsym(h, "xmlFree")))
		lx.free_var = f;
	else
		return false;
	return true;
}

static void lx_free(void *p) { (lx.free_get ? *lx.free_get() : *lx.free_var)(p); }

/* From here on the names call through lx. */
#define xmlInitParser (*lx.xmlInitParser)
#define xmlSetExternalEntityLoader (*lx.xmlSetExternalEntityLoader)
#define xmlSetGenericErrorFunc (*lx.xmlSetGenericErrorFunc)
#define xmlSetStructuredErrorFunc (*lx.xmlSetStructuredErrorFunc)
#define xmlCreatePushParserCtxt (*lx.xmlCreatePushParserCtxt)
#define xmlCtxtUseOptions (*lx.xmlCtxtUseOptions)
#define xmlParseChunk (*lx.xmlParseChunk)
#define xmlStopParser (*lx.xmlStopParser)
#define xmlFreeParserCtxt (*lx.xmlFreeParserCtxt)
#define xmlFreeDoc (*lx.xmlFreeDoc)
#define xmlDocGetRootElement (*lx.xmlDocGetRootElement)
#define xmlNodeListGetString (*lx.xmlNodeListGetString)
#define xmlGetPredefinedEntity (*lx.xmlGetPredefinedEntity)
#define xmlParserInputBufferCreateFilename (*lx.xmlParserInputBufferCreateFilename)
#define xmlFreeParserInputBuffer (*lx.xmlFreeParserInputBuffer)
#undef xmlFree
#define xmlFree lx_free

/* ------------------------------------------------------------ hardening */

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static const struct model_type *type_xhtml, *type_resource; /* set once in init_libxml */

static xmlParserInputPtr no_external(const char *url, const char *id, xmlParserCtxtPtr ctxt)
{
	(void)url;
	(void)id;
	(void)ctxt;
	return NULL;
}

static void init_libxml(void)
{
	type_xhtml = model_type("xhtml");
	type_resource = model_type("Resource");
	if (!lx_load())
		return;
	xmlInitParser();
	xmlSetExternalEntityLoader(no_external);
	lx.loaded = true;
}

bool fhir_xml_init(void)
{
	pthread_once(&init_once, init_libxml);
	return lx.loaded;
}

#define NO_LIBXML2 "XML cannot be read: the XML library (" CW_LIBXML2_SONAME ") cannot be loaded"

/* Set when a DOCTYPE shows; the first member of every parse's private state,
 * so on_subset reaches it through ctxt->_private. */
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

/* What every parse refuses before libxml2 sees the bytes, or NULL. */
static const char *early_refusal(const char *buf, size_t len)
{
	if (len > INT_MAX)
		return "XML document too large";
	if (bad_encoding_prefix((const unsigned char *)buf, len))
		return "XML must be encoded in UTF-8";
	return NULL;
}

/* libxml2's well-formedness error as one line with its position, in this
 * gateway's own words: the library's texts (and its internal limits, which
 * a document within the configured limits never meets) are not shown. */
static const char *error_words(int code)
{
	switch (code) {
	case XML_ERR_DOCUMENT_EMPTY:
		return "the document is empty";
	case XML_ERR_DOCUMENT_END:
		return "the document does not end right after its root element (an end tag missing, or content after "
		       "it)";
	case XML_ERR_TAG_NAME_MISMATCH:
		return "an end tag does not match its start tag";
	case XML_ERR_TAG_NOT_FINISHED:
	case XML_ERR_LTSLASH_REQUIRED:
		return "an element is not closed before the document ends";
	case XML_ERR_GT_REQUIRED:
		return "a tag does not end with '>'";
	case XML_ERR_ATTRIBUTE_NOT_STARTED:
	case XML_ERR_ATTRIBUTE_WITHOUT_VALUE:
	case XML_ERR_ATTRIBUTE_NOT_FINISHED:
		return "an attribute has no quoted value";
	case XML_ERR_ATTRIBUTE_REDEFINED:
		return "an attribute appears twice in one element";
	case XML_ERR_LT_IN_ATTRIBUTE:
		return "'<' inside an attribute value (write &lt;)";
	case XML_ERR_UNDECLARED_ENTITY:
	case XML_WAR_UNDECLARED_ENTITY:
	case XML_ERR_ENTITYREF_SEMICOL_MISSING:
	case XML_ERR_ENTITYREF_NO_NAME:
		return "an entity reference other than &lt; &gt; &amp; &quot; &apos; or a character reference";
	case XML_ERR_INVALID_CHAR:
	case XML_ERR_INVALID_CHARREF:
	case XML_ERR_INVALID_DEC_CHARREF:
	case XML_ERR_INVALID_HEX_CHARREF:
		return "a character XML does not allow";
	case XML_ERR_INVALID_ENCODING:
	case XML_ERR_UNSUPPORTED_ENCODING:
		return "the text is not valid UTF-8";
	case XML_ERR_NAME_REQUIRED:
		return "a tag or name is malformed";
	case XML_NS_ERR_UNDEFINED_NAMESPACE:
	case XML_NS_ERR_QNAME:
		return "a namespace prefix is not declared";
	case XML_ERR_NO_MEMORY:
		return "out of memory while reading it";
	default:
		return "it does not follow the XML syntax there";
	}
}

static void error_text(const xmlError *e, char *msg, size_t n)
{
	snprintf(msg, n, "XML is not well-formed at line %d column %d: %s", e->line, e->int2, error_words(e->code));
}

/* Feeds the document to a push parser in chunks: the parser then keeps only
 * a window of the input, so a document of any size (up to the caller's own
 * limits) parses, where one buffer past libxml2's lookup window (10 MB)
 * would fail inside the library. Stops when the parser stops. */
#define FEED_CHUNK (256 * 1024)
static void feed(xmlParserCtxtPtr ctxt, const char *buf, size_t len)
{
	size_t off = 0;
	do {
		size_t n = len - off < FEED_CHUNK ? len - off : FEED_CHUNK;
		int last = off + n == len;
		if (xmlParseChunk(ctxt, buf + off, (int)n, last) != 0 && !ctxt->wellFormed)
			break;
		off += n;
		if (ctxt->disableSAX && !last) /* stopped by a handler (xmlStopParser) */
			break;
	} while (off < len);
}

/* Parses with the hardening described in the header; NULL with a message. */
static xmlDocPtr safe_parse(const char *buf, size_t len, char *msg, size_t msglen)
{
	bool loaded = fhir_xml_init();
	const char *early = early_refusal(buf, len);
	if (early || !loaded) {
		snprintf(msg, msglen, "%s", early ? early : NO_LIBXML2);
		return NULL;
	}
	xmlSetGenericErrorFunc(NULL, silent);
	xmlSetStructuredErrorFunc(NULL, NULL);
	xmlParserCtxtPtr ctxt = xmlCreatePushParserCtxt(NULL, NULL, NULL, 0, NULL);
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
	feed(ctxt, buf, len);
	xmlDocPtr doc = ctxt->myDoc;
	if (g.doctype) {
		snprintf(msg, msglen, "a DOCTYPE is not allowed in FHIR XML");
	} else if (!ctxt->wellFormed || !doc) {
		error_text(&ctxt->lastError, msg, msglen);
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

static bool is_blank(const char *s)
{
	for (; *s; s++)
		if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r')
			return false;
	return true;
}


static bool is_xhtml_ns(const xmlNode *n)
{
	return n->ns && n->ns->href && !strcmp((const char *)n->ns->href, FHIR_XHTML_NS);
}

/* ------------------------------------------------------------ XML → JSON */

/* Element look-ups of one parse, remembered by the parent's type and the
 * name's address: libxml2 hands over element names from its dictionary, one
 * address per distinct name for the whole parse, so a name met again under
 * the same type costs no search of the model. */
#define RD_CACHE 512
struct rd_cached {
	const struct model_type *t, *ct;
	const char *name;
	const struct model_elem *e;
};

struct rd {
	struct outcome *oo;
	struct fjson_limits lim;
	struct fhir_xml_loc loc; /* spelt out only for an issue (rd_fail) */
	size_t used;
	int status;
	bool failed;
	struct rd_cached cache[RD_CACHE];
};

/* model_find_elem for a child name from libxml2's dictionary (see rd_cached). */
static const struct model_elem *rd_find_elem(struct rd *r, const struct model_type *t, const char *name,
					     const struct model_type **ct)
{
	uintptr_t h = ((uintptr_t)t >> 4) * 31u + ((uintptr_t)name >> 3);
	struct rd_cached *c = &r->cache[(h ^ (h >> 8)) & (RD_CACHE - 1)];
	if (c->t == t && c->name == name && c->e) {
		*ct = c->ct;
		return c->e;
	}
	const struct model_elem *e = model_find_elem(t, name, strlen(name), ct);
	if (e)
		*c = (struct rd_cached){t, *ct, name, e};
	return e;
}

static void rd_init(struct rd *r, struct outcome *oo, const struct fjson_limits *lim)
{
	r->oo = oo;
	r->status = 400;
	if (lim)
		r->lim = *lim;
	else
		fjson_limits_default(&r->lim);
}

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
	struct fhir_xml_path path;
	outcome_add(r->oo, OUTCOME_ERROR, code, fhir_xml_loc_spell(&r->loc, &path), "%s", msg);
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
		if (ss->s[i].e == e && ((e->flags & MODEL_F_CHOICE) == 0 || !strcmp(ss->s[i].name, name)))
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

static bool rd_array_limit(struct rd *r, struct slot *s)
{
	if (s->count >= r->lim.max_array_items) {
		rd_fail(r, 400, "too-costly", "more than %zu repetitions of one element", r->lim.max_array_items);
		return false;
	}
	return true;
}

/* Appends n nulls to arr. */
static bool add_nulls(cJSON *arr, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		cJSON *z = cJSON_CreateNull();
		if (!z)
			return false;
		cJSON_AddItemToArray(arr, z);
	}
	return true;
}

/* Adds one value (and "_name" object) to a slot. Arrays are built lazily: a
 * value array or a "_name" array appears only once an entry needs it, padded
 * with nulls for the entries before. */
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
	bool ok = true;
	if (val && !s->val && (!(s->val = cJSON_CreateArray()) || !add_nulls(s->val, s->count)))
		ok = false;
	if (ok && under && !s->under && (!(s->under = cJSON_CreateArray()) || !add_nulls(s->under, s->count)))
		ok = false;
	if (ok && s->val) {
		cJSON *v = val ? val : cJSON_CreateNull();
		if (v)
			cJSON_AddItemToArray(s->val, v);
		else
			ok = false;
		val = NULL;
	}
	if (ok && s->under) {
		cJSON *u = under ? under : cJSON_CreateNull();
		if (u)
			cJSON_AddItemToArray(s->under, u);
		else
			ok = false;
		under = NULL;
	}
	cJSON_Delete(val);
	cJSON_Delete(under);
	if (!ok)
		return false;
	s->any_val = s->val != NULL;
	s->any_under = s->under != NULL;
	s->count++;
	return true;
}

/* The reader is a SAX2 state machine: one frame per open FHIR element, each
 * building its JSON object (or primitive) and the slots of its children. No
 * DOM is built. The narrative div is re-serialised from the events. */

enum frame_kind { FR_RESOURCE, FR_OBJECT, FR_PRIMITIVE, FR_HOLDER };

struct frame {
	enum frame_kind kind;
	const struct model_type *t; /* content type (primitive type for FR_PRIMITIVE) */
	cJSON *obj;                 /* object being filled; for primitives the "_name" object */
	cJSON *val;                 /* primitive value, or the held resource */
	struct slot *slot;          /* where this element goes in its parent (NULL for the root) */
	bool array;
	size_t members;
	size_t path_mark;
	struct slots ss;
};

/* The narrative div, re-serialised from the SAX events. */
struct divcap {
	struct strbuf buf;
	size_t depth; /* > 0 while inside the div */
	bool open;    /* a start tag awaits its '>' (or "/>" if the element stays empty) */
};

struct sax {
	struct guard guard; /* first: see struct guard */
	struct rd r;
	xmlParserCtxtPtr ctxt;
	struct frame **frames; /* each frame allocated once: slot pointers into it stay valid */
	size_t depth, cap;
	cJSON *root;
	bool finished; /* root is a whole resource */
	struct divcap div; /* narrative capture */
	struct slot *div_slot;
	size_t div_mark;
	bool div_array;
};

static void sax_fail(struct sax *s)
{
	if (s->ctxt)
		xmlStopParser(s->ctxt);
}

static struct frame *top(struct sax *s) { return s->depth ? s->frames[s->depth - 1] : NULL; }

static struct frame *push_frame(struct sax *s, enum frame_kind kind, const struct model_type *t)
{
	if (s->depth > s->r.lim.max_depth) {
		rd_fail(&s->r, 400, "too-costly", "nesting too deep");
		return NULL;
	}
	if (s->depth == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		struct frame **fs = realloc(s->frames, cap * sizeof *fs);
		if (!fs) {
			rd_fail(&s->r, 500, "exception", "out of memory");
			return NULL;
		}
		for (size_t i = s->cap; i < cap; i++)
			fs[i] = NULL;
		s->frames = fs;
		s->cap = cap;
	}
	if (!s->frames[s->depth] && !(s->frames[s->depth] = malloc(sizeof(struct frame)))) {
		rd_fail(&s->r, 500, "exception", "out of memory");
		return NULL;
	}
	struct frame *f = s->frames[s->depth++];
	memset(f, 0, offsetof(struct frame, ss));
	f->ss.s = NULL;
	f->ss.n = f->ss.cap = 0;
	f->kind = kind;
	f->t = t;
	return f;
}

static void frame_discard(struct frame *f)
{
	cJSON_Delete(f->obj);
	cJSON_Delete(f->val);
	slots_free(&f->ss);
}

/* Moves the collected slots into obj in first-seen order ("x" then "_x"). */
static void slots_flush(struct slots *ss, cJSON *obj)
{
	for (size_t i = 0; i < ss->n; i++) {
		struct slot *sl = &ss->s[i];
		if (sl->any_val) {
			/* a non-choice name is the model's own static string: no copy */
			if (!(sl->e->flags & MODEL_F_CHOICE))
				cJSON_AddItemToObjectCS(obj, sl->e->name, sl->val);
			else
				cJSON_AddItemToObject(obj, sl->name, sl->val);
			sl->val = NULL;
		}
		if (sl->any_under) {
			char uname[80];
			uname[0] = '_';
			memcpy(uname + 1, sl->name, strlen(sl->name) + 1);
			cJSON_AddItemToObject(obj, uname, sl->under);
			sl->under = NULL;
		}
	}
}

static bool ns_is(const xmlChar *uri, const char *want) { return uri && !strcmp((const char *)uri, want); }

/* An attribute value from SAX2 (not NUL-terminated). Without entity
 * replacement libxml2 hands '&' over as "&#38;"; decode that one form. */
static char *attr_value(const xmlChar *v, const xmlChar *end, char *stackbuf, size_t stacklen)
{
	size_t n = (size_t)(end - v);
	char *out = n < stacklen ? stackbuf : malloc(n + 1);
	if (!out)
		return NULL;
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (v[i] == '&' && i + 5 <= n && !memcmp(v + i, "&#38;", 5)) {
			out[o++] = '&';
			i += 4;
		} else {
			out[o++] = (char)v[i];
		}
	}
	out[o] = '\0';
	return out;
}

static void esc_n(struct strbuf *b, const char *s, size_t n, bool attr)
{
	char tmp[512];
	while (n > 0) {
		size_t k = n < sizeof tmp - 1 ? n : sizeof tmp - 1;
		memcpy(tmp, s, k);
		tmp[k] = '\0';
		fhir_xml_esc(b, tmp, attr);
		s += k;
		n -= k;
	}
}

static void div_close_pending(struct divcap *d)
{
	if (d->open) {
		strbuf_addc(&d->buf, '>');
		d->open = false;
	}
}

static void div_end_tag(struct divcap *d, const xmlChar *local, const xmlChar *prefix)
{
	if (d->open) {
		strbuf_add(&d->buf, "/>", 2);
		d->open = false;
		return;
	}
	strbuf_add(&d->buf, "</", 2);
	if (prefix) {
		strbuf_adds(&d->buf, (const char *)prefix);
		strbuf_addc(&d->buf, ':');
	}
	strbuf_adds(&d->buf, (const char *)local);
	strbuf_addc(&d->buf, '>');
}

static void div_comment(struct divcap *d, const xmlChar *text)
{
	div_close_pending(d);
	strbuf_add(&d->buf, "<!--", 4);
	strbuf_adds(&d->buf, (const char *)text);
	strbuf_add(&d->buf, "-->", 3);
}

/* Text between elements, for both readers: kept inside the narrative;
 * anywhere else only whitespace may stand. */
static void text_event(struct rd *r, struct divcap *div, xmlParserCtxtPtr ctxt, const xmlChar *ch, int len)
{
	if (r->failed)
		return;
	if (div->depth) {
		div_close_pending(div);
		esc_n(&div->buf, (const char *)ch, (size_t)len, false);
		return;
	}
	for (int i = 0; i < len; i++) {
		if (ch[i] != ' ' && ch[i] != '\t' && ch[i] != '\n' && ch[i] != '\r') {
			rd_fail(r, 400, "structure", "text is not allowed here (FHIR data goes in value attributes)");
			xmlStopParser(ctxt);
			return;
		}
	}
}

static void div_start_tag(struct divcap *d, const xmlChar *local, const xmlChar *prefix, int nns, const xmlChar **ns,
			  int nattr, const xmlChar **attrs, bool root)
{
	struct strbuf *b = &d->buf;
	strbuf_addc(b, '<');
	if (prefix) {
		strbuf_adds(b, (const char *)prefix);
		strbuf_addc(b, ':');
	}
	strbuf_adds(b, (const char *)local);
	bool declared_default = false;
	for (int i = 0; i < nns; i++) {
		const xmlChar *p = ns[2 * i], *uri = ns[2 * i + 1];
		strbuf_adds(b, p ? " xmlns:" : " xmlns");
		if (p)
			strbuf_adds(b, (const char *)p);
		strbuf_add(b, "=\"", 2);
		fhir_xml_esc(b, uri ? (const char *)uri : "", true);
		strbuf_addc(b, '"');
		if (!p)
			declared_default = true;
	}
	if (root && !prefix && !declared_default)
		strbuf_adds(b, " xmlns=\"" FHIR_XHTML_NS "\"");
	for (int i = 0; i < nattr; i++) {
		const xmlChar **a = attrs + 5 * i;
		strbuf_addc(b, ' ');
		if (a[1]) {
			strbuf_adds(b, (const char *)a[1]);
			strbuf_addc(b, ':');
		}
		strbuf_adds(b, (const char *)a[0]);
		strbuf_add(b, "=\"", 2);
		char sb[256];
		char *v = attr_value(a[3], a[4], sb, sizeof sb);
		if (!v) {
			b->oom = true;
			return;
		}
		fhir_xml_esc(b, v, true);
		if (v != sb)
			free(v);
		strbuf_addc(b, '"');
	}
	d->open = true;
}

/* --- checks both readers make on a start tag; each reports through rd_fail
 * and returns a failure value, and the caller stops the parser --- */

/* A start tag inside the narrative: re-serialised, nesting bounded. */
static bool div_nested(struct rd *r, struct divcap *d, const xmlChar *local, const xmlChar *prefix, int nns,
		       const xmlChar **ns, int nattr, const xmlChar **attrs)
{
	if (++d->depth > 256) {
		rd_fail(r, 400, "too-costly", "the narrative is nested too deep");
		return false;
	}
	div_close_pending(d);
	div_start_tag(d, local, prefix, nns, ns, nattr, attrs, false);
	return true;
}

/* The narrative's own <div>: the capture starts. */
static void div_begin(struct divcap *d, const xmlChar *local, const xmlChar *prefix, int nns, const xmlChar **ns,
		      int nattr, const xmlChar **attrs)
{
	d->depth = 1;
	d->buf.len = 0;
	d->buf.oom = false;
	d->open = false;
	div_start_tag(d, local, prefix, nns, ns, nattr, attrs, true);
}

/* An element where a resource must stand (the root, contained, entry.resource…);
 * taken: that place already holds one. Its type, or NULL. */
static const struct model_type *resource_start(struct rd *r, const char *name, const xmlChar *uri, bool taken,
					       int nattr, const xmlChar **attrs)
{
	const struct model_type *t = model_resource(name);
	if (!ns_is(uri, FHIR_XML_NS)) {
		rd_fail(r, 400, "structure", "element \"%s\" is not in the FHIR namespace http://hl7.org/fhir", name);
		return NULL;
	}
	if (!t) {
		rd_fail(r, 400, "structure", "\"%s\" is not a FHIR R4 resource type", name);
		return NULL;
	}
	if (taken) {
		rd_fail(r, 400, "structure", "more than one resource in one element");
		return NULL;
	}
	if (nattr > 0) {
		rd_fail(r, 400, "structure", "unexpected attribute \"%s\"", (const char *)attrs[0]);
		return NULL;
	}
	return t;
}

/* A child element of an element of type t (a primitive when in_primitive):
 * its definition, with *ct its chosen type and *xhtml whether it is the
 * narrative; the element's name is pushed on the path (*mark undoes it).
 * name comes from libxml2's dictionary (see rd_cached).
 * NULL when unknown, in the wrong namespace, or one child too many. */
static const struct model_elem *child_start(struct rd *r, const struct model_type *t, bool in_primitive,
					    const char *name, const xmlChar *uri, size_t *members,
					    const struct model_type **ct, bool *xhtml, size_t *mark)
{
	if (in_primitive && strcmp(name, "extension") != 0) {
		size_t mk = fhir_xml_loc_push(&r->loc, name, -1);
		rd_fail(r, 400, "structure", "unknown element \"%s\"", name);
		fhir_xml_loc_pop(&r->loc, mk);
		return NULL;
	}
	const struct model_elem *e = rd_find_elem(r, t, name, ct);
	*mark = fhir_xml_loc_push(&r->loc, name, -1);
	if (!e || (e->flags & MODEL_F_ATTR)) {
		rd_fail(r, 400, "structure", "unknown element \"%s\"", name);
		return NULL;
	}
	*xhtml = *ct == type_xhtml;
	if (!ns_is(uri, *xhtml ? FHIR_XHTML_NS : FHIR_XML_NS)) {
		rd_fail(r, 400, "structure", "element \"%s\" is in the wrong namespace", name);
		return NULL;
	}
	if (++*members > r->lim.max_members) {
		rd_fail(r, 400, "too-costly", "too many child elements");
		return NULL;
	}
	return e;
}

/* An attribute a (a SAX2 5-tuple) of an element of type ct read as kind: 1
 * for the value of a primitive, 0 for an element written as an attribute
 * (id, url), -1 when not allowed. */
static int attr_start(struct rd *r, enum frame_kind kind, const struct model_type *ct, const xmlChar **a)
{
	const char *an = (const char *)a[0];
	if (!a[2]) {
		if (kind == FR_PRIMITIVE && !strcmp(an, "value"))
			return 1;
		const struct model_type *at = NULL;
		const struct model_elem *ae = kind == FR_HOLDER ? NULL : rd_find_elem(r, ct, an, &at);
		if (ae && (ae->flags & MODEL_F_ATTR))
			return 0;
	}
	rd_fail(r, 400, "structure", "unexpected attribute \"%s\"", an);
	return -1;
}

static void on_start(void *vctx, const xmlChar *local, const xmlChar *prefix, const xmlChar *uri, int nns,
		     const xmlChar **ns, int nattr, int ndefaulted, const xmlChar **attrs)
{
	(void)ndefaulted;
	xmlParserCtxtPtr ctxt = vctx;
	struct sax *s = ctxt->_private;
	if (s->r.failed)
		return;
	const char *name = (const char *)local;
	if (s->div.depth) {
		if (!div_nested(&s->r, &s->div, local, prefix, nns, ns, nattr, attrs))
			return sax_fail(s);
		return;
	}
	struct frame *p = top(s);
	if (!p || p->kind == FR_HOLDER) {
		/* a resource: the root, or inside contained / entry.resource / … */
		const struct model_type *t = resource_start(&s->r, name, uri, p && p->val, nattr, attrs);
		if (!t)
			return sax_fail(s);
		size_t mark = p ? s->r.loc.n : fhir_xml_loc_push(&s->r.loc, name, -1);
		struct frame *f = push_frame(s, FR_RESOURCE, t);
		if (!f)
			return sax_fail(s);
		f->path_mark = mark;
		f->obj = cJSON_CreateObject();
		cJSON *rt = f->obj ? cJSON_CreateString(t->name) : NULL;
		if (rt)
			cJSON_AddItemToObjectCS(f->obj, "resourceType", rt);
		if (!rt || !charge(&s->r, strlen(name))) {
			if (!s->r.failed)
				rd_fail(&s->r, 500, "exception", "out of memory");
			return sax_fail(s);
		}
		return;
	}
	const struct model_type *ct = NULL;
	bool xhtml = false;
	size_t mark = 0;
	const struct model_elem *e =
		child_start(&s->r, p->t, p->kind == FR_PRIMITIVE, name, uri, &p->members, &ct, &xhtml, &mark);
	if (!e)
		return sax_fail(s);
	if (e->flags & MODEL_F_CHOICE) {
		for (size_t i = 0; i < p->ss.n; i++) {
			if (p->ss.s[i].e == e && strcmp(p->ss.s[i].name, name) != 0) {
				rd_fail(&s->r, 400, "structure", "%s[x] is given as both %s and %s", e->name,
					p->ss.s[i].name, name);
				return sax_fail(s);
			}
		}
	}
	struct slot *sl = slot_get(&p->ss, name, e);
	if (!sl) {
		rd_fail(&s->r, 500, "exception", "out of memory");
		return sax_fail(s);
	}
	bool array = e->max != 1;
	if (!array && sl->count) {
		rd_fail(&s->r, 400, "structure", "element \"%s\" repeats but allows one value", name);
		return sax_fail(s);
	}
	if (array && !rd_array_limit(&s->r, sl))
		return sax_fail(s);
	fhir_xml_loc_index(&s->r.loc, mark, array ? (long)sl->count : -1);
	if (xhtml) {
		s->div_slot = sl;
		s->div_array = array;
		s->div_mark = mark; /* the path stays pushed until the div ends */
		div_begin(&s->div, local, prefix, nns, ns, nattr, attrs);
		return;
	}
	enum frame_kind kind = ct->kind == MODEL_PRIMITIVE ? FR_PRIMITIVE : ct == type_resource ? FR_HOLDER : FR_OBJECT;
	struct frame *f = push_frame(s, kind, ct);
	if (!f)
		return sax_fail(s);
	f->slot = sl;
	f->array = array;
	f->path_mark = mark;
	for (int i = 0; i < nattr; i++) {
		const xmlChar **a = attrs + 5 * i;
		const char *an = (const char *)a[0];
		int is_value = attr_start(&s->r, kind, ct, a);
		if (is_value < 0)
			return sax_fail(s);
		char sb[512];
		char *v = attr_value(a[3], a[4], sb, sizeof sb);
		if (!v) {
			rd_fail(&s->r, 500, "exception", "out of memory");
			return sax_fail(s);
		}
		if (is_value) {
			f->val = rd_primitive_value(&s->r, ct, v);
			if (v != sb)
				free(v);
			if (!f->val)
				return sax_fail(s);
			continue;
		}
		if (!f->obj)
			f->obj = cJSON_CreateObject();
		cJSON *str = f->obj && charge(&s->r, strlen(v)) ? cJSON_CreateString(v) : NULL;
		if (v != sb)
			free(v);
		if (!str) {
			if (!s->r.failed)
				rd_fail(&s->r, 500, "exception", "out of memory");
			return sax_fail(s);
		}
		cJSON_AddItemToObject(f->obj, an, str);
	}
	if (kind == FR_OBJECT && !f->obj) {
		f->obj = cJSON_CreateObject();
		if (!f->obj || !charge(&s->r, 0)) {
			if (!s->r.failed)
				rd_fail(&s->r, 500, "exception", "out of memory");
			return sax_fail(s);
		}
	}
}

static void on_end(void *vctx, const xmlChar *local, const xmlChar *prefix, const xmlChar *uri)
{
	(void)uri;
	xmlParserCtxtPtr ctxt = vctx;
	struct sax *s = ctxt->_private;
	if (s->r.failed)
		return;
	if (s->div.depth) {
		div_end_tag(&s->div, local, prefix);
		if (--s->div.depth > 0)
			return;
		if (s->div.buf.oom || !charge(&s->r, s->div.buf.len)) {
			if (!s->r.failed)
				rd_fail(&s->r, 500, "exception", "out of memory");
			return sax_fail(s);
		}
		strbuf_addc(&s->div.buf, '\0');
		cJSON *str = s->div.buf.oom ? NULL : cJSON_CreateString(s->div.buf.buf);
		if (!str || !rd_add(s->div_slot, s->div_array, str, NULL)) {
			rd_fail(&s->r, 500, "exception", "out of memory");
			return sax_fail(s);
		}
		fhir_xml_loc_pop(&s->r.loc, s->div_mark);
		return;
	}
	struct frame *f = top(s);
	if (!f)
		return;
	s->depth--;
	cJSON *val = NULL, *under = NULL;
	bool ok = true;
	switch (f->kind) {
	case FR_RESOURCE:
		slots_flush(&f->ss, f->obj);
		val = f->obj;
		f->obj = NULL;
		break;
	case FR_OBJECT:
		slots_flush(&f->ss, f->obj);
		if (!f->obj->child) {
			rd_fail(&s->r, 400, "required", "element is empty");
			ok = false;
		}
		val = f->obj;
		f->obj = NULL;
		break;
	case FR_PRIMITIVE:
		if (f->ss.n) {
			if (!f->obj)
				f->obj = cJSON_CreateObject();
			if (f->obj)
				slots_flush(&f->ss, f->obj);
		}
		val = f->val;
		under = f->obj && f->obj->child ? f->obj : NULL;
		if (!under)
			cJSON_Delete(f->obj);
		f->obj = NULL;
		f->val = NULL;
		if (!val && !under) {
			rd_fail(&s->r, 400, "required", "element has neither a value nor extensions");
			ok = false;
		}
		break;
	case FR_HOLDER:
		val = f->val;
		f->val = NULL;
		if (!val) {
			rd_fail(&s->r, 400, "required", "the element holds no resource");
			ok = false;
		}
		break;
	}
	slots_free(&f->ss);
	fhir_xml_loc_pop(&s->r.loc, f->path_mark);
	if (!ok) {
		cJSON_Delete(val);
		cJSON_Delete(under);
		return sax_fail(s);
	}
	struct frame *p = top(s);
	if (!p) {
		s->root = val;
		s->finished = true;
		return;
	}
	if (p->kind == FR_HOLDER) {
		p->val = val;
		return;
	}
	if (!rd_add(f->slot, f->array, val, under)) {
		rd_fail(&s->r, 500, "exception", "out of memory");
		return sax_fail(s);
	}
}

static void on_chars(void *vctx, const xmlChar *ch, int len)
{
	xmlParserCtxtPtr ctxt = vctx;
	struct sax *s = ctxt->_private;
	text_event(&s->r, &s->div, ctxt, ch, len);
}

static void on_comment(void *vctx, const xmlChar *text)
{
	xmlParserCtxtPtr ctxt = vctx;
	struct sax *s = ctxt->_private;
	if (s->div.depth && !s->r.failed)
		div_comment(&s->div, text);
}

static xmlEntityPtr on_entity(void *vctx, const xmlChar *name)
{
	(void)vctx;
	return xmlGetPredefinedEntity(name);
}

/* Runs a hardened SAX2 parse of buf for one of the readers: h holds its
 * element, text and comment callbacks (the guard callbacks are added here);
 * state, which begins with struct guard, is their ctxt->_private, and
 * *ctxt_slot holds the parser while it runs so they can stop it. Afterwards
 * r reports, unless it already failed: a refusal before parsing, a DOCTYPE, a
 * declared encoding other than UTF-8, or libxml2's well-formedness error —
 * also when the reader did not see a whole resource (*complete false). */
static void sax_parse(struct rd *r, void *state, xmlParserCtxtPtr *ctxt_slot, xmlSAXHandler *h, const char *buf,
		      size_t len, const bool *complete)
{
	bool loaded = fhir_xml_init();
	struct guard *g = state;
	const char *early = early_refusal(buf, len);
	if (early) {
		r->failed = true;
		r->status = 400;
		outcome_add(r->oo, OUTCOME_ERROR, "invalid", NULL, "%s", early);
		return;
	}
	if (!loaded) {
		r->failed = true;
		r->status = 500;
		outcome_add(r->oo, OUTCOME_ERROR, "exception", NULL, "%s", NO_LIBXML2);
		return;
	}
	h->initialized = XML_SAX2_MAGIC;
	h->internalSubset = on_subset;
	h->externalSubset = on_subset;
	h->getEntity = on_entity;
	xmlSetGenericErrorFunc(NULL, silent);
	xmlSetStructuredErrorFunc(NULL, NULL);
	xmlParserCtxtPtr ctxt = xmlCreatePushParserCtxt(h, NULL, NULL, 0, NULL);
	if (!ctxt) {
		r->failed = true;
		r->status = 500;
		outcome_add(r->oo, OUTCOME_ERROR, "exception", NULL, "cannot create an XML parser");
		return;
	}
	ctxt->_private = state;
	*ctxt_slot = ctxt;
	/* HUGE lifts libxml2's own size and depth caps: the readers enforce the
	 * configured limits themselves, with their own messages */
	xmlCtxtUseOptions(ctxt, XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOCDATA |
					XML_PARSE_HUGE);
	feed(ctxt, buf, len);
	const char *declared = ctxt->input && ctxt->input->encoding ? (const char *)ctxt->input->encoding : NULL;
	if (!declared && ctxt->encoding)
		declared = (const char *)ctxt->encoding;
	if (g->doctype) {
		r->failed = true;
		r->status = 400;
		outcome_add(r->oo, OUTCOME_ERROR, "invalid", NULL, "a DOCTYPE is not allowed in FHIR XML");
	} else if (!r->failed && declared && strcasecmp(declared, "UTF-8") != 0) {
		r->failed = true;
		outcome_add(r->oo, OUTCOME_ERROR, "invalid", NULL, "XML must be encoded in UTF-8, not %.40s", declared);
	} else if (!r->failed && (!ctxt->wellFormed || !*complete)) {
		char msg[300];
		error_text(&ctxt->lastError, msg, sizeof msg);
		r->failed = true;
		outcome_add(r->oo, OUTCOME_ERROR, "invalid", NULL, "%s", msg);
	}
	if (ctxt->myDoc)
		xmlFreeDoc(ctxt->myDoc);
	xmlFreeParserCtxt(ctxt);
	*ctxt_slot = NULL;
}

cJSON *fhir_xml_to_json(const char *buf, size_t len, const struct fjson_limits *lim, struct outcome *oo, int *status)
{
	struct sax s;
	memset(&s, 0, sizeof s);
	rd_init(&s.r, oo, lim);
	xmlSAXHandler h;
	memset(&h, 0, sizeof h);
	h.startElementNs = on_start;
	h.endElementNs = on_end;
	h.characters = on_chars;
	h.ignorableWhitespace = on_chars;
	h.comment = on_comment;
	sax_parse(&s.r, &s, &s.ctxt, &h, buf, len, &s.finished);
	while (s.depth > 0)
		frame_discard(s.frames[--s.depth]);
	for (size_t i = 0; i < s.cap; i++)
		free(s.frames[i]);
	free(s.frames);
	strbuf_release(&s.div.buf);
	if (s.r.failed) {
		cJSON_Delete(s.root);
		if (status)
			*status = s.r.status;
		return NULL;
	}
	return s.root;
}

/* ------------------------------------------------------------ XML → JSON text */

/* The streaming reader writes FHIR JSON text straight from the SAX events,
 * with no tree: the $convert and CLI path. FHIR XML lists an element's
 * repetitions together and in model order, so each JSON member is complete
 * when the next sibling name starts; a repetition that comes back later is
 * refused (the tree reader merges it). A primitive's values and its "_"
 * siblings are buffered per member, since "_name" follows "name". */

struct js_member {
	const struct model_elem *e;
	char name[72];
	bool array, primitive;
	size_t count;
	bool any_val, any_under;
	struct strbuf vals, unders; /* primitive members only */
};

struct js_frame {
	enum frame_kind kind;
	const struct model_type *t;
	struct strbuf *out;      /* where this frame's object text goes */
	struct strbuf own;       /* primitives: the "_" object's members */
	struct js_member cur;    /* the member being written */
	bool has_cur;
	bool wrote;              /* a member was written (commas; empty objects) */
	const struct model_elem *done[96];
	size_t ndone;
	size_t members, path_mark;
	bool has_value, has_resource;
};

struct js {
	struct guard guard; /* first: see struct guard */
	struct rd r;
	xmlParserCtxtPtr ctxt;
	struct js_frame **frames;
	size_t depth, cap;
	struct strbuf out;
	bool finished; /* the root resource has ended */
	struct divcap div;
	size_t div_mark;
};

/* The bytes a JSON string escapes: C0 controls, '"' and '\\'. */
static const bool js_escaped[256] = {
	[0x00] = 1, [0x01] = 1, [0x02] = 1, [0x03] = 1, [0x04] = 1, [0x05] = 1, [0x06] = 1, [0x07] = 1, [0x08] = 1,
	[0x09] = 1, [0x0A] = 1, [0x0B] = 1, [0x0C] = 1, [0x0D] = 1, [0x0E] = 1, [0x0F] = 1, [0x10] = 1, [0x11] = 1,
	[0x12] = 1, [0x13] = 1, [0x14] = 1, [0x15] = 1, [0x16] = 1, [0x17] = 1, [0x18] = 1, [0x19] = 1, [0x1A] = 1,
	[0x1B] = 1, [0x1C] = 1, [0x1D] = 1, [0x1E] = 1, [0x1F] = 1, ['"'] = 1,  ['\\'] = 1,
};

static void js_str(struct strbuf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	strbuf_addc(b, '"');
	const char *run = s;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!js_escaped[c])
			continue;
		strbuf_add(b, run, (size_t)(s + i - run));
		char e[7] = {'\\', 0, 0, 0, 0, 0, 0};
		size_t el = 2;
		switch (c) {
		case '"': e[1] = '"'; break;
		case '\\': e[1] = '\\'; break;
		case '\n': e[1] = 'n'; break;
		case '\r': e[1] = 'r'; break;
		case '\t': e[1] = 't'; break;
		default:
			e[1] = 'u';
			e[2] = '0';
			e[3] = '0';
			e[4] = hex[c >> 4];
			e[5] = hex[c & 15];
			el = 6;
		}
		strbuf_add(b, e, el);
		run = s + i + 1;
	}
	strbuf_add(b, run, (size_t)(s + n - run));
	strbuf_addc(b, '"');
}

static void js_fail(struct js *s)
{
	if (s->ctxt)
		xmlStopParser(s->ctxt);
}

static struct js_frame *js_top(struct js *s) { return s->depth ? s->frames[s->depth - 1] : NULL; }

static struct js_frame *js_push(struct js *s, enum frame_kind kind, const struct model_type *t, struct strbuf *out)
{
	if (s->depth > s->r.lim.max_depth) {
		rd_fail(&s->r, 400, "too-costly", "nesting too deep");
		return NULL;
	}
	if (s->depth == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		struct js_frame **fs = realloc(s->frames, cap * sizeof *fs);
		if (!fs) {
			rd_fail(&s->r, 500, "exception", "out of memory");
			return NULL;
		}
		for (size_t i = s->cap; i < cap; i++)
			fs[i] = NULL;
		s->frames = fs;
		s->cap = cap;
	}
	if (!s->frames[s->depth] && !(s->frames[s->depth] = calloc(1, sizeof(struct js_frame)))) {
		rd_fail(&s->r, 500, "exception", "out of memory");
		return NULL;
	}
	struct js_frame *f = s->frames[s->depth++];
	/* reset what a frame uses; the buffers keep their memory for reuse */
	f->own.len = f->cur.vals.len = f->cur.unders.len = 0;
	f->own.oom = f->cur.vals.oom = f->cur.unders.oom = false;
	f->has_cur = f->wrote = f->has_value = f->has_resource = false;
	f->ndone = f->members = f->path_mark = 0;
	f->kind = kind;
	f->t = t;
	f->out = kind == FR_PRIMITIVE ? &f->own : out;
	return f;
}

static void js_key(struct js_frame *f, struct strbuf *out, const char *name, bool under)
{
	if (f->wrote)
		strbuf_addc(out, ',');
	strbuf_addc(out, '"');
	if (under)
		strbuf_addc(out, '_');
	strbuf_adds(out, name);
	strbuf_add(out, "\":", 2);
	f->wrote = true;
}

/* Ends the member being written in f. */
static void js_close_member(struct js_frame *f)
{
	if (!f->has_cur)
		return;
	struct js_member *m = &f->cur;
	if (m->primitive) {
		if (m->any_val) {
			js_key(f, f->out, m->name, false);
			if (m->array)
				strbuf_addc(f->out, '[');
			strbuf_add(f->out, m->vals.buf ? m->vals.buf : "", m->vals.len);
			if (m->array)
				strbuf_addc(f->out, ']');
		}
		if (m->any_under) {
			js_key(f, f->out, m->name, true);
			if (m->array)
				strbuf_addc(f->out, '[');
			strbuf_add(f->out, m->unders.buf ? m->unders.buf : "", m->unders.len);
			if (m->array)
				strbuf_addc(f->out, ']');
		}
	} else if (m->array) {
		strbuf_addc(f->out, ']');
	}
	if (f->ndone < sizeof f->done / sizeof *f->done)
		f->done[f->ndone++] = m->e;
	f->has_cur = false;
}

static bool js_charge(struct js *s)
{
	if (s->out.len > s->r.lim.memory_budget) {
		if (!s->r.failed)
			rd_fail(&s->r, 413, "too-costly", "the document exceeds the memory budget for one request");
		s->r.status = 413;
		return false;
	}
	return true;
}

/* The JSON text of a primitive value, checked against its type's JSON kind. */
static bool js_value(struct js *s, const struct model_type *t, const char *v, size_t n, struct strbuf *out)
{
	switch (t->json) {
	case MODEL_JSON_BOOL:
		if (!(n == 4 && !memcmp(v, "true", 4)) && !(n == 5 && !memcmp(v, "false", 5))) {
			rd_fail(&s->r, 400, "value", "not a valid boolean: \"%.*s\"", (int)(n > 80 ? 80 : n), v);
			return false;
		}
		strbuf_add(out, v, n);
		return true;
	case MODEL_JSON_NUMBER:
		if (!fjson_valid_number(v, n)) {
			rd_fail(&s->r, 400, "value", "not a valid number: \"%.*s\"", (int)(n > 80 ? 80 : n), v);
			return false;
		}
		strbuf_add(out, v, n);
		return true;
	default:
		js_str(out, v, n);
		return true;
	}
}

static void js_on_start(void *vctx, const xmlChar *local, const xmlChar *prefix, const xmlChar *uri, int nns,
			const xmlChar **ns, int nattr, int ndefaulted, const xmlChar **attrs)
{
	(void)ndefaulted;
	xmlParserCtxtPtr ctxt = vctx;
	struct js *s = ctxt->_private;
	if (s->r.failed)
		return;
	const char *name = (const char *)local;
	if (s->div.depth) {
		if (!div_nested(&s->r, &s->div, local, prefix, nns, ns, nattr, attrs))
			return js_fail(s);
		return;
	}
	struct js_frame *p = js_top(s);
	if (!p || p->kind == FR_HOLDER) {
		bool taken = p ? p->has_resource : s->finished;
		const struct model_type *t = resource_start(&s->r, name, uri, taken, nattr, attrs);
		if (!t)
			return js_fail(s);
		size_t mark = p ? s->r.loc.n : fhir_xml_loc_push(&s->r.loc, name, -1);
		struct strbuf *out = p ? p->out : &s->out;
		if (p)
			p->has_resource = true;
		struct js_frame *f = js_push(s, FR_RESOURCE, t, out);
		if (!f)
			return js_fail(s);
		f->path_mark = mark;
		strbuf_add(out, "{\"resourceType\":", 16);
		js_str(out, t->name, strlen(t->name));
		f->wrote = true;
		return;
	}
	const struct model_type *ct = NULL;
	bool xhtml = false;
	size_t mark = 0;
	const struct model_elem *e =
		child_start(&s->r, p->t, p->kind == FR_PRIMITIVE, name, uri, &p->members, &ct, &xhtml, &mark);
	if (!e)
		return js_fail(s);
	bool array = e->max != 1;
	if (p->has_cur && p->cur.e == e && strcmp(p->cur.name, name) != 0) {
		rd_fail(&s->r, 400, "structure", "%s[x] is given as both %s and %s", e->name, p->cur.name, name);
		return js_fail(s);
	}
	if (!(p->has_cur && p->cur.e == e)) {
		js_close_member(p);
		for (size_t i = 0; i < p->ndone; i++) {
			if (p->done[i] == e) {
				rd_fail(&s->r, 400, "structure",
					"element \"%s\" comes again after other elements (FHIR XML keeps the model's order)",
					name);
				return js_fail(s);
			}
		}
		struct js_member *m = &p->cur;
		m->vals.len = m->unders.len = 0;
		m->count = 0;
		m->any_val = m->any_under = false;
		m->e = e;
		size_t nl = strlen(name);
		if (nl >= sizeof m->name)
			nl = sizeof m->name - 1;
		memcpy(m->name, name, nl);
		m->name[nl] = '\0';
		m->array = array;
		m->primitive = ct->kind == MODEL_PRIMITIVE;
		p->has_cur = true;
		if (!m->primitive) {
			js_key(p, p->out, name, false);
			if (array)
				strbuf_addc(p->out, '[');
		}
	} else if (!array) {
		rd_fail(&s->r, 400, "structure", "element \"%s\" repeats but allows one value", name);
		return js_fail(s);
	}
	struct js_member *m = &p->cur;
	if (array && m->count >= s->r.lim.max_array_items) {
		rd_fail(&s->r, 400, "too-costly", "more than %zu repetitions of one element", s->r.lim.max_array_items);
		return js_fail(s);
	}
	fhir_xml_loc_index(&s->r.loc, mark, array ? (long)m->count : -1);
	if (xhtml) {
		s->div_mark = mark;
		div_begin(&s->div, local, prefix, nns, ns, nattr, attrs);
		return;
	}
	enum frame_kind kind = m->primitive ? FR_PRIMITIVE : ct == type_resource ? FR_HOLDER : FR_OBJECT;
	if (!m->primitive && array && m->count > 0)
		strbuf_addc(p->out, ',');
	struct js_frame *f = js_push(s, kind, ct, p->out);
	if (!f)
		return js_fail(s);
	f->path_mark = mark;
	if (kind == FR_OBJECT)
		strbuf_addc(f->out, '{');
	if (kind == FR_PRIMITIVE && m->count > 0) { /* the value goes straight to the member's list */
		strbuf_addc(&m->vals, ',');
		strbuf_addc(&m->unders, ',');
	}
	for (int i = 0; i < nattr; i++) {
		const xmlChar **a = attrs + 5 * i;
		const char *an = (const char *)a[0];
		int is_value = attr_start(&s->r, kind, ct, a);
		if (is_value < 0)
			return js_fail(s);
		/* the value as SAX2 hands it over; only '&' needs decoding (see attr_value) */
		size_t vl = (size_t)(a[4] - a[3]);
		const char *v = (const char *)a[3];
		char sb[512], *copy = NULL;
		if (memchr(v, '&', vl)) {
			copy = attr_value(a[3], a[4], sb, sizeof sb);
			if (!copy) {
				rd_fail(&s->r, 500, "exception", "out of memory");
				return js_fail(s);
			}
			v = copy;
			vl = strlen(copy);
		}
		bool ok;
		if (is_value) {
			ok = js_value(s, ct, v, vl, &m->vals);
			f->has_value = ok;
		} else {
			js_key(f, f->out, an, false);
			js_str(f->out, v, vl);
			ok = true;
		}
		if (copy && copy != sb)
			free(copy);
		if (!ok)
			return js_fail(s);
	}
	if (!js_charge(s))
		return js_fail(s);
}

static void js_on_end(void *vctx, const xmlChar *local, const xmlChar *prefix, const xmlChar *uri)
{
	(void)uri;
	xmlParserCtxtPtr ctxt = vctx;
	struct js *s = ctxt->_private;
	if (s->r.failed)
		return;
	if (s->div.depth) {
		div_end_tag(&s->div, local, prefix);
		if (--s->div.depth > 0)
			return;
		struct js_frame *p = js_top(s);
		if (s->div.buf.oom || !p) {
			rd_fail(&s->r, 500, "exception", "out of memory");
			return js_fail(s);
		}
		js_str(&p->cur.vals, s->div.buf.buf ? s->div.buf.buf : "", s->div.buf.len);
		p->cur.any_val = true;
		p->cur.count = 1;
		fhir_xml_loc_pop(&s->r.loc, s->div_mark);
		return;
	}
	struct js_frame *f = js_top(s);
	if (!f)
		return;
	s->depth--;
	js_close_member(f);
	bool ok = true;
	struct js_frame *p = js_top(s);
	switch (f->kind) {
	case FR_RESOURCE:
		strbuf_addc(f->out, '}');
		if (!p)
			s->finished = true;
		break;
	case FR_OBJECT:
		if (!f->wrote) {
			rd_fail(&s->r, 400, "required", "element is empty");
			ok = false;
		}
		strbuf_addc(f->out, '}');
		break;
	case FR_HOLDER:
		if (!f->has_resource) {
			rd_fail(&s->r, 400, "required", "the element holds no resource");
			ok = false;
		}
		break;
	case FR_PRIMITIVE: {
		bool under = f->own.len > 0;
		if (!f->has_value && !under) {
			rd_fail(&s->r, 400, "required", "element has neither a value nor extensions");
			ok = false;
			break;
		}
		struct js_member *m = &p->cur; /* the value is there already (js_on_start) */
		if (f->has_value)
			m->any_val = true;
		else
			strbuf_add(&m->vals, "null", 4);
		if (under) {
			strbuf_addc(&m->unders, '{');
			strbuf_add(&m->unders, f->own.buf, f->own.len);
			strbuf_addc(&m->unders, '}');
			m->any_under = true;
		} else {
			strbuf_add(&m->unders, "null", 4);
		}
		break;
	}
	}
	fhir_xml_loc_pop(&s->r.loc, f->path_mark);
	if (!ok)
		return js_fail(s);
	if (p && p->kind != FR_HOLDER)
		p->cur.count++;
	if (!js_charge(s))
		return js_fail(s);
}

static void js_on_chars(void *vctx, const xmlChar *ch, int len)
{
	xmlParserCtxtPtr ctxt = vctx;
	struct js *s = ctxt->_private;
	text_event(&s->r, &s->div, ctxt, ch, len);
}

static void js_on_comment(void *vctx, const xmlChar *text)
{
	xmlParserCtxtPtr ctxt = vctx;
	struct js *s = ctxt->_private;
	if (s->div.depth && !s->r.failed)
		div_comment(&s->div, text);
}

char *fhir_xml_to_json_text(const char *buf, size_t len, const struct fjson_limits *lim, size_t *out_len,
			    struct outcome *oo, int *status)
{
	struct js s;
	memset(&s, 0, sizeof s);
	rd_init(&s.r, oo, lim);
	xmlSAXHandler h;
	memset(&h, 0, sizeof h);
	h.startElementNs = js_on_start;
	h.endElementNs = js_on_end;
	h.characters = js_on_chars;
	h.ignorableWhitespace = js_on_chars;
	h.comment = js_on_comment;
	sax_parse(&s.r, &s, &s.ctxt, &h, buf, len, &s.finished);
	if (!s.r.failed && s.out.oom) {
		s.r.failed = true;
		s.r.status = 500;
		outcome_add(oo, OUTCOME_ERROR, "exception", NULL, "out of memory");
	}
	for (size_t i = 0; i < s.cap; i++) {
		if (!s.frames[i])
			continue;
		strbuf_release(&s.frames[i]->own);
		strbuf_release(&s.frames[i]->cur.vals);
		strbuf_release(&s.frames[i]->cur.unders);
		free(s.frames[i]);
	}
	free(s.frames);
	strbuf_release(&s.div.buf);
	if (s.r.failed) {
		strbuf_release(&s.out);
		if (status)
			*status = s.r.status;
		return NULL;
	}
	return strbuf_take(&s.out, out_len);
}

/* ------------------------------------------------------------ narrative */

/* The allow-list itself is narrative.c's (txt-1); this walks a parsed div
 * through it. */

/* One attribute of an allowed element, against the allow-list (narrative.h). */
static bool div_attr_ok(const char *elem, const xmlAttr *a, char *why, size_t wl)
{
	const char *name = (const char *)a->name;
	bool xml_lang = a->ns && a->ns->prefix && !strcmp((const char *)a->ns->prefix, "xml") && !strcmp(name, "lang");
	if (xml_lang)
		return true;
	if (a->ns) {
		snprintf(why, wl, "txt-1: the attribute %s:%.40s is not allowed on <%s> in the narrative",
			 a->ns->prefix ? (const char *)a->ns->prefix : "", name, elem);
		return false;
	}
	xmlChar *v = xmlNodeListGetString(a->doc, a->children, 1);
	bool ok = narrative_attr_ok(elem, name, v ? (const char *)v : "", why, wl);
	xmlFree(v);
	return ok;
}

static bool div_node_ok(const xmlNode *n, size_t depth, bool *content, char *why, size_t wl)
{
	for (; n; n = n->next) {
		if (n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE) {
			for (const char *t = (const char *)n->content; t && *t && !*content; t++)
				if (*t != ' ' && *t != '\t' && *t != '\n' && *t != '\r')
					*content = true;
			continue;
		}
		if (n->type == XML_COMMENT_NODE)
			continue;
		if (n->type != XML_ELEMENT_NODE) {
			snprintf(why, wl, "txt-1: only elements, text and comments are allowed in the narrative");
			return false;
		}
		const char *name = (const char *)n->name;
		if (!is_xhtml_ns(n) || !narrative_element_ok(name)) {
			snprintf(why, wl, "txt-1: the element <%.40s> is not allowed in the narrative (only basic XHTML)",
				 name);
			return false;
		}
		if (depth > 200) {
			snprintf(why, wl, "the narrative is nested too deep");
			return false;
		}
		if (!strcmp(name, "img"))
			*content = true;
		for (const xmlAttr *a = n->properties; a; a = a->next)
			if (!div_attr_ok(name, a, why, wl))
				return false;
		if (!div_node_ok(n->children, depth + 1, content, why, wl))
			return false;
	}
	return true;
}

bool fhir_xml_check_div(const char *s, size_t len, char *why, size_t wl)
{
	char msg[300];
	xmlDocPtr doc = safe_parse(s, len, msg, sizeof msg);
	if (!doc) {
		snprintf(why, wl, "the narrative must be a well-formed <div> in the XHTML namespace: %s", msg);
		return false;
	}
	xmlNode *root = xmlDocGetRootElement(doc);
	bool ok = root && !strcmp((const char *)root->name, "div") && is_xhtml_ns(root);
	if (!ok)
		snprintf(why, wl, "the narrative must be a well-formed <div> in the XHTML namespace");
	bool content = false;
	if (ok)
		ok = div_node_ok(root, 0, &content, why, wl);
	if (ok && !content) {
		ok = false;
		snprintf(why, wl, "txt-2: the narrative must have some non-whitespace content");
	}
	xmlFreeDoc(doc);
	return ok;
}

bool fhir_xml_valid_div(const char *s, size_t len)
{
	return fhir_xml_div_plain(s, len) || fhir_xml_div_parsed_ok(s, len);
}

bool fhir_xml_div_parsed_ok(const char *s, size_t len)
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
			fhir_xml_esc(b, t, true);
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
				fhir_xml_esc(b, as[i].value ? (const char *)as[i].value : "", true);
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

/* ------------------------------------------------------------ files */

struct fhir_xml_file {
	xmlParserInputBufferPtr in;
};

struct fhir_xml_file *fhir_xml_file_open(const char *path, char *why, size_t wl)
{
	struct stat sb;
	if (strstr(path, "://")) {
		snprintf(why, wl, "%s: not a local file", path);
		return NULL;
	}
	if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		snprintf(why, wl, "%s: not a regular file", path);
		return NULL;
	}
	if (!fhir_xml_init()) {
		snprintf(why, wl,
			 "%s: cannot be read: the XML library (" CW_LIBXML2_SONAME ") that gunzips it cannot be loaded",
			 path);
		return NULL;
	}
	struct fhir_xml_file *f = calloc(1, sizeof *f);
	if (!f) {
		snprintf(why, wl, "out of memory");
		return NULL;
	}
	/* no encoding: the bytes as they are, gunzipped when gzip */
	f->in = xmlParserInputBufferCreateFilename(path, XML_CHAR_ENCODING_NONE);
	if (!f->in || !f->in->readcallback) {
		snprintf(why, wl, "%s: cannot be opened", path);
		fhir_xml_file_close(f);
		return NULL;
	}
	return f;
}

long fhir_xml_file_read(void *file, void *buf, size_t n)
{
	struct fhir_xml_file *f = file;
	int want = n > INT_MAX ? INT_MAX : (int)n;
	int r = f->in->readcallback(f->in->context, buf, want);
	return r < 0 ? -1 : (long)r;
}

void fhir_xml_file_close(struct fhir_xml_file *f)
{
	if (!f)
		return;
	if (f->in)
		xmlFreeParserInputBuffer(f->in);
	free(f);
}
