#!/usr/bin/env python3
"""Boot a torgw disk under qemu (KVM when a probe proves it works, else TCG: see
qemu_accel.py; TORGW_QEMU_ACCEL=auto|kvm|tcg or --accel forces it) with Debian's OVMF, watch the
serial console, and check what it prints.

  qemu_boot.py --disk disk.raw [--firmware uefi|bios] --expect REGEX [--expect REGEX ...]
               [--powerdown-after REGEX] [--shutdown-within 10] [--timeout 600]
               [--disk-bus nvme|virtio-blk|virtio-scsi] [--net user|tap:IFNAME|none]
               [--forbid REGEX ...] [--log FILE] [--result FILE.json]
               [--kernel bzImage --append CMDLINE] [--ovmf-fd OVMF.fd]
               [--vga std --vga-text-dump FILE]

--expect patterns must appear in the given order (each searched after the previous
match); without --powerdown-after the run ends (qemu is stopped) once the last one has
appeared. --powerdown-after sends QMP system_powerdown (the ACPI power button, what GCE's
"instances stop" does) once that pattern has been seen, then requires qemu to exit, with
the guest's own power-off, within --shutdown-within seconds. --forbid patterns fail the
run whenever they appear (e.g. a kernel panic). Exit 0 when everything held, 1 when not,
2 on usage errors. The result JSON holds host-side timings in seconds from qemu's start:
every expectation, the first kernel line, and the shutdown.

--kernel/--append boot that kernel directly (qemu loads it through fw_cfg; the firmware
starts it), as measured direct boot does on SEV-SNP. --ovmf-fd boots a single-file OVMF
(e.g. the AmdSevX64 build) with -bios instead of Debian's pflash OVMF.

--vga std adds a standard VGA card (what Hetzner Cloud's web console shows). With
--vga-text-dump FILE, once --powerdown-after has matched (and a second later, so the
guest's last screen writes land), the VGA text window 0xB8000-0xBFFFF (character and
attribute bytes, as a BIOS-booted kernel's vgacon writes them) is saved to FILE with
QMP pmemsave, before the power button.
"""
import argparse
import ctypes
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import qemu_accel  # noqa: E402  (beside this file)

OVMF_CODE = "/usr/share/OVMF/OVMF_CODE_4M.fd"
OVMF_VARS = "/usr/share/OVMF/OVMF_VARS_4M.fd"
KERNEL_START = re.compile(r"Linux version \d")


class QemuDied(Exception):
    pass


class Qmp:
    def __init__(self, path, deadline, proc):
        while True:
            try:
                self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.s.connect(path)
                break
            except OSError:
                self.s.close()
                # A qemu that died (bad option, missing file) never creates the socket:
                # say so at once instead of waiting out the deadline.
                if proc.poll() is not None:
                    raise QemuDied(f"qemu exited with {proc.returncode} before its QMP socket came up")
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.f = self.s.makefile("rwb", buffering=0)
        self.events = []
        json.loads(self.f.readline())  # greeting
        self.cmd("qmp_capabilities")

    def cmd(self, name, **args):
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        self.f.write(json.dumps(msg).encode() + b"\n")
        while True:
            line = self.f.readline()
            if not line:
                raise EOFError("qmp closed")
            r = json.loads(line)
            if "event" in r:
                self.events.append(r)
                continue
            if "error" in r:
                raise RuntimeError(f"qmp {name}: {r['error']}")
            return r.get("return")

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def qemu_command(a, tmp, qmp_path, accel):
    firmware = []
    if a.firmware == "uefi" and a.ovmf_fd:
        firmware = ["-bios", a.ovmf_fd]
    elif a.firmware == "uefi":
        vars_copy = os.path.join(tmp, "OVMF_VARS.fd")
        shutil.copyfile(OVMF_VARS, vars_copy)
        firmware = ["-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}",
                    "-drive", f"if=pflash,format=raw,unit=1,file={vars_copy}"]
    fmt = "qcow2" if a.disk.endswith(".qcow2") else "raw"
    cmd = [a.qemu, "-machine", f"q35,accel={accel}", "-cpu", "max" if accel == "tcg" else "host",
           "-m", str(a.memory), "-smp", str(a.smp), "-nodefaults", "-no-user-config",
           "-display", "none", "-no-reboot"] + firmware + [
           "-drive", f"if=none,id=disk0,format={fmt},file={a.disk},snapshot=on",
           "-chardev", "stdio,id=ser0,signal=off", "-serial", "chardev:ser0",
           "-qmp", f"unix:{qmp_path},server=on,wait=off",
           "-device", "virtio-rng-pci"]
    if a.kernel:
        cmd += ["-kernel", a.kernel, "-append", a.append or ""]
    if a.vga:
        cmd += ["-device", "VGA"]
    if a.disk_bus == "nvme":
        cmd += ["-device", "nvme,serial=torgw0,drive=disk0"]
    elif a.disk_bus == "virtio-blk":
        cmd += ["-device", "virtio-blk-pci,drive=disk0"]
    elif a.disk_bus == "virtio-scsi":
        cmd += ["-device", "virtio-scsi-pci,id=scsi0", "-device", "scsi-hd,drive=disk0,bus=scsi0.0"]
    # restrict=on: the guest reaches nothing outside qemu (no NAT to the host's networks);
    # DHCP and the explicit guestfwd below still work.
    if a.net == "user":
        cmd += ["-netdev", "user,id=net0,restrict=on", "-device", "virtio-net-pci,netdev=net0"]
    elif a.net.startswith("user-gce:"):
        # GCE's metadata address inside qemu's user network: every guest connection to
        # 169.254.169.254:80 runs gce_metadata.py on it (no host socket, no fixed port).
        server = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gce_metadata.py")
        attrs = os.path.abspath(a.net[len("user-gce:"):])
        netdev = ("user,id=net0,restrict=on,net=169.254.169.0/24,host=169.254.169.1,"
                  f"dhcpstart=169.254.169.15,guestfwd=tcp:169.254.169.254:80-cmd:"
                  f"{sys.executable} {server} {attrs}")
        # --forward PORT=HOST:HPORT: guest connections to 169.254.169.254:PORT reach
        # HOST:HPORT as seen from qemu's network namespace (one socat per connection).
        for fwd in a.forward:
            port, _, target = fwd.partition("=")
            netdev += f",guestfwd=tcp:169.254.169.254:{int(port)}-cmd:socat STDIO TCP:{target}"
        cmd += ["-netdev", netdev, "-device", "virtio-net-pci,netdev=net0"]
    elif a.net.startswith("tap:"):
        cmd += ["-netdev", f"tap,id=net0,ifname={a.net[4:]},script=no,downscript=no",
                "-device", "virtio-net-pci,netdev=net0"]
    return cmd


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--disk", required=True)
    ap.add_argument("--expect", action="append", default=[])
    ap.add_argument("--forbid", action="append", default=[])
    ap.add_argument("--powerdown-after")
    ap.add_argument("--powerdown-when-file",
                    help="with --powerdown-after: also wait until this file exists (the test's "
                         "go-ahead, e.g. after it used the running guest)")
    ap.add_argument("--shutdown-within", type=float, default=10.0)
    ap.add_argument("--timeout", type=float, default=600.0)
    ap.add_argument("--forward", action="append", default=[],
                    help="with user-gce: PORT=HOST:HPORT, guest 169.254.169.254:PORT -> HOST:HPORT")
    ap.add_argument("--firmware", default="uefi", choices=["uefi", "bios"],
                    help="uefi: Debian's OVMF; bios: qemu's SeaBIOS (legacy boot)")
    ap.add_argument("--kernel", help="boot this kernel directly (-kernel)")
    ap.add_argument("--append", help="with --kernel: its command line (-append)")
    ap.add_argument("--ovmf-fd", help="with --firmware uefi: this OVMF.fd via -bios, not Debian's pflash OVMF")
    ap.add_argument("--disk-bus", default="nvme", choices=["nvme", "virtio-blk", "virtio-scsi"])
    ap.add_argument("--vga", choices=["std"], help="add a standard VGA card")
    ap.add_argument("--vga-text-dump", help="with --vga and --powerdown-after: save the VGA text memory here")
    ap.add_argument("--net", default="user",
                    help="user | user-gce:ATTRS.json (GCE metadata server) | tap:IFNAME | none")
    ap.add_argument("--accel", choices=["auto", "kvm", "tcg"],
                    help="default: $TORGW_QEMU_ACCEL or auto (a KVM probe decides)")
    ap.add_argument("--memory", type=int, default=1024)
    ap.add_argument("--smp", type=int, default=2)
    ap.add_argument("--qemu", default="qemu-system-x86_64")
    ap.add_argument("--log")
    ap.add_argument("--result")
    ap.add_argument("--netns", help="run qemu inside this network namespace")
    a = ap.parse_args()
    if not os.path.exists(a.disk):
        print(f"qemu_boot: no disk {a.disk}", file=sys.stderr)
        return 2
    for p in (OVMF_CODE, OVMF_VARS):
        if not os.path.exists(p):
            print(f"qemu_boot: {p} missing (ovmf)", file=sys.stderr)
            return 2
    expects = [re.compile(e) for e in a.expect]
    forbids = [re.compile(f) for f in a.forbid]
    powerdown_re = re.compile(a.powerdown_after) if a.powerdown_after else None

    tmp = tempfile.mkdtemp(prefix="torgw-qemu-")
    qmp_path = os.path.join(tmp, "qmp.sock")
    try:
        accel, accel_reason = qemu_accel.choose(a.accel, a.qemu)
    except ValueError as e:
        print(f"qemu_boot: {e}", file=sys.stderr)
        return 2
    print(f"qemu_boot: accelerator {accel}: {accel_reason}", file=sys.stderr, flush=True)
    cmd = qemu_command(a, tmp, qmp_path, accel)
    if a.netns:
        cmd = ["ip", "netns", "exec", a.netns] + cmd
    log = open(a.log, "w") if a.log else None
    result = {"accel": accel, "accel_reason": accel_reason, "disk_bus": a.disk_bus,
              "firmware": a.ovmf_fd or a.firmware, "direct_kernel": bool(a.kernel),
              "expect": {}, "ok": False}
    t0 = time.monotonic()
    # qemu dies with us (PR_SET_PDEATHSIG), and SIGTERM/SIGINT run the cleanup below.
    libc = ctypes.CDLL(None, use_errno=True)
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE,
                            preexec_fn=lambda: libc.prctl(1, signal.SIGKILL, 0, 0, 0))
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_, s=sig: sys.exit(128 + s))
    stderr_lines = []
    stderr_reader = threading.Thread(target=lambda: stderr_lines.extend(proc.stderr), daemon=True)
    stderr_reader.start()
    qmp = None
    buf = b""
    text_so_far = ""
    next_expect = 0
    powerdown_sent = None
    powerdown_ready = False
    failure = None
    deadline = t0 + a.timeout
    try:
        try:
            qmp = Qmp(qmp_path, t0 + 30, proc)
        except (OSError, QemuDied, EOFError, ValueError) as e:
            failure = f"QMP: {e}"
        while failure is None:
            now = time.monotonic()
            if proc.poll() is not None and not select.select([proc.stdout], [], [], 0)[0]:
                break
            if now > deadline:
                failure = f"timeout after {a.timeout:.0f}s waiting for " + (
                    f"/{a.expect[next_expect]}/" if next_expect < len(expects) else "shutdown")
                break
            if powerdown_sent and now - powerdown_sent > a.shutdown_within:
                failure = f"no power-off within {a.shutdown_within}s of system_powerdown"
                break
            if (powerdown_ready and not powerdown_sent and
                    (not a.powerdown_when_file or os.path.exists(a.powerdown_when_file))):
                if a.vga_text_dump:
                    time.sleep(1.0)
                    qmp.cmd("pmemsave", val=0xB8000, size=0x8000, filename=os.path.abspath(a.vga_text_dump))
                    result["vga_text_dump"] = round(time.monotonic() - t0, 3)
                qmp.cmd("system_powerdown")
                powerdown_sent = time.monotonic()
                result["powerdown_sent"] = round(powerdown_sent - t0, 3)
            r, _, _ = select.select([proc.stdout], [], [], 0.2)
            if not r:
                continue
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                proc.wait(timeout=10)
                break
            stamp = time.monotonic() - t0
            if log:
                log.write(chunk.decode("utf-8", "replace"))
                log.flush()
            buf += chunk
            lines = buf.split(b"\n")
            buf = lines.pop()
            for raw in lines:
                line = raw.decode("utf-8", "replace").rstrip("\r")
                text_so_far += line + "\n"
                if "kernel_start" not in result and KERNEL_START.search(line):
                    result["kernel_start"] = round(stamp, 3)
                for f in forbids:
                    if f.search(line):
                        failure = failure or f"forbidden output: {line.strip()}"
                while next_expect < len(expects) and expects[next_expect].search(line):
                    result["expect"][a.expect[next_expect]] = round(stamp, 3)
                    next_expect += 1
                if (powerdown_re and not powerdown_ready and next_expect == len(expects)
                        and powerdown_re.search(text_so_far)):
                    powerdown_ready = True
            if failure:
                break
            if not powerdown_re and next_expect == len(expects):
                break  # everything seen; nothing else was asked for
    finally:
        if proc.poll() is None and (failure or not powerdown_re):
            try:
                if qmp:
                    qmp.cmd("quit")
            except Exception:
                pass
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        elif proc.poll() is None:
            try:
                proc.wait(timeout=max(1.0, a.shutdown_within))
            except subprocess.TimeoutExpired:
                failure = failure or f"qemu still running {a.shutdown_within}s after system_powerdown"
                proc.kill()
                proc.wait()
        if qmp:
            qmp.close()
        if log:
            log.close()
        shutil.rmtree(tmp, ignore_errors=True)

    end = time.monotonic()
    result["exit_code"] = proc.returncode
    result["wall"] = round(end - t0, 3)
    if powerdown_sent:
        result["shutdown_seconds"] = round(end - powerdown_sent, 3)
    if not failure and next_expect < len(expects):
        failure = f"qemu exited before /{a.expect[next_expect]}/"
    if not failure and powerdown_re:
        if not powerdown_sent:
            failure = f"never saw /{a.powerdown_after}/"
        elif proc.returncode != 0:
            failure = f"qemu exit code {proc.returncode}"
        elif result["shutdown_seconds"] > a.shutdown_within:
            failure = f"shutdown took {result['shutdown_seconds']}s"
    result["ok"] = failure is None
    if failure:
        result["failure"] = failure
        stderr_reader.join(timeout=2)
        tail = (text_so_far + buf.decode("utf-8", "replace")).splitlines()[-40:]
        print(f"qemu_boot: FAILED ({accel}): " + failure, file=sys.stderr)
        print("---- last serial lines ----\n" + ("\n".join(tail) if tail else "(no serial output at all)"),
              file=sys.stderr)
        err = b"".join(stderr_lines).decode("utf-8", "replace").strip()
        print("---- qemu stderr ----\n" + (err if err else "(empty)"), file=sys.stderr)
    if a.result:
        with open(a.result, "w") as f:
            json.dump(result, f, indent=2, sort_keys=True)
            f.write("\n")
    print(json.dumps(result, sort_keys=True))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
