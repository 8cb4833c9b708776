#!/usr/bin/python3
"""Every YAML block in the README, docs/ and the shipped example files
validates with `idsync validate`.

    check_yaml_blocks.py IDSYNC_BINARY SOURCE_DIR

A block that is a whole configuration is validated as it is. A fragment (a
section such as `safety:`, one source as a list item, a key of a source's
`users`) is put into a small configuration around it: an account, a store in
a temporary directory, one LDIF source and one rule, replaced by whatever the
fragment gives, with a stub scim source for every source a rule names that
the fragment does not define. Placeholders the docs ask the reader to fill
(`sha256:<hash printed by ...>`) become a valid hash. Secrets are not read by
`idsync validate`, so `${file:...}` references need no file.

Exit status 0 when every block validates; 1 naming each block that does not,
with idsync's message.
"""
import copy
import glob
import hashlib
import os
import re
import subprocess
import sys
import tempfile

import yaml

PLACEHOLDER_HASH = re.compile(r"sha256:<[^>]*>")
A_HASH = "sha256:" + "0" * 63 + "1"


def blocks(path):
    """(line, text) of every ```yaml fenced block in a Markdown file."""
    text = open(path, encoding="utf-8").read()
    for m in re.finditer(r"^( *)```yaml\n(.*?)^\1```", text, re.S | re.M):
        indent = len(m.group(1))
        body = "".join(l[indent:] + "\n" for l in m.group(2).splitlines())
        yield text[: m.start()].count("\n") + 2, body


def base(tmp, examples):
    return {
        "account": {"url": "https://account.example/api/v1", "token": "${env:IDSYNC_DOCS_TOKEN}"},
        "store": "sqlite://" + os.path.join(tmp, "state.db"),
        "sources": [{
            "name": "dir", "type": "ldif", "path": os.path.join(examples, "directory.ldif"),
            "users": {"base": "ou=people,dc=corp,dc=example"},
            "groups": {"base": "ou=groups,dc=corp,dc=example"},
        }],
        "permissions": {"catalog": "builtin"},
        "rules": [{"name": "docs-base", "match": {"group": "staff"}, "preset": "qa-analyst"}],
    }


def named_sources(config):
    """The sources the rules and the policy tests' made-up people name."""
    names = set()
    for rule in config.get("rules") or []:
        match = rule.get("match") or {}
        if isinstance(match.get("source"), str):
            names.add(match["source"])
    for test in config.get("tests") or []:
        for group in ((test.get("given") or {}).get("groups") or []):
            if isinstance(group, dict) and isinstance(group.get("source"), str):
                names.add(group["source"])
    return names


def wrap(fragment, tmp, examples):
    """A whole configuration around `fragment` (already parsed)."""
    if isinstance(fragment, dict) and "sources" in fragment and "rules" in fragment:
        return fragment  # a whole configuration
    config = base(tmp, examples)
    if isinstance(fragment, list):  # list items of sources:
        fragment = {"sources": fragment}
    if isinstance(fragment, dict) and set(fragment) <= {"disabled_filter"}:
        config["sources"][0]["users"].update(fragment)
        return config
    for key, value in fragment.items():
        if key == "sources":
            config["sources"] = value
        elif isinstance(value, dict) and isinstance(config.get(key), dict):
            merged = copy.deepcopy(config[key])
            merged.update(value)
            config[key] = merged
        else:
            config[key] = value
    known = {s.get("name") for s in config["sources"]}
    for name in sorted(named_sources(config) - known):
        # A token of its own: one hash may not open two sources.
        token = "sha256:" + hashlib.sha256(name.encode()).hexdigest()
        config["sources"].append({"name": name, "type": "scim", "tokens": [token]})
    if "sources" in fragment and "rules" not in fragment:
        # The base rule must not name a group of a source the fragment removed.
        config["rules"] = [{"name": "docs-base", "match": {"group": "staff"},
                            "preset": "qa-analyst"}]
    if any(s.get("type") == "scim" for s in config["sources"]):
        config.setdefault("server", {}).setdefault("listen", ["127.0.0.1:0"])
    return config


def validate(idsync, config_text, tmp):
    path = os.path.join(tmp, "idsync.yaml")
    with open(path, "w", encoding="utf-8") as f:
        f.write(config_text)
    env = dict(os.environ, IDSYNC_DOCS_TOKEN="docs-token")
    env.pop("CREDENTIALS_DIRECTORY", None)
    run = subprocess.run([idsync, "--config", path, "validate"], capture_output=True, text=True,
                         env=env, timeout=60)
    return run.returncode, run.stdout + run.stderr


def main():
    idsync, source_dir = sys.argv[1], sys.argv[2]
    examples = os.path.join(source_dir, "examples")
    files = [os.path.join(source_dir, "README.md")] + sorted(
        glob.glob(os.path.join(source_dir, "docs", "*.md")))
    cases = []
    for path in files:
        for line, text in blocks(path):
            cases.append((os.path.relpath(path, source_dir) + ":" + str(line), text, False))
    for whole in ("examples/idsync.yaml", "systemd/idsync.yaml.example"):
        path = os.path.join(source_dir, whole)
        cases.append((whole, open(path, encoding="utf-8").read(), True))
    failures = 0
    for where, text, is_file in cases:
        with tempfile.TemporaryDirectory(prefix="idsync-docs-") as tmp:
            text = PLACEHOLDER_HASH.sub(A_HASH, text)
            if is_file:
                # The shipped example reads LDIF files next to it.
                config_text = text.replace("path: directory.ldif",
                                           "path: " + os.path.join(examples, "directory.ldif"))
                config_text = config_text.replace(
                    "path: contractors.ldif", "path: " + os.path.join(examples, "contractors.ldif"))
            else:
                try:
                    fragment = yaml.safe_load(text)
                except yaml.YAMLError as e:
                    print(f"FAIL {where}: not YAML: {e}")
                    failures += 1
                    continue
                config_text = yaml.safe_dump(wrap(fragment, tmp, examples), sort_keys=False)
            code, output = validate(idsync, config_text, tmp)
            if code != 0:
                failures += 1
                print(f"FAIL {where}: idsync validate exited {code}:\n  " +
                      output.strip().replace("\n", "\n  ") + "\n  --- validated:\n  " +
                      config_text.strip().replace("\n", "\n  "))
            else:
                print(f"ok   {where}")
    print(f"{len(cases)} blocks, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
