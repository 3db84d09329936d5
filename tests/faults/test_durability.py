"""test_durability.py -- kill -9 of a region under write load, again and
again: after each restart every write it acknowledged is still there.

Regions paris and tokyo replicate through one Redis; the load writes to
paris only (posts, deletes, messages, follows, unfollows, some of them to
tokyo's users), at a seeded random moment paris is killed with SIGKILL
mid-load, restarted, and every write acknowledged since the previous restart
is looked up in paris. At the end tokyo must hold everything too (the
outbox survived the kills) and both home timelines must be right.

Knobs: FAULT_SEED, DURABILITY_KILLS (default 15; the issue's full run is 50),
DURABILITY_RATE (writes/s per worker, default 40).
"""
import random
import time
import unittest

import faultlib
from faultlib import harness


class Durability(unittest.TestCase):
    def setUp(self):
        self.seed = faultlib.seed()
        self.kills = faultlib.env_int("DURABILITY_KILLS", 15)
        self.rate = faultlib.env_float("DURABILITY_RATE", 40)
        self.cluster = harness.Cluster(names=("paris", "tokyo"),
                                       args=["--rate-limit", "0", "--timeline-cap", "100000"])
        self.addCleanup(self.cluster.stop)

    def test_kill9_under_load_loses_no_acknowledged_write(self):
        c = self.cluster
        rng = random.Random(self.seed)
        everywhere = {n: ("127.0.0.1", r.port) for n, r in c.regions.items()}
        paris = {"paris": everywhere["paris"]}
        users = faultlib.Users()
        for region, n in (("paris", 3), ("tokyo", 1)):
            part = faultlib.register_users({region: everywhere[region]}, per_region=n)
            for u in part.by_region[region]:
                users.add(region, u)
        faultlib.wait_users_everywhere(everywhere, users)

        total = faultlib.Ledger()
        up = {"gen": 0, "down": False}
        gate = lambda region: None if up["down"] else up["gen"]  # noqa: E731
        for k in range(self.kills):
            ledger = faultlib.Ledger()
            load = faultlib.Load(self.seed * 100 + k, paris, users, ledger, gate=gate, workers=3,
                                 rate=self.rate, tag=f"s{self.seed}k{k}w", timeout=5)
            load.start()
            # Kill at a random moment once the load has written something.
            faultlib.wait_for(lambda: ledger.acknowledged() >= 5, 10, what="the load writing")
            load.stop_event.wait(rng.uniform(0.2, 1.0))
            c["paris"].kill()
            load.stop()
            up["gen"] += 1
            c["paris"].start()
            rep, _ = faultlib.check_writes(paris, users, ledger)
            counts = ledger.counts
            print(f"kill {k + 1}/{self.kills}: {rep.line()} indeterminate={counts['indeterminate']} "
                  f"refused={counts['refused']}", flush=True)
            for what in rep.lost[:10] + rep.resurrected[:10]:
                print("  " + what, flush=True)
            self.assertEqual(load.anomalies, [])
            self.assertEqual(rep.lost, [], f"kill {k + 1}: acknowledged writes missing after restart")
            self.assertEqual(rep.resurrected, [], f"kill {k + 1}: acknowledged deletes undone")
            total.merge(ledger)
        self.assertTrue(harness.sanitizer_env_ok(c["paris"]), c["paris"].logpath)
        faultlib.verify_healed(self, everywhere, users, total, 60,
                               label=f"seed={self.seed} kills={self.kills}", healed_at=time.monotonic())


if __name__ == "__main__":
    unittest.main()
