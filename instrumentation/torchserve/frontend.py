"""Queue time from TorchServe's Java frontend, read from its metrics API, for ``servewatch.inference.queue.time``.

Usage::

    from servewatch.instrumentation import observe_queue_time
    from servewatch.instrumentation.torchserve.frontend import QueueTimeBridge

    observe_queue_time(QueueTimeBridge("churn").read, framework="torchserve")   # a worker of model "churn"

How long a request waited for a worker exists only in the frontend: it counts it, per model, in the
cumulative counter ``ts_queue_latency_microseconds``, which its metrics API serves when
``metrics_mode=prometheus`` (and ``enable_metrics_api`` is not ``false``, its default). At each metric
collection one worker per model reads ``<metrics_address>/metrics?name[]=ts_queue_latency_microseconds``,
sums the model's series over its versions and hands the cumulative seconds to the instrumentation, which adds
the increases to ``servewatch.inference.queue.time`` (the first reading is the baseline).

Where the metrics API is (:func:`metrics_url`), first match wins:

1. ``SERVEWATCH_TORCHSERVE_METRICS_URL``: the frontend's metrics address (``http://127.0.0.1:8082``), or
   ``none`` to turn the bridge off;
2. the frontend's own configuration, as TorchServe reads it: the file in ``TS_CONFIG_FILE``, else the
   ``-f`` argument of the frontend process (the worker's parent), else ``config.properties`` in the
   frontend's working directory; with ``enable_envvars_config=true``, ``TS_METRICS_MODE`` and
   ``TS_METRICS_ADDRESS`` override it. Defaults as TorchServe's: ``metrics_mode=log`` (no bridge),
   ``metrics_address=http://127.0.0.1:8082``; a wildcard host (``0.0.0.0``) is read on the loopback address;
   an ``https`` address is verified against the system's certificates.

The first reading is the baseline, so queue time counts from the first metric collection after a worker's
first request (``OTEL_METRIC_EXPORT_INTERVAL``); a read that fails is counted as ``queue_time`` in
``servewatch.instrumentation.errors`` and tried again at the next collection.

One worker per model reads it: each worker of a model tries a non-blocking ``flock`` on a lock file named
after the metrics address and the model, and the one holding it reports (when it exits the lock is free and
another worker takes over at its next collection), so adding the series of every worker never counts the
frontend's total twice. On a system without ``fcntl`` every worker reports. The lock files live in a
directory of the user's own, ``$XDG_RUNTIME_DIR/servewatch`` or else ``<tmp>/servewatch-<uid>``, made with
mode 0700 and used only if it is a real directory of this user that nobody else can write; they are opened
with ``O_NOFOLLOW``, so another local user can neither hold the election nor point the file elsewhere.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import stat
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

from servewatch.instrumentation.exposition import samples
from servewatch.instrumentation.guard import errors

__all__ = ["METRIC", "QueueTimeBridge", "metrics_url", "queue_seconds", "read_properties"]

METRIC = "ts_queue_latency_microseconds"
"""The frontend's cumulative queue-time counter (labels ``model_name``, ``model_version``, ``hostname``)."""
DEFAULT_ADDRESS = "http://127.0.0.1:8082"
TIMEOUT = 2.0
"""Seconds one read of the metrics API may take."""
_OFF = ("none", "off", "false", "0")
_WILDCARDS = ("0.0.0.0", "::", "[::]")

log = logging.getLogger("servewatch.instrumentation")


class QueueTimeBridge:
    """Cumulative queue seconds of one model, read from the frontend by the elected worker of that model."""

    def __init__(self, model: str, *, environ: Mapping[str, str] | None = None, frontend_pid: int | None = None,
                 lock_dir: str | None = None) -> None:
        self.model = model
        self._environ = environ
        self._frontend_pid = frontend_pid
        self._lock_dir = lock_dir
        self._url: str | None = None
        self._discovered = False
        self._lock: Any = None

    @property
    def url(self) -> str | None:
        """The URL read (None: no bridge), discovered on first use."""
        if not self._discovered:
            self._discovered = True
            url, reason = metrics_url(self._environ, self._frontend_pid)
            self._url = _query(url) if url else None
            log.info("servewatch: TorchServe queue time of model %r %s", self.model,
                     f"read from {url} ({reason})" if url else f"not reported: {reason}")
        return self._url

    def read(self) -> dict[str, float]:
        """``{model: cumulative seconds}``; empty when there is no bridge, another worker reports, or the
        frontend has not counted the model yet. Transport errors propagate (the caller counts them)."""
        url = self.url
        if url is None or not self._elected(url):
            return {}
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:  # noqa: S310 - a URL of the operator's
            text = response.read(1 << 20).decode("utf-8", "replace")
        seconds = queue_seconds(text, self.model)
        return {} if seconds is None else {self.model: seconds}

    def close(self) -> None:
        """Give up the election (the lock is also freed when the process exits)."""
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def _elected(self, url: str) -> bool:
        if self._lock is not None:
            return True
        try:
            import fcntl
        except ImportError:  # not a POSIX system: every worker reports
            return True
        digest = hashlib.sha1(f"{url}\0{self.model}".encode(), usedforsecurity=False).hexdigest()[:16]
        path = os.path.join(self._lock_dir or _private_dir(), f"servewatch-torchserve-queue-{digest}.lock")
        flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)
        handle = os.fdopen(os.open(path, flags, 0o600), "r+b")  # held for the life of the process
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._lock = handle
        return True


def _private_dir() -> str:
    """The user's own directory for lock files (see the module docstring); OSError when it is not safe."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    base = runtime if runtime and os.path.isdir(runtime) else tempfile.gettempdir()
    uid = os.getuid()
    path = os.path.join(base, "servewatch" if base == runtime else f"servewatch-{uid}")
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    status = os.lstat(path)
    if not stat.S_ISDIR(status.st_mode) or status.st_uid != uid or status.st_mode & 0o022:
        raise OSError(f"{path} is not a private directory of this user: TorchServe queue time is not read")
    return path


def queue_seconds(text: str, model: str) -> float | None:
    """Seconds of ``ts_queue_latency_microseconds`` for ``model`` in Prometheus text, over all its versions
    (None when the model has no series)."""
    total = None
    for _, labels, value in samples(text, (METRIC,), skipped=_unreadable):
        if labels.get("model_name") == model:
            total = (total or 0.0) + value / 1e6
    return total


def _unreadable(line: str) -> None:
    if line.startswith(METRIC + "{"):
        errors.report("torchserve.queue_time.parse")


def metrics_url(environ: Mapping[str, str] | None = None, frontend_pid: int | None = None) -> tuple[str | None, str]:
    """The frontend's metrics address (see the module docstring) and how it was found, or None and why not."""
    env = os.environ if environ is None else environ
    explicit = env.get("SERVEWATCH_TORCHSERVE_METRICS_URL", "").strip()
    if explicit:
        if explicit.lower() in _OFF:
            return None, "SERVEWATCH_TORCHSERVE_METRICS_URL turns it off"
        return explicit, "SERVEWATCH_TORCHSERVE_METRICS_URL"
    path = _config_file(env, os.getppid() if frontend_pid is None else frontend_pid)
    properties: dict[str, str] = {}
    if path is not None:
        try:
            properties = read_properties(path)
        except OSError as error:
            return None, f"cannot read the frontend's configuration {path}: {error}"
    if properties.get("enable_envvars_config", "").strip().lower() == "true":
        for name in ("metrics_mode", "metrics_address", "enable_metrics_api"):
            if env.get(f"TS_{name.upper()}"):
                properties[name] = env[f"TS_{name.upper()}"]
    source = path or "TorchServe's defaults"
    mode = properties.get("metrics_mode", "log").strip().lower()
    if mode != "prometheus":
        return None, f"metrics_mode is {mode} in {source}; set metrics_mode=prometheus to report it"
    if properties.get("enable_metrics_api", "true").strip().lower() == "false":
        return None, f"enable_metrics_api=false in {source}"
    return _loopback(properties.get("metrics_address", DEFAULT_ADDRESS).strip()), f"metrics_address in {source}"


def read_properties(path: str) -> dict[str, str]:
    """A Java ``.properties`` file: ``key=value`` / ``key: value`` lines, ``#``/``!`` comments, a trailing
    backslash continuing a line, backslash escapes."""
    properties: dict[str, str] = {}
    pending: str | None = None
    with open(path, encoding="utf-8", errors="replace") as handle:
        for raw in handle:
            line = raw.strip()
            if pending is not None:  # a continuation line is never a comment
                line, pending = pending + line, None
            elif not line or line[0] in "#!":
                continue
            if (len(line) - len(line.rstrip("\\"))) % 2:
                pending = line[:-1]
                continue
            match = re.match(r"((?:[^\\:=\s]|\\.)+)\s*[:=\s]\s*(.*)", line)
            if match:
                properties[_unescape(match.group(1))] = _unescape(match.group(2))
    return properties


def _config_file(env: Mapping[str, str], frontend_pid: int) -> str | None:
    """The configuration file the frontend read (TS_CONFIG_FILE, its ``-f`` argument, ./config.properties)."""
    if env.get("TS_CONFIG_FILE"):
        return env["TS_CONFIG_FILE"]
    try:
        with open(f"/proc/{frontend_pid}/cmdline", "rb") as handle:
            argv = [part.decode("utf-8", "replace") for part in handle.read().split(b"\0")]
        cwd = os.readlink(f"/proc/{frontend_pid}/cwd")
    except OSError:
        return None
    if "org.pytorch.serve.ModelServer" not in argv:
        return None
    for flag, value in zip(argv, argv[1:]):
        if flag in ("-f", "--ts-config-file"):
            return os.path.join(cwd, value)
    default = os.path.join(cwd, "config.properties")
    return default if os.path.isfile(default) else None


def _loopback(address: str) -> str:
    parts = urllib.parse.urlsplit(address)
    if parts.hostname in _WILDCARDS or parts.hostname == "::":
        netloc = "127.0.0.1" + (f":{parts.port}" if parts.port else "")
        parts = parts._replace(netloc=netloc)
    return urllib.parse.urlunsplit(parts)


def _query(address: str) -> str:
    """The URL of the queue-time counter alone, from a metrics address (or its ``/metrics`` URL)."""
    base = address.split("?", 1)[0].rstrip("/")
    base = base[: -len("/metrics")] if base.endswith("/metrics") else base
    return base + "/metrics?" + urllib.parse.urlencode({"name[]": METRIC})


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", lambda match: {"n": "\n", "t": "\t"}.get(match.group(1), match.group(1)), text)
