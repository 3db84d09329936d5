"""dfload.py -- shared code of the load tools (seed, report, soak): a
pipelined keep-alive HTTP client for bulk writes, cluster addresses and
processes, replication polling, and the seed file format.

Python standard library only. All traffic goes to 127.0.0.1; every loop here
is bounded by a count or a deadline.
"""
import collections
import errno
import json
import os
import re
import selectors
import socket
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
REGIONS = ("paris", "newyork", "tokyo")
HOST = "127.0.0.1"


class LoadError(Exception):
    """A load tool failed; the message says why."""


# ---- Cluster addresses and processes ----------------------------------------------------

def cluster_env():
    """The cluster as deploy/cluster sees it: port base, Redis port, var dir."""
    return {
        "port_base": int(os.environ.get("DF_PORT_BASE", "8081")),
        "redis_port": int(os.environ.get("DF_REDIS_PORT", "6390")),
        "var": os.environ.get("DF_VAR", os.path.join(ROOT, "var")),
    }


def region_ports(port_base):
    return {r: port_base + i for i, r in enumerate(REGIONS)}


def region_pids(var):
    """{region: pid} from $DF_VAR/run/<region>.pid, for the regions alive."""
    out = {}
    for r in REGIONS:
        try:
            with open(os.path.join(var, "run", r + ".pid")) as f:
                pid = int(f.read().strip())
            os.kill(pid, 0)
            out[r] = pid
        except (OSError, ValueError):
            pass
    return out


def proc_status(pid):
    """{'rss_kb', 'hwm_kb', 'rss_anon_kb', 'rss_file_kb', 'fds', 'table_fds',
    'other_fds'} of a process from /proc (VmRSS, VmHWM, RssAnon, RssFile,
    entries of fd/: all, RocksDB table files (*.sst), the rest)."""
    st = {"rss_kb": 0, "hwm_kb": 0, "fds": 0}
    names = {"VmRSS:": "rss_kb", "VmHWM:": "hwm_kb", "RssAnon:": "rss_anon_kb",
             "RssFile:": "rss_file_kb"}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k = names.get(line.split(":", 1)[0] + ":")
            if k:
                st[k] = int(line.split()[1])
    fds = os.listdir(f"/proc/{pid}/fd")
    tables = 0
    for fd in fds:
        try:
            tables += os.readlink(f"/proc/{pid}/fd/{fd}").endswith(".sst")
        except OSError:
            pass  # closed meanwhile
    st.update(fds=len(fds), table_fds=tables, other_fds=len(fds) - tables)
    return st


def cluster_cmd(action, env, extra_args="", timeout=120):
    """Runs deploy/cluster start|stop with the given ports and var dir."""
    e = dict(os.environ)
    e.update(DF_PORT_BASE=str(env["port_base"]), DF_REDIS_PORT=str(env["redis_port"]),
             DF_VAR=env["var"], DF_ARGS=extra_args)
    r = subprocess.run([os.path.join(ROOT, "deploy", "cluster"), action], env=e,
                       capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise LoadError(f"deploy/cluster {action} failed ({r.returncode}):\n{r.stdout}{r.stderr}")
    return r.stdout


# ---- Simple requests ----------------------------------------------------------------------

def get_json(port, path, timeout=5.0):
    """One GET over a fresh connection; returns (status, parsed JSON or None)."""
    import http.client
    c = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        body = r.read()
        try:
            return r.status, json.loads(body) if body else None
        except ValueError:
            return r.status, None
    finally:
        c.close()


def metrics(port, timeout=5.0):
    """GET /metrics of a region, as text."""
    import http.client
    c = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        c.request("GET", "/metrics")
        return c.getresponse().read().decode()
    finally:
        c.close()


def memory(port, timeout=5.0):
    """A region's memory by owner from GET /metrics, in bytes (RocksDB's
    memtables, block cache and table readers, the post and page caches,
    malloc's bytes in use and held free), and the number of table files
    RocksDB has live: ({part: bytes}, table_files)."""
    import re
    text = metrics(port, timeout)
    parts = {m.group(1): int(m.group(2)) for m in re.finditer(
        r'^driftfeed_(?:memory|cache)_bytes\{(?:part|cache)="(\w+)"\} (\d+)$', text, re.M)}
    files = re.search(r"^driftfeed_table_files (\d+)$", text, re.M)
    return parts, int(files.group(1)) if files else None


def cache_counts(port, cache):
    """(hits, misses) of one of a region's caches ("pages", "posts") so far."""
    import re
    text = metrics(port)
    got = [re.search(rf'^driftfeed_cache_{k}_total\{{cache="{cache}"\}} (\d+)$', text, re.M)
           for k in ("hits", "misses")]
    return tuple(int(m.group(1)) if m else 0 for m in got)


def replication(ports):
    """{region: GET /v1/replication JSON} for every region."""
    out = {}
    for r, p in ports.items():
        status, js = get_json(p, "/v1/replication")
        if status != 200:
            raise LoadError(f"GET /v1/replication on {r} answered {status}")
        out[r] = js
    return out


def settled(reps):
    """True when every region has applied every other region's whole log
    (up to that region's own seq) and no region has fan-out work queued."""
    for r, js in reps.items():
        if js["fanout_depth"]:
            return False
        for p in js["peers"]:
            if p["name"] in reps and p["applied_seq"] < reps[p["name"]]["seq"]:
                return False
    return True


def wait_until(cond, timeout, what, interval=0.05):
    """Polls cond() every `interval` seconds until it is true; returns the
    seconds waited. Raises LoadError at the deadline."""
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 >= timeout:
            raise LoadError(f"{what}: not within {timeout:.0f}s")
        time.sleep(interval)
    return time.monotonic() - t0


def wait_settled(ports, timeout, what="replication and fan-out", quiet=False, interval=0.25):
    """Polls until settled() (wait_until); returns seconds waited. Raises
    LoadError at the deadline, with the last state."""
    last = {"reps": None, "print": time.monotonic()}

    def done():
        last["reps"] = replication(ports)
        if settled(last["reps"]):
            return True
        if not quiet and time.monotonic() - last["print"] >= 10:
            print(f"  waiting for {what}: {summary(last['reps'])}", flush=True)
            last["print"] = time.monotonic()
        return False
    try:
        return wait_until(done, timeout, what, interval)
    except LoadError:
        raise LoadError(f"{what} did not settle within {timeout:.0f}s: " +
                        summary(last["reps"])) from None


def summary(reps):
    parts = []
    for r, js in reps.items():
        behind = {p["name"]: reps[p["name"]]["seq"] - p["applied_seq"] for p in js["peers"]
                  if p["name"] in reps}
        parts.append(f"{r}: fanout {js['fanout_depth']}, behind {behind}")
    return "; ".join(parts)


# ---- Pipelined bulk client ----------------------------------------------------------------

_CL = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.I)


def build_request(method, path, body=None, token=None, extra=""):
    """The bytes of one HTTP/1.1 request; body is a str of JSON."""
    h = f"{method} {path} HTTP/1.1\r\nHost: {HOST}\r\n"
    if token:
        h += f"Authorization: Bearer {token}\r\n"
    h += extra
    if body is not None:
        b = body.encode()
        return (h + f"Content-Type: application/json\r\nContent-Length: {len(b)}\r\n\r\n").encode() + b
    return (h + "\r\n").encode()


class _Conn:
    __slots__ = ("sock", "port", "region", "inflight", "inbuf", "outbuf")

    def __init__(self, region, port):
        self.region, self.port = region, port
        self.sock = socket.create_connection((HOST, port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        self.inflight = collections.deque()  # (request bytes, meta, attempt)
        self.inbuf = bytearray()
        self.outbuf = bytearray()


class Bulk:
    """Sends many requests to the regions over `conns` keep-alive connections
    per region, each with up to `depth` requests pipelined.

    run(work, on_response) takes work = {region: iterable of (bytes, meta)}
    and calls on_response(region, meta, status, body) for every answer. When
    on_response returns a number of seconds, the request is sent again after
    that delay (used for 503 and 429), for at most `retry_for` seconds per
    request, and the region gets no new requests meanwhile (back-pressure:
    a full fan-out queue is not flooded with retries). A closed or reset connection is an error: nothing is resent
    silently. Returns the number of requests answered."""

    def __init__(self, ports, conns=16, depth=8, retry_for=600, timeout=3600):
        self.ports, self.nconns, self.depth = ports, conns, depth
        self.retry_for, self.timeout = retry_for, timeout

    def run(self, work, on_response):
        sel = selectors.DefaultSelector()
        sources = {r: iter(w) for r, w in work.items()}
        retry = {r: collections.deque() for r in work}  # (not_before, bytes, meta, first_try)
        # A region that asked us to back off gets no new requests until then.
        paused = {r: 0.0 for r in work}
        conns = []
        for r in work:
            for _ in range(self.nconns):
                c = _Conn(r, self.ports[r])
                conns.append(c)
                sel.register(c.sock, selectors.EVENT_READ, c)
        done = 0
        exhausted = set()
        deadline = time.monotonic() + self.timeout

        def refill(c):
            added = False
            q = retry[c.region]
            if paused[c.region] > time.monotonic():
                return
            while len(c.inflight) < self.depth:
                if q and q[0][0] <= time.monotonic():
                    _, data, meta, first = q.popleft()
                elif c.region not in exhausted:
                    try:
                        data, meta = next(sources[c.region])
                    except StopIteration:
                        exhausted.add(c.region)
                        break
                    first = None
                else:
                    break
                c.inflight.append((data, meta, first))
                c.outbuf += data
                added = True
            if added:
                flush(c)

        def flush(c):
            while c.outbuf:
                try:
                    n = c.sock.send(c.outbuf)
                except BlockingIOError:
                    break
                del c.outbuf[:n]
            sel.modify(c.sock, selectors.EVENT_READ | (selectors.EVENT_WRITE if c.outbuf else 0), c)

        def parse(c):
            nonlocal done
            buf = c.inbuf
            pos = 0
            while True:
                he = buf.find(b"\r\n\r\n", pos)
                if he < 0:
                    break
                head = bytes(buf[pos:he])
                m = _CL.search(head)
                blen = int(m.group(1)) if m else 0
                if he + 4 + blen > len(buf):
                    break
                status = int(head[9:12])
                body = bytes(buf[he + 4:he + 4 + blen])
                pos = he + 4 + blen
                if not c.inflight:
                    raise LoadError(f"{c.region}: an answer nobody asked for: {head[:80]!r}")
                data, meta, first = c.inflight.popleft()
                again = on_response(c.region, meta, status, body)
                if again is not None:
                    now = time.monotonic()
                    first = first or now
                    if now - first > self.retry_for:
                        raise LoadError(f"{c.region}: gave up after retrying for "
                                        f"{now - first:.0f}s: {status} {body[:200]!r}")
                    retry[c.region].append((now + again, data, meta, first))
                    paused[c.region] = max(paused[c.region], now + again)
                else:
                    done += 1
                if b"connection: close" in head.lower():
                    raise LoadError(f"{c.region}: the server closed a keep-alive connection")
            del buf[:pos]

        try:
            for c in conns:
                refill(c)
            while True:
                busy = [c for c in conns if c.inflight]
                pending = any(retry.values()) or len(exhausted) < len(work)
                if not busy and not pending:
                    break
                if time.monotonic() > deadline:
                    raise LoadError(f"bulk requests did not finish within {self.timeout}s")
                for key, ev in sel.select(timeout=0.05):
                    c = key.data
                    if ev & selectors.EVENT_WRITE:
                        flush(c)
                    if ev & selectors.EVENT_READ:
                        try:
                            d = c.sock.recv(1 << 18)
                        except BlockingIOError:
                            continue
                        except OSError as e:
                            raise LoadError(f"{c.region}: socket error {errno.errorcode.get(e.errno, e)}")
                        if not d:
                            if c.inflight:
                                raise LoadError(f"{c.region}: connection closed with "
                                                f"{len(c.inflight)} requests in flight")
                            # An idle connection timed out (the region's work
                            # ran out before the others'): open a new one.
                            sel.unregister(c.sock)
                            c.sock.close()
                            i = conns.index(c)
                            conns[i] = _Conn(c.region, c.port)
                            sel.register(conns[i].sock, selectors.EVENT_READ, conns[i])
                            refill(conns[i])
                            continue
                        c.inbuf += d
                        parse(c)
                        refill(c)
                # Idle connections pick up retries whose delay has passed.
                for c in conns:
                    if not c.inflight:
                        refill(c)
        finally:
            for c in conns:
                sel.unregister(c.sock)
                c.sock.close()
            sel.close()
        return done


# ---- The seed file ---------------------------------------------------------------------------
# Text, one record per line, so that wrk's Lua can read it with io.lines:
#   # comment lines (the parameters of the run)
#   region <name> <port>
#   user <id> <token> <followers> <following>
#   conv <id-a> <id-b>

def read_seed(path):
    """Parses a seed file: {'regions': {name: port}, 'users': [(id, token,
    followers, following)], 'convs': [(a, b)], 'params': {...}}."""
    out = {"regions": {}, "users": [], "convs": [], "params": {}}
    with open(path) as f:
        for line in f:
            p = line.split()
            if not p:
                continue
            if p[0] == "#" and len(p) > 1 and p[1] == "params":
                out["params"] = json.loads(line.split("params", 1)[1])
            elif p[0] == "region":
                out["regions"][p[1]] = int(p[2])
            elif p[0] == "user":
                out["users"].append((p[1], p[2], int(p[3]), int(p[4])))
            elif p[0] == "conv":
                out["convs"].append((p[1], p[2]))
    return out


# ---- wrk runs and samplers ---------------------------------------------------------------------

def cpu_seconds(pid):
    """utime + stime of a process, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Sampler:
    """Polls every region's /v1/replication and the regions' memory every
    `interval` seconds on a thread, between start() and stop(). Bounded: it
    stops by itself after `limit` seconds."""

    def __init__(self, ports, pids, interval=0.5, limit=7200):
        import threading
        self.ports, self.pids, self.interval, self.limit = ports, pids, interval, limit
        self.samples = []  # (t, {region: replication json}, {region: proc_status})
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self.t0 = time.monotonic()
        self._thread.start()
        return self

    def _run(self):
        end = self.t0 + self.limit
        while not self._stop.is_set() and time.monotonic() < end:
            t = time.monotonic() - self.t0
            try:
                reps = replication(self.ports)
            except (OSError, LoadError, ValueError):
                self.errors += 1
                reps = None
            procs = {}
            for r, pid in self.pids.items():
                try:
                    procs[r] = proc_status(pid)
                except OSError:
                    pass
            self.samples.append((t, reps, procs))
            self._stop.wait(self.interval)

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=10)
        return self

    def lag(self, ring=1024):
        """Replication during the sampled run. A region's lag_ms_p99 for a
        peer is the p99 over the last `ring` records it applied from that
        peer (LAG_RING in replication/internal.h), so a sample counts only
        once the peer has applied `ring` records since the run began: before
        that the figure still describes earlier records. Returns the largest
        counted lag_ms_p99 of any peer in any region, the median of the
        per-sample maxima, how many samples counted, the largest `behind`
        and the deepest fan-out queue."""
        p99s, behinds, fanout, base = [], [], 0, {}
        for t, reps, _ in self.samples:
            if reps is None:
                continue
            counted = []
            for r, js in reps.items():
                fanout = max(fanout, js["fanout_depth"])
                for p in js["peers"]:
                    key = (r, p["name"])
                    base.setdefault(key, p["applied_total"])
                    behinds.append(p["behind"])
                    if p["applied_total"] - base[key] >= ring:
                        counted.append(p["lag_ms_p99"])
            if counted:
                p99s.append(max(counted))
        return {"lag_p99_ms_max": max(p99s) if p99s else None,
                "lag_p99_ms_median": sorted(p99s)[len(p99s) // 2] if p99s else None,
                "lag_samples": len(p99s), "behind_max": max(behinds) if behinds else None,
                "fanout_depth_max": fanout}

    def rss_max_mb(self):
        out = {}
        for _, _, procs in self.samples:
            for r, st in procs.items():
                out[r] = max(out.get(r, 0), st["rss_kb"] / 1024)
        return {r: round(v, 1) for r, v in out.items()}


def start_wrk(script, port, duration, threads=2, connections=64, rate=None, seed_file=None,
              extra_env=None, timeout_pad=60):
    """Starts one wrk on 127.0.0.1:port with a script of tests/load; returns
    the Popen. wrk stops by itself after `duration` seconds (--timeout 5s per
    request)."""
    env = dict(os.environ)
    if seed_file:
        env["DF_SEED_FILE"] = seed_file
    env["DF_THREADS"] = str(threads)
    env.pop("DF_RATE", None)
    if rate:
        env["DF_RATE"] = str(rate)
    env.update(extra_env or {})
    duration = max(1, int(round(duration)))
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--timeout", "5s",
           "--latency", "-s", os.path.join(HERE, script), f"http://{HOST}:{port}/"]
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    p.cmd = " ".join(cmd[:-3] + ["tests/load/" + script, cmd[-1]]) + (f"  (DF_RATE={rate})" if rate else "")
    p.deadline = time.monotonic() + duration + timeout_pad
    return p


def finish_wrk(p):
    """Waits for a wrk started by start_wrk; returns its LOADRESULT as a dict
    with 'rc', 'stderr' and 'cmd' added. A wrk past its deadline is killed."""
    try:
        out, err = p.communicate(timeout=max(1, p.deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        err += "\nwrk did not stop by itself; killed"
    res = None
    for line in out.splitlines():
        if line.startswith("LOADRESULT "):
            res = json.loads(line[len("LOADRESULT "):])
    if res is None:
        res = {"requests": 0, "rps": 0, "non2xx": 0, "socket_errors": {}, "p50_ms": None,
               "p99_ms": None, "p999_ms": None}
        err = (err or "") + "\nno LOADRESULT line in wrk's output:\n" + out[-2000:]
    res["rc"] = p.returncode
    res["stderr"] = err.strip()
    res["cmd"] = p.cmd
    res["errors"] = res["non2xx"] + sum(res["socket_errors"].values())
    return res


def port_free(port):
    """True unless something listens on port. SO_REUSEADDR, as the servers
    bind: connections of a stopped cluster left in TIME-WAIT do not count
    (without it a second run within a minute found every port "taken")."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
            return True
        except OSError:
            return False


def start_own_cluster(a):
    """For --start: a cluster of our own in a new temporary directory, with
    --rate-limit 0 and --large-threshold 10000 x scale, seeded at a.scale.
    Ports: $DF_PORT_BASE / $DF_REDIS_PORT if set, else 28381 and 26391. Sets
    a.port_base and a.var; returns the env for cluster_cmd("stop", env)."""
    import sys
    import tempfile
    if "DF_PORT_BASE" not in os.environ:
        a.port_base = 28381
    redis_port = int(os.environ.get("DF_REDIS_PORT", "26391"))
    for p in (a.port_base, a.port_base + 1, a.port_base + 2, redis_port):
        if not port_free(p):
            raise LoadError(f"port {p} is taken; set DF_PORT_BASE / DF_REDIS_PORT")
    a.var = tempfile.mkdtemp(prefix="driftfeed-load-")
    env = {"port_base": a.port_base, "redis_port": redis_port, "var": a.var}
    threshold = max(1, round(10000 * a.scale))
    # Caches sized to the data, as an operator would: the defaults (pages
    # 64, posts 32, block cache 64 MiB) hold the scale-0.1 working set; at
    # full size the first pages of a region's ~33k users alone are ~400 MB
    # (measured: timeline 16k req/s with the defaults, 59k with these).
    pages, posts, blocks = (max(d, round(m * a.scale)) for d, m in ((64, 512), (32, 128), (64, 128)))
    flags = (f"--rate-limit 0 --large-threshold {threshold} --page-cache-mb {pages} "
             f"--post-cache-mb {posts} --cache-mb {blocks}")
    print(f"load: starting a cluster in {a.var} (ports {a.port_base}-{a.port_base + 2}, "
          f"redis {redis_port}, flags: {flags})", flush=True)
    cluster_cmd("start", env, flags)
    seed = [sys.executable, os.path.join(HERE, "seed"), "--scale", str(a.scale),
            "--port-base", str(a.port_base), "--out", os.path.join(a.var, "load-seed.txt")]
    print("load: tests/load/" + " ".join(seed[1:]).split("tests/load/", 1)[-1], flush=True)
    r = subprocess.run(seed, timeout=7200)
    if r.returncode != 0:
        cluster_cmd("stop", env)
        raise LoadError("seeding failed")
    return env


class LagProbe:
    """Measures replication lag end to end during a run, independently of
    the regions' own figures: every `interval` seconds it posts (as a seeded
    user of one region, round robin) and polls the two other regions'
    GET /v1/posts/{id} every 5 ms until both have it. A probe's lag is the
    time from the POST's answer to the last region seeing the post (an upper
    bound within ~5 ms plus one GET). Bounded: at most `limit` seconds, and
    each probe gives up after `give_up` seconds (counted as missing)."""

    def __init__(self, ports, tokens, interval=1.0, limit=7200, give_up=10.0):
        import threading
        self.ports, self.tokens, self.interval = ports, tokens, interval
        self.limit, self.give_up = limit, give_up
        self.lags_ms, self.missing, self.errors = [], 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def _run(self):
        import http.client
        conns = {r: http.client.HTTPConnection(HOST, p, timeout=5) for r, p in self.ports.items()}
        end = time.monotonic() + self.limit
        regions = [r for r in REGIONS if r in self.tokens]
        i = 0
        try:
            while not self._stop.is_set() and time.monotonic() < end and regions:
                origin = regions[i % len(regions)]
                i += 1
                t_next = time.monotonic() + self.interval
                try:
                    self._probe(conns, origin, i)
                except (OSError, http.client.HTTPException, ValueError, KeyError):
                    self.errors += 1
                    for r in conns:
                        conns[r].close()
                self._stop.wait(max(0.0, t_next - time.monotonic()))
        finally:
            for c in conns.values():
                c.close()

    def _probe(self, conns, origin, i):
        c = conns[origin]
        body = json.dumps({"text": f"lag probe {i}"})
        c.request("POST", "/v1/posts", body=body, headers={
            "Content-Type": "application/json", "Authorization": "Bearer " + self.tokens[origin]})
        r = c.getresponse()
        data = r.read()
        if r.status != 201:
            raise ValueError(f"probe post answered {r.status}")
        pid = json.loads(data)["id"]
        t0 = time.monotonic()
        waiting = [x for x in self.ports if x != origin]
        while waiting:  # bounded by give_up
            for x in list(waiting):
                conns[x].request("GET", f"/v1/posts/{pid}")
                rr = conns[x].getresponse()
                rr.read()
                if rr.status == 200:
                    waiting.remove(x)
            if not waiting:
                break
            if time.monotonic() - t0 > self.give_up:
                self.missing += 1
                return
            time.sleep(0.005)
        self.lags_ms.append((time.monotonic() - t0) * 1000)

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=self.give_up + 10)
        return self

    def result(self):
        xs = sorted(self.lags_ms)
        pct = (lambda q: round(xs[min(len(xs) - 1, int(len(xs) * q))], 1)) if xs else (lambda q: None)
        return {"probe_n": len(xs), "probe_missing": self.missing, "probe_errors": self.errors,
                "probe_lag_ms_p50": pct(0.5), "probe_lag_ms_p99": pct(0.99),
                "probe_lag_ms_max": round(xs[-1], 1) if xs else None}


def probe_tokens(seed):
    """One seeded user's token per region, for LagProbe: the first user
    homed there."""
    out = {}
    for uid, tok, _, _ in seed["users"]:
        out.setdefault(uid.rsplit("@", 1)[1], tok)
    return out
