"""test_faults.py -- three regions under a mixed write load while faults are
injected at random from a seed; after healing nothing acknowledged is lost,
nothing deleted comes back, the regions converge within a bound and every
home timeline is right.

Faults (overlapping, each on a region nothing else is doing to right now):
  kill9      kill -9 of a region, restart after a hold
  redis      Redis killed, restarted empty after a hold (no persistence)
  sigstop    SIGSTOP of a region (its HTTP, publisher and subscribers
             freeze), SIGCONT after a hold
  pause      the admin pause of a region's incoming replication (--demo,
             from loopback), unpaused after a hold

Knobs (environment): FAULT_SEED (repeat a run), FAULT_DURATION_S (seconds of
load, default 60), FAULT_FAULTS (how many faults, default 6), FAULT_RATE
(writes/s per worker, default 8), FAULT_CONVERGE_S (bound on convergence
after healing, default 30). A long run: FAULT_DURATION_S=600 FAULT_FAULTS=60.
The network partition between regions on separate hosts is test_partition.

CrossRegionSession: one user whose consecutive follow/unfollow of one edge go
to two regions, the second before it has seen the first (a client failing
over): the acknowledged second write must be the final state.
"""
import random
import signal
import threading
import time
import unittest

import faultlib
from faultlib import harness

KINDS = ("kill9", "redis", "sigstop", "pause")


def schedule(rng, duration, nfaults, regions):
    """A fault plan: [(start_s, kind, target, hold_s)], every kind at least
    once when there are enough faults, starts spread over the load."""
    kinds = list(KINDS) if nfaults >= len(KINDS) else []
    kinds += [rng.choice(KINDS) for _ in range(nfaults - len(kinds))]
    rng.shuffle(kinds)
    plan = []
    for i, kind in enumerate(kinds):
        start = duration * (i + rng.uniform(0.15, 0.85)) / nfaults
        hold = round(rng.uniform(1.0, 4.0), 2)
        if i == nfaults - 1:
            # The last fault is still on when the load ends: healing it is
            # what the convergence time measures.
            start = duration - hold / 2
        target = "redis" if kind == "redis" else rng.choice(regions)
        plan.append((round(start, 2), kind, target, hold))
    return plan


class FaultRun:
    """Applies a plan to a harness.Cluster while the load runs."""

    def __init__(self, cluster, plan):
        self.c = cluster
        self.plan = plan
        self.mu = threading.Lock()
        self.gen = {n: 0 for n in cluster.regions}
        self.down = set()      # regions not to be written to (killed, stopped)
        self.busy = set()      # targets with a fault in progress
        self.log = []
        self.stop_event = threading.Event()
        self.thread = None
        self.error = None

    def gate(self, region):
        with self.mu:
            return None if region in self.down else self.gen[region]

    def _admin_pause(self, region, paused):
        r = self.c[region].client.post("/v1/admin/replication", {"paused": paused})
        assert r.status == 200 and r.json["paused"] is paused, r

    def begin(self, kind, target):
        if kind == "kill9":
            with self.mu:
                self.down.add(target)
            self.c[target].kill()
        elif kind == "redis":
            self.c.redis.kill()
        elif kind == "sigstop":
            with self.mu:
                self.down.add(target)
            self.c[target].proc.send_signal(signal.SIGSTOP)
        elif kind == "pause":
            self._admin_pause(target, True)

    def end(self, kind, target):
        if kind == "kill9":
            self.c[target].start()  # waits for /health
            with self.mu:
                self.gen[target] += 1
                self.down.discard(target)
        elif kind == "redis":
            self.c.redis.start()    # a new, empty redis-server on the same port
        elif kind == "sigstop":
            self.c[target].proc.send_signal(signal.SIGCONT)
            with self.mu:
                self.down.discard(target)
        elif kind == "pause":
            self._admin_pause(target, False)

    def run(self, t0):
        """Starts the plan's faults at their times; each is healed after its
        hold. Targets that are busy when their turn comes are skipped."""
        events = [(s, 0, i) for i, (s, _, _, _) in enumerate(self.plan)]
        active = {}
        while events or active:
            now = time.monotonic() - t0
            pending = sorted(events + [(active[i], 1, i) for i in active])
            at, what, i = pending[0]
            if self.stop_event.wait(max(0.0, at - now)):
                break
            _, kind, target, hold = self.plan[i]
            if what == 0:
                events.remove((at, 0, i))
                if target in self.busy:
                    self.log.append(f"t={at:.1f}s skip {kind} {target} (busy)")
                    continue
                self.busy.add(target)
                self.begin(kind, target)
                active[i] = at + hold
                self.log.append(f"t={time.monotonic() - t0:.1f}s {kind} {target} for {hold}s")
            else:
                del active[i]
                self.end(kind, target)
                self.busy.discard(target)
                self.log.append(f"t={time.monotonic() - t0:.1f}s healed {kind} {target}")
        self.active = active

    def start(self, t0):
        def body():
            try:
                self.run(t0)
            except BaseException as e:
                self.error = e
        self.thread = threading.Thread(target=body, daemon=True)
        self.thread.start()

    def heal_all(self):
        """Stops the plan and heals whatever is still broken."""
        self.stop_event.set()
        self.thread.join(60)
        assert not self.thread.is_alive(), "fault thread stuck"
        for i in list(getattr(self, "active", {})):
            _, kind, target, _ = self.plan[i]
            self.end(kind, target)
            self.log.append(f"final heal {kind} {target}")
        if self.error:
            raise self.error
        # Belt and braces: every process running and unpaused.
        if self.c.redis.proc.poll() is not None:
            self.c.redis.start()
        for name, reg in self.c.regions.items():
            if not reg.alive():
                reg.start()
            else:
                reg.proc.send_signal(signal.SIGCONT)
            self._admin_pause(name, False)


class FaultInjection(unittest.TestCase):
    def setUp(self):
        self.seed = faultlib.seed()
        self.duration = faultlib.env_float("FAULT_DURATION_S", 60)
        self.nfaults = faultlib.env_int("FAULT_FAULTS", 6)
        self.rate = faultlib.env_float("FAULT_RATE", 8)
        self.bound = faultlib.env_float("FAULT_CONVERGE_S", 30)
        self.cluster = harness.Cluster(
            args=["--rate-limit", "0", "--demo", "--timeline-cap", "100000"])
        self.addCleanup(self.cluster.stop)

    def test_mixed_load_under_random_faults(self):
        c = self.cluster
        rng = random.Random(self.seed)
        endpoints = {n: ("127.0.0.1", r.port) for n, r in c.regions.items()}
        users = faultlib.register_users(endpoints, per_region=4)
        faultlib.wait_users_everywhere(endpoints, users)
        plan = schedule(rng, self.duration, self.nfaults, sorted(c.regions))
        print("plan: " + "; ".join(f"{s}s {k} {t} hold {h}s" for s, k, t, h in plan), flush=True)

        ledger = faultlib.Ledger()
        faults = FaultRun(c, plan)
        load = faultlib.Load(self.seed, endpoints, users, ledger, gate=faults.gate,
                             workers=2, rate=self.rate, tag=f"s{self.seed}w")
        t0 = time.monotonic()
        load.start()
        faults.start(t0)
        done = threading.Event()
        done.wait(self.duration)  # the load runs for the planned time
        load.stop_event.set()  # no new writes; those in flight finish once healed
        try:
            faults.heal_all()
            healed_at = time.monotonic()
        finally:
            load.stop()
            for line in faults.log:
                print("  " + line, flush=True)
        print(f"load: {ledger.counts} in {healed_at - t0:.1f}s", flush=True)
        self.assertEqual(load.anomalies, [])
        for reg in c.regions.values():
            self.assertTrue(reg.alive(), f"{reg.name} died; see {reg.logpath}")
            self.assertTrue(harness.sanitizer_env_ok(reg), f"sanitizer report in {reg.logpath}")
        rep, secs = faultlib.verify_healed(self, endpoints, users, ledger, self.bound,
                                           label=f"seed={self.seed} faults={len(plan)}",
                                           healed_at=healed_at)
        self.assertGreater(rep.acked, 0)


class CrossRegionSession(unittest.TestCase):
    """One user acting through two regions (tokens work everywhere, e.g. a
    client failing over): an acknowledged follow or unfollow made in a region
    that has not yet seen the user's previous write to the same edge must
    still be the final state once the regions converge. The admin pause holds
    the second region's incoming replication, so the window is certain
    rather than a race; the clocks are the same machine's, so the second
    write is later in real time as well as in the user's session."""

    @classmethod
    def setUpClass(cls):
        cls.cluster = harness.Cluster(args=["--demo"])

    @classmethod
    def tearDownClass(cls):
        cls.cluster.stop()

    def edge_everywhere(self, follower, followee):
        out = {}
        for name, reg in self.cluster.regions.items():
            r = reg.client.get(f"/v1/users/{faultlib.q(follower)}/following?limit=100")
            self.assertEqual(r.status, 200, r)
            out[name] = followee in r.json["items"]
        return out

    def pause(self, region, paused):
        r = self.cluster[region].client.post("/v1/admin/replication", {"paused": paused})
        self.assertEqual(r.status, 200, r)

    def run_session(self, name, first, second, want):
        c = self.cluster
        u = c["paris"].client.register(name)
        v = c["newyork"].client.register(name + "_v")
        c.wait_converged()
        tok = u["token"]
        if first == "unfollow":  # start from a replicated follow
            self.assertEqual(c["paris"].client.put(f"/v1/following/{v['id']}", token=tok).status, 200)
            c.wait_converged()
        self.pause("tokyo", True)
        try:
            m, st = ("PUT", 200) if first == "follow" else ("DELETE", 204)
            r = c["paris"].client.request(m, f"/v1/following/{v['id']}", token=tok)
            self.assertEqual(r.status, st, r)
            m, st = ("PUT", 200) if second == "follow" else ("DELETE", 204)
            r = c["tokyo"].client.request(m, f"/v1/following/{v['id']}", token=tok)
            self.assertEqual(r.status, st, r)  # acknowledged
        finally:
            self.pause("tokyo", False)
        c.wait_converged()
        got = self.edge_everywhere(u["id"], v["id"])
        print(f"\n{first} in paris, then {second} in tokyo (acknowledged): following={got}", flush=True)
        self.assertEqual(got, {n: want for n in c.regions},
                         f"the acknowledged {second} in tokyo was lost: the edge converged to {got}")

    def test_unfollow_elsewhere_after_follow(self):
        self.run_session("xr_a", "follow", "unfollow", False)

    def test_follow_elsewhere_after_unfollow(self):
        self.run_session("xr_b", "unfollow", "follow", True)


if __name__ == "__main__":
    unittest.main()
