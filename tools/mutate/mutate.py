#!/usr/bin/env python3
"""Mutation testing: apply one small bug at a time (tools/mutate/mutations.py), rebuild incrementally, run the tests,
record whether they caught it, restore the file. Every mutation must be caught.

    python3 tools/mutate/mutate.py [--build-dir build] [--only id1,id2] [--jobs 2] [--json out.json] [--filter F]
    python3 tools/mutate/mutate.py --check      # every snippet still found exactly once (no build; seconds)
    python3 tools/mutate/mutate.py --skip-stale # CI: run the mutations whose snippet is still found; name the others
                                                # loudly; fail if fewer than --min-mutations (20) remain
    python3 tools/mutate/mutate.py --list

The file is always restored (also on Ctrl-C or a failed build); a backup is kept under <build-dir>/mutate-backup/
while a mutation is applied, and a later run restores it first if a previous run was killed hard. After each
mutation the restored file gets a fresh mtime, so the next build recompiles it; the script ends with a clean
rebuild. Exit status: 0 when every mutation was caught, 1 when one survived, 2 on a stale snippet or a mutation that
does not compile.
"""
import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mutations import MUTATIONS  # noqa: E402

SUITES = {
    "unit": ("tests/hylora_unit_tests", "hylora_unit_tests"),
    "text": ("tests/text/hylora_text_tests", "hylora_text_tests"),
}


def check_snippets(muts):
    bad = []
    for m in muts:
        path = os.path.join(ROOT, m["file"])
        n = open(path, encoding="utf-8").read().count(m["find"]) if os.path.exists(path) else -1
        if n != 1:
            bad.append(f"{m['id']}: snippet found {n} times in {m['file']} (re-target `find` in tools/mutate/mutations.py)")
    return bad


class Restorer:
    """Keeps the original bytes (in memory and on disk) while a mutation is applied; restores on exit or signal."""

    def __init__(self, backup_dir):
        self.backup_dir = backup_dir
        self.current = None

    def recover_previous_run(self):
        meta = os.path.join(self.backup_dir, "file.json")
        if os.path.exists(meta):
            with open(meta) as f:
                rel = json.load(f)["file"]
            shutil.copyfile(os.path.join(self.backup_dir, "original"), os.path.join(ROOT, rel))
            os.remove(meta)
            print(f"restored {rel} left mutated by a previous run", flush=True)

    def apply(self, rel, original, mutated):
        os.makedirs(self.backup_dir, exist_ok=True)
        with open(os.path.join(self.backup_dir, "original"), "wb") as f:
            f.write(original)
        with open(os.path.join(self.backup_dir, "file.json"), "w") as f:
            json.dump({"file": rel}, f)
        self.current = (rel, original)
        with open(os.path.join(ROOT, rel), "wb") as f:
            f.write(mutated)

    def restore(self):
        if self.current:
            rel, original = self.current
            with open(os.path.join(ROOT, rel), "wb") as f:
                f.write(original)
            os.utime(os.path.join(ROOT, rel))  # newer than the mutated object file: the next build recompiles
            self.current = None
            meta = os.path.join(self.backup_dir, "file.json")
            if os.path.exists(meta):
                os.remove(meta)


def run(cmd, timeout, env=None):
    t0 = time.time()
    try:
        p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)
        return p.returncode, p.stdout + p.stderr, time.time() - t0
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        return 124, out, time.time() - t0


def build(build_dir, jobs, targets):
    cmd = ["cmake", "--build", build_dir, "-j", str(jobs)]
    for t in targets:
        cmd += ["--target", t]
    return run(cmd, 3600)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", default="build")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--only", default="")
    ap.add_argument("--json", default="")
    ap.add_argument("--timeout", type=int, default=900, help="seconds per test run")
    ap.add_argument("--filter", default="", help="gtest filter for the unit suite, e.g. the black-box tests only: "
                    "'Fixtures/Golden.*:Fixtures/LoraAblation.*:GoldenFixtures.*'")
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--skip-stale", action="store_true")
    ap.add_argument("--min-mutations", type=int, default=20)
    ap.add_argument("--list", action="store_true")
    args = ap.parse_args()
    only = set(filter(None, args.only.split(",")))
    muts = [m for m in MUTATIONS if not only or m["id"] in only]
    if only - {m["id"] for m in muts}:
        sys.exit(f"unknown mutation ids: {sorted(only - {m['id'] for m in muts})}")
    if args.list:
        for m in muts:
            print(f"{m['id']:44s} {m['file']:36s} {m['what']}")
        return
    bad = check_snippets(muts)
    if bad:
        print(f"STALE MUTATIONS ({len(bad)}: the code moved; re-target `find` in tools/mutate/mutations.py):\n  "
              + "\n  ".join(bad), flush=True)
        if not args.skip_stale:
            sys.exit(2)
        stale = {b.split(":", 1)[0] for b in bad}
        muts = [m for m in muts if m["id"] not in stale]
        if len(muts) < args.min_mutations:
            sys.exit(f"only {len(muts)} mutations still apply (at least {args.min_mutations} required)")
    if args.check:
        print(f"all {len(muts)} snippets found exactly once")
        return

    build_dir = os.path.join(ROOT, args.build_dir)
    restorer = Restorer(os.path.join(build_dir, "mutate-backup"))
    restorer.recover_previous_run()

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    targets = sorted({SUITES[m["suite"]][1] for m in muts} | {"hylora"})
    rc, out, _ = build(build_dir, args.jobs, targets)
    if rc != 0:
        sys.exit("the unmutated tree does not build:\n" + out[-3000:])
    env = dict(os.environ, OMP_WAIT_POLICY="passive", GTEST_COLOR="no")
    results = []
    try:
        for i, m in enumerate(muts):
            path = os.path.join(ROOT, m["file"])
            original = open(path, "rb").read()
            text = original.decode("utf-8")
            mutated = text.replace(m["find"], m["replace"], 1).encode("utf-8")
            restorer.apply(m["file"], original, mutated)
            try:
                rc, out, tb = build(build_dir, args.jobs, ["hylora", SUITES[m["suite"]][1]])
                if rc != 0:
                    status, caught_by, tt = "BUILD-ERROR", out[-1500:], 0.0
                else:
                    binary = os.path.join(build_dir, SUITES[m["suite"]][0])
                    cmd = [binary, "--gtest_fail_fast", "--gtest_brief=1"]
                    if args.filter and m["suite"] == "unit":
                        cmd.append("--gtest_filter=" + args.filter)
                    rc, out, tt = run(cmd, args.timeout, env)
                    failed = [f.rstrip(",") for f in re.findall(r"\[  FAILED  \] (\S+)", out)]
                    if rc == 0:
                        status, caught_by = "SURVIVED", ""
                    else:
                        status = "caught"
                        caught_by = failed[0] if failed else ("timeout" if rc == 124 else f"exit {rc} (crash)")
            finally:
                restorer.restore()
            results.append(dict(id=m["id"], file=m["file"], what=m["what"], status=status, caught_by=caught_by,
                                build_s=round(tb, 1), test_s=round(tt, 1)))
            print(f"[{i + 1}/{len(muts)}] {status:11s} {m['id']:44s} build {tb:5.0f}s test {tt:5.0f}s  "
                  f"{caught_by if status == 'caught' else m['what']}", flush=True)
    except KeyboardInterrupt:
        restorer.restore()
        print("interrupted: file restored", flush=True)
        raise
    finally:
        restorer.restore()
        build(build_dir, args.jobs, targets)  # leave the build matching the sources

    caught = sum(r["status"] == "caught" for r in results)
    print(f"\nkill rate: {caught}/{len(results)}")
    for r in results:
        if r["status"] != "caught":
            print(f"  {r['status']}: {r['id']} ({r['file']}): {r['what']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"caught": caught, "total": len(results), "results": results}, f, indent=1)
    if any(r["status"] == "BUILD-ERROR" for r in results):
        sys.exit(2)
    sys.exit(0 if caught == len(results) else 1)


if __name__ == "__main__":
    main()
