#!/usr/bin/env python3
"""torgw-socks benchmark: the relay against the direct path, haproxy and socat.

Paths (the client always speaks SOCKS5; the backend is Debian's danted on 127.0.0.5):
  direct                   client -> dante -> destination            (the limit)
  torgw-socks socks5       client -> torgw-socks (validating) -> dante -> destination
  torgw-socks passthrough  client -> torgw-socks (opaque) -> dante -> destination
  haproxy                  client -> haproxy (mode tcp, nbthread 1) -> dante -> destination
  socat                    client -> socat (TCP-LISTEN fork) -> dante -> destination

Metrics, each measured for every path in the same run (paths interleaved, --repeat
rounds, the median reported, ratios against the direct path of the same run):
  bulk x1 / x16   download throughput, 1 and 16 streams
  rtt p50 / p99   1-byte round trips on one tunnel (and what the hop adds to p50)
  conn/s          connect + SOCKS5 handshake + 64 B echo + close, 32 in flight (the
                  destination closes first, so TIME_WAIT does not exhaust client ports)
  mem @N idle     the relay's memory while holding N idle tunnels (default 5000): VmRSS
                  of the process; for socat (a process per connection) the sum of PSS

Targets for torgw-socks (ratios to direct): bulk >= 0.95, conn/s >= 0.90, added p50
<= 10 us, mem <= 16 MiB at 5000 idle tunnels, and ahead of haproxy and socat on every
metric. This script reports them; it never fails on a number (a benchmark, not a test).

Everything runs in a private network namespace (re-executes itself under `unshare -n`),
so no port or TIME_WAIT state is shared with anything else on the machine. Needs root,
danted, haproxy, socat, and a build (torgw-socks, torgw-socks-load).

Usage: bench/socks_bench.py [--seconds 5] [--repeat 3] [--idle 5000] [--paths a,b]
                            [--quick] [--json FILE] [--bin-dir build/default]
"""
import argparse
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

SKIP = 77
DANTE = "127.0.0.5:1080"
TARGET_HOST = "127.0.0.1"
TARGET_BASE = 7000  # +0 source, +1 echo, +2 exchange, +3 idle
PATHS = ["direct", "torgw-socks socks5", "torgw-socks passthrough", "haproxy", "socat"]
PORTS = {"direct": None, "torgw-socks socks5": 9050, "torgw-socks passthrough": 9051, "haproxy": 9052,
         "socat": 9053}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def wait_port(host, port, timeout=20.0):
    end = time.time() + timeout
    while time.time() < end:
        try:
            with socket.create_connection((host, port), timeout=1):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def children(pid):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                out.append(int(d))
        except OSError:
            pass
    return out


def vmrss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def pss_kib(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Bench:
    def __init__(self, args):
        self.args = args
        self.bin = os.path.abspath(args.bin_dir)
        self.load = os.path.join(self.bin, "bench", "torgw-socks-load")
        self.relay = os.path.join(self.bin, "socks", "torgw-socks")
        self.tmp = tempfile.mkdtemp(prefix="torgw-bench-")
        self.procs = {}

    def spawn(self, name, argv, **kw):
        logf = open(os.path.join(self.tmp, name.replace(" ", "_") + ".log"), "w")
        p = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True, **kw)
        self.procs[name] = p
        return p

    def stop_all(self):
        for name, p in self.procs.items():
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()
        if not self.args.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def start(self):
        t = self.spawn("target", [self.load, "target", TARGET_HOST, str(TARGET_BASE)])
        for k in range(4):
            if not wait_port(TARGET_HOST, TARGET_BASE + k):
                raise RuntimeError("destination server did not start")
        dconf = os.path.join(self.tmp, "danted.conf")
        with open(dconf, "w") as f:
            f.write("logoutput: stderr\n"
                    "internal: 127.0.0.5 port = 1080\nexternal: 127.0.0.5\n"
                    "clientmethod: none\nsocksmethod: none\n"
                    "user.privileged: root\nuser.unprivileged: nobody\n"
                    "client pass {\n  from: 0.0.0.0/0 to: 0.0.0.0/0\n  log: error\n}\n"
                    "socks pass {\n  from: 0.0.0.0/0 to: 0.0.0.0/0\n  command: connect\n  log: error\n}\n")
        self.spawn("danted", ["danted", "-f", dconf, "-N", "2"])
        if not wait_port("127.0.0.5", 1080):
            raise RuntimeError("danted did not start")
        maxconn = max(6000, self.args.idle + 1000)
        for mode, port in (("socks5", 9050), ("passthrough", 9051)):
            conf = os.path.join(self.tmp, f"socks-{mode}.conf")
            with open(conf, "w") as f:
                if mode == "socks5":
                    f.write(f"allow = {TARGET_HOST}\n")  # the destination is on loopback
                f.write("stats_interval = 0\nlog_level = warn\n")
            self.spawn(f"torgw-socks {mode}",
                       [self.relay, "--listen", f"127.0.0.1:{port}", "--backend", DANTE, "--mode", mode,
                        "--config", conf, "--max-connections", str(maxconn), "--user", "nobody"])
        hconf = os.path.join(self.tmp, "haproxy.cfg")
        with open(hconf, "w") as f:
            f.write("global\n  nbthread 1\n  maxconn 9000\n"
                    "defaults\n  mode tcp\n  timeout connect 10s\n  timeout client 1h\n  timeout server 1h\n"
                    "  maxconn 9000\n"
                    f"listen socks\n  bind 127.0.0.1:9052\n  server dante {DANTE}\n")
        self.spawn("haproxy", ["haproxy", "-f", hconf, "-db"])
        self.spawn("socat", ["socat", "TCP-LISTEN:9053,bind=127.0.0.1,fork,reuseaddr,backlog=4096,nodelay",
                             f"TCP:{DANTE},nodelay"])
        for name, port in PORTS.items():
            if port and not wait_port("127.0.0.1", port):
                raise RuntimeError(f"{name} did not start (log in {self.tmp})")

    def proxy(self, path):
        return DANTE if path == "direct" else f"127.0.0.1:{PORTS[path]}"

    def run_load(self, *argv, timeout=300):
        r = subprocess.run([self.load, *argv], capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError(f"torgw-socks-load {' '.join(argv)}: {r.stderr.strip()}")
        return json.loads(r.stdout.strip().splitlines()[-1])

    def target(self, k):
        return f"{TARGET_HOST}:{TARGET_BASE + k}"

    def bulk(self, path, streams):
        r = self.run_load("bulk", self.proxy(path), self.target(0), str(streams), str(self.args.seconds))
        return r["gbit_s"]

    def rtt(self, path):
        r = self.run_load("rtt", self.proxy(path), self.target(1), str(self.args.rtt_count))
        return r["p50_us"], r["p99_us"]

    def conns(self, path):
        r = self.run_load("conns", self.proxy(path), self.target(2), "32", str(self.args.seconds))
        if r["errors"]:
            log(f"  note: {path}: {r['errors']} failed connections during conn/s")
        return r["per_second"]

    def relay_mem_kib(self, path):
        p = self.procs[path]
        if path == "socat":
            return sum(pss_kib(c) for c in [p.pid] + children(p.pid))
        return vmrss_kib(p.pid)

    def idle(self, path):
        if path == "direct":
            return None
        n = self.args.idle
        cl = subprocess.Popen([self.load, "idle", self.proxy(path), self.target(3), str(n)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = cl.stdout.readline()
        ready = json.loads(line)["ready"] if line else 0
        time.sleep(1.0)
        mem = self.relay_mem_kib(path)
        cl.stdin.close()
        cl.wait(timeout=120)
        if ready != n:
            log(f"  note: {path}: only {ready}/{n} idle tunnels could be opened")
        # Let the relay (and socat's children) let go before the next measurement.
        end = time.time() + 60
        while path == "socat" and len(children(self.procs[path].pid)) > 0 and time.time() < end:
            time.sleep(0.2)
        time.sleep(1.0)
        return mem / 1024.0 if ready == n else None


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=5.0, help="per throughput/conn-rate measurement")
    ap.add_argument("--repeat", type=int, default=3, help="rounds; the median is reported")
    ap.add_argument("--idle", type=int, default=5000, help="idle tunnels for the memory measurement")
    ap.add_argument("--rtt-count", type=int, default=20000)
    ap.add_argument("--paths", default=",".join(PATHS))
    ap.add_argument("--quick", action="store_true", help="smoke run: tiny durations, proves every path works")
    ap.add_argument("--json", help="also write all raw samples here")
    ap.add_argument("--bin-dir", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build",
                                                      "default"))
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, configs)")
    args = ap.parse_args()
    if args.quick:
        args.seconds, args.repeat, args.idle, args.rtt_count = 0.3, 1, 50, 300
    paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    for p in paths:
        if p not in PATHS:
            ap.error(f"unknown path '{p}' (known: {', '.join(PATHS)})")
    if "direct" not in paths:
        paths.insert(0, "direct")

    if os.geteuid() != 0:
        print("SKIP: the benchmark needs root (private network namespace, danted)")
        return SKIP
    for prog in ["danted", "haproxy", "socat", "unshare", "ip"]:
        if not shutil.which(prog):
            print(f"SKIP: {prog} is not installed (scripts/setup installs it)")
            return SKIP
    for b in ["socks/torgw-socks", "bench/torgw-socks-load"]:
        if not os.access(os.path.join(args.bin_dir, b), os.X_OK):
            print(f"error: {os.path.join(args.bin_dir, b)} missing: cmake --build --preset default", file=sys.stderr)
            return 2

    if os.environ.get("TORGW_BENCH_NETNS") != "1":
        os.environ["TORGW_BENCH_NETNS"] = "1"
        os.execvp("unshare", ["unshare", "-n", sys.executable, os.path.abspath(__file__)] + sys.argv[1:])
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    subprocess.run(["ip", "addr", "add", "127.0.0.5/8", "dev", "lo"], check=True)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    load_before = os.getloadavg()
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    b = Bench(args)
    samples = {p: {"bulk1": [], "bulk16": [], "p50": [], "p99": [], "conns": [], "mem": []} for p in paths}
    try:
        b.start()
        for rep in range(args.repeat):
            # Rotate the order each round so slow drifts in machine load hit every path.
            order = paths[rep % len(paths):] + paths[:rep % len(paths)]
            log(f"round {rep + 1}/{args.repeat} (load {os.getloadavg()[0]:.2f})")
            for p in order:
                samples[p]["bulk1"].append(b.bulk(p, 1))
            for p in order:
                samples[p]["bulk16"].append(b.bulk(p, 16))
            for p in order:
                p50, p99 = b.rtt(p)
                samples[p]["p50"].append(p50)
                samples[p]["p99"].append(p99)
            for p in order:
                samples[p]["conns"].append(b.conns(p))
            for p in order:
                samples[p]["mem"].append(b.idle(p))
    finally:
        b.stop_all()
    load_after = os.getloadavg()

    def med(p, k):
        vals = [v for v in samples[p][k] if v is not None]
        return statistics.median(vals) if vals else None

    def rng(p, k):
        vals = [v for v in samples[p][k] if v is not None]
        return (min(vals), max(vals)) if vals else (None, None)

    d = {k: med("direct", k) for k in ["bulk1", "bulk16", "p50", "p99", "conns"]}

    def ratio(p, k):
        v, base = med(p, k), d[k]
        return None if v is None or not base else v / base

    print(f"torgw-socks benchmark, {started}: {os.cpu_count()} CPUs, {args.repeat} round(s), "
          f"{args.seconds:g} s per measurement, {args.idle} idle tunnels; backend danted on 127.0.0.5")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in load_before)}; "
          f"after: {' '.join(f'{x:.2f}' for x in load_after)}  (the machine is shared: read ratios, not absolutes)")
    print()
    hdr = (f"{'path':<24} {'bulk x1':>16} {'bulk x16':>16} {'rtt p50 us':>17} {'p99 us':>8} "
           f"{'conn/s':>15} {'mem MiB':>8}")
    print(hdr)
    print(f"{'':<24} {'Gbit/s  ratio':>16} {'Gbit/s  ratio':>16} {'(added)':>17} {'':>8} {'(ratio)':>15} "
          f"{'@' + str(args.idle):>8}")
    print("-" * len(hdr))
    for p in paths:
        r1, r16, rc = ratio(p, "bulk1"), ratio(p, "bulk16"), ratio(p, "conns")
        added = None if med(p, "p50") is None else med(p, "p50") - d["p50"]
        print(f"{p:<24} {fmt(med(p, 'bulk1'), '7.2f')} {fmt(r1, '6.2f'):>8} {fmt(med(p, 'bulk16'), '7.2f')} "
              f"{fmt(r16, '6.2f'):>8} {fmt(med(p, 'p50'), '7.1f')} {('(' + fmt(added, '+.1f') + ')') if p != 'direct' else '':>9} "
              f"{fmt(med(p, 'p99'), '8.1f')} {fmt(med(p, 'conns'), '7.0f')} {('(' + fmt(rc, '.2f') + ')'):>7} "
              f"{fmt(med(p, 'mem'), '8.1f')}")
    print()
    if args.repeat > 1:
        print("spread over rounds (min..max):")
        for p in paths:
            parts = []
            for k, spec in (("bulk1", ".2f"), ("bulk16", ".2f"), ("p50", ".1f"), ("conns", ".0f"), ("mem", ".1f")):
                lo, hi = rng(p, k)
                if lo is not None:
                    parts.append(f"{k} {lo:{spec}}..{hi:{spec}}")
            print(f"  {p:<24} " + ", ".join(parts))
        print()

    # The targets, reported (not asserted).
    for p in [x for x in paths if x.startswith("torgw-socks")]:
        checks = []
        def chk(name, ok):
            checks.append(f"{name} {'met' if ok else 'MISSED'}")
        r1, r16, rc = ratio(p, "bulk1"), ratio(p, "bulk16"), ratio(p, "conns")
        added = med(p, "p50") - d["p50"] if med(p, "p50") is not None else None
        mem = med(p, "mem")
        chk("bulk>=0.95", r1 is not None and r16 is not None and min(r1, r16) >= 0.95)
        chk("conn/s>=0.90", rc is not None and rc >= 0.90)
        chk("p50+<=10us", added is not None and added <= 10.0)
        if args.idle >= 5000:
            chk("mem<=16MiB", mem is not None and mem <= 16.0)
        for other in [x for x in ("haproxy", "socat") if x in paths]:
            ahead = all([
                (med(p, "bulk1") or 0) > (med(other, "bulk1") or 0),
                (med(p, "bulk16") or 0) > (med(other, "bulk16") or 0),
                (med(p, "p50") or 1e9) < (med(other, "p50") or 1e9),
                (med(p, "p99") or 1e9) < (med(other, "p99") or 1e9),
                (med(p, "conns") or 0) > (med(other, "conns") or 0),
                (med(p, "mem") or 1e9) < (med(other, "mem") or 1e9),
            ])
            chk(f"ahead-of-{other}", ahead)
        print(f"targets, {p}: " + ", ".join(checks))

    if args.json:
        with open(args.json, "w") as f:
            json.dump({"started": started, "load_before": load_before, "load_after": load_after,
                       "args": vars(args), "samples": samples}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
