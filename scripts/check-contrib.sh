#!/usr/bin/env bash
# check-contrib.sh [FILE]: checks the monitoring content in contrib/.
#
#  1. promtool check rules contrib/prometheus/alerts.yml, and that every rule has a
#     `for:`, a severity label, a summary and a description;
#  2. promtool test rules contrib/prometheus/alerts_test.yml;
#  3. that those tests can fail: each alert's expression is broken in turn (made
#     to never fire, and the mutants listed below, each a plausible mistake that
#     must make some test fire or stay silent wrongly), and promtool test rules must
#     then fail;
#  4. that contrib/grafana/breakhook.json is JSON, a dashboard of schemaVersion 36
#     or later whose datasources are all variables (no datasource uid of one
#     Grafana), that every panel queries something, and that every query is valid
#     PromQL (promtool parses it, Grafana's $variables filled in);
#  5. given FILE, a scrape of a running server (curl -s http://127.0.0.1:9464/metrics
#     > FILE), that every breakhook_* and process_* name in alerts.yml and in the
#     dashboard's queries is a family of that scrape (its `# TYPE` lines; _bucket,
#     _sum and _count name their histogram's family). Without FILE this step is
#     skipped, and the output says so.
#
# Exit 0 when all of it held; else 1 with the reason on stderr.
set -euo pipefail
cd "$(dirname "$0")/.."

rules=contrib/prometheus/alerts.yml
tests=contrib/prometheus/alerts_test.yml
dash=contrib/grafana/breakhook.json
scrape="${1:-}"

fail() {
    echo "check-contrib: FAILED: $*" >&2
    exit 1
}

command -v promtool >/dev/null 2>&1 ||
    fail "promtool not found: run scripts/install-deps.sh (Debian package prometheus)"
python3 -c 'import yaml' 2>/dev/null ||
    fail "python3 with yaml not found: run scripts/install-deps.sh (python3, python3-yaml)"
if [ -n "$scrape" ] && [ ! -r "$scrape" ]; then
    fail "cannot read the scrape file '$scrape'"
fi

if ! out=$(promtool check rules "$rules" 2>&1); then
    echo "$out" >&2
    fail "promtool check rules $rules"
fi
if ! out=$(promtool test rules "$tests" 2>&1); then
    echo "$out" >&2
    fail "promtool test rules $tests"
fi
echo "check-contrib: $rules: rules valid, unit tests pass"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/breakhook-check-contrib-XXXXXX")
trap 'rm -rf "$tmp"' EXIT

if ! python3 - "$rules" "$tests" "$dash" "$scrape" "$tmp" <<'PY'
import concurrent.futures, copy, json, os, re, shutil, subprocess, sys
import yaml

rules_path, tests_path, dash_path, scrape_path, tmp = sys.argv[1:6]
errors = []

# ---- every rule is complete --------------------------------------------------
with open(rules_path) as f:
    doc = yaml.safe_load(f)
alerts = [r for g in doc["groups"] for r in g["rules"] if "alert" in r]
for r in alerts:
    a = r["alert"]
    if "for" not in r:
        errors.append(f"{rules_path}: {a} has no `for:`")
    if not r.get("labels", {}).get("severity"):
        errors.append(f"{rules_path}: {a} has no severity label")
    for k in ("summary", "description"):
        if not r.get("annotations", {}).get(k):
            errors.append(f"{rules_path}: {a} has no {k} annotation")

# ---- the tests can fail ------------------------------------------------------
# (alert, text in its expr, replacement): each a mistake the tests must catch.
MUTANTS = [
    ("BreakhookDown", 'up{job="breakhook"}', "up"),
    ("BreakhookScrapeTargetMissing", 'up{job="breakhook"}', 'up{job="breakhook", instance="none"}'),
    ("BreakhookFileDescriptorsNearLimit", "> 0.8", ">= 0.8"),
    ("BreakhookFileDescriptorsNearLimit", '{job="breakhook"} / process_max_fds{job="breakhook"}', " / process_max_fds"),
    ("BreakhookAPIErrors", 'status=~"5.."', 'status=~"[45].."'),
    ("BreakhookAPIErrors", ">= 100", ">= 0"),
    ("BreakhookDeliveryFailing", 'outcome=~"http_error|timeout|network_error"', 'outcome!="success"'),
    ("BreakhookDeliveryFailing", ">= 20", ">= 0"),
    ("BreakhookDeliveryFailing", "> 0.1", "> 0.01"),
    ("BreakhookDestinationPaused", "max_over_time(breakhook_destinations_paused[5m])", "breakhook_destinations_paused"),
    ("BreakhookDestinationPaused", "[5m]", "[30m]"),
    ("BreakhookWebhookRetriesExhausted", '{reason="RetriesExhausted"}', ""),
    ("BreakhookWebhookRetriesExhausted", "increase(", "max_over_time("),
    ("BreakhookBacklogGrowing", "deriv(breakhook_pending_events[15m]) > 0", "breakhook_pending_events > 0"),
    ("BreakhookBacklogGrowing", "> 300", ">= 0"),
    ("BreakhookDeliveryLatencyHigh", "> 0.02", "> 0.015"),
    ("BreakhookWebhooksExpiring", '{within="1d"}', ""),
    ("BreakhookStoreNotReady", "breakhook_store_ready", "min_over_time(breakhook_store_ready[5m])"),
    ("BreakhookStoreSlow", "> 0.25", "> 0.05"),
    ("BreakhookWorkerQueueBackingUp", "avg_over_time", "max_over_time"),
    ("BreakhookWorkerQueueBackingUp", "> 32", "> 16"),
    ("BreakhookTokenQueueBackingUp", "avg_over_time", "max_over_time"),
    ("BreakhookTokenQueueBackingUp", "> 16", "> 8"),
]
NEVER = "vector(1) < 0"
names = [r["alert"] for r in alerts]
for a, old, _ in MUTANTS:
    if a not in names:
        errors.append(f"scripts/check-contrib.sh: a mutant names {a}, which {rules_path} does not have")
mutants = [(a, None, NEVER) for a in names] + MUTANTS

def run_mutant(i, a, old, new):
    """True when promtool test rules fails on the rules with this mutant."""
    m = copy.deepcopy(doc)
    rule = next(r for g in m["groups"] for r in g["rules"] if r.get("alert") == a)
    rule["expr"] = new if old is None else rule["expr"].replace(old, new)
    d = os.path.join(tmp, str(i))
    os.mkdir(d)
    shutil.copy(tests_path, os.path.join(d, "alerts_test.yml"))
    with open(os.path.join(d, "alerts.yml"), "w") as f:
        yaml.safe_dump(m, f, allow_unicode=True, sort_keys=False)
    p = subprocess.run(["promtool", "test", "rules", os.path.join(d, "alerts_test.yml")],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return p.returncode != 0

runnable = []
for a, old, new in mutants:
    if old is not None:
        expr = next((r["expr"] for r in alerts if r["alert"] == a), "")
        n = expr.count(old)
        if n != 1:
            errors.append(f"scripts/check-contrib.sh: the mutant {old!r} -> {new!r} of {a} "
                          f"matches its expr {n} times, not once: update the mutant")
            continue
    runnable.append((a, old, new))
# First the rules as they are, written the same way: they must pass, else every
# mutant would fail for the wrong reason.
if run_mutant("baseline", alerts[0]["alert"], "", ""):
    errors.append(f"scripts/check-contrib.sh: the unchanged rules, written back as YAML, "
                  f"fail their tests: the mutation check cannot work")
    runnable = []
with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
    caught = list(pool.map(lambda im: run_mutant(im[0], *im[1]), enumerate(runnable)))
for (a, old, new), ok in zip(runnable, caught):
    if not ok:
        what = "made never to fire" if old is None else f"with {old!r} -> {new!r}"
        errors.append(f"{tests_path}: the tests still pass with {a} {what}: "
                      f"give it series that tell the two apart")
if not errors:
    print(f"check-contrib: {tests_path}: all {len(mutants)} broken expressions "
          f"({len(names)} never firing, {len(MUTANTS)} mutants) make the tests fail")

# ---- the dashboard -----------------------------------------------------------
try:
    with open(dash_path) as f:
        dash = json.load(f)
except (OSError, ValueError) as e:
    errors.append(f"{dash_path}: not valid JSON: {e}")
    dash = None

exprs = []
if dash is not None:
    if not isinstance(dash.get("schemaVersion"), int) or dash["schemaVersion"] < 36:
        errors.append(f"{dash_path}: schemaVersion must be 36 or later, is {dash.get('schemaVersion')!r}")

    panel_exprs = []

    def walk(node, path):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "datasource" and isinstance(v, dict) and "uid" in v:
                    if not re.fullmatch(r"\$\{?\w+\}?", str(v["uid"])):
                        errors.append(f"{dash_path}: {path}.datasource has the fixed uid "
                                      f"{v['uid']!r}: use the datasource variable")
                if k == "expr" and isinstance(v, str):
                    exprs.append(v)
                walk(v, f"{path}.{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{path}[{i}]")
    walk(dash, "$")
    for var in dash.get("templating", {}).get("list", []):
        qy = var.get("query")
        if var.get("type") == "query":
            exprs.append(qy.get("query", "") if isinstance(qy, dict) else str(qy or ""))

    def panels(ps):
        for p in ps:
            yield p
            yield from panels(p.get("panels", []))
    for p in panels(dash.get("panels", [])):
        if p.get("type") != "row" and not any(t.get("expr") for t in p.get("targets", [])):
            errors.append(f"{dash_path}: panel {p.get('title')!r} has no query")
        for t in p.get("targets", []):
            if t.get("expr"):
                panel_exprs.append((f"panel {p.get('title')!r} query {t.get('refId')}", t["expr"]))

    # Every query must parse: promtool check rules parses them as recording rules,
    # with Grafana's variables replaced by values of the same kind.
    def plain(e):
        e = re.sub(r"\$\{?__(rate_interval|interval|range)\}?", "5m", e)
        return re.sub(r"\$\{?\w+(:\w+)?\}?", ".+", e)
    qfile = os.path.join(tmp, "dashboard-queries.yml")
    with open(qfile, "w") as f:
        yaml.safe_dump({"groups": [{"name": "dashboard", "rules": [
            {"record": f"dashboard_query_{i}", "expr": plain(e)}
            for i, (_, e) in enumerate(panel_exprs)]}]}, f, sort_keys=False)
    p = subprocess.run(["promtool", "check", "rules", qfile], capture_output=True, text=True)
    if p.returncode != 0:
        out = p.stdout + p.stderr
        bad = sorted({int(i) for i in re.findall(r'"dashboard_query_(\d+)"', out)})
        for i in bad:
            why = re.search(rf'"dashboard_query_{i}": (.*)', out)
            errors.append(f"{dash_path}: {panel_exprs[i][0]} does not parse as PromQL: "
                          f"{why.group(1) if why else ''}")
        if not bad:
            errors.append(f"{dash_path}: promtool cannot check the queries:\n{out.strip()}")
    else:
        print(f"check-contrib: {dash_path}: valid JSON, schemaVersion {dash.get('schemaVersion')}, "
              f"{len(panel_exprs)} panel queries, all valid PromQL")

# ---- metric names against a scrape -------------------------------------------
if scrape_path:
    families = set()
    with open(scrape_path, errors="replace") as f:
        for line in f:
            m = re.match(r"#\s*TYPE\s+([a-zA-Z_:][a-zA-Z0-9_:]*)\s+\w+", line)
            if m:
                families.add(m.group(1))
    if not families:
        errors.append(f"{scrape_path}: no `# TYPE` lines: not a scrape of /metrics")

    def family(name):
        if name in families:
            return name
        # (_total: OpenMetrics names a counter's family without it)
        for suffix in ("_bucket", "_sum", "_count", "_total"):
            if name.endswith(suffix) and name[: -len(suffix)] in families:
                return name[: -len(suffix)]
        return None

    name_re = re.compile(r"\b(?:breakhook|process)_[a-zA-Z0-9_]+")
    with open(rules_path) as f:
        rule_text = f.read()
    checked, missing = 0, 0
    for where, text in [(rules_path, rule_text), (f"{dash_path} (queries)", "\n".join(exprs))]:
        for name in sorted(set(name_re.findall(text))):
            checked += 1
            if family(name) is None:
                missing += 1
                errors.append(f"{where}: {name} is not a family of the scrape {scrape_path}")
    if families and not missing:
        print(f"check-contrib: metric names: the {checked} names used ({rules_path}, then "
              f"{dash_path}) are all among the {len(families)} families of {scrape_path}")
else:
    print("check-contrib: no scrape file given: metric names NOT checked against a server "
          "(scripts/check-contrib.sh FILE, FILE from curl -s http://127.0.0.1:9464/metrics)")

if errors:
    for e in errors:
        print(f"check-contrib: {e}", file=sys.stderr)
    sys.exit(1)
PY
then
    fail "see the lines above"
fi
echo "check-contrib: ok"
