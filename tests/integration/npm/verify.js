// verify.js: verifies deliveries signed by breakhook with the Standard Webhooks
// reference library for Node.js (npm "standardwebhooks"), which shares no code with
// ours. Run by tests/integration/test_sign_interop.c:
//
//   node verify.js CASES.json
//
// CASES.json: {"key":"whsec_...","cases":[{"id":"…","timestamp":1700000000,
//   "signature":"v1,…","body":"<base64 of the exact body bytes>"}, …]}
//
// Prints one JSON line per case, in order:
//   {"valid":true|false,"error":"<library message>","signature":"v1,…"}
// where "signature" is what the library itself computes for (id, timestamp, body), so
// the caller can compare signing byte for byte too.
"use strict";

const fs = require("fs");
const { Webhook } = require("standardwebhooks");

function main() {
  if (process.argv.length !== 3) {
    process.stderr.write("usage: node verify.js CASES.json\n");
    process.exit(2);
  }
  const input = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
  const wh = new Webhook(input.key);
  const out = [];
  for (const c of input.cases) {
    const body = Buffer.from(c.body, "base64");
    const headers = {
      "webhook-id": c.id,
      "webhook-timestamp": String(c.timestamp),
      "webhook-signature": c.signature,
    };
    const line = { valid: false };
    try {
      // jsonParse: false: only the signature is under test, not the body's syntax.
      wh.verify(body, headers, { jsonParse: false });
      line.valid = true;
    } catch (e) {
      line.error = String(e && e.message ? e.message : e);
    }
    line.signature = wh.sign(c.id, new Date(c.timestamp * 1000), body);
    out.push(JSON.stringify(line));
  }
  process.stdout.write(out.join("\n") + "\n");
}

main();
