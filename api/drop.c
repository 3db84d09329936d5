/* drop.c -- driftfeed --drop-records: a store that lost records, made on
 * purpose. The records go as if a disk had lost them (their tree entries
 * with them, nothing derived), so tests can watch anti-entropy bring them
 * back. Runs on a stopped region's data directory. */
#include "api.h"

#include <stdio.h>
#include <string.h>

int api_drop_records(const api_config *cfg)
{
    stg_db *db;
    if (stg_open(cfg->data, NULL, &db) < 0) {
        fprintf(stderr, "driftfeed: cannot open %s\n", cfg->data);
        return -1;
    }
    int rc = 0, dropped = 0;
    const char *s = cfg->drop_records;
    while (*s && rc == 0) {
        size_t n = strcspn(s, ",");
        const char *colon = memchr(s, ':', n);
        stg_kind kind = 0;
        if (colon && colon - s == 4 && memcmp(s, "user", 4) == 0) kind = STG_KIND_USER;
        if (colon && colon - s == 4 && memcmp(s, "post", 4) == 0) kind = STG_KIND_POST;
        if (!kind || (size_t)(colon - s) + 1 >= n) {
            fprintf(stderr, "driftfeed: --drop-records wants user:ID or post:ID, not %.*s\n",
                    (int)n, s);
            rc = -1;
            break;
        }
        const char *id = colon + 1;
        size_t idlen = n - (size_t)(colon - s) - 1;
        int drc = stg_record_drop(db, kind, id, idlen);
        if (drc == 0) {
            dropped++;
        } else if (drc != DF_ENOTFOUND) {
            fprintf(stderr, "driftfeed: dropping %.*s: %s\n", (int)n, s, df_strerror(drc));
            rc = -1;
        }
        s += n;
        if (*s == ',') s++;
    }
    stg_close(db);
    if (rc == 0) printf("driftfeed: %d records dropped from %s\n", dropped, cfg->data);
    return rc;
}
