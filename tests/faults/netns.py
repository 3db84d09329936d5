"""netns.py -- a small private network of Linux network namespaces for the
partition test: regions on "separate hosts".

Layout (everything created here, named after this process's pid, removed by
teardown(), which is also registered with atexit):

    host (root namespace)                 <tag>-br namespace
      <tag>h  10.213.N.254/24  ===veth===  <tag>hb --+
                                                     |  br0 (bridge)
    <tag>-<region> namespace                         |
      eth0   10.213.N.<i>/24   ===veth===  <tag><i>b-+

The only address given to the host is 10.213.N.254 on its own veth; the
subnet N is one no route of the host uses yet. A partition between two
namespaces is a blackhole route to the other's /32 inside each of them, so
the host still reaches both sides (the test keeps writing to both) while
they cannot reach each other. Healing deletes those routes.
"""
import atexit
import os
import shutil
import subprocess


class Unavailable(Exception):
    """Namespaces cannot be made here (not root, no CAP_NET_ADMIN, no ip)."""


def run(*argv, check=True):
    p = subprocess.run(list(argv), capture_output=True, text=True, timeout=20)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {p.stderr.strip()}")
    return p


class Net:
    def __init__(self, names):
        if os.geteuid() != 0:
            raise Unavailable("needs root (CAP_NET_ADMIN) to create network namespaces")
        if not shutil.which("ip"):
            raise Unavailable("the ip command (iproute2) is missing")
        self.tag = f"df{os.getpid() % 100000:05d}"
        self.names = list(names)
        self.namespaces = []
        self.host_if = f"{self.tag}h"
        self.cuts = set()
        self.procs = []
        atexit.register(self.teardown)
        probe = run("ip", "netns", "add", f"{self.tag}-br", check=False)
        if probe.returncode != 0:
            raise Unavailable(f"ip netns add failed: {probe.stderr.strip()}")
        self.namespaces.append(f"{self.tag}-br")
        try:
            self._build()
        except Exception:
            self.teardown()
            raise

    def _subnet(self):
        used = run("ip", "-4", "route", "show", "table", "all").stdout + run("ip", "-4", "addr").stdout
        start = os.getpid() % 200
        for k in range(250):
            n = (start + k) % 250 + 1
            if f"10.213.{n}." not in used:
                return n
        raise Unavailable("no free 10.213.N.0/24 subnet")

    def _build(self):
        br = f"{self.tag}-br"
        self.n = self._subnet()
        self.host_addr = f"10.213.{self.n}.254"
        run("ip", "-n", br, "link", "set", "lo", "up")
        run("ip", "-n", br, "link", "add", "br0", "type", "bridge")
        run("ip", "-n", br, "link", "set", "br0", "up")
        run("ip", "link", "add", self.host_if, "type", "veth", "peer", "name", f"{self.tag}hb", "netns", br)
        run("ip", "addr", "add", f"{self.host_addr}/24", "dev", self.host_if)
        run("ip", "link", "set", self.host_if, "up")
        run("ip", "-n", br, "link", "set", f"{self.tag}hb", "master", "br0", "up")
        self.addr = {}
        for i, name in enumerate(self.names, start=1):
            ns = self.ns(name)
            run("ip", "netns", "add", ns)
            self.namespaces.append(ns)
            inner = f"{self.tag}{i}"
            run("ip", "link", "add", inner, "type", "veth", "peer", "name", f"{inner}b", "netns", br)
            run("ip", "link", "set", inner, "netns", ns)
            run("ip", "-n", ns, "link", "set", inner, "name", "eth0")
            self.addr[name] = f"10.213.{self.n}.{i}"
            run("ip", "-n", ns, "addr", "add", f"{self.addr[name]}/24", "dev", "eth0")
            run("ip", "-n", ns, "link", "set", "eth0", "up")
            run("ip", "-n", ns, "link", "set", "lo", "up")
            run("ip", "-n", br, "link", "set", f"{inner}b", "master", "br0", "up")

    def ns(self, name):
        return f"{self.tag}-{name}"

    def spawn(self, name, argv, log):
        """Starts argv inside name's namespace (ip netns exec execs it, so the
        Popen's pid is the program's). teardown() kills what is left."""
        proc = subprocess.Popen(["ip", "netns", "exec", self.ns(name)] + list(argv),
                                stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def cut(self, a, b):
        """No packet from a reaches b or back; the host still reaches both."""
        for x, y in ((a, b), (b, a)):
            run("ip", "-n", self.ns(x), "route", "add", "blackhole", f"{self.addr[y]}/32")
        self.cuts.add(frozenset((a, b)))

    def heal(self, a, b):
        for x, y in ((a, b), (b, a)):
            run("ip", "-n", self.ns(x), "route", "del", "blackhole", f"{self.addr[y]}/32", check=False)
        self.cuts.discard(frozenset((a, b)))

    def heal_all(self):
        for pair in list(self.cuts):
            self.heal(*sorted(pair))

    def teardown(self):
        """Removes every namespace (and with them every veth and the bridge)
        and the host's veth, after killing the processes started in them.
        Safe to call more than once."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self.procs = []
        for ns in reversed(self.namespaces):
            run("ip", "netns", "del", ns, check=False)
        self.namespaces = []
        if run("ip", "link", "show", self.host_if, check=False).returncode == 0:
            run("ip", "link", "del", self.host_if, check=False)
