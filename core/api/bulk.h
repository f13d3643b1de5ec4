/* bulk — bulk export jobs (FHIR Bulk Data Access 2.0): the background
 * worker that writes NDJSON files, their record on disk, expiry. The HTTP
 * side (kick-off, status, files) is api_bulk.c.
 *
 * A job is described at kick-off by a JSON object (struct bulk_job_desc is
 * its checked form, kept as the record) and read from the store at one
 * snapshot (store_snapshot): the resources live at that moment, whatever
 * is written while the job runs. Its directory is DIR/<job id>/ (DIR is
 * data_dir/bulk, mode 0700): job.json, the record (written to a temporary
 * file and renamed, fsync'd), and the output files <Type>-<n>.ndjson, one
 * resource per line, split into the next file once a file passes
 * bulk.file_max_bytes.
 *
 * Restart: a job queued or running when the gateway stopped is run again
 * from the start at the same snapshot when the gateway starts (the store
 * keeps every version, so the files come out the same); a record that
 * cannot be read becomes a failed job whose status says so. A finished
 * job's files are removed bulk.expiry_seconds after it finished; a
 * cancelled job's at once.
 *
 * Egress: every type passes bulk_egress_type and every resource
 * bulk_egress (bulk.c) before it is written; that is the one place where
 * per-client rules (the client's scopes, labels and consent, a purpose's
 * minimum-necessary view) apply to exports, with the client recorded in the
 * job ("access"). With export hooks (bulk_set_plugins), the resources that
 * pass it wait in a batch for the hooks, and the purpose's view is taken
 * after them, last (so a billing client never gets what a hook adds).
 *
 * Shared (store_jobs_shared: PostgreSQL): the jobs and their files are
 * kept in the store instead, so that every gateway on it serves every job;
 * DIR holds only the files of the job this gateway's worker is writing. The
 * worker takes a job with a lease, which a second thread (the keeper)
 * renews while it runs; a job whose gateway died runs again from the start
 * on another once the lease passed; a finished job is stored with all its
 * files in one step (docs/bulk.md, "Several gateways on PostgreSQL").
 *
 * Threads: one worker thread runs the jobs one after another; the other
 * functions are called from any thread (a mutex guards the job table). */
#ifndef CW_API_BULK_H
#define CW_API_BULK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "config/config.h"
#include "store/store.h"

#define BULK_ID_SIZE STORE_ID_SIZE
#define BULK_MAX_FILTERS 32

enum bulk_state { BULK_QUEUED, BULK_RUNNING, BULK_COMPLETE, BULK_FAILED };

struct bulk;

/* Opens dir (created with mode 0700 when missing), loads the jobs recorded
 * there (removing the expired ones) and starts the worker, which resumes
 * those not finished. NULL with the reason in err. */
struct bulk *bulk_start(struct store *store, const struct config *cfg, const char *dir, char *err, size_t errlen);

/* The words that explain a permitting Consent's scope (app->consent_words,
 * kept while b runs): with them set, each output file and the manifest name
 * the Consents that permitted what the files hold (bulk_status). Any
 * thread; until set, no Consent is named. */
struct consent_wording;
void bulk_set_wording(struct bulk *b, const struct consent_wording *words);

/* The plugins whose export hooks (export-bundle, then before-export) see
 * what a job writes, as they see an export's Bundle (kept while b runs):
 * the job's resources in batches of up to 32 (BULK_BATCH), each a
 * searchset Bundle whose match entries are written after the hooks and
 * whose include entries are the Patients and Conditions they name that the
 * client may see (read from the store, never written); the hooks see the
 * job's client's own plugin settings, and no format (NULL: the files are
 * FHIR). A hook that refuses fails the job naming why. Any thread; until
 * set, no hook runs. */
struct plugin_host;
void bulk_set_plugins(struct bulk *b, const struct plugin_host *plugins);

/* Stops the worker (a running job stops between two resources and stays
 * recorded as running, to run again at the next start) and frees b (NULL is
 * fine). */
void bulk_stop(struct bulk *b);

/* Records a new job and queues it. desc (taken over) holds: "request" (the
 * kick-off URL), "client", "snapshot" {"seq", "time"}, and optionally
 * "types" (array of resource types), "since" (store time text),
 * "elements" (the _elements list), "typeFilter" (array of "Type?query"),
 * "patients" ("*" or an array of Patient ids: the Patient compartment),
 * "access" (the authenticated client: {"client_id", "scopes", "patient"}:
 * only the types its scopes let it read and search are written, a
 * patient/ scope's from its patient's compartment only).
 * Returns 0 with the new id in id, 1 when bulk.max_jobs are kept already,
 * -1 on a failure to record it. */
int bulk_submit(struct bulk *b, cJSON *desc, char id[BULK_ID_SIZE]);

/* Checks a description before bulk_submit: its _typeFilter entries are
 * Type?search, of types _type lists (when it is given), with criteria the
 * search knows. 0, or -1 with the reason in why. */
int bulk_check(struct bulk *b, const cJSON *desc, char *why, size_t wl);

/* What bulk_status, bulk_cancel, bulk_access and bulk_open_file answer
 * when the store holding shared jobs (PostgreSQL) could not be asked: the
 * job may well exist (unlike -1, no such job). */
#define BULK_UNAVAILABLE (-2)

/* A job's state. For BULK_QUEUED/RUNNING, progress (may be NULL) gets a
 * line such as "Observation: 1200 resources written"; for BULK_COMPLETE,
 * *manifest (may be NULL) a new tree of the manifest, its file URLs being
 * files_base "/" id "/" file; for BULK_FAILED, progress gets the reason.
 * -1 for an unknown (or expired, or cancelled) id, BULK_UNAVAILABLE. */
int bulk_status(struct bulk *b, const char *id, const char *files_base, char *progress, size_t plen, cJSON **manifest,
		enum bulk_state *state);

/* Cancels a queued or running job or releases a finished one: its files
 * are removed. -1 for an unknown id, BULK_UNAVAILABLE. */
int bulk_cancel(struct bulk *b, const char *id);

/* Whether client_id (NULL: an unauthenticated request) may reach job id
 * (its status, files, cancel): an export kicked off by an authenticated
 * client (its description's "access" {"client_id", "scopes", "patient"})
 * is that client's alone; one kicked off without auth is anyone's who has
 * its URL. 0 when it may, -1 when not or when there is no such job,
 * BULK_UNAVAILABLE. */
int bulk_access(struct bulk *b, const char *id, const char *client_id);

/* Opens an output file of a finished job for reading: 0 with *fd and
 * *size, -1 when there is no such job or file, BULK_UNAVAILABLE. */
int bulk_open_file(struct bulk *b, const char *id, const char *name, int *fd, size_t *size);

#endif
