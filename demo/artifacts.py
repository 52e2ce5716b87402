"""What the demo writes to its output folder, and how to use it afterwards.

Usage::

    spec = write_spec(out, window=6.0)                          # OUT/servewatch.yaml (the embedded spec)
    model = write_model(out, days)                              # OUT/model.json (trained here, in numpy)
    write_reference(out, spec.model("weather"), days, model)    # OUT/reference.pb; the profiles by signal
    written = write_monitoring(spec, out)                       # dashboards/, alerts/ (same generators as
                                                                # `servewatch dashboards` / `servewatch alerts`)
    checks = check_monitoring(written)                          # promtool / amtool where installed
    write_window(out, "instantaneous", window_profiles)         # OUT/windows/instantaneous.pb
    subprocess.run(report_command(out, "instantaneous"))        # servewatch report ... -o OUT/report/...html --png
    print(instructions(out, written, checks))

The layout of ``OUT``: ``servewatch.yaml`` (the spec the demo ran), ``model.json``, ``reference.pb`` (the
training days and the model's answers on them, profiled), ``dashboards/`` (Grafana JSON and the
provisioning YAML), ``alerts/`` (``rules.yml``, ``rules_test.yml``, ``alertmanager.yml``), ``windows/`` (the
detector's stored profiles of each phase's most drifted window), ``report/`` (one HTML and PNG per drift
phase), ``summary.json``, ``state/`` (the detector's SQLite store), ``stack/`` and ``logs/`` (the running
Prometheus / Alertmanager configuration and every process's log).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml

from ..alerts import Config, Receivers, alertmanager_config, dump_yaml, render_rules, rule_tests
from ..dashboards import PROVISIONING_FILE
from ..dashboards import write as write_dashboards
from ..profile import Profile
from ..spec import ModelSpec, Spec, load_spec
from ..wire import encode_profiles
from .weather import Days, WeatherModel

__all__ = ["Monitoring", "check_monitoring", "instructions", "report_command", "write_model", "write_monitoring",
           "write_reference", "write_spec", "write_window"]

MODEL = "weather"


def write_spec(out: Path, window: float) -> Spec:
    """The embedded spec with its window set to ``window`` seconds, written to ``OUT/servewatch.yaml``."""
    document = yaml.safe_load((resources.files("servewatch.demo") / "servewatch.yaml").read_text(encoding="utf-8"))
    for model in document["models"]:
        model["windows"] = [f"{window:g}s"]
    path = out / "servewatch.yaml"
    header = ("# The spec `servewatch demo` ran on (embedded in servewatch.demo, window set for this run).\n"
              "# Rerun the loop by hand: servewatch detect --spec servewatch.yaml --state state\n")
    path.write_text(header + yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return load_spec(path)


def write_model(out: Path, days: Days) -> WeatherModel:
    """Train the model on every day and write it to ``OUT/model.json`` (the server loads it from there)."""
    model = WeatherModel.train(days)
    (out / "model.json").write_text(json.dumps(model.to_dict()), encoding="utf-8")
    return model


def write_reference(out: Path, spec: ModelSpec, days: Days, model: WeatherModel) -> dict[str, Profile]:
    """Profile the training days (``input``) and the model's answers on them (``prediction``) into
    ``OUT/reference.pb``, what ``servewatch reference`` writes from a data file. Returns them by signal."""
    profiles = {
        "input": Profile.from_data(days.rows(days.features), model=spec.name, signal="input", spec=spec),
        "prediction": Profile.from_data(model.predict(days.features), model=spec.name, signal="prediction",
                                        spec=spec),
    }
    (out / "reference.pb").write_bytes(encode_profiles(list(profiles.values())))
    return profiles


@dataclass
class Monitoring:
    """Paths of the generated monitoring configuration."""

    dashboards: list[Path] = field(default_factory=list)
    rules: Path = Path()
    rule_tests: Path = Path()
    alertmanager: Path = Path()

    @property
    def provisioning(self) -> Path:
        return next(path for path in self.dashboards if path.name == PROVISIONING_FILE)


def write_monitoring(spec: Spec, out: Path, config: Config | None = None) -> Monitoring:
    """Dashboards and alerting for ``spec``, as ``servewatch dashboards -o OUT/dashboards`` and
    ``servewatch alerts -o OUT/alerts/rules.yml`` write them (the time scale follows the spec's 1 s bucket,
    so the rules fire within seconds). The Alertmanager example keeps its placeholder webhooks."""
    config = config or Config()
    alerts = out / "alerts"
    alerts.mkdir(parents=True, exist_ok=True)
    written = Monitoring(dashboards=[Path(path) for path in write_dashboards(spec, str(out / "dashboards"), config)],
                         rules=alerts / "rules.yml", rule_tests=alerts / "rules_test.yml",
                         alertmanager=alerts / "alertmanager.yml")
    written.rules.write_text(render_rules(spec, config), encoding="utf-8")
    written.rule_tests.write_text(dump_yaml(rule_tests(spec, config, rule_file="rules.yml")), encoding="utf-8")
    written.alertmanager.write_text(dump_yaml(alertmanager_config(spec, config, Receivers())), encoding="utf-8")
    return written


def check_monitoring(written: Monitoring) -> dict[str, str]:
    """``promtool check rules`` and ``amtool check-config`` on the generated files where the tools are
    installed: command -> "ok" or its error output. (``promtool test rules rules_test.yml`` passes too, but
    takes half a minute of CPU: the alerts package's tests run it.)"""
    checks: dict[str, str] = {}
    promtool, amtool = shutil.which("promtool"), shutil.which("amtool")
    runs = []
    if promtool:
        runs.append([promtool, "check", "rules", written.rules.name])
    if amtool:
        runs.append([amtool, "check-config", written.alertmanager.name])
    for argv in runs:
        label = " ".join([Path(argv[0]).name, *argv[1:]])
        try:
            done = subprocess.run(argv, cwd=written.rules.parent, capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as error:
            checks[label] = str(error)
            continue
        checks[label] = "ok" if done.returncode == 0 else (done.stderr or done.stdout).strip()
    return checks


def write_window(out: Path, name: str, profiles: dict[str, Profile]) -> Path:
    """The detector's stored profiles of one window (by signal), to ``OUT/windows/<name>.pb``."""
    (out / "windows").mkdir(parents=True, exist_ok=True)
    path = out / "windows" / f"{name}.pb"
    path.write_bytes(encode_profiles(list(profiles.values())))
    return path


def report_command(out: Path, name: str) -> list[str]:
    """``servewatch report`` of window ``name`` against the reference: ``OUT/report/<name>.html`` and ``.png``
    (the command line; the demo runs it in its own process while the replay goes on)."""
    (out / "report").mkdir(parents=True, exist_ok=True)
    return [sys.executable, "-m", "servewatch.cli", "report", str(out / "reference.pb"),
            str(out / "windows" / f"{name}.pb"), "--spec", str(out / "servewatch.yaml"), "-o",
            str(out / "report" / f"{name}.html"), "--png"]


def instructions(out: Path, written: Monitoring, checks: dict[str, str]) -> str:
    """How to load what the demo wrote into Grafana, Prometheus and Alertmanager."""
    verdicts = "".join(f"\n    {command}: {result.splitlines()[0] if result else result}"
                       for command, result in checks.items())
    boards = ", ".join(path.name for path in written.dashboards if path.suffix == ".json")
    return f"""\
Load it into your own stack (all generated from {out / 'servewatch.yaml'}):
  Grafana       import {out / 'dashboards'}/*.json ({boards}):
                  Dashboards > New > Import > Upload dashboard JSON file, then pick your Prometheus data source;
                or provision them: copy the folder where Grafana can read it, set options.path in
                  {written.provisioning} to it, and put that file in Grafana's provisioning/dashboards/
  Prometheus    rule_files: [{written.rules}]
                  promtool check rules {written.rules}; promtool test rules {written.rule_tests}
                scrape `servewatch detect`'s /metrics as job "servewatch-detector" with honor_labels: true
  Alertmanager  {written.alertmanager}: set the pager and tickets webhook URLs, then
                  amtool check-config {written.alertmanager}
  Detector      servewatch detect --spec {out / 'servewatch.yaml'} --state {out / 'state'}
  Reports       servewatch report {out / 'reference.pb'} {out / 'windows'}/<phase>.pb \\
                  --spec {out / 'servewatch.yaml'} -o report.html --png
  Checked here:{verdicts or ' (promtool / amtool not installed)'}"""
