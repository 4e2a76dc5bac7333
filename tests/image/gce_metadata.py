#!/usr/bin/env python3
"""One HTTP exchange of a GCE-style metadata server on stdin/stdout.

qemu's user networking runs this for every guest connection to 169.254.169.254:80
(`guestfwd=tcp:169.254.169.254:80-cmd:gce_metadata.py ATTRS.json`), so the unmodified
product image gets its configuration the way it does on GCE, with no listening socket
and no fixed port on the host.

ATTRS.json maps attribute names to values, e.g. {"torgw-backend": "10.0.2.2:1080"}.
Like GCE: requests under /computeMetadata/ without `Metadata-Flavor: Google` get 403,
paths outside it (such as Hetzner's /hetzner/v1/userdata) 404; answers carry
`Metadata-Flavor: Google`; GET .../instance/attributes/ lists the names, one per line;
GET .../instance/attributes/<name> returns the value; anything else is 404. Each
request is appended to ATTRS.json.log (the test checks what the guest asked).

Hetzner instead: when ATTRS.json holds "hetzner_userdata" (a string), the server is
Hetzner's: GET /hetzner/v1/userdata returns it, everything else is 404, and no answer
carries Metadata-Flavor (so the guest finds GCE absent).
"""
import json
import sys

PREFIX = "/computeMetadata/v1/instance/attributes/"


def main():
    attrs_path = sys.argv[1]
    with open(attrs_path) as f:
        attrs = json.load(f)
    rfile, wfile = sys.stdin.buffer, sys.stdout.buffer
    request = rfile.readline(8192).decode("latin-1").strip()
    headers = {}
    while True:
        line = rfile.readline(8192)
        if not line or line in (b"\r\n", b"\n"):
            break
        k, _, v = line.decode("latin-1").partition(":")
        headers[k.strip().lower()] = v.strip()
    parts = request.split()
    path = parts[1] if len(parts) == 3 else ""
    with open(attrs_path + ".log", "a") as log:
        log.write(f"{request} flavor={headers.get('metadata-flavor', '-')}\n")
    hetzner = attrs.get("hetzner_userdata")
    flavor = "" if hetzner is not None else "Metadata-Flavor: Google\r\n"
    if hetzner is not None:
        status, body = ("200 OK", hetzner) if path == "/hetzner/v1/userdata" else ("404 Not Found", "not found\n")
    elif not path.startswith("/computeMetadata/"):
        status, body = "404 Not Found", "not found\n"  # e.g. Hetzner's /hetzner/v1/userdata
    elif headers.get("metadata-flavor") != "Google":
        status, body = "403 Forbidden", "Missing Metadata-Flavor:Google header.\n"
    elif path == PREFIX:
        status, body = "200 OK", "".join(f"{k}\n" for k in sorted(attrs))
    elif path.startswith(PREFIX) and path[len(PREFIX):] in attrs:
        status, body = "200 OK", attrs[path[len(PREFIX):]]
    else:
        status, body = "404 Not Found", "not found\n"
    data = body.encode()
    wfile.write(f"HTTP/1.1 {status}\r\n{flavor}Content-Type: "
                f"application/text\r\nContent-Length: {len(data)}\r\nConnection: close\r\n\r\n"
                .encode() + data)
    wfile.flush()


if __name__ == "__main__":
    main()
