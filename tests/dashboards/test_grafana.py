"""Getting dashboards into Grafana. No Grafana server is available here: the upload is checked against a
small HTTP server in the test that checks each request the way Grafana's ``POST /api/dashboards/db`` reads it;
the provisioning YAML is checked for the keys Grafana's file provider reads."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from servewatch.dashboards import PROVISIONING_FILE, generate, upload

from servewatch.cli import main
from servewatch.errors import ServewatchError

SPEC = Path(__file__).parents[1] / "alerts" / "golden" / "servewatch.yaml"
TOKEN = "glsa_test_token"


class FakeGrafana(ThreadingHTTPServer):
    """Answers like Grafana 11: 401 without the token, 400 on a malformed body, 412 on a version clash."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.received: list[dict[str, Any]] = []
        self.clash = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: FakeGrafana

    def do_POST(self) -> None:
        if self.path != "/api/dashboards/db":
            return self.answer(404, {"message": "Not found"})
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self.answer(401, {"message": "invalid API key"})
        if self.headers.get("Content-Type") != "application/json":
            return self.answer(415, {"message": "want JSON"})
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        dashboard = body.get("dashboard")
        if not isinstance(dashboard, dict) or not dashboard.get("uid") or not dashboard.get("title"):
            return self.answer(400, {"message": "bad dashboard"})
        if self.server.clash and not body.get("overwrite"):
            return self.answer(
                412, {"message": "A dashboard with the same uid already exists", "status": "name-exists"}
            )
        if self.server.clash:
            return self.answer(
                412,
                {"message": "The dashboard has been changed by someone else", "status": "version-mismatch"},
            )
        self.server.received.append(body)
        self.answer(
            200,
            {
                "id": len(self.server.received),
                "uid": dashboard["uid"],
                "status": "success",
                "url": f"/d/{dashboard['uid']}/x",
                "version": 1,
            },
        )

    def answer(self, code: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture()
def grafana() -> Iterator[FakeGrafana]:
    server = FakeGrafana()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_upload_posts_each_dashboard_with_overwrite(grafana: FakeGrafana, golden_spec) -> None:
    documents = generate(golden_spec)
    for document in documents.values():
        answer = upload(document, grafana.url + "/", TOKEN, folder_uid="servewatch")
        assert answer["uid"] == document["uid"] and answer["status"] == "success"
    assert [body["dashboard"]["uid"] for body in grafana.received] == [d["uid"] for d in documents.values()]
    for body in grafana.received:
        assert body["overwrite"] is True and body["folderUid"] == "servewatch"
        assert body["dashboard"]["id"] is None  # never another instance's database id
        assert body["dashboard"]["panels"] == documents[f"{body['dashboard']['uid']}.json"]["panels"]


def test_upload_errors_carry_grafanas_message(grafana: FakeGrafana, golden_spec) -> None:
    document = generate(golden_spec)["servewatch-overview.json"]
    with pytest.raises(ServewatchError, match="HTTP 401 invalid API key"):
        upload(document, grafana.url, "wrong")
    grafana.clash = True
    with pytest.raises(ServewatchError, match="HTTP 412 The dashboard has been changed"):
        upload(document, grafana.url, TOKEN)
    port = grafana.server_address[1]
    grafana.shutdown()
    grafana.server_close()
    with pytest.raises(ServewatchError, match="cannot reach Grafana"):
        upload(document, f"http://127.0.0.1:{port}", TOKEN, timeout=5)


def test_cli_writes_files_and_uploads(grafana: FakeGrafana, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("GRAFANA_TOKEN", TOKEN)
    out = tmp_path / "dashboards"
    assert main(["dashboards", "--spec", str(SPEC), "-o", str(out), "--grafana-url", grafana.url]) == 0
    names = sorted(path.name for path in out.iterdir())
    assert names == sorted(
        [
            PROVISIONING_FILE,
            "servewatch-overview.json",
            "servewatch-model-fraud.json",
            "servewatch-model-ranker.json",
            "servewatch-other-models.json",
        ]
    )
    assert len(grafana.received) == 4
    assert "uploaded servewatch-model-fraud.json" in capsys.readouterr().out
    provider = yaml.safe_load((out / PROVISIONING_FILE).read_text())["providers"][0]
    assert provider["type"] == "file" and provider["options"]["path"] == str(out.resolve())
    assert json.loads((out / "servewatch-model-fraud.json").read_text())["uid"] == "servewatch-model-fraud"


def test_cli_upload_failure_exits_2(grafana: FakeGrafana, tmp_path: Path, capsys) -> None:
    code = main(
        [
            "dashboards",
            "--spec",
            str(SPEC),
            "-o",
            str(tmp_path),
            "--grafana-url",
            grafana.url,
            "--grafana-token",
            "wrong",
        ]
    )
    assert code == 2
    assert "HTTP 401" in capsys.readouterr().err
