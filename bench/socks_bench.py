#!/usr/bin/env python3
"""torgw-socks benchmark: the relay against the direct path, haproxy, nginx and socat.

Paths (the client always speaks SOCKS5; the backend is Debian's danted on 127.0.0.5):
  direct                   client -> dante -> destination            (the limit)
  torgw-socks socks5       client -> torgw-socks (validating) -> dante -> destination
  torgw-socks passthrough  client -> torgw-socks (opaque) -> dante -> destination
  haproxy                  client -> haproxy (mode tcp, nbthread 1) -> dante -> destination
  nginx                    client -> nginx (stream proxy, worker_processes 1) -> dante -> destination
  socat                    client -> socat (TCP-LISTEN fork) -> dante -> destination
  torgw-socks tls          client -> torgw-socks -> TLS 1.3 (pinned) -> stunnel (server) -> dante
                           -> destination: the cross-provider hop, TLS done by torgw-socks
                           (kernel TLS where OpenSSL and the kernel offer it)
  torgw-socks tls no-ktls  the same with backend_tls_ktls = no (user-space TLS always)
  torgw-socks NAME         --variant NAME:key=value,...: one more torgw-socks socks5 with
                           those config lines (e.g. --variant copy:splice=no), measured in
                           the same rounds, so a relay setting is compared side by side
  stunnel client           client -> torgw-socks (plain) -> stunnel (client mode, verifying the
                           server's certificate) -> TLS 1.3 -> stunnel (server) -> dante ->
                           destination: the alternative an operator would reach for. Its
                           relay CPU is torgw-socks's plus the stunnel client's.

Metrics, each measured for every path in the same run (paths interleaved, --repeat
rounds, the median reported, ratios against the direct path of the same run):
  bulk x1 / x16   download throughput, 1 and 16 streams
  rtt p50 / p99   1-byte round trips, one tunnel per path sampled in turn (paired, so
                  every path sees the same load), and what the hop adds to p50
  conn/s          connect + SOCKS5 handshake + 64 B echo + close, 32 in flight (the
                  destination closes first, so TIME_WAIT does not exhaust client ports)
  mem @N idle     the relay's memory while holding N idle tunnels (default 5000): VmRSS
                  of the process; for socat (a process per connection) and nginx (master
                  + worker) the sum of PSS. The issue-20 table shows PSS for every relay.
                  Measured once, after the rounds (it does not vary with load, and
                  5000 socat processes must not disturb the rate measurements).
  CPU             where cgroup v1 cpuacct is available, the CPU time every process of
                  each role used (children included), per connection in the conn/s test
                  and per GB in the bulk x1 and the bulk x16 tests: relay, and everything
                  together. This does not depend on what else runs on the machine, unlike
                  the rates.

The issue-20 table (printed last): none/direct, haproxy, nginx and each torgw-socks row
with bulk 1 and 16 streams in GB/s (bytes, not bits), conn/s, RTT p50, the relay's CPU
per GB over the 16-stream runs, its CPU per connection and its PSS at --idle idle
tunnels, then one verdict line per torgw-socks row: does it lead both peers on all
seven figures, and if not, which it misses against whom.

TLS hop (when the tls paths run): torgw-socks tls against stunnel client, side by side in
the same run: bulk x1 ratio >= 1.0 and relay CPU per GB below stunnel's; conn/s and
CPU per connection reported; kTLS on (if the host has it) and off.

Targets for torgw-socks (ratios to direct): bulk >= 0.95, conn/s >= 0.90, added p50
<= 10 us, mem <= 16 MiB at 5000 idle tunnels, and ahead of haproxy and socat on every
metric. This script reports them; it never fails on a number (a benchmark, not a test).

Everything runs in a private network namespace (re-executes itself under `unshare -n`),
so no port or TIME_WAIT state is shared with anything else on the machine. Needs root,
danted, haproxy, nginx with its stream module, socat, stunnel4 and openssl (for the tls
paths), and a build
(torgw-socks, torgw-socks-load).

Usage: bench/socks_bench.py [--seconds 5] [--repeat 3] [--idle 5000] [--paths a,b]
                            [--quick] [--json FILE] [--bin-dir build/default]
                            [--variant NAME:key=value,key=value ...]
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
PATHS = ["direct", "torgw-socks socks5", "torgw-socks passthrough", "haproxy", "nginx", "socat",
         "torgw-socks tls", "torgw-socks tls no-ktls", "stunnel client"]
PORTS = {"direct": None, "torgw-socks socks5": 9050, "torgw-socks passthrough": 9051, "haproxy": 9052,
         "socat": 9053, "torgw-socks tls": 9054, "torgw-socks tls no-ktls": 9055, "stunnel client": 9056,
         "nginx": 9057}
VARIANT_PORT = 9060  # --variant paths: 9060, 9061, ...
NGINX_STREAM = "/usr/lib/nginx/modules/ngx_stream_module.so"
PEERS = ["haproxy", "nginx"]  # the issue-20 table's peers
TLS_PATHS = ["torgw-socks tls", "torgw-socks tls no-ktls", "stunnel client"]
EXIT_TLS = "127.0.0.1:1443"      # stunnel server in front of dante (the exit node's side)
STUNNEL_CLIENT = "127.0.0.1:1444"  # stunnel client mode (the gateway's side, the alternative)


def skip(needs, reason):
    """The skip contract of tests/support/skip.h: 77, or a failure under CI=true when CI
    guarantees the precondition (it runs as root after scripts/setup)."""
    if os.environ.get("CI") == "true" and needs in ("root", "package"):
        print(f"FAIL: CI guarantees this precondition ({needs}), so it is a failure, not a skip: {reason}")
        return 1
    print(f"SKIP: {needs}: {reason}")
    return SKIP


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
        self.cg = self.cgroup_setup()

    def cgroup_setup(self):
        """cpuacct groups per role, so CPU use can be attributed (None if unavailable)."""
        base = "/sys/fs/cgroup/cpuacct"
        if not os.path.exists(os.path.join(base, "cpuacct.usage")):
            return None
        root = os.path.join(base, f"torgw-bench-{os.getpid()}")
        try:
            for role in ["client", "backend", "target"] + PATHS[1:] + list(self.args.variants):
                os.makedirs(os.path.join(root, role.replace(" ", "_")), exist_ok=True)
        except OSError:
            return None
        return root

    def cgroup_cleanup(self):
        if not self.cg:
            return
        for _ in range(50):
            left = False
            for d in os.listdir(self.cg):
                p = os.path.join(self.cg, d)
                if os.path.isdir(p):
                    try:
                        os.rmdir(p)
                    except OSError:
                        left = True
            if not left:
                break
            time.sleep(0.1)
        try:
            os.rmdir(self.cg)
        except OSError:
            pass

    def cpu_ns(self, role):
        if not self.cg:
            return None
        with open(os.path.join(self.cg, role.replace(" ", "_"), "cpuacct.usage")) as f:
            return int(f.read())

    def in_cgroup(self, role, argv):
        """argv wrapped so the process enters its role's cgroup before exec."""
        if not self.cg:
            return argv
        procs = os.path.join(self.cg, role.replace(" ", "_"), "cgroup.procs")
        return ["sh", "-c", f'echo $$ > {procs} && exec "$@"', "sh"] + argv

    def spawn(self, name, argv, role=None, **kw):
        logf = open(os.path.join(self.tmp, name.replace(" ", "_") + ".log"), "w")
        p = subprocess.Popen(self.in_cgroup(role or name, argv), stdout=logf, stderr=subprocess.STDOUT,
                             start_new_session=True, **kw)
        self.procs[name] = p
        return p

    def stop_all(self):
        for name, p in self.procs.items():
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()
        self.cgroup_cleanup()
        if not self.args.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def start_tls(self, paths):
        """The exit side's stunnel (server, in front of dante), a self-signed certificate
        made with openssl, and the three TLS paths' gateways."""
        cert, key = os.path.join(self.tmp, "exit.pem"), os.path.join(self.tmp, "exit.key")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=exit.torgw.test"],
                       check=True, capture_output=True)
        pin = subprocess.run(f"openssl x509 -in {cert} -pubkey -noout | openssl pkey -pubin -outform der"
                             " | openssl dgst -sha256 -binary | base64", shell=True, check=True,
                             capture_output=True, text=True).stdout.strip()
        nodelay = "socket = l:TCP_NODELAY=1\nsocket = r:TCP_NODELAY=1\n"
        sconf = os.path.join(self.tmp, "stunnel-exit.conf")
        with open(sconf, "w") as f:
            f.write(f"foreground = yes\npid =\ndebug = warning\n{nodelay}[exit]\naccept = {EXIT_TLS}\n"
                    f"connect = {DANTE}\ncert = {cert}\nkey = {key}\nsslVersionMin = TLSv1.3\n")
        self.spawn("stunnel exit", ["stunnel4", sconf], role="backend")
        if not wait_port(*EXIT_TLS.split(":")):
            raise RuntimeError("stunnel (exit side) did not start")
        maxconn = max(6000, self.args.idle + 1000)
        for path, ktls in (("torgw-socks tls", "yes"), ("torgw-socks tls no-ktls", "no")):
            if path not in paths:
                continue
            conf = os.path.join(self.tmp, path.replace(" ", "_") + ".conf")
            with open(conf, "w") as f:
                f.write(f"allow = {TARGET_HOST}\nstats_interval = 0\nlog_level = info\n"
                        f"backend_tls_pin = sha256//{pin}\nbackend_tls_ktls = {ktls}\n")
            self.spawn(path, [self.relay, "--listen", f"127.0.0.1:{PORTS[path]}", "--backend", f"tls://{EXIT_TLS}",
                              "--config", conf, "--max-connections", str(maxconn), "--user", "nobody"])
        if "stunnel client" in paths:
            cconf = os.path.join(self.tmp, "stunnel-client.conf")
            with open(cconf, "w") as f:
                f.write(f"foreground = yes\npid =\ndebug = warning\n{nodelay}[gw]\nclient = yes\n"
                        f"accept = {STUNNEL_CLIENT}\nconnect = {EXIT_TLS}\nverifyPeer = yes\nCAfile = {cert}\n"
                        "sslVersionMin = TLSv1.3\n")
            self.spawn("stunnel client (stunnel)", ["stunnel4", cconf], role="stunnel client")
            conf = os.path.join(self.tmp, "stunnel-client-relay.conf")
            with open(conf, "w") as f:
                f.write(f"allow = {TARGET_HOST}\nstats_interval = 0\nlog_level = warn\n")
            self.spawn("stunnel client", [self.relay, "--listen", f"127.0.0.1:{PORTS['stunnel client']}",
                                          "--backend", STUNNEL_CLIENT, "--config", conf,
                                          "--max-connections", str(maxconn), "--user", "nobody"])

    def tls_path_used(self, path):
        """What torgw-socks's BACKEND_TLS marker said: pinned:ktls, pinned:userspace, ..."""
        try:
            with open(os.path.join(self.tmp, path.replace(" ", "_") + ".log")) as f:
                for line in f:
                    if "TORGW BACKEND_TLS=" in line:
                        return line.strip().split("=", 1)[1]
        except OSError:
            pass
        return None

    def start(self, paths):
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
        self.spawn("danted", ["danted", "-f", dconf, "-N", "2"], role="backend")
        if not wait_port("127.0.0.5", 1080):
            raise RuntimeError("danted did not start")
        maxconn = max(6000, self.args.idle + 1000)
        for mode, port in (("socks5", 9050), ("passthrough", 9051)):
            conf = os.path.join(self.tmp, f"socks-{mode}.conf")
            with open(conf, "w") as f:
                if mode == "socks5":
                    f.write(f"allow = {TARGET_HOST}\n")  # the destination is on loopback
                f.write("stats_interval = 0\nlog_level = warn\n")
            self.spawn(f"torgw-socks {mode}", role=f"torgw-socks {mode}", argv=
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
        if "nginx" in paths:
            self.start_nginx(maxconn)
        for name, lines in self.args.variants.items():
            conf = os.path.join(self.tmp, name.replace(" ", "_") + ".conf")
            with open(conf, "w") as f:
                f.write(f"allow = {TARGET_HOST}\nstats_interval = 0\nlog_level = warn\n" + "".join(l + "\n" for l in lines))
            self.spawn(name, [self.relay, "--listen", f"127.0.0.1:{PORTS[name]}", "--backend", DANTE, "--mode", "socks5",
                              "--config", conf, "--max-connections", str(maxconn), "--user", "nobody"])
        if any(p in TLS_PATHS for p in paths):
            self.start_tls(paths)
        for name, port in PORTS.items():
            if name in TLS_PATHS and name not in paths:
                continue
            if port and not wait_port("127.0.0.1", port):
                raise RuntimeError(f"{name} did not start (log in {self.tmp})")

    def start_nginx(self, maxconn):
        """nginx's stream proxy, one worker, everything it writes inside the bench's tmp dir
        (its http temp paths are compiled in, but the stream module never uses them)."""
        d = os.path.join(self.tmp, "nginx")
        os.makedirs(d, exist_ok=True)
        conf = os.path.join(d, "nginx.conf")
        with open(conf, "w") as f:
            f.write(f"load_module {NGINX_STREAM};\nworker_processes 1;\ndaemon off;\n"
                    f"pid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n"
                    f"worker_rlimit_nofile {4 * maxconn};\nevents {{ worker_connections {2 * maxconn + 100}; }}\n"
                    f"stream {{\n  server {{\n    listen 127.0.0.1:{PORTS['nginx']} backlog=4096;\n"
                    f"    proxy_pass {DANTE};\n  }}\n}}\n")
        self.spawn("nginx", ["nginx", "-p", d, "-e", os.path.join(d, "error.log"), "-c", conf])

    def proxy(self, path):
        return DANTE if path == "direct" else f"127.0.0.1:{PORTS[path]}"

    def run_load(self, *argv, timeout=300):
        r = subprocess.run(self.in_cgroup("client", [self.load, *argv]), capture_output=True, text=True,
                           timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError(f"torgw-socks-load {' '.join(argv)}: {r.stderr.strip()}")
        return json.loads(r.stdout.strip().splitlines()[-1])  # an object, or a list for rtt

    def target(self, k):
        return f"{TARGET_HOST}:{TARGET_BASE + k}"

    def cpu_snapshot(self, path):
        roles = ["client", "backend", "target"] + ([path] if path != "direct" else [])
        return {r: self.cpu_ns(r) for r in roles} if self.cg else None

    def cpu_delta(self, path, before, units):
        """(relay, total) CPU microseconds per unit of work, or (None, None)."""
        if not before or units <= 0:
            return None, None
        after = self.cpu_snapshot(path)
        d = {r: (after[r] - before[r]) / 1000.0 / units for r in before}
        relay = d.get(path)
        return relay, sum(d.values())

    def bulk(self, path, streams):
        before = self.cpu_snapshot(path)
        r = self.run_load("bulk", self.proxy(path), self.target(0), str(streams), str(self.args.seconds))
        # CPU is counted over the whole run (warm-up included): scale the bytes to match.
        gb = r["bytes"] * (r["seconds"] + 0.5) / r["seconds"] / 1e9
        relay, total = self.cpu_delta(path, before, gb)
        ms = lambda v: None if v is None else v / 1000.0  # us/GB -> ms/GB
        return r["gbit_s"], ms(relay), ms(total)

    def rtt(self, paths):
        """Paired: one tunnel per path, sampled in turn, so all see the same load."""
        r = self.run_load("rtt", ",".join(self.proxy(p) for p in paths), self.target(1), str(self.args.rtt_count))
        return {p: (x["p50_us"], x["p99_us"]) for p, x in zip(paths, r)}

    def conns(self, path):
        before = self.cpu_snapshot(path)
        r = self.run_load("conns", self.proxy(path), self.target(2), "32", str(self.args.seconds))
        if r["errors"]:
            log(f"  note: {path}: {r['errors']} failed connections during conn/s")
        n = r["connections"] * (r["seconds"] + 0.5) / r["seconds"]
        relay, total = self.cpu_delta(path, before, n)
        return r["per_second"], relay, total

    def relay_mem_kib(self, path):
        """(memory as the main table shows it, PSS of all the relay's processes) in KiB."""
        p = self.procs[path]
        pids = [p.pid] + (children(p.pid) if path in ("socat", "nginx") else [])
        if path == "stunnel client":  # the plain relay and the stunnel client beside it
            pids.append(self.procs["stunnel client (stunnel)"].pid)
        pss = sum(pss_kib(x) for x in pids)
        if path in ("socat", "nginx"):
            return pss, pss
        return sum(vmrss_kib(x) for x in pids), pss

    def idle(self, path):
        if path == "direct":
            return None, None
        n = self.args.idle
        cl = subprocess.Popen([self.load, "idle", self.proxy(path), self.target(3), str(n)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = cl.stdout.readline()
        ready = json.loads(line)["ready"] if line else 0
        time.sleep(1.0)
        mem, pss = self.relay_mem_kib(path)
        cl.stdin.close()
        cl.wait(timeout=120)
        if ready != n:
            log(f"  note: {path}: only {ready}/{n} idle tunnels could be opened")
        # Let the relay (and socat's children) let go before the next measurement.
        end = time.time() + 60
        while path == "socat" and len(children(self.procs[path].pid)) > 0 and time.time() < end:
            time.sleep(0.2)
        time.sleep(1.0)
        return (mem / 1024.0, pss / 1024.0) if ready == n else (None, None)


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


# The issue-20 table: (column, sample key, format, scale, True if higher is better).
# Rates in GB/s (bytes); the CPU per GB is the 16-stream run's (the issue's column).
TABLE = [("bulk 1 stream GB/s", "bulk1", ".2f", 1 / 8, True), ("bulk 16 GB/s", "bulk16", ".2f", 1 / 8, True),
         ("conn/s", "conns", ".0f", 1, True), ("RTT p50 us", "p50", ".1f", 1, False),
         ("X CPU ms/GB (16)", "cpu_gb16_relay", ".0f", 1, False), ("X CPU us/conn", "cpu_conn_relay", ".0f", 1, False),
         ("X PSS MiB @idle", "pss", ".1f", 1, False)]


def issue_table(paths, med, idle):
    """Prints the issue's table and one verdict per torgw-socks row: the figures where it
    does not beat both peers (haproxy, nginx) measured in the same run."""
    rows = [p for p in paths if p == "direct" or p in PEERS
            or (p.startswith("torgw-socks") and p not in TLS_PATHS)]
    val = lambda p, k, scale: None if med(p, k) is None else med(p, k) * scale
    cols = [c.replace("@idle", f"@{idle}") for c, *_ in TABLE]
    print("| X | " + " | ".join(cols) + " |")
    print("|---" * (len(cols) + 1) + "|")
    for p in rows:
        name = "none (client -> dante)" if p == "direct" else p
        cells = [fmt(val(p, k, sc), spec) for _, k, spec, sc, _ in TABLE]
        print(f"| {name} | " + " | ".join(cells) + " |")
    peers = [x for x in PEERS if x in paths]
    for p in [x for x in rows if x.startswith("torgw-socks")]:
        missed, n = [], 0
        for col, k, spec, sc, higher in TABLE:
            mine = val(p, k, sc)
            for other in peers:
                theirs = val(other, k, sc)
                if theirs is None:
                    continue
                n += 1
                if mine is None or (mine <= theirs if higher else mine >= theirs):
                    missed.append(f"{col} against {other} ({fmt(mine, spec)} vs {fmt(theirs, spec)})")
        figures = len({c for c, k, *_ in TABLE if any(val(o, k, 1) is not None for o in peers)})
        if not peers:
            print(f"verdict, {p}: no peer measured (haproxy, nginx)")
        elif not missed:
            print(f"verdict, {p}: leads on all {figures} figures against {' and '.join(peers)}")
        else:
            print(f"verdict, {p}: misses {len(missed)} of {n}: " + "; ".join(missed))


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
    ap.add_argument("--variant", action="append", default=[], metavar="NAME:key=value,...",
                    help="one more torgw-socks socks5 path, 'torgw-socks NAME', with these config lines")
    args = ap.parse_args()
    args.variants = {}
    for k, v in enumerate(args.variant):
        name, _, kvs = v.partition(":")
        if not name or " " in name or not kvs:
            ap.error(f"--variant {v}: want NAME:key=value[,key=value]")
        path = f"torgw-socks {name}"
        args.variants[path] = [x.replace("=", " = ", 1) for x in kvs.split(",")]
        PATHS.append(path)
        PORTS[path] = VARIANT_PORT + k
    if args.quick:
        args.seconds, args.repeat, args.idle, args.rtt_count = 0.3, 1, 50, 300
    paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    paths += [p for p in args.variants if p not in paths]
    for p in paths:
        if p not in PATHS:
            ap.error(f"unknown path '{p}' (known: {', '.join(PATHS)})")
    if "direct" not in paths:
        paths.insert(0, "direct")

    if os.geteuid() != 0:
        return skip("root", "the benchmark needs root (private network namespace, danted)")
    need = ["danted", "haproxy", "socat", "unshare", "ip"] + (["nginx"] if "nginx" in paths else [])
    if any(p in TLS_PATHS for p in paths):
        need += ["stunnel4", "openssl"]
    for prog in need:
        if not shutil.which(prog):
            return skip("package", f"{prog} is not installed (scripts/setup installs it)")
    if "nginx" in paths and not os.path.exists(NGINX_STREAM):
        return skip("package", f"{NGINX_STREAM} is missing: libnginx-mod-stream (scripts/setup installs it)")
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
    samples = {p: {"bulk1": [], "bulk16": [], "p50": [], "p99": [], "conns": [], "mem": [], "pss": [],
                   "cpu_conn_relay": [], "cpu_conn_total": [], "cpu_gb_relay": [], "cpu_gb_total": [],
                   "cpu_gb16_relay": [], "cpu_gb16_total": []}
               for p in paths}
    tls_used = {}
    try:
        b.start(paths)
        for rep in range(args.repeat):
            # Rotate the order each round so slow drifts in machine load hit every path.
            order = paths[rep % len(paths):] + paths[:rep % len(paths)]
            log(f"round {rep + 1}/{args.repeat} (load {os.getloadavg()[0]:.2f})")
            for p in order:
                rate, relay, total = b.bulk(p, 1)
                samples[p]["bulk1"].append(rate)
                samples[p]["cpu_gb_relay"].append(relay)
                samples[p]["cpu_gb_total"].append(total)
            for p in order:
                rate, relay, total = b.bulk(p, 16)
                samples[p]["bulk16"].append(rate)
                samples[p]["cpu_gb16_relay"].append(relay)
                samples[p]["cpu_gb16_total"].append(total)
            for p, (p50, p99) in b.rtt(order).items():
                samples[p]["p50"].append(p50)
                samples[p]["p99"].append(p99)
            for p in order:
                rate, relay, total = b.conns(p)
                samples[p]["conns"].append(rate)
                samples[p]["cpu_conn_relay"].append(relay)
                samples[p]["cpu_conn_total"].append(total)

        # Memory last: 5000 forked socats are a load spike that must not skew the rates.
        log("memory with idle tunnels")
        for p in paths:
            mem, pss = b.idle(p)
            samples[p]["mem"].append(mem)
            samples[p]["pss"].append(pss)
        tls_used = {p: b.tls_path_used(p) for p in paths if p in TLS_PATHS}
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
    cols = [("bulk x1", "Gbit/s"), ("", "ratio"), ("bulk x16", "Gbit/s"), ("", "ratio"),
            ("rtt p50", "us"), ("", "added"), ("rtt p99", "us"), ("conn/s", ""), ("", "ratio"),
            ("mem", f"MiB@{args.idle}")]
    widths = [8, 6, 8, 6, 8, 7, 8, 7, 6, 10]
    print(f"{'path':<24}" + "".join(f"{c[0]:>{w + 1}}" for c, w in zip(cols, widths)))
    print(f"{'':<24}" + "".join(f"{c[1]:>{w + 1}}" for c, w in zip(cols, widths)))
    print("-" * (24 + sum(w + 1 for w in widths)))
    for p in paths:
        added = None if p == "direct" or med(p, "p50") is None else med(p, "p50") - d["p50"]
        vals = [fmt(med(p, "bulk1"), ".2f"), fmt(ratio(p, "bulk1"), ".2f"), fmt(med(p, "bulk16"), ".2f"),
                fmt(ratio(p, "bulk16"), ".2f"), fmt(med(p, "p50"), ".1f"),
                "" if p == "direct" else fmt(added, "+.1f"), fmt(med(p, "p99"), ".1f"),
                fmt(med(p, "conns"), ".0f"), fmt(ratio(p, "conns"), ".2f"), fmt(med(p, "mem"), ".1f")]
        print(f"{p:<24}" + "".join(f"{v:>{w + 1}}" for v, w in zip(vals, widths)))
    print()
    if b.cg:
        print("CPU (cpuacct, all processes of each role; independent of the machine's other load):")
        print(f"{'path':<24}{'us/conn relay':>14}{'us/conn all':>13}{'ms/GB relay':>13}{'ms/GB all':>11}"
              f"{'ms/GB x16 relay':>17}{'ms/GB x16 all':>15}")
        for p in paths:
            print(f"{p:<24}{fmt(med(p, 'cpu_conn_relay'), '.0f'):>14}{fmt(med(p, 'cpu_conn_total'), '.0f'):>13}"
                  f"{fmt(med(p, 'cpu_gb_relay'), '.0f'):>13}{fmt(med(p, 'cpu_gb_total'), '.0f'):>11}"
                  f"{fmt(med(p, 'cpu_gb16_relay'), '.0f'):>17}{fmt(med(p, 'cpu_gb16_total'), '.0f'):>15}")
        print()
    if args.repeat > 1:
        print("spread over rounds (min..max):")
        for p in paths:
            parts = []
            for k, spec in (("bulk1", ".2f"), ("bulk16", ".2f"), ("p50", ".1f"), ("conns", ".0f")):
                lo, hi = rng(p, k)
                if lo is not None:
                    parts.append(f"{k} {lo:{spec}}..{hi:{spec}}")
            print(f"  {p:<24} " + ", ".join(parts))
        print()

    # The TLS hop: torgw-socks doing TLS against stunnel client mode in front of plain
    # torgw-socks, from the same run.
    if "stunnel client" in paths:
        base = "stunnel client"
        print("TLS hop: torgw-socks tls vs stunnel client (same run; ratios > 1 favour torgw-socks for rates,")
        print("         < 1 for CPU):")
        for p in [x for x in ("torgw-socks tls", "torgw-socks tls no-ktls") if x in paths]:
            def r(k, q=p):
                a, c = med(q, k), med(base, k)
                return None if a is None or not c else a / c
            used = tls_used.get(p) or "?"
            print(f"  {p:<24} [{used}] bulk x1 {fmt(r('bulk1'), '.2f')}, bulk x16 {fmt(r('bulk16'), '.2f')}, "
                  f"conn/s {fmt(r('conns'), '.2f')}, CPU/GB relay {fmt(r('cpu_gb_relay'), '.2f')}, "
                  f"CPU/conn relay {fmt(r('cpu_conn_relay'), '.2f')}")
            rb, rc = r("bulk1"), r("cpu_gb_relay")
            print(f"targets, {p} vs stunnel client: bulk>=1.0 {'met' if rb is not None and rb >= 1.0 else 'MISSED'}, "
                  f"CPU/GB below stunnel's {'met' if rc is not None and rc < 1.0 else 'MISSED'}")
        print()

    # The targets, reported (not asserted).
    for p in [x for x in paths if x.startswith("torgw-socks") and x not in TLS_PATHS]:
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
        for other in [x for x in ("haproxy", "nginx", "socat") if x in paths]:
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

    issue_table(paths, med, args.idle)

    if args.json:
        with open(args.json, "w") as f:
            json.dump({"started": started, "load_before": load_before, "load_after": load_after,
                       "args": vars(args), "samples": samples}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
