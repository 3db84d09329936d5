"""make_corpus.py -- writes the seed corpora of the fuzz targets: valid
encodings (replication records, stored values, ids, session tokens) written
the way the C code writes them, plus a few near misses. Rerun after a
format change."""
import base64
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def value(hlc, origin, owner, payload=b"", tomb=False):
    return (bytes([1, 1 if tomb else 0]) + struct.pack(">Q", hlc) + bytes([len(origin)]) + origin +
            bytes([len(owner)]) + owner + payload)


def record(kind, key, val):
    return bytes([1, kind]) + struct.pack(">H", len(key)) + key + val


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


hlc = 0x01A215EAC54E0003
user = value(hlc, b"paris", b"alice@paris",
             b'{"id":"alice@paris","name":"alice","display_name":"Alice","region":"paris"}')
post = value(hlc, b"paris", b"alice@paris",
             b'{"id":"01a215eac54e0003-paris","author":"alice@paris","text":"bonjour"}')
recs = {
    "user": record(1, b"alice@paris", user),
    "follow": record(2, b"bob@tokyo\0alice@paris", value(hlc + 1, b"tokyo", b"bob@tokyo")),
    "unfollow": record(2, b"bob@tokyo\0alice@paris", value(hlc + 2, b"tokyo", b"bob@tokyo", tomb=True)),
    "post": record(3, b"01a215eac54e0003-paris", post),
    "delete": record(3, b"01a215eac54e0003-paris", value(hlc + 9, b"newyork", b"alice@paris", tomb=True)),
    "message": record(4, b"alice@paris\0bob@tokyo\x0001a215eac54e0004-tokyo",
                      value(hlc + 3, b"tokyo", b"bob@tokyo", b'{"text":"hi"}')),
    "bad-order": record(4, b"bob@tokyo\0alice@paris\x0001a215eac54e0004-tokyo",
                        value(hlc + 3, b"tokyo", b"bob@tokyo", b'{}')),
    "truncated": record(3, b"01a215eac54e0003-paris", post)[:20],
}
for name, data in recs.items():
    write("record", name, data)
for name, data in {"post-id": b"01a215eac54e0003-paris", "user-id": b"alice@paris",
                   "key": b"bob@tokyo\0alice@paris", "value": post, "tombstone": value(hlc, b"x", b"y", tomb=True),
                   "upper-id": b"01A215EAC54E0003-paris", "name": b"alice_01"}.items():
    write("ids", name, data)

# fuzz_request: one request per route, then the other targets' corpora
# (bodies, ids, cursors) as the bodies, path and query parameters of the
# routes that take them. The target replaces $TOKEN, $USER, $OTHER, $POST
# and $ADMIN with real values.
JSON = b"Content-Type: application/json\n"
AUTH = b"Authorization: Bearer $TOKEN\n"


def req(method, url, headers=b"", body=b""):
    return method + b" " + url + b"\n" + headers + b"\n" + body


routes = {
    "users-create": req(b"POST", b"/v1/users", JSON, b'{"name":"zoe","display_name":"Zo\xc3\xa9"}'),
    "users-get": req(b"GET", b"/v1/users/$USER"),
    "users-following": req(b"GET", b"/v1/users/$USER/following?limit=5"),
    "users-followers": req(b"GET", b"/v1/users/$OTHER/followers?cursor=$USER"),
    "profile": req(b"GET", b"/v1/users/$USER/posts?limit=2", AUTH),
    "follow": req(b"PUT", b"/v1/following/$OTHER", AUTH),
    "unfollow": req(b"DELETE", b"/v1/following/$OTHER", AUTH),
    "posts-create": req(b"POST", b"/v1/posts", JSON + AUTH + b"Idempotency-Key: k1\n", b'{"text":"hello"}'),
    "posts-get": req(b"GET", b"/v1/posts/$POST"),
    "posts-delete": req(b"DELETE", b"/v1/posts/$POST", AUTH),
    "timeline": req(b"GET", b"/v1/timeline?limit=3", AUTH),
    "messages-send": req(b"POST", b"/v1/messages", JSON + AUTH, b'{"to":"$OTHER","text":"psst"}'),
    "messages-list": req(b"GET", b"/v1/messages/$OTHER?limit=10", AUTH),
    "conversations": req(b"GET", b"/v1/conversations", AUTH),
    "stream": req(b"GET", b"/v1/stream?access_token=$TOKEN", b"Last-Event-ID: 1.2\n"),
    "region": req(b"GET", b"/v1/region"),
    "cluster": req(b"GET", b"/v1/cluster"),
    "replication": req(b"GET", b"/v1/replication"),
    "digest": req(b"GET", b"/v1/digest"),
    "admin": req(b"POST", b"/v1/admin/replication", JSON + b"Authorization: Bearer $ADMIN\n",
                 b'{"paused":false,"delay_ms":0}'),
    "admin-origin": req(b"POST", b"/v1/admin/replication",
                        JSON + b"Authorization: Bearer $ADMIN\nOrigin: http://127.0.0.1:1\n",
                        b'{"paused":false}'),
    "admin-preflight": req(b"OPTIONS", b"/v1/admin/replication",
                           b"Origin: https://[::1]\nAccess-Control-Request-Method: POST\n"),
    "admin-peer-remove": req(b"DELETE", b"/v1/admin/peers/tokyo",
                             b"Authorization: Bearer $ADMIN\n"),
    "admin-peer-bad": req(b"DELETE", b"/v1/admin/peers/%FF%00", b"Authorization: Bearer $ADMIN\n"),
    "health": req(b"HEAD", b"/health"),
    "metrics": req(b"GET", b"/metrics"),
    "static": req(b"GET", b"/app.js"),
    "options": req(b"OPTIONS", b"/v1/posts", b"Origin: http://x\n"),
    "crash-class": req(b"GET", b"/v1/posts/a" + b"%C3%A9" * 300),
}
for name, data in routes.items():
    write("request", name, data)


def seeds(target):
    d = os.path.join(HERE, "corpus", target)
    for name in sorted(os.listdir(d)):
        with open(os.path.join(d, name), "rb") as f:
            yield name[:12], f.read()


body_routes = [(b"POST", b"/v1/users", b""), (b"POST", b"/v1/posts", AUTH),
               (b"POST", b"/v1/messages", AUTH), (b"POST", b"/v1/admin/replication",
                                                  b"Authorization: Bearer $ADMIN\n")]
for name, data in seeds("bodies"):
    if data:
        method, url, auth = body_routes[data[0] % 4]
        write("request", "body-" + name, req(method, url, JSON + auth, data[1:]))
for name, data in seeds("ids"):
    # Sent as bytes: the target %-escapes what a URL cannot hold.
    write("request", "id-" + name, req(b"GET", b"/v1/posts/" + data.replace(b"\n", b"")))
    write("request", "user-" + name, req(b"GET", b"/v1/users/" + data.replace(b"\n", b"") + b"/posts"))
for name, data in seeds("cursor"):
    write("request", "cursor-" + name, req(b"GET", b"/v1/timeline?cursor=" + data.replace(b"\n", b""), AUTH))


# ---- repair messages (replication/repl.h) ----------------------------------------
def repair(t, payload, frm=b"tokyo", to=b"paris", sig=b"\x00" * 64):
    return (b"DFR1" + bytes([t, len(frm)]) + frm + bytes([len(to)]) + to +
            struct.pack(">Q", 0x0102030405060708) + payload + sig)


def rkey(kind, key):
    return bytes([kind]) + struct.pack(">H", len(key)) + key


sum0 = struct.pack(">QQQ", 1, 2, 3)
write("repair", "nodes-root", repair(1, bytes([0]) + struct.pack(">HI", 1, 0)))
write("repair", "nodes-level2", repair(1, bytes([2]) + struct.pack(">H", 2) + struct.pack(">II", 17, 255)))
write("repair", "nodes-answer", repair(0x81, struct.pack(">QQQ", 7, 42, 0) + bytes([0]) + struct.pack(">H", 1) + sum0))
write("repair", "leaves", repair(2, struct.pack(">HII", 2, 5, 4095)))
write("repair", "leaves-answer", repair(0x82, struct.pack(">I", 1) + struct.pack(">I", 5) +
                                        rkey(3, b"01a215eac54e0003-paris") + b"\x11" * 16 +
                                        struct.pack(">Q", hlc)))
write("repair", "records", repair(3, struct.pack(">H", 2) + rkey(1, b"alice@paris") +
                                  rkey(3, b"01a215eac54e0003-paris")))
write("repair", "records-answer", repair(0x83, struct.pack(">H", 1) +
                                         struct.pack(">I", len(recs["post"])) + recs["post"]))
write("repair", "unsigned-bad-leaf", repair(2, struct.pack(">HI", 1, 4096), sig=b""))


# ---- session tokens (api/session_token.c) ----------------------------------------
def siphash24(key, msg):
    """SipHash-2-4 of msg under a 16-byte key, 8 bytes little-endian (libsodium's
    crypto_shorthash)."""
    mask = (1 << 64) - 1

    def rotl(x, b):
        return ((x << b) | (x >> (64 - b))) & mask

    def rounds(v, n):
        v0, v1, v2, v3 = v
        for _ in range(n):
            v0 = (v0 + v1) & mask; v1 = rotl(v1, 13) ^ v0; v0 = rotl(v0, 32)
            v2 = (v2 + v3) & mask; v3 = rotl(v3, 16) ^ v2
            v0 = (v0 + v3) & mask; v3 = rotl(v3, 21) ^ v0
            v2 = (v2 + v1) & mask; v1 = rotl(v1, 17) ^ v2; v2 = rotl(v2, 32)
        return [v0, v1, v2, v3]

    k0, k1 = struct.unpack("<QQ", key)
    v = [k0 ^ 0x736f6d6570736575, k1 ^ 0x646f72616e646f6d,
         k0 ^ 0x6c7967656e657261, k1 ^ 0x7465646279746573]
    tail = len(msg) - len(msg) % 8
    blocks = [struct.unpack("<Q", msg[i:i + 8])[0] for i in range(0, tail, 8)]
    blocks.append((len(msg) & 0xff) << 56 | int.from_bytes(msg[tail:], "little"))
    for m in blocks:
        v[3] ^= m
        v = rounds(v, 2)
        v[0] ^= m
    v[2] ^= 0xff
    v = rounds(v, 4)
    return struct.pack("<Q", v[0] ^ v[1] ^ v[2] ^ v[3])


# The reference vectors of the SipHash paper: key 00..0f, messages 00..(n-1).
assert siphash24(bytes(range(16)), b"") == bytes.fromhex("310e0edd47db6f72")
assert siphash24(bytes(range(16)), bytes(range(15))) == bytes.fromhex("e545be4961ca29a1")


def leb128(n):
    out = bytearray()
    while True:
        out.append((n & 0x7f) | (0x80 if n > 0x7f else 0))
        n >>= 7
        if not n:
            return bytes(out)


def session_bin(positions, version=1, count=None, seq=leb128):
    b = bytes([version, len(positions) if count is None else count])
    for name, epoch, s in positions:
        b += bytes([len(name)]) + name + struct.pack(">I", epoch) + (s if isinstance(s, bytes) else seq(s))
    return b


def session_token(b, check=None):
    """base64url without padding of b and its check (4 bytes of SipHash-2-4)."""
    check = siphash24(b"driftfeed-sess-1", b)[:4] if check is None else check
    return base64.urlsafe_b64encode(b + check).rstrip(b"=")


three = [(b"paris", 0x5eed0001, 42), (b"tokyo", 0x5eed0002, 127), (b"newyork", 0, 128)]
full = [(b"r%02d_" % i + b"x" * 28, 0xffffffff - i, (1 << 64) - 1 - i) for i in range(17)]
sessions = {
    "one": session_token(session_bin([(b"paris", 1, 1)])),
    "three": session_token(session_bin(three)),
    "full": session_token(session_bin(full)),
    "seq-0": session_token(session_bin([(b"london", 7, 0)])),
    "seq-max": session_token(session_bin([(b"a", 0xffffffff, (1 << 64) - 1)])),
    "epoch-0": session_token(session_bin([(b"tokyo", 0, 300)])),
    # Two tokens, merged into each other: the same regions (one epoch
    # differs, one is 0), a new one and a seq 0.
    "merge": session_token(session_bin(three)) + b"." +
             session_token(session_bin([(b"paris", 0x5eed0001, 40), (b"tokyo", 0x0bad0002, 5),
                                        (b"newyork", 9, 1000), (b"sydney", 3, 0), (b"lima", 4, 4)])),
    "merge-full": session_token(session_bin(full[:16])) + b"." + session_token(session_bin(three)),
    # Near misses: each fails for one reason, the check being right.
    "bad-check": session_token(session_bin(three), check=b"\0\0\0\0"),
    "padded": session_token(session_bin([(b"paris", 1, 1)])) + b"==",
    "version-2": session_token(session_bin(three, version=2)),
    "count-0": session_token(session_bin([], count=0)),
    "count-18": session_token(session_bin(full + [(b"z", 1, 1)])),
    "count-short": session_token(session_bin(three, count=4)),
    "dup": session_token(session_bin([(b"paris", 1, 1), (b"paris", 2, 2)])),
    "upper": session_token(session_bin([(b"Paris", 1, 1)])),
    "empty-name": session_token(session_bin([(b"", 1, 1)])),
    "leb-trailing-0": session_token(session_bin([(b"paris", 1, b"\x80\x00")])),
    "leb-11-bytes": session_token(session_bin([(b"paris", 1, b"\xff" * 10 + b"\x01")])),
    "leb-overflow": session_token(session_bin([(b"paris", 1, b"\xff" * 9 + b"\x02")])),
    "leb-cut": session_token(session_bin([(b"paris", 1, b"\xff\xff")])),
    "trailing": session_token(session_bin([(b"paris", 1, 1)]) + b"\x00"),
    # libsodium 1.0.18 reads any byte >= 0x80 as '_' (found by this target).
    "high-byte": session_token(session_bin([(b"a", 0xffffffff, (1 << 64) - 1)])).replace(b"_", b"\xdf", 1),
}
for name, data in sessions.items():
    write("session", name, data)
# The same as the bytes inside a token: the target seals them itself.
for name, b in {"three": session_bin(three), "full": session_bin(full),
                "dup": session_bin([(b"paris", 1, 1), (b"paris", 2, 2)]),
                "leb-trailing-0": session_bin([(b"paris", 1, b"\x80\x00")]),
                "leb-max": session_bin([(b"a", 0, (1 << 64) - 1)])}.items():
    write("session", "bin-" + name, b)

# Requests with the session headers (the region is "fuzz", standalone: a
# token of its own at seq 0 is covered at once, others are 400, so nothing
# waits).
own = session_token(session_bin([(b"fuzz", 0, 0)]))
for name, data in {
    "session-read": req(b"GET", b"/v1/timeline", AUTH + b"Session-Token: " + own +
                        b"\nSession-Wait-Ms: 0\n"),
    "session-foreign": req(b"GET", b"/v1/posts/$POST", b"Session-Token: " +
                           session_token(session_bin(three)) + b"\n"),
    "session-garbled": req(b"GET", b"/v1/posts/$POST", b"Session-Token: " + own[:-2] +
                           b"\xc3\xa9\nSession-Wait-Ms: 12x\n"),
    "session-write-ack": req(b"POST", b"/v1/posts?ack=quorum", JSON + AUTH + b"Session-Token: " +
                             own + b"\n", b'{"text":"acked"}'),
    "session-ack-bad": req(b"PUT", b"/v1/following/$OTHER?ack=%FFall", AUTH),
}.items():
    write("request", name, data)
