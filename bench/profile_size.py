"""Wire size of one numeric feature at k=200 (target <= 6 KB), for n = 1e3, 1e5, 1e6.

    python bench/profile_size.py

Measured as the growth of an encoded profile per numeric column (so the OTLP framing each column carries is
counted), next to the raw serialized KLL sketch.
"""

from __future__ import annotations

import numpy as np

from servewatch import Profile


def main() -> None:
    rng = np.random.default_rng(0)
    for n in (1_000, 100_000, 1_000_000):
        empty = len(Profile("model-name").to_bytes())
        columns = 8
        profile = Profile.from_data(rng.normal(size=(n, columns)), model="model-name")
        per_column = (len(profile.to_bytes()) - empty) / columns
        sketch = np.mean([len(c.sketch.serialize()) for c in profile.columns.values()])
        verdict = "ok" if per_column <= 6144 else "OVER 6 KB"
        print(f"n={n:>9,}: {per_column:,.0f} bytes per numeric feature on the wire "
              f"(KLL alone {sketch:,.0f}) [{verdict}]")


if __name__ == "__main__":
    main()
