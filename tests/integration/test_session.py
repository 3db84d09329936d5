"""test_session.py -- session tokens and write acknowledgements against real
regions and a real Redis.

With one region's incoming replication delayed by about a second, a post
read there at once is a 404 without its Session-Token and a 200 with it,
after about the delay; a read that carried a token returns one that also
holds what that region had applied, so the next region waits for that too
(monotonic reads). A token whose wait runs out is a 503 naming the region
waited for. ack=all returns once every region has the write, ack=quorum
once a majority has; with a region paused, ack=all answers 202 after the
bound, naming who has it, and the post still reaches the paused region when
it resumes. Tokens that are garbled, from another cluster, or past anything
a region wrote are 400s; 1,000 suspended readers do not hold up /health.
A traveller's own post is in their home timeline in the other region (the
read waits for its fan-out too); tokens work over an unsigned log; a region
stops cleanly with requests suspended.
"""
import base64
import os
import socket
import struct
import time
import unittest

from harness import Cluster, Region, read_status, wait_for
from test_log_auth import stop_checked

DELAY_MS = 1000
ACK_WAIT_MS = 1000
ARGS = ["--demo", "--rate-limit", "0", "--ack-wait-ms", str(ACK_WAIT_MS)]


# ---- crafting tokens (api/session_token.c has the format) ----------------------------------

def _rotl(x, b):
    return ((x << b) | (x >> (64 - b))) & 0xFFFFFFFFFFFFFFFF


def siphash24(key, data):
    """SipHash-2-4 (libsodium's crypto_shorthash), 8 bytes."""
    k0, k1 = struct.unpack("<QQ", key)
    v = [k0 ^ 0x736F6D6570736575, k1 ^ 0x646F72616E646F6D,
         k0 ^ 0x6C7967656E657261, k1 ^ 0x7465646279746573]

    def rnd():
        v[0] = (v[0] + v[1]) & 0xFFFFFFFFFFFFFFFF
        v[1] = _rotl(v[1], 13) ^ v[0]
        v[0] = _rotl(v[0], 32)
        v[2] = (v[2] + v[3]) & 0xFFFFFFFFFFFFFFFF
        v[3] = _rotl(v[3], 16) ^ v[2]
        v[0] = (v[0] + v[3]) & 0xFFFFFFFFFFFFFFFF
        v[3] = _rotl(v[3], 21) ^ v[0]
        v[2] = (v[2] + v[1]) & 0xFFFFFFFFFFFFFFFF
        v[1] = _rotl(v[1], 17) ^ v[2]
        v[2] = _rotl(v[2], 32)

    tail = len(data) & 7
    for i in range(0, len(data) - tail, 8):
        m, = struct.unpack_from("<Q", data, i)
        v[3] ^= m
        rnd(); rnd()
        v[0] ^= m
    last = (len(data) & 0xFF) << 56
    for i, b in enumerate(data[len(data) - tail:]):
        last |= b << (8 * i)
    v[3] ^= last
    rnd(); rnd()
    v[0] ^= last
    v[2] ^= 0xFF
    for _ in range(4):
        rnd()
    return struct.pack("<Q", v[0] ^ v[1] ^ v[2] ^ v[3])


def b64(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def decode_token(tok):
    """[(region, epoch, seq)] of a token; checks its check bytes."""
    raw = unb64(tok)
    body, check = raw[:-4], raw[-4:]
    assert siphash24(b"driftfeed-sess-1", body)[:4] == check, tok
    assert body[0] == 1, body
    out, at = [], 2
    for _ in range(body[1]):
        n = body[at]
        name = body[at + 1:at + 1 + n].decode()
        at += 1 + n
        epoch, = struct.unpack_from(">I", body, at)
        at += 4
        seq = shift = 0
        while True:
            b = body[at]
            at += 1
            seq |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        out.append((name, epoch, seq))
    assert at == len(body), tok
    return out


def encode_token(positions):
    body = bytes([1, len(positions)])
    for name, epoch, seq in positions:
        leb = bytearray()
        while True:
            b = seq & 0x7F
            seq >>= 7
            leb.append(b | (0x80 if seq else 0))
            if not seq:
                break
        body += bytes([len(name)]) + name.encode() + struct.pack(">I", epoch) + bytes(leb)
    return b64(body + siphash24(b"driftfeed-sess-1", body)[:4])


def error_code(resp):
    return resp.json["error"]["code"]


class Sessions(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cluster = Cluster(args=ARGS)
        cls.paris = cls.cluster["paris"]
        cls.tokyo = cls.cluster["tokyo"]
        cls.newyork = cls.cluster["newyork"]
        cls.alice = cls.paris.client.register("alice")["token"]
        cls.bob = cls.newyork.client.register("bob")["token"]

    @classmethod
    def tearDownClass(cls):
        stop_checked(cls.cluster)

    def setUp(self):
        for r in self.cluster.regions.values():
            self.admin(r, {"paused": False, "delay_ms": 0})

    def admin(self, region, body):
        resp = region.client.post("/v1/admin/replication", body)
        self.assertEqual(resp.status, 200, resp)

    def post(self, region, token, text, query="", headers=None):
        resp = region.client.post("/v1/posts" + query, {"text": text}, token=token,
                                  headers=headers)
        self.assertIn(resp.status, (201, 202), resp)
        self.assertIn("session-token", resp.headers)
        return resp

    def get_post(self, region, pid, token=None, wait_ms=None):
        headers = {}
        if token:
            headers["Session-Token"] = token
        if wait_ms is not None:
            headers["Session-Wait-Ms"] = str(wait_ms)
        t0 = time.monotonic()
        resp = region.client.get("/v1/posts/" + pid, headers=headers)
        return resp, time.monotonic() - t0

    def delay_tokyo(self):
        self.admin(self.tokyo, {"peer": "paris", "delay_ms": DELAY_MS})
        self.admin(self.tokyo, {"peer": "newyork", "delay_ms": DELAY_MS})

    def test_read_your_write_in_a_delayed_region(self):
        self.delay_tokyo()
        resp = self.post(self.paris, self.alice, "bonjour from paris")
        pid, token = resp.json["id"], resp.headers["session-token"]
        self.assertLess(len(token), 100, token)
        self.assertEqual(decode_token(token)[0][0], "paris")
        t0 = time.monotonic()
        without, _ = self.get_post(self.tokyo, pid)
        self.assertEqual(without.status, 404, without)
        with_token, took = self.get_post(self.tokyo, pid, token, wait_ms=5000)
        self.assertEqual(with_token.status, 200, with_token)
        self.assertEqual(with_token.json["id"], pid)
        # It waited for the delay (the record is held until it is DELAY_MS
        # old), and not much longer (a loaded 2-core machine adds some).
        print(f"\nread with the token answered after {took * 1000:.0f} ms "
              f"(delay {DELAY_MS} ms)")
        self.assertGreater(time.monotonic() - t0, DELAY_MS / 1000 * 0.5)
        self.assertLess(took, DELAY_MS / 1000 + 2.0)
        self.assertIn("session-token", with_token.headers)

    def test_the_traveller_sees_the_post_in_their_home_timeline(self):
        """A home timeline is derived by fan-out: a read with the token also
        waits for the fan-out of what the token holds."""
        erin = self.paris.client.register("erin")["token"]
        fan = self.newyork.client.register("fan")["token"]
        resp = self.newyork.client.put("/v1/following/erin@paris", token=fan,
                                       headers={"Session-Token": self.post(
                                           self.paris, erin, "hello").headers["session-token"]})
        self.assertEqual(resp.status, 200, resp)  # erin has a follower: her posts are jobs
        wait_for(lambda: self.tokyo.client.get("/v1/users/erin@paris/followers").json["items"],
                 20, what="the follow in tokyo")
        self.delay_tokyo()
        resp = self.post(self.paris, erin, "posted in paris, read in tokyo")
        pid, token = resp.json["id"], resp.headers["session-token"]
        home = self.tokyo.client.get("/v1/timeline", token=erin)
        self.assertNotIn(pid, [p["id"] for p in home.json["items"]])
        home = self.tokyo.client.get("/v1/timeline", token=erin,
                                     headers={"Session-Token": token})
        self.assertEqual(home.status, 200, home)
        self.assertEqual(home.json["items"][0]["id"], pid)

    def test_a_wait_that_runs_out_is_a_503_naming_the_region(self):
        self.admin(self.tokyo, {"paused": True})
        token = self.post(self.paris, self.alice, "held back").headers["session-token"]
        resp, took = self.get_post(self.tokyo, "01a0000000000000-paris", token, wait_ms=0)
        self.assertEqual(resp.status, 503, resp)
        self.assertLess(took, 0.5)
        self.assertEqual(error_code(resp), "session_behind")
        self.assertIn("paris", resp.json["error"]["message"])
        self.assertEqual(resp.headers.get("retry-after"), "1")
        resp, took = self.get_post(self.tokyo, "01a0000000000000-paris", token, wait_ms=400)
        self.assertEqual(resp.status, 503, resp)
        self.assertGreater(took, 0.35)
        self.assertLess(took, 2.0)
        # A write carrying the token waits too (writes follow reads).
        resp = self.tokyo.client.put("/v1/following/bob@newyork", token=self.alice,
                                     headers={"Session-Token": token, "Session-Wait-Ms": "0"})
        self.assertEqual(resp.status, 503, resp)
        m = self.tokyo.client.get("/metrics").body
        self.assertIn("driftfeed_session_timeouts_total", m)
        self.admin(self.tokyo, {"paused": False})

    def test_read_tokens_carry_what_the_region_read(self):
        """Monotonic reads: after seeing a post in newyork, tokyo (delayed)
        waits for it too, though the client's own writes are not paris's."""
        self.delay_tokyo()
        resp = self.post(self.paris, self.alice, "seen in newyork first")
        pid = resp.json["id"]
        wait_for(lambda: self.get_post(self.newyork, pid)[0].status == 200, 20,
                 what="the post in newyork")
        own = self.post(self.newyork, self.bob, "bob's own").headers["session-token"]
        self.assertEqual([p[0] for p in decode_token(own)], ["newyork"])
        read, _ = self.get_post(self.newyork, pid, own)
        self.assertEqual(read.status, 200, read)
        merged = read.headers["session-token"]
        regions = {p[0]: p[2] for p in decode_token(merged)}
        self.assertIn("paris", regions)
        self.assertGreaterEqual(regions["newyork"], decode_token(own)[0][2])
        self.assertEqual(self.get_post(self.tokyo, pid)[0].status, 404)
        there, took = self.get_post(self.tokyo, pid, merged)
        self.assertEqual(there.status, 200, there)

    def test_ack_all_and_quorum(self):
        t0 = time.monotonic()
        resp = self.post(self.paris, self.alice, "everyone has me", "?ack=all")
        self.assertEqual(resp.status, 201, resp)
        self.assertEqual(sorted(resp.headers["acked-by"].split(",")),
                         ["newyork", "paris", "tokyo"])
        self.assertEqual(resp.headers["acked-by"].split(",")[0], "paris")
        pid = resp.json["id"]
        for r in self.cluster.regions.values():  # right after, without a token
            self.assertEqual(self.get_post(r, pid)[0].status, 200, r.name)
        self.assertLess(time.monotonic() - t0, 5)
        resp = self.post(self.paris, self.alice, "most have me", "?ack=quorum")
        self.assertEqual(resp.status, 201, resp)
        by = resp.headers["acked-by"].split(",")
        self.assertEqual(by[0], "paris")
        self.assertGreaterEqual(len(by), 2)
        resp = self.post(self.paris, self.alice, "only here", "?ack=local")
        self.assertEqual(resp.status, 201, resp)
        self.assertNotIn("acked-by", resp.headers)
        m = self.paris.client.get("/metrics").body
        for level in ("local", "quorum", "all"):
            self.assertIn(f'driftfeed_writes_by_ack_total{{ack="{level}"}}', m)

    def test_ack_all_with_a_region_paused_is_202_and_still_arrives(self):
        self.admin(self.tokyo, {"paused": True})
        t0 = time.monotonic()
        resp = self.post(self.paris, self.alice, "tokyo is away", "?ack=all",
                         headers={"Idempotency-Key": "away-1"})
        took = time.monotonic() - t0
        self.assertEqual(resp.status, 202, resp)
        self.assertGreaterEqual(took, ACK_WAIT_MS / 1000 * 0.9)
        self.assertEqual(sorted(resp.headers["acked-by"].split(",")), ["newyork", "paris"])
        pid = resp.json["id"]
        # A retry with the same Idempotency-Key is the same post, not a second.
        again = self.post(self.paris, self.alice, "tokyo is away", "?ack=quorum",
                          headers={"Idempotency-Key": "away-1"})
        self.assertEqual(again.json["id"], pid)
        self.assertEqual(self.get_post(self.tokyo, pid)[0].status, 404)
        self.admin(self.tokyo, {"paused": False})
        wait_for(lambda: self.get_post(self.tokyo, pid)[0].status == 200, 20,
                 what="the post in tokyo after it resumed")
        self.assertIn("driftfeed_ack_timeouts_total", self.paris.client.get("/metrics").body)

    def test_bad_tokens_and_headers_are_400(self):
        good = self.post(self.paris, self.alice, "a good token").headers["session-token"]
        pid = "01a0000000000000-paris"
        flipped = good[:5] + ("A" if good[5] != "A" else "B") + good[6:]
        epoch = decode_token(good)[0][1]
        cases = {
            "flipped": flipped,
            "cut": good[:-3],
            "padded": good + "==",
            "not base64": "!!!!",
            "long": "A" * 2000,
            "empty": "",
            "unknown region": encode_token([("lima", 7, 1)]),
            "another store": encode_token([("paris", epoch ^ 1, 1)]),
            "future here": encode_token([("paris", epoch, 1 << 40)]),
            "duplicate": encode_token([("paris", epoch, 1), ("paris", epoch, 2)]),
            "bad name": encode_token([("Paris", epoch, 1)]),
        }
        for what, tok in cases.items():
            resp = self.paris.client.get("/v1/posts/" + pid, headers={"Session-Token": tok})
            self.assertEqual(resp.status, 400, (what, resp))
            self.assertEqual(error_code(resp), "invalid_session_token", what)
        # A peer's position past what it ever published: 400 once the wait
        # is over (it could still have been on its way).
        resp, took = self.get_post(self.tokyo, pid, encode_token([("paris", epoch, 1 << 40)]),
                                   wait_ms=300)
        self.assertEqual(resp.status, 400, resp)
        for wait in ("abc", "-1", "1e3", "", "99999999999"):
            resp, _ = self.get_post(self.paris, pid, good, wait_ms=wait)
            self.assertEqual(resp.status, 400, (wait, resp))
            self.assertEqual(error_code(resp), "invalid_session_wait")
        for ack in ("bogus", "ALL", "%ff%fe", "quorum%00"):
            resp = self.paris.client.post("/v1/posts?ack=" + ack, {"text": "x"}, token=self.alice)
            self.assertEqual(resp.status, 400, (ack, resp))
            self.assertEqual(error_code(resp), "invalid_ack")
        # Raw bytes no header value should hold.
        resp = self.paris.client.request("GET", "/v1/posts/" + pid,
                                         headers={"Session-Token": "\udcff\udcfe".encode(
                                             "utf-8", "surrogateescape").decode("latin-1")})
        self.assertEqual(resp.status, 400, resp)
        self.assertEqual(self.paris.client.get("/health").status, 200)

    def test_a_token_from_another_cluster_is_400(self):
        workdir = os.path.join(self.cluster.workdir, "other")
        os.makedirs(workdir)
        other = Region("paris", workdir, args=["--rate-limit", "0"])
        try:
            tok = other.client.register("carol")["token"]
            foreign = other.client.post("/v1/posts", {"text": "elsewhere"},
                                        token=tok).headers["session-token"]
        finally:
            other.stop()
        for region in (self.paris, self.tokyo):
            resp, _ = self.get_post(region, "01a0000000000000-paris", foreign, wait_ms=0)
            self.assertEqual(resp.status, 400, (region.name, resp))
            self.assertIn("another store", resp.json["error"]["message"])

    def test_a_thousand_waiting_readers_do_not_stall_health(self):
        n = 1000
        self.admin(self.tokyo, {"paused": True})
        resp = self.post(self.paris, self.alice, "a thousand readers")
        pid, token = resp.json["id"], resp.headers["session-token"]
        req = (f"GET /v1/posts/{pid} HTTP/1.1\r\nHost: 127.0.0.1\r\nSession-Token: {token}\r\n"
               f"Session-Wait-Ms: 10000\r\nConnection: close\r\n\r\n").encode()
        socks = []
        try:
            for _ in range(n):
                socks.append(send_raw(self.tokyo.port, req))

            wait_for(lambda: metric(self.tokyo, "driftfeed_session_waiting") == n, 30,
                     what=f"{n} suspended readers")
            health = []
            for _ in range(50):
                t0 = time.monotonic()
                self.assertEqual(self.tokyo.client.get("/health").status, 200)
                health.append(time.monotonic() - t0)
            health.sort()
            print(f"\n/health with {n} readers waiting: p50 {health[25] * 1000:.2f} ms, "
                  f"max {health[-1] * 1000:.2f} ms")
            self.assertLess(health[25], 0.1)
            self.admin(self.tokyo, {"paused": False})
            t0 = time.monotonic()
            statuses = [read_status(s) for s in socks]
            print(f"{n} readers answered {time.monotonic() - t0:.2f} s after the resume")
            self.assertEqual(statuses.count(200), n, set(statuses))
        finally:
            for s in socks:
                s.close()
            self.admin(self.tokyo, {"paused": False})


class Unsigned(unittest.TestCase):
    """Over an unsigned log regions follow no peer's epoch: tokens still
    give read-your-writes, and a write's token merges the one it carried."""

    def test_read_your_writes_without_keys(self):
        cluster = Cluster(names=("paris", "tokyo"), keys=False, args=ARGS)
        try:
            paris, tokyo = cluster["paris"], cluster["tokyo"]
            tokyo.client.post("/v1/admin/replication", {"delay_ms": DELAY_MS})
            user = paris.client.register("flo")["token"]
            resp = paris.client.post("/v1/posts", {"text": "unsigned"}, token=user)
            pid, token = resp.json["id"], resp.headers["session-token"]
            self.assertEqual(tokyo.client.get("/v1/posts/" + pid).status, 404)
            there = tokyo.client.get("/v1/posts/" + pid, headers={"Session-Token": token,
                                                                  "Session-Wait-Ms": "5000"})
            self.assertEqual(there.status, 200, there)
            # A write in tokyo carrying paris's token answers both positions.
            wait_for(lambda: tokyo.client.get("/v1/users/flo@paris").status == 200, 20,
                     what="flo in tokyo")
            resp = tokyo.client.post("/v1/posts", {"text": "from tokyo"}, token=user,
                                     headers={"Session-Token": there.headers["session-token"]})
            self.assertEqual(resp.status, 201, resp)
            merged = {p[0]: p[2] for p in decode_token(resp.headers["session-token"])}
            self.assertEqual(set(merged), {"paris", "tokyo"})
            self.assertGreaterEqual(merged["paris"], decode_token(token)[0][2])
        finally:
            stop_checked(cluster)


def metric(region, name):
    m = region.client.get("/metrics").body
    return int(next(l for l in m.splitlines() if l.startswith(name + " ")).split()[1])


def send_raw(port, req):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(req)
    return s


class Shutdown(unittest.TestCase):
    def test_a_region_stops_cleanly_with_requests_waiting(self):
        """Suspended requests are let go when the region stops -- a token's
        answered 503, an acknowledged write's 202, or the connection closed
        if the server is gone before it is sent -- and it exits cleanly."""
        cluster = Cluster(names=("paris", "tokyo"), args=["--demo", "--rate-limit", "0",
                                                          "--ack-wait-ms", "30000"])
        try:
            paris, tokyo = cluster["paris"], cluster["tokyo"]
            for r in (paris, tokyo):
                r.client.post("/v1/admin/replication", {"paused": True})
            user = paris.client.register("dora")["token"]
            token = paris.client.post("/v1/posts", {"text": "x"},
                                      token=user).headers["session-token"]
            readers = [send_raw(tokyo.port, (
                f"GET /v1/timeline HTTP/1.1\r\nHost: x\r\nSession-Token: {token}\r\n"
                f"Session-Wait-Ms: 10000\r\n\r\n").encode()) for _ in range(20)]
            body = b'{"text": "waiting for tokyo"}'
            writer = send_raw(paris.port, (
                f"POST /v1/posts?ack=all HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {user}"
                f"\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode() + body)
            wait_for(lambda: metric(tokyo, "driftfeed_session_waiting") == 20, 20,
                     what="20 suspended readers")
            wait_for(lambda: metric(paris, "driftfeed_session_waiting") == 1, 20,
                     what="a write waiting for tokyo")
            t0 = time.monotonic()
            self.assertEqual(tokyo.stop(), 0)
            self.assertEqual(paris.stop(), 0)
            self.assertLess(time.monotonic() - t0, 15)
            self.assertLessEqual({read_status(s) for s in readers}, {503, None})
            self.assertIn(read_status(writer), (202, None))
        finally:
            stop_checked(cluster)


if __name__ == "__main__":
    unittest.main()
