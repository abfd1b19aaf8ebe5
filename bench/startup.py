"""Start-up cost of `skinctl --help` against a bare interpreter, measured in the same run.

    python bench/startup.py [--runs 15]

Prints the median wall time of each, the ratio, and skinctl's own cost (the difference);
the target is under 0.5 s of its own on the 2-core build machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time


def median_seconds(command: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()

    script = shutil.which("skinctl", path=os.path.dirname(sys.executable)) or shutil.which(
        "skinctl"
    )
    skinctl = [script] if script else [sys.executable, "-m", "skinctl"]
    baseline = median_seconds([sys.executable, "-c", "pass"], args.runs)
    results = {"skinctl --help": median_seconds([*skinctl, "--help"], args.runs)}
    results["skinctl db --help"] = median_seconds([*skinctl, "db", "--help"], args.runs)
    print(f"python -c pass      median {baseline * 1000:7.1f} ms   (baseline)")
    for name, seconds in results.items():
        own = seconds - baseline
        verdict = "ok" if own < 0.5 else "OVER the 0.5 s target"
        print(
            f"{name:<19} median {seconds * 1000:7.1f} ms   ratio {seconds / baseline:5.1f}x   "
            f"own {own * 1000:6.1f} ms  {verdict}"
        )


if __name__ == "__main__":
    main()
