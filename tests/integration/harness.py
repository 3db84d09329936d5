"""harness.py -- real processes for integration tests: a redis-server on its
own port, driftfeed regions, an HTTP client, and polling with deadlines.

Nothing here mocks anything: tests talk HTTP to real driftfeed processes that
replicate through a real Redis. Every wait is a poll with a deadline.
"""
import datetime
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("DRIFTFEED_BIN", os.path.join(ROOT, "build", "driftfeed"))
REDIS_BIN = shutil.which("redis-server") or "/usr/bin/redis-server"


def _ephemeral_range():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = (int(x) for x in f.read().split())
            return low, high
    except (OSError, ValueError):
        return 32768, 60999


_EPHEMERAL = _ephemeral_range()
_ports = random.Random(os.getpid() ^ time.monotonic_ns())


def port_free(port):
    """True if 127.0.0.1:port can be bound now: nobody listens on it and no
    connection uses it as its local end."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port():
    """A TCP port on 127.0.0.1 nobody listens on right now, taken from
    below the kernel's ephemeral range: a port the kernel hands out (bind to
    0) can be taken again by any outgoing connection's local end before the
    region binds it, and regions, Redis clients and tests make many."""
    low = 10000
    high = _EPHEMERAL[0] - 1 if _EPHEMERAL[0] > low + 1000 else 65535
    for _ in range(200):
        port = _ports.randint(low, high)
        if not _EPHEMERAL[0] <= port <= _EPHEMERAL[1] and port_free(port):
            return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(cond, timeout=10.0, interval=0.05, what="condition"):
    """Polls cond() until it returns a truthy value; returns it. Raises
    AssertionError naming `what` when the deadline passes."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = cond()
            if last:
                return last
        except (OSError, http.client.HTTPException) as e:  # process still starting
            last = e
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
        time.sleep(interval)


def read_status(sock):
    """The status of the answer arriving on a raw socket (its first line),
    or None if the connection closed without one. Reads no further: for
    streams, and for many answers read one socket at a time."""
    head = b""
    while b"\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            return None
        head += chunk
    return int(head.split(b" ")[1])


def api_time(s):
    """Seconds since the epoch of a time the API answers ("2026-12-07T09:09:09.561Z")."""
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


class Response:
    def __init__(self, status, body, headers):
        self.status = status
        self.body = body
        self.headers = headers

    @property
    def json(self):
        return json.loads(self.body) if self.body else None

    def __repr__(self):
        return f"<{self.status} {self.body[:200]!r}>"


class Client:
    """A keep-alive HTTP/1.1 client for one region."""

    def __init__(self, port, host="127.0.0.1", timeout=10):
        self.host, self.port, self.timeout = host, port, timeout
        self.conn = None

    def request(self, method, path, body=None, token=None, headers=None, raw=None):
        hdrs = dict(headers or {})
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        if token:
            hdrs["Authorization"] = "Bearer " + token
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self.conn.request(method, path, body=data, headers=hdrs)
                r = self.conn.getresponse()
                payload = r.read().decode("utf-8", "replace")
                if r.getheader("Connection", "").lower() == "close":
                    self.close()
                return Response(r.status, payload, {k.lower(): v for k, v in r.getheaders()})
            except (ConnectionError, http.client.HTTPException, OSError):
                self.close()
                if attempt:
                    raise

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def put(self, path, **kw):
        return self.request("PUT", path, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def close(self):
        if self.conn:
            self.conn.close()
            self.conn = None

    # Convenience calls used by many tests -----------------------------------
    def register(self, name, display_name=None):
        r = self.post("/v1/users", {"name": name, "display_name": display_name or name.title()})
        assert r.status == 201, r
        return r.json

    def post_text(self, token, text, **kw):
        r = self.post("/v1/posts", {"text": text}, token=token, **kw)
        assert r.status == 201, r
        return r.json

    def follow(self, token, user_id):
        r = self.put(f"/v1/following/{user_id}", token=token)
        assert r.status == 200, r
        return r.json

    def timeline_ids(self, token, limit=100):
        """Every post id of the caller's home timeline, page by page."""
        ids, cursor = [], None
        while True:
            q = f"/v1/timeline?limit={limit}" + (f"&cursor={cursor}" if cursor else "")
            r = self.get(q, token=token)
            assert r.status == 200, r
            ids += [p["id"] for p in r.json["items"]]
            cursor = r.json["next"]
            if not cursor:
                return ids

    def digest(self):
        r = self.get("/v1/digest")
        assert r.status == 200, r
        return r.json["digest"]



class EventStream:
    """One Server-Sent Events connection (GET path), read by a thread into
    (id, event, data) tuples and comment lines. An answer other than 200 is
    read whole into body."""

    def __init__(self, port, path, headers=None):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.conn.request("GET", path, headers={"Accept": "text/event-stream", **(headers or {})})
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.headers = {k.lower(): v for k, v in self.resp.getheaders()}
        self.events, self.comments = [], []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._read, daemon=True)
        if self.status == 200:
            self.thread.start()
        else:
            self.body = self.resp.read().decode()

    def _read(self):
        ev = {}
        try:
            for line in iter(self.resp.readline, b""):
                line = line.decode().rstrip("\n")
                with self.lock:
                    if line == "":
                        if "event" in ev:
                            self.events.append((ev.get("id"), ev["event"], ev.get("data")))
                        ev = {}
                    elif line.startswith(":"):
                        self.comments.append(line)
                    else:
                        k, _, v = line.partition(": ")
                        ev[k] = v
        except (OSError, ValueError, AttributeError, http.client.HTTPException):
            return  # closed under us by close(): the stream is over

    def of(self, kind):
        """The (id, event, data) tuples of one event name."""
        with self.lock:
            return [e for e in self.events if e[1] == kind]

    def data_of(self, kind):
        """The data of the events of one name."""
        with self.lock:
            return [e[2] for e in self.events if e[1] == kind]

    def close(self):
        try:
            self.conn.sock.shutdown(socket.SHUT_RDWR)
        except (OSError, AttributeError):
            pass
        self.conn.close()

def _resp_read(f):
    """One RESP2 reply from a file-like socket reader, as Python values:
    bytes, int, None, list, or RedisError for an error reply."""
    line = f.readline()
    if not line:
        raise ConnectionError("redis closed the connection")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest
    if kind == b"-":
        return RedisError(rest.decode("utf-8", "replace"))
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)
        return data[:-2]
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [_resp_read(f) for _ in range(n)]
    raise ValueError(f"not RESP: {line!r}")


class RedisError(Exception):
    pass


class Redis:
    """A redis-server of our own, without persistence (restart = empty).
    `args` are extra server flags (e.g. ["--requirepass", "pw"])."""

    def __init__(self, workdir, port=None, args=()):
        self.port = port or free_port()
        self.dir = os.path.join(workdir, f"redis-{self.port}")
        self.args = list(args)
        self.password = self.args[self.args.index("--requirepass") + 1] \
            if "--requirepass" in self.args else None
        os.makedirs(self.dir, exist_ok=True)
        self.proc = None
        self.start()

    @property
    def addr(self):
        return f"127.0.0.1:{self.port}"

    def start(self):
        self.log = open(os.path.join(self.dir, "redis.log"), "ab")
        self.proc = subprocess.Popen(
            [REDIS_BIN, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir, "--protected-mode", "no"] + self.args,
            stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(self._ping, 10, what=f"redis on {self.port}")

    def _ping(self):
        with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            reply = s.recv(64)
            return reply.startswith(b"+PONG") or reply.startswith(b"-NOAUTH")

    @staticmethod
    def _encode(args):
        args = [x.encode() if isinstance(x, str) else b"%d" % x if isinstance(x, int) else x
                for x in args]
        return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)

    def command(self, *args):
        """One command over a fresh connection; returns the raw reply bytes."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
            if self.password:
                s.sendall(self._encode(["AUTH", self.password]))
                s.recv(64)
            s.sendall(self._encode(args))
            return s.recv(65536)

    def call(self, *args):
        """One command over a fresh connection; returns the parsed reply
        (bytes, int, None, list; RedisError for an error reply)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            f = s.makefile("rb")
            if self.password:
                s.sendall(self._encode(["AUTH", self.password]))
                _resp_read(f)
            s.sendall(self._encode(args))
            return _resp_read(f)

    def transaction(self, *cmds):
        """Commands in one MULTI/EXEC over a fresh connection; returns the
        list of their replies."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            f = s.makefile("rb")
            head = [("AUTH", self.password)] if self.password else []
            for c in head + [("MULTI",)] + list(cmds) + [("EXEC",)]:
                s.sendall(self._encode(c))
            replies = [_resp_read(f) for _ in range(len(head) + len(cmds) + 2)]
            return replies[-1]

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()

    def restart_empty(self):
        self.kill()
        self.start()

    def stop(self):
        self.kill()


class Region:
    """One driftfeed process. Extra flags go in `args`.

    Tests make hundreds of accounts from 127.0.0.1, so the per-address
    signup limit is off (--signup-rate 0) unless open_signups is False
    (tests/faults/test_limits.py checks the default)."""

    def __init__(self, name, workdir, redis=None, peers=(), port=None, args=(), start=True,
                 open_signups=True):
        self.name = name
        self.port = port or free_port()
        self.data = os.path.join(workdir, f"data-{name}")
        self.logpath = os.path.join(workdir, f"{name}.log")
        self.redis = redis
        self.peers = list(peers)
        self.args = list(args)
        self.open_signups = open_signups
        self.proc = None
        self.client = Client(self.port)
        if start:
            self.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def argv(self):
        a = [BIN, "--region", self.name, "--port", str(self.port), "--data", self.data]
        if self.redis:
            a += ["--redis", self.redis.addr]
        if self.peers:
            a += ["--peers", ",".join(self.peers)]
        if self.open_signups:
            a += ["--signup-rate", "0"]
        return a + self.args

    def start(self):
        self.log = open(self.logpath, "ab")
        self.proc = subprocess.Popen(self.argv(), stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(self._healthy, 20, what=f"region {self.name} /health")

    def _healthy(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"region {self.name} exited with {self.proc.returncode}; see {self.logpath}")
        c = Client(self.port, timeout=1)
        try:
            return c.get("/health").status == 200
        finally:
            c.close()

    def stop(self, timeout=20):
        """SIGTERM and wait: a clean shutdown. Returns the exit code."""
        self.client.close()
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"region {self.name} did not stop on SIGTERM")
        self.log.close()
        return self.proc.returncode

    def kill(self):
        """SIGKILL: a crash."""
        self.client.close()
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()

    def restart(self):
        self.stop()
        self.start()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None


def make_keys(key_dir, names):
    """Each region's log key pair, made the way deploy/cluster makes them."""
    for n in names:
        subprocess.run([BIN, "--region", n, "--key-dir", key_dir, "--keygen"], check=True,
                       stdout=subprocess.DEVNULL)
    return key_dir


class Cluster:
    """A Redis and regions that all replicate with each other, over a signed
    log (keys=False: unauthenticated, as a region started without keys)."""

    def __init__(self, names=("paris", "newyork", "tokyo"), args=(), per_region_args=None,
                 keys=True, redis_args=()):
        self.workdir = tempfile.mkdtemp(prefix="driftfeed-test-")
        self.redis = Redis(self.workdir, args=redis_args)
        self.regions = {}
        self.key_dir = make_keys(os.path.join(self.workdir, "keys"), names) if keys else None
        for n in names:
            extra = (["--key-dir", self.key_dir] if keys else []) + list(args) + \
                list((per_region_args or {}).get(n, ()))
            self.regions[n] = Region(n, self.workdir, redis=self.redis,
                                     peers=[p for p in names if p != n], args=extra)

    def __getitem__(self, name):
        return self.regions[name]

    def clients(self):
        return [r.client for r in self.regions.values()]

    def wait_converged(self, timeout=30):
        """Waits until every region's digest is the same; returns it."""
        def same():
            ds = {r.name: r.client.digest() for r in self.regions.values()}
            return next(iter(ds.values())) if len(set(ds.values())) == 1 else None
        return wait_for(same, timeout, interval=0.1, what="equal digests in all regions")

    def stop(self):
        for r in self.regions.values():
            try:
                r.stop()
            except AssertionError:
                r.kill()
        self.redis.stop()
        if os.environ.get("KEEP_TEST_DIRS") != "1":
            shutil.rmtree(self.workdir, ignore_errors=True)


def sanitizer_env_ok(region):
    """True if the region's log has no sanitizer report (ASan/UBSan builds)."""
    with open(region.logpath, "rb") as f:
        text = f.read().decode("utf-8", "replace")
    return "ERROR: AddressSanitizer" not in text and "runtime error:" not in text and \
        "ERROR: LeakSanitizer" not in text
