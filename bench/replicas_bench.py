#!/usr/bin/env python3
"""idsyncd replicas on PostgreSQL, measured in one run on this machine:

  1. SCIM writes per second (POST /Users, a new user each, 16 connections in
     all): three replicas on one PostgreSQL (fsync on), the connections
     spread over them, against one idsyncd on SQLite (synchronous = FULL);
  2. SCIM GET by filter (userName eq, a different user each request, 64
     connections) on a follower, against nginx serving a file of the same
     size as one answer, three rounds each, alternating; the median ratio;
  3. a write on one replica -> visible to a GET on another: p50, p99, max
     over SAMPLES writes, each on the next replica and read on the one after;
  4. fail-over: the leader SIGKILLed -> the new leader sending, over KILLS
     kills (ha.lease as configured, 10 s by default): at the kill a change
     that needs an account write is pushed to a surviving replica; the time
     is until the account applies it. The killed replica is started again
     each time (as systemd would).

Usage: bench/replicas_bench.py [BUILD_DIR] [--seconds N] [--kills N]
                               [--samples N] [--lease DURATION] [--only STEPS]
BUILD_DIR defaults to the tree's build/. Needs wrk, nginx, and PostgreSQL 15's
server binaries (postgresql-15); runs the server as the postgres user when run
as root. Prints a summary; bench/README.md records the numbers. Exits non-zero
naming what failed.
"""

import argparse
import hashlib
import http.client as httpclient
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

PG_BIN = "/usr/lib/postgresql/15/bin"
ACCOUNT_TOKEN = "replicas-bench-account-token"
SCIM_TOKEN = "replicas-bench-scim-token"
ADMIN_TOKEN = "replicas-bench-admin-token"


def fail(message):
    print("replicas_bench: " + message, file=sys.stderr)
    sys.exit(1)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def token_hash(token):
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()


def http(method, url, token=None, body=None, timeout=10):
    """(status, body text); status -1 when no answer came."""
    data = body.encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    if token:
        request.add_header("Authorization", "Bearer " + token)
    if data is not None:
        request.add_header("Content-Type", "application/scim+json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")
    except (urllib.error.URLError, OSError) as e:
        return -1, str(e)


def percentile(values, p):
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = max(0, min(len(ordered) - 1, int(round(p / 100.0 * len(ordered) + 0.5)) - 1))
    return ordered[k]


class Postgres:
    """A throwaway PostgreSQL 15 (fsync on: the writes measured are durable)."""

    def __init__(self, work):
        self.dir = os.path.join(work, "pg")
        os.makedirs(self.dir)
        self.port = free_port()
        self.as_user = []
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self.run(["initdb", "-D", self.dir + "/data", "-A", "trust", "-U", "idsync", "-E", "UTF8"])
        self.start()

    def run(self, command):
        full = self.as_user + [os.path.join(PG_BIN, command[0])] + command[1:]
        result = subprocess.run(full, capture_output=True, text=True)
        if result.returncode != 0:
            fail(" ".join(full) + " exited %d: %s" % (result.returncode, result.stderr))

    def start(self):
        self.run(["pg_ctl", "-D", self.dir + "/data", "-l", self.dir + "/log", "-w", "-o",
                  "-k %s -c listen_addresses=127.0.0.1 -p %d -c max_connections=200"
                  % (self.dir, self.port), "start"])

    def stop(self):
        self.run(["pg_ctl", "-D", self.dir + "/data", "-m", "fast", "-w", "stop"])

    def url(self, database="postgres"):
        return "postgresql://idsync@127.0.0.1:%d/%s" % (self.port, database)

    def create_database(self, name):
        result = subprocess.run(["psql", self.url(), "-c", "CREATE DATABASE " + name],
                                capture_output=True, text=True)
        if result.returncode != 0:
            fail("CREATE DATABASE %s: %s" % (name, result.stderr))
        return self.url(name)


class Emulator:
    def __init__(self, build, work):
        seed = os.path.join(work, "seed.json")
        with open(seed, "w") as f:
            json.dump({"projects": [{"id": "p_support", "name": "support-bot"}], "users": []}, f)
        port_file = os.path.join(work, "emulator.port")
        self.log = open(os.path.join(work, "emulator.log"), "w")
        self.process = subprocess.Popen(
            [os.path.join(build, "tools/account-emulator/account-emulator"), "--listen",
             "127.0.0.1:0", "--token", ACCOUNT_TOKEN, "--seed", seed, "--port-file", port_file,
             "--random-seed", "1"], stdout=self.log, stderr=self.log)
        for _ in range(200):
            if os.path.exists(port_file) and os.path.getsize(port_file) > 0:
                break
            if self.process.poll() is not None:
                fail("the account emulator exited during start-up")
            time.sleep(0.05)
        with open(port_file) as f:
            self.port = int(f.read().strip())

    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def applied_invites(self, emails):
        """The e-mails (of `emails`) the account holds now."""
        status, body = http("GET", self.url() + "/_emulator/state")
        if status != 200:
            fail("GET /_emulator/state: %d %s" % (status, body))
        held = {u.get("email", "").lower() for u in json.loads(body)["users"]}
        return held & emails

    def stop(self):
        self.process.terminate()
        self.process.wait()


class Replica:
    def __init__(self, build, work, name, store, emulator, lease, log):
        self.name = name
        self.config = os.path.join(work, name + ".yaml")
        with open(self.config, "w") as f:
            f.write(f"""account:
  url: {emulator.url()}
  token: ${{env:IDSYNC_BENCH_ACCOUNT_TOKEN}}
store: "{store}"
sources:
  - name: okta
    type: scim
    tokens: ["{token_hash(SCIM_TOKEN)}"]
server:
  listen: ["127.0.0.1:0"]
  admin_listen: ["127.0.0.1:0"]
  admin_tokens: ["{token_hash(ADMIN_TOKEN)}"]
  replica_id: {name}
ha: {{lease: {lease}}}
permissions: {{catalog: builtin}}
rules:
  - {{name: voice, match: {{group: "Voice Team"}}, presets: [voice-specialist], projects: [support-bot]}}
logging: {{format: text, level: info}}
""")
        self.binary = os.path.join(build, "daemon/idsyncd")
        self.log_path = log
        self.process = None
        self.scim = self.admin = 0

    def start(self):
        env = dict(os.environ, IDSYNC_BENCH_ACCOUNT_TOKEN=ACCOUNT_TOKEN)
        for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
            env.pop(name, None)
        offset = os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0
        log = open(self.log_path, "a")
        self.process = subprocess.Popen([self.binary, "--config", self.config], stdout=log,
                                        stderr=log, env=env)
        deadline = time.time() + 30
        pattern = re.compile(r"daemon\.started: .*config=%s .*ports=scim:(\d+),admin:(\d+)"
                             % re.escape(self.config))
        while time.time() < deadline:
            with open(self.log_path) as f:
                f.seek(offset)
                match = pattern.search(f.read())
            if match:
                self.scim, self.admin = int(match.group(1)), int(match.group(2))
                return
            if self.process.poll() is not None:
                fail("%s exited during start-up; see %s" % (self.name, self.log_path))
            time.sleep(0.02)
        fail("%s did not start within 30 s; see %s" % (self.name, self.log_path))

    def kill(self, sig=signal.SIGKILL):
        self.process.send_signal(sig)
        self.process.wait()
        self.scim = self.admin = 0

    def status(self):
        if not self.admin:
            return None
        code, body = http("GET", "http://127.0.0.1:%d/v1/status" % self.admin, ADMIN_TOKEN,
                          timeout=2)
        return json.loads(body) if code == 200 else None

    def scim_url(self, path):
        return "http://127.0.0.1:%d/scim/v2%s" % (self.scim, path)


def user_body(email):
    return json.dumps({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                       "userName": email, "active": True,
                       "emails": [{"value": email, "type": "work", "primary": True}]})


def seed_users(replica, count):
    """POSTs count users seed000000@bench.test.. through one replica."""
    def worker(start, step):
        for n in range(start, count, step):
            email = "seed%06d@bench.test" % n
            code, body = http("POST", replica.scim_url("/Users"), SCIM_TOKEN, user_body(email))
            if code not in (201, 409):
                fail("seeding %s: %d %s" % (email, code, body))
    threads = [threading.Thread(target=worker, args=(i, 8)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


POST_LUA = """
local token = os.getenv("SCIM_TOKEN")
local prefix = os.getenv("POST_PREFIX")
local headers = { ["Authorization"] = "Bearer " .. token,
                  ["Content-Type"] = "application/scim+json" }
local counter = 0
local threads = {}
function setup(thread) thread:set("tid", #threads + 1); table.insert(threads, thread) end
request = function()
  counter = counter + 1
  local name = string.format("%s-%d-%d@bench.test", prefix, tid, counter)
  local body = '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"' ..
    name .. '","active":true,"emails":[{"value":"' .. name .. '","type":"work","primary":true}]}'
  return wrk.format("POST", "/scim/v2/Users", headers, body)
end
"""

GET_LUA = """
local token = os.getenv("SCIM_TOKEN")
local n_users = tonumber(os.getenv("SCIM_USERS"))
local headers = { ["Authorization"] = "Bearer " .. token }
function setup(thread) thread:set("seed", math.random(1, 1000000)) end
function init(args) math.randomseed(seed or os.time()) end
request = function()
  local n = math.random(0, n_users - 1)
  local path = string.format(
    "/scim/v2/Users?filter=userName%%20eq%%20%%22seed%06d%%40bench.test%%22", n)
  return wrk.format("GET", path, headers)
end
"""


def wrk(work, label, url, connections, seconds, script=None, env=None):
    """Runs wrk; returns (requests/s, p99 ms). Fails on any non-2xx or socket error."""
    command = ["wrk", "-t2", "-c%d" % connections, "-d%ds" % seconds, "--latency"]
    if script:
        path = os.path.join(work, label + ".lua")
        with open(path, "w") as f:
            f.write(script)
        command += ["-s", path]
    command.append(url)
    result = subprocess.run(command, capture_output=True, text=True,
                            env=dict(os.environ, SCIM_TOKEN=SCIM_TOKEN, **(env or {})))
    with open(os.path.join(work, label + ".txt"), "w") as f:
        f.write(result.stdout + result.stderr)
    if result.returncode != 0:
        fail("%s: wrk exited %d: %s" % (label, result.returncode, result.stderr))
    if "Non-2xx" in result.stdout or "Socket errors" in result.stdout:
        fail("%s: wrk saw failures; its rate would count them:\n%s" % (label, result.stdout))
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", result.stdout).group(1))
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)", result.stdout, re.M)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    return rate, float(p99.group(1)) * scale


def parallel_wrk(work, label, urls, connections, seconds, script, env_for):
    """Runs one wrk per URL at once; returns the summed rate and the worst p99."""
    results = [None] * len(urls)

    def one(i):
        results[i] = wrk(work, "%s_%d" % (label, i), urls[i], connections[i], seconds, script,
                         env_for(i))
    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(urls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if any(r is None for r in results):
        fail(label + ": a wrk run did not finish")
    return sum(r[0] for r in results), max(r[1] for r in results)


class Nginx:
    def __init__(self, work, size):
        self.dir = os.path.join(work, "nginx")
        for sub in ("html", "logs", "tmp"):
            os.makedirs(os.path.join(self.dir, sub))
        with open(os.path.join(self.dir, "html/answer.json"), "w") as f:
            f.write("x" * size)
        os.chmod(work, 0o755)
        for root, dirs, files in os.walk(self.dir):
            os.chmod(root, 0o755)
            for name in files:
                os.chmod(os.path.join(root, name), 0o644)
        self.port = free_port()
        user = "user root root;" if os.geteuid() == 0 else ""
        d = self.dir
        with open(os.path.join(d, "nginx.conf"), "w") as f:
            f.write(f"""{user}
worker_processes auto;
daemon off;
pid {d}/nginx.pid;
error_log {d}/logs/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  default_type application/scim+json;
  client_body_temp_path {d}/tmp/body;
  proxy_temp_path {d}/tmp/proxy;
  fastcgi_temp_path {d}/tmp/fastcgi;
  uwsgi_temp_path {d}/tmp/uwsgi;
  scgi_temp_path {d}/tmp/scgi;
  keepalive_requests 1000000;
  sendfile on;
  tcp_nopush on;
  open_file_cache max=16;
  server {{ listen 127.0.0.1:{self.port} reuseport; root {d}/html; }}
}}
""")
        self.process = subprocess.Popen(["nginx", "-p", d, "-c", d + "/nginx.conf"],
                                        stderr=subprocess.DEVNULL)
        for _ in range(100):
            if http("GET", self.url())[0] == 200:
                return
            time.sleep(0.1)
        fail("nginx did not start")

    def url(self):
        return "http://127.0.0.1:%d/answer.json" % self.port

    def stop(self):
        self.process.terminate()
        self.process.wait()


def leader_of(replicas, wait):
    """(index, epoch) of the replica that says it leads."""
    deadline = time.time() + wait
    while time.time() < deadline:
        for i, r in enumerate(replicas):
            s = r.status()
            if s and s["replica"]["leader"]:
                return i, s["replica"]["epoch"]
        time.sleep(0.05)
    fail("no replica leads after %.0f s" % wait)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("build", nargs="?", default=os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "build"))
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--users", type=int, default=10000)
    parser.add_argument("--lease", default="10s")
    parser.add_argument("--only", default="1234")
    args = parser.parse_args()
    build = os.path.abspath(args.build)
    for tool in ("wrk", "nginx", "psql"):
        if shutil.which(tool) is None:
            fail(tool + " is not installed")
    if not os.path.exists(os.path.join(PG_BIN, "initdb")):
        fail("PostgreSQL 15's server binaries are not installed (postgresql-15)")

    work = tempfile.mkdtemp(prefix="idsync-replicas-bench.")
    os.chmod(work, 0o755)
    log = os.path.join(work, "idsyncd.log")
    emulator = Emulator(build, work)
    pg = Postgres(work)
    replicas = []
    summary = []
    try:
        # --- 1. writes per second: one idsyncd on SQLite, then three on PostgreSQL ---
        if "1" in args.only:
            single = Replica(build, work, "sqlite-1", "sqlite://%s/state.db" % work, emulator,
                             args.lease, log)
            single.start()
            leader_of([single], 30)
            sqlite_rate, sqlite_p99 = wrk(work, "post_sqlite", "http://127.0.0.1:%d" % single.scim,
                                          16, args.seconds, POST_LUA, {"POST_PREFIX": "sqlite"})
            single.kill(signal.SIGTERM)
            summary.append("1. SCIM POST /Users, 16 connections, %d s: one idsyncd on SQLite "
                           "%.0f/s (p99 %.1f ms)" % (args.seconds, sqlite_rate, sqlite_p99))

        store = pg.create_database("bench")
        replicas = [Replica(build, work, "web-%d" % (i + 1), store, emulator, args.lease, log)
                    for i in range(3)]
        for r in replicas:
            r.start()
        leader, _ = leader_of(replicas, 30)

        if "1" in args.only:
            bases = ["http://127.0.0.1:%d" % r.scim for r in replicas]
            pg_rate, pg_p99 = parallel_wrk(work, "post_pg", bases, [6, 5, 5], args.seconds,
                                           POST_LUA, lambda i: {"POST_PREFIX": "pg%d" % i})
            summary.append("   three replicas on PostgreSQL %.0f/s in all (worst p99 %.1f ms); "
                           "ratio %.2f" % (pg_rate, pg_p99, pg_rate / sqlite_rate))

        # --- 2. GET by filter on a follower against nginx ---
        if "2" in args.only:
            seed_users(replicas[leader], args.users)
            follower = replicas[(leader + 1) % 3]
            sample = follower.scim_url(
                "/Users?filter=userName%20eq%20%22seed000042%40bench.test%22")
            deadline = time.time() + 10
            while True:
                code, body = http("GET", sample, SCIM_TOKEN)
                if code == 200 and '"totalResults":1' in body:
                    break
                if time.time() > deadline:
                    fail("the follower does not see the seeded users: %d %s" % (code, body))
                time.sleep(0.1)
            nginx = Nginx(work, len(body.encode()))
            rounds = []
            for n in range(3):
                get_rate, get_p99 = wrk(work, "get_follower_%d" % n,
                                        "http://127.0.0.1:%d" % follower.scim, 64, args.seconds,
                                        GET_LUA, {"SCIM_USERS": str(args.users)})
                nginx_rate, _ = wrk(work, "nginx_%d" % n, nginx.url(), 64, args.seconds)
                rounds.append((get_rate, get_p99, nginx_rate))
            nginx.stop()
            ratios = [g / n for g, _, n in rounds]
            summary.append("2. SCIM GET by filter on a follower (%d users, 64 connections): "
                           % args.users + ", ".join(
                               "%.0f/s (p99 %.1f ms) vs nginx %.0f/s" % r for r in rounds)
                           + "; ratios %s, median %.2f" % (
                               " / ".join("%.2f" % x for x in ratios), statistics.median(ratios)))

        # --- 3. a write on one replica, visible on another ---
        if "3" in args.only:
            # One kept-alive connection per replica, as an identity provider
            # holds; the reader is asked every millisecond.
            conns = [httpclient.HTTPConnection("127.0.0.1", r.scim, timeout=10)
                     for r in replicas]
            auth = {"Authorization": "Bearer " + SCIM_TOKEN,
                    "Content-Type": "application/scim+json"}

            def ask(i, method, path, body=None):
                conns[i].request(method, "/scim/v2" + path, body=body, headers=auth)
                answer = conns[i].getresponse()
                return answer.status, answer.read().decode()
            delays = []
            for n in range(args.samples):
                w, r = n % 3, (n + 1) % 3
                code, body = ask(w, "POST", "/Users",
                                 user_body("visible%05d@bench.test" % n))
                answered = time.perf_counter()
                if code != 201:
                    fail("POST on %s: %d %s" % (replicas[w].name, code, body))
                path = "/Users/" + json.loads(body)["id"]
                while True:
                    code, body = ask(r, "GET", path)
                    if code == 200:
                        break
                    if time.perf_counter() - answered > 30:
                        fail("a write on %s was not visible on %s within 30 s (sample %d: %d %s)"
                             % (replicas[w].name, replicas[r].name, n, code, body[:300]))
                    time.sleep(0.001)
                delays.append((time.perf_counter() - answered) * 1000)
            for c in conns:
                c.close()
            summary.append("3. a write on one replica -> visible on another, %d samples: p50 "
                           "%.1f ms, p99 %.1f ms, max %.1f ms" % (
                               len(delays), percentile(delays, 50), percentile(delays, 99),
                               max(delays)))

        # --- 4. fail-over: leader killed -> new leader sending ---
        if "4" in args.only:
            group = json.dumps({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                                "displayName": "Voice Team", "members": []})
            code, body = http("POST", replicas[leader].scim_url("/Groups"), SCIM_TOKEN, group)
            if code != 201:
                fail("creating the group: %d %s" % (code, body))
            group_id = json.loads(body)["id"]
            times = []
            epochs = []
            for k in range(args.kills):
                leader, epoch = leader_of(replicas, 60)
                epochs.append(epoch)
                survivor = replicas[(leader + 1) % 3]
                email = "failover%03d@bench.test" % k
                replicas[leader].kill()
                killed_at = time.perf_counter()
                code, body = http("POST", survivor.scim_url("/Users"), SCIM_TOKEN,
                                  user_body(email))
                if code != 201:
                    fail("POST after the kill: %d %s" % (code, body))
                patch = json.dumps({
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "add", "path": "members",
                                    "value": [{"value": json.loads(body)["id"]}]}]})
                code, body = http("PATCH", survivor.scim_url("/Groups/" + group_id), SCIM_TOKEN,
                                  patch)
                if code not in (200, 204):
                    fail("PATCH after the kill: %d %s" % (code, body))
                while not emulator.applied_invites({email}):
                    if time.perf_counter() - killed_at > 120:
                        fail("the invite of %s did not land within 120 s of the kill" % email)
                    time.sleep(0.01)
                times.append(time.perf_counter() - killed_at)
                replicas[leader].start()
            final = leader_of(replicas, 60)[1]
            if any(b < a for a, b in zip(epochs, epochs[1:] + [final])):
                fail("an epoch went back: %s" % epochs)
            summary.append("4. fail-over, leader SIGKILLed -> its successor's first write "
                           "landed, %d kills, ha.lease %s: p50 %.2f s, p99 %.2f s, max %.2f s "
                           "(epochs %d..%d)" % (len(times), args.lease, percentile(times, 50),
                                                percentile(times, 99), max(times), epochs[0],
                                                final))
    finally:
        for r in replicas:
            if r.process and r.process.poll() is None:
                r.kill(signal.SIGTERM)
        emulator.stop()
        pg.stop()
    print("\n".join(summary))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
