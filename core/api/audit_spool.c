/* audit_spool — access records spooled where the store cannot be written
 * (audit_spool.h). */
#include "api/audit_spool.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/crypto.h"
#include "base/file.h"
#include "base/log.h"
#include "base/strbuf.h"

#define SPOOL_DIR "audit-spool"
#define SPOOL_MAX_FILE (64u << 20) /* one run's records */

/* A new random (version 4) UUID as the record's id. */
static int new_id(char out[CRYPTO_UUID_TEXT])
{
	uint8_t u[16];
	if (crypto_random(u, sizeof u) != 0)
		return -1;
	u[6] = (uint8_t)((u[6] & 0x0f) | 0x40);
	u[8] = (uint8_t)((u[8] & 0x3f) | 0x80);
	crypto_uuid_format(u, out);
	return 0;
}

int audit_spool_put(const char *data_dir, const char *run, cJSON *const *evs, size_t n, char *err, size_t errlen)
{
	char dir[4200], path[4400], why[512];
	snprintf(dir, sizeof dir, "%s/%s", data_dir, SPOOL_DIR);
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
		return -1;
	}
	snprintf(path, sizeof path, "%s/%s.ndjson", dir, run);
	struct strbuf b = STRBUF_INIT;
	bool ok = true;
	for (size_t i = 0; i < n && ok; i++) {
		char id[CRYPTO_UUID_TEXT];
		if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(evs[i], "id")) &&
		    (new_id(id) != 0 || !cJSON_AddStringToObject(evs[i], "id", id))) {
			ok = false;
			break;
		}
		char *line = cJSON_PrintUnformatted(evs[i]);
		ok = line != NULL;
		if (ok) {
			strbuf_adds(&b, line);
			strbuf_addc(&b, '\n');
		}
		free(line);
	}
	size_t len = 0;
	char *text = strbuf_take(&b, &len);
	int rc = ok && text ? file_write_durable(path, text, len, why, sizeof why) : -1;
	if (rc != 0)
		snprintf(err, errlen, "cannot write the access record to %s: %s", path,
			 ok && text ? why : "out of memory");
	free(text);
	return rc;
}

/* Stores every record of one spooled run; 0 when all are stored. */
static int import_file(struct store *st, const char *path, long *stored, char *err, size_t errlen)
{
	char why[256];
	size_t len = 0;
	char *text = file_read_all(path, SPOOL_MAX_FILE, &len, why, sizeof why);
	if (!text) {
		snprintf(err, errlen, "%s: %s", path, why);
		return -1;
	}
	int rc = 0;
	for (char *line = text, *end = text + len; line < end && rc == 0;) {
		char *nl = memchr(line, '\n', (size_t)(end - line));
		size_t llen = nl ? (size_t)(nl - line) : (size_t)(end - line);
		cJSON *ev = llen ? cJSON_ParseWithLength(line, llen) : NULL;
		const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ev, "id"));
		const char *rt = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ev, "resourceType"));
		if (llen && (!id || !rt || strcmp(rt, "AuditEvent") != 0)) {
			snprintf(err, errlen, "%s: a line is not an AuditEvent with an id", path);
			rc = -1;
		} else if (ev) {
			struct store_error se = {0};
			enum store_status s = store_create(st, "AuditEvent", ev, id, NULL, &se);
			if (s == STORE_OK)
				(*stored)++;
			else if (s != STORE_CONFLICT) { /* a conflict: imported before */
				snprintf(err, errlen, "%s: %s", path, se.message);
				rc = -1;
			}
		}
		cJSON_Delete(ev);
		line += llen + 1;
	}
	free(text);
	return rc;
}

static bool spooled(const char *name)
{
	size_t n = strlen(name);
	return n > 7 && !strcmp(name + n - 7, ".ndjson") && name[0] != '.';
}

long audit_spool_import(struct store *st, const char *data_dir, char *err, size_t errlen)
{
	char dir[4200];
	snprintf(dir, sizeof dir, "%s/%s", data_dir, SPOOL_DIR);
	DIR *d = opendir(dir);
	if (!d)
		return 0; /* nothing spooled */
	long stored = 0;
	int rc = 0;
	const struct dirent *de;
	while (rc == 0 && (de = readdir(d))) {
		if (!spooled(de->d_name))
			continue;
		char path[4600];
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		rc = import_file(st, path, &stored, err, errlen);
		if (rc == 0 && unlink(path) != 0) {
			snprintf(err, errlen, "cannot remove %s: %s", path, strerror(errno));
			rc = -1;
		}
	}
	closedir(d);
	if (stored) {
		file_sync_dir(dir);
		char count[32];
		snprintf(count, sizeof count, "%ld", stored);
		log_event(LOG_INFO, "audit_spool", "spooled access records imported", "records", count,
			  (const char *)NULL);
	}
	return rc == 0 ? stored : -1;
}
