"""test_authz.py -- the authorization matrix.

Alice (alice@paris) owns posts, follow edges and a private conversation with
carol@tokyo. Bob (bob@paris, Alice's own region) and Mallory
(mallory@newyork) try, in every region, every way of acting on Alice's
objects or as Alice: reading her messages, deleting her posts, following and
unfollowing as her, reading her stream, posting or messaging with her name
in the body, reusing her Idempotency-Key, forging her token (any change to
the secret, her id with their secret, two Authorization headers, the query
parameter). Every attempt must be rejected (an error, or an answer that only
concerns the attacker), Alice's state must be unchanged afterwards, and no
byte of her private data (message texts, her token or its secret) may
appear in anything the attackers get back. A token of a user who has not
replicated to a region yet is refused there; once replicated it works in
every region.
"""
import json
import random
import socket
import threading
import unittest

import faultlib
from faultlib import harness, q, wait_for


def read_stream(port, headers, path="/v1/stream", seconds=2.0, started=None):
    """Opens an SSE stream with a raw socket and returns everything read in
    `seconds` (status line and headers included). Sets `started` once the
    server has answered the request."""
    s = socket.create_connection(("127.0.0.1", port), timeout=seconds)
    out = b""
    try:
        req = f"GET {path} HTTP/1.1\r\nHost: x\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
        s.sendall(req.encode())
        stop = threading.Event()
        timer = threading.Timer(seconds, stop.set)
        timer.start()
        s.settimeout(0.2)
        while not stop.is_set():
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                continue
            if not chunk:
                break
            out += chunk
            if started is not None and b"\r\n\r\n" in out:
                started.set()
        timer.cancel()
    finally:
        s.close()
        if started is not None:
            started.set()
    return out


class Authz(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.seed = faultlib.seed()
        cls.rng = random.Random(cls.seed)
        cls.cluster = harness.Cluster(args=["--demo"])
        cls.http = {n: faultlib.Http("127.0.0.1", r.port) for n, r in cls.cluster.regions.items()}

    @classmethod
    def tearDownClass(cls):
        for h in cls.http.values():
            h.close()
        cls.cluster.stop()

    def setUp(self):
        self.attempts = 0
        self.rejected = 0
        self.leaks = []
        self.private = []
        self.accepted = []

    # -- helpers -------------------------------------------------------------------------------------
    def secret(self, label):
        s = f"{label}-{self.rng.getrandbits(64):016x}"
        self.private.append(s)
        return s

    def register(self, region, name):
        r = self.http[region].request("POST", "/v1/users", {"name": name})
        self.assertEqual(r.status, 201, r)
        return r.json

    def as_user(self, region, method, path, token, body=None, headers=None):
        return self.http[region].request(method, path, body, token=token, headers=headers)

    def attack(self, label, region, method, path, token=None, body=None, headers=None,
               allowed=(400, 401, 403, 404), harmless_2xx=False, raw_headers=None):
        """One attempt by an attacker. Rejected = an error status in `allowed`,
        or (when harmless_2xx) a 2xx that only concerns the attacker (the
        state checks after the matrix prove it). Any byte of Alice's private
        data in the answer is a leak."""
        self.attempts += 1
        if raw_headers is not None:
            resp = self.raw(region, method, path, raw_headers, body)
            status, text = resp
        else:
            r = self.as_user(region, method, path, token, body, headers)
            status, text = r.status, r.body + json.dumps(r.headers)
        for p in self.private:
            if p in text:
                self.leaks.append(f"{label} in {region}: response contains {p[:12]}...")
        ok = status in allowed or (harmless_2xx and 200 <= status < 300)
        if ok:
            self.rejected += 1
        else:
            self.accepted.append(f"{label} in {region}: {method} {path} -> {status} {text[:160]}")
        return status, text

    def raw(self, region, method, path, header_lines, body=None):
        """A request with exactly these header lines (e.g. two Authorization)."""
        port = self.cluster[region].port
        data = json.dumps(body).encode() if body is not None else b""
        hdrs = "".join(f"{line}\r\n" for line in header_lines)
        if body is not None:
            hdrs += f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{hdrs}\r\n".encode() + data)
            out = b""
            while True:
                try:
                    chunk = s.recv(65536)
                except socket.timeout:
                    break  # a stream that stays open: what came so far
                if not chunk:
                    break
                out += chunk
        text = out.decode("utf-8", "replace")
        return int(text.split()[1]), text

    def converged(self):
        self.cluster.wait_converged(30)

    # -- the matrix ------------------------------------------------------------------------------------
    def test_matrix(self):
        regions = sorted(self.cluster.regions)
        alice = self.register("paris", "alice")
        bob = self.register("paris", "bob")
        mallory = self.register("newyork", "mallory")
        carol = self.register("tokyo", "carol")
        dan = self.register("tokyo", "dan")
        A, TA = alice["id"], alice["token"]
        self.private += [TA, TA.split(".", 1)[1]]
        self.converged()

        # Alice's objects.
        s1, s2 = self.secret("alice-to-carol"), self.secret("carol-to-alice")
        r = self.http["paris"].request("POST", "/v1/messages", {"to": carol["id"], "text": s1}, token=TA)
        self.assertEqual(r.status, 201, r)
        r = self.http["tokyo"].request("POST", "/v1/messages", {"to": A, "text": s2}, token=carol["token"])
        self.assertEqual(r.status, 201, r)
        post = self.http["paris"].request("POST", "/v1/posts", {"text": "alice's public post"}, token=TA).json
        idem_text = self.secret("alice-idempotent-post")
        idem = self.http["paris"].request("POST", "/v1/posts", {"text": idem_text}, token=TA,
                                          headers={"Idempotency-Key": "k-1"}).json
        self.assertEqual(self.http["paris"].request("PUT", f"/v1/following/{q(carol['id'])}", token=TA).status, 200)
        self.converged()
        alice_following = faultlib.pages(self.http["tokyo"], f"/v1/users/{q(A)}/following")
        self.assertEqual(alice_following, [carol["id"]])

        secret_part = TA.split(".", 1)[1]
        forged = {
            "last char of the secret changed": TA[:-1] + ("A" if TA[-1] != "A" else "B"),
            "first char of the secret changed": f"{A}.{'x' if secret_part[0] != 'x' else 'y'}{secret_part[1:]}",
            "secret truncated": TA[:-1],
            "secret extended": TA + "A",
            "empty secret": f"{A}.",
            "no secret": A,
            "bob's secret with alice's id": f"{A}.{bob['token'].split('.', 1)[1]}",
            "alice's id in upper case": TA.replace("alice", "ALICE", 1),
            "alice's id, other region": TA.replace("@paris", "@tokyo", 1),
            "secret with a NUL": TA[:-1] + "%00",
            "secret as hex of random bytes": f"{A}.{self.rng.getrandbits(256):064x}"[:len(TA)],
            "trailing space": TA + " ",
        }
        attackers = (("bob", bob), ("mallory", mallory))
        for region in regions:
            for who, att in attackers:
                T = att["token"]
                # Reading Alice's messages.
                self.attack(f"{who} reads {carol['id']}'s conversation", region, "GET",
                            f"/v1/messages/{q(carol['id'])}", T, harmless_2xx=True)
                self.attack(f"{who} reads the conversation with alice", region, "GET",
                            f"/v1/messages/{q(A)}", T, harmless_2xx=True)
                self.attack(f"{who} lists conversations", region, "GET", "/v1/conversations", T,
                            harmless_2xx=True)
                self.attack(f"{who} reads alice's timeline", region, "GET", "/v1/timeline", T,
                            harmless_2xx=True)
                self.attack(f"{who} reads alice's messages with ?user=", region, "GET",
                            f"/v1/messages/{q(carol['id'])}?user={q(A)}&as={q(A)}", T, harmless_2xx=True)
                # Deleting Alice's posts.
                for p in (post, idem):
                    self.attack(f"{who} deletes alice's post", region, "DELETE", f"/v1/posts/{q(p['id'])}",
                                T, allowed=(403,))
                # Following / unfollowing as Alice.
                self.attack(f"{who} unfollows carol with alice's name in the body", region, "DELETE",
                            f"/v1/following/{q(carol['id'])}", T, body={"follower": A}, harmless_2xx=True)
                self.attack(f"{who} follows dan with X-User: alice", region, "PUT",
                            f"/v1/following/{q(dan['id'])}?follower={q(A)}", T,
                            headers={"X-User": A, "X-Forwarded-User": A}, harmless_2xx=True)
                # Posting and messaging with Alice's name.
                st, text = self.attack(f"{who} posts with author=alice", region, "POST", "/v1/posts", T,
                                       body={"text": "not alice", "author": A, "from": A},
                                       harmless_2xx=True)
                if 200 <= st < 300:
                    self.assertEqual(self.last_json(text)["author"], att["id"])
                st, text = self.attack(f"{who} messages carol as alice", region, "POST", "/v1/messages", T,
                                       body={"to": carol["id"], "from": A, "text": "not alice"},
                                       harmless_2xx=True)
                if 200 <= st < 300:
                    self.assertEqual(self.last_json(text)["from"], att["id"])
                # Alice's Idempotency-Key is Alice's alone.
                st, text = self.attack(f"{who} reuses alice's Idempotency-Key", region, "POST", "/v1/posts", T,
                                       body={"text": "mine"}, headers={"Idempotency-Key": "k-1"},
                                       harmless_2xx=True)
                if 200 <= st < 300:
                    got = self.last_json(text)
                    self.assertEqual(got["author"], att["id"])
                    self.assertNotEqual(got["id"], idem["id"])
                # Forged tokens of Alice, on every endpoint that acts as the caller.
                for what, tok in forged.items():
                    for method, path, body in (
                            ("GET", "/v1/timeline", None),
                            ("GET", f"/v1/messages/{q(carol['id'])}", None),
                            ("GET", "/v1/conversations", None),
                            ("DELETE", f"/v1/posts/{q(post['id'])}", None),
                            ("PUT", f"/v1/following/{q(dan['id'])}", None),
                            ("DELETE", f"/v1/following/{q(carol['id'])}", None),
                            ("POST", "/v1/posts", {"text": "forged"}),
                            ("POST", "/v1/messages", {"to": carol["id"], "text": "forged"})):
                        self.attack(f"{who}: alice's token, {what}", region, method, path,
                                    raw_headers=[f"Authorization: Bearer {tok}"], body=body,
                                    allowed=(400, 401))
                    self.attack(f"{who}: ?access_token= forged ({what})", region, "GET",
                                f"/v1/stream?access_token={q(tok)}", raw_headers=[], allowed=(400, 401))
                # Two Authorization headers: a forged Alice first, the attacker second.
                st, text = self.attack(f"{who}: two Authorization headers", region, "PUT",
                                       f"/v1/following/{q(dan['id'])}",
                                       raw_headers=[f"Authorization: Bearer {forged['last char of the secret changed']}",
                                                    f"Authorization: Bearer {T}"], allowed=(400, 401),
                                       harmless_2xx=True)
                # A query token on an endpoint that only takes the header.
                self.attack(f"{who}: ?access_token= on /v1/timeline", region, "GET",
                            f"/v1/timeline?access_token={q(forged['no secret'])}", raw_headers=[],
                            allowed=(401,))

        # Alice's stream: the attackers' streams never carry her events,
        # while her own does (the control that the event was sent).
        for region in regions:
            s3 = self.secret(f"alice-to-carol-live-{region}")
            got = {}
            ready = {w: threading.Event() for w in ("alice", "bob", "mallory")}
            tokens = {"alice": TA, "bob": bob["token"], "mallory": mallory["token"]}
            port = self.cluster[region].port
            threads = [threading.Thread(target=lambda w=w: got.__setitem__(
                w, read_stream(port, [("Authorization", f"Bearer {tokens[w]}")], seconds=3.0,
                               started=ready[w]))) for w in tokens]
            for t in threads:
                t.start()
            for e in ready.values():
                e.wait(5)
            r = self.http[region].request("POST", "/v1/messages", {"to": carol["id"], "text": s3}, token=TA)
            self.assertEqual(r.status, 201, r)
            for t in threads:
                t.join(10)
            self.assertIn(s3.encode(), got["alice"], f"control: alice's own stream in {region} lacks her message")
            for w in ("bob", "mallory"):
                self.attempts += 1
                if any(p.encode() in got[w] for p in self.private):
                    self.leaks.append(f"{w}'s stream in {region} carries alice's data")
                else:
                    self.rejected += 1
                self.assertTrue(got[w].startswith(b"HTTP/1.1 200"), got[w][:100])

        # The users' records never carry secrets.
        for region in regions:
            for u in (alice, bob, carol):
                r = self.http[region].get(f"/v1/users/{q(u['id'])}")
                self.assertEqual(r.status, 200, r)
                self.assertNotIn("token", r.json)
                self.assertNotIn("token_hash", r.json)
                self.assertNotIn(u["token"].split(".", 1)[1], r.body)

        # Alice's state is what she made it, everywhere.
        self.converged()
        for region in regions:
            h = self.http[region]
            self.assertEqual(faultlib.pages(h, f"/v1/users/{q(A)}/following"), [carol["id"]], region)
            for p in (post, idem):
                self.assertEqual(h.get(f"/v1/posts/{q(p['id'])}").status, 200, f"{p['id']} in {region}")
            convo = faultlib.pages(h, f"/v1/messages/{q(carol['id'])}", token=TA)
            self.assertTrue(all(m["from"] in (A, carol["id"]) and m["to"] in (A, carol["id"]) for m in convo))
            self.assertNotIn("not alice", [m["text"] for m in convo])
            self.assertTrue(all(p["author"] == A for p in faultlib.pages(h, f"/v1/users/{q(A)}/posts")))

        print(f"\nauthz seed={self.seed}: {self.attempts} attempts, {self.rejected} rejected, "
              f"{len(self.leaks)} leaks", flush=True)
        for line in self.accepted[:20] + self.leaks[:20]:
            print("  " + line, flush=True)
        self.assertEqual(self.leaks, [], "alice's private data reached an attacker")
        self.assertEqual(self.accepted, [], "attempts not rejected")
        self.assertEqual(self.rejected, self.attempts)

    @staticmethod
    def last_json(text):
        """The JSON body of a raw or parsed response text."""
        body = text.split("\r\n\r\n", 1)[1] if "\r\n\r\n" in text else text
        dec = json.JSONDecoder()
        return dec.raw_decode(body[body.index("{"):])[0]

    def test_tokens_and_replication(self):
        """A token is refused where its user has not replicated yet, and works
        in every region once it has."""
        admin = self.cluster["tokyo"].client
        r = admin.post("/v1/admin/replication", {"paused": True})
        self.assertEqual(r.status, 200, r)
        try:
            erin = self.register("paris", "erin")
            T = erin["token"]
            for method, path, body in (("GET", "/v1/timeline", None), ("POST", "/v1/posts", {"text": "early"}),
                                       ("GET", "/v1/conversations", None)):
                r = self.http["tokyo"].request(method, path, body, token=T)
                self.attempts += 1
                self.assertEqual(r.status, 401, f"tokyo accepted a user it does not know yet: {r!r}")
                self.rejected += 1
                self.assertNotIn(T.split(".", 1)[1], r.body)
        finally:
            admin.post("/v1/admin/replication", {"paused": False})
        wait_for(lambda: self.http["tokyo"].get(f"/v1/users/{q(erin['id'])}").status == 200, 20,
                 what="erin replicated to tokyo")
        for region in sorted(self.cluster.regions):
            h = self.http[region]
            self.assertEqual(h.get("/v1/timeline", token=T).status, 200, region)
            r = h.request("POST", "/v1/posts", {"text": f"erin writes in {region}"}, token=T)
            self.assertEqual(r.status, 201, r)
            self.assertEqual(r.json["author"], erin["id"])
        print(f"\ntokens: unreplicated user refused {self.rejected}/{self.attempts} times; "
              f"works in all {len(self.cluster.regions)} regions once replicated", flush=True)


if __name__ == "__main__":
    unittest.main()
