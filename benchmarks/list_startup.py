"""How long `cplugins list` takes, next to `import mmdet.models` (what it avoids).

    .venv/bin/python benchmarks/list_startup.py [--repeat 5]

Each command runs in a fresh interpreter; prints median and spread of the wall time.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "cplugins list": [sys.executable, "-m", "cplugins.cli", "list"],
    "python -c 'import torch'": [sys.executable, "-c", "import torch"],
    "python -c 'import cplugins, mmdet.models'": [
        sys.executable, "-c", "import cplugins, mmdet.models"],
}


def time_command(command: list[str], repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        samples.append(time.perf_counter() - start)
    return samples


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    for name, command in COMMANDS.items():
        samples = time_command(command, args.repeat)
        print(f"{name:<45} median {statistics.median(samples):6.3f} s  "
              f"min {min(samples):6.3f} s  max {max(samples):6.3f} s")


if __name__ == "__main__":
    main()
