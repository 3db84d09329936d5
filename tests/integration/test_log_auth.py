"""test_log_auth.py -- a hostile or damaged replication log, against real
regions and a real Redis.

Whoever can write to Redis tries to forge records (unsigned, altered,
replayed from another region's stream), to delete an entry, to announce
fake regions and to fake progress. With signed logs (the default of the
harness and deploy/cluster) every forged entry is rejected and counted, a
seq whose entry is missing or not authentic stops the subscriber at a gap
(never skipped), the publisher rewrites a stream that holds entries it did
not write, and the regions converge on the real records. Without keys a
region warns, still replicates, and still refuses records its peer may not
write (accounts of another home region, rewritten posts). Redis AUTH: a
wrong password is one log line and log_connected false, a right one works.
"""
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest

from harness import BIN, Cluster, Redis, Region, sanitizer_env_ok, wait_for

CONVERGE_S = 60  # generous: the ASan build is several times slower
# Anti-entropy off: these tests watch what the log alone does with a gap
# (test_repair.py watches repair fill one).
ARGS = ["--demo", "--rate-limit", "0", "--repair-interval-ms", "0"]
KIND_USER, KIND_POST = 1, 3


def replication(region):
    r = region.client.get("/v1/replication")
    assert r.status == 200, r
    return r.json


def peer(region, name):
    return next(p for p in replication(region)["peers"] if p["name"] == name)


def set_paused(region, paused):
    r = region.client.post("/v1/admin/replication", {"paused": paused})
    assert r.status == 200, r
    if paused:
        wait_for(lambda: all(p["state"] == "paused" for p in replication(region)["peers"]), 10,
                 what=f"{region.name} paused")


def record(kind, key, hlc, origin, owner, payload, tombstone=False):
    """A replication record in its wire form (replication/record.c)."""
    value = bytes([1, 1 if tombstone else 0]) + hlc.to_bytes(8, "big") + \
        bytes([len(origin)]) + origin.encode() + bytes([len(owner)]) + owner.encode() + payload
    key = key.encode()
    return bytes([1, kind]) + len(key).to_bytes(2, "big") + key + value


def entries(redis, stream):
    """[(id, {field: value})] of a stream, oldest first."""
    out = []
    for eid, fields in redis.call("XRANGE", stream, "-", "+"):
        out.append((eid.decode(), dict(zip(fields[::2], fields[1::2]))))
    return out


def next_seq(redis, stream):
    """The seq after the stream's last id (kept by Redis even when the
    entries are trimmed away)."""
    info = redis.call("XINFO", "STREAM", stream)
    if isinstance(info, Exception):
        return 1
    info = dict(zip(info[::2], info[1::2]))
    return int(info[b"last-generated-id"].split(b"-")[0]) + 1


def log_text(region):
    with open(region.logpath, "rb") as f:
        return f.read()


def post_status(region, pid):
    return region.client.get(f"/v1/posts/{pid}").status


def post_text(region, pid):
    r = region.client.get(f"/v1/posts/{pid}")
    return r.json["text"] if r.status == 200 else None


def forged_post(author, origin, text, hlc):
    pid = f"{hlc:016x}-{origin}"
    payload = json.dumps({"id": pid, "author": author, "text": text,
                          "created_at": "2026-12-06T00:00:00.000Z", "region": origin},
                         separators=(",", ":")).encode()
    return pid, record(KIND_POST, pid, hlc, origin, author, payload)


def stop_checked(cluster):
    """Stops the regions cleanly (leaks are reported at exit), then fails on
    any sanitizer report in their logs."""
    codes = {r.name: r.stop() for r in cluster.regions.values()}
    dirty = [r.name for r in cluster.regions.values() if not sanitizer_env_ok(r)]
    cluster.stop()
    assert dirty == [], f"sanitizer reports in the logs of {dirty}"
    assert set(codes.values()) == {0}, codes


def future_hlc(region):
    return int(region.client.get("/v1/region").json["hlc"]) + (5000 << 16)


def admin_from(region, origin, method="POST"):
    """An admin call to region as a page from origin would make it."""
    headers = {"Origin": origin}
    if method == "OPTIONS":
        headers["Access-Control-Request-Method"] = "POST"
        return region.client.request("OPTIONS", "/v1/admin/replication", headers=headers)
    return region.client.post("/v1/admin/replication", {"paused": True}, headers=headers)


class AdminOrigins:
    """Admin routes answer pages of the cluster's authenticated regions only."""

    def assert_refused(self, region, origin):
        for method in ("POST", "OPTIONS"):
            r = admin_from(region, origin, method)
            self.assertEqual(r.status, 403, f"{method} from {origin}: {r!r}")
            self.assertEqual(r.json["error"]["code"], "forbidden_origin")
            self.assertNotIn("access-control-allow-origin", r.headers)
        self.assertFalse(replication(region)["paused"], f"{origin} paused {region.name}")


class SignedLog(AdminOrigins, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.c = Cluster(names=("paris", "tokyo"), args=ARGS)
        cls.paris, cls.tokyo, cls.redis = cls.c["paris"], cls.c["tokyo"], cls.c.redis
        cls.alice = cls.paris.client.register("alice")
        cls.bob = cls.tokyo.client.register("bob")
        wait_for(lambda: cls.tokyo.client.get(f"/v1/users/{cls.alice['id']}").status == 200,
                 CONVERGE_S, what="alice in tokyo")
        wait_for(lambda: cls.paris.client.get(f"/v1/users/{cls.bob['id']}").status == 200,
                 CONVERGE_S, what="bob in paris")

    @classmethod
    def tearDownClass(cls):
        stop_checked(cls.c)

    def tearDown(self):
        # Every test leaves the regions streaming and converged.
        for reg in (self.paris, self.tokyo):
            if replication(reg)["paused"]:
                set_paused(reg, False)
        wait_for(lambda: all(peer(r, o)["state"] == "streaming"
                             for r, o in ((self.paris, "tokyo"), (self.tokyo, "paris"))),
                 CONVERGE_S, what="both streaming")
        self.c.wait_converged(CONVERGE_S)
        # ...and every subscriber has followed its peer's last stream
        # rewrite (its progress names that generation), so no rewind from
        # this test lands in the next one.
        for reg, origin in ((self.paris, "tokyo"), (self.tokyo, "paris")):
            wait_for(lambda: self.progress_generation(reg.name, origin) ==
                     self.stream_generation(origin), CONVERGE_S,
                     what=f"{reg.name} following {origin}'s generation")

    def stream_generation(self, origin):
        v = self.redis.call("HGET", "df:rewrites", origin)
        return int(v.split(b" ")[0].split(b".")[0]) if v else 0

    def progress_generation(self, region, origin):
        v = self.redis.call("HGET", f"df:progress:{region}", origin)
        return int(v.split(b" ")[0].split(b".")[1]) if v else None

    def rejected(self, region, origin, reason):
        return peer(region, origin)["rejected"][reason]

    def test_signed_log_applies_and_says_so(self):
        p = self.paris.client.post_text(self.alice["token"], "signed hello")
        wait_for(lambda: post_status(self.tokyo, p["id"]) == 200, CONVERGE_S, what="post in tokyo")
        st = replication(self.tokyo)
        self.assertTrue(st["log_authenticated"], st)
        tp = peer(self.tokyo, "paris")
        self.assertEqual(tp["state"], "streaming")
        self.assertIsNone(tp["gap"])
        # The chunk's last entry carries its first seq, the store's epoch, the
        # record hashes and the signature; the metrics name the same counters.
        eid, fields = entries(self.redis, "df:log:paris")[-1]
        self.assertEqual(set(fields), {b"r", b"a", b"e", b"h", b"s"})
        self.assertEqual(len(fields[b"s"]), 64)
        self.assertEqual(len(fields[b"h"]) % 32, 0)
        metrics = self.tokyo.client.get("/metrics").body
        self.assertIn("driftfeed_log_authenticated 1", metrics)
        self.assertIn('driftfeed_replication_rejected_total{peer="paris",reason="unsigned"}', metrics)
        # df:seq, df:progress and df:regions are signed values "<v> <hex>".
        seq = self.redis.call("GET", "df:seq:paris").split(b" ")
        self.assertEqual(len(seq), 2)
        self.assertEqual(len(seq[1]), 128)

    def test_unsigned_record_is_a_gap_until_the_publisher_rewrites(self):
        before = self.rejected(self.tokyo, "paris", "unsigned")
        rewrites = replication(self.paris)["log_rewrites"]
        seq = next_seq(self.redis, "df:log:paris")
        pid, rec = forged_post(self.alice["id"], "paris", "forged by whoever owns Redis",
                               future_hlc(self.paris))
        self.assertIsInstance(self.redis.call("XADD", "df:log:paris", f"{seq}-1", "r", rec), bytes)
        wait_for(lambda: peer(self.tokyo, "paris")["state"] == "gap", CONVERGE_S, what="gap")
        tp = peer(self.tokyo, "paris")
        self.assertEqual(tp["gap"]["from"], seq, tp)
        self.assertEqual(tp["applied_seq"], seq - 1, tp)
        self.assertEqual(self.rejected(self.tokyo, "paris", "unsigned"), before + 1)
        self.assertEqual(post_status(self.tokyo, pid), 404)
        # Re-reading the gap every second does not count it again.
        self.assertEqual(self.rejected(self.tokyo, "paris", "unsigned"), before + 1)
        # The next real write finds its seq taken by an entry paris did not
        # write: paris rewrites its stream and tokyo gets the real record.
        real = self.paris.client.post_text(self.alice["token"], "the real one")
        wait_for(lambda: post_status(self.tokyo, real["id"]) == 200, CONVERGE_S,
                 what="the real post in tokyo")
        self.assertGreater(replication(self.paris)["log_rewrites"], rewrites)
        self.assertEqual(post_status(self.tokyo, pid), 404)
        self.assertEqual(self.tokyo.client.get("/health").status, 200)

    def rewrite_stream(self, stream, change):
        """Replaces the stream, atomically, by its entries passed through
        change(id, fields) -> fields."""
        cmds = [("DEL", stream)]
        for eid, fields in entries(self.redis, stream):
            f = change(eid, dict(fields))
            cmds.append(("XADD", stream, eid, *[x for kv in f.items() for x in kv]))
        replies = self.redis.transaction(*cmds)
        self.assertTrue(all(not isinstance(r, Exception) for r in replies), replies)

    def test_altered_record_is_a_gap_until_the_publisher_rewrites(self):
        before = self.rejected(self.tokyo, "paris", "bad_signature")
        set_paused(self.tokyo, True)
        p = self.paris.client.post_text(self.alice["token"], "original text")
        wait_for(lambda: any(b"original text" in f[b"r"] for _, f in
                             entries(self.redis, "df:log:paris")), 10, what="the entry in Redis")

        def alter(eid, f):
            if b"original text" in f[b"r"]:
                f[b"r"] = f[b"r"].replace(b"original text", b"altered! text")
            return f
        self.rewrite_stream("df:log:paris", alter)
        set_paused(self.tokyo, False)
        # tokyo stops at the altered entry and says where; paris reads that
        # report, sees the entry is not what it wrote, and rewrites.
        wait_for(lambda: self.rejected(self.tokyo, "paris", "bad_signature") > before, CONVERGE_S,
                 what="the altered entry rejected")
        wait_for(lambda: post_text(self.tokyo, p["id"]) == "original text", CONVERGE_S,
                 what="the original post in tokyo")
        self.assertEqual(self.rejected(self.tokyo, "paris", "bad_signature"), before + 1)

    def test_replayed_across_streams_is_rejected(self):
        before = self.rejected(self.paris, "tokyo", "bad_signature")
        p = self.paris.client.post_text(self.alice["token"], "paris only")
        wait_for(lambda: any(b"paris only" in f[b"r"] for _, f in
                             entries(self.redis, "df:log:paris")), 10, what="the entry in Redis")
        eid, fields = next((e, f) for e, f in entries(self.redis, "df:log:paris")
                           if b"paris only" in f[b"r"] and b"s" in f)
        seq = next_seq(self.redis, "df:log:tokyo")
        # Paris's signed chunk, copied into tokyo's stream at its next seq,
        # its first-seq field moved along so the range looks right.
        fields[b"a"] = b"%d" % seq
        self.assertIsInstance(self.redis.call(
            "XADD", "df:log:tokyo", f"{seq}-1", *[x for kv in fields.items() for x in kv]), bytes)
        wait_for(lambda: self.rejected(self.paris, "tokyo", "bad_signature") > before, CONVERGE_S,
                 what="the replayed entry rejected")
        self.assertEqual(peer(self.paris, "tokyo")["gap"]["from"], seq)
        real = self.tokyo.client.post_text(self.bob["token"], "tokyo's own")
        wait_for(lambda: post_status(self.paris, real["id"]) == 200, CONVERGE_S,
                 what="tokyo's real post in paris")
        self.assertEqual(post_status(self.tokyo, p["id"]), 200)

    def test_deleted_entry_is_a_gap_not_skipped(self):
        set_paused(self.tokyo, True)
        # One chunk per post: each is in Redis before the next is written.
        posts = []
        for i in range(3):
            posts.append(self.paris.client.post_text(self.alice["token"], f"deleted-test {i}"))
            wait_for(lambda: any(f"deleted-test {i}".encode() in f[b"r"] for _, f in
                                 entries(self.redis, "df:log:paris")), 10, what="entry in Redis")
        # With paris stopped nobody repairs its stream, so tokyo's view of
        # the hole is what a lost entry looks like.
        self.assertEqual(self.paris.stop(), 0)
        try:
            middle = next(e for e, f in entries(self.redis, "df:log:paris")
                          if b"deleted-test 1" in f[b"r"])
            self.assertEqual(self.redis.call("XDEL", "df:log:paris", middle), 1)
            set_paused(self.tokyo, False)
            seq = int(middle.split("-")[0])
            wait_for(lambda: peer(self.tokyo, "paris")["state"] == "gap", CONVERGE_S, what="gap")
            tp = peer(self.tokyo, "paris")
            self.assertEqual(tp["gap"], {"from": seq, "to": seq}, tp)
            self.assertEqual(tp["applied_seq"], seq - 1)
            self.assertEqual(post_status(self.tokyo, posts[0]["id"]), 200)
            self.assertEqual(post_status(self.tokyo, posts[2]["id"]), 404)  # after the gap
            self.assertIn('driftfeed_replication_gap_seqs{peer="paris"} 1',
                          self.tokyo.client.get("/metrics").body)
        finally:
            # Paris, back, finds the hole in its stream and writes it again.
            self.paris.start()
        for p in posts:
            wait_for(lambda: post_status(self.tokyo, p["id"]) == 200, CONVERGE_S,
                     what="every post in tokyo")

    def housekeeping_passes(self, region, n=2):
        """Waits until region's publisher has run n more housekeeping passes
        (each announces the region again in df:regions)."""
        for _ in range(n):
            self.redis.call("HDEL", "df:regions", region.name)
            wait_for(lambda: self.redis.call("HGET", "df:regions", region.name) is not None, 10,
                     what=f"{region.name}'s publisher housekeeping")

    def test_forged_announcements_and_progress_are_ignored(self):
        self.redis.call("HSET", "df:regions", "evil", "http://127.0.0.1:1")
        self.redis.call("HSET", "df:regions", "newyork", "http://127.0.0.1:2")
        self.redis.call("HSET", "df:regions", "tokyo2", f"{self.tokyo.url} " + "00" * 64)
        # While tokyo is down, progress that says it has applied everything
        # must not let paris truncate what tokyo still lacks.
        self.tokyo.stop()
        try:
            for i in range(3):
                self.paris.client.post_text(self.alice["token"], f"while tokyo is down {i}")
            self.redis.call("HSET", "df:progress:tokyo", "paris", "999999")
            self.housekeeping_passes(self.paris)
            st = replication(self.paris)
            self.assertGreaterEqual(st["outbox_depth"], 3, st)
            regions = self.paris.client.get("/v1/cluster").json["regions"]
            names = {r["name"]: r["url"] for r in regions}
            self.assertEqual(set(names), {"paris", "tokyo"}, names)
            self.assertEqual(names["tokyo"], self.tokyo.url)
            self.assertTrue(all(r["authenticated"] for r in regions), regions)
        finally:
            self.tokyo.start()
        self.c.wait_converged(CONVERGE_S)


    def test_admin_routes_answer_only_the_clusters_own_pages(self):
        wait_for(lambda: any(x["name"] == "paris" and x["authenticated"]
                             for x in self.tokyo.client.get("/v1/cluster").json["regions"]),
                 CONVERGE_S, what="paris's signed announcement in tokyo")
        for origin in ("http://evil.example", "null", self.paris.url + ".evil.example",
                       "http://127.0.0.1:1", "http://localhost:%d" % self.paris.port):
            self.assert_refused(self.tokyo, origin)
        # Other routes stay open to every page.
        r = self.tokyo.client.get("/v1/cluster", headers={"Origin": "http://evil.example"})
        self.assertEqual(r.headers.get("access-control-allow-origin"), "*")
        # The demo page from paris drives tokyo, and tokyo's own page tokyo.
        for origin in (self.paris.url, self.tokyo.url):
            pre = admin_from(self.tokyo, origin, "OPTIONS")
            self.assertEqual(pre.status, 204, pre)
            self.assertEqual(pre.headers.get("access-control-allow-origin"), origin)
        r = admin_from(self.tokyo, self.paris.url)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers.get("access-control-allow-origin"), self.paris.url)
        self.assertTrue(replication(self.tokyo)["paused"])
        set_paused(self.tokyo, False)


class RestoredRegion(unittest.TestCase):
    """A region restored from an older copy of its data directory reissues
    seqs its peers have applied. Its next writes must still reach them."""

    def test_writes_after_a_restore_reach_the_peers(self):
        c = Cluster(names=("paris", "tokyo"), args=ARGS)
        self.addCleanup(stop_checked, c)
        paris, tokyo = c["paris"], c["tokyo"]
        alice = paris.client.register("alice")
        first = paris.client.post_text(alice["token"], "before the backup")
        wait_for(lambda: post_status(tokyo, first["id"]) == 200, CONVERGE_S, what="first in tokyo")
        self.assertEqual(paris.stop(), 0)
        backup = paris.data + ".backup"
        shutil.copytree(paris.data, backup)
        paris.start()
        lost = [paris.client.post_text(alice["token"], f"after the backup {i}") for i in range(3)]
        for p in lost:
            wait_for(lambda: post_status(tokyo, p["id"]) == 200, CONVERGE_S, what="posts in tokyo")
        self.assertEqual(paris.stop(), 0)
        shutil.rmtree(paris.data)
        shutil.move(backup, paris.data)
        paris.start()
        # The restored store's next seqs are the ones tokyo applied for the
        # lost posts: without a new generation tokyo would drop them.
        after = [paris.client.post_text(alice["token"], f"after the restore {i}") for i in range(2)]
        for p in after:
            wait_for(lambda: post_status(tokyo, p["id"]) == 200, CONVERGE_S,
                     what="posts made after the restore in tokyo")
        for p in lost:  # what paris lost is still in tokyo (anti-entropy brings it back)
            self.assertEqual(post_status(tokyo, p["id"]), 200)
        self.assertGreaterEqual(replication(paris)["log_rewrites"], 1)
        self.assertGreaterEqual(peer(tokyo, "paris")["rewinds"], 1)


    def test_a_store_made_again_from_nothing_is_read_from_its_first_seq(self):
        # Paris's data directory and the whole Redis are lost: a new paris
        # store starts its seqs again at 1, below tokyo's cursor. Its new
        # epoch tells tokyo to read it from the start, so none of its first
        # records is taken for one tokyo has.
        c = Cluster(names=("paris", "tokyo"), args=ARGS)
        self.addCleanup(stop_checked, c)
        paris, tokyo = c["paris"], c["tokyo"]
        alice = paris.client.register("alice")
        old = [paris.client.post_text(alice["token"], f"first store {i}") for i in range(8)]
        for p in old:
            wait_for(lambda: post_status(tokyo, p["id"]) == 200, CONVERGE_S, what="posts in tokyo")
        cursor = peer(tokyo, "paris")["applied_seq"]
        self.assertEqual(paris.stop(), 0)
        shutil.rmtree(paris.data)
        self.assertEqual(c.redis.call("FLUSHALL"), b"OK")
        paris.start()
        bob = paris.client.register("bob")
        new = [paris.client.post_text(bob["token"], f"second store {i}") for i in range(2)]
        self.assertLess(3, cursor)  # bob and his posts are seqs 1..3, below tokyo's cursor
        for p in new:
            wait_for(lambda: post_status(tokyo, p["id"]) == 200, CONVERGE_S,
                     what="the new store's first posts in tokyo")
        self.assertEqual(tokyo.client.get(f"/v1/users/{bob['id']}").status, 200)
        self.assertIn(b"is a new store, epoch", log_text(tokyo))
        for p in old:  # what paris lost is still in tokyo
            self.assertEqual(post_status(tokyo, p["id"]), 200)

class UnsignedLog(AdminOrigins, unittest.TestCase):
    """Regions started without --key-dir: a warning, the old behaviour, and
    the consistency checks, which need no keys."""

    @classmethod
    def setUpClass(cls):
        cls.c = Cluster(names=("paris", "tokyo"), args=ARGS, keys=False)
        cls.paris, cls.tokyo, cls.redis = cls.c["paris"], cls.c["tokyo"], cls.c.redis
        cls.alice = cls.paris.client.register("alice")

    @classmethod
    def tearDownClass(cls):
        stop_checked(cls.c)

    def test_unsigned_announcements_do_not_open_admin_routes(self):
        wait_for(lambda: any(x["name"] == "paris"
                             for x in self.tokyo.client.get("/v1/cluster").json["regions"]),
                 CONVERGE_S, what="paris's announcement in tokyo")
        self.assert_refused(self.tokyo, self.paris.url)
        r = admin_from(self.tokyo, self.tokyo.url, "OPTIONS")
        self.assertEqual(r.headers.get("access-control-allow-origin"), self.tokyo.url)

    def forge(self, rec):
        seq = next_seq(self.redis, "df:log:paris")
        self.assertIsInstance(self.redis.call("XADD", "df:log:paris", f"{seq}-1", "r", rec), bytes)
        return seq

    def wait_applied(self, seq):
        wait_for(lambda: peer(self.tokyo, "paris")["applied_seq"] >= seq, CONVERGE_S,
                 what=f"tokyo past seq {seq}")

    def test_warns_and_replicates(self):
        st = replication(self.paris)
        self.assertFalse(st["log_authenticated"])
        p = self.paris.client.post_text(self.alice["token"], "unsigned hello")
        wait_for(lambda: post_status(self.tokyo, p["id"]) == 200, CONVERGE_S, what="post in tokyo")
        self.assertEqual(log_text(self.paris).count(b"the log is not authenticated"), 1)
        # Announcements are taken, but marked: the demo sends no token there.
        wait_for(lambda: "tokyo" in {r["name"] for r in self.paris.client.get("/v1/cluster").json["regions"]},
                 CONVERGE_S, what="tokyo announced")
        regions = {r["name"]: r for r in self.paris.client.get("/v1/cluster").json["regions"]}
        self.assertFalse(regions["tokyo"]["authenticated"])
        self.assertTrue(regions["paris"]["authenticated"])

    def test_records_a_region_may_not_write_are_skipped(self):
        p = self.paris.client.post_text(self.alice["token"], "as posted")
        wait_for(lambda: post_status(self.tokyo, p["id"]) == 200, CONVERGE_S, what="post in tokyo")
        before = peer(self.tokyo, "paris")["rejected"]
        hlc = future_hlc(self.paris)
        # An account of tokyo's, published in paris's log.
        mallory = "mallory@tokyo"
        seq = self.forge(record(KIND_USER, mallory, hlc, "paris", mallory, b'{"name":"mallory"}'))
        # Alice's post, rewritten with a newer version.
        payload = json.dumps({"id": p["id"], "author": self.alice["id"], "text": "rewritten"}).encode()
        self.forge(record(KIND_POST, p["id"], hlc + 1, "paris", self.alice["id"], payload))
        # A record whose version names another region than the log's.
        _, rec = forged_post(self.alice["id"], "tokyo", "wrong origin", hlc + 2)
        last = self.forge(rec)
        self.wait_applied(last)
        after = peer(self.tokyo, "paris")
        self.assertEqual(after["rejected"]["not_owner"], before["not_owner"] + 2, after)
        self.assertEqual(after["rejected"]["wrong_origin"], before["wrong_origin"] + 1, after)
        self.assertEqual(after["state"], "streaming")  # skipped: authentic as far as we know
        self.assertEqual(self.tokyo.client.get(f"/v1/users/{mallory}").status, 404)
        self.assertEqual(post_text(self.tokyo, p["id"]), "as posted")
        # Paris rewrites its stream (those seqs were not its entries) and
        # its next real record still arrives.
        real = self.paris.client.post_text(self.alice["token"], "after the forgeries")
        wait_for(lambda: post_status(self.tokyo, real["id"]) == 200, CONVERGE_S,
                 what="the next real post in tokyo")
        self.assertEqual(post_text(self.tokyo, p["id"]), "as posted")
        self.assertGreater(replication(self.paris)["log_rewrites"], 0)
        self.assertGreater(seq, 0)


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class RedisAuth(unittest.TestCase):
    def secret_file(self, text):
        fd, path = tempfile.mkstemp(prefix="df-auth-")
        os.write(fd, text.encode())
        os.close(fd)
        os.chmod(path, 0o600)
        self.addCleanup(os.unlink, path)
        return path

    def test_wrong_password_is_one_log_line_and_disconnected(self):
        workdir = tempfile.mkdtemp(prefix="driftfeed-test-")
        self.addCleanup(shutil.rmtree, workdir, True)
        redis = Redis(workdir, args=["--requirepass", "right"])
        self.addCleanup(redis.stop)
        reg = Region("paris", workdir, redis=redis, peers=["tokyo"],
                     args=["--redis-auth-file", self.secret_file("wrong\n")])
        self.addCleanup(lambda: self.assertTrue(sanitizer_env_ok(reg)))
        self.addCleanup(reg.stop)
        wait_for(lambda: log_text(reg).count(b"refused AUTH") >= 1, 20,
                 what="the AUTH refusal in the log")
        st = replication(reg)
        self.assertFalse(st["log_connected"])
        self.assertEqual({p["state"] for p in st["peers"]}, {"disconnected"})
        # Reconnecting with backoff, not spinning: Redis's own count of
        # refused AUTHs (ACL LOG) grows a few per second, with little CPU,
        # and the refusal is logged once per thread, not once per attempt.
        def refused():
            return sum(dict(zip(e[::2], e[1::2]))[b"count"] for e in redis.call("ACL", "LOG")
                       if dict(zip(e[::2], e[1::2]))[b"reason"] == b"auth")
        t0, cpu, n0 = time.monotonic(), cpu_seconds(reg.proc.pid), refused()
        # Backoff doubles from 50 ms to 2 s per thread: a dozen attempts take
        # seconds; a loop without backoff makes thousands a second.
        n1 = wait_for(lambda: refused() >= n0 + 12 and refused(), 30, interval=0.2,
                      what="a dozen more AUTH attempts")
        elapsed = time.monotonic() - t0
        self.assertLess((n1 - n0) / elapsed, 20, f"{n1 - n0} attempts in {elapsed:.1f} s")
        self.assertLess(cpu_seconds(reg.proc.pid) - cpu, 0.2 + 0.25 * elapsed)
        self.assertLessEqual(log_text(reg).count(b"refused AUTH"), 2)  # publisher + subscriber
        self.assertEqual(reg.client.get("/health").status, 200)
        # A password file others can read is refused at start.
        path = self.secret_file("right\n")
        os.chmod(path, 0o644)
        out = subprocess.run([BIN, "--redis-auth-file", path], capture_output=True, timeout=10)
        self.assertEqual(out.returncode, 2)
        self.assertIn(b"readable by others", out.stderr)

    def test_right_password_replicates(self):
        path = self.secret_file("right\n")
        c = Cluster(names=("paris", "tokyo"), args=ARGS + ["--redis-auth-file", path],
                    redis_args=["--requirepass", "right"])
        self.addCleanup(stop_checked, c)
        alice = c["paris"].client.register("alice")
        wait_for(lambda: c["tokyo"].client.get(f"/v1/users/{alice['id']}").status == 200,
                 CONVERGE_S, what="alice in tokyo")
        self.assertTrue(replication(c["paris"])["log_connected"])


if __name__ == "__main__":
    unittest.main()
