"""The file spool: the same bytes as the network, whole files only, failures kept pending and bounded."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from servewatch.exporters.resource import process_resource
from servewatch.exporters.spool import (
    MAX_NAME_LENGTH,
    SpoolName,
    SpoolProfileExporter,
    parse_spool_name,
    read_spool,
    spool_name,
)

from servewatch.errors import ProfileError
from servewatch.profile import Profile
from servewatch.wire import decode_request, parse_request


def profile(model: str = "fraud", signal: str = "input", sequence: int = 1, end: float = 1_700_000_060.0) -> Profile:
    made = Profile.from_data(np.random.default_rng(sequence).normal(size=(50, 2)), model=model, signal=signal)
    made.start, made.end, made.producer, made.sequence = end - 60, end, "replica-1", sequence
    return made


def test_each_profile_is_one_file_holding_an_otlp_request(tmp_path: Path) -> None:
    spool = SpoolProfileExporter(tmp_path / "spool", process_resource(framework="python", instance_id="replica-1"))
    spool.export([profile(), profile(signal="prediction"), profile(model="odd/name with spaces", sequence=2)])
    files = sorted(path.name for path in (tmp_path / "spool").iterdir())
    assert len(files) == 3 and all(name.endswith(".pb") and not name.startswith(".") for name in files)
    assert "1700000060000-replica%2D1-odd%2Fname%20with%20spaces-input-00000002.pb" in files
    read = [(p.model, p.signal, p.sequence, p.rows) for _, p in read_spool(tmp_path / "spool")]
    assert sorted(read) == [("fraud", "input", 1, 50), ("fraud", "prediction", 1, 50),
                            ("odd/name with spaces", "input", 2, 50)]
    data = (tmp_path / "spool" / files[0]).read_bytes()
    request = parse_request(data)                       # the bytes a network exporter would POST to /v1/logs
    resource = {kv.key: kv.value.string_value for kv in request.resource_logs[0].resource.attributes}
    assert resource["service.instance.id"] == "replica-1" and resource["ml.framework"] == "python"
    assert len(decode_request(request).profiles) == 1


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_a_failing_write_stays_pending_then_drops_oldest(tmp_path: Path) -> None:
    _failing_then_recovering(tmp_path, lambda d: d.chmod(0o500), lambda d: d.chmod(0o700))


def test_a_vanished_directory_stays_pending_then_drops_oldest(tmp_path: Path) -> None:
    def break_it(directory: Path) -> None:
        directory.rmdir()
        directory.write_text("not a directory")          # writing into it now fails with an OSError

    def repair(directory: Path) -> None:
        directory.unlink()
        directory.mkdir()

    _failing_then_recovering(tmp_path, break_it, repair)


def _failing_then_recovering(tmp_path: Path, break_it, repair) -> None:  # type: ignore[no-untyped-def]
    directory = tmp_path / "spool"
    drops: list[int] = []
    spool = SpoolProfileExporter(directory, process_resource(framework="python"), capacity=3, on_drop=drops.append)
    break_it(directory)
    for sequence in range(1, 6):
        spool.export([profile(sequence=sequence)])
    assert spool.pending == 3 and spool.dropped == 2 and sum(drops) == 2
    repair(directory)
    spool.export([])
    assert [p.sequence for _, p in read_spool(directory)] == [3, 4, 5]
    assert not [path for path in directory.iterdir() if path.name.startswith(".")]   # no temporary left over


def test_names_sort_by_time() -> None:
    names = [spool_name(profile(end=end)) for end in (1_700_000_120.0, 1_700_000_060.5, 1_700_000_000.0)]
    assert sorted(names) == names[::-1]


def test_a_removed_directory_is_made_again(tmp_path: Path) -> None:
    directory = tmp_path / "spool"
    spool = SpoolProfileExporter(directory, process_resource(framework="python"))
    directory.rmdir()
    spool.export([profile()])
    assert spool.pending == 0 and len(list(read_spool(directory))) == 1


def test_names_that_looked_alike_no_longer_collide(tmp_path: Path) -> None:
    """``a/b``, ``a_b`` and ``a:b`` (and producers alike) were one file name, and so were long names sharing a
    prefix: the later profile replaced the earlier with ``dropped`` still 0. Each is now a file of its own."""
    models = ["a/b", "a_b", "a:b", "a-b", "a%2Fb", "m" * 150 + "1", "m" * 150 + "2", "x" * 256]
    producers = ["replica/1", "replica_1", "replica:1", "r" * 200 + "1", "r" * 200 + "2"]
    spool = SpoolProfileExporter(tmp_path / "spool", process_resource(framework="python"))
    sent = []
    for model in models:
        for producer in producers:
            made = profile(model=model)
            made.producer = producer
            sent.append(made)
    spool.export(sent)
    files = list((tmp_path / "spool").iterdir())
    assert len(files) == len(sent) and spool.dropped == 0
    assert all(len(path.name.encode()) <= MAX_NAME_LENGTH for path in files)
    assert sorted((p.model, p.producer) for _, p in read_spool(tmp_path / "spool")) == \
        sorted((p.model, p.producer) for p in sent)


def test_names_are_reversible() -> None:
    made = profile(model="fraud/v2 – ünïcode", sequence=42)
    made.producer = "pod-7:8080"
    name = spool_name(made)
    assert parse_spool_name(name) == SpoolName(1_700_000_060_000, "pod-7:8080", "fraud/v2 – ünïcode", "input", 42)
    made.producer = ""
    assert parse_spool_name(spool_name(made)) == SpoolName(1_700_000_060_000, "", "fraud/v2 – ünïcode", "input", 42)
    long = profile(model="m" * 256)
    assert "~" in spool_name(long) and parse_spool_name(spool_name(long)) is None   # cut short: the file says
    assert spool_name(long).startswith("1700000060000-replica%2D1-mmmm")
    assert parse_spool_name("notes.txt") is None and parse_spool_name("1700000060000-a-%FF-input-00000001.pb") is None


def test_a_profile_the_wire_refuses_is_left_out_and_the_others_kept(tmp_path: Path) -> None:
    spool = SpoolProfileExporter(tmp_path / "spool", process_resource(framework="python"))
    late = profile(sequence=2, end=3e10)   # past the wire's interval limit
    with pytest.raises(ProfileError) as raised:
        spool.export([profile(sequence=1), late, profile(sequence=3)])
    assert raised.value.reason == "interval"
    assert [p.sequence for _, p in read_spool(tmp_path / "spool")] == [1, 3]
