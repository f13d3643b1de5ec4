/* Replays a libFuzzer corpus in the ordinary test run: every file named on
 * the command line, or every regular file in the directories named, is fed to
 * LLVMFuzzerTestOneInput once. Prints one TAP line per input; a crash or an
 * abort() inside the harness fails the run. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int n_run;

static int replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		printf("not ok %d - %s (cannot open)\n", ++n_run, path);
		return 1;
	}
	size_t cap = 4096, len = 0;
	uint8_t *buf = malloc(cap);
	size_t r;
	while (buf && (r = fread(buf + len, 1, cap - len, f)) > 0) {
		len += r;
		if (len == cap) {
			uint8_t *nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
			cap *= 2;
		}
	}
	fclose(f);
	if (!buf) {
		printf("not ok %d - %s (out of memory)\n", ++n_run, path);
		return 1;
	}
	/* Hand the harness an exactly sized copy so ASan sees overreads. */
	uint8_t *exact = malloc(len ? len : 1);
	if (!exact) {
		free(buf);
		return 1;
	}
	memcpy(exact, buf, len);
	free(buf);
	LLVMFuzzerTestOneInput(exact, len);
	free(exact);
	printf("ok %d - %s\n", ++n_run, path);
	fflush(stdout);
	return 0;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int replay_dir(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d) {
		printf("not ok %d - %s (no corpus directory)\n", ++n_run, dir);
		return 1;
	}
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			char **nn = realloc(names, cap * sizeof *names);
			if (!nn)
				break;
			names = nn;
		}
		size_t l = strlen(dir) + strlen(e->d_name) + 2;
		names[n] = malloc(l);
		if (!names[n])
			break;
		snprintf(names[n], l, "%s/%s", dir, e->d_name);
		n++;
	}
	closedir(d);
	qsort(names, n, sizeof *names, cmp_names);
	int bad = 0;
	for (size_t i = 0; i < n; i++) {
		struct stat st;
		if (stat(names[i], &st) == 0 && S_ISREG(st.st_mode))
			bad |= replay_file(names[i]);
		free(names[i]);
	}
	free(names);
	return bad;
}

int main(int argc, char **argv)
{
	int bad = 0;
	if (argc < 2) {
		/* Default corpus: tests/fuzz/corpus/<name>, name from argv[0]. */
		const char *base = strrchr(argv[0], '/');
		base = base ? base + 1 : argv[0];
		if (strncmp(base, "replay_", 7) == 0)
			base += 7;
		char dir[512];
		snprintf(dir, sizeof dir, "tests/fuzz/corpus/%s", base);
		bad = replay_dir(dir);
	} else {
		for (int i = 1; i < argc; i++) {
			struct stat st;
			if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode))
				bad |= replay_dir(argv[i]);
			else
				bad |= replay_file(argv[i]);
		}
	}
	printf("1..%d\n", n_run);
	return bad;
}
