/* keys.c -- key encoding: composite keys, big-endian integers, prefixes. */
#include "storage.h"

#include <string.h>

int stg_key_join(char *buf, size_t cap, const char *a, size_t na, const char *b, size_t nb)
{
    if (na + 1 + nb > cap) return -1;
    memcpy(buf, a, na);
    buf[na] = '\0';
    if (nb) memcpy(buf + na + 1, b, nb);
    return (int)(na + 1 + nb);
}

int stg_key_split(const char *key, size_t len, const char **b, size_t *nb)
{
    const char *sep = memchr(key, '\0', len);
    if (!sep) return -1;
    *b = sep + 1;
    *nb = len - (size_t)(sep + 1 - key);
    return (int)(sep - key);
}

void stg_key_u64(char out[8], uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        out[i] = (char)(v & 0xff);
        v >>= 8;
    }
}

uint64_t stg_key_get_u64(const char *in)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = (v << 8) | (unsigned char)in[i];
    return v;
}

int stg_key_message(char *buf, size_t cap, const char *a, const char *b, const char *msg_id)
{
    if (strcmp(a, b) > 0) {
        const char *t = a;
        a = b;
        b = t;
    }
    size_t na = strlen(a), nb = strlen(b), nm = msg_id ? strlen(msg_id) : 0;
    if (na + nb + nm + 2 > cap) return -1;
    memcpy(buf, a, na);
    buf[na] = '\0';
    memcpy(buf + na + 1, b, nb);
    buf[na + 1 + nb] = '\0';
    if (nm) memcpy(buf + na + nb + 2, msg_id, nm);
    return (int)(na + nb + 2 + nm);
}

int stg_key_successor(const char *prefix, size_t len, char *out)
{
    memcpy(out, prefix, len);
    while (len > 0) {
        unsigned char c = (unsigned char)out[len - 1];
        if (c != 0xff) {
            out[len - 1] = (char)(c + 1);
            return (int)len;
        }
        len--;
    }
    return -1;
}
