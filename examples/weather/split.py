"""Split the bundled Seattle weather data into a reference half and a current half with drift injected.

    python examples/weather/split.py OUTDIR

Two random halves of the same four years are the same distribution; into the current half we inject what
breaks models in production: precipitation arrives in inches instead of millimetres (a unit change
upstream), a fifth of the wind readings go missing (a broken sensor feed), and a few temperatures come in
as Fahrenheit. temp_min is left alone: it should stay quiet.
"""

from __future__ import annotations

import csv
import os
import random
import sys

DATA = os.path.join(os.path.dirname(__file__), "..", "data", "seattle-weather.csv")


def main(outdir: str) -> None:
    os.makedirs(outdir, exist_ok=True)
    with open(DATA, newline="") as handle:
        rows = list(csv.DictReader(handle))
    rng = random.Random(7)
    rng.shuffle(rows)
    half = len(rows) // 2
    reference, current = rows[:half], [dict(row) for row in rows[half:]]
    for row in current:
        row["precipitation"] = f"{float(row['precipitation']) / 25.4:.3f}"
        if rng.random() < 0.2:
            row["wind"] = ""
        if rng.random() < 0.3:
            row["temp_max"] = f"{float(row['temp_max']) * 9 / 5 + 32:.1f}"
    for name, part in (("reference.csv", reference), ("current.csv", current)):
        with open(os.path.join(outdir, name), "w", newline="") as handle:
            writer = csv.DictWriter(handle, list(rows[0]))
            writer.writeheader()
            writer.writerows(part)
    print(f"{outdir}/reference.csv: {len(reference)} rows; {outdir}/current.csv: {len(current)} rows "
          "(precipitation in inches, 20% of wind missing, 30% of temp_max in Fahrenheit)")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "demo-out")
