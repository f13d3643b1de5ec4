/* Unit tests: the bounded tar reader (core/fhir/tar.h) on archives built
 * here block by block, and FHIR packages read as package.tgz
 * (profile_load_packages through libxml2's gunzip), the archives made with
 * tar(1) from the repository's own fixture package. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fhir/fhir_xml.h"
#include "fhir/profile.h"
#include "fhir/tar.h"
#include "base/fjson.h"
#include "testenv.h"

/* ---- archives in memory ---- */

struct mem {
	unsigned char *b;
	size_t n, cap, pos;
};

static long mem_read(void *ctx, void *buf, size_t n)
{
	struct mem *m = ctx;
	size_t k = m->n - m->pos < n ? m->n - m->pos : n;
	if (k > 7)
		k = 7; /* short reads, as a pipe gives them */
	memcpy(buf, m->b + m->pos, k);
	m->pos += k;
	return (long)k;
}

static void mem_add(struct mem *m, const void *p, size_t n)
{
	if (m->n + n > m->cap) {
		m->cap = (m->n + n) * 2;
		m->b = realloc(m->b, m->cap);
		assert_non_null(m->b);
	}
	memcpy(m->b + m->n, p, n);
	m->n += n;
}

/* A header block for name (with prefix, ustar), type and size; the content
 * follows, padded to 512. */
static void entry(struct mem *m, const char *prefix, const char *name, char type, const char *content, size_t size)
{
	unsigned char h[512] = {0};
	snprintf((char *)h, 100, "%s", name);
	memcpy(h + 100, "0000644", 7);
	snprintf((char *)h + 124, 12, "%011zo", size);
	memcpy(h + 136, "00000000000", 11);
	h[156] = (unsigned char)type;
	memcpy(h + 257,
	       "ustar\0"
	       "00",
	       8);
	if (prefix)
		snprintf((char *)h + 345, 155, "%s", prefix);
	unsigned sum = 0;
	memset(h + 148, ' ', 8);
	for (size_t i = 0; i < 512; i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum);
	mem_add(m, h, 512);
	if (size) {
		mem_add(m, content, size);
		static const unsigned char zero[512];
		if (size % 512)
			mem_add(m, zero, 512 - size % 512);
	}
}

static void end(struct mem *m)
{
	static const unsigned char zero[1024];
	mem_add(m, zero, sizeof zero);
}

struct seen {
	char names[8][TAR_MAX_NAME + 1];
	size_t sizes[8];
	size_t n;
};

static int collect_file(void *arg, const char *name, const char *data, size_t size)
{
	struct seen *s = arg;
	assert_int_equal(strlen(data), size); /* NUL-terminated past size */
	if (s->n < 8) {
		snprintf(s->names[s->n], sizeof s->names[s->n], "%s", name);
		s->sizes[s->n] = size;
	}
	s->n++;
	return 0;
}

static const struct tar_limits LIM = {16, 4096, 8192};

static int run(struct mem *m, const struct tar_limits *lim, struct seen *s, char *err, size_t errlen)
{
	memset(s, 0, sizeof *s);
	m->pos = 0;
	err[0] = '\0';
	return tar_each(mem_read, m, lim ? lim : &LIM, collect_file, s, err, errlen);
}

/* ustar names with a prefix, GNU long names, pax path records; directories
 * and links skipped. */
static void names(void **state)
{
	(void)state;
	struct mem m = {0};
	entry(&m, NULL, "package/", '5', NULL, 0);
	entry(&m, NULL, "package/a.json", '0', "{\"a\":1}", 7);
	entry(&m, "package/deep/er", "b.json", '0', "[]", 2);
	char longname[300];
	memset(longname, 'x', sizeof longname);
	memcpy(longname, "package/", 8);
	longname[299] = '\0';
	entry(&m, NULL, "././@LongLink", 'L', longname, 300); /* with its NUL */
	entry(&m, NULL, "package/xxxxx", '0', "long", 4);
	const char *pax = "30 path=package/from-pax.json\n";
	entry(&m, NULL, "PaxHeader/x", 'x', pax, strlen(pax));
	entry(&m, NULL, "package/short", '0', "pax", 3);
	entry(&m, NULL, "package/link", '2', NULL, 0);
	end(&m);
	struct seen s;
	char err[300];
	assert_int_equal(run(&m, NULL, &s, err, sizeof err), 0);
	assert_int_equal(s.n, 4);
	assert_string_equal(s.names[0], "package/a.json");
	assert_int_equal(s.sizes[0], 7);
	assert_string_equal(s.names[1], "package/deep/er/b.json");
	assert_string_equal(s.names[2], longname);
	assert_int_equal(s.sizes[2], 4);
	assert_string_equal(s.names[3], "package/from-pax.json");
	free(m.b);
}

static void expect_refused(struct mem *m, const struct tar_limits *lim, const char *words)
{
	struct seen s;
	char err[300];
	assert_int_equal(run(m, lim, &s, err, sizeof err), -1);
	if (!strstr(err, words))
		fail_msg("wanted \"%s\" in \"%s\"", words, err);
}

/* Unsafe names, bad headers, sizes and counts past the limits, archives cut
 * short: the whole archive is refused with a reason. */
static void refusals(void **state)
{
	(void)state;
	struct mem m = {0};
	entry(&m, NULL, "/etc/passwd", '0', "x", 1);
	end(&m);
	expect_refused(&m, NULL, "absolute");
	m.n = 0;
	entry(&m, NULL, "package/../../x.json", '0', "x", 1);
	end(&m);
	expect_refused(&m, NULL, "\"..\"");
	m.n = 0;
	entry(&m, "..", "x.json", '0', "x", 1);
	end(&m);
	expect_refused(&m, NULL, "\"..\"");
	m.n = 0;
	entry(&m, NULL, "././@LongLink", 'L', "../up", 6);
	entry(&m, NULL, "package/ok", '0', "x", 1);
	end(&m);
	expect_refused(&m, NULL, "\"..\"");
	m.n = 0;
	entry(&m, NULL, "PaxHeader/x", 'x', "17 path=/abs/a.j\n", 17);
	entry(&m, NULL, "package/ok", '0', "x", 1);
	end(&m);
	expect_refused(&m, NULL, "absolute");
	/* a bad checksum */
	m.n = 0;
	entry(&m, NULL, "package/a.json", '0', "x", 1);
	m.b[0] = 'q';
	end(&m);
	expect_refused(&m, NULL, "checksum");
	/* one file too large, too much in all, too many entries */
	char big[5000];
	memset(big, 'b', sizeof big);
	m.n = 0;
	entry(&m, NULL, "package/big", '0', big, sizeof big);
	end(&m);
	expect_refused(&m, NULL, "more than 4096");
	m.n = 0;
	for (int i = 0; i < 3; i++)
		entry(&m, NULL, "package/part", '0', big, 4000);
	end(&m);
	expect_refused(&m, NULL, "bytes of content");
	m.n = 0;
	for (int i = 0; i < 17; i++)
		entry(&m, NULL, "package/d/", '5', NULL, 0);
	end(&m);
	expect_refused(&m, NULL, "more than 16 entries");
	/* cut inside a file's content */
	m.n = 0;
	entry(&m, NULL, "package/a.json", '0', big, 1000);
	m.n -= 100;
	expect_refused(&m, NULL, "cut short");
	/* a malformed pax record */
	m.n = 0;
	entry(&m, NULL, "PaxHeader/x", 'x', "99 path=x\n", 10);
	end(&m);
	expect_refused(&m, NULL, "does not parse");
	/* nothing at all */
	m.n = 0;
	expect_refused(&m, NULL, "empty");
	free(m.b);
}

/* ---- package.tgz ---- */

static char tmp[64];

static int load(const char *dir, char *err, size_t errlen, struct profile_set **out)
{
	struct profile_set *ps = profile_set_new(NULL);
	assert_non_null(ps);
	err[0] = '\0';
	int n = profile_load_packages(ps, dir, err, errlen);
	*out = ps;
	return n;
}

/* The fixture package as package.tgz loads the same six resources as the
 * unpacked folder, and validates the same way. */
static void package_tgz(void **state)
{
	(void)state;
	char cwd[4096], err[1024];
	assert_non_null(getcwd(cwd, sizeof cwd));
	snprintf(tmp, sizeof tmp, "/tmp/cw-tgz-XXXXXX");
	assert_non_null(mkdtemp(tmp));
	run_shell("mkdir -p %s/pkgs && tar czf %s/pkgs/r4-core.tgz -C %s/tests/fixtures/packages/r4-core-profiles "
		  "package",
		  tmp, tmp, cwd);
	char dir[128];
	snprintf(dir, sizeof dir, "%s/pkgs", tmp);
	struct profile_set *ps;
	int n = load(dir, err, sizeof err, &ps);
	if (n != 6)
		fail_msg("%d %s", n, err);
	assert_int_equal(profile_seal(ps, err, sizeof err), 0);
	assert_true(profile_known(ps, "http://hl7.org/fhir/StructureDefinition/bodyweight"));
	const char *obs = "{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"w\"}}";
	cJSON *o = fjson_parse(obs, strlen(obs), NULL, NULL);
	struct outcome oo = OUTCOME_INIT;
	assert_true(profile_validate(ps, o, "http://hl7.org/fhir/StructureDefinition/bodyweight", &oo, NULL) > 0);
	outcome_release(&oo);
	cJSON_Delete(o);
	profile_set_free(ps);
	/* the archive named directly, and beside an unpacked copy of another
	 * package */
	snprintf(dir, sizeof dir, "%s/pkgs/r4-core.tgz", tmp);
	n = load(dir, err, sizeof err, &ps);
	assert_int_equal(n, 6);
	profile_set_free(ps);
	run_shell("mkdir -p %s/pkgs/lipid/package && cp %s/tests/fixtures/slicing/lipid/*.json %s/pkgs/lipid/package/ "
		  "&& echo "
		  "'{\"name\":\"lipid\"}' > %s/pkgs/lipid/package/package.json",
		  tmp, cwd, tmp, tmp);
	snprintf(dir, sizeof dir, "%s/pkgs", tmp);
	n = load(dir, err, sizeof err, &ps);
	if (n != 12)
		fail_msg("%d %s", n, err);
	profile_set_free(ps);
	/* a plain (not gzipped) tar reads too: libxml2 passes it through */
	run_shell("rm -rf %s/pkgs/* && tar cf %s/pkgs/plain.tgz -C %s/tests/fixtures/packages/r4-core-profiles package",
		  tmp, tmp, cwd);
	n = load(dir, err, sizeof err, &ps);
	assert_int_equal(n, 6);
	profile_set_free(ps);
}

/* An archive with an absolute name, or one that is not a tar, is an error
 * naming the file; a JSON file that does not parse names its entry. */
static void package_tgz_refused(void **state)
{
	(void)state;
	char err[1024], dir[128];
	struct profile_set *ps;
	snprintf(dir, sizeof dir, "%s/pkgs", tmp);
	run_shell("rm -rf %s/pkgs/* && mkdir -p %s/abs/package && echo '{}' > %s/abs/package/x.json && tar czPf "
		  "%s/pkgs/abs.tgz %s/abs/package/x.json",
		  tmp, tmp, tmp, tmp, tmp);
	assert_int_equal(load(dir, err, sizeof err, &ps), -1);
	assert_non_null(strstr(err, "abs.tgz: entry 1: the name \"/"));
	assert_non_null(strstr(err, "is absolute"));
	profile_set_free(ps);
	run_shell("rm -rf %s/pkgs/* && echo 'not a tar at all' | gzip > %s/pkgs/junk.tgz", tmp, tmp);
	assert_int_equal(load(dir, err, sizeof err, &ps), -1);
	assert_non_null(strstr(err, "junk.tgz: entry 1: not a tar header"));
	profile_set_free(ps);
	run_shell("rm -rf %s/pkgs/* && head -c 2000 /dev/zero | tr '\\0' x | gzip > %s/pkgs/junk.tgz", tmp, tmp);
	assert_int_equal(load(dir, err, sizeof err, &ps), -1);
	assert_non_null(strstr(err, "junk.tgz: entry 1: not a tar header (checksum or size)"));
	profile_set_free(ps);
	run_shell("rm -rf %s/pkgs/* %s/abs && mkdir -p %s/bad/package && echo '{' > "
		  "%s/bad/package/StructureDefinition-x.json "
		  "&& "
		  "tar czf %s/pkgs/bad.tgz -C %s/bad package",
		  tmp, tmp, tmp, tmp, tmp, tmp);
	assert_int_equal(load(dir, err, sizeof err, &ps), -1);
	assert_non_null(strstr(err, "bad.tgz: package/StructureDefinition-x.json: not JSON"));
	profile_set_free(ps);
	/* no URL reaches libxml2's network input */
	char why[200];
	assert_null(fhir_xml_file_open("http://127.0.0.1:9/package.tgz", why, sizeof why));
	assert_non_null(strstr(why, "not a local file"));
	run_shell("rm -rf %s", tmp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(names),
		cmocka_unit_test(refusals),
		cmocka_unit_test(package_tgz),
		cmocka_unit_test(package_tgz_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
