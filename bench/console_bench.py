#!/usr/bin/env python3
"""The console and the access review at 100,000 people, measured in one run:

  1. `idsync report --format html`: time, peak memory (GNU time) and the
     file's size, for a generated company (gen-directory, seed 7);
  2. that file opened in chromium (headless, through chromedriver): the time
     to its load event (performance navigation timing), three loads;
  3. people search in the console (GET /ui/api/people?q=...) against an
     idsyncd holding the same company: the first search (which builds the
     index) and then 1,000 searches for parts of addresses and names,
     p50/p99/max over one kept-alive connection.

Usage: python3 bench/console_bench.py [BUILD_DIR] [--users N]
Needs chromium, chromedriver and tests/browser's npm packages
(scripts/install-deps.sh). Exits non-zero naming the command when something
it runs fails, or when what it measures is not what it says (a search that
does not answer 200, a run that sent writes).
"""

import hashlib
import http.client
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def fail(message):
    print("console_bench.py: " + message, file=sys.stderr)
    sys.exit(1)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100.0 * (len(ordered) - 1))))]


def main():
    args = sys.argv[1:]
    users = 100000
    if "--users" in args:
        i = args.index("--users")
        users = int(args[i + 1])
        del args[i:i + 2]
    build = os.path.abspath(args[0] if args else os.path.join(ROOT, "build"))
    idsync = os.path.join(build, "daemon/idsync")
    idsyncd = os.path.join(build, "daemon/idsyncd")
    emulator = os.path.join(build, "tools/account-emulator/account-emulator")
    gen = os.path.join(build, "tools/gen-directory/gen-directory")
    for binary in (idsync, idsyncd, emulator, gen):
        if not os.access(binary, os.X_OK):
            fail("build %s first" % binary)
    for tool in ("/usr/bin/chromium", "/usr/bin/chromedriver", "/usr/bin/time"):
        if not os.path.exists(tool):
            fail("%s is missing: run scripts/install-deps.sh" % tool)

    work = tempfile.mkdtemp(prefix="idsync-console-bench.")
    procs = []
    try:
        # --- the company, the account, the configuration ---
        ldif = os.path.join(work, "company.ldif")
        with open(ldif, "w") as out:
            if subprocess.call([gen, "--users", str(users), "--groups", str(users // 10),
                                "--seed", "7"], stdout=out) != 0:
                fail("%s --users %d failed" % (gen, users))
        seed = os.path.join(work, "seed.json")
        with open(seed, "w") as out:
            json.dump({"projects": [{"id": "p_support", "name": "support-bot"}], "users": []}, out)
        port_file = os.path.join(work, "port")
        procs.append(subprocess.Popen(
            [emulator, "--listen", "127.0.0.1:0", "--token", "bench-token", "--seed", seed,
             "--port-file", port_file, "--random-seed", "1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for _ in range(200):
            if os.path.exists(port_file) and os.path.getsize(port_file) > 0:
                break
            time.sleep(0.05)
        account_port = int(open(port_file).read())
        admin_port = free_port()
        admin_token = secrets.token_urlsafe(24)
        token_hash = "sha256:" + hashlib.sha256(admin_token.encode()).hexdigest()
        config = os.path.join(work, "idsync.yaml")
        with open(config, "w") as out:
            out.write(f"""account:
  url: http://127.0.0.1:{account_port}
  token: ${{env:IDSYNC_BENCH_TOKEN}}
store: sqlite://{work}/state.db
sources:
  - name: hr
    type: ldif
    path: {ldif}
    users: {{base: "ou=people,dc=corp,dc=example", filter: "(objectClass=inetOrgPerson)", email: mail, name: cn}}
    groups: {{base: "ou=groups,dc=corp,dc=example", filter: "(objectClass=groupOfNames)", name: cn, member: member, nested: true}}
    interval: 24h
server:
  admin_listen: ["127.0.0.1:{admin_port}"]
  admin_tokens: ["{token_hash}"]
permissions: {{catalog: builtin}}
rules:
  - {{name: everyone, match: {{email: "*@corp.example"}}, preset: content-editor, projects: [support-bot]}}
  - {{name: qa, match: {{group: "qa-*"}}, preset: qa-analyst}}
  - {{name: admins, match: {{group: "Studio Admins"}}, role: admin}}
safety: {{max_removals: 10, max_changes: 1}}
logging: {{format: text, level: warning}}
""")
        env = dict(os.environ, IDSYNC_BENCH_TOKEN="bench-token")
        results = []

        # --- 1. the HTML report ---
        report = os.path.join(work, "report.html")
        timing = os.path.join(work, "time")
        if subprocess.call(["/usr/bin/time", "-f", "%e %M", "-o", timing, idsync, "--config",
                            config, "report", "--format", "html", "--out", report],
                           env=env) != 0:
            fail("idsync report --format html failed")
        secs, kb = open(timing).read().split()
        size = os.path.getsize(report)

        # --- 2. the report in chromium ---
        loads = []
        for _ in range(3):
            out = subprocess.run(
                ["node", os.path.join(ROOT, "bench/report_load.js"), report],
                cwd=os.path.join(ROOT, "tests/browser"), capture_output=True, text=True,
                env=dict(env, SE_OFFLINE="true"))
            if out.returncode != 0:
                fail("bench/report_load.js failed: " + out.stderr[-2000:])
            loads.append(json.loads(out.stdout))
        load_ms = sorted(l["load_ms"] for l in loads)
        results.append("1. idsync report --format html, %d people with access: %.1f s, %d MB "
                       "peak, %.1f MB file" % (loads[0]["people"], float(secs), int(kb) // 1024,
                                               size / 1e6))
        results.append("2. the report in chromium, load event: %s ms (three loads); %d rows "
                       "drawn of %d" % (", ".join("%.0f" % m for m in load_ms),
                                        loads[0]["rows"], loads[0]["people"]))

        # --- 3. people search in the console ---
        log = open(os.path.join(work, "idsyncd.log"), "w")
        daemon = subprocess.Popen([idsyncd, "--config", config], stdout=log, stderr=log, env=env)
        procs.append(daemon)
        base = "http://127.0.0.1:%d" % admin_port
        deadline = time.time() + 300
        while True:
            if daemon.poll() is not None:
                fail("idsyncd exited: see " + log.name)
            try:
                req = urllib.request.Request(base + "/v1/status",
                                             headers={"Authorization": "Bearer " + admin_token})
                status = json.load(urllib.request.urlopen(req, timeout=10))
                if status["runs"] and status["runs"][0]["finished"] != "-":
                    break
            except OSError:
                pass
            if time.time() > deadline:
                fail("no finished full run within 300 s")
            time.sleep(0.5)
        if status["runs"][0]["result"] != "blocked":
            fail("the full run was meant to be blocked (sending nothing), got " +
                 status["runs"][0]["result"])
        conn = http.client.HTTPConnection("127.0.0.1", admin_port, timeout=60)
        conn.request("POST", "/ui/api/session", json.dumps({"token": admin_token}),
                     {"Content-Type": "application/json"})
        answer = conn.getresponse()
        body = answer.read()
        if answer.status != 200:
            fail("sign-in answered %d: %s" % (answer.status, body[:200]))
        cookie = answer.getheader("Set-Cookie").split(";")[0]

        def search(q):
            started = time.perf_counter()
            conn.request("GET", "/ui/api/people?limit=50&q=" + urllib.parse.quote(q),
                         headers={"Cookie": cookie})
            r = conn.getresponse()
            data = r.read()
            elapsed = (time.perf_counter() - started) * 1000
            if r.status != 200:
                fail("search %r answered %d: %s" % (q, r.status, data[:200]))
            return elapsed, json.loads(data)

        first_ms, everyone = search("")
        total = everyone["total"]
        rng = random.Random(7)
        words = re.findall(r"^(?:mail|cn): (.+)$", open(ldif).read(), re.M)
        latencies = []
        for i in range(1000):
            word = rng.choice(words).lower()
            start = rng.randrange(0, max(1, len(word) - 3))
            q = "" if i % 100 == 0 else ("zz-nobody" if i % 100 == 1 else
                                         word[start:start + rng.randint(3, 8)])
            elapsed, _ = search(q)
            latencies.append(elapsed)
        results.append("3. people search over %d people: first search (builds the index) "
                       "%.0f ms; 1,000 searches p50 %.1f ms, p99 %.1f ms, max %.1f ms" %
                       (total, first_ms, percentile(latencies, 50), percentile(latencies, 99),
                        max(latencies)))
        for line in results:
            print(line)
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
