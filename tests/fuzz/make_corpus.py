"""make_corpus.py -- writes the seed corpora of the fuzz targets: valid
encodings (replication records, stored values, ids) written the way the C
code writes them, plus a few near misses. Rerun after a format change."""
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
