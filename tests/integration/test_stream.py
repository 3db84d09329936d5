"""test_stream.py -- GET /v1/stream (Server-Sent Events) without a browser:
order, resuming with Last-Event-ID, reset when resuming is impossible, slow
clients, 500 idle streams costing no CPU and bounded memory, and the caps:
streams per user, streams per region, rings freed."""
import os
import socket
import time
import unittest

import harness


class Stream(harness.EventStream):
    """The caller's /v1/stream (resuming from last_event_id when given)."""

    def __init__(self, port, token, last_event_id=None):
        headers = {"Authorization": "Bearer " + token}
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        super().__init__(port, "/v1/stream", headers)

    def last_id(self):
        with self.lock:
            return [e[0] for e in self.events if e[0]][-1]


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class StreamTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        import tempfile
        cls.dir = tempfile.mkdtemp(prefix="driftfeed-stream-")
        cls.region = harness.Region("paris", cls.dir, args=["--rate-limit", "0"])
        cls.c = cls.region.client

    @classmethod
    def tearDownClass(cls):
        cls.region.stop()
        assert harness.sanitizer_env_ok(cls.region), f"sanitizer report in {cls.region.logpath}"

    def users(self, prefix):
        a = self.c.register(prefix + "_a")
        b = self.c.register(prefix + "_b")
        self.c.follow(b["token"], a["id"])
        return a, b

    def test_events_arrive_in_order(self):
        a, b = self.users("order")
        s = Stream(self.region.port, b["token"])
        self.assertEqual(s.status, 200)
        harness.wait_for(lambda: s.of("hello"), 5, what="hello")
        texts = [f"m{i}" for i in range(20)]
        for t in texts:
            r = self.c.post("/v1/messages", {"to": b["id"], "text": t}, token=a["token"])
            self.assertEqual(r.status, 201)
        post = self.c.post_text(a["token"], "a post for b")
        harness.wait_for(lambda: len(s.of("message")) == 20 and s.of("post"), 10, what="all events")
        import json
        self.assertEqual([json.loads(e[2])["text"] for e in s.of("message")], texts)
        self.assertEqual(json.loads(s.of("post")[0][2])["id"], post["id"])
        self.assertIn("delivered_at", json.loads(s.of("post")[0][2]))
        seqs = [int(e[0].split(".")[1]) for e in s.events if e[0]]
        self.assertEqual(seqs, sorted(seqs))
        self.assertEqual(len(seqs), len(set(seqs)), "event ids repeat")
        self.c.delete(f"/v1/posts/{post['id']}", token=a["token"])
        harness.wait_for(lambda: s.of("delete"), 5, what="the delete event")
        self.assertEqual(json.loads(s.of("delete")[0][2])["id"], post["id"])
        s.close()

    def test_reconnect_with_last_event_id_misses_nothing(self):
        import json
        a, b = self.users("resume")
        s = Stream(self.region.port, b["token"])
        harness.wait_for(lambda: s.of("hello"), 5, what="hello")
        for i in range(5):
            self.c.post("/v1/messages", {"to": b["id"], "text": f"before{i}"}, token=a["token"])
        harness.wait_for(lambda: len(s.of("message")) == 5, 5, what="first five")
        last = s.last_id()
        s.close()
        for i in range(7):
            self.c.post("/v1/messages", {"to": b["id"], "text": f"while{i}"}, token=a["token"])
        s2 = Stream(self.region.port, b["token"], last_event_id=last)
        for i in range(3):
            self.c.post("/v1/messages", {"to": b["id"], "text": f"after{i}"}, token=a["token"])
        harness.wait_for(lambda: len(s2.of("message")) == 10, 5, what="missed and new messages")
        got = [json.loads(e[2])["text"] for e in s2.of("message")]
        self.assertEqual(got, [f"while{i}" for i in range(7)] + [f"after{i}" for i in range(3)])
        self.assertEqual(s2.of("reset"), [])
        s2.close()

    def test_resume_from_unknown_position_says_reset(self):
        a, b = self.users("reset")
        s = Stream(self.region.port, b["token"], last_event_id="1.5")  # another boot
        harness.wait_for(lambda: s.of("reset"), 5, what="a reset event")
        s.close()

    def test_slow_client_gets_reset_not_unbounded_memory(self):
        a, b = self.users("slow")
        # A client that connects and never reads.
        raw = socket.create_connection(("127.0.0.1", self.region.port))
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        raw.sendall(f"GET /v1/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {b['token']}\r\n\r\n".encode())
        pid = self.region.proc.pid
        before = rss_kib(pid)
        text = "x" * 1900
        for i in range(600):  # more than the per-user ring (256) holds
            r = self.c.post("/v1/messages", {"to": b["id"], "text": f"{i} {text}"}, token=a["token"])
            self.assertEqual(r.status, 201)
        grown = rss_kib(pid) - before
        self.assertLess(grown, 64 * 1024, f"RSS grew by {grown} KiB for one stalled stream")
        self.assertEqual(self.c.get("/health").status, 200)
        # A fresh stream still works and a resume from far behind says reset.
        s = Stream(self.region.port, b["token"], last_event_id=None)
        harness.wait_for(lambda: s.of("hello"), 5, what="hello")
        hello_id = s.of("hello")[0][0]
        boot = hello_id.split(".")[0]
        s.close()
        s2 = Stream(self.region.port, b["token"], last_event_id=f"{boot}.1")
        harness.wait_for(lambda: s2.of("reset"), 5, what="reset for a position out of the ring")
        s2.close()
        raw.close()

    def test_500_idle_streams_cost_no_cpu_and_bounded_memory(self):
        """50 users with 10 streams each (under the per-user cap of 16)."""
        a = self.c.register("idle_a")
        readers = []
        for i in range(50):
            b = self.c.register(f"idle_b{i}")
            self.c.follow(b["token"], a["id"])
            readers.append(b)
        pid = self.region.proc.pid
        rss0 = rss_kib(pid)
        socks = []
        try:
            for b in readers:
                for _ in range(10):
                    sk = socket.create_connection(("127.0.0.1", self.region.port))
                    sk.sendall(f"GET /v1/stream?access_token={b['token']} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                    socks.append(sk)
            # Every stream got its answer and its hello.
            for sk in socks:
                sk.settimeout(10)
                buf = b""
                while b"event: hello" not in buf:
                    chunk = sk.recv(4096)
                    self.assertTrue(chunk, "stream closed early")
                    buf += chunk
            rss = rss_kib(pid)
            self.assertLess(rss - rss0, 100 * 1024, f"500 streams took {rss - rss0} KiB")
            cpu0 = cpu_seconds(pid)
            t0 = time.monotonic()
            harness.wait_for(lambda: time.monotonic() - t0 >= 3, 5, what="3 idle seconds")
            used = cpu_seconds(pid) - cpu0
            self.assertLess(used, 0.15, f"500 idle streams used {used:.2f} s of CPU in 3 s")
            # All of them are alive: one post reaches every stream.
            post = self.c.post_text(a["token"], "to all 500")
            for sk in socks:
                buf = b""
                while post["id"].encode() not in buf:
                    chunk = sk.recv(65536)
                    self.assertTrue(chunk, "stream closed early")
                    buf += chunk
            self.assertEqual(self.c.get("/health").status, 200)
        finally:
            for sk in socks:
                sk.close()


def metric(client, name):
    r = client.get("/metrics")
    for line in r.body.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


class StreamLimitTest(unittest.TestCase):
    """--streams-per-user 3, --max-streams 12: a user's extra stream ends the
    oldest, the region's extra stream is 503, rings go when streams do."""
    PER_USER, MAX = 3, 12

    @classmethod
    def setUpClass(cls):
        import tempfile
        cls.dir = tempfile.mkdtemp(prefix="driftfeed-stream-limits-")
        cls.region = harness.Region("paris", cls.dir, args=[
            "--rate-limit", "0", "--streams-per-user", str(cls.PER_USER),
            "--max-streams", str(cls.MAX)])
        cls.c = cls.region.client

    @classmethod
    def tearDownClass(cls):
        cls.region.stop()
        assert harness.sanitizer_env_ok(cls.region), f"sanitizer report in {cls.region.logpath}"

    def setUp(self):
        self.wait_all_closed()  # the streams an earlier test closed

    def open_streams(self, token, n):
        out = []
        for _ in range(n):
            s = Stream(self.region.port, token)
            self.assertEqual(s.status, 200)
            harness.wait_for(lambda: s.of("hello"), 5, what="hello")
            out.append(s)
        return out

    def wait_all_closed(self):
        harness.wait_for(lambda: metric(self.c, "driftfeed_streams_open") == 0, 10,
                         what="no stream open")

    def test_a_users_extra_stream_ends_the_oldest(self):
        a = self.c.register("cap_a")
        b = self.c.register("cap_b")
        pid = self.region.proc.pid
        first = self.open_streams(b["token"], self.PER_USER)
        newest = self.open_streams(b["token"], 1)[0]
        oldest = first[0]
        harness.wait_for(lambda: not oldest.thread.is_alive(), 5, what="the oldest stream to end")
        closed = oldest.of("closed")
        self.assertEqual(len(closed), 1, oldest.events)
        self.assertIn("too_many_streams", closed[0][2])
        # The others still get events.
        self.c.post("/v1/messages", {"to": b["id"], "text": "still here"}, token=a["token"])
        for s in first[1:] + [newest]:
            harness.wait_for(lambda: s.of("message"), 5, what="the message on a live stream")
        self.assertEqual(oldest.of("message"), [])
        # Far more streams than the cap: memory and open streams stay bounded.
        rss0 = rss_kib(pid)
        evicted0 = metric(self.c, "driftfeed_streams_evicted_total")
        churn = []
        for i in range(150):
            s = Stream(self.region.port, b["token"])
            self.assertEqual(s.status, 200)
            churn.append(s)
            if len(churn) > 2 * self.PER_USER:  # the client side lets go of ended ones
                harness.wait_for(lambda: not churn[0].thread.is_alive(), 5, what="an old stream to end")
                churn.pop(0).close()
        harness.wait_for(lambda: metric(self.c, "driftfeed_streams_open") == self.PER_USER, 5,
                         what=f"{self.PER_USER} streams open")
        self.assertGreaterEqual(metric(self.c, "driftfeed_streams_evicted_total") - evicted0, 150)
        grown = rss_kib(pid) - rss0
        self.assertLess(grown, 16 * 1024, f"150 streams past the cap grew RSS by {grown} KiB")
        for s in first + [newest] + churn:
            s.close()
        self.wait_all_closed()

    def test_the_regions_extra_stream_is_503(self):
        users = [self.c.register(f"glob{i}") for i in range(self.MAX // 2 + 1)]
        streams = []
        for u in users[:-1]:
            streams += self.open_streams(u["token"], 2)
        self.assertEqual(metric(self.c, "driftfeed_streams_open"), self.MAX)
        refused0 = metric(self.c, "driftfeed_streams_refused_total")
        r = self.c.get("/v1/stream", token=users[-1]["token"])
        self.assertEqual(r.status, 503, r)
        self.assertEqual(r.json["error"]["code"], "too_many_streams")
        self.assertIn("retry-after", r.headers)
        self.assertEqual(metric(self.c, "driftfeed_streams_refused_total"), refused0 + 1)
        self.assertEqual(self.c.get("/health").status, 200)
        # A closed stream makes room.
        streams.pop().close()
        harness.wait_for(lambda: metric(self.c, "driftfeed_streams_open") < self.MAX, 5,
                         what="a stream to close")
        s = Stream(self.region.port, users[-1]["token"])
        self.assertEqual(s.status, 200)
        for x in streams + [s]:
            x.close()
        self.wait_all_closed()

    def test_rings_go_soon_after_their_streams(self):
        u = self.c.register("ring_owner")
        streams = self.open_streams(u["token"], 2)
        self.assertGreaterEqual(metric(self.c, "driftfeed_stream_users"), 1)
        last = streams[0].last_id()
        for s in streams:
            s.close()
        # A quick reconnect still resumes (nothing to reset)...
        s = Stream(self.region.port, u["token"], last_event_id=last)
        harness.wait_for(lambda: s.of("hello"), 5, what="hello")
        self.assertEqual(s.of("reset"), [])
        s.close()
        self.wait_all_closed()
        # ...and a few seconds after the last stream the ring is gone.
        harness.wait_for(lambda: metric(self.c, "driftfeed_stream_users") == 0, 15,
                         what="every user's ring freed")
        s = Stream(self.region.port, u["token"], last_event_id=last)
        harness.wait_for(lambda: s.of("reset"), 5, what="reset: the ring is gone")
        s.close()


if __name__ == "__main__":
    unittest.main()
