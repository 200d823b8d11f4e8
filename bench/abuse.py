#!/usr/bin/env python3
"""bench/abuse.py: the abuse cases of issue #12, measured against a real server.

Each case starts its own `breakhook serve` (release build by default) on 127.0.0.1
with a fresh store, attacks it from 127.0.0.2 (so that the per-address rules can
tell the attacker from the legitimate client on 127.0.0.1), measures, and stops it.
Every loop is bounded in count and time. Prints one JSON line per case and a table;
docs/RELIABILITY.md quotes the figures. Nothing here is asserted: these are
measurements of one run, on the machine described by the bench README.

  python3 bench/abuse.py [--bin build/release/breakhook]

Cases:
  slow-bodies   400 connections send a request head with a large Content-Length and
                trickle the body one byte a second, half to an API route with a bad
                token, half to the token endpoint (no token check, 16 KiB limit).
                Before the fix they held 396 MB; measured: the server's peak RSS,
                how many got their answer before sending their body, and whether a
                legitimate client is still served.
  one-address   --max-connections 50 --max-connections-per-client 10: 50 idle
                connections from one address; how many were let in, and whether
                another client still gets in.
  token-flood   4 threads post token requests with random client ids for 10 s;
                GET /breaks/{id} p50 of another client before and during the flood,
                and how many flood requests got 429.
  disk-full     (root only: it mounts a 48 MiB tmpfs) the store on a real file system
                that fills up: writes until one fails, the WAL's peak, whether the
                server recovers by itself with only its --disk-reserve (16 MiB here)
                and nothing freed by hand, then the same again with the reserve spent
                and 8 MiB freed by hand.
"""
import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

API = "/connector/protimeapi/api/v1"


class Server:
    def __init__(self, binary, args, directory=None):
        self.dir = directory or tempfile.mkdtemp(prefix="breakhook-abuse-")
        self.store = "sqlite:%s/abuse.db" % self.dir
        self.bin = binary
        port_file = os.path.join(self.dir, "port")
        self.proc = subprocess.Popen(
            [binary, "serve", "--listen", "127.0.0.1:0", "--port-file", port_file,
             "--store", self.store, "--log-file", os.path.join(self.dir, "log"),
             "--access-log=false", "--rate-limit", "0",
             "--metrics-listen", "127.0.0.1:0"] + args,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 30
        while time.time() < deadline:
            if os.path.exists(port_file) and os.path.getsize(port_file) > 0:
                self.port = int(open(port_file).read())
                break
            time.sleep(0.05)
        else:
            raise SystemExit("the server did not start")
        self.token = self._token()

    def cli(self, *args):
        return subprocess.run([self.bin] + list(args) + ["--store", self.store],
                              check=True, capture_output=True, text=True).stdout

    def _token(self):
        self.cli("tenant", "create", "acme")
        c = json.loads(self.cli("client", "create", "--tenant", "acme", "--name", "a", "--json",
                                "--scopes", "connector-protimeapi-breaks.read "
                                "connector-protimeapi-breaks.write "
                                "connector-protimeapi-people.write "
                                "connector-protimeapi-break-definitions.write"))
        form = urllib.parse.urlencode({"grant_type": "client_credentials",
                                       "client_id": c["clientId"],
                                       "client_secret": c["clientSecret"]})
        st, body = request(self.port, "POST", "/tenants/acme/connect/token",
                           {"Content-Type": "application/x-www-form-urlencoded"}, form)
        tok = json.loads(body)["access_token"]
        auth = {"Authorization": "Bearer " + tok, "Content-Type": "application/json"}
        request(self.port, "PUT", API + "/people/7", auth, '{"id":7}')
        request(self.port, "PUT", API + "/break-definitions/1", auth,
                '{"id":1,"name":{"default":"L"},"friendlyName":{"default":"L"},'
                '"paidDurationInMinutes":0,"minimumDurationInMinutes":30,'
                '"maximumDurationInMinutes":60,"ifNotClockedDurationInMinutes":30,'
                '"hasToBeTakenUninterrupted":true}')
        st, _ = request(self.port, "PUT", API + "/breaks/1", auth,
                        '{"id":1,"person":{"id":7},"breakDefinition":{"id":1},'
                        '"date":"2026-11-02","clockedDurationInMinutes":45,'
                        '"startTimeInMinutes":720,"endTimeInMinutes":840,"isBreakTaken":true}')
        assert st == 201, st
        return tok

    def peak_rss_mb(self):
        for line in open("/proc/%d/status" % self.proc.pid):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
        return -1.0

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        subprocess.run(["rm", "-rf", self.dir])


def request(port, method, target, headers=None, body=None, source="127.0.0.1", timeout=15):
    """One request on a new connection; returns (status, body)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                 source_address=(source, 0))
    data = body.encode() if body is not None else b""
    head = "%s %s HTTP/1.1\r\nHost: t\r\nUser-Agent: abuse\r\nConnection: close\r\n" % (
        method, target)
    for k, v in (headers or {}).items():
        head += "%s: %s\r\n" % (k, v)
    if body is not None:
        head += "Content-Length: %d\r\n" % len(data)
    s.sendall(head.encode() + b"\r\n" + data)
    out = b""
    while True:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            break
        out += chunk
    s.close()
    status = int(out.split(b" ", 2)[1]) if out.startswith(b"HTTP/1.1") else -1
    return status, out.split(b"\r\n\r\n", 1)[-1].decode(errors="replace")


def timed_gets(srv, n):
    """n GET /breaks/1 from 127.0.0.1; returns (p50 ms, failures)."""
    lat, bad = [], 0
    for _ in range(n):
        t = time.perf_counter()
        st, _ = request(srv.port, "GET", API + "/breaks/1", {"Authorization": "Bearer " + srv.token})
        lat.append((time.perf_counter() - t) * 1000)
        bad += st != 200
    return statistics.median(lat), bad


def case_slow_bodies(binary):
    srv = Server(binary, ["--max-connections", "2000"])
    conns, answered_early = [], 0
    heads = [
        ("PUT %s/breaks/1 HTTP/1.1\r\nHost: t\r\nUser-Agent: x\r\nAuthorization: Bearer bad\r\n"
         "Content-Type: application/json\r\nContent-Length: 1000000\r\n\r\n" % API),
        ("POST /tenants/acme/connect/token HTTP/1.1\r\nHost: t\r\nUser-Agent: x\r\n"
         "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 16000\r\n\r\n"),
    ]
    for i in range(400):
        try:
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=5,
                                         source_address=("127.0.0.2", 0))
            s.sendall(heads[i % 2].encode())
            s.setblocking(False)
            conns.append(s)
        except OSError:
            pass
    # 20 s of trickling: 1 KiB a second per connection (the token-endpoint bodies end
    # after 16 s, so they reach the server whole).
    t_end = time.time() + 20
    gets_p50, gets_bad = None, 0
    while time.time() < t_end:
        for s in conns:
            try:
                s.send(b"x" * 1024)
            except OSError:
                pass
        if gets_p50 is None and time.time() > t_end - 10:
            gets_p50, gets_bad = timed_gets(srv, 50)
        time.sleep(1)
    for s in conns:
        try:
            if s.recv(4096).startswith(b"HTTP/1.1 401"):
                answered_early += 1
        except OSError:
            pass
        s.close()
    rss = srv.peak_rss_mb()
    srv.stop()
    return {"case": "slow-bodies", "connections": len(conns),
            "answered_401_before_body": answered_early, "peak_rss_mb": round(rss, 1),
            "legit_get_p50_ms": round(gets_p50, 2), "legit_get_failures": gets_bad}


def case_one_address(binary):
    srv = Server(binary, ["--max-connections", "50", "--max-connections-per-client", "10"])
    conns, refused = [], 0
    for _ in range(50):
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=5,
                                     source_address=("127.0.0.2", 0))
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n")  # never finishes its head
        conns.append(s)
    time.sleep(1)
    for s in conns:
        s.settimeout(0.2)
        try:
            if s.recv(4096).startswith(b"HTTP/1.1 503"):
                refused += 1
        except OSError:
            pass
    p50, bad = timed_gets(srv, 20)
    rss = srv.peak_rss_mb()
    for s in conns:
        s.close()
    srv.stop()
    return {"case": "one-address", "attempted": 50, "refused_503": refused,
            "let_in": 50 - refused, "legit_get_failures": bad, "legit_get_p50_ms": round(p50, 2),
            "peak_rss_mb": round(rss, 1)}


def case_token_flood(binary):
    srv = Server(binary, [])
    before, _ = timed_gets(srv, 100)
    stop = time.time() + 10
    counts = {}
    lock = threading.Lock()

    def flood():
        rnd = random.Random()
        while time.time() < stop:
            form = "grant_type=client_credentials&client_id=bh_%020x&client_secret=x" % (
                rnd.getrandbits(80))
            try:
                st, _ = request(srv.port, "POST", "/tenants/acme/connect/token",
                                {"Content-Type": "application/x-www-form-urlencoded"}, form,
                                source="127.0.0.2")
            except OSError:
                st = -1
            with lock:
                counts[st] = counts.get(st, 0) + 1

    threads = [threading.Thread(target=flood) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(1)
    during, bad = timed_gets(srv, 100)
    for t in threads:
        t.join()
    rss = srv.peak_rss_mb()
    srv.stop()
    return {"case": "token-flood", "flood_requests": sum(counts.values()),
            "answered_429": counts.get(429, 0), "answered_401": counts.get(401, 0),
            "legit_get_p50_ms_before": round(before, 2), "legit_get_p50_ms_during": round(during, 2),
            "legit_get_failures": bad, "peak_rss_mb": round(rss, 1)}


def wait_ready(srv, seconds):
    """Seconds until /readyz answers 200 (polled every 250 ms), or None."""
    t0 = time.time()
    while time.time() - t0 < seconds:
        if request(srv.port, "GET", "/readyz")[0] == 200:
            return round(time.time() - t0, 1)
        time.sleep(0.25)
    return None


def fill_until_full(srv, first_id, wal):
    """PUTs people until a write fails; returns (writes that succeeded, the failure's
    status and message, the WAL's peak size)."""
    auth = {"Authorization": "Bearer " + srv.token, "Content-Type": "application/json"}
    peak, ok = 0, 0
    for i in range(first_id, first_id + 200000):
        st, body = request(srv.port, "PUT", API + "/people/%d" % i, auth,
                           '{"id":%d,"externalReferences":{"HRMID":"%s"}}' % (i, "h%d-" % i + "x" * 100))
        if os.path.exists(wal):
            peak = max(peak, os.path.getsize(wal))
        if st != 201:
            return ok, "%d %s" % (st, body[:120]), peak
        ok += 1
    return ok, "never failed", peak


def case_disk_full(binary):
    if os.geteuid() != 0:
        return {"case": "disk-full", "skipped": "needs root to mount a tmpfs"}
    mnt = tempfile.mkdtemp(prefix="breakhook-tmpfs-")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", mnt], check=True)
    srv = None
    try:
        srv = Server(binary, ["--disk-reserve", str(16 << 20)], directory=mnt)
        db = os.path.join(mnt, "abuse.db")
        st = os.statvfs(mnt)
        free = st.f_bavail * st.f_frsize
        with open(os.path.join(mnt, "filler"), "wb") as f:  # all but 2 MiB
            f.write(b"\0" * max(0, free - (2 << 20)))
        ok1, fail1, wal1 = fill_until_full(srv, 1000, db + "-wal")
        reserve_gone = not os.path.exists(db + "-reserve")
        ready1 = wait_ready(srv, 60)  # nothing freed by hand: only the reserve
        ok2, fail2, wal2 = fill_until_full(srv, 500000, db + "-wal")
        ready_without_freeing = wait_ready(srv, 20)
        os.truncate(os.path.join(mnt, "filler"), max(0, free - (2 << 20) - (8 << 20)))
        ready2 = wait_ready(srv, 60)
        st, _ = request(srv.port, "PUT", API + "/people/999999",
                        {"Authorization": "Bearer " + srv.token,
                         "Content-Type": "application/json"}, '{"id":999999}')
        out = {"case": "disk-full", "tmpfs_mb": 48, "reserve_mb": 16,
               "writes_until_full": ok1, "failure": fail1, "wal_peak_bytes": wal1,
               "reserve_released": reserve_gone,
               "ready_again_s_nothing_freed": ready1,
               "writes_until_full_again": ok2, "second_wal_peak_bytes": wal2,
               "ready_without_freeing_second_time": ready_without_freeing,
               "ready_again_s_after_freeing_8mb": ready2, "write_after": st,
               "peak_rss_mb": round(srv.peak_rss_mb(), 1)}
    finally:
        if srv:
            srv.proc.terminate()
            srv.proc.wait(30)
        subprocess.run(["umount", mnt])
        os.rmdir(mnt)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="build/release/breakhook")
    a = ap.parse_args()
    if not os.path.exists(a.bin):
        raise SystemExit("%s missing: run make build first" % a.bin)
    for case in (case_slow_bodies, case_one_address, case_token_flood, case_disk_full):
        print(json.dumps(case(a.bin)), flush=True)


if __name__ == "__main__":
    sys.exit(main())
