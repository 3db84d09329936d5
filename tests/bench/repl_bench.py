#!/usr/bin/env python3
"""repl_bench.py -- replication benchmark on a real three-region cluster.

Starts its own Redis and paris/newyork/tokyo (tests/integration/harness.py,
loopback only), then:
  1. a steady write load of RATE posts/s spread over the three regions for
     DURATION seconds; reports replication lag p50/p99 per link as each region
     measures it (creation at the origin -> applied here);
  2. pauses one region's incoming replication for PAUSE seconds while the load
     goes on, resumes it, and reports the time until all digests are equal
     and the paused region's apply throughput while catching up.

  python3 tests/bench/repl_bench.py [--rate 1000] [--duration 20] [--pause 30] [--unsigned]

The log is signed (--key-dir) as deploy/cluster runs it; --unsigned runs the
regions without keys, to measure what signing costs.

Every loop is bounded by the durations given; the script stops by itself.
"""
import argparse
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402


def paced_load(client, tokens, rate, stop, counters, idx):
    """Posts at `rate` per second (paced against the clock) until stop."""
    period = 1.0 / rate
    nxt = time.monotonic()
    n = 0
    while not stop.is_set():
        r = client.post("/v1/posts", {"text": f"load {idx}-{n}"}, token=tokens[n % len(tokens)])
        if r.status == 201:
            counters[idx] += 1
        else:
            counters["errors"] += 1
        n += 1
        nxt += period
        delay = nxt - time.monotonic()
        if delay > 0:
            time.sleep(delay)  # pacing a load generator, not waiting on a condition


def run_load(cluster, tokens, rate, seconds):
    stop = threading.Event()
    counters = {"errors": 0}
    threads = []
    names = list(cluster.regions)
    for i, name in enumerate(names):
        counters[i] = 0
        c = harness.Client(cluster[name].port)
        t = threading.Thread(target=paced_load, args=(c, tokens[name], rate / len(names), stop, counters, i))
        t.start()
        threads.append(t)
    return stop, threads, counters


def lag_table(cluster):
    rows = []
    for name, region in cluster.regions.items():
        rep = region.client.get("/v1/replication").json
        for p in rep["peers"]:
            rows.append((p["name"], name, p["lag_ms_p50"], p["lag_ms_p99"], p["applied_total"]))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--rate", type=float, default=1000, help="posts per second, all regions together")
    ap.add_argument("--duration", type=float, default=20, help="seconds of steady load")
    ap.add_argument("--pause", type=float, default=30, help="seconds one region is paused")
    ap.add_argument("--users", type=int, default=30, help="users per region")
    ap.add_argument("--unsigned", action="store_true", help="regions without --key-dir")
    args = ap.parse_args()

    cluster = harness.Cluster(args=["--rate-limit", "0", "--demo"], keys=not args.unsigned)
    try:
        tokens = {}
        for name, region in cluster.regions.items():
            tokens[name] = [region.client.register(f"b{name[:2]}{i}")["token"] for i in range(args.users)]
        cluster.wait_converged(60)

        print(f"steady load: {args.rate:.0f} posts/s over {len(cluster.regions)} regions for {args.duration:.0f} s")
        stop, threads, counters = run_load(cluster, tokens, args.rate, args.duration)
        t0 = time.monotonic()
        harness.wait_for(lambda: time.monotonic() - t0 >= args.duration, args.duration + 5, interval=0.5,
                         what="the steady phase")
        rows = lag_table(cluster)
        achieved = sum(v for k, v in counters.items() if k != "errors") / (time.monotonic() - t0)
        print(f"achieved {achieved:.0f} posts/s, {counters['errors']} errors")
        print(f"{'origin -> here':<22}{'lag p50 ms':>12}{'lag p99 ms':>12}")
        for origin, here, p50, p99, _ in rows:
            print(f"{origin + ' -> ' + here:<22}{p50:>12}{p99:>12}")
        worst = max(r[3] for r in rows)
        print(f"worst p99: {worst} ms (target <= 50 ms)")

        paused = "tokyo"
        before = sum(p["applied_total"] for p in cluster[paused].client.get("/v1/replication").json["peers"])
        cluster[paused].client.post("/v1/admin/replication", {"paused": True})
        print(f"\n{paused} paused for {args.pause:.0f} s under the same load")
        t1 = time.monotonic()
        harness.wait_for(lambda: time.monotonic() - t1 >= args.pause, args.pause + 5, interval=0.5,
                         what="the pause")
        stop.set()
        for t in threads:
            t.join()
        missed = sum(p["behind"] for p in cluster[paused].client.get("/v1/replication").json["peers"])
        resumed = time.monotonic()
        cluster[paused].client.post("/v1/admin/replication", {"paused": False})
        cluster.wait_converged(120)
        took = time.monotonic() - resumed
        after = sum(p["applied_total"] for p in cluster[paused].client.get("/v1/replication").json["peers"])
        applied = after - before
        print(f"{paused} was {missed} records behind; converged {took:.2f} s after resuming (target <= 3 s)")
        print(f"catch-up apply throughput: {applied / took:.0f} records/s ({applied} records)")
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
