#!/usr/bin/env python3
"""A scripted stand-in for tor, for the supervisor's state-machine tests.

Started by the supervisor exactly like tor ("fake_tor.py -f <run_dir>/torrc ..."), it
reads ControlSocket and CookieAuthFile from that torrc, writes a cookie, and speaks the
control protocol (PROTOCOLINFO, SAFECOOKIE, SETEVENTS, GETINFO, ADD_ONION, SIGNAL) on
one connection. What it does after ADD_ONION comes from <run_dir>/../scenario.json:

  {"attempts": [ {attempt 1}, {attempt 2}, ... ]}     (the last one repeats)
  attempt: {"add_onion": "ok" | "reject" | "pow_refused" | "wrong_id",
            "service_id": "<56 chars>",
            "after": ["650 ... {id} ...", {"sleep": 0.2}, "close", "exit:3", "hang"]}
  {"listen_after": S}   (top level) wait S seconds before creating the control socket
  {"term_delay": S}     (top level) on SIGTERM, exit 0 only S seconds later (as a busy
                        tor does), still serving the control connection meanwhile

Each start appends a line to <run_dir>/attempts, so a test can script "first start
fails, second start publishes".
"""
import hashlib
import hmac
import json
import os
import signal
import socket
import sys
import time

SERVER_KEY = b"Tor safe cookie authentication server-to-controller hash"
CLIENT_KEY = b"Tor safe cookie authentication controller-to-server hash"


def main():
    torrc = sys.argv[sys.argv.index("-f") + 1]
    run_dir = os.path.dirname(torrc)
    root = os.path.dirname(run_dir)
    conf = {}
    with open(torrc) as f:
        for line in f:
            parts = line.strip().split(" ", 1)
            if len(parts) == 2 and not parts[0].startswith("#"):
                conf[parts[0]] = parts[1]
    with open(os.path.join(root, "scenario.json")) as f:
        scenario = json.load(f)
    if "term_delay" in scenario:
        # Installed before the attempts file is written: a test that saw the attempt
        # knows a SIGTERM from now on is delayed.
        def on_term(*_):
            signal.signal(signal.SIGALRM, lambda *_: os._exit(0))
            signal.setitimer(signal.ITIMER_REAL, scenario["term_delay"])
        signal.signal(signal.SIGTERM, on_term)
    with open(os.path.join(run_dir, "attempts"), "a+") as f:
        f.write("x\n")
        f.seek(0)
        attempt_no = len(f.read().splitlines())
    attempts = scenario["attempts"]
    plan = attempts[min(attempt_no, len(attempts)) - 1]
    print("fake tor: attempt %d" % attempt_no, flush=True)

    cookie = os.urandom(32)
    with open(conf["CookieAuthFile"], "wb") as f:
        f.write(cookie)
    time.sleep(scenario.get("listen_after", 0))
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(conf["ControlSocket"])
    srv.listen(1)
    conn, _ = srv.accept()
    rfile = conn.makefile("rb")

    def send(text):
        conn.sendall(text.encode() + b"\r\n")

    client_nonce = None
    server_nonce = os.urandom(32)
    while True:
        line = rfile.readline()
        if not line:
            print("fake tor: controller went away", flush=True)
            return 0
        line = line.decode().rstrip("\r\n")
        word = line.split(" ", 1)[0]
        if word == "PROTOCOLINFO":
            send('250-PROTOCOLINFO 1\r\n250-AUTH METHODS=COOKIE,SAFECOOKIE COOKIEFILE="%s"\r\n'
                 '250-VERSION Tor="%s"\r\n250 OK' % (conf["CookieAuthFile"], scenario.get("version", "0.4.9.11")))
        elif word == "AUTHCHALLENGE":
            client_nonce = bytes.fromhex(line.split(" ")[2])
            h = hmac.new(SERVER_KEY, cookie + client_nonce + server_nonce, hashlib.sha256).hexdigest()
            send("250 AUTHCHALLENGE SERVERHASH=%s SERVERNONCE=%s" % (h, server_nonce.hex()))
        elif word == "AUTHENTICATE":
            want = hmac.new(CLIENT_KEY, cookie + client_nonce + server_nonce, hashlib.sha256).hexdigest()
            send("250 OK" if line.split(" ")[1].lower() == want else "515 Authentication failed")
        elif word == "SETEVENTS":
            send("250 OK")
        elif word == "GETINFO":
            send('250-status/bootstrap-phase=NOTICE BOOTSTRAP PROGRESS=0 TAG=starting SUMMARY="Starting"\r\n250 OK')
        elif word == "SIGNAL":
            send("250 OK")
            if line.endswith("SHUTDOWN") or line.endswith("HALT"):
                print("fake tor: shutting down", flush=True)
                return 0
        elif word == "ADD_ONION":
            mode = plan.get("add_onion", "ok")
            sid = plan["service_id"]
            if mode == "reject":
                send("512 Bad arguments to ADD_ONION")
                continue
            if mode == "pow_refused" and "PoWDefensesEnabled" in line:
                send('513 Unrecognized option "PoWDefensesEnabled"')
                continue
            if mode == "wrong_id":
                sid = "a" * 56
            send("250-ServiceID=%s\r\n250 OK" % sid)
            for step in plan.get("after", []):
                if isinstance(step, dict):
                    time.sleep(step["sleep"])
                elif step == "close":
                    conn.shutdown(socket.SHUT_RDWR)  # close() alone would wait for rfile
                    conn.close()
                    time.sleep(3600)
                elif step == "hang":
                    time.sleep(3600)
                elif step.startswith("exit:"):
                    return int(step[5:])
                else:
                    send(step.replace("{id}", plan["service_id"]))
        else:
            send('510 Unrecognized command "%s"' % word)


if __name__ == "__main__":
    sys.exit(main())
