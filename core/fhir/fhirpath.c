/* fhirpath — parser, compiled-expression cache, evaluator core and FHIR node
 * navigation (see fhirpath.h; the function library is in fhirpath_fn.c). */
#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/fjson.h"
#include "fhir/fhirpath_int.h"

/* --- lexer ------------------------------------------------------------------ */

enum tok {
	T_EOF,
	T_IDENT,  /* identifier or keyword */
	T_QIDENT, /* `delimited` */
	T_STRING,
	T_NUMBER,
	T_DATE,    /* @… */
	T_VAR,     /* %name */
	T_SPECIAL, /* $this $index $total */
	T_PUNCT
};

struct parser {
	struct arena *a;
	const char *s;
	size_t len, pos;
	/* current token */
	enum tok t;
	size_t tpos, tlen; /* raw span */
	char *text;        /* decoded text for strings, identifiers, variables */
	size_t textlen;
	char punct[3];
	int depth;
	struct fp_error *err;
	jmp_buf jb;
};

static _Noreturn void perr(struct parser *p, enum fp_errcode code, size_t pos, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static _Noreturn void perr(struct parser *p, enum fp_errcode code, size_t pos, const char *fmt, ...)
{
	if (p->err) {
		p->err->code = code;
		p->err->offset = pos;
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(p->err->message, sizeof p->err->message, fmt, ap);
		va_end(ap);
	}
	longjmp(p->jb, 1);
}

static void *palloc(struct parser *p, size_t n)
{
	void *r = arena_alloc(p->a, n);
	if (!r)
		perr(p, FP_ERR_NOMEM, p->pos, "out of memory");
	return r;
}

static void skip_ws(struct parser *p)
{
	for (;;) {
		while (p->pos < p->len && isspace((unsigned char)p->s[p->pos]))
			p->pos++;
		if (p->pos + 1 < p->len && p->s[p->pos] == '/' && p->s[p->pos + 1] == '/') {
			while (p->pos < p->len && p->s[p->pos] != '\n')
				p->pos++;
		} else if (p->pos + 1 < p->len && p->s[p->pos] == '/' && p->s[p->pos + 1] == '*') {
			size_t start = p->pos;
			p->pos += 2;
			while (p->pos + 1 < p->len && !(p->s[p->pos] == '*' && p->s[p->pos + 1] == '/'))
				p->pos++;
			if (p->pos + 1 >= p->len)
				perr(p, FP_ERR_SYNTAX, start, "unterminated comment");
			p->pos += 2;
		} else {
			return;
		}
	}
}

static size_t put_utf8(char *o, unsigned cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xC0 | (cp >> 6));
		o[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	o[0] = (char)(0xE0 | (cp >> 12));
	o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
	o[2] = (char)(0x80 | (cp & 0x3F));
	return 3;
}

/* Reads a quoted text (' or `) at p->pos, decoding escapes. */
static void lex_quoted(struct parser *p, char q)
{
	size_t start = p->pos++;
	char *o = palloc(p, p->len - start + 1);
	size_t n = 0;
	for (;;) {
		if (p->pos >= p->len)
			perr(p, FP_ERR_SYNTAX, start, "unterminated %s", q == '`' ? "identifier" : "string");
		char ch = p->s[p->pos++];
		if (ch == q)
			break;
		if (ch != '\\') {
			o[n++] = ch;
			continue;
		}
		if (p->pos >= p->len)
			perr(p, FP_ERR_SYNTAX, start, "unterminated string");
		ch = p->s[p->pos++];
		switch (ch) {
		case '\'':
		case '"':
		case '`':
		case '\\':
		case '/':
			o[n++] = ch;
			break;
		case 'f':
			o[n++] = '\f';
			break;
		case 'n':
			o[n++] = '\n';
			break;
		case 'r':
			o[n++] = '\r';
			break;
		case 't':
			o[n++] = '\t';
			break;
		case 'u': {
			unsigned cp = 0;
			for (int k = 0; k < 4; k++) {
				char h = p->pos < p->len ? p->s[p->pos++] : 0;
				if (!isxdigit((unsigned char)h))
					perr(p, FP_ERR_SYNTAX, p->pos, "bad \\u escape");
				cp = cp * 16 +
				     (unsigned)(isdigit((unsigned char)h) ? h - '0' : (tolower(h) - 'a' + 10));
			}
			n += put_utf8(o + n, cp);
			break;
		}
		default:
			perr(p, FP_ERR_SYNTAX, p->pos - 2, "bad escape \\%c", ch);
		}
	}
	o[n] = '\0';
	p->text = o;
	p->textlen = n;
}

static bool is_id_start(char ch) { return isalpha((unsigned char)ch) || ch == '_'; }
static bool is_id_char(char ch) { return isalnum((unsigned char)ch) || ch == '_'; }

static void next(struct parser *p)
{
	skip_ws(p);
	p->tpos = p->pos;
	p->text = NULL;
	if (p->pos >= p->len) {
		p->t = T_EOF;
		p->tlen = 0;
		return;
	}
	char ch = p->s[p->pos];
	if (is_id_start(ch)) {
		while (p->pos < p->len && is_id_char(p->s[p->pos]))
			p->pos++;
		p->t = T_IDENT;
		p->text = (char *)p->s + p->tpos;
		p->textlen = p->pos - p->tpos;
	} else if (ch == '`') {
		lex_quoted(p, '`');
		p->t = T_QIDENT;
	} else if (ch == '\'') {
		lex_quoted(p, '\'');
		p->t = T_STRING;
	} else if (isdigit((unsigned char)ch)) {
		while (p->pos < p->len && isdigit((unsigned char)p->s[p->pos]))
			p->pos++;
		if (p->pos + 1 < p->len && p->s[p->pos] == '.' && isdigit((unsigned char)p->s[p->pos + 1])) {
			p->pos++;
			while (p->pos < p->len && isdigit((unsigned char)p->s[p->pos]))
				p->pos++;
		}
		p->t = T_NUMBER;
		p->text = (char *)p->s + p->tpos;
		p->textlen = p->pos - p->tpos;
	} else if (ch == '@') {
		p->pos++;
		while (p->pos < p->len &&
		       (isalnum((unsigned char)p->s[p->pos]) || strchr("-:+", p->s[p->pos]) != NULL ||
			(p->s[p->pos] == '.' && p->pos + 1 < p->len && isdigit((unsigned char)p->s[p->pos + 1]))))
			p->pos++;
		p->t = T_DATE;
		p->text = (char *)p->s + p->tpos + 1;
		p->textlen = p->pos - p->tpos - 1;
	} else if (ch == '%') {
		p->pos++;
		if (p->pos < p->len && (p->s[p->pos] == '`' || p->s[p->pos] == '\'' || p->s[p->pos] == '"')) {
			lex_quoted(p, p->s[p->pos]);
		} else {
			size_t st = p->pos;
			while (p->pos < p->len && is_id_char(p->s[p->pos]))
				p->pos++;
			if (p->pos == st)
				perr(p, FP_ERR_SYNTAX, p->tpos, "'%%' without a name");
			p->text = (char *)p->s + st;
			p->textlen = p->pos - st;
		}
		p->t = T_VAR;
	} else if (ch == '$') {
		p->pos++;
		size_t st = p->pos;
		while (p->pos < p->len && is_id_char(p->s[p->pos]))
			p->pos++;
		p->t = T_SPECIAL;
		p->text = (char *)p->s + st;
		p->textlen = p->pos - st;
	} else {
		static const char *const two[] = {"<=", ">=", "!=", "!~"};
		p->t = T_PUNCT;
		for (size_t k = 0; k < 4; k++) {
			if (p->pos + 1 < p->len && p->s[p->pos] == two[k][0] && p->s[p->pos + 1] == two[k][1]) {
				memcpy(p->punct, two[k], 3);
				p->pos += 2;
				p->tlen = 2;
				return;
			}
		}
		if (!strchr(".[](),+-*/|&=~<>{}", ch))
			perr(p, FP_ERR_SYNTAX, p->pos, "unexpected character '%c'", ch);
		p->punct[0] = ch;
		p->punct[1] = '\0';
		p->pos++;
	}
	p->tlen = p->pos - p->tpos;
}

static bool is_punct(struct parser *p, const char *s) { return p->t == T_PUNCT && !strcmp(p->punct, s); }
static bool is_word(struct parser *p, const char *w)
{
	return p->t == T_IDENT && p->textlen == strlen(w) && !memcmp(p->text, w, p->textlen);
}
static void expect(struct parser *p, const char *s)
{
	if (!is_punct(p, s))
		perr(p, FP_ERR_SYNTAX, p->tpos, "expected '%s'", s);
	next(p);
}

/* --- parser ------------------------------------------------------------------ */

static struct fp_node *mknode(struct parser *p, enum fp_nkind k, size_t pos)
{
	struct fp_node *n = palloc(p, sizeof *n);
	n->kind = (uint8_t)k;
	n->pos = pos;
	return n;
}

static struct fp_node *bin(struct parser *p, enum fp_op op, struct fp_node *l, struct fp_node *r, size_t pos)
{
	struct fp_node *n = mknode(p, N_BIN, pos);
	n->op = (uint8_t)op;
	n->nargs = 2;
	n->args = palloc(p, 2 * sizeof *n->args);
	n->args[0] = l;
	n->args[1] = r;
	return n;
}

static struct fp_node *expr(struct parser *p);

static void typespec(struct parser *p, struct fp_typespec *ts)
{
	if (p->t != T_IDENT && p->t != T_QIDENT)
		perr(p, FP_ERR_SYNTAX, p->tpos, "expected a type name");
	char *first = arena_strndup(p->a, p->text, p->textlen);
	next(p);
	if (is_punct(p, ".")) {
		next(p);
		if (p->t != T_IDENT && p->t != T_QIDENT)
			perr(p, FP_ERR_SYNTAX, p->tpos, "expected a type name");
		ts->ns = first;
		ts->name = arena_strndup(p->a, p->text, p->textlen);
		next(p);
	} else {
		ts->ns = NULL;
		ts->name = first;
	}
	if (!ts->name)
		perr(p, FP_ERR_NOMEM, p->tpos, "out of memory");
	ts->mt = (!ts->ns || !strcmp(ts->ns, "FHIR")) ? model_type(ts->name) : NULL;
	if (ts->ns && strcmp(ts->ns, "FHIR") && strcmp(ts->ns, "System"))
		perr(p, FP_ERR_SEMANTIC, p->tpos, "unknown type namespace %s", ts->ns);
}

static const char *const system_types[] = {"Boolean",  "Integer", "Decimal",  "String", "Date",
					   "DateTime", "Time",    "Quantity", "Any",    NULL};

static void check_type(struct parser *p, const struct fp_typespec *ts, size_t pos)
{
	if (ts->mt)
		return;
	if (ts->ns && !strcmp(ts->ns, "System"))
		return; /* an unknown System type matches nothing */
	if (!ts->ns)
		for (size_t k = 0; system_types[k]; k++)
			if (!strcmp(system_types[k], ts->name))
				return;
	perr(p, FP_ERR_SEMANTIC, pos, "unknown type %s%s%s", ts->ns ? ts->ns : "", ts->ns ? "." : "", ts->name);
}

static struct fp_node *invocation(struct parser *p, struct fp_node *left)
{
	size_t pos = p->tpos;
	if (p->t == T_SPECIAL) {
		struct fp_node *n;
		if (p->textlen == 4 && !memcmp(p->text, "this", 4))
			n = mknode(p, N_THIS, pos);
		else if (p->textlen == 5 && !memcmp(p->text, "index", 5))
			n = mknode(p, N_INDEXV, pos);
		else if (p->textlen == 5 && !memcmp(p->text, "total", 5))
			n = mknode(p, N_TOTAL, pos);
		else
			perr(p, FP_ERR_SYNTAX, pos, "unknown $%.*s", (int)p->textlen, p->text);
		if (left)
			perr(p, FP_ERR_SYNTAX, pos, "$%.*s after '.'", (int)p->textlen, p->text);
		next(p);
		return n;
	}
	if (p->t != T_IDENT && p->t != T_QIDENT)
		perr(p, FP_ERR_SYNTAX, pos, "expected a name");
	bool quoted = p->t == T_QIDENT;
	const char *name = p->text;
	size_t nl = p->textlen;
	next(p);
	if (!quoted && is_punct(p, "(")) {
		int fi = fp_fn_find(name, nl);
		if (fi < 0)
			perr(p, FP_ERR_SEMANTIC, pos, "unknown function %.*s()", (int)nl, name);
		const struct fp_fn *f = fp_fn_get(fi);
		struct fp_node *n = mknode(p, N_FUNC, pos);
		n->fn = (uint16_t)fi;
		n->left = left;
		n->name = f->name;
		n->namelen = strlen(f->name);
		next(p);
		struct fp_node *args[8];
		size_t na = 0;
		if (!is_punct(p, ")")) {
			for (;;) {
				if (na == 8)
					perr(p, FP_ERR_SYNTAX, p->tpos, "too many arguments");
				if (f->typearg && na == 0) {
					struct fp_node *t = mknode(p, N_LIT, p->tpos);
					size_t tp = p->tpos;
					typespec(p, &t->ts);
					check_type(p, &t->ts, tp);
					args[na++] = t;
				} else {
					args[na++] = expr(p);
				}
				if (is_punct(p, ","))
					next(p);
				else
					break;
			}
		}
		expect(p, ")");
		if (na < f->min || na > f->max)
			perr(p, FP_ERR_SEMANTIC, pos, "%s() takes %u to %u arguments, not %zu", f->name, f->min, f->max,
			     na);
		n->nargs = (uint16_t)na;
		n->args = palloc(p, (na ? na : 1) * sizeof *n->args);
		memcpy(n->args, args, na * sizeof *args);
		return n;
	}
	struct fp_node *n = mknode(p, N_MEMBER, pos);
	n->left = left;
	n->op = !left || (left->kind == N_MEMBER && left->op); /* a path of names: checked against the model */
	n->name = arena_strndup(p->a, name, nl);
	n->namelen = nl;
	if (!n->name)
		perr(p, FP_ERR_NOMEM, pos, "out of memory");
	return n;
}

static struct fp_node *literal_number(struct parser *p)
{
	size_t pos = p->tpos;
	struct fp_node *n = mknode(p, N_LIT, pos);
	n->nlit = 1;
	const char *s = p->text;
	size_t l = p->textlen;
	bool isdec = memchr(s, '.', l) != NULL;
	if (!isdec && l < 19) {
		n->lit.kind = FP_INTEGER;
		n->lit.u.i = strtoll(s, NULL, 10);
	} else {
		n->lit.kind = FP_DECIMAL;
		if (!fp_dec_parse(s, l, &n->lit.u.d))
			perr(p, FP_ERR_SYNTAX, pos, "number out of range");
	}
	next(p);
	/* a quantity: number followed by a unit string or a calendar word */
	if (p->t == T_STRING || (p->t == T_IDENT && fp_unit_calendar(p->text, p->textlen))) {
		struct fp_dec v = n->lit.kind == FP_INTEGER ? fp_dec_from_int(n->lit.u.i) : n->lit.u.d;
		n->lit.kind = FP_QUANTITY;
		n->lit.u.q.v = v;
		n->lit.u.q.unit = p->t == T_STRING ? p->text : fp_unit_calendar(p->text, p->textlen);
		next(p);
	}
	return n;
}

static struct fp_node *term(struct parser *p)
{
	size_t pos = p->tpos;
	struct fp_node *n;
	switch (p->t) {
	case T_NUMBER:
		return literal_number(p);
	case T_STRING:
		n = mknode(p, N_LIT, pos);
		n->nlit = 1;
		n->lit.kind = FP_STRING;
		n->lit.u.str.s = p->text;
		n->lit.u.str.len = p->textlen;
		next(p);
		return n;
	case T_DATE: {
		n = mknode(p, N_LIT, pos);
		n->nlit = 1;
		enum fp_kind k;
		if (!fp_dt_parse(p->text, p->textlen, &n->lit.u.dt, &k))
			perr(p, FP_ERR_SYNTAX, pos, "bad date/time literal @%.*s", (int)p->textlen, p->text);
		n->lit.kind = (uint8_t)k;
		next(p);
		return n;
	}
	case T_VAR:
		n = mknode(p, N_VAR, pos);
		n->name = arena_strndup(p->a, p->text, p->textlen);
		n->namelen = p->textlen;
		next(p);
		return n;
	case T_PUNCT:
		if (is_punct(p, "(")) {
			next(p);
			n = expr(p);
			expect(p, ")");
			return n;
		}
		if (is_punct(p, "{")) {
			next(p);
			expect(p, "}");
			n = mknode(p, N_LIT, pos);
			n->nlit = 0;
			return n;
		}
		perr(p, FP_ERR_SYNTAX, pos, "unexpected '%s'", p->punct);
	case T_IDENT:
		if (is_word(p, "true") || is_word(p, "false")) {
			n = mknode(p, N_LIT, pos);
			n->nlit = 1;
			n->lit.kind = FP_BOOLEAN;
			n->lit.u.b = is_word(p, "true");
			next(p);
			return n;
		}
		return invocation(p, NULL);
	case T_QIDENT:
	case T_SPECIAL:
		return invocation(p, NULL);
	case T_EOF:
	default:
		perr(p, FP_ERR_SYNTAX, pos, "unexpected end of expression");
	}
}

static struct fp_node *postfix(struct parser *p)
{
	struct fp_node *n = term(p);
	for (;;) {
		if (is_punct(p, ".")) {
			next(p);
			n = invocation(p, n);
		} else if (is_punct(p, "[")) {
			size_t pos = p->tpos;
			next(p);
			struct fp_node *ix = mknode(p, N_INDEXER, pos);
			ix->left = n;
			ix->nargs = 1;
			ix->args = palloc(p, sizeof *ix->args);
			ix->args[0] = expr(p);
			expect(p, "]");
			n = ix;
		} else {
			return n;
		}
	}
}

static struct fp_node *unary(struct parser *p)
{
	if (is_punct(p, "-") || is_punct(p, "+")) {
		size_t pos = p->tpos;
		bool neg = p->punct[0] == '-';
		next(p);
		if (++p->depth > FP_MAX_DEPTH)
			perr(p, FP_ERR_SYNTAX, pos, "expression nested too deep");
		struct fp_node *x = unary(p);
		p->depth--;
		if (!neg)
			return x;
		struct fp_node *n = mknode(p, N_NEG, pos);
		n->nargs = 1;
		n->args = palloc(p, sizeof *n->args);
		n->args[0] = x;
		return n;
	}
	return postfix(p);
}

/* Binary levels, loosest first. */
static const struct {
	const char *tok[4];
	enum fp_op op[4];
} levels[] = {
	{{"implies"}, {OP_IMPLIES}},
	{{"or", "xor"}, {OP_OR, OP_XOR}},
	{{"and"}, {OP_AND}},
	{{"in", "contains"}, {OP_IN, OP_CONTAINS}},
	{{"=", "~", "!=", "!~"}, {OP_EQ, OP_EQUIV, OP_NE, OP_NEQUIV}},
	{{"<", ">", "<=", ">="}, {OP_LT, OP_GT, OP_LE, OP_GE}},
	{{"|"}, {OP_UNION}},
	{{"is", "as"}, {0, 0}}, /* type level */
	{{"+", "-", "&"}, {OP_ADD, OP_SUB, OP_CONCAT}},
	{{"*", "/", "div", "mod"}, {OP_MUL, OP_DIV, OP_IDIV, OP_MOD}},
};
#define NLEVELS (sizeof levels / sizeof *levels)
#define TYPE_LEVEL 7

static int match_op(struct parser *p, size_t lv)
{
	for (int k = 0; k < 4 && levels[lv].tok[k]; k++) {
		const char *t = levels[lv].tok[k];
		if (isalpha((unsigned char)t[0]) ? is_word(p, t) : is_punct(p, t))
			return k;
	}
	return -1;
}

static struct fp_node *level(struct parser *p, size_t lv)
{
	if (lv == NLEVELS)
		return unary(p);
	if (++p->depth > FP_MAX_DEPTH)
		perr(p, FP_ERR_SYNTAX, p->tpos, "expression nested too deep");
	struct fp_node *l = level(p, lv + 1);
	int k;
	while ((k = match_op(p, lv)) >= 0) {
		size_t pos = p->tpos;
		next(p);
		if (lv == TYPE_LEVEL) {
			struct fp_node *n = mknode(p, k == 0 ? N_IS : N_AS, pos);
			n->nargs = 1;
			n->args = palloc(p, sizeof *n->args);
			n->args[0] = l;
			size_t tp = p->tpos;
			typespec(p, &n->ts);
			check_type(p, &n->ts, tp);
			l = n;
		} else {
			struct fp_node *r = level(p, lv + 1);
			l = bin(p, levels[lv].op[k], l, r, pos);
		}
	}
	p->depth--;
	return l;
}

static struct fp_node *expr(struct parser *p)
{
	if (++p->depth > FP_MAX_DEPTH)
		perr(p, FP_ERR_SYNTAX, p->tpos, "expression nested too deep");
	struct fp_node *n = level(p, 0);
	p->depth--;
	return n;
}

struct fp_expr *fp_compile(const char *src, size_t len, struct fp_error *err)
{
	if (err)
		memset(err, 0, sizeof *err);
	if (len > FP_MAX_EXPR) {
		if (err) {
			err->code = FP_ERR_LIMIT;
			snprintf(err->message, sizeof err->message, "expression longer than %d bytes", FP_MAX_EXPR);
		}
		return NULL;
	}
	struct fp_expr *volatile e = calloc(1, sizeof *e);
	if (!e) {
		if (err) {
			err->code = FP_ERR_NOMEM;
			snprintf(err->message, sizeof err->message, "out of memory");
		}
		return NULL;
	}
	arena_init(&e->arena, 0);
	struct parser *p = calloc(1, sizeof *p);
	if (!p) {
		free(e);
		return NULL;
	}
	p->a = &e->arena;
	p->err = err;
	if (setjmp(p->jb)) {
		free(p);
		fp_free(e);
		return NULL;
	}
	e->src = palloc(p, len + 1);
	memcpy(e->src, src, len);
	e->src[len] = '\0';
	p->s = e->src;
	p->len = len;
	next(p);
	e->root = expr(p);
	if (p->t != T_EOF)
		perr(p, FP_ERR_SYNTAX, p->tpos, "unexpected '%.*s'", (int)(p->tlen > 20 ? 20 : p->tlen),
		     p->s + p->tpos);
	free(p);
	return e;
}

void fp_free(struct fp_expr *e)
{
	if (!e)
		return;
	arena_release(&e->arena);
	free(e);
}

const char *fp_source(const struct fp_expr *e) { return e->src; }

/* --- cache --------------------------------------------------------------------- */

#define CACHE_SLOTS 16384 /* open addressing, at most half full */
static struct fp_expr *cache[CACHE_SLOTS];
static size_t cache_n;
static pthread_rwlock_t cache_lock = PTHREAD_RWLOCK_INITIALIZER;

static size_t hash_str(const char *s)
{
	size_t h = 1469598103934665603u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211u;
	return h;
}

static struct fp_expr *cache_find(const char *src, size_t h)
{
	for (size_t i = h % CACHE_SLOTS;; i = (i + 1) % CACHE_SLOTS) {
		if (!cache[i])
			return NULL;
		if (!strcmp(cache[i]->src, src))
			return cache[i];
	}
}

const struct fp_expr *fp_cached(const char *src, struct fp_error *err)
{
	size_t h = hash_str(src);
	pthread_rwlock_rdlock(&cache_lock);
	struct fp_expr *e = cache_find(src, h);
	pthread_rwlock_unlock(&cache_lock);
	if (e)
		return e;
	struct fp_expr *n = fp_compile(src, strlen(src), err);
	if (!n)
		return NULL;
	pthread_rwlock_wrlock(&cache_lock);
	e = cache_find(src, h);
	if (!e && cache_n < FP_CACHE_MAX) {
		size_t i = h % CACHE_SLOTS;
		while (cache[i])
			i = (i + 1) % CACHE_SLOTS;
		cache[i] = n;
		cache_n++;
		e = n;
		n = NULL;
	}
	pthread_rwlock_unlock(&cache_lock);
	fp_free(n);
	if (!e && err) {
		err->code = FP_ERR_LIMIT;
		snprintf(err->message, sizeof err->message, "more than %d cached expressions", FP_CACHE_MAX);
	}
	return e;
}

/* --- evaluation helpers ------------------------------------------------------ */

void fp_fail(struct fp_ctx *c, enum fp_errcode code, size_t pos, const char *fmt, ...)
{
	if (c->err) {
		c->err->code = code;
		c->err->offset = pos;
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(c->err->message, sizeof c->err->message, fmt, ap);
		va_end(ap);
	}
	longjmp(c->jb, 1);
}

void *fp_alloc(struct fp_ctx *c, size_t n)
{
	void *r = arena_alloc(c->a, n ? n : 1);
	if (!r)
		fp_fail(c, FP_ERR_LIMIT, 0, "evaluation needs more memory than its budget");
	return r;
}

void fp_push(struct fp_ctx *c, struct fp_buf *b, const struct fp_item *it)
{
	if (b->n == b->cap) {
		size_t nc = b->cap ? b->cap * 2 : 4;
		struct fp_item *nv = fp_alloc(c, nc * sizeof *nv);
		if (b->n)
			memcpy(nv, b->v, b->n * sizeof *nv);
		b->v = nv;
		b->cap = nc;
	}
	b->v[b->n++] = *it;
}

struct fp_coll fp_one(struct fp_ctx *c, const struct fp_item *it)
{
	struct fp_item *v = fp_alloc(c, sizeof *v);
	*v = *it;
	return (struct fp_coll){v, 1};
}

/* Collections are never written through: the two Booleans are shared. */
static struct fp_item bool_items[2] = {{.kind = FP_BOOLEAN, .u.b = false}, {.kind = FP_BOOLEAN, .u.b = true}};

struct fp_coll fp_bool(struct fp_ctx *c, bool b)
{
	(void)c;
	return (struct fp_coll){&bool_items[b], 1};
}

struct fp_coll fp_int(struct fp_ctx *c, int64_t i)
{
	struct fp_item it = {.kind = FP_INTEGER, .u.i = i};
	return fp_one(c, &it);
}

struct fp_coll fp_str(struct fp_ctx *c, const char *s, size_t len)
{
	struct fp_item it = {.kind = FP_STRING, .u.str = {s, len}};
	return fp_one(c, &it);
}

/* --- FHIR nodes ------------------------------------------------------------------ */

static const struct model_type *t_resource, *t_quantity, *t_date, *t_datetime, *t_instant, *t_time, *t_decimal;
static pthread_once_t types_once = PTHREAD_ONCE_INIT;

/* The model types evaluation compares with, found once for all threads. */
static void find_types(void)
{
	t_quantity = model_type("Quantity");
	t_date = model_type("date");
	t_datetime = model_type("dateTime");
	t_instant = model_type("instant");
	t_time = model_type("time");
	t_decimal = model_type("decimal");
	t_resource = model_type("Resource");
}

const struct model_type *fp_resource_type(const cJSON *j)
{
	const cJSON *rt = cJSON_GetObjectItemCaseSensitive(j, "resourceType");
	return cJSON_IsString(rt) ? model_type(rt->valuestring) : NULL;
}

struct fp_item fp_node_item(const cJSON *j, const cJSON *ext, const struct model_type *t)
{
	struct fp_item it = {.kind = FP_NODE};
	if (t && t->kind == MODEL_RESOURCE && cJSON_IsObject(j)) {
		const struct model_type *rt = fp_resource_type(j);
		if (rt)
			t = rt;
	}
	it.u.node.j = j;
	it.u.node.ext = ext;
	it.u.node.t = t;
	return it;
}

bool fp_is_primitive(const struct fp_item *it)
{
	if (it->kind != FP_NODE)
		return it->kind != FP_TYPEINFO;
	if (it->u.node.t)
		return it->u.node.t->kind == MODEL_PRIMITIVE;
	return it->u.node.j && !cJSON_IsObject(it->u.node.j) && !cJSON_IsArray(it->u.node.j);
}

static const struct model_type *base_of(const struct model_type *t)
{
	return t->base == MODEL_NONE ? NULL : &model_types[t->base];
}

/* The FHIR primitive type's system value. */
bool fp_value(struct fp_ctx *c, const struct fp_item *it, struct fp_item *out)
{
	(void)c;
	if (it->kind != FP_NODE) {
		*out = *it;
		return it->kind != FP_TYPEINFO;
	}
	const cJSON *j = it->u.node.j;
	const struct model_type *t = it->u.node.t;
	if (!j)
		return false;
	if (cJSON_IsObject(j)) {
		if (t && t->kind != MODEL_PRIMITIVE) {
			const struct model_type *q = t;
			while (q && q != t_quantity)
				q = base_of(q);
			if (!q)
				return false;
			const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "value");
			const char *lit = v ? fjson_number_literal(v) : NULL;
			char buf[64];
			if (!lit && cJSON_IsNumber(v)) {
				snprintf(buf, sizeof buf, "%.17g", v->valuedouble);
				lit = buf;
			}
			if (!lit)
				return false;
			out->kind = FP_QUANTITY;
			if (!fp_dec_parse(lit, strlen(lit), &out->u.q.v))
				return false;
			const cJSON *code = cJSON_GetObjectItemCaseSensitive(j, "code");
			const cJSON *unit = cJSON_GetObjectItemCaseSensitive(j, "unit");
			const cJSON *sys = cJSON_GetObjectItemCaseSensitive(j, "system");
			const char *u = cJSON_IsString(code)   ? code->valuestring
					: cJSON_IsString(unit) ? unit->valuestring
							       : "1";
			if (cJSON_IsString(code) && cJSON_IsString(sys) &&
			    strcmp(sys->valuestring, "http://unitsofmeasure.org") && cJSON_IsString(unit))
				u = unit->valuestring;
			const char *cal = fp_unit_calendar(u, strlen(u));
			out->u.q.unit = cal && !cJSON_IsString(code) ? cal : u;
			return true;
		}
		return false;
	}
	if (cJSON_IsBool(j)) {
		out->kind = FP_BOOLEAN;
		out->u.b = cJSON_IsTrue(j);
		return true;
	}
	if (cJSON_IsNumber(j)) {
		const char *lit = fjson_number_literal(j);
		char buf[64];
		if (!lit) {
			snprintf(buf, sizeof buf, "%.17g", j->valuedouble);
			lit = buf;
		}
		bool isint = t ? t != t_decimal : !strpbrk(lit, ".eE");
		if (isint) {
			out->kind = FP_INTEGER;
			out->u.i = (int64_t)j->valuedouble;
			return true;
		}
		out->kind = FP_DECIMAL;
		return fp_dec_parse(lit, strlen(lit), &out->u.d);
	}
	if (cJSON_IsString(j)) {
		const char *s = j->valuestring;
		if (t && (t == t_date || t == t_datetime || t == t_instant || t == t_time)) {
			enum fp_kind k;
			char tb[64];
			const char *src = s;
			if (t == t_time) {
				snprintf(tb, sizeof tb, "T%s", s);
				src = tb;
			}
			if (fp_dt_parse(src, strlen(src), &out->u.dt, &k)) {
				if (k == FP_DATE && t != t_date)
					k = FP_DATETIME;
				out->kind = (uint8_t)k;
				return true;
			}
		}
		out->kind = FP_STRING;
		out->u.str.s = s;
		out->u.str.len = strlen(s);
		return true;
	}
	return false;
}

static void push_value(struct fp_ctx *c, struct fp_buf *out, const cJSON *v, const cJSON *ext,
		       const struct model_type *t)
{
	if (cJSON_IsArray(v) || cJSON_IsArray(ext)) {
		size_t nv = cJSON_IsArray(v) ? (size_t)cJSON_GetArraySize(v) : 0;
		size_t ne = cJSON_IsArray(ext) ? (size_t)cJSON_GetArraySize(ext) : 0;
		const cJSON *a = cJSON_IsArray(v) ? v->child : NULL, *b = cJSON_IsArray(ext) ? ext->child : NULL;
		size_t n = nv > ne ? nv : ne;
		for (size_t i = 0; i < n; i++) {
			const cJSON *x = a && !cJSON_IsNull(a) ? a : NULL;
			const cJSON *y = b && !cJSON_IsNull(b) ? b : NULL;
			if (x || y) {
				struct fp_item it = fp_node_item(x, y, t);
				fp_push(c, out, &it);
			}
			a = a ? a->next : NULL;
			b = b ? b->next : NULL;
		}
		return;
	}
	if ((v && !cJSON_IsNull(v)) || (ext && cJSON_IsObject(ext))) {
		struct fp_item it = fp_node_item(v && !cJSON_IsNull(v) ? v : NULL, cJSON_IsObject(ext) ? ext : NULL, t);
		fp_push(c, out, &it);
	}
}

/* The members name and _name of obj, in one pass. */
static void get_keys(const cJSON *obj, const char *k, size_t kl, const cJSON **v, const cJSON **x)
{
	*v = *x = NULL;
	for (const cJSON *m = obj->child; m; m = m->next) {
		const char *s = m->string;
		bool under = s[0] == '_';
		s += under;
		if (s[0] == k[0] && !strncmp(s, k, kl) && s[kl] == '\0') {
			if (under)
				*x = m;
			else
				*v = m;
		}
	}
}

static const cJSON *get_key(const cJSON *obj, const char *k, size_t kl, bool under)
{
	const cJSON *v, *x;
	get_keys(obj, k, kl, &v, &x);
	return under ? x : v;
}

static const struct model_elem *elem_exact(const struct model_type *t, const char *name, size_t len)
{
	for (size_t i = 0; i < t->nelems; i++) {
		const struct model_elem *e = &model_elems[t->elems + i];
		if (e->namelen == len && !memcmp(e->name, name, len))
			return e;
	}
	return NULL;
}

int fp_children(struct fp_ctx *c, const struct fp_item *it, const char *name, size_t len, struct fp_buf *out)
{
	if (it->kind == FP_TYPEINFO) {
		if (len == 4 && !memcmp(name, "name", 4)) {
			struct fp_item s = {.kind = FP_STRING, .u.str = {it->u.ti.name, strlen(it->u.ti.name)}};
			fp_push(c, out, &s);
		} else if (len == 9 && !memcmp(name, "namespace", 9)) {
			struct fp_item s = {.kind = FP_STRING, .u.str = {it->u.ti.ns, strlen(it->u.ti.ns)}};
			fp_push(c, out, &s);
		}
		return FP_CHILD_UNTYPED;
	}
	if (it->kind != FP_NODE)
		return FP_CHILD_UNTYPED;
	const cJSON *obj = it->u.node.j;
	const struct model_type *t = it->u.node.t;
	if (!obj || !cJSON_IsObject(obj))
		obj = it->u.node.ext; /* a primitive: id and extension live in its "_name" object */
	const struct model_type *chosen = NULL;
	const struct model_elem *e = t ? elem_exact(t, name, len) : NULL;
	int known = !t ? FP_CHILD_UNTYPED : e ? FP_CHILD_KNOWN : FP_CHILD_UNKNOWN;
	if (e && (e->flags & MODEL_F_CHOICE)) {
		/* one pass over the members: name + Type (or _name + Type) */
		for (const cJSON *m = obj ? obj->child : NULL; m; m = m->next) {
			const char *k = m->string;
			bool under = k[0] == '_';
			k += under;
			if (strncmp(k, name, len) || !isupper((unsigned char)k[len]))
				continue;
			const struct model_type *ct = NULL;
			if (!model_find_elem(t, k, strlen(k), &ct) || !ct)
				continue;
			/* the value and its _ sibling are taken together, from the first seen */
			const cJSON *v, *x;
			get_keys(obj, k, strlen(k), &v, &x);
			if ((under && v) || (!under && !v))
				continue;
			push_value(c, out, v, x, ct);
		}
		return known;
	}
	if (e)
		chosen = model_elem_type(e, 0);
	else if (t && (e = model_find_elem(t, name, len, &chosen)) != NULL)
		known = FP_CHILD_SUFFIXED;
	if (!obj)
		return known;
	const cJSON *v, *x;
	get_keys(obj, name, len, &v, &x);
	if (!v && !x)
		return known;
	push_value(c, out, v, x, e ? chosen : NULL);
	return known;
}

void fp_all_children(struct fp_ctx *c, const struct fp_item *it, struct fp_buf *out)
{
	if (it->kind != FP_NODE)
		return;
	const cJSON *obj = it->u.node.j;
	const struct model_type *t = it->u.node.t;
	if (!obj || !cJSON_IsObject(obj)) {
		obj = it->u.node.ext;
		if (!obj)
			return;
	}
	for (const cJSON *x = obj->child; x; x = x->next) {
		const char *k = x->string;
		if (!strcmp(k, "resourceType"))
			continue;
		if (k[0] == '_') {
			/* only when there is no value sibling (else taken with it) */
			if (get_key(obj, k + 1, strlen(k + 1), false))
				continue;
			k++;
		}
		size_t kl = strlen(k);
		const struct model_type *chosen = NULL;
		const struct model_elem *e = t ? model_find_elem(t, k, kl, &chosen) : NULL;
		push_value(c, out, get_key(obj, k, kl, false), get_key(obj, k, kl, true), e ? chosen : NULL);
	}
}

static const char *system_name(const struct fp_item *it)
{
	switch (it->kind) {
	case FP_BOOLEAN:
		return "Boolean";
	case FP_INTEGER:
		return "Integer";
	case FP_DECIMAL:
		return "Decimal";
	case FP_STRING:
		return "String";
	case FP_DATE:
		return "Date";
	case FP_DATETIME:
		return "DateTime";
	case FP_TIME:
		return "Time";
	case FP_QUANTITY:
		return "Quantity";
	default:
		return NULL;
	}
}

bool fp_is_type(const struct fp_item *it, const struct fp_typespec *ts)
{
	if (it->kind == FP_NODE) {
		if (ts->ns && !strcmp(ts->ns, "System"))
			return false;
		const struct model_type *t = it->u.node.t;
		if (!t) {
			/* untyped JSON: judge by the JSON kind */
			const cJSON *j = it->u.node.j;
			if (!j)
				return false;
			if (cJSON_IsString(j))
				return !strcmp(ts->name, "string");
			if (cJSON_IsBool(j))
				return !strcmp(ts->name, "boolean");
			if (cJSON_IsNumber(j))
				return !strcmp(ts->name, "decimal") || !strcmp(ts->name, "integer");
			return false;
		}
		if (t->kind == MODEL_PRIMITIVE)
			return !strcmp(t->name, ts->name);
		for (; t; t = base_of(t)) {
			if (!strcmp(t->name, ts->name))
				return true;
			if (t->kind == MODEL_BACKBONE && !strcmp(ts->name, "BackboneElement"))
				return true;
		}
		return false;
	}
	if (ts->ns && strcmp(ts->ns, "System"))
		return false;
	const char *sn = system_name(it);
	return sn && (!strcmp(sn, ts->name) || !strcmp(ts->name, "Any"));
}

const char *fp_item_type(const struct fp_item *it)
{
	static const char *const names[] = {"boolean", "integer",  "decimal", "string",
					    "date",    "dateTime", "time",    "Quantity"};
	if (it->kind == FP_NODE)
		return it->u.node.t ? it->u.node.t->name : "Element";
	if (it->kind == FP_TYPEINFO)
		return "TypeInfo";
	return names[it->kind];
}

const char *fp_item_string(struct arena *a, const struct fp_item *in)
{
	struct fp_item v;
	if (in->kind == FP_NODE) {
		if (!fp_is_primitive(in) || !in->u.node.j)
			return NULL;
		struct fp_ctx dummy;
		memset(&dummy, 0, sizeof dummy);
		dummy.a = a;
		if (!fp_value(&dummy, in, &v))
			return NULL;
	} else {
		v = *in;
	}
	char buf[64];
	switch (v.kind) {
	case FP_BOOLEAN:
		return v.u.b ? "true" : "false";
	case FP_INTEGER:
		snprintf(buf, sizeof buf, "%lld", (long long)v.u.i);
		return arena_strdup(a, buf);
	case FP_DECIMAL:
		return fp_dec_text(a, v.u.d);
	case FP_STRING:
		return arena_strndup(a, v.u.str.s, v.u.str.len);
	case FP_DATE:
	case FP_DATETIME:
	case FP_TIME:
		return fp_dt_text(a, &v.u.dt, (enum fp_kind)v.kind);
	case FP_QUANTITY: {
		char *d = fp_dec_text(a, v.u.q.v);
		if (!d)
			return NULL;
		size_t n = strlen(d) + strlen(v.u.q.unit) + 8;
		char *o = arena_alloc(a, n);
		if (!o)
			return NULL;
		bool cal = fp_unit_calendar(v.u.q.unit, strlen(v.u.q.unit)) != NULL;
		if (cal)
			snprintf(o, n, "%s %s", d, v.u.q.unit);
		else
			snprintf(o, n, "%s '%s'", d, v.u.q.unit);
		return o;
	}
	default:
		return NULL;
	}
}

/* --- equality ------------------------------------------------------------------ */

static const char *ucum_of(const char *u)
{
	static const char *const map[][2] = {{"week", "wk"},    {"day", "d"},    {"hour", "h"},
					     {"minute", "min"}, {"second", "s"}, {"millisecond", "ms"}};
	for (size_t k = 0; k < sizeof map / sizeof *map; k++)
		if (!strcmp(u, map[k][0]))
			return map[k][1];
	return u;
}

/* Converts a quantity to a comparable base (UCUM metric prefixes and time
 * units); false when the unit is not understood. */
static bool unit_base(const char *u, struct fp_dec *factor, const char **base)
{
	static const struct {
		const char *u, *base, *f;
	} units[] = {
		{"s", "s", "1"},
		{"ms", "s", "0.001"},
		{"min", "s", "60"},
		{"h", "s", "3600"},
		{"d", "s", "86400"},
		{"wk", "s", "604800"},
		{"g", "g", "1"},
		{"mg", "g", "0.001"},
		{"kg", "g", "1000"},
		{"ug", "g", "0.000001"},
		{"m", "m", "1"},
		{"cm", "m", "0.01"},
		{"mm", "m", "0.001"},
		{"km", "m", "1000"},
		{"L", "L", "1"},
		{"mL", "L", "0.001"},
		{"dL", "L", "0.1"},
		{"[in_i]", "m", "0.0254"},
		{"[lb_av]", "g", "453.59237"},
		{"1", "1", "1"},
	};
	for (size_t k = 0; k < sizeof units / sizeof *units; k++)
		if (!strcmp(units[k].u, u)) {
			*base = units[k].base;
			return fp_dec_parse(units[k].f, strlen(units[k].f), factor);
		}
	return false;
}

bool fp_units_comparable(const char *a, const char *b)
{
	struct fp_dec fa, fb;
	const char *ba, *bb;
	a = ucum_of(a);
	b = ucum_of(b);
	if (!strcmp(a, b))
		return true;
	return unit_base(a, &fa, &ba) && unit_base(b, &fb, &bb) && !strcmp(ba, bb);
}

/* Quantities to one unit: false when incomparable. */
static bool q_align(const struct fp_item *a, const struct fp_item *b, struct fp_dec *x, struct fp_dec *y, bool equiv)
{
	const char *ua = ucum_of(a->u.q.unit), *ub = ucum_of(b->u.q.unit);
	if (equiv) {
		if (!strcmp(ua, "year"))
			ua = "a";
		if (!strcmp(ua, "month"))
			ua = "mo";
		if (!strcmp(ub, "year"))
			ub = "a";
		if (!strcmp(ub, "month"))
			ub = "mo";
	}
	*x = a->u.q.v;
	*y = b->u.q.v;
	if (!strcmp(ua, ub))
		return true;
	struct fp_dec fa, fb;
	const char *ba, *bb;
	if (!unit_base(ua, &fa, &ba) || !unit_base(ub, &fb, &bb) || strcmp(ba, bb))
		return false;
	return fp_dec_mul(*x, fa, x) && fp_dec_mul(*y, fb, y);
}

static bool json_eq(const cJSON *a, const cJSON *b)
{
	if (!a || !b)
		return a == b;
	return cJSON_Compare(a, b, true);
}

/* res: 1 equal, 0 not, -1 unknown. Returns false when the types cannot be compared. */
bool fp_item_eq(struct fp_ctx *c, const struct fp_item *pa, const struct fp_item *pb, int *res)
{
	struct fp_item a, b;
	bool pra = fp_is_primitive(pa) || (pa->kind == FP_NODE && fp_value(c, pa, &a));
	bool prb = fp_is_primitive(pb) || (pb->kind == FP_NODE && fp_value(c, pb, &b));
	if (!pra || !prb || (pa->kind == FP_NODE && !pa->u.node.j) || (pb->kind == FP_NODE && !pb->u.node.j)) {
		if (pa->kind == FP_NODE && pb->kind == FP_NODE) {
			*res = json_eq(pa->u.node.j, pb->u.node.j) && json_eq(pa->u.node.ext, pb->u.node.ext);
			return true;
		}
		*res = 0;
		return true;
	}
	if (!fp_value(c, pa, &a) || !fp_value(c, pb, &b)) {
		*res = 0;
		return true;
	}
	if ((a.kind == FP_INTEGER || a.kind == FP_DECIMAL) && (b.kind == FP_INTEGER || b.kind == FP_DECIMAL)) {
		struct fp_dec x = a.kind == FP_INTEGER ? fp_dec_from_int(a.u.i) : a.u.d;
		struct fp_dec y = b.kind == FP_INTEGER ? fp_dec_from_int(b.u.i) : b.u.d;
		*res = fp_dec_cmp(x, y) == 0;
		return true;
	}
	if ((a.kind == FP_DATE || a.kind == FP_DATETIME) && (b.kind == FP_DATE || b.kind == FP_DATETIME)) {
		int r = fp_dt_cmp(&a.u.dt, &b.u.dt, false);
		*res = r == -2 ? -1 : r == 0;
		return true;
	}
	if (a.kind != b.kind) {
		*res = 0;
		return true;
	}
	switch (a.kind) {
	case FP_BOOLEAN:
		*res = a.u.b == b.u.b;
		return true;
	case FP_STRING:
		*res = a.u.str.len == b.u.str.len && !memcmp(a.u.str.s, b.u.str.s, a.u.str.len);
		return true;
	case FP_TIME: {
		int r = fp_dt_cmp(&a.u.dt, &b.u.dt, true);
		*res = r == -2 ? -1 : r == 0;
		return true;
	}
	case FP_QUANTITY: {
		struct fp_dec x, y;
		if (!q_align(&a, &b, &x, &y, false)) {
			*res = -1;
			return true;
		}
		*res = fp_dec_cmp(x, y) == 0;
		return true;
	}
	default:
		*res = 0;
		return true;
	}
}

static size_t norm_ws(const char *s, size_t n, char *o)
{
	size_t k = 0;
	bool sp = false;
	size_t i = 0;
	while (i < n && isspace((unsigned char)s[i]))
		i++;
	for (; i < n; i++) {
		if (isspace((unsigned char)s[i])) {
			sp = true;
			continue;
		}
		if (sp && k)
			o[k++] = ' ';
		sp = false;
		o[k++] = (char)tolower((unsigned char)s[i]);
	}
	return k;
}

bool fp_item_equiv(struct fp_ctx *c, const struct fp_item *pa, const struct fp_item *pb)
{
	struct fp_item a, b;
	bool va = fp_value(c, pa, &a), vb = fp_value(c, pb, &b);
	if (!va || !vb) {
		if (pa->kind == FP_NODE && pb->kind == FP_NODE)
			return json_eq(pa->u.node.j, pb->u.node.j);
		return false;
	}
	if ((a.kind == FP_INTEGER || a.kind == FP_DECIMAL) && (b.kind == FP_INTEGER || b.kind == FP_DECIMAL)) {
		struct fp_dec x = a.kind == FP_INTEGER ? fp_dec_from_int(a.u.i) : a.u.d;
		struct fp_dec y = b.kind == FP_INTEGER ? fp_dec_from_int(b.u.i) : b.u.d;
		int s = x.scale < y.scale ? x.scale : y.scale;
		return fp_dec_cmp(fp_dec_round(x, s), fp_dec_round(y, s)) == 0;
	}
	if ((a.kind == FP_DATE || a.kind == FP_DATETIME) && (b.kind == FP_DATE || b.kind == FP_DATETIME))
		return fp_dt_cmp(&a.u.dt, &b.u.dt, false) == 0;
	if (a.kind != b.kind)
		return false;
	switch (a.kind) {
	case FP_STRING: {
		char *x = fp_alloc(c, a.u.str.len + 1), *y = fp_alloc(c, b.u.str.len + 1);
		size_t nx = norm_ws(a.u.str.s, a.u.str.len, x), ny = norm_ws(b.u.str.s, b.u.str.len, y);
		return nx == ny && !memcmp(x, y, nx);
	}
	case FP_TIME:
		return fp_dt_cmp(&a.u.dt, &b.u.dt, true) == 0;
	case FP_QUANTITY: {
		struct fp_dec x, y;
		if (!q_align(&a, &b, &x, &y, true))
			return false;
		int s = x.scale < y.scale ? x.scale : y.scale;
		return fp_dec_cmp(fp_dec_round(x, s), fp_dec_round(y, s)) == 0;
	}
	default: {
		int r;
		fp_item_eq(c, &a, &b, &r);
		return r == 1;
	}
	}
}

bool fp_to_bool_single(struct fp_ctx *c, const struct fp_coll *x, size_t pos, int *res)
{
	if (x->n == 0) {
		*res = -1;
		return true;
	}
	if (x->n > 1)
		fp_fail(c, FP_ERR_EVAL, pos, "a collection of %zu items where one Boolean is needed", x->n);
	struct fp_item v;
	if (fp_value(c, &x->v[0], &v) && v.kind == FP_BOOLEAN) {
		*res = v.u.b;
		return true;
	}
	*res = 1;
	return true;
}

/* --- operators ------------------------------------------------------------------ */

bool fp_single_value(struct fp_ctx *c, const struct fp_coll *x, size_t pos, struct fp_item *v)
{
	if (x->n == 0)
		return false;
	if (x->n > 1)
		fp_fail(c, FP_ERR_EVAL, pos, "a collection of %zu items where one is needed", x->n);
	if (!fp_value(c, &x->v[0], v))
		fp_fail(c, FP_ERR_EVAL, pos, "operand has no primitive value");
	return true;
}

static bool numeric(const struct fp_item *v) { return v->kind == FP_INTEGER || v->kind == FP_DECIMAL; }
static struct fp_dec as_dec(const struct fp_item *v)
{
	return v->kind == FP_INTEGER ? fp_dec_from_int(v->u.i) : v->u.d;
}

static struct fp_coll dec_result(struct fp_ctx *c, struct fp_dec d)
{
	struct fp_item it = {.kind = FP_DECIMAL, .u.d = d};
	return fp_one(c, &it);
}

static struct fp_coll compare(struct fp_ctx *c, enum fp_op op, const struct fp_coll *l, const struct fp_coll *r,
			      size_t pos)
{
	struct fp_item a, b;
	if (!fp_single_value(c, l, pos, &a) || !fp_single_value(c, r, pos, &b))
		return FP_EMPTY;
	int cmp;
	if (numeric(&a) && numeric(&b)) {
		cmp = fp_dec_cmp(as_dec(&a), as_dec(&b));
	} else if ((a.kind == FP_DATE || a.kind == FP_DATETIME) && (b.kind == FP_DATE || b.kind == FP_DATETIME)) {
		cmp = fp_dt_cmp(&a.u.dt, &b.u.dt, false);
		if (cmp == -2)
			return FP_EMPTY;
	} else if (a.kind == FP_TIME && b.kind == FP_TIME) {
		cmp = fp_dt_cmp(&a.u.dt, &b.u.dt, true);
		if (cmp == -2)
			return FP_EMPTY;
	} else if (a.kind == FP_STRING && b.kind == FP_STRING) {
		size_t n = a.u.str.len < b.u.str.len ? a.u.str.len : b.u.str.len;
		cmp = memcmp(a.u.str.s, b.u.str.s, n);
		if (!cmp)
			cmp = a.u.str.len < b.u.str.len ? -1 : a.u.str.len > b.u.str.len;
	} else if (a.kind == FP_QUANTITY && b.kind == FP_QUANTITY) {
		struct fp_dec x, y;
		if (!q_align(&a, &b, &x, &y, false))
			return FP_EMPTY;
		cmp = fp_dec_cmp(x, y);
	} else {
		fp_fail(c, FP_ERR_EVAL, pos, "cannot compare %s with %s", fp_item_type(&a), fp_item_type(&b));
	}
	switch (op) {
	case OP_LT:
		return fp_bool(c, cmp < 0);
	case OP_GT:
		return fp_bool(c, cmp > 0);
	case OP_LE:
		return fp_bool(c, cmp <= 0);
	default:
		return fp_bool(c, cmp >= 0);
	}
}

static struct fp_coll equality(struct fp_ctx *c, enum fp_op op, const struct fp_coll *l, const struct fp_coll *r)
{
	bool equiv = op == OP_EQUIV || op == OP_NEQUIV;
	bool neg = op == OP_NE || op == OP_NEQUIV;
	if (equiv) {
		bool same = l->n == r->n;
		if (same && l->n) {
			/* order does not matter for equivalence */
			bool *used = fp_alloc(c, r->n);
			for (size_t i = 0; i < l->n && same; i++) {
				bool found = false;
				for (size_t k = 0; k < r->n && !found; k++)
					if (!used[k] && fp_item_equiv(c, &l->v[i], &r->v[k]))
						used[k] = found = true;
				same = found;
			}
		}
		return fp_bool(c, same != neg);
	}
	if (!l->n || !r->n)
		return FP_EMPTY;
	if (l->n != r->n)
		return fp_bool(c, neg);
	bool unknown = false;
	for (size_t i = 0; i < l->n; i++) {
		int res;
		fp_item_eq(c, &l->v[i], &r->v[i], &res);
		if (res == 0)
			return fp_bool(c, neg);
		if (res < 0)
			unknown = true;
	}
	if (unknown)
		return FP_EMPTY;
	return fp_bool(c, !neg);
}

bool fp_coll_has(struct fp_ctx *c, const struct fp_coll *x, const struct fp_item *it)
{
	for (size_t i = 0; i < x->n; i++) {
		int res;
		fp_item_eq(c, &x->v[i], it, &res);
		if (res == 1)
			return true;
	}
	return false;
}

static struct fp_coll arith(struct fp_ctx *c, enum fp_op op, const struct fp_coll *lhs, const struct fp_coll *rhs,
			    size_t pos)
{
	struct fp_item a, b;
	if (op == OP_CONCAT) {
		const char *sa = "", *sb = "";
		size_t la = 0, lb = 0;
		if (fp_single_value(c, lhs, pos, &a)) {
			sa = fp_item_string(c->a, &a);
			la = sa ? strlen(sa) : 0;
		}
		if (fp_single_value(c, rhs, pos, &b)) {
			sb = fp_item_string(c->a, &b);
			lb = sb ? strlen(sb) : 0;
		}
		char *o = fp_alloc(c, la + lb + 1);
		if (la)
			memcpy(o, sa, la);
		if (lb)
			memcpy(o + la, sb, lb);
		return fp_str(c, o, la + lb);
	}
	if (!fp_single_value(c, lhs, pos, &a) || !fp_single_value(c, rhs, pos, &b))
		return FP_EMPTY;
	if (op == OP_ADD && a.kind == FP_STRING && b.kind == FP_STRING) {
		char *o = fp_alloc(c, a.u.str.len + b.u.str.len + 1);
		memcpy(o, a.u.str.s, a.u.str.len);
		memcpy(o + a.u.str.len, b.u.str.s, b.u.str.len);
		return fp_str(c, o, a.u.str.len + b.u.str.len);
	}
	if ((op == OP_ADD || op == OP_SUB) && (a.kind == FP_DATE || a.kind == FP_DATETIME || a.kind == FP_TIME) &&
	    b.kind == FP_QUANTITY) {
		struct fp_item res = a;
		if (!fp_dt_add(&res.u.dt, (enum fp_kind)a.kind, b.u.q.v, b.u.q.unit, op == OP_ADD ? 1 : -1))
			fp_fail(c, FP_ERR_EVAL, pos, "cannot add '%s' to a date/time", b.u.q.unit);
		return fp_one(c, &res);
	}
	if (a.kind == FP_QUANTITY || b.kind == FP_QUANTITY) {
		struct fp_item qa = a, qb = b;
		if (numeric(&a)) {
			qa.kind = FP_QUANTITY;
			qa.u.q.v = as_dec(&a);
			qa.u.q.unit = "1";
		}
		if (numeric(&b)) {
			qb.kind = FP_QUANTITY;
			qb.u.q.v = as_dec(&b);
			qb.u.q.unit = "1";
		}
		if (qa.kind != FP_QUANTITY || qb.kind != FP_QUANTITY)
			fp_fail(c, FP_ERR_EVAL, pos, "bad operands for arithmetic");
		struct fp_item res = {.kind = FP_QUANTITY};
		struct fp_dec x, y;
		bool ok = false;
		if (op == OP_ADD || op == OP_SUB) {
			if (!q_align(&qa, &qb, &x, &y, false))
				return FP_EMPTY;
			if (op == OP_SUB)
				y.m = -y.m;
			ok = fp_dec_add(x, y, &res.u.q.v);
			res.u.q.unit = strcmp(ucum_of(qa.u.q.unit), ucum_of(qb.u.q.unit)) ? qb.u.q.unit : qa.u.q.unit;
			if (strcmp(ucum_of(qa.u.q.unit), ucum_of(qb.u.q.unit))) {
				/* aligned to the base unit of both */
				struct fp_dec f;
				const char *base;
				unit_base(ucum_of(qa.u.q.unit), &f, &base);
				res.u.q.unit = base;
			}
		} else if (op == OP_MUL || op == OP_DIV) {
			ok = op == OP_MUL ? fp_dec_mul(qa.u.q.v, qb.u.q.v, &res.u.q.v)
					  : fp_dec_div(qa.u.q.v, qb.u.q.v, &res.u.q.v);
			const char *ua = qa.u.q.unit, *ub = qb.u.q.unit;
			if (!strcmp(ub, "1"))
				res.u.q.unit = ua;
			else if (!strcmp(ua, "1") && op == OP_MUL)
				res.u.q.unit = ub;
			else if (!strcmp(ua, ub) && op == OP_DIV)
				res.u.q.unit = "1";
			else {
				size_t n = strlen(ua) + strlen(ub) + 2;
				char *u = fp_alloc(c, n);
				snprintf(u, n, "%s%c%s", ua, op == OP_MUL ? '.' : '/', ub);
				res.u.q.unit = u;
			}
		} else {
			fp_fail(c, FP_ERR_EVAL, pos, "bad operator for quantities");
		}
		if (!ok)
			return FP_EMPTY;
		return fp_one(c, &res);
	}
	if (!numeric(&a) || !numeric(&b))
		fp_fail(c, FP_ERR_EVAL, pos, "arithmetic on %s and %s", fp_item_type(&a), fp_item_type(&b));
	if (a.kind == FP_INTEGER && b.kind == FP_INTEGER && op != OP_DIV) {
		int64_t x = a.u.i, y = b.u.i, r;
		switch (op) {
		case OP_ADD:
			if (__builtin_add_overflow(x, y, &r))
				return FP_EMPTY;
			break;
		case OP_SUB:
			if (__builtin_sub_overflow(x, y, &r))
				return FP_EMPTY;
			break;
		case OP_MUL:
			if (__builtin_mul_overflow(x, y, &r))
				return FP_EMPTY;
			break;
		case OP_IDIV:
			if (y == 0 || (x == INT64_MIN && y == -1))
				return FP_EMPTY;
			r = x / y;
			break;
		default: /* OP_MOD */
			if (y == 0 || (x == INT64_MIN && y == -1))
				return FP_EMPTY;
			r = x % y;
			break;
		}
		return fp_int(c, r);
	}
	struct fp_dec x = as_dec(&a), y = as_dec(&b), r;
	switch (op) {
	case OP_ADD:
		return fp_dec_add(x, y, &r) ? dec_result(c, r) : FP_EMPTY;
	case OP_SUB:
		y.m = -y.m;
		return fp_dec_add(x, y, &r) ? dec_result(c, r) : FP_EMPTY;
	case OP_MUL:
		return fp_dec_mul(x, y, &r) ? dec_result(c, r) : FP_EMPTY;
	case OP_DIV:
		return fp_dec_div(x, y, &r) ? dec_result(c, r) : FP_EMPTY;
	case OP_IDIV: {
		if (y.m == 0 || !fp_dec_div(x, y, &r))
			return FP_EMPTY;
		struct fp_dec t = r;
		while (t.scale > 0) {
			t.m /= 10;
			t.scale--;
		}
		return fp_int(c, (int64_t)t.m);
	}
	default: { /* mod: x - y * trunc(x / y) */
		if (y.m == 0 || !fp_dec_div(x, y, &r))
			return FP_EMPTY;
		struct fp_dec t = r, p;
		while (t.scale > 0) {
			t.m /= 10;
			t.scale--;
		}
		if (!fp_dec_mul(y, t, &p))
			return FP_EMPTY;
		p.m = -p.m;
		return fp_dec_add(x, p, &r) ? dec_result(c, r) : FP_EMPTY;
	}
	}
}

static struct fp_coll binary(struct fp_ctx *c, const struct fp_node *n, const struct fp_coll *focus)
{
	enum fp_op op = (enum fp_op)n->op;
	struct fp_coll l = fp_eval_node(c, n->args[0], focus);
	if (op == OP_AND || op == OP_OR || op == OP_IMPLIES || op == OP_XOR) {
		int a, b;
		fp_to_bool_single(c, &l, n->pos, &a);
		if (op == OP_AND && a == 0)
			return fp_bool(c, false);
		if (op == OP_OR && a == 1)
			return fp_bool(c, true);
		if (op == OP_IMPLIES && a == 0)
			return fp_bool(c, true);
		struct fp_coll r = fp_eval_node(c, n->args[1], focus);
		fp_to_bool_single(c, &r, n->pos, &b);
		switch (op) {
		case OP_AND:
			if (b == 0)
				return fp_bool(c, false);
			return a == 1 && b == 1 ? fp_bool(c, true) : FP_EMPTY;
		case OP_OR:
			if (b == 1)
				return fp_bool(c, true);
			return a == 0 && b == 0 ? fp_bool(c, false) : FP_EMPTY;
		case OP_XOR:
			return a < 0 || b < 0 ? FP_EMPTY : fp_bool(c, a != b);
		default: /* implies, a true or empty */
			if (b == 1)
				return fp_bool(c, true);
			return a == 1 && b == 0 ? fp_bool(c, false) : FP_EMPTY;
		}
	}
	struct fp_coll r = fp_eval_node(c, n->args[1], focus);
	switch (op) {
	case OP_UNION: {
		struct fp_buf b = {0};
		for (int side = 0; side < 2; side++) {
			const struct fp_coll *x = side ? &r : &l;
			for (size_t i = 0; i < x->n; i++) {
				struct fp_coll cur = fp_done(&b);
				if (!fp_coll_has(c, &cur, &x->v[i]))
					fp_push(c, &b, &x->v[i]);
			}
		}
		return fp_done(&b);
	}
	case OP_EQ:
	case OP_NE:
	case OP_EQUIV:
	case OP_NEQUIV:
		return equality(c, op, &l, &r);
	case OP_LT:
	case OP_GT:
	case OP_LE:
	case OP_GE:
		return compare(c, op, &l, &r, n->pos);
	case OP_IN:
	case OP_CONTAINS: {
		const struct fp_coll *item = op == OP_IN ? &l : &r, *set = op == OP_IN ? &r : &l;
		if (item->n == 0)
			return FP_EMPTY;
		if (item->n > 1)
			fp_fail(c, FP_ERR_EVAL, n->pos, "'%s' needs one item", op == OP_IN ? "in" : "contains");
		return fp_bool(c, fp_coll_has(c, set, &item->v[0]));
	}
	default:
		return arith(c, op, &l, &r, n->pos);
	}
}

static struct fp_item var_string(struct fp_ctx *c, const char *s)
{
	(void)c;
	return (struct fp_item){.kind = FP_STRING, .u.str = {s, strlen(s)}};
}

static struct fp_coll variable(struct fp_ctx *c, const struct fp_node *n)
{
	const char *v = n->name;
	if (!strcmp(v, "resource"))
		return c->has_resource ? fp_one(c, &c->resource) : FP_EMPTY;
	if (!strcmp(v, "rootResource")) {
		if (!c->has_root)
			return FP_EMPTY;
		struct fp_item r = fp_node_item(c->root.u.node.j, NULL, fp_resource_type(c->root.u.node.j));
		return fp_one(c, &r);
	}
	if (!strcmp(v, "context"))
		return c->has_context ? fp_one(c, &c->context) : FP_EMPTY;
	struct fp_item it;
	if (!strcmp(v, "ucum"))
		it = var_string(c, "http://unitsofmeasure.org");
	else if (!strcmp(v, "sct"))
		it = var_string(c, "http://snomed.info/sct");
	else if (!strcmp(v, "loinc"))
		it = var_string(c, "http://loinc.org");
	else if (!strncmp(v, "vs-", 3) || !strncmp(v, "ext-", 4)) {
		const char *base =
			v[0] == 'v' ? "http://hl7.org/fhir/ValueSet/" : "http://hl7.org/fhir/StructureDefinition/";
		const char *rest = v + (v[0] == 'v' ? 3 : 4);
		size_t len = strlen(base) + strlen(rest);
		char *s = fp_alloc(c, len + 1);
		snprintf(s, len + 1, "%s%s", base, rest);
		it = (struct fp_item){.kind = FP_STRING, .u.str = {s, len}};
	} else
		fp_fail(c, FP_ERR_EVAL, n->pos, "unknown variable %%%s", v);
	return fp_one(c, &it);
}

static struct fp_coll member(struct fp_ctx *c, const struct fp_node *n, const struct fp_coll *focus, bool start)
{
	struct fp_buf b = {0};
	bool any_known = false, any_unknown = false;
	for (size_t i = 0; i < focus->n; i++) {
		const struct fp_item *it = &focus->v[i];
		/* a path may start with the type name of its focus resource */
		if (start && it->kind == FP_NODE && it->u.node.t && it->u.node.t->kind == MODEL_RESOURCE &&
		    isupper((unsigned char)n->name[0])) {
			bool match = false;
			for (const struct model_type *t = it->u.node.t; t && !match; t = base_of(t))
				match = !strcmp(t->name, n->name);
			if (match) {
				fp_push(c, &b, it);
				any_known = true;
				continue;
			}
		}
		int k = fp_children(c, it, n->name, n->namelen, &b);
		if (k == FP_CHILD_KNOWN || k == FP_CHILD_UNTYPED)
			any_known = true;
		else
			any_unknown = true;
	}
	if (n->op && any_unknown && !any_known)
		fp_fail(c, FP_ERR_SEMANTIC, n->pos, "no element '%s' on %s", n->name,
			focus->v[0].kind == FP_NODE && focus->v[0].u.node.t ? focus->v[0].u.node.t->name : "this type");
	return fp_done(&b);
}

struct fp_coll fp_eval_node(struct fp_ctx *c, const struct fp_node *n, const struct fp_coll *focus)
{
	switch ((enum fp_nkind)n->kind) {
	case N_LIT:
		return n->nlit ? (struct fp_coll){(struct fp_item *)&n->lit, 1} : FP_EMPTY;
	case N_THIS:
		return c->this_item ? (struct fp_coll){(struct fp_item *)c->this_item, 1} : *focus;
	case N_INDEXV:
		return fp_int(c, c->index);
	case N_TOTAL:
		return c->total ? *c->total : FP_EMPTY;
	case N_VAR:
		return variable(c, n);
	case N_MEMBER: {
		if (n->left) {
			struct fp_coll l = fp_eval_node(c, n->left, focus);
			return member(c, n, &l, false);
		}
		return member(c, n, focus, true);
	}
	case N_FUNC: {
		const struct fp_fn *f = fp_fn_get(n->fn);
		if (n->left) {
			struct fp_coll l = fp_eval_node(c, n->left, focus);
			return f->call(c, n, &l, focus);
		}
		return f->call(c, n, focus, focus);
	}
	case N_INDEXER: {
		struct fp_coll l = fp_eval_node(c, n->left, focus);
		struct fp_coll ix = fp_eval_node(c, n->args[0], focus);
		struct fp_item v;
		if (!fp_single_value(c, &ix, n->pos, &v))
			return FP_EMPTY;
		if (v.kind != FP_INTEGER)
			fp_fail(c, FP_ERR_EVAL, n->pos, "index is not an Integer");
		if (v.u.i < 0 || (uint64_t)v.u.i >= l.n)
			return FP_EMPTY;
		return (struct fp_coll){&l.v[v.u.i], 1};
	}
	case N_NEG: {
		struct fp_coll x = fp_eval_node(c, n->args[0], focus);
		struct fp_item v;
		if (!fp_single_value(c, &x, n->pos, &v))
			return FP_EMPTY;
		if (v.kind == FP_INTEGER)
			v.u.i = -v.u.i;
		else if (v.kind == FP_DECIMAL)
			v.u.d.m = -v.u.d.m;
		else if (v.kind == FP_QUANTITY)
			v.u.q.v.m = -v.u.q.v.m;
		else
			fp_fail(c, FP_ERR_EVAL, n->pos, "cannot negate %s", fp_item_type(&v));
		return fp_one(c, &v);
	}
	case N_IS:
	case N_AS: {
		struct fp_coll x = fp_eval_node(c, n->args[0], focus);
		if (x.n == 0)
			return FP_EMPTY;
		if (x.n > 1)
			fp_fail(c, FP_ERR_EVAL, n->pos, "'%s' needs one item", n->kind == N_IS ? "is" : "as");
		bool ok = fp_is_type(&x.v[0], &n->ts);
		if (n->kind == N_IS)
			return fp_bool(c, ok);
		return ok ? x : FP_EMPTY;
	}
	case N_BIN:
		return binary(c, n, focus);
	}
	return FP_EMPTY;
}

int fp_eval(const struct fp_expr *e, const struct fp_env *env, struct arena *a, struct fp_coll *out,
	    struct fp_error *err)
{
	pthread_once(&types_once, find_types);
	struct fp_ctx *c = arena_alloc(a, sizeof *c);
	if (!c) {
		if (err) {
			err->code = FP_ERR_LIMIT;
			snprintf(err->message, sizeof err->message, "evaluation needs more memory than its budget");
		}
		return -1;
	}
	if (err)
		memset(err, 0, sizeof *err);
	c->a = a;
	c->env = env;
	c->expr = e;
	c->err = err;
	if (env && env->resource) {
		c->resource = fp_node_item(env->resource, NULL, fp_resource_type(env->resource));
		c->has_resource = true;
	}
	const cJSON *root = env ? (env->root ? env->root : env->resource) : NULL;
	if (root) {
		/* typed on use (%rootResource): resolve() needs only the tree */
		c->root = root == env->resource ? c->resource : fp_node_item(root, NULL, NULL);
		c->has_root = true;
	}
	if (env && env->context) {
		const struct model_type *t =
			env->context_type ? model_type(env->context_type) : fp_resource_type(env->context);
		c->context = fp_node_item(env->context, NULL, t);
		c->has_context = true;
	} else if (c->has_resource) {
		c->context = c->resource;
		c->has_context = true;
	}
	if (setjmp(c->jb))
		return -1;
	struct fp_coll focus = c->has_context ? fp_one(c, &c->context) : FP_EMPTY;
	*out = fp_eval_node(c, e->root, &focus);
	return 0;
}

int fp_eval_bool(const struct fp_expr *e, const struct fp_env *env, struct arena *a, struct fp_error *err)
{
	struct fp_coll r;
	if (fp_eval(e, env, a, &r, err) != 0)
		return -1;
	if (r.n == 0)
		return 1;
	if (r.n > 1) {
		if (err) {
			err->code = FP_ERR_EVAL;
			snprintf(err->message, sizeof err->message, "the invariant gave %zu items, not one Boolean",
				 r.n);
		}
		return -1;
	}
	if (r.v[0].kind == FP_BOOLEAN)
		return r.v[0].u.b;
	if (r.v[0].kind == FP_NODE && r.v[0].u.node.j && cJSON_IsBool(r.v[0].u.node.j))
		return cJSON_IsTrue(r.v[0].u.node.j);
	return 1;
}
