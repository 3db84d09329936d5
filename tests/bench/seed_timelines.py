#!/usr/bin/env python3
"""seed_timelines.py -- users with realistic home timelines, through the API.

Registers --users users on the region at 127.0.0.1:--port; each follows
--follows others at random, then posts --posts times (so home timelines hold
about follows x posts entries, fanned out by the region's workers). Waits
until the fan-out queue is empty and writes one access token a line to --out.
With --solo N and --solo-out FILE, also registers N users nobody follows
(their posts fan out to themselves only) and writes their tokens there.
Python standard library only; every wait is bounded.
"""
import argparse
import http.client
import json
import random
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor


class Conn:
    def __init__(self, port):
        self.port = port
        self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def call(self, method, path, body=None, token=None):
        hdrs = {"Content-Type": "application/json"} if body is not None else {}
        if token:
            hdrs["Authorization"] = "Bearer " + token
        data = json.dumps(body).encode() if body is not None else None
        for attempt in range(3):
            try:
                self.c.request(method, path, body=data, headers=hdrs)
                r = self.c.getresponse()
                payload = r.read()
                return r.status, (json.loads(payload) if payload else None)
            except (OSError, http.client.HTTPException):
                self.c.close()
                self.c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                if attempt == 2:
                    raise


def run_all(port, fn, items, threads=8):
    local = threading.local()

    def run(item):
        if not hasattr(local, "conn"):
            local.conn = Conn(port)
        return fn(local.conn, item)
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(run, items))


def expect(status, want, what):
    if status != want:
        sys.exit(f"seed: {what} answered {status}, want {want}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--users", type=int, default=1000)
    ap.add_argument("--follows", type=int, default=40)
    ap.add_argument("--posts", type=int, default=12)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--solo", type=int, default=0)
    ap.add_argument("--solo-out")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    t0 = time.monotonic()

    def register(c, i):
        s, u = c.call("POST", "/v1/users", {"name": f"b{i:06d}", "display_name": f"Bench {i}"})
        expect(s, 201, "POST /v1/users")
        return u
    users = run_all(a.port, register, range(a.users))
    edges = [(u, v) for u in range(a.users)
             for v in rng.sample([x for x in range(a.users) if x != u], min(a.follows, a.users - 1))]

    def follow(c, e):
        s, _ = c.call("PUT", f"/v1/following/{users[e[1]]['id']}", token=users[e[0]]["token"])
        expect(s, 200, "PUT /v1/following")
    run_all(a.port, follow, edges)
    posts = [(u, k) for k in range(a.posts) for u in range(a.users)]

    def post(c, p):
        s, _ = c.call("POST", "/v1/posts", {"text": f"post {p[1]} of user {p[0]}: " + "lorem ipsum " * 8},
                      token=users[p[0]]["token"])
        expect(s, 201, "POST /v1/posts")
    run_all(a.port, post, posts)

    c = Conn(a.port)
    deadline = time.monotonic() + 300
    while True:
        s, st = c.call("GET", "/v1/replication")
        if st["fanout_depth"] == 0:
            break
        if time.monotonic() > deadline:
            sys.exit("seed: the fan-out queue did not drain in 300 s")
        time.sleep(0.1)
    s, page = c.call("GET", "/v1/timeline?limit=20", token=users[0]["token"])
    expect(s, 200, "GET /v1/timeline")
    if len(page["items"]) != 20:
        sys.exit(f"seed: a home timeline holds {len(page['items'])} posts, want a full page of 20")
    with open(a.out, "w") as f:
        f.write("".join(u["token"] + "\n" for u in users))
    if a.solo and a.solo_out:
        def register_solo(c, i):
            s, u = c.call("POST", "/v1/users", {"name": f"solo{i:06d}", "display_name": f"Solo {i}"})
            expect(s, 201, "POST /v1/users")
            return u
        solo = run_all(a.port, register_solo, range(a.solo))
        with open(a.solo_out, "w") as f:
            f.write("".join(u["token"] + "\n" for u in solo))
    print(f"seed: {a.users} users, {len(edges)} follows, {len(posts)} posts "
          f"in {time.monotonic() - t0:.1f} s (homes of ~{a.follows * a.posts} posts)")


if __name__ == "__main__":
    main()
