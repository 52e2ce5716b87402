"""Detection quality of compare()'s decision rule: false warnings on undrifted data, and drifts caught.

    python bench/detection_quality.py [--scale 1.0] [--seed 0] [--sizes 120,300] [--no-catches]

A benchmark, not a test: it prints rates, with the targets beside them, and asserts nothing.

1. False alarms. Undrifted windows of n = 100, 120, 180, 300, 1k, 10k, 100k values against references of 1k
   and 100k values, numeric (normal, 0.5% missing) and categorical (12 Zipf-like categories, 0.5% missing),
   each column under the default thresholds (ks, d1, psi / linf, d1, psi) and ``max_missing_ratio: 0.01``.
   One feature evaluation = one column of one window; a false alarm = severity warning or worse. Each
   profile holds 4 independent numeric and 4 categorical columns, each with its own reference sample. Small
   windows get many repetitions, huge ones few: beside each rate is its one-sided 95% upper confidence
   bound (Clopper-Pearson; about 3/evaluations where no false alarm was seen), the resolution it reached.
   The same reports are also judged by the old rule (thresholds on the raw values, rules on the raw
   ratios), for comparison. ``--sizes 100,120 --scale 4 --no-catches`` resolves the small windows finer.
2. Catches. Drifted windows of n = 500, 1k, 5k against a 100k reference (and 1k, for information): an
   instantaneous mean shift, a gradual one (the shift ramps across the window), a periodic one (the window
   spans half a seasonal period: the mean rises to its peak and back), a temporary burst (half the window
   shifted twice as far), each sized so that the population KS is about 0.13; missing values 3 points
   above a 1% rule (4%) and above a 5% rule (8%); a new category at 5% of the values. For the distribution
   drifts the catch rate is given over the windows whose exact KS (scipy, raw data) is >= 0.13, the
   target's definition, and over all windows. Target: every practical drift caught within one window at n >= 500.
"""

from __future__ import annotations

import argparse
import math
import time
from collections import Counter

import numpy as np
from scipy.stats import beta, ks_2samp

from servewatch import Profile
from servewatch.detectors import compare, worst_severity
from servewatch.spec import parse_spec

COLUMNS = 4
SIZES = (100, 120, 180, 300, 1_000, 10_000, 100_000)
REPEATS = {100: 1500, 120: 1500, 180: 1200, 300: 1200, 1_000: 500, 10_000: 40, 100_000: 6}
"""Windows per (size, reference); each window holds 2 * COLUMNS feature evaluations."""
REFERENCES = (1_000, 100_000)
CATEGORIES = np.array([f"c{i:02d}" for i in range(12)])
SHARES = 1.0 / np.arange(1, 13) ** 0.9
SHARES /= SHARES.sum()  # 21% .. 2.3%
MISSING = 0.005
SHIFT = 0.3274  # mean shift of a unit normal whose population KS is 0.13: 2 Phi(d/2) - 1 = 0.13
TARGET_FALSE = 0.001

SPEC = parse_spec({"models": [{"name": "m", "features": [
    *({"name": f"x{i}", "rules": {"max_missing_ratio": 0.01}} for i in range(COLUMNS)),
    *({"name": f"c{i}", "type": "categorical", "rules": {"max_missing_ratio": 0.01}} for i in range(COLUMNS)),
]}]}).model("m")


def numeric(rng: np.random.Generator, n: int, shift: np.ndarray | float = 0.0, missing: float = MISSING) -> np.ndarray:
    values = rng.normal(size=n) + shift
    values[rng.random(n) < missing] = np.nan
    return values


def categorical(rng: np.random.Generator, n: int, new: float = 0.0, missing: float = MISSING) -> list[object]:
    values = rng.choice(CATEGORIES, n, p=SHARES).astype(object)
    values[rng.random(n) < new] = "brand-new"
    values[rng.random(n) < missing] = None
    return list(values)


def window(rng: np.random.Generator, n: int, shift: np.ndarray | float = 0.0, missing: float = MISSING,
           new: float = 0.0) -> tuple[Profile, dict[str, np.ndarray]]:
    raw = {f"x{i}": numeric(rng, n, shift, missing) for i in range(COLUMNS)}
    cats = {f"c{i}": categorical(rng, n, new) for i in range(COLUMNS)}
    return Profile.from_data({**raw, **cats}, model="m", spec=SPEC), raw


def old_severity(column, thresholds) -> str:  # type: ignore[no-untyped-def]
    """The rule before noise levels: thresholds on the raw values, ratio rules on the raw ratios."""
    severities = [thresholds[name].severity(stat.value) for name, stat in column.statistics.items()
                  if name in thresholds]
    severities += ["warning" for rule in column.rules.values()
                   if rule.value is not None and rule.limit is not None and rule.value > rule.limit]
    return worst_severity(severities)


def alarmed(severity: str) -> bool:
    return severity in ("warning", "critical")


def false_alarms(rng: np.random.Generator, scale: float, sizes: tuple[int, ...] = SIZES) -> None:
    print("1. False warnings on undrifted data, per feature evaluation (target <= 0.1% at every n >= 100)")
    print("   (closest: the largest value / max(noise, warning level) of any deciding statistic; >= 1 alarms)")
    print(f"{'reference':>9} {'n':>7} {'kind':<11} {'evals':>6} {'new rule':>9} {'95% up':>8} {'old rule':>9}"
          f"  {'median noise ks/d1/psi (linf)':<30} {'closest':>7}  verdict")
    thresholds = SPEC.thresholds
    deciders: Counter[str] = Counter()
    for ref_n in REFERENCES:
        reference, _raw = window(rng, ref_n)
        for n in sizes:
            repeats = max(2, int(REPEATS.get(n, 100) * scale))
            counts = {kind: [0, 0, 0] for kind in ("numeric", "categorical")}  # evals, new, old
            noises: dict[str, list[tuple[float, ...]]] = {"numeric": [], "categorical": []}
            closest = {"numeric": 0.0, "categorical": 0.0}
            for _ in range(repeats):
                report = compare(reference, window(rng, n)[0], SPEC)
                for column in report.columns.values():
                    kind = column.kind
                    counts[kind][0] += 1
                    counts[kind][1] += alarmed(column.severity)
                    counts[kind][2] += alarmed(old_severity(column, thresholds))
                    names = ("ks", "d1", "psi") if kind == "numeric" else ("linf", "d1", "psi")
                    noises[kind].append(tuple(column.statistics[name].noise or 0.0 for name in names))
                    for name in names:
                        stat = column.statistics[name]
                        if stat.value is not None:
                            level = max(stat.noise or 0.0, thresholds[name].warning or 0.0)
                            closest[kind] = max(closest[kind], stat.value / level)
                            if alarmed(stat.severity(thresholds[name])):
                                deciders[f"{kind} {name}"] += 1
                    deciders.update(f"{kind} {rule.rule} rule" for rule in column.rules.values() if rule.violated)
            for kind, (evals, new, old) in counts.items():
                rate = new / evals
                upper = float(beta.ppf(0.95, new + 1, evals - new))  # one-sided 95% (Clopper-Pearson)
                noise = "/".join(f"{value:.3f}" for value in np.median(np.array(noises[kind]), axis=0))
                verdict = "ok" if rate <= TARGET_FALSE else "OVER TARGET"
                print(f"{ref_n:>9,} {n:>7,} {kind:<11} {evals:>6} {rate:>9.3%} {upper:>8.2%} {old / evals:>9.2%}"
                      f"  {noise:<30} {closest[kind]:>7.2f}  {verdict}")
    print("   false warnings by what decided them:", ", ".join(f"{name} {count}" for name, count in
                                                         sorted(deciders.items())) or "none")


def drifted(kind: str, n: int) -> dict[str, np.ndarray | float]:
    position = np.arange(n) / n
    if kind == "instantaneous":
        return {"shift": SHIFT}
    if kind == "gradual":  # ramps from 0 to twice the shift across the window
        return {"shift": 2 * SHIFT * position}
    if kind == "periodic":  # the window spans half a seasonal period: the mean rises to its peak and back
        return {"shift": 1.2 * SHIFT * math.pi / 2 * np.sin(math.pi * position)}
    if kind == "temporary":  # half the window, twice as far
        return {"shift": np.where((position > 0.25) & (position < 0.75), 2 * SHIFT, 0.0)}
    raise ValueError(kind)


def catches(rng: np.random.Generator, scale: float) -> None:
    print("\n2. Drifts caught within one window (target: every practical drift at n >= 500)")
    print(f"{'reference':>9} {'n':>6} {'drift':<26} {'windows':>7} {'KS>=.13':>8} {'caught (KS>=.13)':>17}"
          f" {'caught (all)':>13} {'old rule (all)':>15}")
    repeats = max(2, int(40 * scale))
    thresholds = SPEC.thresholds
    for ref_n in (100_000, 1_000):
        reference, ref_raw = window(rng, ref_n)
        for n in (500, 1_000, 5_000):
            for kind in ("instantaneous", "gradual", "periodic", "temporary"):
                practical = caught_practical = caught = old = total = 0
                for _ in range(repeats):
                    profile, raw = window(rng, n, **drifted(kind, n))
                    report = compare(reference, profile, SPEC)
                    for i in range(COLUMNS):
                        column = report.columns[f"x{i}"]
                        a, b = ref_raw[f"x{i}"], raw[f"x{i}"]
                        exact = ks_2samp(a[~np.isnan(a)], b[~np.isnan(b)]).statistic
                        hit = alarmed(column.severity)
                        total += 1
                        caught += hit
                        old += alarmed(old_severity(column, thresholds))
                        if exact >= 0.13:
                            practical += 1
                            caught_practical += hit
                share = f"{caught_practical / practical:.1%}" if practical else "-"
                print(f"{ref_n:>9,} {n:>6,} {kind + ' shift':<26} {total:>7} {practical / total:>8.0%} {share:>17}"
                      f" {caught / total:>13.1%} {old / total:>15.1%}")
            for label, drift, names, rule in (
                    ("missing 4% (rule 1%)", {"missing": 0.04}, "x", None),
                    ("missing 8% (rule 5%)", {"missing": 0.08}, "x", 0.05),
                    ("new category at 5%", {"new": 0.05}, "c", None)):
                spec = SPEC if rule is None else parse_spec({"models": [{"name": "m", "features": [
                    {"name": f"x{i}", "rules": {"max_missing_ratio": rule}} for i in range(COLUMNS)]}]}).model("m")
                caught = old = total = 0
                for _ in range(repeats):
                    report = compare(reference, window(rng, n, **drift)[0], spec)
                    for i in range(COLUMNS):
                        column = report.columns[f"{names}{i}"]
                        total += 1
                        caught += alarmed(column.severity)
                        old += alarmed(old_severity(column, thresholds))
                print(f"{ref_n:>9,} {n:>6,} {label:<26} {total:>7} {'':>8} {'':>17} {caught / total:>13.1%}"
                      f" {old / total:>15.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every repetition count")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="window sizes of part 1")
    parser.add_argument("--no-catches", action="store_true", help="skip part 2")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    start = time.perf_counter()
    false_alarms(rng, args.scale, tuple(int(size) for size in args.sizes.split(",")))
    if not args.no_catches:
        catches(rng, args.scale)
    print(f"\n({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
