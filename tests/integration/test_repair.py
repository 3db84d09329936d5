"""test_repair.py -- anti-entropy against real regions and a real Redis.

A region whose store lost records (taken out with --drop-records while it
was stopped, as a disk might lose them) gets them back from its peer by
comparing Merkle trees, and the repair moves tens of records, not the
store. A region that joins an existing cluster with an empty store, after
its history was trimmed from the log, gets all of it, and the others start
replicating with it without a restart; a decommissioned one is no longer
waited for, and what it wrote stays. Tombstones are purged once every
region holds them and the grace has passed, and a region that comes back
with a deleted record (from a copy older than the grace) deletes it
instead of bringing it back. A region whose data directory is replaced by an older copy gets
back from its peer what it wrote and applied since the copy, and what it
writes afterwards reaches the peer. A peer away longer than the log's retention no longer holds the
outbox back; when it returns it finds a gap, and repair fills it. An
answer that claims to be a peer's but is not signed by it is
refused and counted; a request not signed by a peer is not answered.
"""
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest
import urllib.request

from harness import (BIN, ROOT, Cluster, Region, api_time, free_port, make_keys, port_free,
                     wait_for)
from test_log_auth import post_status, replication, stop_checked

CONVERGE_S = 60  # generous: the ASan build is several times slower
RETAIN = 40
ARGS = ["--demo", "--rate-limit", "0", "--repair-interval-ms", "300",
        "--log-retention", str(RETAIN)]
MAGIC = b"DFR1"


def repair(region, peer_name):
    p = next(p for p in replication(region)["peers"] if p["name"] == peer_name)
    return p["repair"]


def digest_of(region):
    return region.client.get("/v1/digest").json


def parse_request(msg):
    """(type, from, to, nonce) of a repair message (replication/repl.h)."""
    assert msg[:4] == MAGIC, msg[:8]
    t = msg[4]
    n = msg[5]
    frm = msg[6:6 + n].decode()
    at = 6 + n
    m = msg[at]
    to = msg[at + 1:at + 1 + m].decode()
    at += 1 + m
    nonce = msg[at:at + 8]
    return t, frm, to, nonce


def message(t, frm, to, nonce, payload, sig=b"\x00" * 64):
    return MAGIC + bytes([t, len(frm)]) + frm.encode() + bytes([len(to)]) + to.encode() + \
        nonce + payload + sig


class Repair(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.c = Cluster(names=("paris", "tokyo"), args=ARGS)
        cls.paris, cls.tokyo, cls.redis = cls.c["paris"], cls.c["tokyo"], cls.c.redis

    @classmethod
    def tearDownClass(cls):
        stop_checked(cls.c)

    def test_lost_records_come_back_and_only_they_move(self):
        users = [self.paris.client.register(f"lost{i}") for i in range(20)]
        posts = [self.paris.client.post_text(u["token"], f"post {j} of {u['name']}")
                 for u in users for j in range(10)]
        self.c.wait_converged(CONVERGE_S)
        total = digest_of(self.tokyo)["records"]
        self.assertGreaterEqual(total, 220)
        before = repair(self.tokyo, "paris")
        sent_before = repair(self.paris, "tokyo")["records_sent"]

        lost_posts = [p["id"] for p in posts[::20]]  # 10 posts
        lost_users = [u["id"] for u in users[:2]]
        self.assertEqual(self.tokyo.stop(), 0)
        drop = ",".join([f"post:{p}" for p in lost_posts] + [f"user:{u}" for u in lost_users])
        out = os.popen(f"{BIN} --region tokyo --data {self.tokyo.data} --drop-records {drop}").read()
        self.assertIn("12 records dropped", out)
        self.tokyo.start()
        # Right after the start tokyo lacks them...
        self.assertEqual(digest_of(self.tokyo)["records"], total - 12)
        # ...and repair brings every one back, with the same digest as paris.
        self.c.wait_converged(30)
        for p in lost_posts:
            self.assertEqual(post_status(self.tokyo, p), 200)
        for u in lost_users:
            self.assertEqual(self.tokyo.client.get(f"/v1/users/{u}").status, 200)
        after = repair(self.tokyo, "paris")
        moved = after["records_received"] - before["records_received"]
        self.assertGreaterEqual(moved, 12, after)
        self.assertLess(moved, 60, f"{moved} of {total} records moved: {after}")
        self.assertGreater(after["rounds"], 0)
        wait_for(lambda: repair(self.tokyo, "paris")["last_equal_at"] is not None, CONVERGE_S,
                 what="a round that finds the trees equal")
        sent = repair(self.paris, "tokyo")["records_sent"] - sent_before
        self.assertGreaterEqual(sent, 12)
        self.assertLess(sent, 60)
        metrics = self.tokyo.client.get("/metrics").body
        self.assertIn('driftfeed_repair_records_received_total{peer="paris"}', metrics)
        self.assertTrue(replication(self.tokyo)["repairing"])

    def test_forged_answer_is_refused_and_unsigned_request_unanswered(self):
        # With paris stopped, tokyo's requests wait in paris's list, where
        # whoever can read Redis sees their nonces.
        self.assertEqual(self.paris.stop(), 0)
        try:
            def pending():
                for msg in self.redis.call("LRANGE", "df:repair:paris", 0, -1):
                    t, frm, to, nonce = parse_request(msg)
                    if frm == "tokyo" and t == 1:
                        return nonce
                return None
            rejected = repair(self.tokyo, "paris")["rejected"]
            # An answer with tokyo's nonce, a root equal to nothing, signed by
            # no one: refused, counted, and no round completes on it.
            def forge():
                nonce = pending()
                if nonce is None:
                    return False
                payload = (0).to_bytes(8, "big") * 3 + bytes([0]) + (1).to_bytes(2, "big") + \
                    b"\x00" * 24
                self.redis.call("RPUSH", "df:repair:answers:tokyo",
                                message(0x81, "paris", "tokyo", nonce, payload))
                return repair(self.tokyo, "paris")["rejected"] > rejected
            wait_for(forge, CONVERGE_S, interval=0.2, what="a forged answer counted")
        finally:
            self.redis.call("DEL", "df:repair:paris")
            self.paris.start()
        # A request in tokyo's name that tokyo did not sign: paris drops it.
        sent = repair(self.paris, "tokyo")["records_sent"]
        key = self.paris.client.register("secret")["id"].encode()
        payload = (1).to_bytes(2, "big") + bytes([1]) + len(key).to_bytes(2, "big") + key
        self.redis.call("RPUSH", "df:repair:paris",
                        message(3, "tokyo", "paris", b"\x01" * 8, payload))
        wait_for(lambda: self.redis.call("LLEN", "df:repair:paris") == 0, CONVERGE_S,
                 what="paris reading its requests")
        wait_for(lambda: "dropped a request" in open(self.paris.logpath, errors="replace").read(),
                 CONVERGE_S, what="the unsigned request logged")
        self.assertEqual(repair(self.paris, "tokyo")["records_sent"], sent)
        self.c.wait_converged(CONVERGE_S)

    def test_peer_away_past_retention_catches_up_through_repair(self):
        author = self.paris.client.register("longtrip")
        self.c.wait_converged(CONVERGE_S)
        self.assertEqual(self.tokyo.stop(), 0)
        try:
            posts = [self.paris.client.post_text(author["token"], f"while away {i}")
                     for i in range(150)]
            # Paris no longer keeps everything tokyo lacks: the outbox and the
            # stream shrink to the retention (plus what one pass leaves).
            wait_for(lambda: replication(self.paris)["outbox_depth"] <= RETAIN + 1, CONVERGE_S,
                     what="paris's outbox down to the retention")
            wait_for(lambda: self.redis.call("XLEN", "df:log:paris") <= RETAIN + 1, CONVERGE_S,
                     what="paris's stream down to the retention")
        finally:
            self.tokyo.start()
        # Tokyo finds the start of what is left is past its cursor: a gap,
        # filled by repair; then it streams the rest of the log.
        self.c.wait_converged(30)
        for p in posts[::15]:
            self.assertEqual(post_status(self.tokyo, p["id"]), 200)
        tp = next(p for p in replication(self.tokyo)["peers"] if p["name"] == "paris")
        self.assertGreaterEqual(tp["repair"]["records_received"], 150 - RETAIN - 1, tp)
        wait_for(lambda: next(p for p in replication(self.tokyo)["peers"]
                              if p["name"] == "paris")["state"] == "streaming", CONVERGE_S,
                 what="tokyo streaming paris's log again")
        self.assertIn("filled by repair", open(self.tokyo.logpath, errors="replace").read())
        # And the log carries what paris writes next.
        seq = replication(self.paris)["seq"]
        late = self.paris.client.post_text(author["token"], "after the trip")
        wait_for(lambda: post_status(self.tokyo, late["id"]) == 200, CONVERGE_S,
                 what="a new post through the log")
        wait_for(lambda: next(p for p in replication(self.tokyo)["peers"]
                              if p["name"] == "paris")["applied_seq"] > seq, CONVERGE_S,
                 what="tokyo's cursor past the gap")

    def test_region_restored_from_an_older_copy_gets_everything_back(self):
        author = self.paris.client.register("restorer")
        tok = self.tokyo.client.register("tokyoite")
        first = self.paris.client.post_text(author["token"], "before the backup")
        self.c.wait_converged(CONVERGE_S)
        backup = self.paris.data + ".backup"
        self.assertEqual(self.paris.stop(), 0)
        shutil.copytree(self.paris.data, backup)
        self.paris.start()
        since = [self.paris.client.post_text(author["token"], f"after the backup {i}")
                 for i in range(5)]
        theirs = self.tokyo.client.post_text(tok["token"], "tokyo, after the backup")
        self.c.wait_converged(CONVERGE_S)
        self.assertEqual(self.paris.stop(), 0)
        shutil.rmtree(self.paris.data)
        shutil.move(backup, self.paris.data)
        self.paris.start()
        # The copy lacks what paris wrote and applied after it...
        self.assertEqual(post_status(self.paris, since[0]["id"]), 404)
        self.assertEqual(post_status(self.paris, first["id"]), 200)
        # ...and gets all of it back.
        later = self.paris.client.post_text(author["token"], "after the restore")
        self.c.wait_converged(30)
        for p in since + [theirs]:
            self.assertEqual(post_status(self.paris, p["id"]), 200, p)
        # What it writes after the restore reaches tokyo: its seqs, which
        # tokyo had seen before, were not dropped as duplicates.
        self.assertEqual(post_status(self.tokyo, later["id"]), 200)
        again = self.paris.client.post_text(author["token"], "and once more")
        wait_for(lambda: post_status(self.tokyo, again["id"]) == 200, CONVERGE_S,
                 what="a later post from the restored region")
        # Its timeline has its own posts from both sides of the restore.
        ids = self.paris.client.timeline_ids(author["token"])
        self.assertTrue({p["id"] for p in since + [later, again]} <= set(ids), ids)


class Join(unittest.TestCase):
    def setUp(self):
        self.c = Cluster(names=("paris", "tokyo"), args=ARGS)
        self.addCleanup(lambda: stop_checked(self.c))

    def test_region_joining_after_history_was_trimmed_gets_it_all(self):
        paris, tokyo = self.c["paris"], self.c["tokyo"]
        authors = [paris.client.register(f"old{i}") for i in range(10)]
        authors.append(tokyo.client.register("oldtokyo"))
        for i in range(2000):
            a = authors[i % len(authors)]
            (tokyo if a["name"] == "oldtokyo" else paris).client.post_text(a["token"], f"h{i}")
        self.c.wait_converged(CONVERGE_S)
        # Both peers applied everything, so the logs are trimmed: the history
        # is no longer in Redis for a newcomer to read.
        wait_for(lambda: all(replication(r)["outbox_depth"] == 0 for r in (paris, tokyo)),
                 CONVERGE_S, what="the outboxes truncated")
        for name in ("paris", "tokyo"):
            wait_for(lambda: self.c.redis.call("XLEN", f"df:log:{name}") <= 1, CONVERGE_S,
                     what=f"df:log:{name} trimmed")
        pids = {r.name: r.proc.pid for r in (paris, tokyo)}
        make_keys(self.c.key_dir, ["lisbon"])
        lisbon = Region("lisbon", self.c.workdir, redis=self.c.redis, peers=["paris", "tokyo"],
                        args=["--key-dir", self.c.key_dir] + ARGS)
        self.c.regions["lisbon"] = lisbon
        d = self.c.wait_converged(CONVERGE_S)
        self.assertEqual(digest_of(lisbon)["records"], digest_of(paris)["records"])
        self.assertGreaterEqual(digest_of(lisbon)["records"], 2011, d)
        got = sum(repair(lisbon, p)["records_received"] for p in ("paris", "tokyo"))
        self.assertGreaterEqual(got, 2011)
        # The others replicate with it now, without having been restarted.
        for r in (paris, tokyo):
            self.assertEqual(r.proc.pid, pids[r.name])
            wait_for(lambda: any(p["name"] == "lisbon" and p["state"] == "streaming"
                                 for p in replication(r)["peers"]), CONVERGE_S,
                     what=f"{r.name} reading lisbon's log")
        newcomer = lisbon.client.register("newcomer")
        post = lisbon.client.post_text(newcomer["token"], "hello from lisbon")
        for r in (paris, tokyo):
            wait_for(lambda: post_status(r, post["id"]) == 200, CONVERGE_S,
                     what=f"lisbon's post in {r.name}")
        # Lisbon's subscribers moved past the trimmed history: they stream.
        for p in ("paris", "tokyo"):
            wait_for(lambda: next(x for x in replication(lisbon)["peers"]
                                  if x["name"] == p)["state"] == "streaming", CONVERGE_S,
                     what=f"lisbon streaming {p}")
        self.c.wait_converged(CONVERGE_S)


class Decommission(unittest.TestCase):
    def setUp(self):
        self.c = Cluster(names=("paris", "tokyo", "lisbon"), args=ARGS)
        self.addCleanup(lambda: stop_checked(self.c))

    def peer_state(self, region, name):
        return next(p for p in replication(region)["peers"] if p["name"] == name)["state"]

    def test_removed_region_is_not_waited_for_and_its_writes_stay(self):
        paris, tokyo, lisbon = self.c["paris"], self.c["tokyo"], self.c["lisbon"]
        leaving = lisbon.client.register("leaving")
        posts = [lisbon.client.post_text(leaving["token"], f"last words {i}") for i in range(5)]
        self.c.wait_converged(CONVERGE_S)
        seq = replication(lisbon)["seq"]
        for r in (paris, tokyo):
            wait_for(lambda: next(p for p in replication(r)["peers"]
                                  if p["name"] == "lisbon")["applied_seq"] >= seq, CONVERGE_S,
                     what=f"{r.name} has all of lisbon's log")
        self.assertEqual(lisbon.stop(), 0)
        for r in (paris, tokyo):
            resp = r.client.delete("/v1/admin/peers/lisbon")
            self.assertEqual(resp.status, 200, resp)
            self.assertEqual(self.peer_state(r, "lisbon"), "removed")
            self.assertEqual(r.client.delete("/v1/admin/peers/lisbon").status, 200)  # again
        self.assertEqual(paris.client.delete("/v1/admin/peers/nowhere").status, 404)
        bad = paris.client.delete("/v1/admin/peers/No%20Such")
        self.assertEqual(bad.status, 400, bad)
        self.assertEqual(bad.json["error"]["code"], "invalid_peer")
        for hostile in ("%FF%FE", "a%00b", "x" * 200, "%C3%A9t%C3%A9"):
            r = paris.client.delete(f"/v1/admin/peers/{hostile}")
            self.assertEqual(r.status, 400, (hostile, r))
            self.assertIn("error", r.json)
        # Nobody waits for lisbon's progress: paris's outbox empties once
        # tokyo has applied it.
        author = paris.client.register("staying")
        for i in range(10):
            paris.client.post_text(author["token"], f"after lisbon {i}")
        wait_for(lambda: replication(paris)["outbox_depth"] == 0, CONVERGE_S,
                 what="paris's outbox truncated without lisbon")
        # Its announcement is still in Redis, yet the cluster list leaves it out.
        wait_for(lambda: "lisbon" not in [x["name"] for x in
                                          paris.client.get("/v1/cluster").json["regions"]],
                 CONVERGE_S, what="lisbon gone from /v1/cluster")
        for p in posts:
            self.assertEqual(post_status(paris, p["id"]), 200)
            self.assertEqual(post_status(tokyo, p["id"]), 200)
        # Removed for good: a restart with lisbon still in --peers keeps it out.
        paris.restart()
        self.assertEqual(self.peer_state(paris, "lisbon"), "removed")
        del self.c.regions["lisbon"]
        self.c.wait_converged(CONVERGE_S)


class DeployCluster(unittest.TestCase):
    """deploy/cluster add and remove on a cluster of its own (temporary
    directory and free ports)."""

    def setUp(self):
        self.script = os.path.join(ROOT, "deploy", "cluster")
        self.var = tempfile.mkdtemp(prefix="driftfeed-deploy-")
        for _ in range(100):
            base = free_port()
            if all(port_free(base + i) for i in range(4)):
                break
        self.ports = {"paris": base, "newyork": base + 1, "tokyo": base + 2, "lisbon": base + 3}
        self.env = dict(os.environ, DF_BIN=BIN, DF_VAR=self.var, DF_PORT_BASE=str(base),
                        DF_REDIS_PORT=str(free_port()))
        self.addCleanup(lambda: shutil.rmtree(self.var, ignore_errors=True))
        self.addCleanup(lambda: self.run_script("stop"))
        self.run_script("start")

    def run_script(self, *args):
        r = subprocess.run([self.script, *args], env=self.env, capture_output=True, text=True,
                           timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return r.stdout

    def get(self, region, path):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.ports[region]}{path}", timeout=5) as f:
            return json.load(f)

    def digests(self):
        return {self.get(r, "/v1/digest")["digest"] for r in self.ports if r != "lisbon"} | \
            ({self.get("lisbon", "/v1/digest")["digest"]} if self.lisbon else set())

    def test_add_then_remove_a_region(self):
        self.lisbon = False
        req = urllib.request.Request(f"http://127.0.0.1:{self.ports['paris']}/v1/users",
                                     data=b'{"name":"early"}',
                                     headers={"Content-Type": "application/json"})
        urllib.request.urlopen(req, timeout=5).close()
        # lisbon's port is chosen now, not at setUp: the cluster's own start
        # opens connections whose local ports could have taken it since.
        if not port_free(self.ports["lisbon"]):
            self.ports["lisbon"] = free_port()
        self.assertIn("lisbon joined", self.run_script("add", "lisbon", str(self.ports["lisbon"])))
        self.lisbon = True
        wait_for(lambda: len(self.digests()) == 1, CONVERGE_S, what="lisbon converged")
        self.assertEqual(self.get("lisbon", "/v1/users/early@paris")["name"], "early")
        self.assertIn("lisbon", self.run_script("status"))
        self.assertIn("decommissioned", self.run_script("remove", "lisbon"))
        self.lisbon = False
        for r in ("paris", "newyork", "tokyo"):
            states = {p["name"]: p["state"] for p in self.get(r, "/v1/replication")["peers"]}
            self.assertEqual(states["lisbon"], "removed", states)
        self.assertNotIn("lisbon", self.run_script("status"))


def gc(region):
    return replication(region)["gc"]


class TombstoneGC(unittest.TestCase):
    GRACE_S = 2

    def setUp(self):
        self.c = Cluster(names=("paris", "tokyo"),
                         args=ARGS + ["--tombstone-grace-s", str(self.GRACE_S)])
        self.paris, self.tokyo = self.c["paris"], self.c["tokyo"]
        self.addCleanup(lambda: stop_checked(self.c))
        self.author = self.paris.client.register("deleter")

    def delete(self, post):
        r = self.paris.client.delete(f"/v1/posts/{post['id']}", token=self.author["token"])
        self.assertIn(r.status, (200, 204), r)

    def purged_everywhere(self, before):
        return all(gc(r)["tombstones_purged"] > before[r.name] for r in (self.paris, self.tokyo))

    def test_deleted_post_stays_deleted_through_gc_and_a_region_away(self):
        doomed = self.paris.client.post_text(self.author["token"], "doomed")
        kept = self.paris.client.post_text(self.author["token"], "kept")
        self.c.wait_converged(CONVERGE_S)
        records = digest_of(self.paris)["records"]
        self.assertEqual(self.tokyo.stop(), 0)
        stopped = time.time()
        self.delete(doomed)
        # While tokyo is away paris cannot know tokyo holds the tombstone:
        # its horizon stops at their last equal round, before the delete.
        wait_for(lambda: gc(self.paris)["horizon"] is not None and
                 api_time(gc(self.paris)["horizon"]) >= stopped - self.GRACE_S - 1,
                 CONVERGE_S, what="paris's GC horizon at tokyo's last equal round")
        self.assertEqual(gc(self.paris)["tombstones_purged"], 0)
        self.assertLess(api_time(gc(self.paris)["horizon"]), stopped + 0.5)
        self.assertEqual(digest_of(self.paris)["records"], records)  # the tombstone is there
        # Back after the grace: tokyo gets the delete, then both purge it.
        self.tokyo.start()
        wait_for(lambda: post_status(self.tokyo, doomed["id"]) == 404, CONVERGE_S,
                 what="the delete in tokyo")
        wait_for(lambda: self.purged_everywhere({"paris": 0, "tokyo": 0}), CONVERGE_S,
                 what="the tombstone purged in both regions")
        self.c.wait_converged(CONVERGE_S)
        self.assertEqual(digest_of(self.paris)["records"], records - 1)
        for r in (self.paris, self.tokyo):
            self.assertEqual(post_status(r, doomed["id"]), 404)
            self.assertEqual(post_status(r, kept["id"]), 200)
        self.assertIn("driftfeed_tombstones_purged_total", self.paris.client.get("/metrics").body)

    def test_region_restored_from_before_a_purged_delete_deletes_it_too(self):
        zombie = self.paris.client.post_text(self.author["token"], "will walk again?")
        self.c.wait_converged(CONVERGE_S)
        backup = self.tokyo.data + ".backup"
        self.assertEqual(self.tokyo.stop(), 0)
        shutil.copytree(self.tokyo.data, backup)  # holds the post, live
        self.tokyo.start()
        self.delete(zombie)
        self.paris.client.post_text(self.author["token"], "after the delete")
        wait_for(lambda: self.purged_everywhere({"paris": 0, "tokyo": 0}), CONVERGE_S,
                 what="the tombstone purged in both regions")
        records = digest_of(self.paris)["records"]
        # The log no longer holds the delete either.
        wait_for(lambda: replication(self.paris)["outbox_depth"] == 0 and
                 self.c.redis.call("XLEN", "df:log:paris") <= 1, CONVERGE_S,
                 what="paris's log trimmed")
        self.assertEqual(self.tokyo.stop(), 0)
        shutil.rmtree(self.tokyo.data)
        shutil.move(backup, self.tokyo.data)
        self.tokyo.start()
        self.assertEqual(post_status(self.tokyo, zombie["id"]), 200)  # the zombie
        self.c.wait_converged(30)
        for r in (self.paris, self.tokyo):
            self.assertEqual(post_status(r, zombie["id"]), 404, r.name)
        self.assertEqual(digest_of(self.paris)["records"], records)  # nothing came back
        self.assertGreaterEqual(gc(self.tokyo)["zombies_buried"], 1)
        ids = self.tokyo.client.timeline_ids(self.author["token"])
        self.assertNotIn(zombie["id"], ids)


if __name__ == "__main__":
    unittest.main()
