#!/usr/bin/python3
"""The README's "Using it" commands, run as written against the demo's set-up.

    check_readme_commands.py IDSYNC ACCOUNT_EMULATOR SOURCE_DIR

The set-up is the demo's: the example company (examples/idsync.yaml and its
LDIF exports) and the account emulator seeded with examples/account-seed.json,
with the store in a temporary directory. Each command of the README's block
runs in order with its configuration path pointed there, `users.json` read as
examples/account-state.json and `<hash kept elsewhere>` as the head
`idsync status --json` reports; each must end with the exit status the README
states for it (0: done). Exit status 0 when all do, 1 naming those that did
not.
"""
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time


def readme_commands(source_dir):
    text = open(os.path.join(source_dir, "README.md"), encoding="utf-8").read()
    section = text[text.index("## Using it"):]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    return [line.split("#", 1)[0].strip() for line in block.splitlines() if line.strip()]


def main():
    idsync, emulator, source_dir = sys.argv[1:4]
    source_dir = os.path.abspath(source_dir)
    examples = os.path.join(source_dir, "examples")
    with tempfile.TemporaryDirectory(prefix="idsync-readme-") as tmp:
        port_file = os.path.join(tmp, "port")
        token = "readme-token"
        server = subprocess.Popen(
            [emulator, "--listen", "127.0.0.1:0", "--token", token, "--seed",
             os.path.join(examples, "account-seed.json"), "--port-file", port_file],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(100):
                if os.path.exists(port_file) and open(port_file).read().strip():
                    break
                time.sleep(0.1)
            port = open(port_file).read().strip()
            config = open(os.path.join(examples, "idsync.yaml"), encoding="utf-8").read()
            config = config.replace("path: directory.ldif",
                                    "path: " + os.path.join(examples, "directory.ldif"))
            config = config.replace("path: contractors.ldif",
                                    "path: " + os.path.join(examples, "contractors.ldif"))
            config = (f"account:\n  url: http://127.0.0.1:{port}\n"
                      "  token: ${env:IDSYNC_README_TOKEN}\n  retry_for: 10s\n"
                      "  read_retry_for: 10s\n"
                      f"store: sqlite://{tmp}/state.db\n" + config)
            config_path = os.path.join(tmp, "idsync.yaml")
            with open(config_path, "w", encoding="utf-8") as f:
                f.write(config)
            env = dict(os.environ, IDSYNC_README_TOKEN=token)
            env.pop("CREDENTIALS_DIRECTORY", None)
            failures = 0
            for command in readme_commands(source_dir):
                argv = shlex.split(command.replace("<hash kept elsewhere>", "HEAD"))
                argv = [idsync if a == "idsync" else a for a in argv]
                argv = [config_path if a == "/etc/idsync/idsync.yaml" else a for a in argv]
                argv = [os.path.join(examples, "account-state.json") if a == "users.json" else a
                        for a in argv]
                if "HEAD" in argv:
                    status = subprocess.run([idsync, "--config", config_path, "status", "--json"],
                                            capture_output=True, text=True, env=env)
                    argv[argv.index("HEAD")] = json.loads(status.stdout)["audit"]["head"]
                run = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
                if run.returncode != 0:
                    failures += 1
                    print(f"FAIL {command}: exit {run.returncode}\n  " +
                          (run.stdout + run.stderr).strip().replace("\n", "\n  "))
                else:
                    print(f"ok   {command}")
            return 1 if failures else 0
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
