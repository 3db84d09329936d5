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
