"""faultlib.py -- shared helpers of the fault tests: the seed, a client that
never retries, a seeded mixed write load that records every acknowledged
write, and the checker that classifies them after healing.

Every write of the load has its own identity (a post id, a message id, a
follow edge and its direction) and one of three outcomes:

  acknowledged   the region answered 2xx: the write must survive everything
  rejected       the region answered 4xx (e.g. the followee has not
                 replicated here yet): it never happened
  indeterminate  no answer (the region was killed or stopped mid-request):
                 it may or may not have happened, so both are accepted

After healing, the checker asks every region about every acknowledged write
and classifies it as present everywhere, lost (missing in some region) or
resurrected (a delete or unfollow that was acknowledged, yet the post or the
edge is back in some region). Nothing here sleeps where a poll with a
deadline works; the load paces itself with Event.wait.
"""
import http.client
import json
import os
import random
import sys
import threading
import time
import urllib.parse
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))

import harness  # noqa: E402  (the shared integration harness, used read-only)
from harness import wait_for  # noqa: E402,F401

# harness.Region._healthy leaves its probe sockets to the collector.
warnings.filterwarnings("ignore", category=ResourceWarning, module="harness")


def seed(name="FAULT_SEED"):
    """The run's seed: $FAULT_SEED if set, else a fresh one. Printed, so any
    run can be repeated with FAULT_SEED=<seed>."""
    s = os.environ.get(name)
    value = int(s) if s else random.SystemRandom().randrange(1, 2**31)
    print(f"\n{name}={value}  (set {name}={value} to repeat this run)", flush=True)
    return value


def env_int(name, default):
    v = os.environ.get(name)
    return int(v) if v else default


def env_float(name, default):
    v = os.environ.get(name)
    return float(v) if v else default


class Http:
    """One keep-alive connection to one region. Never retries: a failed
    request raises, and the caller decides what that means."""

    def __init__(self, host, port, timeout=10.0, source=None):
        self.host, self.port, self.timeout = host, port, timeout
        self.source = (source, 0) if source else None
        self.conn = None

    def request(self, method, path, body=None, token=None, headers=None):
        hdrs = dict(headers or {})
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        if token:
            hdrs["Authorization"] = "Bearer " + token
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout,
                                                   source_address=self.source)
        try:
            self.conn.request(method, path, body=data, headers=hdrs)
            r = self.conn.getresponse()
            payload = r.read()
            if (r.getheader("Connection") or "").lower() == "close":
                self.close()
            return harness.Response(r.status, payload.decode("utf-8", "replace"),
                                    {k.lower(): v for k, v in r.getheaders()})
        except BaseException:
            self.close()
            raise

    def get(self, path, token=None):
        """GET with one retry on a dropped keep-alive connection (reads are
        safe to repeat)."""
        try:
            return self.request("GET", path, token=token)
        except (OSError, http.client.HTTPException):
            return self.request("GET", path, token=token)

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def q(s):
    return urllib.parse.quote(s, safe="@")


def pages(http, path, token=None, limit=100):
    """Every item of a paginated list (GET path?limit=..&cursor=..)."""
    items, cursor = [], None
    sep = "&" if "?" in path else "?"
    for _ in range(100000):
        p = f"{path}{sep}limit={limit}" + (f"&cursor={q(cursor)}" if cursor else "")
        r = http.get(p, token=token)
        if r.status != 200:
            raise AssertionError(f"GET {p} -> {r!r}")
        items += r.json["items"]
        cursor = r.json["next"]
        if not cursor:
            return items
    raise AssertionError(f"{path}: pagination does not end")


def vm_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


# ---- The ledger of writes --------------------------------------------------------------------

ACK, UNKNOWN = "ack", "unknown"


class Ledger:
    """Every write the load made and what became of it. Thread-safe."""

    def __init__(self):
        self.mu = threading.Lock()
        self.posts = {}      # id -> {"author", "text", "region", "deleted": None|ACK|UNKNOWN}
        self.messages = {}   # id -> (from, to, text)
        self.edges = {}      # (follower, followee) -> ACK on | "off" | UNKNOWN
        self.counts = {"post": 0, "delete": 0, "message": 0, "follow": 0, "unfollow": 0,
                       "indeterminate": 0, "rejected": 0, "refused": 0}

    def count(self, what, n=1):
        with self.mu:
            self.counts[what] += n

    def merge(self, other):
        """Adds a later ledger's writes to this one (edges: the later state wins)."""
        with self.mu, other.mu:
            self.posts.update(other.posts)
            self.messages.update(other.messages)
            self.edges.update(other.edges)
            for k, v in other.counts.items():
                self.counts[k] += v

    def acknowledged(self):
        c = self.counts
        return c["post"] + c["delete"] + c["message"] + c["follow"] + c["unfollow"]


class Users:
    """The load's users: region -> [{"id", "token"}], registered up front."""

    def __init__(self):
        self.by_region = {}
        self.token = {}

    def add(self, region, user):
        self.by_region.setdefault(region, []).append(user)
        self.token[user["id"]] = user["token"]

    def all_ids(self):
        return sorted(self.token)


def register_users(endpoints, per_region, prefix="u"):
    """Registers per_region users in each region; returns Users. endpoints:
    region -> (host, port)."""
    users = Users()
    for region, (host, port) in endpoints.items():
        h = Http(host, port)
        for i in range(per_region):
            r = h.request("POST", "/v1/users", {"name": f"{prefix}{i}_{region}"[:30]})
            assert r.status == 201, r
            users.add(region, {"id": r.json["id"], "token": r.json["token"]})
        h.close()
    return users


def wait_users_everywhere(endpoints, users, timeout=30):
    """Polls until every user is known in every region."""
    for region, (host, port) in endpoints.items():
        h = Http(host, port)
        for uid in users.all_ids():
            wait_for(lambda: h.get(f"/v1/users/{q(uid)}").status == 200, timeout,
                     what=f"{uid} replicated to {region}")
        h.close()


# ---- The load ---------------------------------------------------------------------------------

class Load:
    """A seeded mixed write load: per region `workers` threads, each owning a
    disjoint set of that region's users, doing posts, deletes of its own
    posts, messages, follows and unfollows at about `rate` writes per second.

    `gate(region)` returns the region's generation (an int, bumped on every
    restart) when it may be written to, or None while it is down or stopped;
    a worker reconnects when the generation changes, so a stale keep-alive
    connection is never mistaken for a lost write."""

    MIX = (("post", 45), ("message", 20), ("follow", 15), ("delete", 12), ("unfollow", 8))

    def __init__(self, seed_value, endpoints, users, ledger, gate=None, workers=2, rate=10.0,
                 tag="w", timeout=10.0):
        self.seed, self.endpoints, self.users, self.ledger = seed_value, endpoints, users, ledger
        self.gate = gate or (lambda region: 0)
        self.workers, self.rate, self.tag, self.timeout = workers, rate, tag, timeout
        self.stop_event = threading.Event()
        self.threads = []
        self.errors = []
        self.anomalies = []  # things that must never happen, e.g. own acked post 404 on delete

    def start(self):
        index = 0
        for region in sorted(self.endpoints):
            mine = self.users.by_region[region]
            for w in range(self.workers):
                owned = mine[w::self.workers]
                if not owned:
                    continue
                t = threading.Thread(target=self._run, args=(index, region, owned), daemon=True)
                index += 1
                self.threads.append(t)
        for t in self.threads:
            t.start()

    def stop(self, timeout=60):
        self.stop_event.set()
        for t in self.threads:
            t.join(timeout)
            assert not t.is_alive(), "a load worker did not stop"
        if self.errors:
            raise self.errors[0]

    def _run(self, index, region, owned):
        try:
            self._loop(index, region, owned)
        except BaseException as e:  # surfaced by stop()
            self.errors.append(e)

    def _loop(self, index, region, owned):
        rng = random.Random(self.seed * 1000 + index)
        host, port = self.endpoints[region]
        conn, gen = None, None
        ops = [op for op, _ in self.MIX]
        weights = [w for _, w in self.MIX]
        everyone = self.users.all_ids()
        my_posts = {u["id"]: [] for u in owned}   # acked, not yet deleted
        my_edges = {u["id"]: set() for u in owned}  # acked "on"
        touched = set()                            # edges on, or in doubt: not to follow
        n = 0
        interval = 1.0 / self.rate
        led = self.ledger
        while not self.stop_event.wait(interval):
            g = self.gate(region)
            if g is None:
                continue
            if g != gen or conn is None:
                if conn:
                    conn.close()
                conn, gen = Http(host, port, self.timeout), g
            user = rng.choice(owned)
            uid, tok = user["id"], user["token"]
            op = rng.choices(ops, weights)[0]
            n += 1
            try:
                if op == "post":
                    text = f"{self.tag}{index}.{n} {rng.getrandbits(32):08x}"
                    r = conn.request("POST", "/v1/posts", {"text": text}, token=tok)
                    if r.status == 201:
                        p = r.json
                        with led.mu:
                            led.posts[p["id"]] = {"author": uid, "text": text, "region": region,
                                                  "deleted": None}
                        my_posts[uid].append(p["id"])
                        led.count("post")
                    else:
                        self._rejected(r, op)
                elif op == "delete":
                    if not my_posts[uid]:
                        continue
                    pid = my_posts[uid].pop(rng.randrange(len(my_posts[uid])))
                    with led.mu:
                        led.posts[pid]["deleted"] = UNKNOWN
                    r = conn.request("DELETE", f"/v1/posts/{q(pid)}", token=tok)
                    if r.status == 204:
                        with led.mu:
                            led.posts[pid]["deleted"] = ACK
                        led.count("delete")
                    else:
                        if r.status == 404:
                            self.anomalies.append(f"{region}: DELETE of own acknowledged post {pid} -> 404")
                        self._rejected(r, op)
                elif op == "message":
                    to = rng.choice([u for u in everyone if u != uid])
                    text = f"{self.tag}{index}.{n} dm {rng.getrandbits(32):08x}"
                    r = conn.request("POST", "/v1/messages", {"to": to, "text": text}, token=tok)
                    if r.status == 201:
                        with led.mu:
                            led.messages[r.json["id"]] = (uid, to, text)
                        led.count("message")
                    else:
                        self._rejected(r, op)
                elif op == "follow":
                    cands = [u for u in everyone if u != uid and (uid, u) not in touched]
                    if not cands:
                        continue
                    to = rng.choice(cands)
                    with led.mu:
                        led.edges[(uid, to)] = UNKNOWN
                    touched.add((uid, to))
                    r = conn.request("PUT", f"/v1/following/{q(to)}", token=tok)
                    if r.status == 200:
                        with led.mu:
                            led.edges[(uid, to)] = ACK
                        my_edges[uid].add(to)
                        led.count("follow")
                    else:
                        with led.mu:
                            del led.edges[(uid, to)]
                        touched.discard((uid, to))  # not replicated here yet: try later
                        self._rejected(r, op)
                elif op == "unfollow":
                    if not my_edges[uid]:
                        continue
                    to = rng.choice(sorted(my_edges[uid]))
                    my_edges[uid].discard(to)
                    with led.mu:
                        led.edges[(uid, to)] = UNKNOWN
                    r = conn.request("DELETE", f"/v1/following/{q(to)}", token=tok)
                    if r.status == 204:
                        with led.mu:
                            led.edges[(uid, to)] = "off"
                        touched.discard((uid, to))  # may be followed again
                        led.count("unfollow")
                    else:
                        self._rejected(r, op)
            except ConnectionRefusedError:
                led.count("refused")  # never reached a server: nothing happened
                conn.close()
            except (OSError, http.client.HTTPException):
                # No answer: the write may or may not have happened. A post's
                # id is unknown then; deletes/follows stay UNKNOWN.
                led.count("indeterminate")
                conn.close()
        if conn:
            conn.close()

    def _rejected(self, r, op):
        if r.status >= 500 and r.status != 503:
            self.anomalies.append(f"{op} -> {r!r}")
        self.ledger.count("rejected")


# ---- The checker ------------------------------------------------------------------------------

class Report:
    def __init__(self):
        self.acked = 0
        self.present = 0
        self.lost = []
        self.resurrected = []
        self.timeline_errors = []

    def line(self):
        return (f"acknowledged={self.acked} present_everywhere={self.present} "
                f"lost={len(self.lost)} resurrected={len(self.resurrected)}")


def check_writes(endpoints, users, ledger):
    """Classifies every acknowledged write in every region. Returns a Report
    (lost / resurrected hold human-readable descriptions)."""
    rep = Report()
    https = {r: Http(h, p) for r, (h, p) in endpoints.items()}
    with ledger.mu:
        posts = dict(ledger.posts)
        messages = dict(ledger.messages)
        edges = dict(ledger.edges)

    # Posts and their deletes: the source record, GET /v1/posts/{id}.
    for pid, p in sorted(posts.items()):
        ok = True
        for region, h in https.items():
            r = h.get(f"/v1/posts/{q(pid)}")
            if r.status not in (200, 404):
                raise AssertionError(f"{region} GET /v1/posts/{pid} -> {r!r}")
            if p["deleted"] == ACK:
                if r.status == 200:
                    rep.resurrected.append(f"post {pid} deleted (acknowledged) is back in {region}")
                    ok = False
            elif p["deleted"] is None:
                if r.status == 404:
                    rep.lost.append(f"post {pid} by {p['author']} (written in {p['region']}) missing in {region}")
                    ok = False
                elif r.json.get("text") != p["text"] or r.json.get("author") != p["author"]:
                    rep.lost.append(f"post {pid} differs in {region}: {r.body[:200]}")
                    ok = False
        rep.acked += 1 + (p["deleted"] == ACK)
        rep.present += (1 + (p["deleted"] == ACK)) if ok else 0

    # Messages: both participants' view of their conversation, everywhere.
    pairs = {}
    for mid, (frm, to, text) in messages.items():
        pairs.setdefault((frm, to), []).append((mid, text))
    seen = {}  # (region, viewer, other) -> {id: text}
    for (frm, to), msgs in sorted(pairs.items()):
        ok = {mid: True for mid, _ in msgs}
        for region, h in https.items():
            for viewer, other in ((frm, to), (to, frm)):
                key = (region, viewer, other)
                if key not in seen:
                    items = pages(h, f"/v1/messages/{q(other)}", token=users.token[viewer])
                    seen[key] = {m["id"]: m["text"] for m in items}
                for mid, text in msgs:
                    if seen[key].get(mid) != text:
                        rep.lost.append(f"message {mid} {frm}->{to} missing from {viewer}'s view in {region}")
                        ok[mid] = False
        rep.acked += len(msgs)
        rep.present += sum(ok.values())

    # Follow edges: GET /v1/users/{follower}/following everywhere.
    following = {}  # (region, user) -> set
    for region, h in https.items():
        for uid in users.all_ids():
            following[(region, uid)] = {x for x in pages(h, f"/v1/users/{q(uid)}/following")}
    for (a, b), state in sorted(edges.items()):
        if state == UNKNOWN:
            continue
        ok = True
        for region in https:
            there = b in following[(region, a)]
            if state == ACK and not there:
                rep.lost.append(f"follow {a}->{b} missing in {region}")
                ok = False
            elif state == "off" and there:
                rep.resurrected.append(f"unfollow {a}->{b} (acknowledged) undone in {region}")
                ok = False
        n = 1 if state == ACK else 2  # an "off" edge is a follow and an unfollow
        rep.acked += n
        rep.present += n if ok else 0
    for h in https.values():
        h.close()
    return rep, following


def check_timelines(endpoints, users, ledger, following):
    """Each home timeline in each region holds every live acknowledged post of
    the user and of the users it follows there exactly once, and nothing else
    (no deleted post, no post of someone it does not follow). Returns a list
    of problems (empty when all is well)."""
    problems = []
    with ledger.mu:
        posts = dict(ledger.posts)
    by_author = {}
    for pid, p in posts.items():
        by_author.setdefault(p["author"], []).append(pid)
    for region, (host, port) in sorted(endpoints.items()):
        h = Http(host, port)
        live = {}  # post id -> bool, asked of this region
        for uid in users.all_ids():
            items = pages(h, "/v1/timeline", token=users.token[uid])
            ids = [it["id"] for it in items]
            authors = {it["id"]: it.get("author") for it in items}
            should = {uid} | following[(region, uid)]
            dups = {i for i in ids if ids.count(i) > 1}
            if dups:
                problems.append(f"{region} {uid}: duplicated in timeline: {sorted(dups)[:5]}")
            got = set(ids)
            for a in should:
                for pid in by_author.get(a, ()):
                    if posts[pid]["deleted"] is None and pid not in got:
                        problems.append(f"{region} {uid}: missing {pid} by {a}")
            for pid in got:
                if authors[pid] not in should:
                    problems.append(f"{region} {uid}: {pid} by {authors[pid]}, who is not followed")
                    continue
                if pid not in live:
                    live[pid] = h.get(f"/v1/posts/{q(pid)}").status == 200
                if not live[pid]:
                    problems.append(f"{region} {uid}: deleted post {pid} still in timeline")
        h.close()
    return problems


def digests(endpoints):
    out = {}
    for region, (host, port) in endpoints.items():
        h = Http(host, port, timeout=5)
        r = h.get("/v1/digest")
        h.close()
        assert r.status == 200, r
        out[region] = r.json["digest"]
    return out


def wait_converged(endpoints, timeout, t0=None):
    """Polls until every region has the same digest; returns the seconds
    since t0 (default: now). Raises AssertionError past the deadline."""
    t0 = time.monotonic() if t0 is None else t0
    wait_for(lambda: len(set(digests(endpoints).values())) == 1, timeout, interval=0.1,
             what="equal digests in all regions")
    return time.monotonic() - t0


def fanout_idle(endpoints):
    for region, (host, port) in endpoints.items():
        h = Http(host, port, timeout=5)
        r = h.get("/v1/replication")
        h.close()
        if r.status != 200 or r.json.get("fanout_depth", 1) != 0:
            return False
    return True


def repairs_equal(endpoints, since):
    """Whether every region's repair rounds (where they run: signed logs)
    found every peer's tree equal to its own after wall time since (s)."""
    for region, (host, port) in endpoints.items():
        h = harness.Client(port, host=host, timeout=5)
        try:
            r = h.get("/v1/replication")
        finally:
            h.close()
        if r.status != 200:
            return False
        if not r.json["repairing"]:
            continue
        for p in r.json["peers"]:
            at = p["repair"]["last_equal_at"]
            if at is None or harness.api_time(at) < since:
                return False
    return True



def verify_healed(test, endpoints, users, ledger, converge_bound, timeline_bound=60, label="",
                  healed_at=None):
    """The whole check after healing: equal digests within converge_bound
    (counted from healed_at, default now), then every acknowledged write
    classified, then timelines. Prints the counts; fails the test on any
    lost or resurrected write. Returns (report, seconds to converge)."""
    healed_wall = time.time() - (time.monotonic() - healed_at if healed_at else 0)
    try:
        secs = wait_converged(endpoints, converge_bound, healed_at)
    except AssertionError as e:
        raise AssertionError(f"{label}: regions did not converge within {converge_bound}s: "
                             f"{digests(endpoints)}") from e
    # Anti-entropy agrees: in every region a repair round against every peer
    # has found the trees equal since the heal.
    wait_for(lambda: repairs_equal(endpoints, healed_wall), converge_bound, interval=0.2,
             what="repair rounds finding equal trees")
    rep, following = check_writes(endpoints, users, ledger)
    wait_for(lambda: fanout_idle(endpoints), timeline_bound, interval=0.1, what="fan-out queues drained")
    last = []

    def timelines_ok():
        last[:] = check_timelines(endpoints, users, ledger, following)
        return not last
    try:
        wait_for(timelines_ok, timeline_bound, interval=0.5, what="correct home timelines")
    except AssertionError:
        pass
    rep.timeline_errors = list(last)
    c = ledger.counts
    print(f"{label} RESULT {rep.line()} indeterminate={c['indeterminate']} "
          f"rejected={c['rejected']} (posts={c['post']} deletes={c['delete']} messages={c['message']} "
          f"follows={c['follow']} unfollows={c['unfollow']}) converge_s={secs:.2f} "
          f"timeline_problems={len(rep.timeline_errors)}", flush=True)
    for what in rep.lost[:20] + rep.resurrected[:20] + rep.timeline_errors[:20]:
        print("  " + what, flush=True)
    test.assertEqual(rep.lost, [], f"{label}: acknowledged writes lost")
    test.assertEqual(rep.resurrected, [], f"{label}: deleted records resurrected")
    test.assertEqual(rep.timeline_errors, [], f"{label}: home timelines wrong")
    return rep, secs
