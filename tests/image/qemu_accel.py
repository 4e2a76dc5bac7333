#!/usr/bin/env python3
"""Choose qemu's accelerator by proof, not by open("/dev/kvm").

  qemu_accel.py [--accel auto|kvm|tcg] [--timeout 10] [--json]

Prints the chosen accelerator (kvm or tcg) on stdout and one line saying why on stderr.
TORGW_QEMU_ACCEL=auto|kvm|tcg in the environment sets the default of --accel.

Why a probe: on some hosts /dev/kvm opens and qemu starts with accel=kvm, but the vCPU
never runs 64-bit code (nested "kvm-pvm" hosts log "INTERNAL_ERROR in batch emul"; others
print "KVM internal error" and stop). A boot under such a KVM hangs with an empty serial
log until the test's timeout. The probe boots Debian's OVMF, the firmware the image tests
use, with accel=kvm and no disk: it must print "BdsDxe" (boot manager reached: SEC, PEI
and 64-bit DXE all ran) on the serial port within --timeout seconds. On a working KVM that
takes well under a second; under TCG about 4 s, so a timeout of 10 s cannot pass a TCG
speed run as KVM by accident. Anything else (no /dev/kvm, qemu exits, a KVM internal
error, silence) means TCG.
"""
import argparse
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time

OVMF_CODE = "/usr/share/OVMF/OVMF_CODE_4M.fd"
OVMF_VARS = "/usr/share/OVMF/OVMF_VARS_4M.fd"
PROOF = b"BdsDxe"


def probe_kvm(qemu="qemu-system-x86_64", timeout=10.0):
    """Returns (works: bool, reason: str). Never raises for a broken host."""
    if not os.path.exists("/dev/kvm"):
        return False, "/dev/kvm does not exist"
    try:
        os.close(os.open("/dev/kvm", os.O_RDWR))
    except OSError as e:
        return False, f"/dev/kvm does not open: {e.strerror}"
    if shutil.which(qemu) is None:
        return False, f"{qemu} is not installed"
    for p in (OVMF_CODE, OVMF_VARS):
        if not os.path.exists(p):
            return False, f"{p} missing (package ovmf), cannot run the KVM probe"
    tmp = tempfile.mkdtemp(prefix="torgw-kvm-probe-")
    try:
        vars_copy = os.path.join(tmp, "vars.fd")
        shutil.copyfile(OVMF_VARS, vars_copy)
        cmd = [qemu, "-machine", "q35,accel=kvm", "-cpu", "host", "-m", "256",
               "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
               "-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}",
               "-drive", f"if=pflash,format=raw,unit=1,file={vars_copy}",
               "-chardev", "stdio,id=ser0,signal=off", "-serial", "chardev:ser0"]
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        out = b""
        err = b""
        try:
            while True:
                left = timeout - (time.monotonic() - t0)
                if left <= 0:
                    return False, (f"KVM probe: no firmware output within {timeout:.0f}s "
                                   "under accel=kvm (the vCPU does not run)")
                r, _, _ = select.select([proc.stdout, proc.stderr], [], [], min(left, 0.2))
                for f in r:
                    chunk = os.read(f.fileno(), 65536)
                    if f is proc.stdout:
                        out += chunk
                    else:
                        err += chunk
                if PROOF in out:
                    return True, f"KVM probe: OVMF reached its boot manager in {time.monotonic() - t0:.2f}s"
                if b"internal error" in err.lower():  # qemu: "KVM internal error. Suberror: N"
                    first = err.decode("utf-8", "replace").strip().splitlines()[0]
                    return False, f"KVM probe: qemu reports '{first}'"
                if proc.poll() is not None and not r:
                    msg = err.decode("utf-8", "replace").strip().splitlines()
                    return False, (f"KVM probe: qemu exited with {proc.returncode}"
                                   + (f": {msg[-1]}" if msg else ""))
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def choose(requested=None, qemu="qemu-system-x86_64", timeout=10.0):
    """Returns (accel, reason). requested: auto|kvm|tcg (default: $TORGW_QEMU_ACCEL or auto).
    kvm and tcg are obeyed without a probe (the operator said so); auto probes."""
    requested = requested or os.environ.get("TORGW_QEMU_ACCEL") or "auto"
    if requested not in ("auto", "kvm", "tcg"):
        raise ValueError(f"TORGW_QEMU_ACCEL/--accel must be auto, kvm or tcg, not {requested!r}")
    if requested != "auto":
        return requested, f"forced by TORGW_QEMU_ACCEL/--accel={requested}"
    works, why = probe_kvm(qemu, timeout)
    if works:
        return "kvm", why
    return "tcg", f"{why}; falling back to TCG (software emulation)"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n", 2)[2])
    ap.add_argument("--accel", choices=["auto", "kvm", "tcg"])
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("--qemu", default="qemu-system-x86_64")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    try:
        accel, why = choose(a.accel, a.qemu, a.timeout)
    except ValueError as e:
        print(f"qemu_accel: {e}", file=sys.stderr)
        return 2
    if a.json:
        print(json.dumps({"accel": accel, "reason": why}))
    else:
        print(accel)
    print(f"qemu_accel: {accel}: {why}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
