/* fhir_xml_write — JSON → FHIR XML (fhir_json_to_xml in fhir/fhir_xml.h),
 * driven by the model, and the text helpers the XML reader shares with it
 * (fhir_xml_int.h). No libxml2 here: a narrative div is checked through
 * fhir_xml_valid_div. */
#include "fhir/fhir_xml_int.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fhir/model.h"

/* ------------------------------------------------------------ path */

size_t fhir_xml_path_push(struct fhir_xml_path *p, const char *seg, long index)
{
	size_t mark = p->len, n = strbuf_path_into(p->buf, sizeof p->buf, mark, seg, index);
	if (n == (size_t)-1)
		p->truncated = true;
	else
		p->len = n;
	return mark;
}

void fhir_xml_path_pop(struct fhir_xml_path *p, size_t mark)
{
	p->len = mark;
	p->buf[mark] = '\0';
}

void fhir_xml_path_index(struct fhir_xml_path *p, size_t mark, long index)
{
	if (p->len == mark || index < 0)
		return; /* the segment did not fit: nothing to add to */
	char rev[24];
	size_t nl = 0;
	unsigned long v = (unsigned long)index;
	do {
		rev[nl++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	if (nl + 2 >= sizeof p->buf - p->len) {
		p->truncated = true;
		fhir_xml_path_pop(p, mark);
		return;
	}
	char *w = p->buf + p->len;
	*w++ = '[';
	while (nl)
		*w++ = rev[--nl];
	*w++ = ']';
	*w = '\0';
	p->len = (size_t)(w - p->buf);
}

const char *fhir_xml_loc_spell(const struct fhir_xml_loc *l, struct fhir_xml_path *p)
{
	p->len = 0;
	p->truncated = false;
	p->buf[0] = '\0';
	for (size_t i = 0; i < l->n; i++) {
		size_t mark = fhir_xml_path_push(p, l->seg[i].name, -1);
		fhir_xml_path_index(p, mark, l->seg[i].index);
	}
	return p->len ? p->buf : NULL;
}

/* ------------------------------------------------------------ JSON → XML */

/* The location being written (a level past 1000 is refused). */
struct wr {
	struct strbuf b;
	struct outcome *oo;
	struct fhir_xml_loc loc;
	bool pretty;
	bool failed;
	int status;
};

/* Adds a segment (name must outlive it); returns the mark wr_pop goes back to. */
static size_t wr_push(struct wr *w, const char *name, long index) { return fhir_xml_loc_push(&w->loc, name, index); }

static void wr_pop(struct wr *w, size_t mark) { fhir_xml_loc_pop(&w->loc, mark); }

static void wr_fail(struct wr *w, const char *code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void wr_fail(struct wr *w, const char *code, const char *fmt, ...)
{
	w->failed = true;
	char msg[300];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	struct fhir_xml_path path;
	outcome_add(w->oo, OUTCOME_ERROR, code, fhir_xml_loc_spell(&w->loc, &path), "%s", msg);
}

static void indent(struct wr *w, size_t level)
{
	if (!w->pretty)
		return;
	strbuf_addc(&w->b, '\n');
	for (size_t i = 0; i < level; i++)
		strbuf_add(&w->b, "  ", 2);
}

/* Bytes fhir_xml_esc looks at: 1 always escaped or checked, 2 escaped in attributes
 * only, 3 a control character XML cannot carry; 0 copied as they are. */
static const unsigned char esc_class[256] = {
	[0x01] = 3, [0x02] = 3, [0x03] = 3, [0x04] = 3, [0x05] = 3, [0x06] = 3, [0x07] = 3, [0x08] = 3, ['\t'] = 2,
	['\n'] = 2, [0x0B] = 3, [0x0C] = 3, ['\r'] = 1, [0x0E] = 3, [0x0F] = 3, [0x10] = 3, [0x11] = 3, [0x12] = 3,
	[0x13] = 3, [0x14] = 3, [0x15] = 3, [0x16] = 3, [0x17] = 3, [0x18] = 3, [0x19] = 3, [0x1A] = 3, [0x1B] = 3,
	[0x1C] = 3, [0x1D] = 3, [0x1E] = 3, [0x1F] = 3, ['"'] = 2,  ['&'] = 1,  ['<'] = 1,  ['>'] = 1,  [0xEF] = 1,
};

bool fhir_xml_esc(struct strbuf *b, const char *s, bool attr)
{
	const unsigned char *p = (const unsigned char *)s, *run = p;
	bool ok = true;
	for (;; p++) {
		unsigned char cls = esc_class[*p];
		if (!cls) {
			if (!*p)
				break;
			continue;
		}
		const char *rep = NULL;
		switch (*p) {
		case '&':
			rep = "&amp;";
			break;
		case '<':
			rep = "&lt;";
			break;
		case '>':
			rep = "&gt;";
			break;
		case '"':
			rep = attr ? "&quot;" : NULL;
			break;
		case '\n':
			rep = attr ? "&#10;" : NULL;
			break;
		case '\r':
			rep = "&#13;";
			break;
		case '\t':
			rep = attr ? "&#9;" : NULL;
			break;
		case 0xEF:
			if (p[1] == 0xBF && (p[2] == 0xBE || p[2] == 0xBF))
				ok = false;
			break;
		default:
			ok = false;
			break;
		}
		if (rep) {
			strbuf_add(b, (const char *)run, (size_t)(p - run));
			strbuf_adds(b, rep);
			run = p + 1;
		}
	}
	strbuf_add(b, (const char *)run, (size_t)(p - run));
	return ok;
}

static void attr(struct wr *w, const char *name, const char *value)
{
	strbuf_addc(&w->b, ' ');
	strbuf_adds(&w->b, name);
	strbuf_add(&w->b, "=\"", 2);
	if (!fhir_xml_esc(&w->b, value, true)) {
		wr_fail(w, "value", "the value holds a control character that XML cannot carry");
		return;
	}
	strbuf_addc(&w->b, '"');
}

/* A JSON member mapped onto the model: element, chosen type, value, "_name". */
struct mem {
	const struct model_elem *e;
	const struct model_type *t;
	const cJSON *val, *under;
	const char *name; /* the element's name, or for a choice buf */
	char buf[72];
};

/* Into model order (the elements' order in the model table); members come
 * mostly in that order already, and are few: an insertion sort. */
static void sort_mems(struct mem *m, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		if (m[i - 1].e < m[i].e)
			continue;
		struct mem t = m[i];
		size_t j = i;
		for (; j > 0 && m[j - 1].e > t.e; j--)
			m[j] = m[j - 1];
		m[j] = t;
	}
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
		/* only Element.id and Extension.url are attributes: other
		 * names need no look-up here */
		bool maybe = !strcmp(m->string, "id") || !strcmp(m->string, "url");
		const struct model_elem *e = maybe ? model_find_elem(t, m->string, strlen(m->string), NULL) : NULL;
		if (e && (e->flags & MODEL_F_ATTR)) {
			if (!cJSON_IsString(m)) {
				size_t mk = wr_push(w, m->string, -1);
				wr_fail(w, "value", "expected a JSON string");
				wr_pop(w, mk);
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
	size_t mark = wr_push(w, m->name, -1);
	if (!array) {
		if (cJSON_IsArray(v) || cJSON_IsArray(u))
			wr_fail(w, "structure", "the element allows one value, not an array");
		else if (cJSON_IsNull(v))
			wr_fail(w, "structure", "null is not a value");
		else
			wr_value(w, m, v, u, level);
		wr_pop(w, mark);
		return;
	}
	if ((v && !cJSON_IsArray(v)) || (u && !cJSON_IsArray(u))) {
		wr_fail(w, "structure", "the element repeats: expected an array");
		wr_pop(w, mark);
		return;
	}
	int nv = v ? cJSON_GetArraySize(v) : 0, nu = u ? cJSON_GetArraySize(u) : 0;
	if (v && u && nv != nu) {
		wr_fail(w, "structure", "the value array and its \"_\" array differ in length");
		wr_pop(w, mark);
		return;
	}
	if ((v && nv == 0) || (u && nu == 0)) {
		wr_fail(w, "structure", "an array must not be empty");
		wr_pop(w, mark);
		return;
	}
	wr_pop(w, mark);
	const cJSON *vi = v ? v->child : NULL, *ui = u ? u->child : NULL;
	for (long i = 0; (vi || ui) && !w->failed; i++) {
		size_t mk = wr_push(w, m->name, i);
		if (vi && cJSON_IsNull(vi) && m->t->kind != MODEL_PRIMITIVE)
			wr_fail(w, "structure", "null is not a value");
		else
			wr_value(w, m, vi && !cJSON_IsNull(vi) ? vi : NULL, ui && !cJSON_IsNull(ui) ? ui : NULL, level);
		wr_pop(w, mk);
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
	struct mem stack[32];
	struct mem *mems = n <= 32 ? stack : calloc(n, sizeof *mems);
	if (mems == stack)
		memset(stack, 0, n * sizeof *stack);
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
			size_t mk = wr_push(w, name, -1);
			wr_fail(w, "structure", "unknown element \"%s\"", name);
			wr_pop(w, mk);
			break;
		}
		if (e->flags & MODEL_F_ATTR) {
			if (under) {
				size_t mk = wr_push(w, name, -1);
				wr_fail(w, "structure", "unknown element \"%s\"", name);
				wr_pop(w, mk);
			}
			continue; /* written as an attribute by the caller */
		}
		struct mem *slot = NULL;
		for (size_t i = 0; i < k; i++)
			if (mems[i].e == e)
				slot = &mems[i];
		if (slot && slot->t != ct) {
			size_t mk = wr_push(w, name, -1);
			wr_fail(w, "structure", "more than one type given for the choice element \"%s[x]\"", e->name);
			wr_pop(w, mk);
			break;
		}
		if (!slot) {
			slot = &mems[k++];
			slot->e = e;
			slot->t = ct;
			if (e->flags & MODEL_F_CHOICE)
				model_elem_json_name(e, ct, slot->buf, sizeof slot->buf);
			else
				slot->name = e->name;
		}
		if (under)
			slot->under = m;
		else
			slot->val = m;
	}
	if (!w->failed)
		sort_mems(mems, k);
	for (size_t i = 0; i < k; i++)
		if (mems[i].e->flags & MODEL_F_CHOICE)
			mems[i].name = mems[i].buf; /* where it is after sorting */
	for (size_t i = 0; i < k && !w->failed; i++)
		wr_member(w, &mems[i], level);
	if (mems != stack)
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
	size_t mark = top ? wr_push(w, rt->valuestring, -1) : w->loc.n;
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
	wr_pop(w, mark);
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
