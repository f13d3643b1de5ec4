/* fhirpath_value — exact decimals, dates and times, calendar durations for
 * the FHIRPath engine (see fhirpath.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fhir/fhirpath_int.h"

#define DEC_MAX_SCALE 28
static const __int128 DEC_LIMIT = (__int128)1000000000000000000LL * (__int128)1000000000000000000LL; /* 10^36 */

static __int128 pow10i(int n)
{
	__int128 r = 1;
	while (n-- > 0)
		r *= 10;
	return r;
}

static bool in_range(__int128 m) { return m < DEC_LIMIT && m > -DEC_LIMIT; }

bool fp_dec_parse(const char *s, size_t len, struct fp_dec *d)
{
	size_t i = 0;
	bool neg = false;
	if (i < len && (s[i] == '-' || s[i] == '+'))
		neg = s[i++] == '-';
	__int128 m = 0;
	int scale = 0, digits = 0;
	bool point = false;
	for (; i < len; i++) {
		char ch = s[i];
		if (ch >= '0' && ch <= '9') {
			if (m >= DEC_LIMIT / 10) {
				if (point)
					continue; /* drop excess fraction digits */
				return false;
			}
			m = m * 10 + (ch - '0');
			digits++;
			if (point)
				scale++;
		} else if (ch == '.' && !point) {
			point = true;
		} else {
			break;
		}
	}
	if (!digits)
		return false;
	if (i < len && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		bool eneg = false;
		if (i < len && (s[i] == '-' || s[i] == '+'))
			eneg = s[i++] == '-';
		int e = 0;
		if (i >= len)
			return false;
		for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
			e = e * 10 + (s[i] - '0');
			if (e > 100)
				return false;
		}
		if (eneg)
			scale += e;
		else {
			while (e > 0 && scale > 0) {
				scale--;
				e--;
			}
			while (e-- > 0) {
				if (m >= DEC_LIMIT / 10)
					return false;
				m *= 10;
			}
		}
	}
	if (i != len)
		return false;
	while (scale > DEC_MAX_SCALE) {
		m /= 10;
		scale--;
	}
	d->m = neg ? -m : m;
	d->scale = (int16_t)scale;
	return true;
}

char *fp_dec_text(struct arena *a, struct fp_dec d)
{
	char digits[64];
	int n = 0;
	bool neg = d.m < 0;
	unsigned __int128 u = neg ? (unsigned __int128)(-d.m) : (unsigned __int128)d.m;
	do {
		digits[n++] = (char)('0' + (int)(u % 10));
		u /= 10;
	} while (u);
	while (n <= d.scale)
		digits[n++] = '0';
	char *out = arena_alloc(a, (size_t)n + 4);
	if (!out)
		return NULL;
	size_t o = 0;
	if (neg)
		out[o++] = '-';
	for (int i = n - 1; i >= 0; i--) {
		out[o++] = digits[i];
		if (i == d.scale && d.scale > 0)
			out[o++] = '.';
	}
	out[o] = '\0';
	return out;
}

static bool align(struct fp_dec *a, struct fp_dec *b)
{
	while (a->scale < b->scale) {
		if (!in_range(a->m * 10))
			return false;
		a->m *= 10;
		a->scale++;
	}
	while (b->scale < a->scale) {
		if (!in_range(b->m * 10))
			return false;
		b->m *= 10;
		b->scale++;
	}
	return true;
}

int fp_dec_cmp(struct fp_dec a, struct fp_dec b)
{
	if (!align(&a, &b)) {
		double x = fp_dec_to_double(a), y = fp_dec_to_double(b);
		return x < y ? -1 : x > y;
	}
	return a.m < b.m ? -1 : a.m > b.m;
}

bool fp_dec_add(struct fp_dec a, struct fp_dec b, struct fp_dec *r)
{
	if (!align(&a, &b))
		return false;
	r->m = a.m + b.m;
	r->scale = a.scale;
	return in_range(r->m);
}

struct fp_dec fp_dec_trim(struct fp_dec d)
{
	while (d.scale > 0 && d.m % 10 == 0) {
		d.m /= 10;
		d.scale--;
	}
	return d;
}

bool fp_dec_mul(struct fp_dec a, struct fp_dec b, struct fp_dec *r)
{
	a = fp_dec_trim(a);
	b = fp_dec_trim(b);
	__int128 m;
	if (__builtin_mul_overflow(a.m, b.m, &m) || !in_range(m))
		return false;
	int scale = a.scale + b.scale;
	while (scale > DEC_MAX_SCALE) {
		m /= 10;
		scale--;
	}
	r->m = m;
	r->scale = (int16_t)scale;
	return true;
}

bool fp_dec_div(struct fp_dec a, struct fp_dec b, struct fp_dec *r)
{
	if (b.m == 0)
		return false;
	a = fp_dec_trim(a);
	b = fp_dec_trim(b);
	/* q = a.m * 10^k / b.m with enough digits, then scale = a.scale - b.scale + k */
	__int128 num = a.m;
	int k = 0;
	while (k < 40 && in_range(num * 10) && (num < 0 ? -num : num) < DEC_LIMIT / 1000) {
		num *= 10;
		k++;
	}
	__int128 q = num / b.m;
	int scale = a.scale - b.scale + k;
	while (scale < 0) {
		if (!in_range(q * 10))
			return false;
		q *= 10;
		scale++;
	}
	/* keep at most 8 fraction digits beyond the operands' own, rounding half up */
	struct fp_dec res = {q, (int16_t)scale};
	int keep = 8;
	if (res.scale > keep)
		res = fp_dec_round(res, keep);
	*r = fp_dec_trim(res);
	return true;
}

struct fp_dec fp_dec_round(struct fp_dec d, int scale)
{
	if (scale < 0)
		scale = 0;
	while (d.scale < scale) {
		if (!in_range(d.m * 10))
			return d;
		d.m *= 10;
		d.scale++;
	}
	if (d.scale == scale)
		return d;
	__int128 div = pow10i(d.scale - scale);
	__int128 q = d.m / div, rem = d.m % div;
	if (rem < 0)
		rem = -rem;
	if (rem * 2 >= div)
		q += d.m < 0 ? -1 : 1;
	return (struct fp_dec){q, (int16_t)scale};
}

struct fp_dec fp_dec_from_int(int64_t i) { return (struct fp_dec){i, 0}; }

struct fp_dec fp_dec_from_double(double v)
{
	char buf[64];
	snprintf(buf, sizeof buf, "%.15g", v);
	struct fp_dec d = {0, 0};
	if (!fp_dec_parse(buf, strlen(buf), &d))
		d = (struct fp_dec){0, 0};
	return fp_dec_trim(d);
}

double fp_dec_to_double(struct fp_dec d)
{
	double v = (double)d.m;
	for (int i = 0; i < d.scale; i++)
		v /= 10.0;
	return v;
}

/* --- dates and times ------------------------------------------------------ */

static int num(const char *s, size_t len, size_t *i, int n)
{
	if (*i + (size_t)n > len)
		return -1;
	int v = 0;
	for (int k = 0; k < n; k++) {
		char ch = s[*i + (size_t)k];
		if (ch < '0' || ch > '9')
			return -1;
		v = v * 10 + (ch - '0');
	}
	*i += (size_t)n;
	return v;
}

static int days_in_month(int y, int m)
{
	static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return d[(m - 1) % 12];
}

static bool parse_time(const char *s, size_t len, size_t *i, struct fp_datetime *dt, int base)
{
	int v = num(s, len, i, 2);
	if (v < 0 || v > 23)
		return false;
	dt->hour = (int8_t)v;
	dt->prec = (uint8_t)(base + 1);
	if (*i < len && s[*i] == ':') {
		(*i)++;
		if ((v = num(s, len, i, 2)) < 0 || v > 59)
			return false;
		dt->minute = (int8_t)v;
		dt->prec = (uint8_t)(base + 2);
		if (*i < len && s[*i] == ':') {
			(*i)++;
			if ((v = num(s, len, i, 2)) < 0 || v > 59)
				return false;
			dt->second = (int8_t)v;
			dt->prec = (uint8_t)(base + 3);
			if (*i < len && s[*i] == '.') {
				(*i)++;
				int ms = 0, nd = 0;
				while (*i < len && s[*i] >= '0' && s[*i] <= '9') {
					if (nd < 3)
						ms = ms * 10 + (s[*i] - '0');
					nd++;
					(*i)++;
				}
				if (!nd)
					return false;
				for (int k = nd; k < 3; k++)
					ms *= 10;
				dt->ms = (int16_t)ms;
				dt->prec = (uint8_t)(base + 4);
			}
		}
	}
	return true;
}

bool fp_dt_parse(const char *s, size_t len, struct fp_datetime *dt, enum fp_kind *kind)
{
	memset(dt, 0, sizeof *dt);
	size_t i = 0;
	if (len > 0 && s[0] == 'T') {
		i = 1;
		if (!parse_time(s, len, &i, dt, 3) || i != len)
			return false;
		*kind = FP_TIME;
		return true;
	}
	int v = num(s, len, &i, 4);
	if (v < 0)
		return false;
	dt->year = (int16_t)v;
	dt->prec = 1;
	*kind = FP_DATE;
	if (i < len && s[i] == '-') {
		i++;
		if ((v = num(s, len, &i, 2)) < 1 || v > 12)
			return false;
		dt->month = (int8_t)v;
		dt->prec = 2;
		if (i < len && s[i] == '-') {
			i++;
			if ((v = num(s, len, &i, 2)) < 1 || v > days_in_month(dt->year, dt->month))
				return false;
			dt->day = (int8_t)v;
			dt->prec = 3;
		}
	}
	if (i < len && s[i] == 'T') {
		i++;
		*kind = FP_DATETIME;
		if (i == len)
			return true;
		if (dt->prec != 3 || !parse_time(s, len, &i, dt, 3))
			return false;
		if (i < len && s[i] == 'Z') {
			i++;
			dt->has_tz = true;
		} else if (i < len && (s[i] == '+' || s[i] == '-')) {
			int sign = s[i] == '-' ? -1 : 1;
			i++;
			int h = num(s, len, &i, 2);
			if (h < 0 || h > 14 || i >= len || s[i] != ':')
				return false;
			i++;
			int m = num(s, len, &i, 2);
			if (m < 0 || m > 59)
				return false;
			dt->has_tz = true;
			dt->tz = (int16_t)(sign * (h * 60 + m));
		}
	}
	return i == len;
}

char *fp_dt_text(struct arena *a, const struct fp_datetime *dt, enum fp_kind kind)
{
	char buf[64];
	size_t o = 0;
	if (kind != FP_TIME) {
		o += (size_t)snprintf(buf + o, sizeof buf - o, "%04d", dt->year);
		if (dt->prec >= 2)
			o += (size_t)snprintf(buf + o, sizeof buf - o, "-%02d", dt->month);
		if (dt->prec >= 3)
			o += (size_t)snprintf(buf + o, sizeof buf - o, "-%02d", dt->day);
		if (kind == FP_DATETIME && dt->prec >= 4)
			buf[o++] = 'T';
	}
	if (dt->prec >= 4)
		o += (size_t)snprintf(buf + o, sizeof buf - o, "%02d", dt->hour);
	if (dt->prec >= 5)
		o += (size_t)snprintf(buf + o, sizeof buf - o, ":%02d", dt->minute);
	if (dt->prec >= 6)
		o += (size_t)snprintf(buf + o, sizeof buf - o, ":%02d", dt->second);
	if (dt->prec >= 7)
		o += (size_t)snprintf(buf + o, sizeof buf - o, ".%03d", dt->ms);
	if (kind == FP_DATETIME && dt->prec >= 4 && dt->has_tz) {
		if (dt->tz == 0)
			buf[o++] = 'Z';
		else {
			int t = dt->tz < 0 ? -dt->tz : dt->tz;
			o += (size_t)snprintf(buf + o, sizeof buf - o, "%c%02d:%02d", dt->tz < 0 ? '-' : '+', t / 60,
					      t % 60);
		}
	}
	buf[o] = '\0';
	return arena_strdup(a, buf);
}

static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int *y, int *m, int *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t yy = yoe + era * 400;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = (int)(yy + (*m <= 2));
}

/* Shifts a date-time with an offset to UTC (minutes precision or finer). */
static struct fp_datetime to_utc(const struct fp_datetime *x)
{
	struct fp_datetime r = *x;
	if (!x->has_tz || x->tz == 0 || x->prec < 4)
		return r;
	int64_t mins = days_from_civil(x->year, x->month, x->day) * 1440 + x->hour * 60 + x->minute - x->tz;
	int64_t days = mins >= 0 ? mins / 1440 : -((-mins + 1439) / 1440);
	int64_t rem = mins - days * 1440;
	int y, m, d;
	civil_from_days(days, &y, &m, &d);
	r.year = (int16_t)y;
	r.month = (int8_t)m;
	r.day = (int8_t)d;
	r.hour = (int8_t)(rem / 60);
	r.minute = (int8_t)(rem % 60);
	r.tz = 0;
	return r;
}

int fp_dt_cmp(const struct fp_datetime *pa, const struct fp_datetime *pb, bool time_only)
{
	struct fp_datetime a = pa->has_tz && pb->has_tz ? to_utc(pa) : *pa;
	struct fp_datetime b = pa->has_tz && pb->has_tz ? to_utc(pb) : *pb;
	int fa[7] = {a.year, a.month, a.day, a.hour, a.minute, a.second * 1000 + a.ms, 0};
	int fb[7] = {b.year, b.month, b.day, b.hour, b.minute, b.second * 1000 + b.ms, 0};
	int pa_ = a.prec >= 7 ? 6 : a.prec, pb_ = b.prec >= 7 ? 6 : b.prec;
	if (!time_only && pa->has_tz != pb->has_tz && pa_ >= 4 && pb_ >= 4)
		return -2; /* one with an offset, one without: not comparable */
	int start = time_only ? 3 : 0;
	int common = pa_ < pb_ ? pa_ : pb_;
	for (int k = start; k < common; k++) {
		if (fa[k] != fb[k])
			return fa[k] < fb[k] ? -1 : 1;
	}
	if (pa_ != pb_)
		return -2;
	return 0;
}

const char *fp_unit_calendar(const char *w, size_t len)
{
	static const char *const words[] = {"year", "month", "week", "day", "hour", "minute", "second", "millisecond"};
	for (size_t k = 0; k < sizeof words / sizeof *words; k++) {
		size_t wl = strlen(words[k]);
		if ((len == wl || (len == wl + 1 && w[wl] == 's')) && !strncmp(w, words[k], wl))
			return words[k];
	}
	return NULL;
}

bool fp_dt_add(struct fp_datetime *dt, enum fp_kind kind, struct fp_dec v, const char *unit, int sign)
{
	static const struct {
		const char *u;
		int field; /* 0 year 1 month 2 week 3 day 4 hour 5 minute 6 second 7 ms */
	} map[] = {{"year", 0}, {"month", 1},  {"week", 2}, {"wk", 2},     {"day", 3}, {"d", 3},           {"hour", 4},
		   {"h", 4},    {"minute", 5}, {"min", 5},  {"second", 6}, {"s", 6},   {"millisecond", 7}, {"ms", 7}};
	int field = -1;
	for (size_t k = 0; k < sizeof map / sizeof *map; k++)
		if (!strcmp(unit, map[k].u))
			field = map[k].field;
	if (field < 0)
		return false;
	struct fp_dec t = v;
	int64_t n;
	/* whole units of the quantity's unit only: the fraction is dropped (0.1 's' adds nothing) */
	while (t.scale > 0) {
		t.m /= 10;
		t.scale--;
	}
	if (t.m > 1000000000 || t.m < -1000000000)
		return false; /* far beyond year 9999 in any unit: no overflow below */
	n = (int64_t)t.m;
	n *= sign;
	if (kind == FP_TIME) {
		int64_t ms = ((int64_t)dt->hour * 3600 + dt->minute * 60 + dt->second) * 1000 + dt->ms;
		int64_t mult[] = {0, 0, 0, 0, 3600000, 60000, 1000, 1};
		if (field < 4)
			return false;
		ms += n * mult[field];
		ms %= 86400000;
		if (ms < 0)
			ms += 86400000;
		dt->hour = (int8_t)(ms / 3600000);
		dt->minute = (int8_t)(ms / 60000 % 60);
		dt->second = (int8_t)(ms / 1000 % 60);
		dt->ms = (int16_t)(ms % 1000);
		return true;
	}
	if (field == 2) {
		field = 3;
		n *= 7;
	}
	if (field <= 1) {
		int64_t months = (int64_t)dt->year * 12 + (dt->month ? dt->month - 1 : 0) + (field == 0 ? n * 12 : n);
		if (field == 1 && dt->prec < 2) {
			months = (int64_t)dt->year * 12 + (n / 12) * 12;
		}
		dt->year = (int16_t)(months / 12);
		if (dt->prec >= 2)
			dt->month = (int8_t)(months % 12 + 1);
		if (dt->prec >= 3 && dt->day > days_in_month(dt->year, dt->month))
			dt->day = (int8_t)days_in_month(dt->year, dt->month);
		return dt->year >= 1 && dt->year <= 9999;
	}
	/* days and finer: in milliseconds from the epoch, at the value's precision */
	int64_t mult[] = {0, 0, 0, 86400000, 3600000, 60000, 1000, 1};
	int64_t need_prec[] = {0, 0, 0, 3, 4, 5, 6, 7};
	if (dt->prec < need_prec[field] && !(dt->prec == 6 && field == 7)) {
		/* coarser value: whole units of its precision only */
		int64_t units = n * mult[field];
		int64_t per = dt->prec >= 6 ? 1000 : mult[dt->prec >= 3 ? dt->prec : 3];
		n = units / per;
		field = dt->prec >= 6 ? 6 : (dt->prec >= 3 ? dt->prec : 3);
		if (dt->prec < 3)
			return true;
	}
	int64_t base = days_from_civil(dt->year, dt->month ? dt->month : 1, dt->day ? dt->day : 1) * 86400000 +
		       ((int64_t)dt->hour * 3600 + dt->minute * 60 + dt->second) * 1000 + dt->ms;
	base += n * mult[field];
	int64_t days = base >= 0 ? base / 86400000 : -((-base + 86399999) / 86400000);
	int64_t rem = base - days * 86400000;
	int y, m, d;
	civil_from_days(days, &y, &m, &d);
	dt->year = (int16_t)y;
	dt->month = (int8_t)m;
	dt->day = (int8_t)d;
	dt->hour = (int8_t)(rem / 3600000);
	dt->minute = (int8_t)(rem / 60000 % 60);
	dt->second = (int8_t)(rem / 1000 % 60);
	dt->ms = (int16_t)(rem % 1000);
	return y >= 1 && y <= 9999;
}
