"""test_replication.py -- multi-region replication against real processes.

Every test starts its own Redis and three regions (paris, newyork, tokyo)
with --demo (so the tests may pause a region's incoming replication) and
without the per-token rate limit, drives them over HTTP, and waits by
polling with deadlines. "Converged" means equal /v1/digest everywhere.

Versions. LWW keeps the greater (hlc, origin). A post's id starts with its
HLC in 16 hex digits, so posts show their versions. A follow edge does not,
so where a test needs an edge write's exact version it makes the write in a
region whose incoming replication is paused and which takes no other write
meanwhile: then nothing but that write moves the region's clock, and the
"hlc" of GET /v1/region right after it *is* the write's version (an
unchanged clock means the write was a no-op). test_concurrent_writes_in_
all_regions checks that premise on posts, whose versions are visible.
"""
import http.client
import random
import threading
import unittest

from harness import Client, Cluster, sanitizer_env_ok, wait_for

NAMES = ("paris", "newyork", "tokyo")
BASE_ARGS = ["--demo", "--rate-limit", "0"]
CONVERGE_S = 60  # generous: the ASan build is several times slower


# ---- Small HTTP helpers ------------------------------------------------------------

def ok(resp, *statuses):
    assert resp.status in statuses, resp
    return resp


def pages(client, path, token=None, key=None):
    """Every item of a paged list ({"items","next"}), following cursors."""
    items, cursor = [], None
    while True:
        sep = "&" if "?" in path else "?"
        q = f"{path}{sep}limit=100" + (f"&cursor={cursor}" if cursor else "")
        r = ok(client.get(q, token=token), 200)
        items += [key(i) if key else i for i in r.json["items"]]
        cursor = r.json["next"]
        if not cursor:
            return items


def following(client, uid):
    return sorted(pages(client, f"/v1/users/{uid}/following"))


def followers(client, uid):
    return sorted(pages(client, f"/v1/users/{uid}/followers"))


def profile_ids(client, uid):
    return pages(client, f"/v1/users/{uid}/posts", key=lambda p: p["id"])


def message_ids(client, token, peer):
    return pages(client, f"/v1/messages/{peer}", token=token, key=lambda m: m["id"])


def status(client, path):
    return client.get(path).status


def hlc(client):
    return int(ok(client.get("/v1/region"), 200).json["hlc"])


def replication(client):
    return ok(client.get("/v1/replication"), 200).json


def post_version(pid):
    """(hlc, origin) of a post id "<16 hex digits>-<origin>"."""
    return int(pid[:16], 16), pid[17:]


def set_paused(region, paused):
    """Pauses or resumes a region's incoming replication and waits until
    every subscriber of it reports the new state (a paused subscriber is
    between batches: nothing is being applied any more)."""
    ok(region.client.post("/v1/admin/replication", {"paused": paused}), 200)
    want = "paused" if paused else "streaming"

    def settled():
        st = replication(region.client)
        return st["paused"] == paused and all(p["state"] == want for p in st["peers"])
    wait_for(settled, 10, what=f"{region.name}: peers {want}")


def wait_user_everywhere(cluster, *uids):
    for reg in cluster.regions.values():
        for uid in uids:
            wait_for(lambda: status(reg.client, f"/v1/users/{uid}") == 200, CONVERGE_S,
                     what=f"user {uid} in {reg.name}")


def wait_edge(region, follower, followee, state, timeout=CONVERGE_S):
    wait_for(lambda: (followee in following(region.client, follower)) == state, timeout,
             what=f"{region.name}: {follower} {'follows' if state else 'does not follow'} {followee}")


def in_threads(*fns):
    """Runs fns in threads released together by a barrier; returns their
    results in order and re-raises the first exception."""
    barrier = threading.Barrier(len(fns))
    results = [None] * len(fns)
    errors = []

    def run(i, fn):
        try:
            barrier.wait(10)
            results[i] = fn()
        except BaseException as e:  # reported below, in the calling thread
            errors.append(e)
    threads = [threading.Thread(target=run, args=(i, fn)) for i, fn in enumerate(fns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
        assert not t.is_alive(), "a worker thread hung"
    if errors:
        raise errors[0]
    return results


def edge_write(client, token, followee, follow):
    """One follow or unfollow; returns (version, region_hlc_before) where
    version is the region's clock right after the write (exact when the
    region is paused and quiet) or None if the write did not move it."""
    before = hlc(client)
    if follow:
        ok(client.put(f"/v1/following/{followee}", token=token), 200)
    else:
        ok(client.delete(f"/v1/following/{followee}", token=token), 204)
    after = hlc(client)
    return (after if after != before else None), before


class Writers:
    """Posting load: one thread per (region, user) pair posts as fast as it
    can, each post with its own Idempotency-Key (a retried request cannot
    create a second post), and keeps every acknowledged (201) post. A
    region's writer that meets a dead region waits for up[region]."""

    def __init__(self, cluster, users, prefix):
        self.cluster, self.users, self.prefix = cluster, users, prefix
        self.lock = threading.Lock()
        self.acked = {}  # post id -> (region, text)
        self.count = {n: 0 for n in cluster.regions}
        self.errors = []
        self.stop = threading.Event()
        self.up = {n: threading.Event() for n in cluster.regions}
        for e in self.up.values():
            e.set()
        self.threads = [threading.Thread(target=self._run, args=(n, u)) for n, u in users.items()]

    def start(self):
        for t in self.threads:
            t.start()

    def _run(self, region, user):
        client = Client(self.cluster[region].port, timeout=10)
        i = 0
        while not self.stop.is_set():
            i += 1
            text = f"{self.prefix} {region} {i}"
            key = f"{self.prefix}-{region}-{i}"
            while not self.stop.is_set():
                try:
                    r = client.post("/v1/posts", {"text": text}, token=user["token"],
                                    headers={"Idempotency-Key": key})
                except (OSError, http.client.HTTPException):
                    client.close()
                    self.up[region].wait(30)  # the region is down: wait until restarted
                    continue
                if r.status == 201:
                    with self.lock:
                        self.acked[r.json["id"]] = (region, text)
                        self.count[region] += 1
                    break
                if r.status != 503:  # overloaded: retry the same key
                    with self.lock:
                        self.errors.append(r)
                    return
        client.close()

    def total(self, region=None):
        with self.lock:
            return self.count[region] if region else sum(self.count.values())

    def wait_more(self, n, region=None, timeout=60):
        target = self.total(region) + n
        wait_for(lambda: self.errors or self.total(region) >= target, timeout,
                 what=f"{n} more acknowledged posts" + (f" in {region}" if region else ""))
        assert not self.errors, self.errors[:3]

    def finish(self):
        self.stop.set()
        for e in self.up.values():
            e.set()
        for t in self.threads:
            t.join(60)
            assert not t.is_alive(), "a writer thread hung"
        assert not self.errors, self.errors[:3]
        return dict(self.acked)


# ---- The tests -------------------------------------------------------------------------

class ReplicationTest(unittest.TestCase):

    def start_cluster(self, per_region_args=None):
        c = Cluster(names=NAMES, args=BASE_ARGS, per_region_args=per_region_args)
        self.addCleanup(self.stop_cluster, c)
        return c

    def stop_cluster(self, c):
        """Stops the regions cleanly, then checks their logs for sanitizer
        reports (leaks are reported at exit) before the files go."""
        codes, reports = {}, {}
        for reg in c.regions.values():
            try:
                codes[reg.name] = reg.stop()
            except AssertionError as e:
                codes[reg.name] = str(e)
            if not sanitizer_env_ok(reg):
                with open(reg.logpath, "rb") as f:
                    text = f.read().decode("utf-8", "replace")
                at = max(text.find("ERROR: "), text.find("runtime error:"), 0)
                reports[reg.name] = text[at:at + 3000]
        c.stop()
        self.assertEqual(reports, {}, "sanitizer reports in region logs")
        self.assertEqual(codes, {n: 0 for n in c.regions}, "regions did not exit cleanly")

    def users(self, c, names):
        """Registers name@region for each (region, name); waits until every
        region knows every one of them. Returns {region: user}."""
        out = {reg: c[reg].client.register(name) for reg, name in names.items()}
        wait_user_everywhere(c, *[u["id"] for u in out.values()])
        return out

    def follow_all(self, c, users):
        """Everyone follows everyone, each in their home region."""
        for reg, u in users.items():
            for other in users.values():
                if other is not u:
                    c[reg].client.follow(u["token"], other["id"])

    def assert_same_everywhere(self, c, fn, what):
        """fn(region) gives the same value in every region; returns it."""
        vals = {reg.name: fn(reg) for reg in c.regions.values()}
        self.assertEqual(len({repr(v) for v in vals.values()}), 1, f"{what} differs: {vals}")
        return next(iter(vals.values()))

    def assert_home_timelines_equal(self, c, users):
        """Waits until every user's home timeline is the same list in every
        region (fan-out is asynchronous and may trail the digest), then
        checks it against the model: the live posts of the user and of
        everyone the user follows, newest version first."""
        for u in users:
            def same():
                lists = [r.client.timeline_ids(u["token"]) for r in c.regions.values()]
                return lists[0] if all(l == lists[0] for l in lists) else None
            tl = wait_for(same, CONVERGE_S, what=f"one home timeline of {u['id']} everywhere")
            self.assertEqual(len(tl), len(set(tl)), f"duplicates in {u['id']}'s timeline")
            for reg in c.regions.values():
                authors = [u["id"]] + following(reg.client, u["id"])
                model = sorted((p for a in authors for p in profile_ids(reg.client, a)), reverse=True)
                self.assertEqual(tl, model[:800], f"{u['id']}'s timeline in {reg.name} is not the model")

    # 1 ---------------------------------------------------------------------------------
    def test_writes_in_one_region_appear_in_the_others(self):
        c = self.start_cluster()
        paris = c["paris"].client
        alice, dave = paris.register("alice"), paris.register("dave")
        paris.follow(alice["token"], dave["id"])
        p1 = paris.post_text(dave["token"], "first post")
        p2 = paris.post_text(dave["token"], "second post, soon deleted")
        msg = ok(paris.post("/v1/messages", {"to": dave["id"], "text": "hello dave"},
                            token=alice["token"]), 201).json
        others = [c["newyork"], c["tokyo"]]
        for reg in others:
            cl = reg.client
            for u in (alice, dave):
                wait_for(lambda: status(cl, f"/v1/users/{u['id']}") == 200, CONVERGE_S,
                         what=f"{u['id']} in {reg.name}")
                self.assertEqual(cl.get(f"/v1/users/{u['id']}").json,
                                 paris.get(f"/v1/users/{u['id']}").json)
            wait_edge(reg, alice["id"], dave["id"], True)
            self.assertEqual(followers(cl, dave["id"]), [alice["id"]])
            for p in (p1, p2):
                wait_for(lambda: status(cl, f"/v1/posts/{p['id']}") == 200, CONVERGE_S,
                         what=f"post {p['id']} in {reg.name}")
                self.assertEqual(cl.get(f"/v1/posts/{p['id']}").json, p)
            wait_for(lambda: cl.timeline_ids(alice["token"]) == [p2["id"], p1["id"]], CONVERGE_S,
                     what=f"alice's timeline shows both posts in {reg.name}")
            wait_for(lambda: message_ids(cl, alice["token"], dave["id"]) == [msg["id"]], CONVERGE_S,
                     what=f"the message in {reg.name}")
            self.assertEqual(message_ids(cl, dave["token"], alice["id"]), [msg["id"]])
            self.assertEqual(cl.get(f"/v1/messages/{dave['id']}", token=alice["token"]).json["items"],
                             [msg])
            # A token works wherever its user has replicated to.
            self.assertEqual(cl.timeline_ids(dave["token"]), [p2["id"], p1["id"]])

        ok(paris.delete(f"/v1/posts/{p2['id']}", token=dave["token"]), 204)
        for reg in others:
            cl = reg.client
            wait_for(lambda: status(cl, f"/v1/posts/{p2['id']}") == 404, CONVERGE_S,
                     what=f"the delete in {reg.name}")
            wait_for(lambda: cl.timeline_ids(alice["token"]) == [p1["id"]], CONVERGE_S,
                     what=f"alice's timeline hides the deleted post in {reg.name}")
            self.assertEqual(profile_ids(cl, dave["id"]), [p1["id"]])
            self.assertEqual(status(cl, f"/v1/posts/{p1['id']}"), 200)
        c.wait_converged(CONVERGE_S)

    # 2 ---------------------------------------------------------------------------------
    def test_conflict_follow_and_unfollow_of_one_edge(self):
        """A follow in one region races an unfollow of the same edge in
        another; neither region has seen the other's write. Both are real
        writes with known versions; the greater version wins everywhere."""
        c = self.start_cluster()
        alice = c["paris"].client.register("alice")
        bob = c["newyork"].client.register("bob")
        wait_user_everywhere(c, alice["id"], bob["id"])
        tok, edge = alice["token"], (alice["id"], bob["id"])
        for f_name, u_name in (("paris", "newyork"), ("tokyo", "paris"), ("newyork", "tokyo")):
            F, U = c[f_name], c[u_name]
            # Start from "following" everywhere.
            if bob["id"] not in following(F.client, alice["id"]):
                F.client.follow(tok, bob["id"])
            c.wait_converged(CONVERGE_S)
            for reg in c.regions.values():
                wait_edge(reg, *edge, True)
            # U keeps seeing "following"; F unfollows, so that F's follow
            # below is a real write too.
            set_paused(U, True)
            edge_write(F.client, tok, bob["id"], False)
            set_paused(F, True)
            fc, uc = Client(F.port), Client(U.port)
            (vf, _), (vu, _) = in_threads(lambda: edge_write(fc, tok, bob["id"], True),
                                          lambda: edge_write(uc, tok, bob["id"], False))
            fc.close()
            uc.close()
            self.assertIsNotNone(vf, f"the follow in {f_name} was not a write")
            self.assertIsNotNone(vu, f"the unfollow in {u_name} was not a write")
            expected = (vf, f_name) > (vu, u_name)
            set_paused(F, False)
            set_paused(U, False)
            c.wait_converged(CONVERGE_S)
            for reg in c.regions.values():
                self.assertEqual(bob["id"] in following(reg.client, alice["id"]), expected,
                                 f"{reg.name}: follow {vf}@{f_name} vs unfollow {vu}@{u_name}")
                self.assertEqual(alice["id"] in followers(reg.client, bob["id"]), expected)

        # Sequential: an unfollow made where the follow had been seen wins.
        if bob["id"] in following(c["paris"].client, alice["id"]):
            ok(c["paris"].client.delete(f"/v1/following/{bob['id']}", token=tok), 204)
        for f_name, u_name in (("paris", "tokyo"), ("tokyo", "newyork"), ("newyork", "paris")):
            F, U = c[f_name], c[u_name]
            wait_edge(F, *edge, False)
            F.client.follow(tok, bob["id"])
            wait_edge(U, *edge, True)
            ok(U.client.delete(f"/v1/following/{bob['id']}", token=tok), 204)
            c.wait_converged(CONVERGE_S)
            for reg in c.regions.values():
                self.assertEqual(following(reg.client, alice["id"]), [],
                                 f"{reg.name}: the unfollow made in {u_name} after its follow lost")

    def test_conflict_same_post_deleted_in_two_regions(self):
        c = self.start_cluster()
        us = self.users(c, {"paris": "alice", "newyork": "bob", "tokyo": "carol"})
        self.follow_all(c, us)
        bob = us["newyork"]
        post = c["newyork"].client.post_text(bob["token"], "to be deleted twice")
        keep = c["newyork"].client.post_text(bob["token"], "to be kept")
        c.wait_converged(CONVERGE_S)
        for reg in c.regions.values():
            for u in us.values():
                wait_for(lambda: post["id"] in reg.client.timeline_ids(u["token"]), CONVERGE_S,
                         what=f"the post in {u['id']}'s timeline in {reg.name}")
        # Both regions still see the post live when they delete it.
        P, N = c["paris"], c["newyork"]
        set_paused(P, True)
        set_paused(N, True)
        pc, nc = Client(P.port), Client(N.port)
        rp, rn = in_threads(lambda: pc.delete(f"/v1/posts/{post['id']}", token=bob["token"]),
                            lambda: nc.delete(f"/v1/posts/{post['id']}", token=bob["token"]))
        pc.close()
        nc.close()
        self.assertEqual((rp.status, rn.status), (204, 204))
        set_paused(P, False)
        set_paused(N, False)
        c.wait_converged(CONVERGE_S)
        for reg in c.regions.values():
            self.assertEqual(status(reg.client, f"/v1/posts/{post['id']}"), 404, reg.name)
            self.assertEqual(reg.client.get(f"/v1/posts/{keep['id']}").json, keep)
            self.assertEqual(profile_ids(reg.client, bob["id"]), [keep["id"]], reg.name)
        self.assert_home_timelines_equal(c, us.values())
        for reg in c.regions.values():
            for u in us.values():
                self.assertEqual(reg.client.timeline_ids(u["token"]), [keep["id"]])

    def test_concurrent_writes_in_all_regions(self):
        """Phase 1: all three regions write at once while none applies the
        others' log (a full partition), so every write's version is known;
        after healing, every edge holds the state of its greatest-version
        write and every region holds the same posts. Phase 2: the same,
        live, with replication running: all regions agree."""
        c = self.start_cluster()
        us = self.users(c, {"paris": "ann", "newyork": "ben", "tokyo": "cat"})
        ids = [u["id"] for u in us.values()]
        tokens = {u["id"]: u["token"] for u in us.values()}
        edges = [(a, b) for a in ids for b in ids if a != b]
        old_posts = {}
        for reg, u in us.items():
            for i in range(3):
                p = c[reg].client.post_text(u["token"], f"old {i} by {u['id']}")
                old_posts[p["id"]] = u["id"]
        c.wait_converged(CONVERGE_S)
        state = {e: False for e in edges}  # nobody follows anybody yet

        for reg in c.regions.values():
            set_paused(reg, True)

        def partitioned(name, seed):
            rnd, cl = random.Random(seed), Client(c[name].port)
            writes, posts, deletes = [], [], []
            for i in range(25):
                roll = rnd.random()
                if roll < 0.7:
                    a, b = rnd.choice(edges)
                    follow = rnd.random() < 0.6
                    v, _ = edge_write(cl, tokens[a], b, follow)
                    if v is not None:
                        writes.append(((a, b), follow, (v, name)))
                elif roll < 0.85:
                    author = rnd.choice(ids)
                    p = cl.post_text(tokens[author], f"new {i} in {name}")
                    # The premise of exact versions: nothing else moved the clock.
                    assert post_version(p["id"]) == (hlc(cl), name), (p, hlc(cl))
                    posts.append(p)
                else:
                    pid = rnd.choice(sorted(old_posts))
                    r = ok(cl.delete(f"/v1/posts/{pid}", token=tokens[old_posts[pid]]), 204, 404)
                    deletes.append((pid, r.status))
            cl.close()
            return writes, posts, deletes

        seed = random.randrange(1 << 30)
        results = in_threads(*[(lambda n=n, i=i: partitioned(n, seed + i)) for i, n in enumerate(NAMES)])
        for reg in c.regions.values():
            set_paused(reg, False)
        c.wait_converged(CONVERGE_S)

        last = {}
        for writes, _, _ in results:
            for e, follow, v in writes:
                if e not in last or v > last[e][0]:
                    last[e] = (v, follow)
        expected = {e: last[e][1] if e in last else state[e] for e in edges}
        deleted = {pid for _, _, dels in results for pid, st in dels if st == 204}
        new_posts = [p for _, posts, _ in results for p in posts]
        for reg in c.regions.values():
            for a in ids:
                want = sorted(b for (x, b), f in expected.items() if x == a and f)
                self.assertEqual(following(reg.client, a), want,
                                 f"seed {seed}: {a}'s follows in {reg.name}; last writes {last}")
            for pid in old_posts:
                self.assertEqual(status(reg.client, f"/v1/posts/{pid}"), 404 if pid in deleted else 200,
                                 f"seed {seed}: old post {pid} in {reg.name}")
            for p in new_posts:
                self.assertEqual(reg.client.get(f"/v1/posts/{p['id']}").json, p, reg.name)
        self.assert_home_timelines_equal(c, us.values())

        # Phase 2: live. Versions are not observable here; all must agree.
        def live(name, seed):
            rnd, cl = random.Random(seed), Client(c[name].port)
            for i in range(40):
                a, b = rnd.choice(edges)
                if rnd.random() < 0.5:
                    ok(cl.put(f"/v1/following/{b}", token=tokens[a]), 200)
                else:
                    ok(cl.delete(f"/v1/following/{b}", token=tokens[a]), 204)
                if i % 8 == 0:
                    cl.post_text(tokens[a], f"live {i} in {name}")
            cl.close()
        in_threads(*[(lambda n=n, i=i: live(n, seed + 10 + i)) for i, n in enumerate(NAMES)])
        c.wait_converged(CONVERGE_S)
        for a in ids:
            self.assert_same_everywhere(c, lambda reg: following(reg.client, a), f"{a}'s follows")
            self.assert_same_everywhere(c, lambda reg: followers(reg.client, a), f"{a}'s followers")
            self.assert_same_everywhere(c, lambda reg: profile_ids(reg.client, a), f"{a}'s posts")
        self.assert_home_timelines_equal(c, us.values())

    # 3 ---------------------------------------------------------------------------------
    def test_partition_pauses_and_heals_without_loss(self):
        c = self.start_cluster()
        us = self.users(c, {"paris": "alice", "newyork": "bob", "tokyo": "carol"})
        alice, bob, carol = us["paris"], us["newyork"], us["tokyo"]
        self.follow_all(c, us)
        c.wait_converged(CONVERGE_S)
        T = c["tokyo"]
        before = {p["name"]: p["applied_seq"] for p in replication(T.client)["peers"]}
        set_paused(T, True)
        st = replication(T.client)
        self.assertTrue(st["paused"])
        self.assertEqual({p["name"]: p["state"] for p in st["peers"]}, {"paris": "paused", "newyork": "paused"})

        P, N = c["paris"].client, c["newyork"].client
        pp = P.post_text(alice["token"], "paris during the partition")
        ok(P.delete(f"/v1/following/{bob['id']}", token=alice["token"]), 204)
        pn = N.post_text(bob["token"], "newyork during the partition")
        mn = ok(N.post("/v1/messages", {"to": carol["id"], "text": "can you hear me?"},
                       token=bob["token"]), 201).json
        dave = N.register("dave")
        pt = T.client.post_text(carol["token"], "tokyo during the partition")
        mt = ok(T.client.post("/v1/messages", {"to": alice["id"], "text": "tokyo calling"},
                              token=carol["token"]), 201).json
        ok(T.client.delete(f"/v1/following/{alice['id']}", token=carol["token"]), 204)

        # The others see each other and tokyo (only tokyo's incoming is paused).
        for cl, name in ((P, "paris"), (N, "newyork")):
            for pid in (pp["id"], pn["id"], pt["id"]):
                wait_for(lambda: status(cl, f"/v1/posts/{pid}") == 200, CONVERGE_S,
                         what=f"{pid} in {name}")
            wait_for(lambda: message_ids(cl, alice["token"], carol["id"]) == [mt["id"]], CONVERGE_S,
                     what=f"tokyo's message in {name}")
        # Tokyo knows how far its peers have published, yet applied nothing.
        seqs = {"paris": replication(P)["seq"], "newyork": replication(N)["seq"]}
        wait_for(lambda: all(p["published_seq"] >= seqs[p["name"]]
                             for p in replication(T.client)["peers"]), CONVERGE_S,
                 what="tokyo reads its peers' published seqs")
        st = replication(T.client)
        self.assertEqual({p["name"]: p["applied_seq"] for p in st["peers"]}, before)
        self.assertTrue(all(p["state"] == "paused" and p["behind"] > 0 for p in st["peers"]), st)
        for pid in (pp["id"], pn["id"]):
            self.assertEqual(status(T.client, f"/v1/posts/{pid}"), 404)
        self.assertEqual(status(T.client, f"/v1/users/{dave['id']}"), 404)
        self.assertEqual(message_ids(T.client, carol["token"], bob["id"]), [])
        self.assertIn(bob["id"], following(T.client, alice["id"]))
        self.assertNotIn(pp["id"], T.client.timeline_ids(carol["token"]))

        set_paused(T, False)
        c.wait_converged(CONVERGE_S)
        for reg in c.regions.values():
            cl = reg.client
            for p in (pp, pn, pt):
                self.assertEqual(cl.get(f"/v1/posts/{p['id']}").json, p, reg.name)
            self.assertEqual(status(cl, f"/v1/users/{dave['id']}"), 200)
            self.assertEqual(message_ids(cl, carol["token"], bob["id"]), [mn["id"]])
            self.assertEqual(message_ids(cl, alice["token"], carol["id"]), [mt["id"]])
            self.assertEqual(following(cl, alice["id"]), [carol["id"]])
            self.assertEqual(following(cl, carol["id"]), [bob["id"]])
        self.assert_home_timelines_equal(c, us.values())

    # 4 ---------------------------------------------------------------------------------
    def test_redis_restarted_empty_mid_stream(self):
        c = self.start_cluster()
        us = self.users(c, {"paris": "alice", "newyork": "bob", "tokyo": "carol"})
        self.follow_all(c, us)
        w = Writers(c, us, "redis")
        w.start()
        try:
            w.wait_more(30)
            # Let every region truncate some of its outbox first, so the
            # republish starts from a floor above 1 on a new stream.
            wait_for(lambda: all(s["seq"] > s["outbox_depth"]
                                 for s in (replication(r.client) for r in c.regions.values())),
                     CONVERGE_S, what="outbox truncation under load")
            c.redis.restart_empty()
            w.wait_more(60)
            # A longer outage: writes go on while Redis is down.
            c.redis.kill()
            wait_for(lambda: all(not s["log_connected"] and
                                 all(p["state"] == "disconnected" for p in s["peers"])
                                 for s in (replication(r.client) for r in c.regions.values())),
                     CONVERGE_S, what="every region notices that Redis is gone")
            w.wait_more(60)
            c.redis.start()
            w.wait_more(30)
        finally:
            acked = w.finish()
        c.wait_converged(CONVERGE_S)
        self.assert_acked_everywhere(c, us, acked)
        self.assert_home_timelines_equal(c, us.values())

    def assert_acked_everywhere(self, c, us, acked):
        for reg in c.regions.values():
            posts = set()
            for u in us.values():
                ids = profile_ids(reg.client, u["id"])
                self.assertEqual(len(ids), len(set(ids)), f"duplicates in {u['id']}'s posts")
                posts.update(ids)
            missing = set(acked) - posts
            self.assertEqual(missing, set(), f"acknowledged posts missing in {reg.name}")
            for pid in random.sample(sorted(acked), 20):
                self.assertEqual(reg.client.get(f"/v1/posts/{pid}").json["text"], acked[pid][1])

    # 5 ---------------------------------------------------------------------------------
    def test_region_killed_under_load_and_restarted(self):
        c = self.start_cluster()
        us = self.users(c, {"paris": "alice", "newyork": "bob", "tokyo": "carol"})
        self.follow_all(c, us)
        c.wait_converged(CONVERGE_S)
        N = c["newyork"]
        w = Writers(c, us, "crash")
        w.start()
        try:
            w.wait_more(60)
            w.up["newyork"].clear()
            N.kill()
            w.wait_more(30)  # paris and tokyo keep writing
            N.start()
            w.up["newyork"].set()
            w.wait_more(20, region="newyork")
            w.wait_more(30)
        finally:
            acked = w.finish()
        c.wait_converged(CONVERGE_S)
        self.assert_acked_everywhere(c, us, acked)
        self.assert_home_timelines_equal(c, us.values())
        everything = set()
        for u in us.values():
            everything.update(profile_ids(N.client, u["id"]))
        for reg in c.regions.values():
            for u in us.values():
                tl = reg.client.timeline_ids(u["token"])
                self.assertEqual(len(tl), len(set(tl)), f"{u['id']}'s timeline in {reg.name} repeats posts")
                self.assertEqual(tl, sorted(everything, reverse=True)[:800],
                                 f"{u['id']}'s timeline in {reg.name}")
        self.assert_seqs_settle(c)

    # 6 ---------------------------------------------------------------------------------
    def test_clock_skew_never_lets_an_older_write_win(self):
        c = self.start_cluster(per_region_args={"paris": ["--clock-offset-ms", "-60000"],
                                                "tokyo": ["--clock-offset-ms", "60000"]})
        # A record stamped by a clock a minute ahead is applied at once, not
        # held until the other clocks catch up with it: each step below must
        # arrive well within that minute.
        step_s = 20
        us = self.users(c, {"paris": "alice", "newyork": "bob", "tokyo": "carol"})
        alice, bob = us["paris"], us["newyork"]
        # The follow edge alice -> bob, overwritten along a chain of regions,
        # each writing only after it has seen the previous write.
        chain = ["tokyo", "paris", "newyork", "paris", "tokyo", "newyork", "tokyo", "paris", "paris",
                 "newyork", "tokyo", "paris"]
        state = False
        for i, name in enumerate(chain):
            reg = c[name]
            wait_edge(reg, alice["id"], bob["id"], state, timeout=step_s)
            state = not state
            v, _ = edge_write(reg.client, alice["token"], bob["id"], state)
            self.assertIsNotNone(v, f"step {i} in {name} was not a write")
        c.wait_converged(CONVERGE_S)
        for reg in c.regions.values():
            self.assertEqual(bob["id"] in following(reg.client, alice["id"]), state,
                             f"{reg.name}: the chain's last write lost")

        # Posts: a reply written after seeing a post gets a greater version,
        # whichever clock is behind, so timelines show causal order.
        self.follow_all(c, us)
        seen, order = None, []
        for i, name in enumerate(["tokyo", "paris", "newyork", "paris", "tokyo", "paris"]):
            reg = c[name]
            author = us[name]
            if seen:
                wait_for(lambda: status(reg.client, f"/v1/posts/{seen['id']}") == 200, step_s,
                         what=f"step {i}: {seen['id']} in {name}")
            p = reg.client.post_text(author["token"], f"step {i} in {name}")
            if seen:
                self.assertGreater(post_version(p["id"]), post_version(seen["id"]),
                                   f"step {i}: {name} stamped its reply below what it had seen")
            seen = p
            order.insert(0, p["id"])
        # ... and a delete made after seeing the post wins over it.
        victim = c["tokyo"].client.post_text(us["tokyo"]["token"], "from the future")
        wait_for(lambda: status(c["paris"].client, f"/v1/posts/{victim['id']}") == 200, step_s,
                 what="tokyo's post in paris")
        ok(c["paris"].client.delete(f"/v1/posts/{victim['id']}", token=us["tokyo"]["token"]), 204)
        c.wait_converged(CONVERGE_S)
        for reg in c.regions.values():
            self.assertEqual(status(reg.client, f"/v1/posts/{victim['id']}"), 404, reg.name)
        self.assert_home_timelines_equal(c, us.values())
        tl = c["newyork"].client.timeline_ids(bob["token"])
        self.assertEqual([pid for pid in tl if pid in order], order)

    def test_records_from_a_clock_hours_ahead_are_held(self):
        """A peer whose clock is more than an hour ahead (broken, not merely
        skewed) is held back instead of dragging every clock with it."""
        c = self.start_cluster(per_region_args={"tokyo": ["--clock-offset-ms", str(2 * 3600 * 1000)]})
        P, N, T = c["paris"], c["newyork"], c["tokyo"]
        alice = P.client.register("alice")
        wait_for(lambda: status(T.client, f"/v1/users/{alice['id']}") == 200, CONVERGE_S,
                 what="paris's user in tokyo")
        carol = T.client.register("carol")
        carol_ms = hlc(T.client) >> 16
        for reg in (P, N):
            def holding():
                with open(reg.logpath, "rb") as f:
                    return b"tokyo record is" in f.read()
            wait_for(holding, CONVERGE_S, what=f"{reg.name} holds tokyo's records")
            self.assertEqual(status(reg.client, f"/v1/users/{carol['id']}"), 404)
            self.assertLess(hlc(reg.client) >> 16, carol_ms - 3600 * 1000, f"{reg.name}'s clock was dragged")
        bob = N.client.register("bob")  # the others still replicate with each other
        wait_for(lambda: status(P.client, f"/v1/users/{bob['id']}") == 200, CONVERGE_S,
                 what="newyork's user in paris")

    # 7 ---------------------------------------------------------------------------------
    def test_home_timelines_equal_everywhere(self):
        c = self.start_cluster()
        us = self.users(c, {"paris": "p1", "newyork": "n1", "tokyo": "t1"})
        everyone = list(us.values()) + [c[reg].client.register(f"{reg[0]}2") for reg in NAMES]
        wait_user_everywhere(c, *[u["id"] for u in everyone])

        def work(name, seed):
            rnd, cl = random.Random(seed), Client(c[name].port)
            mine = []
            for i in range(40):
                u = rnd.choice(everyone)
                roll = rnd.random()
                if roll < 0.4:
                    mine.append((cl.post_text(u["token"], f"{i} in {name}")["id"], u["token"]))
                elif roll < 0.75:
                    other = rnd.choice([x for x in everyone if x is not u])
                    ok(cl.put(f"/v1/following/{other['id']}", token=u["token"]), 200)
                elif roll < 0.9:
                    other = rnd.choice([x for x in everyone if x is not u])
                    ok(cl.delete(f"/v1/following/{other['id']}", token=u["token"]), 204)
                elif mine:
                    pid, tok = mine.pop(rnd.randrange(len(mine)))
                    ok(cl.delete(f"/v1/posts/{pid}", token=tok), 204)
            cl.close()
        seed = random.randrange(1 << 30)
        in_threads(*[(lambda n=n, i=i: work(n, seed + i)) for i, n in enumerate(NAMES)])
        c.wait_converged(CONVERGE_S)
        self.assert_home_timelines_equal(c, everyone)

    # 8 ---------------------------------------------------------------------------------
    def assert_seqs_settle(self, c):
        """Waits until every outbox is empty and each region has applied
        exactly what each peer published."""
        def settled():
            st = {reg.name: replication(reg.client) for reg in c.regions.values()}
            for name, s in st.items():
                if s["outbox_depth"] != 0 or s["published_seq"] != s["seq"]:
                    return None
                for p in s["peers"]:
                    origin = st[p["name"]]
                    if not (p["applied_seq"] == origin["seq"] == origin["published_seq"] == p["published_seq"]):
                        return None
            return st
        try:
            return wait_for(settled, CONVERGE_S, what="empty outboxes and matching seqs")
        except AssertionError:
            raise AssertionError("seqs did not settle: " + repr(
                {reg.name: {k: v for k, v in replication(reg.client).items() if k != "fanout"}
                 for reg in c.regions.values()}))

    def test_replicated_posts_wait_while_the_fanout_queue_is_full(self):
        # Tokyo takes at most 4 fan-out jobs at a time. Paris's posts by an
        # author 300 of tokyo's users follow reach tokyo in one burst, faster
        # than one worker fans them out: tokyo's subscriber waits instead of
        # queueing them all, and every post still reaches every timeline.
        queue_max, posts = 4, 150
        c = self.start_cluster({"tokyo": ["--queue-max", str(queue_max), "--fanout-workers", "1"]})
        star = self.users(c, {"paris": "star"})["paris"]
        tokyo = c["tokyo"].client
        fans = [tokyo.register(f"fan{i:03d}") for i in range(300)]
        for f in fans:  # a follow queues a job too: tokyo may refuse it for a moment
            wait_for(lambda: tokyo.put(f"/v1/following/{star['id']}", token=f["token"]).status == 200,
                     CONVERGE_S, interval=0.01, what="a follow taken")
        set_paused(c["tokyo"], True)  # the posts arrive in one burst
        ids = [c["paris"].client.post_text(star["token"], f"wave {i}")["id"] for i in range(posts)]
        want = sorted(ids, reverse=True)
        set_paused(c["tokyo"], False)
        for f in fans[::30]:
            wait_for(lambda: [p["id"] for p in pages(tokyo, "/v1/timeline", token=f["token"])] == want,
                     CONVERGE_S, interval=0.2, what=f"every post in {f['id']}'s timeline")
        fanout = tokyo.get("/v1/replication").json["fanout"]
        # Each record is checked against the queue before it is staged; a
        # batch stages at most 64 before it commits.
        self.assertLessEqual(fanout["depth_max"], queue_max + 64, fanout)
        self.assertLess(fanout["depth_max"], posts, fanout)

    def test_outbox_truncated_once_every_peer_applied(self):
        c = self.start_cluster()
        us = self.users(c, {"paris": "alice", "newyork": "bob", "tokyo": "carol"})
        self.follow_all(c, us)
        for reg, u in us.items():
            for i in range(5):
                c[reg].client.post_text(u["token"], f"{i}")
        c.wait_converged(CONVERGE_S)
        st = self.assert_seqs_settle(c)
        self.assertTrue(all(s["seq"] >= 7 for s in st.values()), st)

        # While tokyo applies nothing, paris must keep what tokyo lacks,
        # even after newyork applied it and paris has truncated since.
        T, P = c["tokyo"], c["paris"]
        set_paused(T, True)
        tokyo_has = next(p["applied_seq"] for p in replication(T.client)["peers"] if p["name"] == "paris")
        for i in range(10):
            P.client.post_text(us["paris"]["token"], f"while tokyo is paused {i}")
        seq = replication(P.client)["seq"]
        # The value is "<seq>.<generation> <signature>" (the log is signed).
        wait_for(lambda: c.redis.command("HGET", "df:progress:newyork", "paris").split(b"\r\n")[1]
                 .split(b".")[0] == b"%d" % seq, CONVERGE_S,
                 what="newyork's progress on paris's log in Redis")
        for _ in range(2):  # two housekeeping passes of paris since
            c.redis.command("HDEL", "df:regions", "paris")
            wait_for(lambda: b"$-1" not in c.redis.command("HGET", "df:regions", "paris"), 10,
                     what="paris's publisher housekeeping")
        st = replication(P.client)
        self.assertGreaterEqual(st["outbox_depth"], seq - tokyo_has, st)
        xlen = int(c.redis.command("XLEN", "df:log:paris")[1:].split(b"\r\n")[0])
        self.assertGreaterEqual(xlen, seq - tokyo_has)
        set_paused(T, False)
        c.wait_converged(CONVERGE_S)
        self.assert_seqs_settle(c)

        # A restarted region, with everything it wrote truncated, still
        # knows what it has published.
        c["newyork"].restart()
        c.wait_converged(CONVERGE_S)
        self.assert_seqs_settle(c)
        n = c["newyork"].client.post_text(us["newyork"]["token"], "after the restart")
        for reg in c.regions.values():
            wait_for(lambda: status(reg.client, f"/v1/posts/{n['id']}") == 200, CONVERGE_S,
                     what=f"the new post in {reg.name}")
        self.assert_seqs_settle(c)


if __name__ == "__main__":
    unittest.main()
