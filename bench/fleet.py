#!/usr/bin/env python3
"""bench/fleet.py: many tenants with idle webhooks, for bench/run.sh's `idle` section.

    fleet.py BIN STORE_URL PORT TENANTS PER_TENANT SINK_URL_PREFIX [BUSY TOKENS_FILE]

Creates TENANTS tenants (fleet-1 ... fleet-N) with one API client each through the
CLI (the documented way; the CLI writes into the running server's SQLite store like
`breakhook import` does), gets each client a token from the server on 127.0.0.1:PORT
and creates PER_TENANT webhooks on breaks per tenant, to SINK_URL_PREFIX/<tenant>-<i>.
Nothing is written in these tenants by this script, so their webhooks stay idle. With
BUSY, the first BUSY tenants' clients may also write breaks: each of those tenants
gets person 1 and break definition 1, and TOKENS_FILE a line "TENANT TOKEN" for it,
for the bench to write breaks there (every one of their webhooks then delivers them).
One keep-alive
connection, 127.0.0.1 only; bounded: every request has a 30 s timeout and each step
runs a fixed number of times. Prints "tenants=N webhooks=M seconds=S" on success;
exits 1 naming the first failure.
"""
import base64
import http.client
import json
import subprocess
import sys
import time

SCOPES = (
    "connector-protimeapi-webhooks.read connector-protimeapi-webhooks.write "
    "connector-protimeapi-breaks.read"
)
BUSY_SCOPES = SCOPES + (
    " connector-protimeapi-breaks.write connector-protimeapi-people.write"
    " connector-protimeapi-break-definitions.write"
)
DEFINITION = json.dumps({
    "id": 1, "name": {"default": "Lunch"}, "friendlyName": {"default": "Lunch"},
    "paidDurationInMinutes": 0, "minimumDurationInMinutes": 30,
    "maximumDurationInMinutes": 60, "ifNotClockedDurationInMinutes": 30,
    "hasToBeTakenUninterrupted": True,
})


def call(conn, method, path, token, body, want, what):
    conn.request(method, path, body=body,
                 headers={"Authorization": f"Bearer {token}", "User-Agent": "bench-fleet",
                          "Content-Type": "application/json"})
    r = conn.getresponse()
    answer = r.read()
    if r.status not in want:
        sys.exit(f"fleet: {what}: {r.status} {answer[:200]!r}")


def main():
    if len(sys.argv) not in (7, 9):
        sys.exit(__doc__)
    binary, store, port, tenants, per, prefix = sys.argv[1:7]
    port, tenants, per = int(port), int(tenants), int(per)
    busy = int(sys.argv[7]) if len(sys.argv) == 9 else 0
    tokens = open(sys.argv[8], "w") if busy else None
    t0 = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    made = 0
    for t in range(1, tenants + 1):
        name = f"fleet-{t}"
        subprocess.run([binary, "tenant", "create", name, "--store", store], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
        out = subprocess.run([binary, "client", "create", "--tenant", name, "--name", "fleet",
                              "--scopes", BUSY_SCOPES if t <= busy else SCOPES, "--json",
                              "--store", store],
                             check=True, capture_output=True, text=True, timeout=30).stdout
        client = json.loads(out.strip().splitlines()[-1])
        creds = base64.b64encode(f"{client['clientId']}:{client['clientSecret']}".encode()).decode()
        conn.request("POST", f"/tenants/{name}/connect/token", body="grant_type=client_credentials",
                     headers={"Authorization": f"Basic {creds}", "User-Agent": "bench-fleet",
                              "Content-Type": "application/x-www-form-urlencoded"})
        r = conn.getresponse()
        body = r.read()
        if r.status != 200:
            sys.exit(f"fleet: token for {name}: {r.status} {body[:200]!r}")
        token = json.loads(body)["access_token"]
        api = "/connector/protimeapi/api/v1"
        for i in range(1, per + 1):
            hook = json.dumps({"destinationUrl": f"{prefix}/{t}-{i}", "collectionName": "breaks"})
            call(conn, "POST", f"{api}/webhooks", token, hook, (201,), f"webhook {i} of {name}")
            made += 1
        if t <= busy:
            call(conn, "PUT", f"{api}/people/1", token, '{"id":1}', (200, 201), f"person of {name}")
            call(conn, "PUT", f"{api}/break-definitions/1", token, DEFINITION, (200, 201),
                 f"definition of {name}")
            tokens.write(f"{name} {token}\n")
    if tokens:
        tokens.close()
    print(f"tenants={tenants} webhooks={made} seconds={time.monotonic() - t0:.1f}")


if __name__ == "__main__":
    main()
