"""The public surface: each package's __all__ is sorted, complete and importable."""

from __future__ import annotations

import importlib

import pytest

PACKAGES = ["servewatch", "servewatch.detectors", "servewatch.detectors.command", "servewatch.spec",
            "servewatch.spec_types", "servewatch.profile", "servewatch.wire", "servewatch.wire_limits",
            "servewatch.column", "servewatch.batch", "servewatch.errors", "servewatch.tables",
            "servewatch.datafiles", "servewatch.dataset", "servewatch.progress"]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_sorted_and_importable(name: str) -> None:
    module = importlib.import_module(name)
    exported = list(module.__all__)
    assert exported == sorted(exported), exported
    for symbol in exported:
        assert hasattr(module, symbol), f"{name}.{symbol}"


def test_top_level_api() -> None:
    import servewatch

    assert set(servewatch.__all__) == {"ColumnProfile", "ModelSpec", "Profile", "ProfileError", "ServewatchError",
                                       "Spec", "SpecError", "__version__", "load_spec"}


def test_detectors_api() -> None:
    import servewatch.detectors as detectors

    assert {"compare", "Detector", "ks", "d1", "psi", "js", "hellinger", "wasserstein", "linf", "chi2",
            "cramers_v", "new_category_ratio", "check_rules", "check_volume", "Report", "Statistic"} \
        <= set(detectors.__all__)
