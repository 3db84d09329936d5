"""test_api.py -- the single-region HTTP API against a real driftfeed process.

One standalone region (no Redis) per TestCase class; every test makes fresh
users. Covers DESIGN.md section 5: each endpoint's happy path and JSON shape,
every class of bad input (error shape, status, and the server still serving),
auth and message privacy, durability across SIGTERM and SIGKILL restarts, and
HTTP keep-alive. Fan-out into home timelines is asynchronous, so timeline
checks poll with harness.wait_for; nothing sleeps.
"""
import datetime
import http.client
import itertools
import json
import os
import re
import secrets
import shutil
import socket
import tempfile
import threading
import unittest
import urllib.parse

import harness

REGION = "paris"
RFC3339_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
ERROR_CODE = re.compile(r"^[a-z][a-z0-9_]*$")
BODY_MAX = 64 * 1024

_seq = itertools.count(1)


def fresh(prefix="u"):
    """A user name nobody has used: [a-z0-9_], at most 30 characters."""
    name = f"{prefix}_{next(_seq)}_{secrets.token_hex(3)}"
    assert len(name) <= 30, name
    return name


def parse_time(s):
    """Parses an RFC 3339 UTC timestamp with milliseconds (asserting the form)."""
    assert RFC3339_MS.match(s), f"not RFC 3339 UTC with milliseconds: {s!r}"
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)


class RegionCase(unittest.TestCase):
    """Starts one standalone region for the class; checks its log at the end."""

    @classmethod
    def setUpClass(cls):
        cls.workdir = tempfile.mkdtemp(prefix="driftfeed-api-")
        if os.environ.get("KEEP_TEST_DIRS") != "1":
            cls.addClassCleanup(shutil.rmtree, cls.workdir, True)
        cls.region = harness.Region(REGION, cls.workdir, start=False)
        cls.addClassCleanup(cls._stop_region)
        cls.region.start()
        cls.c = cls.region.client

    @classmethod
    def _stop_region(cls):
        reg = cls.region
        if reg.proc is None:
            return
        if reg.alive():
            code = reg.stop()
        else:  # it died on its own
            code = reg.proc.returncode
            reg.log.close()
        if not harness.sanitizer_env_ok(reg):
            raise AssertionError(f"sanitizer report in {reg.logpath}")
        if code != 0:
            raise AssertionError(f"region exited with {code}; see {reg.logpath}")

    # ---- helpers ------------------------------------------------------------------
    def user(self, prefix="u"):
        """Registers a fresh user; returns {"id", "name", "token", ...}."""
        name = fresh(prefix)
        r = self.c.post("/v1/users", {"name": name, "display_name": name.upper()})
        self.assertEqual(r.status, 201, r)
        return r.json

    def post(self, token, text, **kw):
        r = self.c.post("/v1/posts", {"text": text}, token=token, **kw)
        self.assertEqual(r.status, 201, r)
        return r.json

    def message(self, token, to, text):
        r = self.c.post("/v1/messages", {"to": to, "text": text}, token=token)
        self.assertEqual(r.status, 201, r)
        return r.json

    def follow(self, token, uid):
        r = self.c.put(f"/v1/following/{uid}", token=token)
        self.assertEqual(r.status, 200, r)
        return r.json

    def assert_json(self, r, status):
        self.assertEqual(r.status, status, r)
        self.assertTrue(r.headers.get("content-type", "").startswith("application/json"), r.headers)
        self.assertEqual(r.headers.get("access-control-allow-origin"), "*")
        return r.json

    def assert_healthy(self):
        r = self.c.get("/health")
        self.assertEqual(r.status, 200, r)
        self.assertTrue(self.region.alive(), "the region died")

    def assert_error(self, r, status, code=None):
        """The documented error shape with status; and the server keeps serving."""
        j = self.assert_json(r, status)
        self.assertIsInstance(j, dict, r)
        self.assertEqual(set(j), {"error"}, r)
        self.assertEqual(set(j["error"]), {"code", "message"}, r)
        self.assertRegex(j["error"]["code"], ERROR_CODE)
        self.assertIsInstance(j["error"]["message"], str)
        self.assertTrue(j["error"]["message"], r)
        if code:
            self.assertEqual(j["error"]["code"], code, r)
        self.assert_healthy()
        return j

    def pages(self, path, token=None, limit=2, cursor=None):
        """Every item of a list endpoint, page by page (from cursor); checks
        the list shape."""
        items, seen = [], set()
        sep = "&" if "?" in path else "?"
        for _ in range(1000):
            q = f"{path}{sep}limit={limit}" + (f"&cursor={urllib.parse.quote(cursor, safe='')}" if cursor else "")
            j = self.assert_json(self.c.get(q, token=token), 200)
            self.assertEqual(set(j), {"items", "next"}, j)
            self.assertLessEqual(len(j["items"]), limit)
            items += j["items"]
            cursor = j["next"]
            if cursor is None:
                return items
            self.assertIsInstance(cursor, str)
            self.assertNotIn(cursor, seen, "a cursor repeated: pagination loops")
            seen.add(cursor)
        self.fail("pagination did not end")

    def timeline_ids(self, token):
        return [p["id"] for p in self.pages("/v1/timeline", token=token, limit=100)]

    def profile_ids(self, uid):
        return [p["id"] for p in self.pages(f"/v1/users/{uid}/posts", limit=100)]

    def fanout_drained(self):
        j = self.assert_json(self.c.get("/v1/replication"), 200)
        return j["fanout_depth"] == 0

    def check_post(self, p, author, text):
        for k in ("id", "author", "text", "created_at", "region"):
            self.assertIn(k, p)
        self.assertIsInstance(p["id"], str)
        self.assertTrue(p["id"])
        self.assertEqual(p["author"], author)
        self.assertEqual(p["text"], text)
        self.assertEqual(p["region"], REGION)
        t = parse_time(p["created_at"])
        now = datetime.datetime.now(datetime.timezone.utc)
        self.assertLess(abs((now - t).total_seconds()), 300, p)


# ==== 1. Happy paths ====================================================================

class TestUsers(RegionCase):
    def test_create_and_get(self):
        name = fresh("al")
        j = self.assert_json(self.c.post("/v1/users", {"name": name, "display_name": "Al Ice é😀"}), 201)
        self.assertEqual(j["id"], f"{name}@{REGION}")
        self.assertEqual(j["name"], name)
        self.assertEqual(j["display_name"], "Al Ice é😀")
        self.assertEqual(j["region"], REGION)
        self.assertIsInstance(j["token"], str)
        self.assertNotIn("token_hash", j)
        g = self.assert_json(self.c.get(f"/v1/users/{j['id']}"), 200)
        self.assertEqual(g["id"], j["id"])
        self.assertEqual(g["name"], name)
        self.assertEqual(g["display_name"], "Al Ice é😀")
        self.assertEqual(g["region"], REGION)
        if "created_at" in g:
            parse_time(g["created_at"])
        self.assertNotIn("token", g)
        self.assertNotIn("token_hash", g)
        self.assertNotIn(j["token"].rsplit(".", 1)[1], self.c.get(f"/v1/users/{j['id']}").body)

    def test_percent_encoded_id(self):
        a = self.user()
        # Browsers' encodeURIComponent writes '@' as %40.
        enc = a["id"].replace("@", "%40")
        self.assertEqual(self.assert_json(self.c.get(f"/v1/users/{enc}"), 200)["id"], a["id"])
        b = self.user()
        self.assert_json(self.c.put(f"/v1/following/{enc}", token=b["token"]), 200)
        self.assertEqual(self.pages(f"/v1/users/{enc}/followers"), [b["id"]])

    def test_display_name_optional(self):
        name = fresh()
        j = self.assert_json(self.c.post("/v1/users", {"name": name}), 201)
        self.assertEqual(j["id"], f"{name}@{REGION}")
        self.assertIsInstance(j["display_name"], str)

    def test_name_taken(self):
        name = fresh()
        first = self.assert_json(self.c.post("/v1/users", {"name": name}), 201)
        self.assert_error(self.c.post("/v1/users", {"name": name, "display_name": "Other"}), 409, "name_taken")
        # The first registration is untouched: its token still works.
        self.assert_json(self.c.get("/v1/timeline", token=first["token"]), 200)

    def test_name_edges(self):
        for name in ("a" * 20 + secrets.token_hex(5), "0" + secrets.token_hex(4), "_" + secrets.token_hex(4)):
            self.assertLessEqual(len(name), 30)
            j = self.assert_json(self.c.post("/v1/users", {"name": name}), 201)
            self.assertEqual(j["id"], f"{name}@{REGION}")

    def test_unknown_user(self):
        self.assert_error(self.c.get(f"/v1/users/{fresh('ghost')}@{REGION}"), 404)
        self.assert_error(self.c.get(f"/v1/users/{fresh('ghost')}@elsewhere"), 404)


class TestFollows(RegionCase):
    def test_follow_unfollow_idempotent(self):
        a, b = self.user("a"), self.user("b")
        for _ in range(2):
            j = self.assert_json(self.c.put(f"/v1/following/{b['id']}", token=a["token"]), 200)
            self.assertEqual(j, {"follower": a["id"], "followee": b["id"], "following": True})
        self.assertEqual(self.pages(f"/v1/users/{a['id']}/following"), [b["id"]])
        self.assertEqual(self.pages(f"/v1/users/{b['id']}/followers"), [a["id"]])
        self.assertEqual(self.pages(f"/v1/users/{a['id']}/followers"), [])
        for _ in range(2):
            r = self.c.delete(f"/v1/following/{b['id']}", token=a["token"])
            self.assertEqual(r.status, 204, r)
            self.assertEqual(r.body, "")
            self.assertEqual(r.headers.get("access-control-allow-origin"), "*")
        self.assertEqual(self.pages(f"/v1/users/{a['id']}/following"), [])
        self.assertEqual(self.pages(f"/v1/users/{b['id']}/followers"), [])
        # Follow again after the unfollow.
        self.follow(a["token"], b["id"])
        self.assertEqual(self.pages(f"/v1/users/{b['id']}/followers"), [a["id"]])

    def test_list_cursor_survives_unfollow(self):
        hub = self.user("hub")
        fans = [self.user("fan") for _ in range(5)]
        for f in fans:
            self.follow(f["token"], hub["id"])
        j = self.assert_json(self.c.get(f"/v1/users/{hub['id']}/followers?limit=2"), 200)
        first = j["items"]
        by_id = {f["id"]: f for f in fans}
        # The follower the cursor points at leaves before the next page.
        self.assertEqual(self.c.delete(f"/v1/following/{hub['id']}", token=by_id[first[-1]]["token"]).status, 204)
        rest = self.pages(f"/v1/users/{hub['id']}/followers", limit=2, cursor=j["next"])
        self.assertEqual(sorted(first + rest), sorted(by_id))
        self.assertEqual(len(set(first + rest)), 5)

    def test_follow_unknown_and_self(self):
        a = self.user()
        self.assert_error(self.c.put(f"/v1/following/{fresh('ghost')}@{REGION}", token=a["token"]), 404)
        self.assert_error(self.c.put(f"/v1/following/{a['id']}", token=a["token"]), 400)
        self.assertEqual(self.pages(f"/v1/users/{a['id']}/following"), [])

    def test_lists_unknown_user(self):
        self.assert_error(self.c.get(f"/v1/users/{fresh('ghost')}@{REGION}/following"), 404)
        self.assert_error(self.c.get(f"/v1/users/{fresh('ghost')}@{REGION}/followers"), 404)

    def test_pagination(self):
        hub = self.user("hub")
        fans = [self.user("fan") for _ in range(7)]
        idols = [self.user("idol") for _ in range(5)]
        for f in fans:
            self.follow(f["token"], hub["id"])
        for i in idols:
            self.follow(hub["token"], i["id"])
        for limit in (1, 2, 3, 7, 100):
            followers = self.pages(f"/v1/users/{hub['id']}/followers", limit=limit)
            self.assertEqual(len(followers), len(set(followers)), "overlap between pages")
            self.assertEqual(set(followers), {f["id"] for f in fans})
            following = self.pages(f"/v1/users/{hub['id']}/following", limit=limit)
            self.assertEqual(len(following), len(set(following)), "overlap between pages")
            self.assertEqual(set(following), {i["id"] for i in idols})
        # Default limit (20) covers them in one page.
        j = self.assert_json(self.c.get(f"/v1/users/{hub['id']}/followers"), 200)
        self.assertEqual(len(j["items"]), 7)
        self.assertIsNone(j["next"])
        # An unfollow in the middle of the list leaves the others.
        self.assertEqual(self.c.delete(f"/v1/following/{hub['id']}", token=fans[3]["token"]).status, 204)
        self.assertEqual(set(self.pages(f"/v1/users/{hub['id']}/followers", limit=2)),
                         {f["id"] for f in fans} - {fans[3]["id"]})


class TestPosts(RegionCase):
    def test_create_get(self):
        a = self.user()
        text = 'hello "world" \\ </script> \n tab\t é 😀 ✓'
        p = self.assert_json(self.c.post("/v1/posts", {"text": text}, token=a["token"]), 201)
        self.check_post(p, a["id"], text)
        g = self.assert_json(self.c.get(f"/v1/posts/{p['id']}"), 200)
        self.check_post(g, a["id"], text)
        self.assertEqual(g["id"], p["id"])
        self.assertEqual(g["created_at"], p["created_at"])
        # The same text sent as raw UTF-8 rather than \u escapes.
        raw = json.dumps({"text": text}, ensure_ascii=False).encode()
        r = self.c.post("/v1/posts", token=a["token"], raw=raw,
                        headers={"Content-Type": "application/json; charset=utf-8"})
        self.check_post(self.assert_json(r, 201), a["id"], text)

    def test_ids_unique_and_ordered(self):
        a = self.user()
        ps = [self.post(a["token"], f"n{i}") for i in range(5)]
        self.assertEqual(len({p["id"] for p in ps}), 5)
        times = [parse_time(p["created_at"]) for p in ps]
        self.assertEqual(times, sorted(times))

    def test_idempotency_key(self):
        a, b = self.user("a"), self.user("b")
        key = "k-" + secrets.token_hex(8)
        p1 = self.assert_json(self.c.post("/v1/posts", {"text": "once"}, token=a["token"],
                                          headers={"Idempotency-Key": key}), 201)
        p2 = self.assert_json(self.c.post("/v1/posts", {"text": "once"}, token=a["token"],
                                          headers={"Idempotency-Key": key}), 201)
        self.assertEqual(p1, p2)
        other = self.post(a["token"], "once", headers={"Idempotency-Key": key + "x"})
        self.assertNotEqual(other["id"], p1["id"])
        self.assertEqual(self.profile_ids(a["id"]), [other["id"], p1["id"]])
        # Keys belong to their user: b's same key makes b's own post.
        pb = self.post(b["token"], "once", headers={"Idempotency-Key": key})
        self.assertNotEqual(pb["id"], p1["id"])
        self.assertEqual(pb["author"], b["id"])
        # The same body spelled differently is the same request...
        p3 = self.assert_json(self.c.post("/v1/posts", raw=b'{ "text" : "\\u006fnce" }',
                                          headers={"Idempotency-Key": key,
                                                   "Content-Type": "application/json"},
                                          token=a["token"]), 201)
        self.assertEqual(p3, p1)
        # ...another body under the key is a mistake: 422, and no post.
        r = self.c.post("/v1/posts", {"text": "twice"}, token=a["token"], headers={"Idempotency-Key": key})
        self.assert_error(r, 422, "idempotency_key_reused")
        self.assertEqual(self.profile_ids(a["id"]), [other["id"], p1["id"]])

    def test_idempotency_key_concurrent(self):
        a = self.user()
        key = secrets.token_hex(8)
        results, errors = [], []

        def send():
            try:
                cl = harness.Client(self.region.port)
                results.append(cl.post("/v1/posts", {"text": "race"}, token=a["token"],
                                       headers={"Idempotency-Key": key}))
                cl.close()
            except Exception as e:  # reported below
                errors.append(e)
        threads = [threading.Thread(target=send) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        self.assertEqual(errors, [])
        self.assertEqual([r.status for r in results], [201] * 8, results)
        self.assertEqual(len({r.json["id"] for r in results}), 1)
        self.assertEqual(len(self.profile_ids(a["id"])), 1)

    def test_delete(self):
        a, b = self.user("a"), self.user("b")
        p = self.post(a["token"], "to be deleted")
        keep = self.post(a["token"], "kept")
        self.assert_error(self.c.delete(f"/v1/posts/{p['id']}", token=b["token"]), 403, "forbidden")
        self.assert_json(self.c.get(f"/v1/posts/{p['id']}"), 200)
        r = self.c.delete(f"/v1/posts/{p['id']}", token=a["token"])
        self.assertEqual(r.status, 204, r)
        self.assertEqual(r.body, "")
        self.assert_error(self.c.get(f"/v1/posts/{p['id']}"), 404)
        self.assert_error(self.c.delete(f"/v1/posts/{p['id']}", token=a["token"]), 404)
        self.assert_error(self.c.delete(f"/v1/posts/{p['id']}", token=b["token"]), 404)
        self.assertEqual(self.profile_ids(a["id"]), [keep["id"]])

    def test_get_unknown(self):
        self.assert_error(self.c.get("/v1/posts/0000000000000001-" + REGION), 404)
        self.assert_error(self.c.delete("/v1/posts/0000000000000001-" + REGION, token=self.user()["token"]), 404)

    def test_profile_pagination(self):
        a, b = self.user("a"), self.user("b")
        mine = [self.post(a["token"], f"post {i}")["id"] for i in range(7)]
        self.post(b["token"], "not in a's profile")
        newest_first = mine[::-1]
        for limit in (1, 2, 3, 7, 100):
            items = self.pages(f"/v1/users/{a['id']}/posts", limit=limit)
            self.assertEqual([p["id"] for p in items], newest_first, f"limit={limit}")
            for p in items:
                self.assertEqual(p["author"], a["id"])
                parse_time(p["created_at"])
        j = self.assert_json(self.c.get(f"/v1/users/{a['id']}/posts"), 200)
        self.assertEqual([p["id"] for p in j["items"]], newest_first)
        self.assertIsNone(j["next"])
        # Deleting from the middle leaves no gap and no ghost.
        self.assertEqual(self.c.delete(f"/v1/posts/{mine[3]}", token=a["token"]).status, 204)
        expect = [i for i in newest_first if i != mine[3]]
        self.assertEqual([p["id"] for p in self.pages(f"/v1/users/{a['id']}/posts", limit=2)], expect)

    def test_profile_cursor_survives_changes(self):
        """A page's cursor stays valid when newer posts arrive and when the
        post it points at is deleted: the rest comes with no overlap or gap."""
        a = self.user()
        mine = [self.post(a["token"], f"p{i}")["id"] for i in range(6)][::-1]
        j = self.assert_json(self.c.get(f"/v1/users/{a['id']}/posts?limit=2"), 200)
        self.assertEqual([p["id"] for p in j["items"]], mine[:2])
        self.post(a["token"], "newer than the cursor")
        self.assertEqual(self.c.delete(f"/v1/posts/{mine[1]}", token=a["token"]).status, 204)
        rest = self.pages(f"/v1/users/{a['id']}/posts", limit=2, cursor=j["next"])
        self.assertEqual([p["id"] for p in rest], mine[2:])

    def test_profile_empty_and_unknown(self):
        a = self.user()
        j = self.assert_json(self.c.get(f"/v1/users/{a['id']}/posts"), 200)
        self.assertEqual(j, {"items": [], "next": None})
        self.assert_error(self.c.get(f"/v1/users/{fresh('ghost')}@{REGION}/posts"), 404)


class TestTimeline(RegionCase):
    def test_own_and_followees_newest_first(self):
        a, b, c = self.user("a"), self.user("b"), self.user("c")
        self.follow(a["token"], b["id"])
        expect = []
        for i in range(3):
            expect.append(self.post(a["token"], f"a{i}")["id"])
            expect.append(self.post(b["token"], f"b{i}")["id"])
        self.post(c["token"], "c is not followed")
        expect.reverse()
        harness.wait_for(lambda: self.timeline_ids(a["token"]) == expect, what="a's home timeline")
        items = self.pages("/v1/timeline", token=a["token"], limit=2)
        self.assertEqual([p["id"] for p in items], expect)
        for p in items:
            parse_time(p["delivered_at"])
            parse_time(p["created_at"])
            self.assertIn(p["author"], (a["id"], b["id"]))
            self.assertEqual(p["region"], REGION)
        # b's timeline has only b's posts; c's only c's.
        harness.wait_for(lambda: len(self.timeline_ids(b["token"])) == 3, what="b's timeline")
        self.assertTrue(all(p["author"] == b["id"] for p in self.pages("/v1/timeline", token=b["token"])))

    def test_follow_backfills_and_unfollow_hides(self):
        a, b = self.user("a"), self.user("b")
        old = [self.post(b["token"], f"old {i}")["id"] for i in range(3)]
        own = self.post(a["token"], "mine")["id"]
        harness.wait_for(lambda: self.timeline_ids(a["token"]) == [own], what="own post")
        self.follow(a["token"], b["id"])
        expect = [own] + old[::-1]
        harness.wait_for(lambda: self.timeline_ids(a["token"]) == expect, what="backfill after follow")
        self.assertEqual(self.c.delete(f"/v1/following/{b['id']}", token=a["token"]).status, 204)
        harness.wait_for(lambda: self.timeline_ids(a["token"]) == [own], what="unfollow hides b's posts")
        new = self.post(b["token"], "after unfollow")["id"]
        harness.wait_for(self.fanout_drained, what="fan-out queue drained")
        self.assertNotIn(new, self.timeline_ids(a["token"]))

    def test_delete_removes_from_timeline(self):
        a, b = self.user("a"), self.user("b")
        self.follow(a["token"], b["id"])
        p = self.post(b["token"], "soon gone")["id"]
        q = self.post(b["token"], "stays")["id"]
        harness.wait_for(lambda: self.timeline_ids(a["token"]) == [q, p], what="delivery")
        self.assertEqual(self.c.delete(f"/v1/posts/{p}", token=b["token"]).status, 204)
        harness.wait_for(lambda: self.timeline_ids(a["token"]) == [q], what="delete hides the post")

    def test_empty(self):
        a = self.user()
        self.assertEqual(self.assert_json(self.c.get("/v1/timeline", token=a["token"]), 200),
                         {"items": [], "next": None})


class TestMessages(RegionCase):
    def check_message(self, m, frm, to, text):
        for k in ("id", "from", "to", "text", "created_at", "region"):
            self.assertIn(k, m)
        self.assertEqual((m["from"], m["to"], m["text"], m["region"]), (frm, to, text, REGION))
        parse_time(m["created_at"])

    def test_send_and_read(self):
        a, b = self.user("a"), self.user("b")
        m1 = self.assert_json(self.c.post("/v1/messages", {"to": b["id"], "text": "hi b é😀"},
                                          token=a["token"]), 201)
        self.check_message(m1, a["id"], b["id"], "hi b é😀")
        m2 = self.message(b["token"], a["id"], "hi a")
        m3 = self.message(a["token"], b["id"], "how are you?")
        self.check_message(m3, a["id"], b["id"], "how are you?")
        expect = [m3["id"], m2["id"], m1["id"]]
        for me, peer in ((a, b), (b, a)):
            j = self.assert_json(self.c.get(f"/v1/messages/{peer['id']}", token=me["token"]), 200)
            self.assertEqual([m["id"] for m in j["items"]], expect)
            self.assertIsNone(j["next"])
            self.assertEqual(j["items"][0], m3)
            self.assertEqual(j["items"][2], m1)
        for limit in (1, 2):
            items = self.pages(f"/v1/messages/{b['id']}", token=a["token"], limit=limit)
            self.assertEqual([m["id"] for m in items], expect)

    def test_conversations(self):
        a, b, d = self.user("a"), self.user("b"), self.user("d")
        self.message(a["token"], b["id"], "to b")
        m2 = self.message(a["token"], d["id"], "to d")
        m3 = self.message(b["token"], a["id"], "from b")
        j = self.assert_json(self.c.get("/v1/conversations", token=a["token"]), 200)
        self.assertEqual(set(j), {"items", "next"})
        self.assertEqual([(c["peer"], c["latest"]) for c in j["items"]], [(b["id"], m3), (d["id"], m2)])
        self.assertIsNone(j["next"])
        m4 = self.message(a["token"], d["id"], "to d again")
        j = self.assert_json(self.c.get("/v1/conversations", token=a["token"]), 200)
        self.assertEqual([(c["peer"], c["latest"]) for c in j["items"]], [(d["id"], m4), (b["id"], m3)])
        self.assertEqual([c["peer"] for c in self.pages("/v1/conversations", token=a["token"], limit=1)],
                         [d["id"], b["id"]])
        jb = self.assert_json(self.c.get("/v1/conversations", token=b["token"]), 200)
        self.assertEqual([(c["peer"], c["latest"]) for c in jb["items"]], [(a["id"], m3)])
        jd = self.assert_json(self.c.get("/v1/conversations", token=d["token"]), 200)
        self.assertEqual([(c["peer"], c["latest"]) for c in jd["items"]], [(a["id"], m4)])

    def test_empty_and_errors(self):
        a = self.user()
        self.assertEqual(self.assert_json(self.c.get("/v1/conversations", token=a["token"]), 200),
                         {"items": [], "next": None})
        b = self.user()
        self.assertEqual(self.assert_json(self.c.get(f"/v1/messages/{b['id']}", token=a["token"]), 200),
                         {"items": [], "next": None})
        self.assert_error(self.c.post("/v1/messages", {"to": f"{fresh('ghost')}@{REGION}", "text": "x"},
                                      token=a["token"]), 404)
        self.assert_error(self.c.post("/v1/messages", {"to": a["id"], "text": "me"}, token=a["token"]), 400)
        self.assert_error(self.c.post("/v1/messages", {"to": "not an id", "text": "x"}, token=a["token"]), 400)

    def test_message_length(self):
        a, b = self.user("a"), self.user("b")
        self.message(a["token"], b["id"], "é" * 2000)
        self.message(a["token"], b["id"], "😀" * 2000)
        self.assert_error(self.c.post("/v1/messages", {"to": b["id"], "text": "é" * 2001}, token=a["token"]), 400)
        self.assert_error(self.c.post("/v1/messages", {"to": b["id"], "text": "a" * 2001}, token=a["token"]), 400)
        self.assertEqual(len(self.pages(f"/v1/messages/{b['id']}", token=a["token"], limit=100)), 2)


class TestRegionEndpoints(RegionCase):
    def test_region(self):
        j = self.assert_json(self.c.get("/v1/region"), 200)
        self.assertEqual(j["region"], REGION)
        self.assertEqual(j["peers"], [])
        self.assertIn("hlc", j)
        before = int(j["hlc"])
        self.user()
        self.assertGreater(int(self.assert_json(self.c.get("/v1/region"), 200)["hlc"]), before)

    def test_cluster(self):
        j = self.assert_json(self.c.get("/v1/cluster"), 200)
        self.assertIsInstance(j["regions"], list)
        for reg in j["regions"]:
            self.assertIsInstance(reg["name"], str)
            self.assertIsInstance(reg["url"], str)
        me = [reg for reg in j["regions"] if reg["name"] == REGION]
        self.assertEqual(len(me), 1, j)
        self.assertTrue(me[0]["url"].endswith(f":{self.region.port}"), j)

    def test_replication(self):
        j = self.assert_json(self.c.get("/v1/replication"), 200)
        for k in ("hlc", "outbox_depth", "fanout_depth", "peers"):
            self.assertIn(k, j)
        self.assertEqual(j["peers"], [])
        self.assertIsInstance(j["outbox_depth"], int)
        self.assertIsInstance(j["fanout_depth"], int)

    def test_digest_changes_after_write(self):
        d0 = self.assert_json(self.c.get("/v1/digest"), 200)
        self.assertRegex(d0["digest"], r"^[0-9a-f]+$")
        self.assertIsInstance(d0["records"], int)
        self.assertEqual(self.assert_json(self.c.get("/v1/digest"), 200), d0, "digest unstable without writes")
        a = self.user()
        d1 = self.assert_json(self.c.get("/v1/digest"), 200)
        self.assertNotEqual(d1["digest"], d0["digest"])
        self.assertEqual(d1["records"], d0["records"] + 1)
        p = self.post(a["token"], "x")
        d2 = self.assert_json(self.c.get("/v1/digest"), 200)
        self.assertNotEqual(d2["digest"], d1["digest"])
        self.assertEqual(self.c.delete(f"/v1/posts/{p['id']}", token=a["token"]).status, 204)
        d3 = self.assert_json(self.c.get("/v1/digest"), 200)
        self.assertNotEqual(d3["digest"], d2["digest"])
        self.assertEqual(d3["records"], d2["records"], "a tombstone is still a record")

    def test_health(self):
        r = self.c.get("/health")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.headers.get("access-control-allow-origin"), "*")

    def test_metrics(self):
        self.c.get("/health")
        self.c.get("/v1/definitely-not-a-route")
        r = self.c.get("/metrics")
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.headers.get("content-type", "").startswith("text/plain"), r.headers)
        sample = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="[^"]*",?)*\})? '
                            r'[-+]?([0-9.]+([eE][-+]?[0-9]+)?|Inf|NaN)$')
        for line in r.body.splitlines():
            if line and not line.startswith("#"):
                self.assertRegex(line, sample)
        self.assertRegex(r.body, r'(?m)^driftfeed_http_requests_total\{route="health",status="200"\} [1-9]\d*$')
        self.assertRegex(r.body, r'(?m)^driftfeed_http_requests_total\{route="[a-z_]+",status="404"\} [1-9]\d*$')
        self.assertIn("# TYPE driftfeed_http_requests_total counter", r.body)
        self.assertIn("# TYPE driftfeed_http_request_seconds histogram", r.body)
        buckets = [(float(m.group(1)), int(m.group(2))) for m in re.finditer(
            r'(?m)^driftfeed_http_request_seconds_bucket\{route="health",le="([0-9.e+-]+)"\} (\d+)$', r.body)]
        self.assertTrue(buckets)
        counts = [n for _, n in sorted(buckets)]
        self.assertEqual(counts, sorted(counts), "histogram buckets must be cumulative")
        inf = re.search(r'(?m)^driftfeed_http_request_seconds_bucket\{route="health",le="\+Inf"\} (\d+)$', r.body)
        count = re.search(r'(?m)^driftfeed_http_request_seconds_count\{route="health"\} (\d+)$', r.body)
        self.assertTrue(inf and count)
        self.assertEqual(inf.group(1), count.group(1))
        self.assertGreaterEqual(int(inf.group(1)), counts[-1])
        self.assertRegex(r.body, r'(?m)^driftfeed_http_request_seconds_sum\{route="health"\} [0-9.]+$')

    def test_metrics_memory(self):
        # Where the memory is, by owner, and the table files RocksDB has live,
        # which are the data directory's (a compaction may be replacing some
        # at any moment: polled until the two agree).
        def gauges():
            r = self.c.get("/metrics")
            self.assertEqual(r.status, 200, r)
            parts = {m.group(1): int(m.group(2)) for m in re.finditer(
                r'(?m)^driftfeed_memory_bytes\{part="(\w+)"\} (\d+)$', r.body)}
            files = re.search(r'(?m)^driftfeed_table_files (\d+)$', r.body)
            self.assertTrue(files, r.body)
            return parts, int(files.group(1))

        def files_agree():
            n = gauges()[1]
            on_disk = len([f for f in os.listdir(self.region.data) if f.endswith(".sst")])
            return (n,) if n == on_disk else None

        a = self.user("mem")
        for i in range(50):
            self.post(a["token"], f"memory {i}")
        parts, _ = gauges()
        self.assertEqual(set(parts), {"memtables", "table_readers", "block_cache",
                                      "block_cache_pinned", "malloc_in_use", "malloc_free"})
        self.assertGreater(parts["memtables"], 0)  # the posts just written
        if parts["malloc_in_use"]:  # 0 where malloc is not glibc's (sanitizer builds)
            self.assertGreater(parts["malloc_in_use"], parts["memtables"])
        harness.wait_for(files_agree, 10, what="table-file gauge = .sst files on disk")
        self.region.restart()  # flushes every memtable on the way down
        (files,) = harness.wait_for(files_agree, 10, what="table-file gauge = .sst files after restart")
        self.assertGreater(files, 0)

    def test_demo_page(self):
        r = self.c.get("/")
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.headers.get("content-type", "").startswith("text/html"), r.headers)
        self.assertIn("<html", r.body.lower())
        self.assertIn("app.js", r.body)
        js = self.c.get("/app.js")
        self.assertEqual(js.status, 200)
        self.assertIn("javascript", js.headers.get("content-type", ""))
        for bad in ("/.env", "/..%2f..%2fetc%2fpasswd", "/%2e%2e", "/nope.html"):
            self.assert_error(self.c.get(bad), 404)

    def test_cors(self):
        r = self.c.request("OPTIONS", "/v1/posts", headers={
            "Origin": "http://127.0.0.1:9999", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, idempotency-key"})
        self.assertIn(r.status, (200, 204), r)
        self.assertEqual(r.headers.get("access-control-allow-origin"), "*")
        methods = {m.strip() for m in r.headers.get("access-control-allow-methods", "").split(",")}
        self.assertTrue({"GET", "POST", "PUT", "DELETE"} <= methods, methods)
        allowed = {h.strip().lower() for h in r.headers.get("access-control-allow-headers", "").split(",")}
        self.assertTrue({"authorization", "content-type", "idempotency-key"} <= allowed, allowed)
        a = self.user()
        for resp in (self.c.get("/v1/region"), self.c.get(f"/v1/users/{a['id']}"),
                     self.c.post("/v1/posts", {"text": "x"}, token=a["token"]),
                     self.c.get("/v1/timeline"), self.c.get("/v1/nope")):
            self.assertEqual(resp.headers.get("access-control-allow-origin"), "*", resp)

    def test_request_id_is_echoed(self):
        a = self.user()
        for method, path, token, want in (("GET", "/v1/timeline", a["token"], 200),
                                          ("GET", "/v1/timeline", None, 401),
                                          ("GET", "/health", None, 200)):
            r = self.c.request(method, path, token=token, headers={"X-Request-Id": "req-42.a"})
            self.assertEqual(r.status, want, r)
            self.assertEqual(r.headers.get("x-request-id"), "req-42.a", r)
        # Only short, printable ids come back; the request is served either way.
        for bad in ("x" * 129, "a\tb", "caf\u00e9"):
            with self.subTest(bad=bad[:10]):
                r = self.c.request("GET", "/health", headers={"X-Request-Id": bad})
                self.assertEqual(r.status, 200, r)
                self.assertIsNone(r.headers.get("x-request-id"), r)


# ==== 2. Bad input ======================================================================

class TestBadInput(RegionCase):
    def test_malformed_json(self):
        a = self.user()
        for raw in (b'{"name":', b"{", b"", b"nul", b'{"text": "x",}', b"{'text': 'x'}",
                    b'{"text":"\xff\xfe"}', b'{"text":"x"} trailing', b'{"text":"a\x00"}'):
            with self.subTest(raw=raw):
                hdr = {"Content-Type": "application/json"}
                self.assert_error(self.c.post("/v1/users", raw=raw, headers=hdr), 400)
                self.assert_error(self.c.post("/v1/posts", raw=raw, headers=hdr, token=a["token"]), 400)
                self.assert_error(self.c.post("/v1/messages", raw=raw, headers=hdr, token=a["token"]), 400)
        self.assertEqual(self.profile_ids(a["id"]), [])

    def test_non_object_body(self):
        a = self.user()
        for body in ([], ["text"], "text", 42, None, True):
            with self.subTest(body=body):
                raw = json.dumps(body).encode()
                hdr = {"Content-Type": "application/json"}
                self.assert_error(self.c.post("/v1/users", raw=raw, headers=hdr), 400)
                self.assert_error(self.c.post("/v1/posts", raw=raw, headers=hdr, token=a["token"]), 400)
                self.assert_error(self.c.post("/v1/messages", raw=raw, headers=hdr, token=a["token"]), 400)

    def test_wrong_types_and_missing_fields(self):
        a, b = self.user("a"), self.user("b")
        cases = [
            ("/v1/users", {"name": 5}), ("/v1/users", {"name": None}), ("/v1/users", {"name": ["x"]}),
            ("/v1/users", {"name": {"n": 1}}), ("/v1/users", {"name": True}),
            ("/v1/users", {"name": fresh(), "display_name": 5}),
            ("/v1/users", {"name": fresh(), "display_name": None}),
            ("/v1/users", {}), ("/v1/users", {"display_name": "x"}), ("/v1/users", {"Name": fresh()}),
            ("/v1/posts", {"text": 5}), ("/v1/posts", {"text": None}), ("/v1/posts", {"text": True}),
            ("/v1/posts", {"text": ["x"]}), ("/v1/posts", {"text": {"t": "x"}}), ("/v1/posts", {"text": 1.5}),
            ("/v1/posts", {}), ("/v1/posts", {"body": "x"}),
            ("/v1/messages", {"to": b["id"], "text": 5}), ("/v1/messages", {"to": 5, "text": "x"}),
            ("/v1/messages", {"to": [b["id"]], "text": "x"}), ("/v1/messages", {"to": None, "text": "x"}),
            ("/v1/messages", {"text": "x"}), ("/v1/messages", {"to": b["id"]}), ("/v1/messages", {}),
        ]
        for path, body in cases:
            with self.subTest(path=path, body=body):
                self.assert_error(self.c.post(path, body, token=a["token"]), 400)
        self.assertEqual(self.profile_ids(a["id"]), [])
        self.assertEqual(self.pages(f"/v1/messages/{b['id']}", token=a["token"]), [])

    def test_empty_whitespace_and_long_text(self):
        a, b = self.user("a"), self.user("b")
        for text in ("", " ", "   ", "\n", "\t\r\n "):
            with self.subTest(text=text):
                self.assert_error(self.c.post("/v1/posts", {"text": text}, token=a["token"]), 400)
                self.assert_error(self.c.post("/v1/messages", {"to": b["id"], "text": text},
                                              token=a["token"]), 400)
        ok = [self.post(a["token"], t) for t in ("a" * 500, "é" * 500, "😀" * 500, "e\u0301" * 250)]
        for p in ok:
            self.assertEqual(self.assert_json(self.c.get(f"/v1/posts/{p['id']}"), 200)["text"], p["text"])
        for text in ("a" * 501, "é" * 501, "😀" * 501, "a" * 5000):
            with self.subTest(n=len(text)):
                self.assert_error(self.c.post("/v1/posts", {"text": text}, token=a["token"]), 400)
        self.assertEqual(len(self.profile_ids(a["id"])), len(ok))

    def test_bad_names(self):
        for name in ("Alice", "al ice", "al-ice", "al.ice", "é", "a" * 31, "alice@paris", "../x",
                     "a\u0000b", "ａ", "\u00e9t\u00e9", " a", "a/b"):
            with self.subTest(name=name):
                self.assert_error(self.c.post("/v1/users", {"name": name}), 400)
        self.assert_error(self.c.post("/v1/users", {"name": fresh(), "display_name": "d" * 1000}), 400)

    def test_body_too_large_content_length(self):
        a = self.user()
        # The answer comes as soon as the declared length is seen: no body is sent.
        for path, tok in (("/v1/users", None), ("/v1/posts", a["token"]), ("/v1/messages", a["token"])):
            with self.subTest(path=path):
                head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                        f"Content-Length: {BODY_MAX + 1}\r\n"
                        + (f"Authorization: Bearer {tok}\r\n" if tok else "") + "\r\n").encode()
                status, headers, body = raw_exchange(self.region.port, head)
                self.assertEqual(status, 413, body)
                self.check_raw_error(headers, body)
                self.assert_healthy()
        # A body that is actually sent, just over the cap.
        r = self.c.post("/v1/posts", token=a["token"], raw=b'{"text":"' + b"a" * BODY_MAX + b'"}',
                        headers={"Content-Type": "application/json"})
        self.assert_error(r, 413)
        self.assertEqual(self.profile_ids(a["id"]), [])

    def test_body_too_large_chunked(self):
        a = self.user()
        for size in (BODY_MAX + 1, 3 * BODY_MAX):
            with self.subTest(size=size):
                body = b'{"text":"' + b"a" * (size - 11) + b'"}'
                self.assertEqual(len(body), size)
                head = (f"POST /v1/posts HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                        f"Transfer-Encoding: chunked\r\nAuthorization: Bearer {a['token']}\r\n\r\n").encode()
                chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 8000]), body[i:i + 8000])
                                  for i in range(0, len(body), 8000)) + b"0\r\n\r\n"
                status, headers, rbody = raw_exchange(self.region.port, head + chunks)
                self.assertEqual(status, 413, rbody)
                self.check_raw_error(headers, rbody)
                self.assert_healthy()
        self.assertEqual(self.profile_ids(a["id"]), [])

    def test_body_at_the_cap_is_accepted(self):
        a = self.user()
        start = b'{"text":"exactly at the cap"'
        body = start + b" " * (BODY_MAX - len(start) - 1) + b"}"
        self.assertEqual(len(body), BODY_MAX)
        r = self.c.post("/v1/posts", token=a["token"], raw=body, headers={"Content-Type": "application/json"})
        self.assertEqual(self.assert_json(r, 201)["text"], "exactly at the cap")
        # ... and chunked.
        head = (f"POST /v1/posts HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"Transfer-Encoding: chunked\r\nAuthorization: Bearer {a['token']}\r\n\r\n").encode()
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 5000]), body[i:i + 5000])
                          for i in range(0, len(body), 5000)) + b"0\r\n\r\n"
        status, _, rbody = raw_exchange(self.region.port, head + chunks)
        self.assertEqual(status, 201, rbody)

    def test_header_room(self):
        # A connection's memory holds ~14 KB of request headers (README);
        # beyond that the request is refused and the region keeps serving.
        a = self.user()
        for size, want in ((10_000, 201), (20_000, 431)):
            with self.subTest(size=size):
                body = b'{"text":"big header"}'
                head = (f"POST /v1/posts HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                        f"Authorization: Bearer {a['token']}\r\nX-Filler: {'f' * size}\r\n"
                        f"Content-Length: {len(body)}\r\n\r\n").encode()
                status, _, rbody = raw_exchange(self.region.port, head + body)
                self.assertEqual(status, want, rbody)
                self.assert_healthy()
        self.assertEqual(len(self.profile_ids(a["id"])), 1)

    def check_raw_error(self, headers, body):
        self.assertTrue(headers.get("content-type", "").startswith("application/json"), headers)
        self.assertEqual(headers.get("access-control-allow-origin"), "*")
        j = json.loads(body)
        self.assertEqual(set(j), {"error"})
        self.assertEqual(set(j["error"]), {"code", "message"})

    def test_content_type(self):
        a = self.user()
        raw_user = json.dumps({"name": fresh()}).encode()
        raw_post = b'{"text":"typed"}'
        for ctype in ("text/plain", "application/x-www-form-urlencoded", "application/jsonp",
                      "text/json", "multipart/form-data; boundary=x", None):
            with self.subTest(ctype=ctype):
                hdr = {"Content-Type": ctype} if ctype else {}
                self.assert_error(self.c.post("/v1/users", raw=raw_user, headers=hdr), 415)
                self.assert_error(self.c.post("/v1/posts", raw=raw_post, headers=hdr, token=a["token"]), 415)
                self.assert_error(self.c.post("/v1/messages", raw=raw_post, headers=hdr, token=a["token"]), 415)
        for ctype in ("application/json; charset=utf-8", "Application/JSON"):
            with self.subTest(ctype=ctype):
                r = self.c.post("/v1/posts", raw=raw_post, headers={"Content-Type": ctype}, token=a["token"])
                self.assert_json(r, 201)

    def test_unknown_route(self):
        for path in ("/v1/nope", "/v2/users", "/v1/users/a@paris/nope", "/v1/users/a@paris/posts/x",
                     "/v1/posts/x/y", "/v1", "/v1/", "/v1/users/", "/a/b/c/d/e/f/g/h/i/j", "/v1//users"):
            with self.subTest(path=path):
                self.assert_error(self.c.get(path), 404)
        self.assert_error(self.c.post("/v1/nope", {"x": 1}), 404)

    def test_wrong_method(self):
        cases = [("PATCH", "/v1/posts", {"POST"}), ("GET", "/v1/posts", {"POST"}),
                 ("DELETE", "/v1/timeline", {"GET"}), ("POST", "/v1/timeline", {"GET"}),
                 ("PUT", f"/v1/posts/0000000000000001-{REGION}", {"GET", "DELETE"}),
                 ("POST", f"/v1/users/x@{REGION}", {"GET"}), ("GET", f"/v1/following/x@{REGION}", {"PUT", "DELETE"}),
                 ("PUT", "/v1/messages", {"POST"}), ("DELETE", "/v1/conversations", {"GET"}),
                 ("POST", "/health", {"GET"}), ("PUT", "/metrics", {"GET"}), ("DELETE", "/v1/digest", {"GET"})]
        for method, path, allow in cases:
            with self.subTest(method=method, path=path):
                r = self.c.request(method, path)
                self.assert_error(r, 405)
                got = {m.strip() for m in r.headers.get("allow", "").split(",") if m.strip()}
                self.assertTrue(allow <= got, f"Allow: {r.headers.get('allow')!r}, want {allow}")
                self.assertNotIn(method, got)

    def test_bad_limit(self):
        a, b = self.user("a"), self.user("b")
        lists = [(f"/v1/users/{a['id']}/posts", None), (f"/v1/users/{a['id']}/following", None),
                 (f"/v1/users/{a['id']}/followers", None), ("/v1/timeline", a["token"]),
                 (f"/v1/messages/{b['id']}", a["token"]), ("/v1/conversations", a["token"])]
        for path, tok in lists:
            for limit in ("0", "101", "-1", "abc", "1.5", "", "1e2", "10x", "99999999999999999999", "0x10",
                          "%205", "+5", "-0", "5%20"):
                with self.subTest(path=path, limit=limit):
                    self.assert_error(self.c.get(f"{path}?limit={limit}", token=tok), 400)
            for limit in ("1", "100"):
                with self.subTest(path=path, limit=limit):
                    self.assert_json(self.c.get(f"{path}?limit={limit}", token=tok), 200)

    def test_bad_cursor(self):
        a, b = self.user("a"), self.user("b")
        lists = [(f"/v1/users/{a['id']}/posts", None), (f"/v1/users/{a['id']}/following", None),
                 (f"/v1/users/{a['id']}/followers", None), ("/v1/timeline", a["token"]),
                 (f"/v1/messages/{b['id']}", a["token"]), ("/v1/conversations", a["token"])]
        for path, tok in lists:
            for cursor in ("garbage", "%21%21%21", "x" * 500, "zzzzzzzzzzzzzzzz-paris~1",
                           "0000000000000001-PARIS~1", "~", "0000000000000001-paris~-1@"):
                with self.subTest(path=path, cursor=cursor):
                    self.assert_error(self.c.get(f"{path}?cursor={cursor}", token=tok), 400)

    def test_malformed_ids_in_paths(self):
        a = self.user()
        bad_users = ("nope", "UPPER@paris", "a@", "@paris", "a@b@c", "a%20b@paris", "a@PARIS",
                     "x" * 31 + "@paris", "a@" + "r" * 33, "a.b@paris")
        for uid in bad_users:
            with self.subTest(uid=uid):
                self.assert_error(self.c.get(f"/v1/users/{uid}"), 400)
                self.assert_error(self.c.get(f"/v1/users/{uid}/posts"), 400)
                self.assert_error(self.c.get(f"/v1/users/{uid}/following"), 400)
                self.assert_error(self.c.get(f"/v1/users/{uid}/followers"), 400)
                self.assert_error(self.c.put(f"/v1/following/{uid}", token=a["token"]), 400)
                self.assert_error(self.c.delete(f"/v1/following/{uid}", token=a["token"]), 400)
                self.assert_error(self.c.get(f"/v1/messages/{uid}", token=a["token"]), 400)
        for pid in ("nope", "123", "zzzzzzzzzzzzzzzz-paris", "0000000000000001", "0000000000000001-",
                    "0000000000000001-PARIS", "000000000000001-paris", "0000000000000001_paris",
                    "0000000000000001-" + "r" * 33):
            with self.subTest(pid=pid):
                self.assert_error(self.c.get(f"/v1/posts/{pid}"), 400)
                self.assert_error(self.c.delete(f"/v1/posts/{pid}", token=a["token"]), 400)

    def test_undecodable_path_params(self):
        """Bytes that are not UTF-8 in a decoded path parameter: a 400 in the
        documented shape whose body is itself valid UTF-8 (an error message
        that echoed them once crashed the region), for every route with one."""
        a = self.user()
        params = ("%FF", "%C0%AF", "%ED%A0%80", "a%00b", "a" + "%C3%A9" * 300, "%F4%90%80%80")
        for p in params:
            routes = [("GET", f"/v1/users/{p}"), ("GET", f"/v1/users/{p}/posts"),
                      ("GET", f"/v1/users/{p}/following"), ("GET", f"/v1/users/{p}/followers"),
                      ("PUT", f"/v1/following/{p}"), ("DELETE", f"/v1/following/{p}"),
                      ("GET", f"/v1/messages/{p}"), ("GET", f"/v1/posts/{p}"),
                      ("DELETE", f"/v1/posts/{p}")]
            for method, path in routes:
                with self.subTest(method=method, path=path[:60]):
                    r = self.c.request(method, path, token=a["token"])
                    self.assertNotIn("\ufffd", r.body, "the answer is not valid UTF-8")
                    j = self.assert_error(r, 400, "invalid_id")
                    self.assertLessEqual(len(j["error"]["message"]), 200)

    HOSTILE = ("%FF", "%C0%AF", "%ED%A0%80", "a%00b", "%00", "..", "../..", "a%2Fb",
               "a%40b%40c", "%0A%0D", "%22%5C", "a" + "%C3%A9" * 300, "x" * 4000)

    def test_hostile_query_params(self):
        """Every query parameter of every route, with each input class:
        invalid UTF-8, overlong and surrogate encodings, %00, "..", the
        separators the storage keys use, long values. A clear 4xx, valid
        UTF-8 JSON, and the region keeps serving; a stream with a value it
        cannot resume from starts fresh."""
        a = self.user()
        uid = a["id"]
        lists = [f"/v1/users/{uid}/posts", f"/v1/users/{uid}/following",
                 f"/v1/users/{uid}/followers", "/v1/timeline", f"/v1/messages/{uid}",
                 "/v1/conversations"]
        for v in self.HOSTILE:
            for path in lists:
                for q in ("limit", "cursor"):
                    with self.subTest(path=path, q=q, v=v[:40]):
                        r = self.c.get(f"{path}?{q}={v}", token=a["token"])
                        self.assertNotIn("\ufffd", r.body)
                        self.assertGreaterEqual(r.status, 400, r)
                        self.assertLess(r.status, 500, r)
                        self.assert_error(r, r.status)
            with self.subTest(q="access_token", v=v[:40]):
                r = self.c.get(f"/v1/stream?access_token={v}")
                self.assert_error(r, 401)
            with self.subTest(q="last_event_id", v=v[:40]):
                status = self.stream_status(f"/v1/stream?access_token={a['token']}&last_event_id={v}")
                self.assertEqual(status, 200)
                self.assert_healthy()

    def stream_status(self, path):
        """The status of a stream request, read from its first line and the
        stream closed right away (raw_exchange would wait for the end of a
        stream that does not end)."""
        with socket.create_connection(("127.0.0.1", self.region.port), timeout=5) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            return harness.read_status(s)

    def test_oversized_ids(self):
        """A 64 KiB path parameter or query value: refused whole, and the
        region keeps serving. It is over libmicrohttpd's per-connection
        memory, so the 414 is its own (HTML) page, sent before any handler
        runs; ids up to that size get the JSON 400 (test_undecodable...)."""
        a = self.user()
        big = "a" * 65536
        for method, path in (("GET", f"/v1/posts/{big}"), ("GET", f"/v1/users/{big}"),
                             ("PUT", f"/v1/following/{big}"), ("GET", f"/v1/timeline?cursor={big}")):
            with self.subTest(method=method, path=path[:30]):
                r = self.c.request(method, path, token=a["token"])
                self.assertEqual(r.status, 414, r)
                self.assert_healthy()

    def test_nul_escape_does_not_cut_a_parameter(self):
        """%00 once decoded to a NUL that ended the parameter early, so
        DELETE /v1/posts/<id>%00x deleted <id>. It now stays the three
        characters it was: an id that names nothing, and a 400."""
        a, b = self.user("a"), self.user("b")
        post = self.assert_json(self.c.post("/v1/posts", {"text": "keep me"}, token=a["token"]), 201)
        pid = post["id"]
        self.assert_error(self.c.delete(f"/v1/posts/{pid}%00x", token=a["token"]), 400)
        self.assert_error(self.c.delete(f"/v1/posts/{pid}%00", token=a["token"]), 400)
        self.assertEqual(self.assert_json(self.c.get(f"/v1/posts/{pid}"), 200)["text"], "keep me")
        self.assert_error(self.c.put(f"/v1/following/{b['id']}%00x", token=a["token"]), 400)
        self.assertEqual(self.assert_json(self.c.get(f"/v1/users/{a['id']}/following"), 200)["items"], [])
        self.assert_error(self.c.get(f"/v1/users/{a['id']}%00"), 400)
        # Query parameters go through the same unescaper: limit=5%00 once read as 5.
        self.assert_error(self.c.get(f"/v1/users/{a['id']}/posts?limit=5%00"), 400, "invalid_limit")
        self.assert_error(self.c.get(f"/v1/users/{a['id']}/posts?limit=5%00x"), 400, "invalid_limit")
        self.assertEqual(len(self.assert_json(self.c.get(f"/v1/users/{a['id']}/posts?limit=%31"), 200)["items"]), 1)
        # An escaped ordinary character still decodes.
        self.assertEqual(self.assert_json(self.c.get(f"/v1/posts/{pid[:-1]}%{ord(pid[-1]):02X}"), 200)["id"], pid)

    def test_duplicate_keys(self):
        a, b = self.user("a"), self.user("b")
        hdr = {"Content-Type": "application/json"}
        n = fresh()
        self.assert_error(self.c.post("/v1/users", raw=f'{{"name":"{n}","name":"{n}x"}}'.encode(), headers=hdr), 400)
        self.assert_error(self.c.get(f"/v1/users/{n}@{REGION}"), 404)
        self.assert_error(self.c.post("/v1/posts", raw=b'{"text":"a","text":"b"}', headers=hdr,
                                      token=a["token"]), 400)
        self.assert_error(self.c.post("/v1/messages", raw=f'{{"to":"{b["id"]}","text":"a","text":"b"}}'.encode(),
                                      headers=hdr, token=a["token"]), 400)
        self.assertEqual(self.profile_ids(a["id"]), [])

    def test_bad_idempotency_key(self):
        a = self.user()
        self.assert_error(self.c.post("/v1/posts", {"text": "x"}, token=a["token"],
                                      headers={"Idempotency-Key": "k" * 129}), 400)
        self.assertEqual(self.profile_ids(a["id"]), [])

    def test_garbage_request_line(self):
        # Bytes that are not HTTP: the server answers 4xx or closes, and keeps serving.
        for junk in (b"GARBAGE\r\n\r\n", b"GET /health HTTP/9.9\r\n\r\n", b"\x01\x02\r\n\r\n",
                     b"GET " + b"/x" * 10000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"):
            with self.subTest(junk=junk[:20]):
                try:
                    status, _, _ = raw_exchange(self.region.port, junk)
                    self.assertGreaterEqual(status, 400)
                except (ConnectionError, ValueError):
                    pass  # closed without an answer
                self.assert_healthy()
        # A request line starting with NUL gets no answer from libmicrohttpd (the
        # connection idles until --timeout); it must not hold up anyone else.
        with socket.create_connection(("127.0.0.1", self.region.port), timeout=10) as s:
            s.sendall(b"\x00\x01\x02\r\n\r\n")
            self.assert_healthy()
            other = harness.Client(self.region.port)
            self.assert_json(other.get("/v1/region"), 200)
            other.close()

    def test_hostile_json(self):
        a = self.user()
        hdr = {"Content-Type": "application/json"}
        for raw in (b'{"text":' + b"[" * 30000 + b"]" * 30000 + b"}", b"[" * 60000,
                    b'{"text":"\\ud800"}', b'{"text":"\xc0\xaf"}', b'{"text":"\xed\xa0\x80"}',
                    b'{"text":1e999}', b'{"text":"x","text":"y","' + b"k" * 60000 + b'":1}'):
            with self.subTest(raw=raw[:30]):
                r = self.c.post("/v1/posts", raw=raw, headers=hdr, token=a["token"])
                self.assert_error(r, 400)
        self.assertEqual(self.profile_ids(a["id"]), [])


def raw_exchange(port, data):
    """Sends raw bytes on a new connection and reads one response (until the
    server closes or Content-Length is read). Returns (status, headers, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        buf = b""
        while b"\r\n\r\n" not in buf:
            b = s.recv(65536)
            if not b:
                break
            buf += b
        head, sep, body = buf.partition(b"\r\n\r\n")
        if not sep:
            raise ValueError(f"no response: {buf!r}")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            headers[k.strip().lower()] = v.strip()
        want = int(headers.get("content-length", "0"))
        while len(body) < want:
            b = s.recv(65536)
            if not b:
                break
            body += b
        return status, headers, body.decode("utf-8", "replace")


# ==== 3. Auth and privacy ===============================================================

class TestAuth(RegionCase):
    def authed_requests(self, victim, post_id):
        """(method, path, body) of every call that needs a token."""
        return [("PUT", f"/v1/following/{victim}", None), ("DELETE", f"/v1/following/{victim}", None),
                ("POST", "/v1/posts", {"text": "x"}), ("DELETE", f"/v1/posts/{post_id}", None),
                ("GET", "/v1/timeline", None), ("POST", "/v1/messages", {"to": victim, "text": "x"}),
                ("GET", f"/v1/messages/{victim}", None), ("GET", "/v1/conversations", None)]

    def test_401(self):
        a, b = self.user("a"), self.user("b")
        p = self.post(b["token"], "b's post")
        secret = a["token"].rsplit(".", 1)[1]
        other_secret = b["token"].rsplit(".", 1)[1]
        ghost = f"{fresh('ghost')}@{REGION}"
        bad_auth = {
            "none": None,
            "empty bearer": "Bearer ",
            "basic": "Basic " + secret,
            "no scheme": a["token"],
            "garbage": "Bearer garbage",
            "no dot": "Bearer " + a["id"] + secret,
            "short secret": "Bearer " + a["id"] + "." + secret[:-1],
            "long secret": "Bearer " + a["token"] + "A",
            "bad id": "Bearer UPPER@paris." + secret,
            "wrong secret": "Bearer " + a["id"] + "." + ("A" * 43 if secret != "A" * 43 else "B" * 43),
            "someone else's secret": "Bearer " + a["id"] + "." + other_secret,
            "unknown user": "Bearer " + ghost + "." + secret,
            "only dot": "Bearer .",
        }
        for what, auth in bad_auth.items():
            for method, path, body in self.authed_requests(b["id"], p["id"]):
                with self.subTest(auth=what, method=method, path=path):
                    hdr = {"Authorization": auth} if auth else {}
                    r = self.c.request(method, path, body=body, headers=hdr)
                    self.assert_error(r, 401, "unauthorized")
        # Nothing happened on anyone's behalf.
        self.assert_json(self.c.get(f"/v1/posts/{p['id']}"), 200)
        self.assertEqual(self.profile_ids(a["id"]), [])
        self.assertEqual(self.pages(f"/v1/users/{a['id']}/following"), [])
        self.assertEqual(self.pages(f"/v1/users/{b['id']}/followers"), [])
        # The real token works; the scheme is case-insensitive.
        self.assert_json(self.c.get("/v1/timeline", headers={"Authorization": "bearer " + a["token"]}), 200)

    def test_403_delete_someone_elses_post(self):
        a, b = self.user("a"), self.user("b")
        p = self.post(a["token"], "a's")
        self.assert_error(self.c.delete(f"/v1/posts/{p['id']}", token=b["token"]), 403)
        self.assertEqual(self.assert_json(self.c.get(f"/v1/posts/{p['id']}"), 200)["text"], "a's")
        self.assertEqual(self.profile_ids(a["id"]), [p["id"]])

    def test_message_privacy(self):
        a, b, c = self.user("a"), self.user("b"), self.user("c")
        secret_ab = "secret-ab-" + secrets.token_hex(8)
        secret_ba = "secret-ba-" + secrets.token_hex(8)
        m1 = self.message(a["token"], b["id"], secret_ab)
        m2 = self.message(b["token"], a["id"], secret_ba)
        # C has a conversation of its own with each of them.
        mc = self.message(c["token"], a["id"], "c to a")
        self.follow(c["token"], a["id"])
        self.follow(c["token"], b["id"])
        bodies = []

        def as_c(path):
            r = self.c.get(path, token=c["token"])
            bodies.append(r.body)
            return r
        j = self.assert_json(as_c(f"/v1/messages/{a['id']}"), 200)
        self.assertEqual([m["id"] for m in j["items"]], [mc["id"]])
        j = self.assert_json(as_c(f"/v1/messages/{b['id']}"), 200)
        self.assertEqual(j["items"], [])
        j = self.assert_json(as_c("/v1/conversations"), 200)
        self.assertEqual([x["peer"] for x in j["items"]], [a["id"]])
        self.assertEqual(j["items"][0]["latest"]["id"], mc["id"])
        # Cursors naming A<->B messages do not open that conversation.
        for m in (m1, m2):
            for peer in (a, b):
                as_c(f"/v1/messages/{peer['id']}?cursor={m['id']}")
        as_c(f"/v1/conversations?cursor={mc['id']}")
        # A NUL smuggled into the peer id does not reach a pair without C.
        as_c(f"/v1/messages/{a['id']}%00{b['id']}")
        as_c(f"/v1/messages/{b['id']}%00{a['id']}")
        for m in (m1, m2):
            r = as_c(f"/v1/posts/{m['id']}")
            self.assertEqual(r.status, 404, r)
        for path in ("/v1/timeline", f"/v1/users/{a['id']}/posts", f"/v1/users/{b['id']}/posts",
                     f"/v1/users/{a['id']}", f"/v1/users/{b['id']}"):
            as_c(path)
        for body in bodies:
            self.assertNotIn(secret_ab, body)
            self.assertNotIn(secret_ba, body)
        # A user with no messages at all sees an empty conversation list.
        d = self.user("d")
        self.assertEqual(self.assert_json(self.c.get("/v1/conversations", token=d["token"]), 200),
                         {"items": [], "next": None})
        for peer in (a, b):
            r = self.c.get(f"/v1/messages/{peer['id']}", token=d["token"])
            self.assertEqual(self.assert_json(r, 200)["items"], [])
            self.assertNotIn(secret_ab, r.body)
        # A and B still see their own conversation.
        for me, peer in ((a, b), (b, a)):
            j = self.assert_json(self.c.get(f"/v1/messages/{peer['id']}", token=me["token"]), 200)
            self.assertEqual([m["text"] for m in j["items"]], [secret_ba, secret_ab])


# ==== 4. Durability =====================================================================

class TestDurability(RegionCase):
    def snapshot(self, s):
        """Everything observable about the scenario's users, as plain data."""
        a, b, c = s["a"], s["b"], s["c"]
        snap = {}
        for u in (a, b, c):
            snap["user " + u["id"]] = self.assert_json(self.c.get(f"/v1/users/{u['id']}"), 200)
            snap["following " + u["id"]] = sorted(self.pages(f"/v1/users/{u['id']}/following"))
            snap["followers " + u["id"]] = sorted(self.pages(f"/v1/users/{u['id']}/followers"))
            snap["profile " + u["id"]] = self.pages(f"/v1/users/{u['id']}/posts", limit=100)
            snap["conversations " + u["id"]] = self.pages("/v1/conversations", token=u["token"])
        for pid in s["live"]:
            snap["post " + pid] = self.assert_json(self.c.get(f"/v1/posts/{pid}"), 200)
        for pid in s["deleted"]:
            self.assertEqual(self.c.get(f"/v1/posts/{pid}").status, 404, pid)
        snap["messages a-b"] = self.pages(f"/v1/messages/{b['id']}", token=a["token"], limit=100)
        snap["messages b-a"] = self.pages(f"/v1/messages/{a['id']}", token=b["token"], limit=100)
        harness.wait_for(self.fanout_drained, what="fan-out queue drained")
        snap["timeline a"] = self.timeline_ids(a["token"])
        snap["timeline b"] = self.timeline_ids(b["token"])
        snap["digest"] = self.assert_json(self.c.get("/v1/digest"), 200)
        return snap

    def scenario(self):
        a, b, c = self.user("a"), self.user("b"), self.user("c")
        s = {"a": a, "b": b, "c": c, "live": [], "deleted": []}
        self.follow(a["token"], b["id"])
        self.follow(a["token"], c["id"])
        self.follow(b["token"], a["id"])
        s["live"].append(self.post(b["token"], "b one")["id"])
        gone = self.post(b["token"], "b two, deleted")["id"]
        s["live"].append(self.post(a["token"], "a one")["id"])
        s["live"].append(self.post(c["token"], "c one")["id"])
        s["idem_key"] = secrets.token_hex(8)
        s["idem"] = self.post(a["token"], "idempotent", headers={"Idempotency-Key": s["idem_key"]})
        s["live"].append(s["idem"]["id"])
        self.assertEqual(self.c.delete(f"/v1/posts/{gone}", token=b["token"]).status, 204)
        s["deleted"].append(gone)
        self.message(a["token"], b["id"], "dm a->b")
        self.message(b["token"], a["id"], "dm b->a")
        self.message(c["token"], a["id"], "dm c->a")
        self.assertEqual(self.c.delete(f"/v1/following/{c['id']}", token=a["token"]).status, 204)
        expect_a = [s["idem"]["id"], s["live"][1], s["live"][0]]
        harness.wait_for(lambda: self.timeline_ids(a["token"]) == expect_a, what="a's timeline settles")
        return s

    def check_same(self, before, s):
        after = self.snapshot(s)
        for k in before:
            self.assertEqual(after[k], before[k], k)
        # Tokens still work, also for writes, and the idempotency key is remembered.
        again = self.post(s["a"]["token"], "idempotent", headers={"Idempotency-Key": s["idem_key"]})
        self.assertEqual(again, s["idem"])
        self.assertEqual(self.pages(f"/v1/users/{s['a']['id']}/posts", limit=100), before["profile " + s["a"]["id"]])
        # Names stay taken.
        self.assert_error(self.c.post("/v1/users", {"name": s["a"]["name"]}), 409)

    def test_clean_restart(self):
        s = self.scenario()
        before = self.snapshot(s)
        self.region.restart()
        self.check_same(before, s)

    def test_kill_9(self):
        s = self.scenario()
        before = self.snapshot(s)
        self.region.kill()
        self.region.start()
        self.check_same(before, s)

    def test_kill_9_right_after_writes(self):
        """Writes acknowledged just before the crash survive; their fan-out resumes."""
        a, b, c = self.user("a"), self.user("b"), self.user("c")
        self.follow(a["token"], b["id"])
        old = self.post(b["token"], "before the burst")["id"]
        harness.wait_for(lambda: self.timeline_ids(a["token"]) == [old], what="first delivery")
        burst = [self.post(b["token"], f"burst {i}")["id"] for i in range(20)]
        self.follow(c["token"], b["id"])
        self.assertEqual(self.c.delete(f"/v1/posts/{old}", token=b["token"]).status, 204)
        dm = self.message(b["token"], a["id"], "last words")
        self.region.kill()
        self.region.start()
        expect = burst[::-1]
        self.assertEqual(self.profile_ids(b["id"]), expect)
        self.assertEqual(self.c.get(f"/v1/posts/{old}").status, 404)
        self.assertEqual(sorted(self.pages(f"/v1/users/{b['id']}/followers")), sorted([a["id"], c["id"]]))
        j = self.assert_json(self.c.get(f"/v1/messages/{b['id']}", token=a["token"]), 200)
        self.assertEqual(j["items"][0], dm)
        harness.wait_for(lambda: self.timeline_ids(a["token"]) == expect, what="a's timeline after the crash")
        harness.wait_for(lambda: self.timeline_ids(c["token"]) == expect, what="c's backfill after the crash")
        # And once more through a clean restart.
        digest = self.assert_json(self.c.get("/v1/digest"), 200)
        self.region.restart()
        self.assertEqual(self.assert_json(self.c.get("/v1/digest"), 200), digest)
        self.assertEqual(self.timeline_ids(a["token"]), expect)


# ==== 5. Keep-alive =====================================================================

class TestKeepAlive(RegionCase):
    def test_many_requests_one_connection(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.region.port, timeout=10)
        self.addCleanup(conn.close)

        def call(method, path, body=None, headers=None):
            hdrs = dict(headers or {})
            data = None
            if body is not None:
                data = json.dumps(body).encode()
                hdrs.setdefault("Content-Type", "application/json")
            conn.request(method, path, body=data, headers=hdrs)
            r = conn.getresponse()
            payload = r.read()
            self.assertNotEqual((r.getheader("Connection") or "").lower(), "close", (method, path, r.status))
            self.assertIsNotNone(conn.sock, "the connection was closed")
            return r.status, payload

        call("GET", "/health")
        local = conn.sock.getsockname()
        status, body = call("POST", "/v1/users", {"name": fresh("ka")})
        self.assertEqual(status, 201)
        user = json.loads(body)
        auth = {"Authorization": "Bearer " + user["token"]}
        other = self.user("kb")
        steps = [
            ("GET", f"/v1/users/{user['id']}", None, {}, 200),
            ("POST", "/v1/posts", {"text": "keep alive"}, auth, 201),
            ("PUT", f"/v1/following/{other['id']}", None, auth, 200),
            ("DELETE", f"/v1/following/{other['id']}", None, auth, 204),
            ("GET", "/v1/timeline", None, auth, 200),
            ("GET", "/v1/nope", None, {}, 404),
            ("PATCH", "/v1/posts", None, {}, 405),
            ("POST", "/v1/posts", None, {**auth, "Content-Type": "application/json"}, 400),
            ("GET", "/v1/timeline", None, {}, 401),
            ("OPTIONS", "/v1/posts", None, {}, 204),
            ("POST", "/v1/messages", {"to": other["id"], "text": "hi"}, auth, 201),
            ("GET", "/metrics", None, {}, 200),
            ("GET", "/", None, {}, 200),
        ]
        for method, path, body, headers, want in steps * 3:
            with self.subTest(method=method, path=path):
                status, _ = call(method, path, body, headers)
                self.assertEqual(status, want)
                self.assertEqual(conn.sock.getsockname(), local, "a new connection was opened")

    def test_two_connections_interleaved(self):
        c1 = http.client.HTTPConnection("127.0.0.1", self.region.port, timeout=10)
        c2 = http.client.HTTPConnection("127.0.0.1", self.region.port, timeout=10)
        self.addCleanup(c1.close)
        self.addCleanup(c2.close)
        socks = []
        for i in range(10):
            for conn in (c1, c2):
                conn.request("GET", "/v1/region")
                r = conn.getresponse()
                self.assertEqual(r.status, 200)
                self.assertEqual(json.loads(r.read())["region"], REGION)
                if i == 0:
                    socks.append(conn.sock.getsockname())
        self.assertEqual([c1.sock.getsockname(), c2.sock.getsockname()], socks)


if __name__ == "__main__":
    unittest.main()
