/* keys.c -- the log's keys and signatures.
 *
 * DESIGN: each region holds an Ed25519 secret key (DIR/<region>.key, the
 * 32-byte seed in hex, mode 0600) and every peer's public key
 * (DIR/<peer>.pub, hex). What a region writes to Redis is signed with it:
 * its log, a chunk at a time (one signature over the chunk's record hashes,
 * see publisher.c), and the small values beside it (df:seq, df:progress,
 * df:regions). Every signature covers the Redis key and field it was
 * written under, so nothing signed can be replayed under another name: a
 * chunk of paris's log copied into tokyo's stream, or one region's
 * progress passed off as another's, does not verify. What is signed is a
 * BLAKE2b-256 digest of "df-v1" | key | field | value, each part
 * length-prefixed. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void key_path(char *buf, size_t cap, const char *dir, const char *region, const char *ext)
{
    snprintf(buf, cap, "%s/%s.%s", dir, region, ext);
}

/* Reads a file holding exactly 32 bytes in hex (whitespace around it is
 * fine). A secret must not be readable by group or others. */
static int read_hex32(const char *path, unsigned char out[32], bool secret)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        df_log(DF_LOG_ERROR, "keys: cannot read %s: %s", path, strerror(errno));
        return DF_EIO;
    }
    struct stat st;
    if (secret && fstat(fd, &st) == 0 && (st.st_mode & 077)) {
        df_log(DF_LOG_ERROR, "keys: %s is readable by others (mode %03o); chmod 600 it", path,
               (unsigned)(st.st_mode & 0777));
        close(fd);
        return DF_EINVAL;
    }
    char buf[160];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n < 0) n = 0;
    buf[n] = '\0';
    size_t bin = 0;
    const char *end;
    const char *p = buf + strspn(buf, " \t\r\n");
    if (sodium_hex2bin(out, 32, p, strlen(p), NULL, &bin, &end) != 0 || bin != 32 ||
        end[strspn(end, " \t\r\n")] != '\0') {
        df_log(DF_LOG_ERROR, "keys: %s does not hold a key (64 hex digits)", path);
        sodium_memzero(buf, sizeof buf);
        return DF_EINVAL;
    }
    sodium_memzero(buf, sizeof buf);
    return 0;
}

static int write_hex32(const char *path, const unsigned char in[32], mode_t mode)
{
    char hex[65];
    sodium_bin2hex(hex, sizeof hex, in, 32);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        df_log(DF_LOG_ERROR, "keys: cannot create %s: %s", path, strerror(errno));
        return DF_EIO;
    }
    hex[64] = '\n';
    bool ok = write(fd, hex, 65) == 65 && fsync(fd) == 0;
    close(fd);
    sodium_memzero(hex, sizeof hex);
    if (!ok) {
        df_log(DF_LOG_ERROR, "keys: cannot write %s", path);
        unlink(path);
        return DF_EIO;
    }
    return 0;
}

int repl_keygen(const char *dir, const char *region)
{
    if (!stg_valid_name(region, strlen(region), STG_ORIGIN_MAX)) return DF_EINVAL;
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        df_log(DF_LOG_ERROR, "keys: cannot create %s: %s", dir, strerror(errno));
        return DF_EIO;
    }
    char sk_path[512], pk_path[512];
    key_path(sk_path, sizeof sk_path, dir, region, "key");
    key_path(pk_path, sizeof pk_path, dir, region, "pub");
    if (access(sk_path, F_OK) == 0) {
        /* Kept: a new key would orphan every signature peers check. */
        unsigned char seed[32];
        int rc = read_hex32(sk_path, seed, true);
        sodium_memzero(seed, sizeof seed);
        if (rc == 0 && access(pk_path, F_OK) != 0) {
            df_log(DF_LOG_ERROR, "keys: %s exists without %s", sk_path, pk_path);
            return DF_EINVAL;
        }
        return rc;
    }
    unsigned char seed[32], pk[32], sk[64];
    randombytes_buf(seed, sizeof seed);
    crypto_sign_seed_keypair(pk, sk, seed);
    unlink(pk_path); /* a public key without its secret is of no use */
    int rc = write_hex32(sk_path, seed, 0600);
    if (rc == 0 && (rc = write_hex32(pk_path, pk, 0644)) < 0) unlink(sk_path);
    sodium_memzero(seed, sizeof seed);
    sodium_memzero(sk, sizeof sk);
    return rc;
}

int repl_keys_load(struct repl *r, const char *dir)
{
    char path[512];
    unsigned char seed[32];
    key_path(path, sizeof path, dir, r->region, "key");
    int rc = read_hex32(path, seed, true);
    if (rc < 0) return rc;
    crypto_sign_seed_keypair(r->pk, r->sk, seed);
    sodium_memzero(seed, sizeof seed);
    unsigned char pk[32];
    key_path(path, sizeof path, dir, r->region, "pub");
    if ((rc = read_hex32(path, pk, false)) < 0) return rc;
    if (sodium_memcmp(pk, r->pk, 32) != 0) {
        df_log(DF_LOG_ERROR, "keys: %s is not the public key of %s/%s.key", path, dir, r->region);
        return DF_EINVAL;
    }
    for (size_t i = 0; i < r->npeers; i++) {
        peer *p = &r->peers[i];
        key_path(path, sizeof path, dir, p->name, "pub");
        if ((rc = read_hex32(path, p->pk, false)) < 0) return rc;
    }
    r->key_dir = xstrdup(dir);
    r->authenticated = true;
    return 0;
}

int repl_peer_key_find(const struct repl *r, const char *name, unsigned char pk[32])
{
    char path[512];
    if (!r->key_dir) return DF_ENOTFOUND;
    key_path(path, sizeof path, r->key_dir, name, "pub");
    if (access(path, R_OK) != 0) return DF_ENOTFOUND;
    return read_hex32(path, pk, false);
}

/* ---- Signatures ------------------------------------------------------------------ */

static void absorb(crypto_generichash_state *st, const void *p, size_t n)
{
    unsigned char len[4] = {(unsigned char)(n >> 24), (unsigned char)(n >> 16),
                            (unsigned char)(n >> 8), (unsigned char)n};
    crypto_generichash_update(st, len, sizeof len);
    crypto_generichash_update(st, p, n);
}

static void sig_digest(unsigned char out[32], const char *key, const char *field, const void *val,
                       size_t len)
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, 32);
    absorb(&st, "df-v1", 5);
    absorb(&st, key, strlen(key));
    absorb(&st, field, strlen(field));
    absorb(&st, val, len);
    crypto_generichash_final(&st, out, 32);
}

void repl_sign(const struct repl *r, const char *key, const char *field, const void *val,
               size_t len, unsigned char sig[REPL_SIG_LEN])
{
    unsigned char d[32];
    sig_digest(d, key, field, val, len);
    crypto_sign_detached(sig, NULL, d, sizeof d, r->sk);
}

bool repl_verify(const unsigned char pk[32], const char *key, const char *field, const void *val,
                 size_t len, const unsigned char *sig, size_t siglen)
{
    if (siglen != REPL_SIG_LEN) return false;
    unsigned char d[32];
    sig_digest(d, key, field, val, len);
    return crypto_sign_verify_detached(sig, d, sizeof d, pk) == 0;
}

void repl_record_hash(const void *rec, size_t len, unsigned char out[REPL_HASH_LEN])
{
    crypto_generichash(out, REPL_HASH_LEN, rec, len, NULL, 0);
}

/* ---- Signed values: "<value>" or "<value> <signature in hex>" ----------------- */

void repl_value_seal(const struct repl *r, const char *key, const char *field, const char *val,
                     char *out, size_t cap)
{
    if (!r->authenticated) {
        snprintf(out, cap, "%s", val);
        return;
    }
    unsigned char sig[REPL_SIG_LEN];
    char hex[2 * REPL_SIG_LEN + 1];
    repl_sign(r, key, field, val, strlen(val), sig);
    sodium_bin2hex(hex, sizeof hex, sig, sizeof sig);
    snprintf(out, cap, "%s %s", val, hex);
}

int repl_value_open(const unsigned char *pk, const char *key, const char *field, const char *s,
                    size_t n, char *val, size_t cap)
{
    const char *sp = memchr(s, ' ', n);
    size_t vlen = sp ? (size_t)(sp - s) : n;
    if (vlen >= cap || memchr(s, '\0', n)) return -1;
    if (pk) {
        unsigned char sig[REPL_SIG_LEN];
        size_t bin = 0;
        const char *end;
        if (!sp || sodium_hex2bin(sig, sizeof sig, sp + 1, n - vlen - 1, NULL, &bin, &end) != 0 ||
            end != s + n || !repl_verify(pk, key, field, s, vlen, sig, bin))
            return -1;
    }
    memcpy(val, s, vlen);
    val[vlen] = '\0';
    return (int)vlen;
}
