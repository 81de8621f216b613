"""The property test of the commit protocol (pncp_assets_tests/test_properties.py), run long and random.

    python bench/bench_properties.py [--examples 500]

CI runs a fixed set of examples (`derandomize`); this draws new random ones each time and prints what
was tried: examples, runs, injected crashes, concurrent pairs, records checked, and whether every
invariant held.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tally_file = Path(tmp) / "tally.jsonl"
        env = {**os.environ, "PNCP_HYPOTHESIS_EXAMPLES": str(args.examples), "PNCP_HYPOTHESIS_RANDOM": "1",
               "PNCP_PROPERTY_TALLY": str(tally_file)}
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               "pncp_assets_tests/test_properties.py"], cwd=ROOT, env=env,
                              capture_output=True, text=True)
        elapsed = time.perf_counter() - start
        lines = tally_file.read_text().splitlines() if tally_file.exists() else []
    total: Counter = Counter()
    for line in lines:
        total.update(json.loads(line))
    print(f"examples passed: {len(lines)} of {args.examples} asked, in {elapsed:.0f} s")
    print(f"runs: {total['ok'] + total['crashed'] + total['api error'] + total['final_runs']} "
          f"({total['ok']} finished, {total['crashed']} crashed at an injected point, "
          f"{total['api error']} failed on the API, {total['final_runs']} final)")
    print(f"concurrent pairs: {total['concurrent_pairs']}")
    print(f"records checked in Bronze: {total['records']} in {total['delta_files']} delta files")
    print("invariants: " + ("held in every example" if proc.returncode == 0 else "BROKEN"))
    if proc.returncode != 0:
        print(proc.stdout[-6000:])
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
