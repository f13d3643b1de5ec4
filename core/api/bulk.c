#include "api/bulk.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api/audit.h"
#include "api/purpose.h"
#include "api/rest_int.h"
#include "auth/scope.h"
#include "base/file.h"
#include "base/fjson.h"
#include "base/log.h"
#include "fhir/compartment.h"
#include "fhir/validate.h"
#include "plugin/plugin_host.h"

/* Resources the export hooks see at once (docs/bulk.md, "Purpose and
 * diagnosis display in the files"). */
#define BULK_BATCH 32
#define BULK_SEEN 512 /* references one batch holds at most: more than BULK_BATCH * 4 */

struct job {
	char id[BULK_ID_SIZE];
	cJSON *rec; /* the record: the description, "state", "created", and once finished "finished" and "output" */
	enum bulk_state state;
	atomic_bool cancel;
	atomic_llong written; /* resources written so far */
	char progress[160];   /* guarded by the table's mutex */
	char reason[256];     /* failed: why */
	int64_t finished_ms;
	struct job *next;
};

struct bulk {
	struct store *store;
	const struct config *cfg;
	char *dir;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t worker;
	atomic_bool stop;
	struct job *jobs;
	_Atomic(const struct consent_wording *) words; /* bulk_set_wording */
	_Atomic(const struct plugin_host *) plugins;   /* bulk_set_plugins */
	/* the store keeps the jobs (store_jobs_shared): the table and files
	 * are in the database, shared by every gateway on it; dir holds only
	 * the files of the job this gateway's worker is writing */
	const struct store_job_ops *shared;
	pthread_t keeper; /* shared: keeps the running job's lease (keeper) */
	bool keeper_started;
	struct job *current; /* shared: the job the worker runs, or NULL (mu) */
};

static const char *const state_names[] = {"queued", "running", "complete", "failed"};

/* An export ended by a transient store error runs again (run_job): up to
 * RETRY_TRIES runs, RETRY_FIRST_MS before the second, doubling up to
 * RETRY_MAX_MS (about 23 s of waiting in all). */
#define RETRY_TRIES 8
#define RETRY_FIRST_MS 250
#define RETRY_MAX_MS 5000

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The CLOCK_REALTIME time ms milliseconds from now, for the timed waits on
 * b->cv. */
static struct timespec deadline_in(int64_t ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	ts.tv_sec += ts.tv_nsec / 1000000000L;
	ts.tv_nsec %= 1000000000L;
	return ts;
}

/* --- the record on disk -------------------------------------------------- */

static void job_path(const struct bulk *b, const char *id, const char *file, char *out, size_t n)
{
	snprintf(out, n, "%s/%s%s%s", b->dir, id, file ? "/" : "", file ? file : "");
}

/* Sets obj[key] to item (taken over), replacing any value it had. */
static void set_member(cJSON *obj, const char *key, cJSON *item)
{
	cJSON_DeleteItemFromObjectCaseSensitive(obj, key);
	cJSON_AddItemToObject(obj, key, item);
}

/* Writes the record (the caller holds the lock or owns the job alone). A
 * shared job's record is only brought up to date here: the worker stores it
 * when the job ends (shared_settle). */
static int job_save(const struct bulk *b, struct job *j)
{
	set_member(j->rec, "state", cJSON_CreateString(state_names[j->state]));
	if (j->state == BULK_FAILED && !cJSON_GetObjectItemCaseSensitive(j->rec, "reason"))
		cJSON_AddStringToObject(j->rec, "reason", j->reason);
	if (b->shared)
		return 0;
	size_t len = 0;
	char *text = fjson_print(j->rec, false, &len);
	if (!text)
		return -1;
	char path[4200], why[256];
	job_path(b, j->id, "job.json", path, sizeof path);
	int rc = file_write_durable(path, text, len, why, sizeof why);
	free(text);
	return rc;
}

/* Removes a job's directory and everything in it. */
static void job_remove_files(const struct bulk *b, const char *id, bool outputs_only)
{
	char dir[4200];
	job_path(b, id, NULL, dir, sizeof dir);
	DIR *d = opendir(dir);
	if (d) {
		struct dirent *e;
		while ((e = readdir(d))) {
			if (e->d_name[0] == '.')
				continue;
			size_t n = strlen(e->d_name);
			if (outputs_only && (n < 7 || strcmp(e->d_name + n - 7, ".ndjson") != 0))
				continue;
			char p[4500];
			snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
			unlink(p);
		}
		closedir(d);
	}
	if (!outputs_only)
		rmdir(dir);
}

static void job_free(struct job *j)
{
	if (j) {
		cJSON_Delete(j->rec);
		free(j);
	}
}

static struct job *job_new(const char *id, cJSON *rec)
{
	struct job *j = calloc(1, sizeof *j);
	if (!j)
		return NULL;
	snprintf(j->id, sizeof j->id, "%s", id);
	j->rec = rec;
	return j;
}

static struct job *find(struct bulk *b, const char *id)
{
	for (struct job *j = b->jobs; j; j = j->next)
		if (strcmp(j->id, id) == 0)
			return j;
	return NULL;
}

static void unlink_job(struct bulk *b, struct job *j)
{
	for (struct job **p = &b->jobs; *p; p = &(*p)->next)
		if (*p == j) {
			*p = j->next;
			return;
		}
}

static bool id_ok(const char *id)
{
	size_t n = strlen(id);
	if (n == 0 || n >= BULK_ID_SIZE)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f') || id[i] == '-'))
			return false;
	return true;
}

/* Reads the record of DIR/id; a record that cannot be read is a failed job. */
static struct job *job_load(const struct bulk *b, const char *id)
{
	char path[4200];
	job_path(b, id, "job.json", path, sizeof path);
	cJSON *rec = NULL;
	FILE *f = fopen(path, "rb");
	if (f) {
		fseek(f, 0, SEEK_END);
		long n = ftell(f);
		rewind(f);
		char *text = n > 0 && n < (64L << 20) ? malloc((size_t)n + 1) : NULL;
		if (text && fread(text, 1, (size_t)n, f) == (size_t)n) {
			text[n] = '\0';
			rec = fjson_parse(text, (size_t)n, NULL, NULL);
		}
		free(text);
		fclose(f);
	}
	const cJSON *state = cJSON_GetObjectItemCaseSensitive(rec, "state");
	const cJSON *snap = cJSON_GetObjectItemCaseSensitive(rec, "snapshot");
	struct job *j = job_new(id, rec ? rec : cJSON_CreateObject());
	if (!j || !j->rec) {
		job_free(j);
		return NULL;
	}
	const cJSON *fin = cJSON_GetObjectItemCaseSensitive(rec, "finished");
	j->finished_ms = cJSON_IsNumber(fin) ? (int64_t)fin->valuedouble : now_ms();
	if (!cJSON_IsString(state) || !cJSON_IsObject(snap)) {
		j->state = BULK_FAILED;
		snprintf(j->reason, sizeof j->reason,
			 "the record of this export could not be read after a restart; start the export again");
		job_remove_files(b, id, true);
		return j;
	}
	if (!strcmp(state->valuestring, "complete")) {
		j->state = BULK_COMPLETE;
	} else if (!strcmp(state->valuestring, "failed")) {
		j->state = BULK_FAILED;
		const char *why = rest_str_member(rec, "reason");
		snprintf(j->reason, sizeof j->reason, "%s", why ? why : "the export failed");
	} else {
		j->state = BULK_QUEUED; /* interrupted: runs again from the start */
		cJSON_DeleteItemFromObjectCaseSensitive(j->rec, "output");
	}
	return j;
}

/* --- writing a job --------------------------------------------------------- */

struct writer {
	struct bulk *b;
	struct job *j;
	const char *type;
	char *elements; /* this type's _elements, or NULL */
	FILE *f;
	int part;
	uint64_t bytes;
	long long count;
	cJSON *output;
	char name[STORE_TYPE_SIZE + 32];
	uint64_t max_bytes;
	int err;                /* errno of a failed write */
	enum scope_reach reach; /* how far the job's client reaches this type (bulk_egress_type) */
	bool part2;             /* the open file holds 42CFRPart2 data: the manifest carries the notice */
	/* the Consents that permitted what the open file holds: the manifest names them */
	struct egress_cited cited[EGRESS_MAX_CITED];
	size_t ncited;
	/* the export hooks (bulk_set_plugins; NULL: none is loaded): resources
	 * wait in batch until BULK_BATCH are there or the type ends (batch_flush) */
	const struct plugin_host *hooks;
	cJSON *batch;  /* searchset Bundle: match entries to write, include entries for context */
	size_t nbatch; /* match entries */
	char *texts;   /* their texts as they passed bulk_egress, one after another */
	size_t tlen, tcap, off[BULK_BATCH + 1];
	bool raw;          /* a text of the batch could not be read: written as it is */
	char refused[200]; /* a hook refused the export: why */
	/* "Type/id" of what the batch holds (batch_seen): open addressing */
	char seen[BULK_SEEN][STORE_TYPE_SIZE + STORE_ID_SIZE];
};

/* The job's client (its "access" record, written at kick-off when the
 * request was authenticated): its scopes and launch patient. NULL scopes
 * when the job has none: auth was off, everything may leave. */
static const char *access_member(const cJSON *rec, const char *name)
{
	return rest_str_member(cJSON_GetObjectItemCaseSensitive(rec, "access"), name);
}

/* The egress decision of bulk export for one type, taken before the type is
 * read: how far the job's client reaches it with read and search (a
 * system/ or user/ scope: every resource; a patient/ scope: its patient's
 * compartment; none: the type is left out), and for the patient's
 * compartment, the compartment the scan is narrowed to (*confined, a new
 * JSON array of that one Patient id, or of none when the export's own
 * Patients leave it out; the caller frees it). */
static enum scope_reach bulk_egress_type(const cJSON *rec, const char *type, const char *patients, char **confined)
{
	*confined = NULL;
	const char *scopes = access_member(rec, "scopes");
	if (!scopes)
		return SCOPE_REACH_ALL;
	if (!strcmp(type, "AuditEvent") && !audit_scopes_admit(scopes))
		return SCOPE_REACH_NONE; /* the access record: its readers only */
	const char *pid = access_member(rec, "patient");
	enum scope_reach reach = scope_reach(scopes, type, SCOPE_R | SCOPE_S, pid && pid[0]);
	if (reach != SCOPE_REACH_PATIENT)
		return reach;
	cJSON *one = cJSON_CreateArray();
	bool within = !patients || !strcmp(patients, "*");
	if (!within) {
		cJSON *list = fjson_parse(patients, strlen(patients), NULL, NULL);
		const cJSON *e;
		cJSON_ArrayForEach(e, list) within |= cJSON_IsString(e) && !strcmp(e->valuestring, pid);
		cJSON_Delete(list);
	}
	if (within)
		cJSON_AddItemToArray(one, cJSON_CreateString(pid));
	*confined = one ? cJSON_PrintUnformatted(one) : NULL;
	cJSON_Delete(one);
	return *confined ? SCOPE_REACH_PATIENT : SCOPE_REACH_NONE;
}

/* The egress point of bulk export: every resource passes here before it is
 * written to a file, with the decision bulk_egress_type took for its type
 * in w. It keeps *text as it is (0) or drops the resource (1); a rule that
 * changes a resource sets *owned to a new malloc'd text. The client's
 * scopes apply by type (a type out of reach leaves nothing; a patient/
 * scope's type is read from its patient's compartment only), then its
 * consent (a withheld resource is left out) and its purpose's view. */
static int bulk_egress(struct writer *w, const char *id, const char **text, size_t *len, char **owned)
{
	(void)id;
	*owned = NULL;
	if (w->reach == SCOPE_REACH_NONE)
		return 1;
	const cJSON *rec = w->j->rec;
	if (w->reach == SCOPE_REACH_PATIENT) {
		/* the scan is narrowed by the store's patient, subject and
		 * beneficiary references; the compartment (R4 CompartmentDefinition
		 * Patient, fhir/compartment.h) decides, as it does for REST */
		cJSON *res = fjson_parse(*text, *len, NULL, NULL);
		bool within = compartment_patient_has(w->type, res, access_member(rec, "patient"));
		cJSON_Delete(res);
		if (!within)
			return 1;
	}
	/* labels and consent: what the job's client may see of this resource
	 * (api/egress.h; the local operator when the job names none) */
	if (egress_may_need(*text, *len)) {
		cJSON *res = fjson_parse(*text, *len, NULL, NULL);
		if (res) { /* stored text is JSON: unreadable, the file keeps it as it is */
			struct egress eg;
			egress_begin_client(&eg, w->b->store, w->b->cfg, access_member(rec, "client_id"));
			eg.words = atomic_load(&w->b->words);
			bool ok = egress_allows(&eg, res);
			w->part2 |= ok && eg.part2;
			if (ok)
				egress_cite_into(w->cited, &w->ncited, &eg);
			egress_end(&eg, NULL);
			cJSON_Delete(res);
			if (!ok)
				return 1;
		}
	}
	/* then the purpose's minimum-necessary view (with export hooks, once
	 * they ran: batch_flush) */
	if (w->hooks)
		return 0;
	return purpose_filter_text(rec, text, len, owned) == 0 ? 0 : 1;
}

static int writer_close(struct writer *w)
{
	if (!w->f)
		return 0;
	int rc = fflush(w->f) == 0 && fsync(fileno(w->f)) == 0 ? 0 : -1;
	if (rc != 0)
		w->err = errno;
	rc |= fclose(w->f);
	w->f = NULL;
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "type", w->type);
	cJSON_AddStringToObject(o, "file", w->name);
	cJSON_AddNumberToObject(o, "count", (double)w->count);
	if (w->part2)
		cJSON_AddTrueToObject(o, "part2");
	w->part2 = false;
	if (w->ncited) {
		/* as the manifest names them: Reference {reference, display} */
		cJSON *list = cJSON_AddArrayToObject(o, "consents");
		for (size_t i = 0; list && i < w->ncited; i++) {
			cJSON *e = egress_consent_extension(&w->cited[i]);
			cJSON *ref = cJSON_DetachItemFromObjectCaseSensitive(e, "valueReference");
			cJSON_Delete(e);
			if (ref)
				cJSON_AddItemToArray(list, ref);
		}
	}
	w->ncited = 0;
	cJSON_AddItemToArray(w->output, o);
	return rc;
}

static int writer_open(struct writer *w)
{
	w->part++;
	snprintf(w->name, sizeof w->name, "%s-%d.ndjson", w->type, w->part);
	char path[4300];
	job_path(w->b, w->j->id, w->name, path, sizeof path);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	w->f = fd >= 0 ? fdopen(fd, "wb") : NULL;
	if (!w->f) {
		w->err = errno;
		if (fd >= 0)
			close(fd);
		return -1;
	}
	setvbuf(w->f, NULL, _IOFBF, 1 << 16);
	w->bytes = 0;
	w->count = 0;
	return 0;
}

/* Writes one resource's text as its line, into the next file once this
 * one has something and would pass the size. 0, or 1 on a failure (w->err). */
static int write_line(struct writer *w, const char *text, size_t len)
{
	if (w->f && w->count > 0 && w->bytes + len + 1 > w->max_bytes && writer_close(w) != 0)
		return 1;
	if (!w->f && writer_open(w) != 0)
		return 1;
	if (fwrite(text, 1, len, w->f) != len || putc('\n', w->f) == EOF) {
		w->err = errno ? errno : EIO;
		return 1;
	}
	w->bytes += len + 1;
	w->count++;
	atomic_fetch_add(&w->j->written, 1);
	return 0;
}

/* Writes res (consumed) after the rules that come last: the purpose's view
 * and _elements. 0, or 1 on a failure (w->err). */
static int write_tree(struct writer *w, cJSON *res)
{
	purpose_filter_job(w->j->rec, res);
	size_t len = 0;
	char *text = fjson_print(w->elements ? rest_elements_only(res, w->elements) : res, false, &len);
	cJSON_Delete(res);
	if (!text) {
		w->err = ENOMEM;
		return 1;
	}
	int rc = write_line(w, text, len);
	free(text);
	return rc;
}

/* Adds res (consumed) to entries with its search mode; false when out of memory. */
static bool batch_entry(cJSON *entries, cJSON *res, const char *mode)
{
	cJSON *e = cJSON_CreateObject(), *search = cJSON_CreateObject();
	if (!e || !search || !cJSON_AddStringToObject(search, "mode", mode)) {
		cJSON_Delete(e);
		cJSON_Delete(search);
		cJSON_Delete(res);
		return false;
	}
	cJSON_AddItemToObject(e, "resource", res);
	cJSON_AddItemToObject(e, "search", search);
	cJSON_AddItemToArray(entries, e);
	return true;
}

/* "Type/id" of a reference ref to a Patient or a Condition, split; false
 * for any other. */
static bool context_ref(const char *ref, char type[STORE_TYPE_SIZE], char id[STORE_ID_SIZE])
{
	static const char *const kinds[] = {"Patient/", "Condition/"};
	for (size_t k = 0; ref && k < 2; k++) {
		size_t kl = strlen(kinds[k]);
		if (strncmp(ref, kinds[k], kl) != 0)
			continue;
		size_t il = strcspn(ref + kl, "/");
		if (!il || il >= STORE_ID_SIZE || ref[kl + il])
			return false;
		snprintf(type, STORE_TYPE_SIZE, "%.*s", (int)kl - 1, ref);
		snprintf(id, STORE_ID_SIZE, "%s", ref + kl);
		return true;
	}
	return false;
}

/* Whether the job's client may see res of type (its scopes, its patient's
 * compartment, labels and consent): what the hooks may consult without
 * writing it. */
static bool may_see(struct writer *w, const char *type, const cJSON *res)
{
	const cJSON *rec = w->j->rec;
	const char *scopes = access_member(rec, "scopes");
	if (scopes) {
		const char *pid = access_member(rec, "patient");
		enum scope_reach reach = scope_reach(scopes, type, SCOPE_R | SCOPE_S, pid && pid[0]);
		if (reach == SCOPE_REACH_NONE ||
		    (reach == SCOPE_REACH_PATIENT && !compartment_patient_has(type, res, pid)))
			return false;
	}
	struct egress eg;
	egress_begin_client(&eg, w->b->store, w->b->cfg, access_member(rec, "client_id"));
	bool ok = egress_allows(&eg, res);
	egress_end(&eg, NULL);
	return ok;
}

/* Whether the batch holds "Type/id" key already; when not, and there is
 * room, it is noted as held. */
static bool batch_seen(struct writer *w, const char *key)
{
	uint32_t h = 2166136261u;
	for (const char *c = key; *c; c++)
		h = (h ^ (unsigned char)*c) * 16777619u;
	for (size_t i = 0; i < BULK_SEEN; i++) {
		char *slot = w->seen[(h + i) % BULK_SEEN];
		if (!slot[0]) {
			if (i < BULK_SEEN / 2) /* at most half full: a miss stays short */
				snprintf(slot, sizeof w->seen[0], "%s", key);
			return false;
		}
		if (!strcmp(slot, key))
			return true;
	}
	return false;
}

/* Adds to the batch, as include entries, the Patients and Conditions its
 * resources name and it does not hold (read from the store, when the
 * client may see them): the hooks resolve a diagnosis and its person's
 * preference from them. */
static void batch_context(struct writer *w)
{
	cJSON *entries = cJSON_GetObjectItemCaseSensitive(w->batch, "entry");
	size_t n = (size_t)cJSON_GetArraySize(entries);
	cJSON *e = entries ? entries->child : NULL;
	for (size_t i = 0; i < n && e; i++, e = e->next) {
		const cJSON *res = cJSON_GetObjectItemCaseSensitive(e, "resource");
		/* the references of its top level and of one level below (Encounter.diagnosis.condition) */
		const cJSON *m, *x;
		cJSON_ArrayForEach(m, res)
		{
			const cJSON *list = cJSON_IsArray(m) ? m : NULL;
			const cJSON *one = cJSON_IsObject(m) ? m : NULL;
			for (const cJSON *it = list ? list->child : one; it; it = list ? it->next : NULL) {
				const cJSON *refs[8];
				size_t nr = 0;
				refs[nr++] = it;
				cJSON_ArrayForEach(x, it) if (cJSON_IsObject(x) && nr < 8) refs[nr++] = x;
				for (size_t r = 0; r < nr; r++) {
					char type[STORE_TYPE_SIZE], id[STORE_ID_SIZE];
					const char *ref = rest_str_member(refs[r], "reference");
					if (!context_ref(ref, type, id) || batch_seen(w, ref))
						continue;
					cJSON *got = NULL;
					struct store_error err = {0};
					if (store_read(w->b->store, type, id, &got, &err) != STORE_OK || !got)
						continue;
					if (!may_see(w, type, got)) {
						cJSON_Delete(got);
						continue;
					}
					batch_entry(entries, got, "include");
				}
			}
		}
	}
}

/* Text k of the batch and its length. */
static const char *batch_text(const struct writer *w, size_t k, size_t *len)
{
	*len = w->off[k + 1] - w->off[k] - 1; /* less the ',' after it */
	return w->texts + w->off[k];
}

/* The batch's texts as a searchset Bundle of match entries in w->batch,
 * parsed at once (one JSON array); false when out of memory. A text that
 * cannot be read (stored text is JSON: it cannot happen but by damage) is
 * written as it is, ahead of the others. */
static bool batch_parse(struct writer *w)
{
	cJSON *b = cJSON_CreateObject();
	cJSON *entries = NULL;
	if (!b || !cJSON_AddStringToObject(b, "resourceType", "Bundle") ||
	    !cJSON_AddStringToObject(b, "type", "searchset") || !(entries = cJSON_AddArrayToObject(b, "entry"))) {
		cJSON_Delete(b);
		return false;
	}
	w->batch = b;
	w->texts[w->tlen - 1] = ']';
	struct fjson_limits lim;
	fjson_limits_for_len(&lim, w->tlen);
	cJSON *all = fjson_parse(w->texts, w->tlen, &lim, NULL);
	w->texts[w->tlen - 1] = ',';
	for (size_t k = 0; k < w->nbatch; k++) {
		size_t len;
		const char *text = batch_text(w, k, &len);
		cJSON *res = all ? cJSON_DetachItemFromArray(all, 0) : fjson_parse(text, len, NULL, NULL);
		if (!res && !all) {
			w->raw = true; /* texts and entries no longer pair up */
			if (write_line(w, text, len) != 0)
				return false;
			continue;
		}
		if (!res || !batch_entry(entries, res, "match")) {
			cJSON_Delete(all);
			return false;
		}
	}
	cJSON_Delete(all);
	return true;
}

/* Runs the export hooks over the batch, then writes what they left of its
 * match entries, in order. 0, or 1 on a failure (w->err, or w->refused
 * when a hook refused). */
static int batch_flush(struct writer *w)
{
	if (!w->nbatch)
		return 0;
	if (!batch_parse(w)) {
		w->err = w->err ? w->err : ENOMEM;
		return 1;
	}
	batch_context(w);
	struct arena arena;
	arena_init(&arena, 0);
	struct outcome oo = OUTCOME_INIT;
	struct cw_ctx ctx;
	plugin_host_ctx(&ctx, w->hooks, &arena, &oo, NULL);
	ctx.client_id = rest_str_member(w->j->rec, "configured_client");
	ctx.check = validate_ok; /* what a hook hands on is valid FHIR, or refused */
	bool changed = false;
	int rc = 0;
	if (plugin_host_export_hooks(w->hooks, &ctx, NULL, NULL, NULL, &w->batch, &changed) != 200) {
		snprintf(w->refused, sizeof w->refused, "%.190s",
			 oo.n && oo.issues[0].diagnostics ? oo.issues[0].diagnostics : "an export hook refused it");
		rc = 1;
	}
	bool whole = !changed && !w->raw && !purpose_filters_job(w->j->rec) && !w->elements;
	cJSON *entries = cJSON_GetObjectItemCaseSensitive(w->batch, "entry");
	size_t k = 0;
	for (cJSON *e = entries ? entries->child : NULL; !rc && e; e = e->next) {
		const cJSON *search = cJSON_GetObjectItemCaseSensitive(e, "search");
		const char *mode = rest_str_member(search, "mode");
		if (!mode || strcmp(mode, "match") != 0)
			continue;
		size_t len;
		const char *text = whole ? batch_text(w, k++, &len) : NULL;
		if (text) /* nothing changed it: its text as it came */
			rc = write_line(w, text, len);
		else
			rc = write_tree(w, cJSON_DetachItemFromObjectCaseSensitive(e, "resource"));
	}
	outcome_release(&oo);
	arena_release(&arena);
	cJSON_Delete(w->batch);
	w->batch = NULL;
	w->nbatch = 0;
	w->tlen = 0;
	w->raw = false;
	return rc;
}

/* Queues a resource that passed bulk_egress for the export hooks: its text
 * is kept (texts holds '[' then each text followed by ','), parsed with
 * the others when the batch is full. 0, or 1 on a failure. */
static int batch_add(struct writer *w, const char *id, const char *text, size_t len)
{
	if (w->tlen + len + 2 > w->tcap) {
		size_t cap = (w->tlen + len + 2) * 2;
		char *t = realloc(w->texts, cap);
		if (!t) {
			w->err = ENOMEM;
			return 1;
		}
		w->texts = t;
		w->tcap = cap;
	}
	if (!w->nbatch) {
		for (size_t i = 0; i < BULK_SEEN; i++)
			w->seen[i][0] = '\0';
		w->texts[0] = '[';
		w->tlen = 1;
	}
	char key[sizeof w->seen[0]];
	snprintf(key, sizeof key, "%s/%s", w->type, id);
	batch_seen(w, key);
	w->off[w->nbatch] = w->tlen;
	memcpy(w->texts + w->tlen, text, len);
	w->tlen += len;
	w->texts[w->tlen++] = ',';
	w->off[++w->nbatch] = w->tlen;
	return w->nbatch == BULK_BATCH ? batch_flush(w) : 0;
}

static int write_one(void *ctx, const char *id, const char *text, size_t len)
{
	struct writer *w = ctx;
	if (atomic_load(&w->j->cancel))
		return 1;
	if (atomic_load(&w->b->stop))
		return 1;
	char *owned = NULL;
	if (bulk_egress(w, id, &text, &len, &owned) != 0)
		return 0;
	if (w->hooks) {
		int rc = batch_add(w, id, text, len);
		free(owned);
		return rc;
	}
	if (w->elements) {
		cJSON *res = fjson_parse(text, len, NULL, NULL);
		free(owned);
		owned = res ? fjson_print(rest_elements_only(res, w->elements), false, &len) : NULL;
		cJSON_Delete(res);
		if (!owned) {
			w->err = ENOMEM;
			return 1;
		}
		text = owned;
	}
	int rc = write_line(w, text, len);
	free(owned);
	return rc;
}

static int add_type(void *ctx, const char *type)
{
	cJSON_AddItemToArray(ctx, cJSON_CreateString(type));
	return 0;
}

/* This type's part of an _elements list: names without a type, and
 * "Type.name" of this type as "name". NULL when nothing applies. */
static char *elements_for(const char *list, const char *type)
{
	if (!list || !list[0])
		return NULL;
	size_t tl = strlen(type), n = strlen(list);
	char *out = malloc(n + 1);
	if (!out)
		return NULL;
	size_t o = 0;
	for (const char *e = list; *e;) {
		size_t k = strcspn(e, ",");
		const char *dot = memchr(e, '.', k);
		const char *name = e;
		size_t nl = k;
		if (dot && !((size_t)(dot - e) == tl && !strncmp(e, type, tl)))
			nl = 0; /* another type's */
		else if (dot) {
			name = dot + 1;
			nl = k - (size_t)(dot + 1 - e);
		}
		if (nl) {
			if (o)
				out[o++] = ',';
			memcpy(out + o, name, nl);
			o += nl;
		}
		e += k;
		if (*e == ',')
			e++;
	}
	out[o] = '\0';
	if (!o) {
		free(out);
		return NULL;
	}
	return out;
}

/* Criteria parsed from the _typeFilter entries of one type. */
struct filters {
	struct store_export_filter f[BULK_MAX_FILTERS];
	struct store_search_param *params[BULK_MAX_FILTERS];
	char *text[BULK_MAX_FILTERS];
	size_t n;
};

static void filters_release(struct filters *fs)
{
	for (size_t i = 0; i < fs->n; i++) {
		free(fs->params[i]);
		free(fs->text[i]);
	}
	fs->n = 0;
}

static int hexval(char c)
{
	return c >= '0' && c <= '9'   ? c - '0'
	       : c >= 'a' && c <= 'f' ? c - 'a' + 10
	       : c >= 'A' && c <= 'F' ? c - 'A' + 10
				      : -1;
}

static void pct_decode(char *s)
{
	char *w = s;
	for (char *r = s; *r; r++) {
		if (*r == '%' && hexval(r[1]) >= 0 && hexval(r[2]) >= 0) {
			*w++ = (char)(hexval(r[1]) * 16 + hexval(r[2]));
			r += 2;
		} else {
			*w++ = *r == '+' ? ' ' : *r;
		}
	}
	*w = '\0';
}

/* Adds the criteria of "Type?a=b&c:mod=d" when Type is type. -1 on a
 * malformed entry (why filled). */
static int filters_add(struct filters *fs, const char *entry, const char *type, char *why, size_t wl)
{
	const char *q = strchr(entry, '?');
	if (!q || q == entry || !q[1]) {
		snprintf(why, wl, "_typeFilter '%.80s' is not of the form Type?search", entry);
		return -1;
	}
	if ((size_t)(q - entry) != strlen(type) || strncmp(entry, type, strlen(type)) != 0)
		return 0;
	if (fs->n >= BULK_MAX_FILTERS) {
		snprintf(why, wl, "at most %d _typeFilter entries per type", BULK_MAX_FILTERS);
		return -1;
	}
	char *text = strdup(q + 1);
	size_t cap = 1;
	for (const char *p = text; p && *p; p++)
		cap += *p == '&';
	struct store_search_param *ps = calloc(cap, sizeof *ps);
	if (!text || !ps) {
		free(text);
		free(ps);
		snprintf(why, wl, "out of memory");
		return -1;
	}
	size_t n = 0;
	for (char *save = NULL, *kv = strtok_r(text, "&", &save); kv; kv = strtok_r(NULL, "&", &save)) {
		char *eq = strchr(kv, '=');
		if (!eq || eq == kv) {
			snprintf(why, wl, "_typeFilter '%.80s': '%.40s' is no name=value", entry, kv);
			free(text);
			free(ps);
			return -1;
		}
		*eq = '\0';
		pct_decode(kv);
		pct_decode(eq + 1);
		char *colon = strchr(kv, ':');
		if (colon)
			*colon++ = '\0';
		ps[n++] = (struct store_search_param){.name = kv, .modifier = colon, .value = eq + 1};
	}
	fs->f[fs->n] = (struct store_export_filter){.params = ps, .n = n};
	fs->params[fs->n] = ps;
	fs->text[fs->n] = text;
	fs->n++;
	return 0;
}

static int filters_for(struct filters *fs, const cJSON *list, const char *type, char *why, size_t wl)
{
	const cJSON *e;
	cJSON_ArrayForEach(e, list)
	{
		if (!cJSON_IsString(e) || filters_add(fs, e->valuestring, type, why, wl) != 0) {
			if (!cJSON_IsString(e))
				snprintf(why, wl, "_typeFilter must be text");
			filters_release(fs);
			return -1;
		}
	}
	return 0;
}

static int count_none(void *ctx, const char *id, const char *text, size_t len)
{
	(void)ctx;
	(void)id;
	(void)text;
	(void)len;
	return 1;
}

int bulk_check(struct bulk *b, const cJSON *desc, char *why, size_t wl)
{
	const cJSON *types = cJSON_GetObjectItemCaseSensitive(desc, "types");
	const cJSON *tf = cJSON_GetObjectItemCaseSensitive(desc, "typeFilter");
	const cJSON *e;
	cJSON_ArrayForEach(e, tf)
	{
		const char *q = cJSON_IsString(e) ? strchr(e->valuestring, '?') : NULL;
		if (!q) {
			snprintf(why, wl, "_typeFilter '%.80s' is not of the form Type?search",
				 cJSON_IsString(e) ? e->valuestring : "");
			return -1;
		}
		char type[STORE_TYPE_SIZE];
		snprintf(type, sizeof type, "%.*s", (int)(q - e->valuestring), e->valuestring);
		bool listed = !types;
		const cJSON *t;
		cJSON_ArrayForEach(t, types) listed |= cJSON_IsString(t) && !strcmp(t->valuestring, type);
		if (!listed) {
			snprintf(why, wl, "_typeFilter names %.64s, which _type leaves out", type);
			return -1;
		}
		struct filters fs = {0};
		if (filters_for(&fs, tf, type, why, wl) != 0)
			return -1;
		/* the criteria run once over nothing: an unknown parameter or
		 * value is refused now rather than in the job */
		struct store_export_query q0 = {.type = type, .upto_seq = 0, .filters = fs.f, .n_filters = fs.n};
		struct store_error err;
		enum store_status st = store_export_scan(b->store, &q0, count_none, NULL, &err);
		filters_release(&fs);
		if (st != STORE_OK) {
			snprintf(why, wl, "_typeFilter %.64s: %s", type, err.message);
			return -1;
		}
	}
	return 0;
}

static void set_progress(struct bulk *b, struct job *j, const char *type, size_t done, size_t all)
{
	pthread_mutex_lock(&b->mu);
	snprintf(j->progress, sizeof j->progress, "%s (type %zu of %zu), %lld resources written", type, done + 1, all,
		 (long long)atomic_load(&j->written));
	pthread_mutex_unlock(&b->mu);
}

/* Runs j from the start; the outcome is left in j->state (RUNNING when it
 * was stopped or cancelled). true (j left RUNNING, nothing recorded): it
 * ended on a transient store error (STORE_BUSY: the database restarting, a
 * lost connection, a serialisation failure or timeout) and may_retry. */
static bool run_once(struct bulk *b, struct job *j, bool may_retry)
{
	int64_t t0 = now_ms();
	job_remove_files(b, j->id, true);
	atomic_store(&j->written, 0);
	const cJSON *snap = cJSON_GetObjectItemCaseSensitive(j->rec, "snapshot");
	const cJSON *seq = cJSON_GetObjectItemCaseSensitive(snap, "seq");
	const char *since = rest_str_member(j->rec, "since");
	const char *elements = rest_str_member(j->rec, "elements");
	const cJSON *tf = cJSON_GetObjectItemCaseSensitive(j->rec, "typeFilter");
	const cJSON *pat = cJSON_GetObjectItemCaseSensitive(j->rec, "patients");
	char *patients = cJSON_IsString(pat) ? strdup(pat->valuestring) : pat ? cJSON_PrintUnformatted(pat) : NULL;
	cJSON *types = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(j->rec, "types"), true);
	struct store_error err = {0};
	enum store_status st = STORE_OK;
	if (!types) {
		types = cJSON_CreateArray();
		st = store_export_types(b->store, (int64_t)seq->valuedouble, add_type, types, &err);
	}
	cJSON *output = cJSON_CreateArray();
	struct writer w = {.b = b, .j = j, .output = output, .max_bytes = b->cfg->bulk.file_max_bytes};
	const struct plugin_host *plugins = atomic_load(&b->plugins);
	if (plugins && (plugin_host_hook_count(plugins, CW_HOOK_EXPORT_BUNDLE) ||
			plugin_host_hook_count(plugins, CW_HOOK_BEFORE_EXPORT)))
		w.hooks = plugins;
	size_t all = (size_t)cJSON_GetArraySize(types), done = 0;
	const cJSON *t;
	char why[256] = "";
	cJSON_ArrayForEach(t, types)
	{
		if (st != STORE_OK || w.err || w.refused[0] || atomic_load(&j->cancel))
			break;
		set_progress(b, j, t->valuestring, done++, all);
		struct filters fs = {0};
		if (filters_for(&fs, tf, t->valuestring, why, sizeof why) != 0) {
			st = store_fail(&err, STORE_INVALID, "%s", why);
			break;
		}
		w.type = t->valuestring;
		w.part = 0;
		char *confined = NULL;
		w.reach = bulk_egress_type(j->rec, w.type, patients, &confined);
		if (w.reach == SCOPE_REACH_NONE) {
			filters_release(&fs);
			continue;
		}
		w.elements = elements_for(elements, w.type);
		struct store_export_query q = {
			.type = w.type,
			.upto_seq = (int64_t)seq->valuedouble,
			.since = since,
			.filters = fs.f,
			.n_filters = fs.n,
			.patients = confined ? confined : patients,
		};
		st = store_export_scan(b->store, &q, write_one, &w, &err);
		if (st == STORE_OK && !w.err && !w.refused[0] && !atomic_load(&j->cancel) && !atomic_load(&b->stop) &&
		    batch_flush(&w) != 0 && !w.err && !w.refused[0])
			w.err = EIO;
		cJSON_Delete(w.batch);
		w.batch = NULL;
		w.nbatch = w.tlen = 0;
		w.raw = false;
		if (writer_close(&w) != 0 && !w.err)
			w.err = EIO;
		free(w.elements);
		w.elements = NULL;
		free(confined);
		filters_release(&fs);
	}
	pthread_mutex_lock(&b->mu);
	bool stopped = b->stop || atomic_load(&j->cancel);
	bool again = !stopped && may_retry && st == STORE_BUSY && !w.err && !w.refused[0];
	if (again)
		log_msgf(LOG_WARN, "bulk", "export %s: %.200s; it runs again from the start", j->id, err.message);
	if (!stopped && !again) {
		if (st != STORE_OK || w.err || w.refused[0]) {
			j->state = BULK_FAILED;
			snprintf(j->reason, sizeof j->reason, "the export failed: %.200s",
				 w.refused[0]     ? w.refused
				 : st != STORE_OK ? err.message
						  : strerror(w.err));
			job_remove_files(b, j->id, true);
		} else {
			j->state = BULK_COMPLETE;
			set_member(j->rec, "output", output);
			output = NULL;
		}
		j->finished_ms = now_ms();
		log_msgf(LOG_INFO, "bulk", "export %s %s: %lld resources in %lld ms", j->id, state_names[j->state],
			 (long long)atomic_load(&j->written), (long long)(j->finished_ms - t0));
		set_member(j->rec, "finished", cJSON_CreateNumber((double)j->finished_ms));
		if (job_save(b, j) != 0)
			log_msgf(LOG_ERROR, "bulk", "export %s: cannot record its end in %s", j->id, b->dir);
	}
	pthread_mutex_unlock(&b->mu);
	cJSON_Delete(output);
	cJSON_Delete(types);
	free(patients);
	free(w.texts);
	return again;
}

/* Runs j (run_once), again from the start after a transient store error,
 * waiting RETRY_FIRST_MS, then twice as long each time up to RETRY_MAX_MS,
 * RETRY_TRIES runs in all: the last one's error fails the job. A stop or a
 * cancel ends the wait (j left RUNNING, as run_once leaves it). */
static void run_job(struct bulk *b, struct job *j)
{
	int64_t wait_ms = RETRY_FIRST_MS;
	for (int tries = 1; run_once(b, j, tries < RETRY_TRIES); tries++) {
		struct timespec until = deadline_in(wait_ms);
		pthread_mutex_lock(&b->mu);
		while (!b->stop && !atomic_load(&j->cancel) &&
		       pthread_cond_timedwait(&b->cv, &b->mu, &until) != ETIMEDOUT)
			;
		bool stop = b->stop || atomic_load(&j->cancel);
		pthread_mutex_unlock(&b->mu);
		if (stop)
			return;
		wait_ms = wait_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : wait_ms * 2;
	}
}

static void sweep(struct bulk *b)
{
	int64_t now = now_ms(), keep = (int64_t)b->cfg->bulk.expiry_s * 1000;
	for (struct job *j = b->jobs, *next; j; j = next) {
		next = j->next;
		if ((j->state == BULK_COMPLETE || j->state == BULK_FAILED) && now - j->finished_ms >= keep) {
			job_remove_files(b, j->id, false);
			unlink_job(b, j);
			job_free(j);
		}
	}
}

/* --- jobs shared on the store ------------------------------------------------ */

/* How often a running shared job's lease is renewed (the lease itself,
 * store.postgresql.lease_ms, is at least a second). */
#define RENEW_MS 300

/* The keeper thread: while the worker runs a shared job, it renews the
 * job's lease every RENEW_MS on a connection of its own (the worker's is
 * inside the export's snapshot, and may wait there on the database), with
 * the progress line; a job no longer this gateway's (cancelled on any
 * gateway, or taken over after its lease ran out) is stopped. */
static void *keeper(void *arg)
{
	struct bulk *b = arg;
	pthread_mutex_lock(&b->mu);
	while (!b->stop) {
		struct timespec ts = deadline_in(RENEW_MS);
		pthread_cond_timedwait(&b->cv, &b->mu, &ts);
		if (b->stop || !b->current)
			continue;
		char id[BULK_ID_SIZE], progress[sizeof b->current->progress];
		snprintf(id, sizeof id, "%s", b->current->id);
		snprintf(progress, sizeof progress, "%s", b->current->progress);
		pthread_mutex_unlock(&b->mu);
		struct store_error err = {0};
		enum store_status st = b->shared->renew(b->store, id, now_ms(), progress, &err);
		pthread_mutex_lock(&b->mu);
		if (st == STORE_NOT_FOUND && b->current && !strcmp(b->current->id, id)) {
			log_msgf(LOG_INFO, "bulk",
				 "export %s is no longer this gateway's (cancelled or taken over): it stops", id);
			atomic_store(&b->current->cancel, true);
		}
	}
	pthread_mutex_unlock(&b->mu);
	return NULL;
}

/* The state named in a shared job's row. */
static enum bulk_state state_of(const char *name)
{
	for (int i = 0; i < 4; i++)
		if (!strcmp(name, state_names[i]))
			return (enum bulk_state)i;
	return BULK_FAILED;
}

/* What a failed store call on a shared job means to the caller: no such
 * job (or file), or the store could not tell (BULK_UNAVAILABLE). */
static int shared_fail(enum store_status st) { return st == STORE_NOT_FOUND ? -1 : BULK_UNAVAILABLE; }

/* The shared job id as its row holds it (a new struct job the caller
 * frees); NULL with *rc -1 when there is none (or id is not one),
 * BULK_UNAVAILABLE when the store could not be asked. */
static struct job *shared_load(struct bulk *b, const char *id, int *rc)
{
	struct store_job row = {0};
	struct store_error err = {0};
	*rc = -1;
	if (!id_ok(id))
		return NULL;
	enum store_status st = b->shared->get(b->store, id, &row, &err);
	if (st != STORE_OK) {
		*rc = shared_fail(st);
		return NULL;
	}
	cJSON *rec = fjson_parse(row.rec, strlen(row.rec), NULL, NULL);
	struct job *j = job_new(id, rec ? rec : cJSON_CreateObject());
	if (j && j->rec) {
		j->state = state_of(row.state);
		j->finished_ms = row.finished_ms;
		snprintf(j->progress, sizeof j->progress, "%s", row.progress);
		const char *why = rest_str_member(j->rec, "reason");
		snprintf(j->reason, sizeof j->reason, "%s", why ? why : "the export failed");
	} else {
		job_free(j);
		j = NULL;
		*rc = BULK_UNAVAILABLE; /* out of memory */
	}
	store_job_release(&row);
	return j;
}

/* Ends this gateway's run of a shared job: a finished job is stored with
 * its files in one step (then every gateway serves it), a job this gateway
 * stops with is put back in the queue, one cancelled or taken over is left
 * alone. The local files go in every case. */
static void shared_settle(struct bulk *b, struct job *j, bool stopped)
{
	struct store_error err = {0};
	enum store_status st = STORE_OK;
	if (atomic_load(&j->cancel)) {
		/* nothing to keep */
	} else if (stopped) {
		st = b->shared->unclaim(b->store, j->id, &err);
	} else {
		const cJSON *out = cJSON_GetObjectItemCaseSensitive(j->rec, "output");
		size_t n = (size_t)cJSON_GetArraySize(out), k = 0;
		struct store_job_file *files = calloc(n ? n : 1, sizeof *files);
		const cJSON *o;
		cJSON_ArrayForEach(o, out)
		{
			char path[4300];
			const char *name = rest_str_member(o, "file");
			job_path(b, j->id, name ? name : "", path, sizeof path);
			int fd = files && name ? open(path, O_RDONLY | O_CLOEXEC) : -1;
			if (fd < 0)
				break;
			files[k].name = name;
			files[k++].fd = fd;
		}
		char *text = k == n ? fjson_print(j->rec, false, NULL) : NULL;
		st = text ? b->shared->finish(b->store, j->id, state_names[j->state], text, j->finished_ms, files, n,
					      &err)
			  : store_fail(&err, STORE_IO, "cannot read the export's files back");
		free(text);
		for (size_t i = 0; i < k; i++)
			close(files[i].fd);
		free(files);
	}
	if (st != STORE_OK)
		log_msgf(LOG_ERROR, "bulk",
			 "export %s: cannot record its end in the store (%s); it runs again once its lease runs out",
			 j->id, err.message);
	job_remove_files(b, j->id, false);
}

/* The worker of a gateway sharing its jobs: it takes the oldest queued
 * job (or one whose gateway stopped renewing its lease) from the store,
 * runs it into dir, and stores the outcome; every second it removes the
 * expired jobs, whichever gateway ran them. */
static void shared_worker(struct bulk *b)
{
	int64_t swept = 0;
	pthread_mutex_lock(&b->mu);
	while (!b->stop) {
		pthread_mutex_unlock(&b->mu);
		int64_t now = now_ms();
		struct store_error err = {0};
		if (now - swept >= 1000) {
			swept = now;
			b->shared->expire(b->store, now - (int64_t)b->cfg->bulk.expiry_s * 1000, &err);
		}
		char id[BULK_ID_SIZE];
		struct store_job row = {0};
		struct job *j = NULL;
		if (b->shared->claim(b->store, now, id, &row, &err) == STORE_OK) {
			cJSON *rec = fjson_parse(row.rec, strlen(row.rec), NULL, NULL);
			const cJSON *seq = cJSON_GetObjectItemCaseSensitive(
				cJSON_GetObjectItemCaseSensitive(rec, "snapshot"), "seq");
			j = job_new(id, rec ? rec : cJSON_CreateObject());
			if (j && j->rec && !cJSON_IsNumber(seq)) {
				j->state = BULK_FAILED;
				j->finished_ms = now;
				snprintf(j->reason, sizeof j->reason, "the record of this export could not be read");
			}
		}
		store_job_release(&row);
		pthread_mutex_lock(&b->mu);
		if (!j || !j->rec) {
			job_free(j);
			struct timespec ts = deadline_in(1000);
			if (!b->stop)
				pthread_cond_timedwait(&b->cv, &b->mu, &ts);
			continue;
		}
		bool runs = j->state != BULK_FAILED;
		if (runs) {
			char dir[4200];
			job_path(b, j->id, NULL, dir, sizeof dir);
			mkdir(dir, 0700);
			j->state = BULK_RUNNING;
			snprintf(j->progress, sizeof j->progress, "starting");
			j->next = b->jobs;
			b->jobs = j;
			b->current = j;
		}
		pthread_mutex_unlock(&b->mu);
		if (runs)
			run_job(b, j);
		else
			job_save(b, j);
		pthread_mutex_lock(&b->mu);
		unlink_job(b, j);
		b->current = NULL;
		bool stopped = b->stop && j->state == BULK_RUNNING;
		pthread_mutex_unlock(&b->mu);
		shared_settle(b, j, stopped);
		job_free(j);
		pthread_mutex_lock(&b->mu);
	}
	pthread_mutex_unlock(&b->mu);
}

static void *worker(void *arg)
{
	struct bulk *b = arg;
	if (b->shared) {
		shared_worker(b);
		return NULL;
	}
	pthread_mutex_lock(&b->mu);
	while (!b->stop) {
		sweep(b);
		struct job *j = NULL;
		for (struct job *k = b->jobs; k; k = k->next)
			if (k->state == BULK_QUEUED && (!j || k->finished_ms < j->finished_ms))
				j = k;
		if (!j) {
			struct timespec ts = deadline_in(1000);
			pthread_cond_timedwait(&b->cv, &b->mu, &ts);
			continue;
		}
		j->state = BULK_RUNNING;
		snprintf(j->progress, sizeof j->progress, "starting");
		if (job_save(b, j) != 0)
			log_msgf(LOG_ERROR, "bulk", "export %s: cannot record it in %s", j->id, b->dir);
		pthread_mutex_unlock(&b->mu);
		run_job(b, j);
		pthread_mutex_lock(&b->mu);
		if (atomic_load(&j->cancel)) {
			job_remove_files(b, j->id, false);
			unlink_job(b, j);
			job_free(j);
		}
	}
	pthread_mutex_unlock(&b->mu);
	return NULL;
}

/* --- the interface ----------------------------------------------------------- */

struct bulk *bulk_start(struct store *store, const struct config *cfg, const char *dir, char *err, size_t errlen)
{
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
		return NULL;
	}
	struct bulk *b = calloc(1, sizeof *b);
	if (!b || !(b->dir = strdup(dir))) {
		free(b);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	b->store = store;
	b->cfg = cfg;
	pthread_mutex_init(&b->mu, NULL);
	pthread_cond_init(&b->cv, NULL);
	b->shared = store_jobs(store);
	DIR *d = opendir(dir);
	struct dirent *e;
	while (d && (e = readdir(d))) {
		if (!id_ok(e->d_name))
			continue;
		if (b->shared) { /* what a stopped worker left: the store has the job */
			job_remove_files(b, e->d_name, false);
			continue;
		}
		struct job *j = job_load(b, e->d_name);
		if (!j)
			continue;
		if (j->state == BULK_QUEUED)
			log_msgf(LOG_INFO, "bulk", "export %s was interrupted: it runs again", j->id);
		j->next = b->jobs;
		b->jobs = j;
	}
	if (d)
		closedir(d);
	sweep(b);
	if (pthread_create(&b->worker, NULL, worker, b) != 0) {
		snprintf(err, errlen, "cannot start the bulk export worker");
		b->stop = true;
		bulk_stop(b);
		return NULL;
	}
	if (b->shared && pthread_create(&b->keeper, NULL, keeper, b) != 0) {
		snprintf(err, errlen, "cannot start the bulk export lease keeper");
		bulk_stop(b);
		return NULL;
	}
	b->keeper_started = b->shared != NULL;
	return b;
}

void bulk_stop(struct bulk *b)
{
	if (!b)
		return;
	pthread_mutex_lock(&b->mu);
	bool started = !b->stop;
	b->stop = true;
	pthread_cond_broadcast(&b->cv);
	pthread_mutex_unlock(&b->mu);
	if (started)
		pthread_join(b->worker, NULL);
	if (b->keeper_started)
		pthread_join(b->keeper, NULL);
	for (struct job *j = b->jobs, *next; j; j = next) {
		next = j->next;
		job_free(j);
	}
	pthread_mutex_destroy(&b->mu);
	pthread_cond_destroy(&b->cv);
	free(b->dir);
	free(b);
}

/* bulk_submit's step for a shared job (j taken over). */
static int shared_submit(struct bulk *b, struct job *j)
{
	job_save(b, j);
	char *text = fjson_print(j->rec, false, NULL);
	struct store_error err = {0};
	enum store_status st = text ? b->shared->add(b->store, j->id, text, j->finished_ms, b->cfg->bulk.max_jobs, &err)
				    : STORE_NO_MEMORY;
	free(text);
	job_free(j);
	if (st == STORE_OK) {
		pthread_mutex_lock(&b->mu);
		pthread_cond_broadcast(&b->cv);
		pthread_mutex_unlock(&b->mu);
		return 0;
	}
	if (st != STORE_CONFLICT)
		log_msgf(LOG_ERROR, "bulk", "cannot record an export in the store: %s", err.message);
	return st == STORE_CONFLICT ? 1 : -1;
}

int bulk_submit(struct bulk *b, cJSON *desc, char id[BULK_ID_SIZE])
{
	if (store_new_id(id) != 0) {
		cJSON_Delete(desc);
		return -1;
	}
	struct job *j = job_new(id, desc);
	if (!j) {
		cJSON_Delete(desc);
		return -1;
	}
	char dir[4200];
	job_path(b, id, NULL, dir, sizeof dir);
	j->state = BULK_QUEUED;
	j->finished_ms = now_ms(); /* the queue's order */
	cJSON_AddNumberToObject(desc, "created", (double)j->finished_ms);
	if (b->shared)
		return shared_submit(b, j);
	pthread_mutex_lock(&b->mu);
	size_t n = 0;
	for (struct job *k = b->jobs; k; k = k->next)
		n++;
	int rc = 0;
	if (n >= b->cfg->bulk.max_jobs)
		rc = 1;
	else if (mkdir(dir, 0700) != 0 || job_save(b, j) != 0 || file_sync_dir(b->dir) != 0)
		rc = -1;
	if (rc == 0) {
		snprintf(j->progress, sizeof j->progress, "queued");
		j->next = b->jobs;
		b->jobs = j;
		pthread_cond_broadcast(&b->cv);
	} else {
		if (rc < 0)
			job_remove_files(b, id, false);
		job_free(j);
	}
	pthread_mutex_unlock(&b->mu);
	return rc;
}

static cJSON *manifest(const struct job *j, const char *files_base)
{
	cJSON *m = cJSON_CreateObject();
	const cJSON *snap = cJSON_GetObjectItemCaseSensitive(j->rec, "snapshot");
	const char *time = rest_str_member(snap, "time");
	const char *req = rest_str_member(j->rec, "request");
	cJSON_AddStringToObject(m, "transactionTime", time ? time : "");
	cJSON_AddStringToObject(m, "request", req ? req : "");
	/* an export kicked off with a token is its client's: the status and
	 * files ask for it; without one (auth off) the unguessable URL is all */
	cJSON_AddBoolToObject(m, "requiresAccessToken", cJSON_GetObjectItemCaseSensitive(j->rec, "access") != NULL);
	cJSON *out = cJSON_AddArrayToObject(m, "output");
	const cJSON *o;
	bool part2 = false;
	cJSON *all = cJSON_CreateArray(); /* every file's permitting Consents, each once */
	cJSON_ArrayForEach(o, cJSON_GetObjectItemCaseSensitive(j->rec, "output"))
	{
		part2 |= cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "part2"));
		cJSON *x = cJSON_CreateObject();
		char url[4300];
		snprintf(url, sizeof url, "%s/%s/%s", files_base, j->id, rest_str_member(o, "file"));
		cJSON_AddStringToObject(x, "type", rest_str_member(o, "type"));
		cJSON_AddStringToObject(x, "url", url);
		cJSON_AddItemToObject(x, "count", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(o, "count"), true));
		/* an output entry's own extension (the Bulk Data IG reserves the
		 * name there too): the Consents that permitted what this file holds */
		const cJSON *cited = cJSON_GetObjectItemCaseSensitive(o, "consents");
		if (cJSON_GetArraySize(cited) > 0)
			cJSON_AddItemToObject(cJSON_AddObjectToObject(x, "extension"), EGRESS_CONSENT_URL,
					      cJSON_Duplicate(cited, true));
		const cJSON *c;
		cJSON_ArrayForEach(c, cited)
		{
			bool known = false;
			const cJSON *k;
			const char *ref = rest_str_member(c, "reference");
			cJSON_ArrayForEach(k, all) known |= !ref || !strcmp(rest_str_member(k, "reference"), ref);
			if (!known)
				cJSON_AddItemToArray(all, cJSON_Duplicate(c, true));
		}
		cJSON_AddItemToArray(out, x);
	}
	cJSON_AddArrayToObject(m, "error");
	/* the Bulk Data manifest's own extension point: the redisclosure
	 * notice when a file holds 42CFRPart2 data (the abbreviated statement
	 * here; api_bulk puts the site's notice in its place), and the
	 * Consents that permitted what the files hold (42 CFR 2.32(b)) */
	cJSON *ext = part2 || cJSON_GetArraySize(all) > 0 ? cJSON_AddObjectToObject(m, "extension") : NULL;
	if (part2)
		cJSON_AddStringToObject(ext, EGRESS_NOTICE_URL, EGRESS_NOTICE_SHORT);
	if (ext && cJSON_GetArraySize(all) > 0)
		cJSON_AddItemToObject(ext, EGRESS_CONSENT_URL, all);
	else
		cJSON_Delete(all);
	return m;
}

int bulk_status(struct bulk *b, const char *id, const char *files_base, char *progress, size_t plen,
		cJSON **manifest_out, enum bulk_state *state)
{
	if (manifest_out)
		*manifest_out = NULL;
	if (b->shared) {
		int rc;
		struct job *sj = shared_load(b, id, &rc);
		if (!sj)
			return rc;
		*state = sj->state;
		if (progress && plen)
			snprintf(progress, plen, "%s", sj->state == BULK_FAILED ? sj->reason : sj->progress);
		if (sj->state == BULK_COMPLETE && manifest_out)
			*manifest_out = manifest(sj, files_base);
		job_free(sj);
		return 0;
	}
	pthread_mutex_lock(&b->mu);
	struct job *j = find(b, id);
	int rc = j && !atomic_load(&j->cancel) ? 0 : -1;
	if (rc == 0) {
		*state = j->state;
		if (progress && plen)
			snprintf(progress, plen, "%s", j->state == BULK_FAILED ? j->reason : j->progress);
		if (j->state == BULK_COMPLETE && manifest_out)
			*manifest_out = manifest(j, files_base);
	}
	pthread_mutex_unlock(&b->mu);
	return rc;
}

void bulk_set_wording(struct bulk *b, const struct consent_wording *words) { atomic_store(&b->words, words); }

void bulk_set_plugins(struct bulk *b, const struct plugin_host *plugins) { atomic_store(&b->plugins, plugins); }

int bulk_cancel(struct bulk *b, const char *id)
{
	if (b->shared) {
		/* the row goes at once, files and all; the worker running it (on
		 * any gateway) finds it gone at its next renewal and stops */
		struct store_error err = {0};
		if (!id_ok(id))
			return -1;
		enum store_status st = b->shared->remove(b->store, id, &err);
		if (st != STORE_OK)
			return shared_fail(st);
		pthread_mutex_lock(&b->mu);
		struct job *run = find(b, id);
		if (run)
			atomic_store(&run->cancel, true);
		pthread_mutex_unlock(&b->mu);
		return 0;
	}
	pthread_mutex_lock(&b->mu);
	struct job *j = find(b, id);
	int rc = j && !atomic_load(&j->cancel) ? 0 : -1;
	if (rc == 0) {
		if (j->state == BULK_RUNNING) {
			atomic_store(&j->cancel, true); /* the worker removes it */
		} else {
			job_remove_files(b, j->id, false);
			unlink_job(b, j);
			job_free(j);
		}
	}
	pthread_mutex_unlock(&b->mu);
	return rc;
}

/* Appends a chunk of a shared file to the descriptor in ctx. */
static int put_chunk(void *ctx, const void *data, size_t len)
{
	int fd = *(int *)ctx;
	const char *p = data;
	while (len > 0) {
		ssize_t k = write(fd, p, len);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return 1;
		p += k;
		len -= (size_t)k;
	}
	return 0;
}

/* bulk_open_file for a shared job: the file is copied from the store into
 * an unnamed temporary file in dir, which the caller reads and closes. */
static int shared_open_file(struct bulk *b, const char *id, const char *name, int *fd, size_t *size)
{
	int rc;
	struct job *j = shared_load(b, id, &rc);
	bool listed = false;
	const cJSON *o;
	const cJSON *out = j && j->state == BULK_COMPLETE ? cJSON_GetObjectItemCaseSensitive(j->rec, "output") : NULL;
	for (o = out ? out->child : NULL; o; o = o->next) {
		const char *file = rest_str_member(o, "file");
		listed |= file && !strcmp(file, name);
	}
	if (j)
		rc = -1; /* the job, but no such file of it */
	job_free(j);
	if (!listed)
		return rc;
	int t = open(b->dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (t < 0) { /* a file system without O_TMPFILE: a named one, unlinked at once */
		char path[4200];
		snprintf(path, sizeof path, "%s/.download-XXXXXX", b->dir);
		if ((t = mkostemp(path, O_CLOEXEC)) < 0)
			return -1;
		unlink(path);
	}
	struct store_error err = {0};
	struct stat sb;
	enum store_status st = b->shared->file(b->store, id, name, put_chunk, &t, &err);
	if (st != STORE_OK || fstat(t, &sb) != 0 || lseek(t, 0, SEEK_SET) != 0) {
		close(t);
		return st == STORE_OK || st == STORE_NOT_FOUND ? -1 : BULK_UNAVAILABLE;
	}
	*fd = t;
	*size = (size_t)sb.st_size;
	return 0;
}

int bulk_open_file(struct bulk *b, const char *id, const char *name, int *fd, size_t *size)
{
	if (b->shared)
		return shared_open_file(b, id, name, fd, size);
	int rc = -1;
	pthread_mutex_lock(&b->mu);
	struct job *j = find(b, id);
	if (j && j->state == BULK_COMPLETE && !atomic_load(&j->cancel)) {
		const cJSON *o;
		cJSON_ArrayForEach(o, cJSON_GetObjectItemCaseSensitive(j->rec, "output"))
		{
			const char *file = rest_str_member(o, "file");
			if (file && !strcmp(file, name)) {
				char path[4300];
				job_path(b, id, name, path, sizeof path);
				struct stat sb;
				*fd = open(path, O_RDONLY | O_CLOEXEC);
				if (*fd > 0 && fstat(*fd, &sb) == 0) {
					*size = (size_t)sb.st_size;
					rc = 0;
				} else if (*fd >= 0) {
					close(*fd);
				}
				break;
			}
		}
	}
	pthread_mutex_unlock(&b->mu);
	return rc;
}

int bulk_access(struct bulk *b, const char *id, const char *client_id)
{
	if (b->shared) {
		int src;
		struct job *sj = shared_load(b, id, &src);
		if (sj) {
			const cJSON *acc = cJSON_GetObjectItemCaseSensitive(sj->rec, "access");
			const char *owner = rest_str_member(acc, "client_id");
			src = !acc || (owner && client_id && !strcmp(owner, client_id)) ? 0 : -1;
		}
		job_free(sj);
		return src;
	}
	pthread_mutex_lock(&b->mu);
	struct job *j = find(b, id);
	int rc = -1;
	if (j && !atomic_load(&j->cancel)) {
		const cJSON *acc = cJSON_GetObjectItemCaseSensitive(j->rec, "access");
		const char *owner = rest_str_member(acc, "client_id");
		rc = !acc || (owner && client_id && !strcmp(owner, client_id)) ? 0 : -1;
	}
	pthread_mutex_unlock(&b->mu);
	return rc;
}
