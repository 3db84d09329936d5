"""test_partition.py -- regions on separate "hosts" (network namespaces made
by the test, see netns.py), each with its own Redis for its log and reading
its peers' logs from their Redis (--redis own, --peer-redis peers). The
network between one region and the other two is cut; the test keeps writing
on both sides and checks that both sides accept writes and that the cut is
real (the majority side still replicates within itself, the lone region
sees nothing of it); then it heals the links and requires convergence with
nothing lost, nothing resurrected and correct home timelines.

Skipped, saying why, where namespaces cannot be made (not root, no
CAP_NET_ADMIN, no `ip`). Everything it creates is removed afterwards, also on
failure (tearDownClass, and atexit in netns.py).

Knobs: FAULT_SEED, PARTITION_ROUNDS (default 2), PARTITION_S (seconds of
writes during each partition, default 8), PARTITION_RATE (writes/s per
worker, default 8), FAULT_CONVERGE_S (default 30).
"""
import os
import random
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import faultlib
from faultlib import harness, q, wait_for
import netns

NAMES = ("paris", "newyork", "tokyo")
HTTP_PORT = 8080
REDIS_PORT = 6390


class NsProc:
    """A process in a namespace with a log file; kill/stop like harness.Region."""

    def __init__(self, net, name, argv, logpath):
        self.net, self.name, self.argv, self.logpath = net, name, argv, logpath
        self.proc = None

    def start(self):
        self.log = open(self.logpath, "ab")
        self.proc = self.net.spawn(self.name, self.argv, self.log)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class Partition(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not shutil.which(harness.REDIS_BIN) and not os.path.exists(harness.REDIS_BIN):
            raise unittest.SkipTest("redis-server is missing")
        try:
            cls.net = netns.Net(NAMES)
        except netns.Unavailable as e:
            print(f"\nSKIP: network namespaces unavailable: {e}", flush=True)
            raise unittest.SkipTest(f"network namespaces unavailable: {e}")
        cls.workdir = tempfile.mkdtemp(prefix="driftfeed-partition-")
        cls.redis, cls.regions = {}, {}
        try:
            cls._start_all()
        except BaseException:
            cls._teardown()
            raise

    @classmethod
    def _start_all(cls):
        net = cls.net
        for name in NAMES:
            d = os.path.join(cls.workdir, f"redis-{name}")
            os.makedirs(d)
            r = NsProc(net, name, [harness.REDIS_BIN, "--bind", net.addr[name], "--port", str(REDIS_PORT),
                                   "--save", "", "--appendonly", "no", "--dir", d, "--protected-mode", "no"],
                       os.path.join(d, "redis.log"))
            r.start()
            cls.redis[name] = r
        for name in NAMES:
            peers = [p for p in NAMES if p != name]
            argv = [harness.BIN, "--region", name, "--bind", net.addr[name], "--port", str(HTTP_PORT),
                    "--data", os.path.join(cls.workdir, f"data-{name}"),
                    "--redis", f"{net.addr[name]}:{REDIS_PORT}", "--peers", ",".join(peers),
                    "--peer-redis", ",".join(f"{p}={net.addr[p]}:{REDIS_PORT}" for p in peers),
                    "--public-url", f"http://{net.addr[name]}:{HTTP_PORT}",
                    "--rate-limit", "0", "--timeline-cap", "100000"]
            reg = NsProc(net, name, argv, os.path.join(cls.workdir, f"{name}.log"))
            reg.start()
            cls.regions[name] = reg
        cls.endpoints = {n: (net.addr[n], HTTP_PORT) for n in NAMES}
        for name, (host, port) in cls.endpoints.items():
            h = faultlib.Http(host, port, timeout=2)

            def healthy():
                if not cls.regions[name].alive():
                    raise AssertionError(f"{name} exited; see {cls.regions[name].logpath}")
                return h.get("/health").status == 200
            wait_for(healthy, 20, what=f"{name} /health at {host}:{port}")
            h.close()

    @classmethod
    def _teardown(cls):
        for p in list(cls.regions.values()) + list(cls.redis.values()):
            try:
                p.stop()
            except Exception:
                pass
        cls.net.teardown()
        if os.environ.get("KEEP_TEST_DIRS") != "1":
            shutil.rmtree(cls.workdir, ignore_errors=True)

    @classmethod
    def tearDownClass(cls):
        cls._teardown()

    def visible(self, region, post_id):
        h = faultlib.Http(*self.endpoints[region], timeout=3)
        try:
            return h.get(f"/v1/posts/{q(post_id)}").status == 200
        finally:
            h.close()

    def test_partition_and_heal(self):
        seed = faultlib.seed()
        rng = random.Random(seed)
        rounds = faultlib.env_int("PARTITION_ROUNDS", 2)
        seconds = faultlib.env_float("PARTITION_S", 8)
        rate = faultlib.env_float("PARTITION_RATE", 8)
        bound = faultlib.env_float("FAULT_CONVERGE_S", 30)
        net, ep = self.net, self.endpoints
        print(f"namespaces {', '.join(net.namespaces)}; regions at "
              + ", ".join(f"{n}={a}" for n, a in net.addr.items()) + f"; host {net.host_addr}", flush=True)

        users = faultlib.register_users(ep, per_region=3, prefix="n")
        faultlib.wait_users_everywhere(ep, users)
        total = faultlib.Ledger()
        for k in range(rounds):
            lone = rng.choice(NAMES)
            rest = [n for n in NAMES if n != lone]
            for other in rest:
                net.cut(lone, other)
            t_cut = time.monotonic()
            try:
                # The cut is real: the majority side replicates within itself,
                # the lone region sees nothing of it, nor they of it.
                probes = {}
                for n in NAMES:
                    tok = users.by_region[n][0]["token"]
                    h = faultlib.Http(*ep[n])
                    r = h.request("POST", "/v1/posts", {"text": f"probe {k} from {n}"}, token=tok)
                    h.close()
                    self.assertEqual(r.status, 201, f"{n} refused a write during the partition: {r!r}")
                    probes[n] = r.json["id"]
                wait_for(lambda: self.visible(rest[1], probes[rest[0]]) and self.visible(rest[0], probes[rest[1]]),
                         20, what=f"replication between {rest[0]} and {rest[1]} during the partition")

                ledger = faultlib.Ledger()
                load = faultlib.Load(seed * 10 + k, ep, users, ledger, workers=1, rate=rate,
                                     tag=f"s{seed}r{k}w")
                load.start()
                load.stop_event.wait(seconds)
                load.stop()
                for n in rest:
                    self.assertFalse(self.visible(lone, probes[n]), f"{lone} got {n}'s write through the cut")
                    self.assertFalse(self.visible(n, probes[lone]), f"{n} got {lone}'s write through the cut")
                d = faultlib.digests(ep)
                self.assertNotEqual(d[lone], d[rest[0]], "digests equal across the cut")
                per_side = {n: sum(1 for p in ledger.posts.values() if p["region"] == n) for n in NAMES}
                print(f"round {k + 1}: {lone} | {'+'.join(rest)} for {time.monotonic() - t_cut:.1f}s; "
                      f"acknowledged posts per region {per_side}; {ledger.counts}", flush=True)
                for n in NAMES:
                    self.assertGreater(per_side[n], 0, f"no write acknowledged in {n} during the partition")
            finally:
                net.heal_all()
            healed_at = time.monotonic()
            total.merge(ledger)
            for n in NAMES:
                self.assertTrue(self.regions[n].alive(), f"{n} died; see {self.regions[n].logpath}")
            faultlib.verify_healed(self, ep, users, total, bound, label=f"seed={seed} round={k + 1} lone={lone}",
                                   healed_at=healed_at)
        for n in NAMES:
            self.assertTrue(harness.sanitizer_env_ok(self.regions[n]), self.regions[n].logpath)


if __name__ == "__main__":
    unittest.main()
