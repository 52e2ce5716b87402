"""Ray Serve's modules are imported here once, quietly: Ray 2.60 uses pydantic APIs deprecated in 2.0 and
warns about them at import, which would bury the tests' own warnings. Without Ray installed (the ``ray``
extra), each test module of this folder skips (``pytest.importorskip``)."""

from __future__ import annotations

import contextlib
import warnings

with contextlib.suppress(ImportError), warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import ray.serve  # noqa: F401
    import ray.serve._private.replica  # noqa: F401
