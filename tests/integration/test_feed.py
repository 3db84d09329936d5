"""test_feed.py -- fan-out and home timelines against a real region.

  * ModelTest: a seeded random sequence of registers, follows, unfollows,
    posts and deletes; after the fan-out queue drains, every user's home
    timeline equals "the newest cap live posts by the user and the users
    they follow, by id descending", page by page (and again after a restart).
    FEED_SEED=<n> reruns one sequence.
  * KeptPagesTest: pages kept in memory change with every follow,
    unfollow, post and delete, round after round.
  * WideFollowTest: a reader following more accounts than a read scans at
    once; unfollows and deletes hide entries at once and after cleanup.
  * RestartTest: kill -9 while a large fan-out job runs; after the restart
    every follower has every post exactly once.
  * PaginationTest: paging with limit 5 while new posts arrive never
    repeats or skips an entry.
  * BackpressureTest: with a tiny --queue-max, POST /v1/posts answers 503
    with Retry-After; every acknowledged post is delivered.

Standalone regions (no Redis); every wait is a poll with a deadline.
"""
import os
import random
import re
import shutil
import sys
import tempfile
import threading
import time
import unittest
from concurrent.futures import ThreadPoolExecutor

from harness import Client, Region, sanitizer_env_ok, wait_for

THREADS = 8


def parallel(port, fn, items, threads=THREADS):
    """Runs fn(client, item) for every item on a pool of threads, each with
    its own keep-alive connection; returns the results in order."""
    local = threading.local()
    clients = []

    def run(item):
        c = getattr(local, "client", None)
        if c is None:
            c = local.client = Client(port, timeout=30)
            clients.append(c)
        return fn(c, item)

    try:
        with ThreadPoolExecutor(threads) as pool:
            return list(pool.map(run, items))
    finally:
        for c in clients:
            c.close()


def fanout(client):
    r = client.get("/v1/replication")
    assert r.status == 200, r
    return r.json["fanout"]


def wait_drained(client, timeout=60):
    """Waits until the fan-out queue is empty and stays so for two polls
    with no job finishing in between; returns the fan-out stats."""
    last = {}

    def settled():
        f = fanout(client)
        prev = last.get("f")
        last["f"] = f
        return f if (f["depth"] == 0 and prev and prev["depth"] == 0 and
                     prev["jobs_done"] == f["jobs_done"]) else None
    return wait_for(settled, timeout, interval=0.05, what="an empty fan-out queue")


def pages(client, path, token=None, limit=7, max_pages=10000):
    """Every page of a list endpoint: a list of lists of items."""
    out, cursor = [], None
    for _ in range(max_pages):
        q = f"{path}?limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        r = client.get(q, token=token)
        assert r.status == 200, (q, r)
        out.append(r.json["items"])
        cursor = r.json["next"]
        if not cursor:
            return out
    raise AssertionError(f"{path}: more than {max_pages} pages")


def check_pages(got_pages, expected, limit, what):
    """Page i must be expected[i*limit:(i+1)*limit]; only the last page may be
    short (or empty, when the previous page was exactly full)."""
    for i, page in enumerate(got_pages):
        ids = [p["id"] for p in page]
        want = expected[i * limit:(i + 1) * limit]
        if ids != want:
            raise AssertionError(f"{what}: page {i} (limit {limit}) differs\n  got:  {ids}\n  want: {want}")
        assert len(page) <= limit
        if i < len(got_pages) - 1:
            assert len(page) == limit, f"{what}: page {i} is short but has a next cursor"
    total = sum(len(p) for p in got_pages)
    assert total == len(expected), f"{what}: {total} entries over all pages, want {len(expected)}"


class RegionCase(unittest.TestCase):
    """One standalone region per test class, in its own directory."""
    ARGS = ()

    @classmethod
    def setUpClass(cls):
        cls.workdir = tempfile.mkdtemp(prefix="driftfeed-feed-")
        cls.region = Region("paris", cls.workdir, args=list(cls.ARGS))
        cls.c = cls.region.client

    @classmethod
    def tearDownClass(cls):
        try:
            cls.region.stop()
        except AssertionError:
            cls.region.kill()
        clean = sanitizer_env_ok(cls.region)
        if os.environ.get("KEEP_TEST_DIRS") != "1" and clean:
            shutil.rmtree(cls.workdir, ignore_errors=True)
        assert clean, f"sanitizer report in {cls.region.logpath}"


class ModelTest(RegionCase):
    CAP = 50
    THRESHOLD = 20
    USERS = 300
    OPS = 20000
    LIMIT = 7
    ARGS = ("--large-threshold", str(THRESHOLD), "--timeline-cap", str(CAP), "--rate-limit", "0")

    def generate(self, rng):
        """The operation sequence and the model it leads to. Each op belongs
        to one actor (the user who makes it), so running each actor's ops in
        order -- whatever the interleaving between actors -- ends in the
        model's state."""
        n = self.USERS
        following = [set() for _ in range(n)]
        nposts = [0] * n
        live = [[] for _ in range(n)]       # indices of each user's live posts
        deleted = [set() for _ in range(n)]
        celebs = [0, 1, 2]
        # Posting activity is skewed: celebrities and a few chatty users.
        weights = [30 if u in celebs else (8 if u % 17 == 0 else 1) for u in range(n)]
        # Enough early follows that every celebrity passes the threshold.
        fans = []
        for cb in celebs:
            for f in rng.sample([u for u in range(n) if u != cb], self.THRESHOLD + 15):
                fans.append(("follow", f, cb))
        ops = []
        for _ in range(self.OPS):
            x = rng.random()
            if fans and x < 0.08:
                kind, u, v = fans.pop(rng.randrange(len(fans)))
                ops.append((u, kind, v))
                following[u].add(v)
            elif x < 0.28:
                u = rng.randrange(n)
                v = rng.choice(celebs) if rng.random() < 0.15 else rng.randrange(n)
                if v == u:
                    continue
                ops.append((u, "follow", v))  # following twice is fine: idempotent
                following[u].add(v)
            elif x < 0.35:
                u = rng.randrange(n)
                if following[u] and rng.random() < 0.9:
                    v = rng.choice(sorted(following[u]))
                else:
                    v = rng.randrange(n)
                    if v == u:
                        continue
                ops.append((u, "unfollow", v))
                following[u].discard(v)
            elif x < 0.85:
                u = rng.choices(range(n), weights)[0]
                ops.append((u, "post", nposts[u]))
                live[u].append(nposts[u])
                nposts[u] += 1
            else:
                u = rng.choices(range(n), weights)[0]
                if not live[u]:
                    continue
                k = live[u].pop(rng.randrange(len(live[u])))
                ops.append((u, "delete", k))
                deleted[u].add(k)
        for kind, u, v in fans:  # whatever the loop did not place
            ops.append((u, kind, v))
            following[u].add(v)
        # Last, only deletes and unfollows: capped timelines thin out and
        # must reach below the entries their trims dropped.
        for _ in range(self.OPS // 10):
            if rng.random() < 0.7:
                u = rng.choices(range(n), weights)[0]
                if live[u]:
                    k = live[u].pop(rng.randrange(len(live[u])))
                    ops.append((u, "delete", k))
                    deleted[u].add(k)
            else:
                u = rng.randrange(n)
                if following[u]:
                    v = rng.choice(sorted(following[u]))
                    ops.append((u, "unfollow", v))
                    following[u].discard(v)
        return ops, following, deleted, celebs

    def test_timelines_match_model(self):
        seed = int(os.environ.get("FEED_SEED", random.randrange(1 << 32)))
        print(f"\nModelTest: FEED_SEED={seed}", file=sys.stderr, flush=True)
        rng = random.Random(seed)
        started = time.monotonic()
        ops, following, deleted, celebs = self.generate(rng)
        n = self.USERS
        port = self.region.port

        users = parallel(port, lambda c, i: c.register(f"u{i:03d}"), range(n))
        ids = [u["id"] for u in users]
        tokens = [u["token"] for u in users]
        post_ids = [dict() for _ in range(n)]  # user -> {k: post id}

        def run_actor_ops(c, t):
            for u, kind, arg in ops:
                if u % THREADS != t:
                    continue
                if kind == "follow":
                    r = c.put(f"/v1/following/{ids[arg]}", token=tokens[u])
                    assert r.status == 200, (kind, r)
                elif kind == "unfollow":
                    r = c.delete(f"/v1/following/{ids[arg]}", token=tokens[u])
                    assert r.status == 204, (kind, r)
                elif kind == "post":
                    post_ids[u][arg] = c.post_text(tokens[u], f"post {arg} by {ids[u]}")["id"]
                else:
                    r = c.delete(f"/v1/posts/{post_ids[u][arg]}", token=tokens[u])
                    assert r.status == 204, (kind, r)
        parallel(port, run_actor_ops, range(THREADS))
        wait_drained(self.c)
        st = fanout(self.c)
        print(f"ModelTest: {len(ops)} ops in {time.monotonic() - started:.1f}s; fan-out {st}",
              file=sys.stderr, flush=True)

        live = [sorted((pid for k, pid in post_ids[u].items() if k not in deleted[u]), reverse=True)
                for u in range(n)]
        expected = []
        for u in range(n):
            pool = list(live[u])
            for v in following[u]:
                pool += live[v]
            expected.append(sorted(pool, reverse=True)[:self.CAP])
        # The run covered what it is meant to: merged-at-read accounts, capped
        # timelines, timelines thinned by deletes and unfollows.
        self.assertGreaterEqual(st["large_accounts"], len(celebs), "celebrities were not marked large")
        self.assertTrue(any(len(e) == self.CAP for e in expected), "no timeline reached the cap")
        self.assertTrue(any(deleted), "no post was deleted")

        def verify(c, u):
            got = pages(c, "/v1/timeline", token=tokens[u], limit=self.LIMIT)
            check_pages(got, expected[u], self.LIMIT, f"home of {ids[u]} (FEED_SEED={seed})")
            got = pages(c, f"/v1/users/{ids[u]}/posts", limit=9)
            check_pages(got, live[u], 9, f"profile of {ids[u]} (FEED_SEED={seed})")
        parallel(port, verify, range(n))

        # The large-account set and every timeline survive a restart.
        self.region.restart()
        parallel(port, verify, range(n))
        print(f"ModelTest: verified {n} users twice; {time.monotonic() - started:.1f}s in all",
              file=sys.stderr, flush=True)


class KeptPagesTest(RegionCase):
    """Rendered pages are kept in memory (feed/pages.c); every change that
    can alter a page must outdate it. Rounds of random follows, unfollows,
    posts and deletes; after each round every user's pages, read twice (the
    second read is served from memory), equal the model, although the
    previous round left them all kept. Within a round, a delete, an unfollow
    and a large account's post show on a kept page at once."""
    CAP = 30
    THRESHOLD = 6
    USERS = 40
    ROUNDS = 8
    OPS = 80
    LIMIT = 5
    ARGS = ("--large-threshold", str(THRESHOLD), "--timeline-cap", str(CAP), "--rate-limit", "0")

    def test_kept_pages_follow_every_change(self):
        seed = int(os.environ.get("FEED_SEED", random.randrange(1 << 32)))
        print(f"\nKeptPagesTest: FEED_SEED={seed}", file=sys.stderr, flush=True)
        rng = random.Random(seed)
        c, n = self.c, self.USERS
        users = [c.register(f"k{i:02d}") for i in range(n)]
        ids = [u["id"] for u in users]
        tok = [u["token"] for u in users]
        following = [set() for _ in range(n)]
        live = [[] for _ in range(n)]  # post ids by author
        # User 0 becomes large: most users follow it.
        for u in range(1, n):
            if u % 4 != 0:
                c.follow(tok[u], ids[0])
                following[u].add(0)

        def expected(u):
            pool = list(live[u])
            for v in following[u]:
                pool += live[v]
            return sorted(pool, reverse=True)[:self.CAP]

        def first_page(u):
            r = c.get(f"/v1/timeline?limit={self.LIMIT}", token=tok[u])
            self.assertEqual(r.status, 200, r)
            return [p["id"] for p in r.json["items"]]

        def post(u, text):
            pid = c.post_text(tok[u], text)["id"]
            live[u].append(pid)
            return pid

        for rnd in range(self.ROUNDS):
            for _ in range(self.OPS):
                u, x = rng.randrange(n), rng.random()
                if x < 0.2:
                    v = rng.randrange(n)
                    if v != u:
                        c.follow(tok[u], ids[v])
                        following[u].add(v)
                elif x < 0.3 and following[u]:
                    v = rng.choice(sorted(following[u]))
                    r = c.delete(f"/v1/following/{ids[v]}", token=tok[u])
                    self.assertEqual(r.status, 204, r)
                    following[u].discard(v)
                elif x < 0.85:
                    post(u, f"round {rnd} by {ids[u]}")
                elif live[u]:
                    pid = live[u].pop(rng.randrange(len(live[u])))
                    r = c.delete(f"/v1/posts/{pid}", token=tok[u])
                    self.assertEqual(r.status, 204, r)
            wait_drained(c)
            for u in range(n):
                for _ in range(2):
                    got = pages(c, "/v1/timeline", token=tok[u], limit=self.LIMIT)
                    check_pages(got, expected(u), self.LIMIT,
                                f"home of {ids[u]}, round {rnd} (FEED_SEED={seed})")

            # At once, on pages kept by the reads above.
            fans = [u for u in range(1, n) if 0 in following[u]]
            self.assertTrue(fans)
            reader = rng.choice(fans)
            pid = post(0, f"large post {rnd}")  # merged at read time: no fan-out to wait for
            self.assertEqual(first_page(reader)[0], pid, f"large post {pid} not on a kept page")
            r = c.delete(f"/v1/posts/{pid}", token=tok[0])
            self.assertEqual(r.status, 204, r)
            live[0].remove(pid)
            self.assertNotIn(pid, first_page(reader), f"deleted {pid} still on a kept page")
            shown = first_page(reader)
            authors = {a for a in range(n) for p in live[a] if p in shown and a != reader}
            if authors:
                v = rng.choice(sorted(authors))
                r = c.delete(f"/v1/following/{ids[v]}", token=tok[reader])
                self.assertEqual(r.status, 204, r)
                following[reader].discard(v)
                self.assertFalse(set(live[v]) & set(first_page(reader)),
                                 f"unfollowed {ids[v]} still on a kept page")
        st = fanout(c)
        self.assertGreaterEqual(st["large_accounts"], 1, "user 0 was not marked large")


class WideFollowTest(RegionCase):
    """A reader following more accounts than one read scans at once (256):
    hidden unfollowed authors, large accounts and the profile merge below
    the home floor must all still see every followee."""
    CAP = 40
    AUTHORS = 320
    ARGS = ("--large-threshold", "3", "--timeline-cap", str(CAP), "--rate-limit", "0")

    def test_reader_following_hundreds(self):
        port = self.region.port
        rng = random.Random(7)
        reader = self.c.register("reader")
        fans = [self.c.register(f"fan{i}") for i in range(4)]
        authors = parallel(port, lambda c, i: c.register(f"a{i:03d}"), range(self.AUTHORS))
        parallel(port, lambda c, a: c.follow(reader["token"], a["id"]), authors)
        # A few authors, early and late in key order, become large accounts.
        stars = [authors[3], authors[200], authors[300], authors[310]]
        for st in stars:
            for fan in fans:
                self.c.follow(fan["token"], st["id"])
        posts = parallel(port, lambda c, i: (i % self.AUTHORS, c.post_text(authors[i % self.AUTHORS]["token"],
                                                                           f"post {i}")["id"]),
                         range(3 * self.AUTHORS))
        wait_drained(self.c)
        st = fanout(self.c)
        self.assertGreaterEqual(st["large_accounts"], len(stars))

        # Unfollow some authors on both sides of the 256th; delete some posts.
        gone = set(rng.sample(range(self.AUTHORS), 60)) | {300}
        for a in gone:
            r = self.c.delete(f"/v1/following/{authors[a]['id']}", token=reader["token"])
            self.assertEqual(r.status, 204, r)
        dead = set(rng.sample(range(len(posts)), 200))
        for i in dead:
            a, pid = posts[i]
            r = self.c.delete(f"/v1/posts/{pid}", token=authors[a]["token"])
            self.assertEqual(r.status, 204, r)
        want = sorted((pid for i, (a, pid) in enumerate(posts) if i not in dead and a not in gone),
                      reverse=True)[:self.CAP]
        # Hidden at once, and still right once the cleanup jobs ran.
        for when in ("at once", "after the queue drained"):
            got = pages(self.c, "/v1/timeline", token=reader["token"], limit=6)
            check_pages(got, want, 6, f"home of the reader ({when})")
            wait_drained(self.c)


class DirectPostTest(RegionCase):
    """A post by an author nobody follows writes its one home entry itself,
    no fan-out job: a follow that lands while such posts are being made
    must still see every one of them (the backfill waits for the posts that
    read "no followers" to commit)."""
    ROUNDS = 12
    POSTS = 40
    ARGS = ("--rate-limit", "0")

    def test_a_follow_racing_posts_sees_every_post(self):
        port = self.region.port
        jobs_before = fanout(self.c)["jobs_done"]
        lone = self.c.register("lone")
        for i in range(5):
            self.c.post_text(lone["token"], f"alone {i}")
        wait_drained(self.c)
        self.assertEqual(fanout(self.c)["jobs_done"], jobs_before,
                         "posts of an author nobody follows ran fan-out jobs")
        self.assertEqual(len(self.c.get("/v1/timeline", token=lone["token"]).json["items"]), 5)
        for rnd in range(self.ROUNDS):
            author = self.c.register(f"author{rnd}")
            reader = self.c.register(f"reader{rnd}")

            def act(c, i):
                if i == self.POSTS // 2:
                    return c.follow(reader["token"], author["id"])
                return c.post_text(author["token"], f"round {rnd} post {i}")["id"]
            ids = [x for x in parallel(port, act, range(self.POSTS + 1), threads=8) if isinstance(x, str)]
            wait_drained(self.c)
            got = {p["id"] for p in self.c.get("/v1/timeline?limit=100", token=reader["token"]).json["items"]}
            self.assertEqual(set(ids) - got, set(), f"round {rnd}: posts missing from the follower's home")
            own = {p["id"] for p in self.c.get("/v1/timeline?limit=100", token=author["token"]).json["items"]}
            self.assertEqual(own, set(ids), f"round {rnd}: the author's own home")


class RestartTest(RegionCase):
    FOLLOWERS = 20000
    POSTS = 6
    ARGS = ("--fanout-workers", "1", "--large-threshold", "1000000", "--rate-limit", "0")

    def test_kill_mid_fanout_delivers_exactly_once(self):
        port = self.region.port
        started = time.monotonic()
        star = self.c.register("star")
        followers = parallel(port, lambda c, i: c.register(f"f{i:05d}"), range(self.FOLLOWERS))
        parallel(port, lambda c, u: c.follow(u["token"], star["id"]), followers)
        wait_drained(self.c)
        base = fanout(self.c)
        print(f"\nRestartTest: {self.FOLLOWERS} followers in {time.monotonic() - started:.1f}s",
              file=sys.stderr, flush=True)

        posts = [self.c.post_text(star["token"], f"big news {i}")["id"] for i in range(self.POSTS)]
        total = self.POSTS * (self.FOLLOWERS + 1)
        seen = wait_for(lambda: (lambda f: f if f["deliveries"] > base["deliveries"] else None)(fanout(self.c)),
                        30, interval=0.002, what="the first deliveries")
        self.assertGreater(seen["depth"], 0, f"fan-out finished before the kill: {seen}")
        done = seen["deliveries"] - base["deliveries"]
        self.assertLess(done, total, "every delivery was done before the kill")
        self.region.kill()
        print(f"RestartTest: killed with {done}/{total} deliveries seen, depth {seen['depth']}",
              file=sys.stderr, flush=True)

        self.region.start()
        after = wait_drained(self.c, timeout=120)
        with open(self.region.logpath, "rb") as f:
            log = f.read().decode("utf-8", "replace")
        m = re.findall(r"feed: resuming (\d+) fan-out jobs", log)
        self.assertTrue(m, "the restarted region resumed no fan-out job")
        # Resumed, not restarted: fewer deliveries than the whole work again.
        self.assertLess(after["deliveries"], total, f"after restart: {after}")
        print(f"RestartTest: resumed {m[-1]} jobs; {after['deliveries']} deliveries after restart",
              file=sys.stderr, flush=True)

        want = sorted(posts, reverse=True)

        def check(c, u):
            got = [p["id"] for p in c.get("/v1/timeline?limit=100", token=u["token"]).json["items"]]
            return None if got == want else (u["id"], got)
        bad = [x for x in parallel(port, check, followers + [star]) if x]
        self.assertEqual(bad[:5], [], f"{len(bad)} timelines differ from {want}")
        print(f"RestartTest: {len(followers) + 1} timelines checked; {time.monotonic() - started:.1f}s",
              file=sys.stderr, flush=True)


class PaginationTest(RegionCase):
    CAP = 60
    ARGS = ("--timeline-cap", str(CAP), "--rate-limit", "0")

    def test_pages_never_repeat_or_skip_while_posting(self):
        reader = self.c.register("reader")
        authors = [self.c.register(f"author{i}") for i in range(2)]
        for a in authors:
            self.c.follow(reader["token"], a["id"])
        for i in range(40):
            for a in authors:
                self.c.post_text(a["token"], f"old {i}")
        wait_drained(self.c)

        for path, token, limit in (("/v1/timeline", reader["token"], 5),
                                   (f"/v1/users/{authors[0]['id']}/posts", None, 5)):
            with self.subTest(path=path):
                self.page_while_posting(path, token, limit, authors)

    def page_while_posting(self, path, token, limit, authors):
        stop = threading.Event()
        count = [0]
        errors = []

        def poster():
            c = Client(self.region.port)
            try:
                for i in range(2000):  # bounded even if paging stalls
                    if stop.is_set():
                        return
                    c.post_text(authors[i % 2]["token"], f"new {i}")
                    count[0] += 1
            except Exception as e:  # surfaced in the main thread
                errors.append(e)
            finally:
                c.close()

        before = [p["id"] for page in pages(self.c, path, token=token, limit=100) for p in page]
        t = threading.Thread(target=poster)
        t.start()
        got, cursor, posted_during = [], None, []
        try:
            for _ in range(1000):
                # Each page waits until at least one more post was made.
                n0 = count[0]
                wait_for(lambda: count[0] > n0 or errors, 10, interval=0.001, what="a concurrent post")
                q = f"{path}?limit={limit}" + (f"&cursor={cursor}" if cursor else "")
                r = self.c.get(q, token=token)
                self.assertEqual(r.status, 200, r)
                got += [p["id"] for p in r.json["items"]]
                posted_during.append(count[0] - n0)
                cursor = r.json["next"]
                if not cursor:
                    break
        finally:
            stop.set()
            t.join(30)
        self.assertFalse(errors, errors)
        self.assertEqual(len(got), len(set(got)), f"{path}: a page repeated an entry")
        self.assertEqual(got, sorted(got, reverse=True), f"{path}: pages out of order")
        # Entries that existed when paging began appear, in full, down to the
        # last one returned; anything else is newer than all of them.
        low = got[-1]
        missing = [x for x in before if x >= low and x not in set(got)]
        self.assertEqual(missing, [], f"{path}: paging skipped entries")
        newer = [x for x in got if x not in set(before)]
        self.assertTrue(all(x > before[0] for x in newer), f"{path}: an unexpected entry")
        if path == "/v1/timeline":
            self.assertEqual(len(got), self.CAP, "the home timeline is not paged to its cap")
        else:
            self.assertEqual(set(before) - set(got), set(), "the profile lost an entry")
        self.assertGreater(sum(posted_during), 10, "too few concurrent posts")


class BackpressureTest(RegionCase):
    FOLLOWERS = 4000
    ARGS = ("--queue-max", "1", "--fanout-workers", "1", "--large-threshold", "1000000",
            "--rate-limit", "0")

    @classmethod
    def star(cls, name):
        """A new author followed by FOLLOWERS users (registered once per
        class): each of their posts keeps the one worker busy for a while.
        A follow is a fan-out job too, so the full queue refuses some."""
        port = cls.region.port
        if not hasattr(cls, "followers"):
            cls.followers = parallel(port, lambda c, i: c.register(f"f{i:04d}"),
                                     range(cls.FOLLOWERS))
        star = cls.c.register(name)

        def follow(c, u):
            wait_for(lambda: c.put(f"/v1/following/{star['id']}", token=u["token"]).status == 200,
                     30, interval=0.01, what="a follow taken")
        parallel(port, follow, cls.followers)
        wait_drained(cls.c)
        return star, cls.followers

    def assert_overloaded(self, r):
        self.assertEqual(r.status, 503, r)
        self.assertGreaterEqual(int(r.headers["retry-after"]), 1)
        self.assertEqual(r.json["error"]["code"], "overloaded")
        self.assertTrue(r.json["error"]["message"])

    def test_every_write_that_fans_out_backs_off(self):
        # A follow, an unfollow and a delete each queue a fan-out job: with
        # the queue full (the star's post being fanned out) they get the
        # same 503 as a post, and are taken once it drains. Each attempt
        # writes something new (a write that changes nothing queues nothing).
        star, followers = self.star("writer")
        fan = self.c.register("fan")
        # With a follower, fan's posts and deletes are fan-out jobs (an
        # author nobody follows writes its one home entry with the post).
        self.assertEqual(self.c.put(f"/v1/following/{fan['id']}", token=star["token"]).status, 200)

        def follow(i):
            idol = self.c.register(f"idol{i}")
            return (lambda: self.c.put(f"/v1/following/{idol['id']}", token=fan["token"]),
                    lambda: idol["id"] in self.c.get(
                        f"/v1/users/{fan['id']}/following?limit=100").json["items"])

        def unfollow(i):
            u = followers[i]
            return (lambda: self.c.delete(f"/v1/following/{star['id']}", token=u["token"]),
                    lambda: star["id"] not in self.c.get(
                        f"/v1/users/{u['id']}/following").json["items"])

        def delete(i):
            p = self.c.post_text(fan["token"], f"to be deleted {i}")
            return (lambda: self.c.delete(f"/v1/posts/{p['id']}", token=fan["token"]),
                    lambda: self.c.get(f"/v1/posts/{p['id']}").status == 404)

        for kind in (follow, unfollow, delete):
            for i in range(20):  # a job may end before the write arrives: try again
                wait_drained(self.c)  # the setup write must not meet a full queue
                write, done = kind(i)
                wait_drained(self.c)
                self.c.post_text(star["token"], f"fills the queue {kind.__name__} {i}")
                r = write()
                if r.status == 503:
                    break
                self.assertLess(r.status, 300, r)
            else:
                self.fail(f"no {kind.__name__} refused in 20 tries with the queue full")
            self.assert_overloaded(r)
            self.assertFalse(done(), f"a refused {kind.__name__} took effect")
            wait_drained(self.c)
            self.assertLess(write().status, 300, f"{kind.__name__} after the queue drained")
            self.assertTrue(done(), f"{kind.__name__} after the queue drained")

    def test_a_repeated_post_is_answered_while_the_queue_is_full(self):
        # A client that retries an acknowledged post (same Idempotency-Key)
        # gets its post back even while new posts are refused: the repeat
        # writes nothing, so it queues nothing.
        star, _ = self.star("repeats")
        fan = self.c.register("repeater")
        self.assertEqual(self.c.put(f"/v1/following/{fan['id']}", token=star["token"]).status, 200)
        key = {"Idempotency-Key": "retry-1"}
        first = self.c.post("/v1/posts", {"text": "once"}, token=fan["token"], headers=key)
        self.assertEqual(first.status, 201, first)
        for i in range(20):  # the star's job may end before the new post arrives
            wait_drained(self.c)
            self.c.post_text(star["token"], f"fills the queue {i}")
            again = self.c.post("/v1/posts", {"text": "once"}, token=fan["token"], headers=key)
            fresh = self.c.post("/v1/posts", {"text": f"new {i}"}, token=fan["token"])
            if fresh.status == 503:
                break
        else:
            self.fail("no new post refused in 20 tries with the queue full")
        self.assert_overloaded(fresh)
        self.assertEqual(again.status, 201, again)
        self.assertEqual(again.json["id"], first.json["id"])

    def test_full_queue_answers_503_and_loses_nothing(self):
        port = self.region.port
        star, followers = self.star("star")

        acked, refusals = [], []

        def attempt(c, i):
            r = c.post("/v1/posts", {"text": f"burst {i}"}, token=star["token"])
            if r.status == 201:
                return ("ok", r.json["id"])
            return ("refused", r)
        # Bursts of concurrent posts, each once the queue is empty: the
        # first posts of a burst are taken, the rest find the queue full.
        i = 0
        for _ in range(20):
            if len(refusals) >= 20 and len(acked) >= 10:
                break
            wait_for(lambda: fanout(self.c)["depth"] == 0, 30, interval=0.01, what="an empty queue")
            for kind, x in parallel(port, attempt, range(i, i + 16), threads=4):
                (acked if kind == "ok" else refusals).append(x)
            i += 16
        self.assertTrue(refusals, f"no 503 after {i} posts")
        for r in refusals:
            self.assertEqual(r.status, 503, r)
            self.assertIn("retry-after", r.headers)
            self.assertGreaterEqual(int(r.headers["retry-after"]), 1)
            err = r.json["error"]
            self.assertEqual(err["code"], "overloaded")
            self.assertTrue(err["message"])
        self.assertTrue(acked)

        # Once the queue drains, posts are accepted again and nothing
        # acknowledged is lost: every post is stored, in the profile and in
        # every follower's timeline.
        wait_drained(self.c, timeout=60)
        acked.append(self.c.post_text(star["token"], "after the burst")["id"])
        wait_drained(self.c, timeout=60)
        want = sorted(acked, reverse=True)
        for pid in acked:
            self.assertEqual(self.c.get(f"/v1/posts/{pid}").status, 200)
        profile = [p["id"] for page in pages(self.c, f"/v1/users/{star['id']}/posts", limit=100) for p in page]
        self.assertEqual(profile, want)

        def check(c, u):
            got = [p["id"] for page in pages(c, "/v1/timeline", token=u["token"], limit=100)
                   for p in page if p["author"] == star["id"]]  # they follow other writers too
            return None if got == want[:800] else u["id"]
        bad = [x for x in parallel(port, check, followers) if x]
        self.assertEqual(bad, [], f"{len(bad)} followers miss acknowledged posts")
        print(f"\nBackpressureTest: {len(acked)} posts acknowledged, {len(refusals)} refused with 503",
              file=sys.stderr, flush=True)


if __name__ == "__main__":
    unittest.main()
