"""`make bench`: every benchmark in turn (each prints its own detail), then one table of the
headline figures, each beside the baseline measured in the same run."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._support import SUMMARY_ENV  # noqa: E402

BENCHES = {
    "ingest": ["bench/ingest.py"],
    "dispatch": ["bench/dispatch.py"],
    "redis": ["bench/redis_scripts.py"],
    "media": ["bench/media.py"],
}
ROOT = Path(__file__).resolve().parents[1]


def _number(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    shown = f"{value:,.0f}" if abs(value) >= 10 else f"{value:.1f}"
    return f"{shown} {unit}".strip()


def _float(value: object) -> float | None:
    return float(value) if isinstance(value, float | int) else None


def print_table(rows: list[dict[str, object]]) -> None:
    print(f"\n{'figure':<56} {'measured':>16}  {'baseline (same run)':<40} note")
    for row in rows:
        value = _float(row["value"])
        base, base_value = row.get("baseline"), _float(row.get("baseline_value"))
        measured = _number(value, str(row["unit"]))
        baseline = ""
        if base:
            ratio = f" ({value / base_value:.0%})" if value is not None and base_value else ""
            baseline = f"{base}: {_number(base_value)}{ratio}"
        print(f"{row['figure']!s:<56} {measured:>16}  {baseline:<40} {row.get('note') or ''}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only", default=",".join(BENCHES), help=f"comma-separated subset of {list(BENCHES)}"
    )
    args = parser.parse_args()
    chosen = [name for name in args.only.split(",") if name]
    unknown = sorted(set(chosen) - set(BENCHES))
    if unknown:
        parser.error(f"unknown benchmarks: {', '.join(unknown)}")
    with tempfile.NamedTemporaryFile("r", suffix=".jsonl") as summary:
        env = {**os.environ, SUMMARY_ENV: summary.name}
        failed = []
        started = time.monotonic()
        for name in chosen:
            print(f"\n=== {name}: python {' '.join(BENCHES[name])}", flush=True)
            result = subprocess.run([sys.executable, *BENCHES[name]], cwd=ROOT, env=env)
            if result.returncode != 0:
                failed.append(name)
        rows = [json.loads(line) for line in summary.read().splitlines() if line.strip()]
    load = os.getloadavg()[0]
    print(
        f"\nbench summary: {os.cpu_count()} CPUs, load {load:.1f} at the end, "
        f"{time.monotonic() - started:.0f} s"
    )
    print_table(rows)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
        raise SystemExit(1)


if __name__ == "__main__":
    main()
