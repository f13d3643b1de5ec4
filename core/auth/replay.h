/* replay — the client assertions' jti seen, each kept until its exp, in
 * memory and in a file of the data directory (auth-jti), so a replay is
 * refused across a restart too. Bounded: REPLAY_CAPACITY live entries;
 * beyond that new assertions are refused until old ones expire.
 *
 * Threads: replay_record is safe from many threads (one lock). */
#ifndef CW_AUTH_REPLAY_H
#define CW_AUTH_REPLAY_H

#include <stddef.h>

#define REPLAY_CAPACITY 49152

struct replay;

/* Opens (creating) DATA_DIR/auth-jti, keeping what has not expired at now.
 * NULL with why. */
struct replay *replay_open(const char *data_dir, long long now, char *why, size_t whylen);
void replay_close(struct replay *r);

/* Records (iss, jti) until exp, written to disk before it returns.
 * 1: new; 0: seen before; -1: cannot record (full, or the file failed). */
int replay_record(struct replay *r, const char *iss, const char *jti, long long exp, long long now);

#endif
