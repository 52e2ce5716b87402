"""Peak memory of profiling a 1M-row data file: the chunked readers against reading the whole file at once.

    python bench/reader_memory.py              # 1,000,000 rows; --rows N for another size

Writes a CSV (about 25 MB) and the same rows as Parquet into a temporary folder, then profiles each file in a
fresh process per reader (the peak is reset after the imports, on Linux) and prints the peak RSS, the part of it
above the process's RSS after imports, the wall time, and the ratios chunked / whole. The whole-file
baselines: for CSV, the reader servewatch had before (copied below, as it was: every cell into Python lists);
for Parquet, ``pyarrow.parquet.read_table`` of the whole file, converted the same way as the chunks.
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import subprocess
import sys
import tempfile
import time
from typing import Any

import numpy as np


def whole_csv(path: str) -> dict[str, list[Any]]:
    """The CSV reader before the chunked one (servewatch/dataset.py at 16f7f68), without a spec."""
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        cells: list[list[str]] = [[] for _ in header or ()]
        for row in reader:
            for i in range(len(cells)):
                cells[i].append(row[i] if i < len(row) else "")
    table: dict[str, list[Any]] = {}
    for name, values in zip(header or (), cells):
        numeric = _all_numbers(values)
        table[name] = [_number(cell) for cell in values] if numeric else \
            [cell if cell != "" else None for cell in values]
    return table


def _all_numbers(values: list[str]) -> bool:
    return all(cell == "" or _number(cell) is not cell for cell in values) and any(cell != "" for cell in values)


def _number(cell: str) -> Any:
    if cell == "":
        return None
    try:
        return float(cell)
    except ValueError:
        return cell


def child(mode: str, path: str) -> None:
    """One measurement, in its own process: prints floor KB, peak KB, seconds, rows."""
    from servewatch import Profile
    from servewatch.dataset import read_profiles
    from servewatch.tables import table_columns

    if mode.endswith("parquet"):
        import pyarrow.parquet  # noqa: F401 (its import is part of the floor, not of the read)
    floor = _reset_peak()
    start = time.perf_counter()
    if mode == "whole-csv":
        profile = Profile.from_data(whole_csv(path), model="m")
    elif mode == "whole-parquet":
        import pyarrow.parquet as parquet

        profile = Profile.from_data(table_columns(parquet.read_table(path)), model="m")
    else:
        profile = read_profiles(path, model="m", progress=False).profiles[0]
    seconds = time.perf_counter() - start
    print(floor, _status("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, f"{seconds:.3f}",
          profile.rows)


def _reset_peak() -> int:
    """Reset the process's peak RSS to its current RSS (Linux: clear_refs 5), so the imports' transient peak
    does not hide the read's; returns the current RSS in KB."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return _status("VmRSS")


def _status(field: str) -> int:
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def write_files(folder: str, rows: int) -> tuple[str, str]:
    rng = np.random.default_rng(0)
    amount = rng.gamma(2.0, 30.0, rows).round(2)
    score = rng.random(rows).round(4)
    count = rng.integers(0, 50, rows)
    country = rng.choice(np.array(["US", "DE", "FR", "GB", "IN"]), rows)
    csv_path = os.path.join(folder, "data.csv")
    with open(csv_path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["amount", "score", "count", "country"])
        for start in range(0, rows, 100_000):
            part = slice(start, start + 100_000)
            writer.writerows(zip(amount[part].tolist(), score[part].tolist(), count[part].tolist(),
                                 country[part].tolist()))
    parquet_path = os.path.join(folder, "data.parquet")
    try:
        import pyarrow as pa
        import pyarrow.parquet as parquet
    except ImportError:
        return csv_path, ""
    parquet.write_table(pa.table({"amount": amount, "score": score, "count": count, "country": country}),
                        parquet_path)
    return csv_path, parquet_path


def measure(mode: str, path: str) -> tuple[float, float, float]:
    run = subprocess.run([sys.executable, __file__, "--child", mode, path], capture_output=True, text=True,
                         check=True, timeout=1200)
    floor, peak, seconds, _rows = run.stdout.split()
    return int(floor) / 1024, int(peak) / 1024, float(seconds)  # KB -> MiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--child", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    with tempfile.TemporaryDirectory() as folder:
        csv_path, parquet_path = write_files(folder, args.rows)
        print(f"{args.rows:,} rows: CSV {os.path.getsize(csv_path) / 2**20:.1f} MiB"
              + (f", Parquet {os.path.getsize(parquet_path) / 2**20:.1f} MiB" if parquet_path else
                 " (no pyarrow: Parquet skipped)"))
        for kind, path in (("csv", csv_path), ("parquet", parquet_path)):
            if not path:
                continue
            whole = measure(f"whole-{kind}", path)
            chunked = measure(f"chunked-{kind}", path)
            for name, (floor, peak, seconds) in ((f"whole {kind}", whole), (f"chunked {kind}", chunked)):
                print(f"  {name:>15}: peak RSS {peak:7.1f} MiB ({peak - floor:7.1f} above the {floor:.0f} MiB "
                      f"after imports), {seconds:6.2f} s")
            above = (chunked[1] - chunked[0]) / max(whole[1] - whole[0], 1e-9)
            print(f"  {kind}: chunked / whole peak RSS {chunked[1] / whole[1]:.2f}x, above the floor {above:.3f}x, "
                  f"time {chunked[2] / whole[2]:.2f}x")


if __name__ == "__main__":
    main()
