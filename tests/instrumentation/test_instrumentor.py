"""The framework instrumentor base: deferred patching on import, guarded, reversible, inert until a call."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from servewatch.instrumentation import ServewatchInstrumentor, errors, observe, runtime


@pytest.fixture
def framework(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A made-up framework module on sys.path, not imported yet."""
    name = f"fakeserve_{abs(hash(tmp_path)) % 10**8}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent("""
        class Service:
            def predict(self, batch):
                if batch == "fail":
                    raise RuntimeError("model error")
                return [x * 2 for x in batch]
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def make_instrumentor(module: str, calls: list[Any]) -> ServewatchInstrumentor:
    def predict(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
        calls.append(args)
        return observe(wrapped, args, kwargs, framework="fakeserve", model="tiny")

    class FakeInstrumentor(ServewatchInstrumentor):
        framework = "fakeserve"
        instruments = ("fakeserve >= 1",)

        def _patch(self, **kwargs: Any) -> None:
            self.wrap(module, "Service.predict", predict)
            self.wrap(module, "Service.missing", predict)      # a target that does not exist: counted

    return FakeInstrumentor()


def test_patch_applies_on_import_and_uninstrument_restores(framework: str, spool: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []
    instrumentor = make_instrumentor(framework, calls)
    assert instrumentor.instrumentation_dependencies() == ("fakeserve >= 1",)
    instrumentor.instrument(skip_dep_check=True)
    try:
        assert framework not in sys.modules                      # instrumenting imports nothing
        module = __import__(framework)
        assert module.Service().predict([1, 2]) == [2, 4] and calls == [([1, 2],)]
        with pytest.raises(RuntimeError, match="model error"):   # the framework's exception, untouched
            module.Service().predict("fail")
        assert errors.counts() == {"fakeserve.instrument": 1}
        outcomes = runtime.active().recorder.states()[0].stats.outcomes
        assert (outcomes["ok"].requests, outcomes["error"].requests) == (1, 1)
    finally:
        instrumentor.uninstrument()
    assert module.Service().predict([3]) == [6] and len(calls) == 2


def test_disabled_patches_nothing(framework: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERVEWATCH_DISABLED", "true")
    calls: list[Any] = []
    instrumentor = make_instrumentor(framework, calls)
    instrumentor.instrument(skip_dep_check=True)
    try:
        module = __import__(framework)
        assert module.Service().predict([1]) == [2] and calls == []
    finally:
        instrumentor.uninstrument()


def test_a_failing_patch_is_counted_not_raised() -> None:
    errors.reset()

    class Broken(ServewatchInstrumentor):
        framework = "broken"

        def _patch(self, **kwargs: Any) -> None:
            raise AttributeError("the framework changed")

    Broken().instrument(skip_dep_check=True)
    Broken().uninstrument()
    assert errors.counts() == {"broken.instrument": 1}


def test_a_wrapper_named_by_path_is_imported_with_the_framework(framework: str, tmp_path: Path, spool: Path) -> None:
    hooks = f"{framework}_hooks"
    (tmp_path / f"{hooks}.py").write_text(textwrap.dedent("""
        from servewatch.instrumentation import observe

        def predict(wrapped, instance, args, kwargs):
            return observe(wrapped, args, kwargs, framework="fakeserve", model="named")
    """))

    class Named(ServewatchInstrumentor):
        framework = "fakeserve"

        def _patch(self, **kwargs: Any) -> None:
            self.wrap(framework, "Service.predict", f"{hooks}:predict")

    instrumentor = Named()
    instrumentor.instrument(skip_dep_check=True)
    try:
        assert hooks not in sys.modules                          # instrumenting imports not even the hooks
        module = __import__(framework)
        assert hooks in sys.modules and module.Service().predict([1]) == [2]
        assert [state.name for state in runtime.active().recorder.states()] == ["named"] and errors.counts() == {}
    finally:
        instrumentor.uninstrument()
        sys.modules.pop(hooks, None)
    assert not hasattr(module.Service.predict, "__wrapped__")


def test_a_failing_uninstrument_is_counted_not_raised() -> None:
    errors.reset()

    class Stubborn(ServewatchInstrumentor):
        framework = "stubborn"

        def _patch(self, **kwargs: Any) -> None:
            pass

        def _uninstrument(self, **kwargs: Any) -> None:
            super()._uninstrument(**kwargs)
            raise RuntimeError("cannot undo")

    instrumentor = Stubborn()
    instrumentor.instrument(skip_dep_check=True)
    instrumentor.uninstrument()
    assert errors.counts() == {"stubborn.instrument": 1} and not instrumentor.is_instrumented_by_opentelemetry
