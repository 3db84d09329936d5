"""test_masto.py -- the Mastodon subset against real regions (paris, tokyo):
entities, paging with max_id/since_id/min_id and Link, follows and
relationships, direct statuses and conversations, the user stream in
Mastodon's events, a post reaching a follower in another region, and
hostile input in paths, queries and bodies (4xx JSON, the region serving
on). The client libraries' view is tests/clients."""
import json
import re
import unittest
import urllib.parse

import harness

ARGS = ["--rate-limit", "0", "--signup-rate", "0"]
ID = re.compile(r"^\d{84}$")


class Masto(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cluster = harness.Cluster(names=("paris", "tokyo"), args=ARGS)
        cls.p = cls.cluster["paris"].client
        cls.t = cls.cluster["tokyo"].client
        cls.alice = cls.p.register("alice", "Alice <b>")
        cls.bob = cls.t.register("bob")
        cls.carol = cls.p.register("carol")

    @classmethod
    def tearDownClass(cls):
        cls.cluster.stop()

    def status(self, client, token, text, **extra):
        r = client.post("/api/v1/statuses", {"status": text, **extra}, token=token)
        self.assertEqual(r.status, 200, r)
        return r.json

    def test_instance(self):
        for path in ("/api/v1/instance", "/api/v2/instance"):
            r = self.p.get(path)
            self.assertEqual(r.status, 200, r)
            self.assertTrue(r.json["version"].startswith("4."), r.json)
            self.assertEqual(r.json["configuration"]["statuses"]["max_characters"], 500)
        self.assertEqual(self.p.get("/api/v2/instance").json["domain"],
                         "127.0.0.1:%d" % self.cluster["paris"].port)

    def test_account_entities(self):
        me = self.p.get("/api/v1/accounts/verify_credentials", token=self.alice["token"])
        self.assertEqual(me.status, 200, me)
        self.assertEqual((me.json["id"], me.json["username"], me.json["acct"]),
                         ("alice@paris", "alice", "alice@paris"))
        self.assertEqual(me.json["display_name"], "Alice <b>")  # plain text, as Mastodon's
        for k in ("followers_count", "following_count", "statuses_count"):
            self.assertIsInstance(me.json[k], int)
        self.assertEqual(me.json["emojis"], [])
        for acct in ("alice@paris", "@alice@paris", "alice"):
            r = self.p.get("/api/v1/accounts/lookup?acct=" + urllib.parse.quote(acct))
            self.assertEqual((r.status, r.json.get("id")), (200, "alice@paris"), r)
        self.assertEqual(self.p.get("/api/v1/accounts/nobody@paris").status, 404)

    def test_statuses_and_paging(self):
        tok = self.carol["token"]
        made = [self.status(self.p, tok, "carol %d & <i>" % i) for i in range(5)]
        for s in made:
            self.assertRegex(s["id"], ID)
            self.assertEqual(s["account"]["id"], "carol@paris")
        self.assertEqual(made[0]["content"], "<p>carol 0 &amp; &lt;i&gt;</p>")
        ids = [s["id"] for s in made]
        self.assertEqual(ids, sorted(ids))  # later statuses compare greater
        r = self.p.get("/api/v1/timelines/home?limit=2", token=tok)
        self.assertEqual([s["id"] for s in r.json], ids[::-1][:2])
        link = r.headers["link"]
        nxt = re.search(r'<([^>]+)>; rel="next"', link).group(1)
        page2 = self.p.get(urllib.parse.urlsplit(nxt)._replace(scheme="", netloc="").geturl(),
                           token=tok)
        self.assertEqual([s["id"] for s in page2.json], ids[::-1][2:4])
        since = self.p.get("/api/v1/timelines/home?limit=2&since_id=" + ids[1], token=tok)
        self.assertEqual([s["id"] for s in since.json], [ids[4], ids[3]])
        mn = self.p.get("/api/v1/timelines/home?limit=2&min_id=" + ids[1], token=tok)
        self.assertEqual([s["id"] for s in mn.json], [ids[3], ids[2]])
        prof = self.p.get("/api/v1/accounts/carol@paris/statuses?limit=40")
        self.assertEqual([s["id"] for s in prof.json], ids[::-1])
        # Mastodon clamps ?limit: past the maximum is the maximum, 0 is 1.
        huge = self.p.get("/api/v1/accounts/carol@paris/statuses?limit=123456789")
        self.assertEqual([s["id"] for s in huge.json], ids[::-1])
        one = self.p.get("/api/v1/accounts/carol@paris/statuses?limit=0")
        self.assertEqual([s["id"] for s in one.json], ids[::-1][:1])
        got = self.p.get("/api/v1/statuses/" + ids[0])
        self.assertEqual(got.json["content"], made[0]["content"])
        self.assertEqual(self.p.get("/api/v1/accounts/carol@paris").json["statuses_count"], 5)
        gone = self.p.delete("/api/v1/statuses/" + ids[0], token=tok)
        self.assertEqual((gone.status, gone.json["text"]), (200, "carol 0 & <i>"), gone)
        self.assertEqual(self.p.get("/api/v1/statuses/" + ids[0]).status, 404)
        other = self.p.delete("/api/v1/statuses/" + ids[1], token=self.alice["token"])
        self.assertEqual(other.status, 404, other)  # as Mastodon: not yours, not found

    def test_idempotency_key(self):
        tok = self.alice["token"]
        h = {"Idempotency-Key": "masto-1"}
        a = self.p.post("/api/v1/statuses", {"status": "once"}, token=tok, headers=h)
        b = self.p.post("/api/v1/statuses", {"status": "once"}, token=tok, headers=h)
        self.assertEqual((a.status, b.status), (200, 200))
        self.assertEqual(a.json["id"], b.json["id"])

    def test_form_bodies(self):
        r = self.p.post("/api/v1/statuses", token=self.alice["token"],
                        raw=b"status=from+a+form%21&visibility=public",
                        headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual((r.status, r.json.get("content")), (200, "<p>from a form!</p>"), r)

    def test_follow_across_regions_and_stream(self):
        tok = self.alice["token"]
        harness.wait_for(lambda: self.p.get("/api/v1/accounts/bob@tokyo").status == 200,
                         what="bob replicated to paris")
        r = self.p.post("/api/v1/accounts/bob@tokyo/follow", token=tok)
        self.assertEqual((r.status, r.json["following"]), (200, True), r)
        rel = self.p.get("/api/v1/accounts/relationships?id[]=bob@tokyo&id[]=carol@paris",
                         token=tok)
        self.assertEqual([(x["id"], x["following"]) for x in rel.json],
                         [("bob@tokyo", True), ("carol@paris", False)])
        harness.wait_for(lambda: self.t.get("/api/v1/accounts/bob@tokyo").json["followers_count"]
                         == 1, what="the follow replicated to tokyo")
        stream = StreamReader(self.cluster["paris"].port, tok)
        try:
            s = self.status(self.t, self.bob["token"], "hello from tokyo")
            ev = harness.wait_for(lambda: stream.find("update", s["id"]), timeout=15,
                                  what="bob's status streamed to alice in paris")
            self.assertEqual(ev["account"]["acct"], "bob@tokyo")
            home = self.p.get("/api/v1/timelines/home", token=tok)
            self.assertIn(s["id"], [x["id"] for x in home.json])
            self.t.delete("/api/v1/statuses/" + s["id"], token=self.bob["token"])
            harness.wait_for(lambda: stream.find("delete", s["id"]), timeout=15,
                             what="the delete streamed")
        finally:
            stream.close()
        r = self.p.post("/api/v1/accounts/bob@tokyo/unfollow", token=tok)
        self.assertEqual((r.status, r.json["following"]), (200, False), r)

    def test_direct_status_is_a_message(self):
        tok = self.alice["token"]
        harness.wait_for(lambda: self.p.get("/api/v1/accounts/bob@tokyo").status == 200,
                         what="bob replicated to paris")
        d = self.status(self.p, tok, "@bob@tokyo a secret", visibility="direct")
        self.assertEqual((d["visibility"], d["mentions"][0]["acct"]), ("direct", "bob@tokyo"))
        self.assertEqual(self.p.get("/api/v1/statuses/" + d["id"], token=tok).status, 200)
        self.assertNotIn(d["id"], [x["id"] for x in
                                   self.p.get("/api/v1/timelines/home", token=tok).json])

        def in_tokyo():
            cs = self.t.get("/api/v1/conversations", token=self.bob["token"]).json
            return next((c for c in cs if c["last_status"]["id"] == d["id"]), None)
        conv = harness.wait_for(in_tokyo, timeout=15, what="the direct status in tokyo")
        self.assertEqual(conv["accounts"][0]["id"], "alice@paris")
        two = self.p.post("/api/v1/statuses", {"status": "@bob@tokyo @carol x",
                                               "visibility": "direct"}, token=tok)
        self.assertEqual(two.status, 422, two)

    def test_errors_have_mastodons_shape(self):
        tok = self.alice["token"]
        cases = [
            ("GET", "/api/v1/nope", None, 404),
            ("GET", "/api/v1/timelines/home", None, 401),
            ("GET", "/api/v1/statuses/123", None, 404),
            ("GET", "/api/v1/statuses/" + "9" * 84, None, 404),
            ("GET", "/api/v1/timelines/home?limit=x", tok, 400),
            ("GET", "/api/v1/timelines/home?max_id=%ff%fe", tok, 400),
            ("GET", "/api/v1/accounts/%ff%fe@paris", None, 404),
            ("GET", "/api/v1/accounts/lookup?acct=%c3%28", None, 404),
            ("GET", "/api/v1/accounts/a%00b@paris/statuses", None, 404),
            ("GET", "/api/v1/streaming?stream=public", tok, 400),
            ("GET", "/api/v1/accounts/alice@paris/followers?limit=%ff", None, 400),
            ("GET", "/api/v1/accounts/alice@paris/following?max_id=%ff%fe", None, 400),
            ("GET", "/api/v1/conversations?limit=-1", tok, 400),
            ("GET", "/api/v1/timelines/home?limit=" + "9" * 10, tok, 400),
            ("GET", "/api/v1/timelines/home?limit=5%00", tok, 400),
            ("GET", "/api/v1/conversations?max_id=%00", tok, 400),
            ("GET", "/api/v1/accounts/lookup?acct=" + "a" * 5000, None, 404),
            ("POST", "/api/v1/statuses", tok, 422),
            ("DELETE", "/api/v1/statuses/%e2%82", tok, 404),
        ]
        for method, path, token, want in cases:
            r = self.p.request(method, path, token=token)
            self.assertEqual(r.status, want, (method, path, r))
            self.assertIsInstance(r.json["error"], str, r)
        bodies = [
            (b"status=%zz", "application/x-www-form-urlencoded", 400),
            (b"status=%ff%fe", "application/x-www-form-urlencoded", 400),
            (b'{"status": "\\ud800"}', "application/json", 400),
            (b"{", "application/json", 400),
            (b"status=x", "text/plain", 415),
            (b'{"status": "   "}', "application/json", 422),
            (json.dumps({"status": "x" * 501}).encode(), "application/json", 422),
            (b'{"status": "x", "media_ids": ["1"]}', "application/json", 422),
            (b'{"status": "x", "visibility": "secret"}', "application/json", 422),
            (b'{"status": "x", "visibility": "private"}', "application/json", 422),
        ]
        for raw, ctype, want in bodies:
            r = self.p.post("/api/v1/statuses", token=tok, raw=raw,
                            headers={"Content-Type": ctype})
            self.assertEqual(r.status, want, (raw, r))
            self.assertIsInstance(r.json["error"], str, r)
        # Ids in a relationships list that are not account ids are left out.
        r = self.p.get("/api/v1/accounts/relationships?id[]=%ff%fe&id[]=a%00b&id[]=" + "x" * 3000
                       + "&id[]=carol@paris", token=tok)
        self.assertEqual((r.status, [x["id"] for x in r.json]), (200, ["carol@paris"]), r)
        self.assertEqual(self.p.get("/health").status, 200)


class StreamReader(harness.EventStream):
    """The caller's GET /api/v1/streaming/user."""

    def __init__(self, port, token):
        super().__init__(port, "/api/v1/streaming/user", {"Authorization": "Bearer " + token})
        assert self.status == 200, self.body

    def find(self, event, status_id):
        """The status of an update (or True for a delete) about status_id."""
        for data in self.data_of(event):
            if event == "delete" and data == status_id:
                return True
            if event != "delete" and json.loads(data)["id"] == status_id:
                return json.loads(data)
        return None


if __name__ == "__main__":
    unittest.main()
