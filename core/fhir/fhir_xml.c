#include "fhir/fhir_xml.h"

#include <limits.h>
#include <stddef.h>
#include <stdarg.h>
#include <math.h>
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
	xmlInitParser();
	xmlSetExternalEntityLoader(no_external);
	type_xhtml = model_type("xhtml");
	type_resource = model_type("Resource");
}

void fhir_xml_init(void) { pthread_once(&init_once, init_libxml); }

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
	fhir_xml_init();
	const char *early = early_refusal(buf, len);
	if (early) {
		snprintf(msg, msglen, "%s", early);
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

static void esc(struct strbuf *b, const char *s, bool attr);
static void esc_n(struct strbuf *b, const char *s, size_t n, bool attr)
{
	char tmp[512];
	while (n > 0) {
		size_t k = n < sizeof tmp - 1 ? n : sizeof tmp - 1;
		memcpy(tmp, s, k);
		tmp[k] = '\0';
		esc(b, tmp, attr);
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
		esc(b, uri ? (const char *)uri : "", true);
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
		esc(b, v, true);
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
 * NULL when unknown, in the wrong namespace, or one child too many. */
static const struct model_elem *child_start(struct rd *r, const struct model_type *t, bool in_primitive,
					    const char *name, const xmlChar *uri, size_t *members,
					    const struct model_type **ct, bool *xhtml, size_t *mark)
{
	if (in_primitive && strcmp(name, "extension") != 0) {
		size_t mk = path_push(&r->path, name, -1);
		rd_fail(r, 400, "structure", "unknown element \"%s\"", name);
		path_pop(&r->path, mk);
		return NULL;
	}
	const struct model_elem *e = model_find_elem(t, name, strlen(name), ct);
	*mark = path_push(&r->path, name, -1);
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
		const struct model_elem *ae = kind == FR_HOLDER ? NULL : model_find_elem(ct, an, strlen(an), NULL);
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
		size_t mark = p ? s->r.path.len : path_push(&s->r.path, name, -1);
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
	path_pop(&s->r.path, mark);
	mark = path_push(&s->r.path, name, array ? (long)sl->count : -1);
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
		path_pop(&s->r.path, s->div_mark);
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
	path_pop(&s->r.path, f->path_mark);
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
	fhir_xml_init();
	struct guard *g = state;
	const char *early = early_refusal(buf, len);
	if (early) {
		r->failed = true;
		r->status = 400;
		outcome_add(r->oo, OUTCOME_ERROR, "invalid", NULL, "%s", early);
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
	struct strbuf value;     /* primitives: the value's JSON text */
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

static void js_str(struct strbuf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	strbuf_addc(b, '"');
	const char *run = s;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c != '"' && c != '\\')
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
	f->own.len = f->value.len = f->cur.vals.len = f->cur.unders.len = 0;
	f->own.oom = f->value.oom = f->cur.vals.oom = f->cur.unders.oom = false;
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
		size_t mark = p ? s->r.path.len : path_push(&s->r.path, name, -1);
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
	path_pop(&s->r.path, mark);
	mark = path_push(&s->r.path, name, array ? (long)m->count : -1);
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
			ok = js_value(s, ct, v, vl, &f->value);
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
		path_pop(&s->r.path, s->div_mark);
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
		struct js_member *m = &p->cur;
		if (m->count > 0) {
			strbuf_addc(&m->vals, ',');
			strbuf_addc(&m->unders, ',');
		}
		if (f->has_value) {
			strbuf_add(&m->vals, f->value.buf, f->value.len);
			m->any_val = true;
		} else {
			strbuf_add(&m->vals, "null", 4);
		}
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
	path_pop(&s->r.path, f->path_mark);
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
		strbuf_release(&s.frames[i]->value);
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
	fhir_xml_init();
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
