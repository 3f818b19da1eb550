"""Long fuzzing run of every reader (the suite runs a short one).

Runs ``tests/io/test_fuzz.py`` with ``FUZZ_EXAMPLES`` mutations per reader (default
500). Hypothesis runs derandomized, so a run is reproducible: the same count gives the
same mutations. Prints per reader how many mutated files read and how many were
refused with a WorkbenchError; any other exception, a hang over 10 s, or a crash fails.

Run: ``.venv/bin/python bench/fuzz.py [--examples N] [-k READER]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--examples", type=int, default=500)
    parser.add_argument("-k", default=None, help="only readers matching this pytest -k expression")
    args = parser.parse_args()
    env = {**os.environ, "FUZZ_EXAMPLES": str(args.examples), "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", str(ROOT / "tests/io/test_fuzz.py")]
    if args.k:
        cmd += ["-k", args.k]
    print(f"fuzzing with {args.examples} derandomized mutations per reader")
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    for line in proc.stdout.splitlines():
        if "mutations, outcomes" in line or "passed" in line or "failed" in line or line.startswith("FAILED"):
            print(line.strip())
    if proc.returncode:
        print(proc.stdout[-4000:])
    sys.exit(proc.returncode)


if __name__ == "__main__":
    main()
