"""test_wire.py -- malformed HTTP over raw sockets.

Every bad input gets a 4xx or a deliberate close (never a 2xx, a 5xx, a
crash or a hang past the server's --timeout), /health answers 200 right
after each one, and the process's resident memory returns near its
baseline at the end.

The region runs alone (no Redis) with small limits: --timeout 2,
--per-ip-connections 4, --max-connections 48, --threads 1 (libmicrohttpd
divides the connection limit among its pool threads; one thread makes the
limit exact). Different client addresses come from 127.0.0.0/8, which every
Linux loopback answers.

Accepted answers: any 4xx, a close, and for an unknown HTTP version 505
(RFC 9110 section 15.6.6 names exactly that status).
"""
import os
import socket
import tempfile
import threading
import time
import unittest

import faultlib
from faultlib import harness, wait_for

TIMEOUT_S = 2
PER_IP = 4
MAX_CONN = 48
REPEAT = int(os.environ.get("WIRE_REPEAT", "3"))  # rounds of every case, for the memory check

H = b"Host: x\r\n"
JSON = b"Content-Type: application/json\r\n"


def post(headers, body=b""):
    return b"POST /v1/users HTTP/1.1\r\n" + H + JSON + headers + b"\r\n" + body


def post_body(body):
    return post(b"Content-Length: %d\r\n" % len(body), body)


# name -> (bytes to send, how the client ends: "keep" | "shut_wr" | "close")
CASES = {
    # bad request lines
    "request line: garbage": (b"GARBAGE\r\n\r\n", "keep"),
    "request line: method only": (b"GET\r\n\r\n", "keep"),
    "request line: HTTP/0.9 style": (b"GET /health\r\n\r\n", "keep"),
    "request line: unknown version": (b"GET /health HTTP/9.9\r\n" + H + b"\r\n", "keep"),
    "request line: extra token": (b"GET /health HTTP/1.1 extra\r\n" + H + b"\r\n", "keep"),
    "request line: binary": (bytes(range(1, 256)) + b"\r\n\r\n", "keep"),
    "request line: NUL in path": (b"GET /he\x00alth HTTP/1.1\r\n" + H + b"\r\n", "keep"),
    "request line: 100 KB URI": (b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\n" + H + b"\r\n", "keep"),
    "request line: bad percent-encoding": (b"GET /v1/posts/%zz%00 HTTP/1.1\r\n" + H + b"\r\n", "keep"),
    "request line: unknown method": (b"BREW /health HTTP/1.1\r\n" + H + b"\r\n", "keep"),
    "request line: no leading slash": (b"GET health HTTP/1.1\r\n" + H + b"\r\n", "keep"),
    # headers
    "headers: one 100 KB header": (b"GET /health HTTP/1.1\r\n" + H + b"X-Big: " + b"a" * 100_000 + b"\r\n\r\n", "keep"),
    "headers: 1 MB header": (b"GET /health HTTP/1.1\r\n" + H + b"X-Big: " + b"a" * 1_000_000 + b"\r\n\r\n", "keep"),
    "headers: 5000 headers": (b"GET /health HTTP/1.1\r\n" + H + b"".join(b"X-H%d: v\r\n" % i for i in range(5000)) + b"\r\n", "keep"),
    "headers: line without colon": (b"GET /health HTTP/1.1\r\n" + H + b"NoColonHere\r\n\r\n", "keep"),
    "headers: never end, then close": (b"GET /health HTTP/1.1\r\n" + H + b"X-A: b\r\n", "shut_wr"),
    # Content-Length
    "content-length: negative": (post(b"Content-Length: -1\r\n", b"{}"), "keep"),
    "content-length: not a number": (post(b"Content-Length: abc\r\n", b"{}"), "keep"),
    "content-length: list": (post(b"Content-Length: 16, 5\r\n", b'{"name":"x1"}'), "keep"),
    "content-length: plus sign": (post(b"Content-Length: +13\r\n", b'{"name":"x2"}'), "keep"),
    "content-length: 2^64 and more": (post(b"Content-Length: 99999999999999999999999\r\n", b"{}"), "keep"),
    "content-length: over the 64 KiB cap": (post(b"Content-Length: 70000\r\n"), "keep"),
    "content-length: larger than body, then half-close": (post(b"Content-Length: 100\r\n", b'{"name":'), "shut_wr"),
    "content-length: larger than body, then close": (post(b"Content-Length: 100\r\n", b'{"name":'), "close"),
    "content-length: larger than body, then silence": (post(b"Content-Length: 100\r\n", b'{"name":'), "keep"),
    "content-length with transfer-encoding": (post(b"Content-Length: 2\r\nTransfer-Encoding: chunked\r\n", b"{}"), "keep"),
    # chunked
    "chunked: size not hex": (post(b"Transfer-Encoding: chunked\r\n", b"zz\r\n{}\r\n0\r\n\r\n"), "keep"),
    "chunked: negative size": (post(b"Transfer-Encoding: chunked\r\n", b"-5\r\n{}\r\n0\r\n\r\n"), "keep"),
    "chunked: size overflows": (post(b"Transfer-Encoding: chunked\r\n", b"ffffffffffffffffff\r\n{}\r\n0\r\n\r\n"), "keep"),
    "chunked: missing CRLF after data": (post(b"Transfer-Encoding: chunked\r\n", b"2\r\n{}XX0\r\n\r\n"), "keep"),
    "chunked: truncated, then half-close": (post(b"Transfer-Encoding: chunked\r\n", b'10\r\n{"na'), "shut_wr"),
    "chunked: truncated, then close": (post(b"Transfer-Encoding: chunked\r\n", b'10\r\n{"na'), "close"),
    "chunked: 96 KiB over the cap": (post(b"Transfer-Encoding: chunked\r\n",
                                         (b"8000\r\n" + b"a" * 0x8000 + b"\r\n") * 3 + b"0\r\n\r\n"), "keep"),
    "transfer-encoding: unknown coding": (post(b"Transfer-Encoding: gzip\r\n", b"{}"), "keep"),
    # bodies
    "body: JSON nested 30000 deep": (post_body(b"[" * 30000 + b"]" * 30000), "keep"),
    "body: invalid UTF-8": (post_body(b'{"name":"\xff\xfe"}'), "keep"),
    "body: NUL inside a string": (post_body(b'{"name":"a\\u0000b"}'), "keep"),
    "body: duplicate keys": (post_body(b'{"name":"a","name":"b"}'), "keep"),
    "body: number where text goes": (post_body(b'{"name":1e999}'), "keep"),
    "body: not JSON content type": (b"POST /v1/users HTTP/1.1\r\n" + H + b"Content-Type: text/plain\r\nContent-Length: 2\r\n\r\n{}", "keep"),
}


def source(addr):
    """A socket bound to a loopback source address (127.x.y.z)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((addr, 0))
    return s


def exchange(port, data, end, deadline_s, src="127.0.0.1"):
    """Sends data, ends the client side as asked and reads the first answer.
    Returns ("status", code), ("closed", None) when the server closed without
    an answer, ("sent", None) when the client closed itself, or ("hang", None)
    when nothing happened within deadline_s."""
    s = source(src)
    s.settimeout(deadline_s)
    try:
        s.connect(("127.0.0.1", port))
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server refused early and closed: read what it said
        if end == "close":
            return ("sent", None)
        if end == "shut_wr":
            s.shutdown(socket.SHUT_WR)
        buf = b""
        while b"\r\n" not in buf:
            try:
                chunk = s.recv(4096)
            except ConnectionResetError:
                return ("closed", None) if not buf else ("status", int(buf.split()[1]))
            if not chunk:
                break
            buf += chunk
        if not buf:
            return ("closed", None)
        line = buf.split(b"\r\n", 1)[0].split()
        return ("status", int(line[1]))
    except socket.timeout:
        return ("hang", None)
    finally:
        s.close()


def health(port, src="127.0.0.1", timeout=2):
    s = source(src)
    s.settimeout(timeout)
    try:
        s.connect(("127.0.0.1", port))
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        buf = b""
        while b"\r\n" not in buf:
            chunk = s.recv(4096)
            if not chunk:
                break
            buf += chunk
        return int(buf.split()[1]) if buf else None
    finally:
        s.close()


class Wire(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.workdir = tempfile.mkdtemp(prefix="driftfeed-wire-")
        cls.region = harness.Region(
            "solo", cls.workdir,
            args=["--timeout", str(TIMEOUT_S), "--per-ip-connections", str(PER_IP),
                  "--max-connections", str(MAX_CONN), "--threads", "1"])
        cls.port = cls.region.port
        cls.pid = cls.region.proc.pid

    @classmethod
    def tearDownClass(cls):
        cls.region.stop()
        ok = harness.sanitizer_env_ok(cls.region)
        if os.environ.get("KEEP_TEST_DIRS") != "1":
            import shutil
            shutil.rmtree(cls.workdir, ignore_errors=True)
        assert ok, "sanitizer report in the region's log"

    def assert_healthy(self, after):
        self.assertTrue(self.region.alive(), f"region died after {after}")
        self.assertEqual(health(self.port), 200, f"/health after {after}")

    def run_case(self, name):
        data, end = CASES[name]
        kind, code = exchange(self.port, data, end, TIMEOUT_S + 4)
        self.assertNotEqual(kind, "hang", f"{name}: no answer and no close within {TIMEOUT_S + 4}s")
        if kind == "status":
            ok = 400 <= code < 500 or (code == 505 and "version" in name)
            self.assertTrue(ok, f"{name}: answered {code}")
        self.assert_healthy(name)
        return kind, code

    def test_1_malformed_requests(self):
        """Every class of malformed request, REPEAT times (memory is checked
        against the baseline taken before the first round)."""
        for _ in range(3):  # warm up: allocator arenas, RocksDB caches
            self.assertEqual(health(self.port), 200)
            exchange(self.port, CASES["body: invalid UTF-8"][0], "keep", 5)
        base = faultlib.vm_rss_kib(self.pid)
        outcomes = {}
        for name in CASES:  # one round at a time so each failure names its case
            with self.subTest(case=name):
                outcomes[name] = self.run_case(name)
        for _ in range(REPEAT - 1):
            # All cases at once, each from its own address (under the limits).
            threads = [threading.Thread(target=exchange,
                                        args=(self.port, d, e, TIMEOUT_S + 4, f"127.0.1.{i + 1}"))
                       for i, (d, e) in enumerate(CASES.values())]
            for t in threads:
                t.start()
            for t in threads:
                t.join(TIMEOUT_S + 10)
            self.assert_healthy("a round of all cases")
        print("\nwire outcomes:", flush=True)
        for name, (kind, code) in outcomes.items():
            print(f"  {name:55s} {code if kind == 'status' else kind}", flush=True)
        slack = max(8 * 1024, base // 4)
        last = []

        def back_to_baseline():
            last[:] = [faultlib.vm_rss_kib(self.pid)]
            return last[0] <= base + slack
        try:
            wait_for(back_to_baseline, 15, interval=0.25, what="RSS back near baseline")
        finally:
            print(f"RSS: baseline {base} KiB, after {REPEAT} rounds of {len(CASES)} cases "
                  f"{last[0] if last else '?'} KiB (allowed +{slack} KiB)", flush=True)

    def test_2_conflicting_content_lengths_are_refused(self):
        """Two different Content-Length values make the framing ambiguous (a
        proxy in front may use the other one: request smuggling). RFC 9112
        section 6.3: the server must answer 400 and close. The body here is a
        valid registration if the first value is believed."""
        body = b'{"name":"smuggled"}'
        data = post(b"Content-Length: %d\r\nContent-Length: 5\r\n" % len(body), body)
        kind, code = exchange(self.port, data, "keep", TIMEOUT_S + 4)
        self.assert_healthy("conflicting Content-Length")
        self.assertFalse(kind == "status" and code < 400,
                         f"conflicting Content-Length headers were accepted: {code}")
        self.assertNotEqual(kind, "hang")

    def test_3_slowloris_does_not_starve_others(self):
        """PER_IP connections from 127.0.0.2 send a request at 1 byte/s for
        5 s; meanwhile a client from 127.0.0.1 gets /health at once, every
        0.5 s. When they stop sending, the server closes them within its
        --timeout."""
        req = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100
        socks = []
        for _ in range(PER_IP):
            s = source("127.0.0.2")
            s.settimeout(TIMEOUT_S + 4)
            s.connect(("127.0.0.1", self.port))
            socks.append(s)
        try:
            served, slowest = 0, 0.0
            t0 = time.monotonic()
            for i in range(10):  # 1 byte/s for 5 s, /health every 0.5 s
                if i % 2 == 0:
                    for s in socks:
                        s.send(req[i // 2:i // 2 + 1])
                t = time.monotonic()
                self.assertEqual(health(self.port, timeout=1), 200, "others starved by slowloris")
                slowest = max(slowest, time.monotonic() - t)
                served += 1
                threading.Event().wait(max(0.0, t0 + 0.5 * (i + 1) - time.monotonic()))
            # Past the per-IP limit, the slow client's next connection is closed.
            self.assertEqual(exchange(self.port, b"GET /health HTTP/1.1\r\n" + H + b"\r\n", "keep",
                                      TIMEOUT_S + 4, src="127.0.0.2")[0], "closed")
            t1 = time.monotonic()
            for s in socks:  # silence: the idle timeout must close them
                self.assertEqual(s.recv(4096), b"", "a silent slowloris connection got an answer")
            closed_after = time.monotonic() - t1
            print(f"\nslowloris: {served} /health answered meanwhile (slowest {slowest * 1000:.0f} ms); "
                  f"silent slow connections closed after {closed_after:.1f}s", flush=True)
            self.assertLess(closed_after, TIMEOUT_S + 2)
        finally:
            for s in socks:
                s.close()
        self.assert_healthy("slowloris")

    def test_4_connections_over_the_limits(self):
        """Past --per-ip-connections a new connection is closed at once; past
        --max-connections it is not served until a slot frees (it waits in
        the listen backlog), then it is."""
        def open_from(addr, n):
            out = []
            for _ in range(n):
                s = source(addr)
                s.settimeout(3)
                s.connect(("127.0.0.1", self.port))
                s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                out.append(s)
            return out

        def answered(s):
            try:
                return s.recv(64).startswith(b"HTTP/1.1 200")
            except (socket.timeout, ConnectionResetError):
                return False

        held = open_from("127.0.0.3", PER_IP + 3)
        try:
            results = [answered(s) for s in held]
            self.assertEqual(results, [True] * PER_IP + [False] * 3, "per-IP limit")
            for s in held[PER_IP:]:
                s.close()
            held = held[:PER_IP]
            for k in range(MAX_CONN // PER_IP - 1):
                more = open_from(f"127.0.2.{k + 1}", PER_IP)
                held += more
                self.assertTrue(all(answered(s) for s in more))
            # Every slot is taken now.
            extra = open_from("127.0.0.5", 1)[0]
            extra.settimeout(1.5)
            self.assertFalse(answered(extra), "served past --max-connections")
            held.pop().close()
            extra.settimeout(5)
            self.assertTrue(answered(extra), "not served once a slot was free")
            extra.close()
        finally:
            for s in held:
                s.close()
        wait_for(lambda: health(self.port) == 200, 5, what="/health after the limits")


if __name__ == "__main__":
    unittest.main()
