"""Getting dashboards into Grafana: a file-provisioning YAML, or an upload through Grafana's HTTP API.

Usage::

    from servewatch.dashboards.grafana import provisioning, upload

    open("out/servewatch-dashboards.yaml", "w").write(provisioning("/var/lib/grafana/dashboards/servewatch"))
    upload(document, "https://grafana.example.com", token="glsa_...")   # POST /api/dashboards/db

Provisioning: copy the JSON files and the YAML where Grafana reads them (``provisioning/dashboards/``);
Grafana loads the folder at start and re-reads it every minute. Upload: one ``POST /api/dashboards/db`` per
dashboard with ``overwrite: true`` (the stable uid replaces the previous version), a service-account token as
``Authorization: Bearer``; an HTTP error or an unreachable server raises :class:`ServewatchError` with
Grafana's own message.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from servewatch.errors import ServewatchError
from servewatch.monitoring import dump_yaml

__all__ = ["FOLDER", "provisioning", "upload"]

FOLDER = "servewatch"
"""Folder (title and uid) the provisioned dashboards appear in."""


def provisioning(path: str, folder: str = FOLDER) -> str:
    """A Grafana dashboard-provisioning file serving the JSON files in ``path`` (as Grafana sees it)."""
    return dump_yaml(
        {
            "apiVersion": 1,
            "providers": [
                {
                    "name": "servewatch",
                    "orgId": 1,
                    "folder": folder,
                    "folderUid": folder,
                    "type": "file",
                    "disableDeletion": False,
                    "allowUiUpdates": False,
                    "updateIntervalSeconds": 60,
                    "options": {"path": path, "foldersFromFilesStructure": False},
                }
            ],
        }
    )


def upload(
    document: dict[str, Any],
    url: str,
    token: str | None = None,
    *,
    folder_uid: str | None = None,
    timeout: float = 30.0,
) -> dict[str, Any]:
    """Create or replace ``document`` in the Grafana at ``url``; returns Grafana's answer (uid, url, ...)."""
    body: dict[str, Any] = {
        "dashboard": {**document, "id": None},
        "overwrite": True,
        "message": "servewatch dashboards",
    }
    if folder_uid:
        body["folderUid"] = folder_uid
    request = urllib.request.Request(
        f"{url.rstrip('/')}/api/dashboards/db",
        method="POST",
        data=json.dumps(body).encode("utf-8"),
        headers={"Content-Type": "application/json", "Accept": "application/json"},
    )
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            answer = json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        raise ServewatchError(
            f"Grafana refused dashboard {document.get('uid')!r}: HTTP {error.code} {_message(error.read())}"
        ) from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise ServewatchError(f"cannot reach Grafana at {url}: {reason}") from None
    except json.JSONDecodeError:
        raise ServewatchError(f"Grafana at {url} answered something that is not JSON") from None
    return answer


def _message(body: bytes) -> str:
    try:
        return str(json.loads(body).get("message", "")) or body.decode("utf-8", "replace")[:200]
    except (ValueError, AttributeError):
        return body.decode("utf-8", "replace")[:200]
