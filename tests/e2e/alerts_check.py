#!/usr/bin/python3
"""Evaluates idsync's alerting rules with promtool against two scrapes of a
running idsyncd's /metrics.

    alerts_check.py RULES BEFORE.prom AFTER.prom EXPECT.json

BEFORE is scraped right after the daemon's first run, AFTER once the test has
made events happen. They become promtool input series: BEFORE's values at
minutes 0-4, AFTER's at 5-10 (a series missing from BEFORE is missing there
too, as Prometheus would see it). EXPECT maps every alert name of RULES to
the label sets it must fire with at minute 10 (an empty list: must not
fire); the labels job="idsync" and instance="idsyncd" are added to every
series. The expected annotations are the rules' own, expanded for each label
set. Exit status: promtool's (0 when every expectation held); 2 for usage.
"""
import json
import os
import re
import subprocess
import sys
import tempfile

import yaml

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)$')
EXTRA = {"job": "idsync", "instance": "idsyncd"}


def samples(path):
    out = {}
    for line in open(path, encoding="utf-8"):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        if not m:
            raise SystemExit(f"{path}: not a sample: {line}")
        name, labels, value = m.group(1), m.group(2) or "{}", m.group(3)
        inner = labels[1:-1]
        extra = ",".join(f'{k}="{v}"' for k, v in EXTRA.items())
        series = name + "{" + (inner + "," if inner else "") + extra + "}"
        out[series] = value
    return out


def expand(template, labels):
    return re.sub(r"\{\{\s*\$labels\.(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), template)


def main():
    if len(sys.argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    rules_path, before_path, after_path, expect_path = sys.argv[1:]
    before, after = samples(before_path), samples(after_path)
    series = []
    for name in sorted(set(before) | set(after)):
        b, a = before.get(name, "_"), after.get(name, "_")
        series.append({"series": name, "values": " ".join([b] * 5 + [a] * 6)})
    series.append({"series": 'up{job="idsync",instance="idsyncd"}', "values": "1x10"})
    rules = yaml.safe_load(open(rules_path, encoding="utf-8"))
    by_name = {r["alert"]: r for g in rules["groups"] for r in g["rules"] if "alert" in r}
    expect = json.load(open(expect_path, encoding="utf-8"))
    missing = sorted(set(by_name) - set(expect))
    if missing:
        print(f"alerts_check.py: no expectation for {missing}", file=sys.stderr)
        return 2
    tests = []
    for alert, label_sets in sorted(expect.items()):
        rule = by_name[alert]
        exp = []
        for labels in label_sets:
            full = dict(labels)
            full.update(rule.get("labels", {}))
            exp.append({"exp_labels": full,
                        "exp_annotations": {k: expand(v, full)
                                            for k, v in rule.get("annotations", {}).items()}})
        tests.append({"eval_time": "10m", "alertname": alert, "exp_alerts": exp})
    with tempfile.TemporaryDirectory(prefix="idsync-alerts-") as tmp:
        test_path = os.path.join(tmp, "test.yml")
        with open(test_path, "w", encoding="utf-8") as f:
            yaml.safe_dump({"rule_files": [os.path.abspath(rules_path)],
                            "evaluation_interval": "1m",
                            "tests": [{"interval": "1m", "input_series": series,
                                       "alert_rule_test": tests}]}, f, sort_keys=False)
        run = subprocess.run(["promtool", "test", "rules", test_path], capture_output=True,
                             text=True)
        sys.stdout.write(run.stdout + run.stderr)
        return run.returncode


if __name__ == "__main__":
    sys.exit(main())
