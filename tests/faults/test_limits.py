"""test_limits.py -- the configurable limits: per-IP connections
(--per-ip-connections), the idle/request timeout (--timeout), the per-token
write rate (--rate-limit, --rate-burst: 429 with Retry-After), account
creation per client address (--signup-rate, --signup-burst), --rate-limit 0
turning them all off, generous defaults, and bad values refused at start.

Each test starts its own standalone region (no Redis is needed for limits).
"""
import shutil
import socket
import subprocess
import tempfile
import time
import unittest

import faultlib
from faultlib import harness, wait_for


def connect(port, src, timeout=3):
    s = socket.socket()
    s.bind((src, 0))
    s.settimeout(timeout)
    s.connect(("127.0.0.1", port))
    return s


def served(s):
    """Sends GET /health on s; True if it is answered 200."""
    try:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        return s.recv(64).startswith(b"HTTP/1.1 200")
    except (socket.timeout, ConnectionResetError, BrokenPipeError):
        return False


class Limits(unittest.TestCase):
    def region(self, *args):
        workdir = tempfile.mkdtemp(prefix="driftfeed-limits-")
        reg = harness.Region("solo", workdir, args=list(args), open_signups=False)

        def cleanup():
            reg.stop()
            shutil.rmtree(workdir, ignore_errors=True)
        self.addCleanup(cleanup)
        return reg

    def signup(self, reg, name, source="127.0.0.1"):
        h = faultlib.Http("127.0.0.1", reg.port, source=source)
        r = h.request("POST", "/v1/users", {"name": name})
        h.close()
        return r

    def user(self, reg, name, source="127.0.0.1"):
        r = self.signup(reg, name, source)
        self.assertEqual(r.status, 201, r)
        return r.json["token"]

    def test_per_ip_connection_limit(self):
        reg = self.region("--per-ip-connections", "3", "--threads", "1")
        mine = [connect(reg.port, "127.0.0.2") for _ in range(3)]
        try:
            self.assertTrue(all(served(s) for s in mine))
            extra = connect(reg.port, "127.0.0.2")
            self.assertFalse(served(extra), "a 4th connection from one address was served")
            extra.close()
            other = connect(reg.port, "127.0.0.3")
            self.assertTrue(served(other), "another address was refused")
            other.close()
            mine.pop().close()
            # The freed slot is usable again (the server notices the close).
            def again():
                s = connect(reg.port, "127.0.0.2", timeout=1)
                try:
                    return served(s)
                finally:
                    s.close()
            wait_for(again, 5, what="a slot freed by a closed connection")
        finally:
            for s in mine:
                s.close()

    def test_request_timeout(self):
        reg = self.region("--timeout", "2")
        cases = {
            "idle, no bytes": b"",
            "half a request line": b"GET /hea",
            "headers never end": b"GET /health HTTP/1.1\r\nHost: x\r\n",
            "body never comes": b"POST /v1/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                b"Content-Length: 50\r\n\r\n{",
        }
        for name, data in cases.items():
            with self.subTest(case=name):
                s = connect(reg.port, "127.0.0.1", timeout=10)
                t0 = time.monotonic()
                if data:
                    s.sendall(data)
                try:
                    got = s.recv(4096)
                except ConnectionResetError:
                    got = b""
                took = time.monotonic() - t0
                s.close()
                self.assertEqual(got, b"", f"{name}: answered {got[:60]!r}")
                self.assertTrue(1.5 <= took <= 4.5, f"{name}: closed after {took:.1f}s, --timeout 2")
        # A keep-alive connection idle after an answer is closed too.
        s = connect(reg.port, "127.0.0.1", timeout=10)
        self.assertTrue(served(s))
        t0 = time.monotonic()
        buf = b""
        while True:  # the rest of the first answer, then the close
            chunk = s.recv(4096)
            if not chunk:
                break
            buf += chunk
        took = time.monotonic() - t0
        s.close()
        self.assertTrue(1.5 <= took <= 4.5, f"idle keep-alive closed after {took:.1f}s")

    def test_write_rate_limit(self):
        reg = self.region("--rate-limit", "2", "--rate-burst", "5")
        h = faultlib.Http("127.0.0.1", reg.port)
        ta, tb, tc = self.user(reg, "alice"), self.user(reg, "bob"), self.user(reg, "carol")
        statuses = [h.request("POST", "/v1/posts", {"text": f"p{i}"}, token=ta).status for i in range(5)]
        self.assertEqual(statuses, [201] * 5, "the burst")
        r = h.request("POST", "/v1/posts", {"text": "one too many"}, token=ta)
        self.assertEqual(r.status, 429, r)
        self.assertEqual(r.json["error"]["code"], "rate_limited")
        retry = int(r.headers["retry-after"])
        self.assertTrue(1 <= retry <= 5, retry)
        # Every write endpoint takes from the same bucket; reads do not.
        for method, path, body in (("POST", "/v1/messages", {"to": "bob@solo", "text": "hi"}),
                                   ("PUT", "/v1/following/bob@solo", None),
                                   ("DELETE", "/v1/following/bob@solo", None)):
            r = h.request(method, path, body, token=ta)
            self.assertEqual(r.status, 429, f"{method} {path}: {r!r}")
            self.assertIn("retry-after", r.headers)
        for _ in range(20):
            self.assertEqual(h.get("/v1/timeline", token=ta).status, 200)
        # Other tokens are not affected.
        self.assertEqual(h.request("POST", "/v1/posts", {"text": "bob"}, token=tb).status, 201)
        # After Retry-After, writing works again.
        t0 = time.monotonic()
        wait_for(lambda: h.request("POST", "/v1/posts", {"text": "later"}, token=ta).status == 201,
                 retry + 2, interval=0.25, what="a write after Retry-After")
        print(f"\nrate limit 2/s burst 5: 6th write 429 Retry-After {retry}s; "
              f"writing again after {time.monotonic() - t0:.2f}s", flush=True)
        # Deleting takes a token too.
        pid = h.request("POST", "/v1/posts", {"text": "c"}, token=tc).json["id"]
        for i in range(6):
            h.request("POST", "/v1/posts", {"text": f"c{i}"}, token=tc)
        self.assertEqual(h.request("DELETE", f"/v1/posts/{pid}", token=tc).status, 429)
        h.close()

    def test_signup_rate_limit(self):
        """Accounts per client address: a burst, then 429 with Retry-After;
        another address is not affected; after Retry-After one more. So the
        write limit per token can't be dodged by minting tokens."""
        reg = self.region("--signup-rate", "30", "--signup-burst", "3")
        for i in range(3):
            self.user(reg, f"a{i}", source="127.0.0.2")
        r = self.signup(reg, "a3", source="127.0.0.2")
        self.assertEqual(r.status, 429, r)
        self.assertEqual(r.json["error"]["code"], "rate_limited")
        retry = int(r.headers["retry-after"])
        self.assertTrue(1 <= retry <= 2, retry)  # 30/min: one every 2 s
        # A refused signup made no account.
        h = faultlib.Http("127.0.0.1", reg.port)
        self.assertEqual(h.get("/v1/users/a3@solo").status, 404)
        h.close()
        self.user(reg, "b0", source="127.0.0.3")
        t0 = time.monotonic()
        wait_for(lambda: self.signup(reg, "a3", source="127.0.0.2").status == 201,
                 retry + 2, interval=0.25, what="a signup after Retry-After")
        self.assertGreaterEqual(time.monotonic() - t0, 0.5)
        self.assertEqual(self.signup(reg, "a4", source="127.0.0.2").status, 429)

    def test_default_signup_limit(self):
        """The default: 5 accounts at once from one address, then 10 a minute."""
        reg = self.region()
        for i in range(5):
            self.user(reg, f"u{i}", source="127.0.0.4")
        r = self.signup(reg, "u5", source="127.0.0.4")
        self.assertEqual(r.status, 429, r)
        self.assertTrue(1 <= int(r.headers["retry-after"]) <= 6, r.headers)

    def test_idempotency_keys_expire(self):
        """--idempotency-window-s: within it a repeat answers the first post;
        after it the key is free again (a new post, even with another body)."""
        reg = self.region("--idempotency-window-s", "1")
        h = faultlib.Http("127.0.0.1", reg.port)
        t = self.user(reg, "keeper")
        key = {"Idempotency-Key": "k1"}
        t0 = time.monotonic()
        first = h.request("POST", "/v1/posts", {"text": "one"}, token=t, headers=key)
        self.assertEqual(first.status, 201, first)
        again = h.request("POST", "/v1/posts", {"text": "one"}, token=t, headers=key)
        if time.monotonic() - t0 < 0.9:  # still inside the window
            self.assertEqual(again.json["id"], first.json["id"])
        later = []

        def new_post():
            r = h.request("POST", "/v1/posts", {"text": "two"}, token=t, headers=key)
            self.assertIn(r.status, (201, 422), r)
            later.append(r)
            return r.status == 201
        wait_for(new_post, 5, interval=0.1, what="the key to expire")
        self.assertGreaterEqual(time.monotonic() - t0, 1.0)
        self.assertNotEqual(later[-1].json["id"], first.json["id"])
        self.assertTrue(all(r.status == 422 for r in later[:-1]), later)
        # The key now names the new post, for a new window.
        r = h.request("POST", "/v1/posts", {"text": "two"}, token=t, headers=key)
        self.assertEqual(r.json["id"], later[-1].json["id"])
        h.close()

    def test_rate_limit_zero_is_off(self):
        reg = self.region("--rate-limit", "0")
        h = faultlib.Http("127.0.0.1", reg.port)
        t = self.user(reg, "loader")
        statuses = {h.request("POST", "/v1/posts", {"text": f"p{i}"}, token=t).status for i in range(400)}
        self.assertEqual(statuses, {201})
        h.close()
        # The signup limit is off too: 40 accounts from one address.
        self.assertEqual({self.signup(reg, f"m{i}").status for i in range(40)}, {201})

    def test_defaults_are_generous(self):
        """Defaults (100 writes/s, burst 200, 2048 connections per IP) never
        get in the way of an ordinary client."""
        reg = self.region()
        h = faultlib.Http("127.0.0.1", reg.port)
        t = self.user(reg, "ordinary")
        statuses = {h.request("POST", "/v1/posts", {"text": f"p{i}"}, token=t).status for i in range(150)}
        self.assertEqual(statuses, {201})
        socks = [connect(reg.port, "127.0.0.1") for _ in range(64)]
        try:
            self.assertTrue(all(served(s) for s in socks))
        finally:
            for s in socks:
                s.close()
        h.close()

    def test_bad_limit_values_are_refused(self):
        for flag, value in (("--rate-limit", "-1"), ("--rate-limit", "many"), ("--rate-burst", "0"),
                            ("--timeout", "-5"), ("--timeout", "x"), ("--per-ip-connections", "-1"),
                            ("--max-connections", "0"), ("--max-connections", "1e3"),
                            ("--signup-rate", "-1"), ("--signup-burst", "0"),
                            ("--idempotency-window-s", "0"), ("--idempotency-window-s", "1d")):
            with self.subTest(flag=flag, value=value):
                p = subprocess.run([harness.BIN, "--region", "x", "--data", "/nonexistent/never",
                                    flag, value], capture_output=True, timeout=10)
                self.assertEqual(p.returncode, 2, p)
                self.assertIn(flag.encode(), p.stderr)


if __name__ == "__main__":
    unittest.main()
