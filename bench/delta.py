#!/usr/bin/env python3
"""bench/delta.py: the delta API under load, for bench/run.sh's `delta` section.

    delta.py PORT TOKEN CHANGES POLLS

Against a server on 127.0.0.1:PORT whose tenant has break definition 1 and people
1..100 (run.sh's seed_data), with a token holding the breaks scopes:

1. Follow-up rate. Starts a delta on breaks of this year (initial load paged through),
   then writes CHANGES new breaks through $batch (chunks of 5,000 lines), then follows
   the deltaLink until a page comes back empty. Reports the delta items served per
   second of follow-ups (each page holds up to 1,000 records).
2. Long-poll wake-up. POLLS times: a follow-up with `Prefer: wait=30` is sent on its
   own connection and given 50 ms to be held; then one break is written with PUT.
   The latency is from the moment the PUT's answer arrived (the change has committed
   by then) to the moment the held follow-up's answer arrived; a second figure from
   the moment the PUT was sent (an upper bound that includes the write). p50 and p99.

One thread per held request, 127.0.0.1 only, every request with a 60 s timeout, a fixed
number of steps. Prints "key=value" pairs on success; exits 1 naming the first failure.
"""
import http.client
import json
import sys
import threading
import time
import urllib.parse

API = "/connector/protimeapi/api/v1"


def conn_to(port):
    return http.client.HTTPConnection("127.0.0.1", port, timeout=60)


def call(conn, method, path, token, body=None, ctype="application/json", headers=None):
    h = {"Authorization": f"Bearer {token}", "User-Agent": "bench-delta"}
    if body is not None:
        h["Content-Type"] = ctype
    h.update(headers or {})
    conn.request(method, path, body=body, headers=h)
    r = conn.getresponse()
    return r.status, r.read(), r


def break_json(i, year):
    return {"id": i, "person": {"id": 1 + i % 100}, "breakDefinition": {"id": 1},
            "date": f"{year}-{1 + i % 12:02d}-{1 + i % 28:02d}",
            "clockedDurationInMinutes": 30, "startTimeInMinutes": 720,
            "endTimeInMinutes": 750, "isBreakTaken": True}


def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    port, token = int(sys.argv[1]), sys.argv[2]
    changes, polls = int(sys.argv[3]), int(sys.argv[4])
    year = time.gmtime().tm_year
    conn = conn_to(port)
    flt = urllib.parse.quote(f"date ge '{year}-01-01'")
    link = f"{API}/breaks?filter={flt}&delta&pageSize=10000"
    delta = None
    while link:
        status, body, _ = call(conn, "GET", link, token)
        if status != 200:
            sys.exit(f"delta: initial load: {status} {body[:200]!r}")
        page = json.loads(body)
        link, delta = page.get("nextLink"), page.get("deltaLink", delta)

    # 1. Follow-up rate over CHANGES new breaks.
    base = 10_000_000 + int(time.time() * 1000) % 1_000_000 * 1000  # new ids each run
    for start in range(0, changes, 5000):
        lines = "\n".join(json.dumps({"op": "upsert", "data": break_json(base + i, year)})
                          for i in range(start, min(changes, start + 5000))) + "\n"
        status, body, _ = call(conn, "POST", f"{API}/breaks/$batch", token, lines,
                               "application/x-ndjson")
        if status != 200:
            sys.exit(f"delta: $batch: {status} {body[:200]!r}")
    items = 0
    t0 = time.monotonic()
    for _ in range(changes // 100 + 10):
        status, body, _ = call(conn, "GET", delta, token)
        if status != 200:
            sys.exit(f"delta: follow-up: {status} {body[:200]!r}")
        page = json.loads(body)
        delta = page["deltaLink"]
        if not page["value"]:
            break
        items += len(page["value"])
    seconds = time.monotonic() - t0
    if items < changes:
        sys.exit(f"delta: follow-ups served {items} items of {changes} changes")

    # 2. Long-poll wake-up latency.
    from_answer, from_send = [], []
    writer = conn_to(port)
    for k in range(polls):
        result = {}

        def hold(link=delta, result=result):
            c = conn_to(port)
            status, body, r = call(c, "GET", link, token, headers={"Prefer": "wait=30"})
            result["t"] = time.monotonic()
            result["status"], result["body"] = status, body
            result["applied"] = r.getheader("Preference-Applied")
            c.close()

        t = threading.Thread(target=hold)
        t.start()
        time.sleep(0.05)
        sent = time.monotonic()
        status, body, _ = call(writer, "PUT", f"{API}/breaks/{base - 1 - k}", token,
                               json.dumps(break_json(base - 1 - k, year)))
        answered = time.monotonic()
        if status not in (200, 201):
            sys.exit(f"delta: PUT: {status} {body[:200]!r}")
        t.join(timeout=60)
        if t.is_alive() or result.get("status") != 200:
            sys.exit(f"delta: long poll {k}: {result.get('status')} {result.get('body', b'')[:200]!r}")
        page = json.loads(result["body"])
        if len(page["value"]) != 1 or result["applied"] != "wait=30":
            sys.exit(f"delta: long poll {k}: {len(page['value'])} items, "
                     f"Preference-Applied {result['applied']!r}")
        delta = page["deltaLink"]
        from_answer.append(max(0.0, result["t"] - answered) * 1000)
        from_send.append((result["t"] - sent) * 1000)
    print(f"items={items} seconds={seconds:.2f} items_per_s={items / seconds:.0f} "
          f"polls={polls} p50_ms={percentile(from_answer, 50):.2f} "
          f"p99_ms={percentile(from_answer, 99):.2f} "
          f"send_p50_ms={percentile(from_send, 50):.2f} send_p99_ms={percentile(from_send, 99):.2f}")


if __name__ == "__main__":
    main()
