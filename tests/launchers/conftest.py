"""Fixtures of the launcher tests: the official CRDs, settings, and an API-server stand-in.

The stand-in validates what it receives with :mod:`tests.launchers.independent` (jsonschema
on the CRDs' ``openAPIV3Schema``), never with mlops_kit's own validator, so that a submission
test cannot pass because the validator under test and the server share a bug.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from mlops_kit.config import Settings, load_settings
from tests.conftest import SHARED
from tests.launchers.independent import CrdSchema, load_crd_schemas

CRD_DIR = SHARED / "crds"
PYTORCHJOB_CRD = CRD_DIR / "kubeflow.org_pytorchjobs.yaml"
TRAINJOB_CRD = CRD_DIR / "trainer.kubeflow.org_trainjobs.yaml"
IMAGE_REPO = "123456789012.dkr.ecr.us-east-1.amazonaws.com/mlops-kit-training"


def _require_crd_files() -> None:
    if not PYTORCHJOB_CRD.is_file() or not TRAINJOB_CRD.is_file():
        pytest.skip(f"the upstream CRD schemas are not at {CRD_DIR} (shared/ beside the checkout)")


@pytest.fixture(scope="session")
def crds() -> dict[str, Any]:
    """The PyTorchJob and TrainJob CRDs of ``../shared/crds``, loaded by the project's validator
    (skips when that folder is absent)."""
    _require_crd_files()
    from mlops_kit.training.launchers.crd import load_crd

    return {"PyTorchJob": load_crd(PYTORCHJOB_CRD), "TrainJob": load_crd(TRAINJOB_CRD)}


@pytest.fixture(scope="session")
def independent_crds() -> dict[str, list[CrdSchema]]:
    """The same CRDs as plain JSON Schemas, one per served version (no mlops_kit code)."""
    _require_crd_files()
    pytest.importorskip("jsonschema")
    return {
        "PyTorchJob": load_crd_schemas(PYTORCHJOB_CRD),
        "TrainJob": load_crd_schemas(TRAINJOB_CRD),
    }


@pytest.fixture
def settings(home: Path) -> Settings:
    return load_settings(
        images={"training": IMAGE_REPO},
        cluster={
            "name": "mlops-dev",
            "service_account_roles": {
                "training": "arn:aws:iam::123456789012:role/mlops-dev-training"
            },
        },
    )


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class ApiServerStandIn:
    """Enough of the Kubernetes API for custom objects: create, get, scripted status.

    Created objects are validated against the served versions of the CRDs with the
    independent validator (422 with the errors); a second create of a name answers 409, an
    unknown resource or object 404. ``script(plural, name, statuses)`` sets the statuses
    successive GETs return (the last one sticks).
    """

    _PATH = re.compile(
        r"^/apis/(?P<group>[^/]+)/(?P<version>[^/]+)/namespaces/(?P<ns>[^/]+)/(?P<plural>[^/]+)"
        r"(?:/(?P<name>[^/?]+))?/?(?:\?.*)?$"
    )

    def __init__(self, crds: dict[str, list[CrdSchema]]) -> None:
        self.crds = {(c.group, c.version, c.plural): c for cs in crds.values() for c in cs}
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.scripts: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, code: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _status(self, code: int, reason: str, message: str) -> None:
                self._send(
                    code,
                    {
                        "kind": "Status",
                        "apiVersion": "v1",
                        "status": "Failure",
                        "reason": reason,
                        "message": message,
                        "code": code,
                    },
                )

            def _route(self) -> tuple[Any, re.Match[str] | None]:
                with stand_in.lock:
                    stand_in.requests.append((self.command, self.path))
                m = stand_in._PATH.match(self.path)
                if not m:
                    return None, None
                return stand_in.crds.get((m["group"], m["version"], m["plural"])), m

            def do_POST(self) -> None:
                crd, m = self._route()
                if crd is None or m is None or m["name"]:
                    return self._status(404, "NotFound", f"the server could not find {self.path}")
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                name = (body.get("metadata") or {}).get("name", "")
                errors = crd.errors(body)
                if (body.get("metadata") or {}).get("namespace", m["ns"]) != m["ns"]:
                    errors.append("metadata.namespace: does not match the request namespace")
                if errors:
                    return self._status(
                        422,
                        "Invalid",
                        f'{crd.kind}.{crd.group} "{name}" is invalid: ' + "; ".join(errors),
                    )
                key = (m["plural"], m["ns"], name)
                with stand_in.lock:
                    if key in stand_in.objects:
                        return self._status(
                            409,
                            "AlreadyExists",
                            f'{m["plural"]}.{crd.group} "{name}" already exists',
                        )
                    body["metadata"].update(
                        uid=str(uuid.uuid4()), creationTimestamp=_now(), generation=1
                    )
                    stand_in.objects[key] = body
                self._send(201, body)

            def do_GET(self) -> None:
                crd, m = self._route()
                if crd is None or m is None or not m["name"]:
                    return self._status(404, "NotFound", f"the server could not find {self.path}")
                key = (m["plural"], m["ns"], m["name"])
                with stand_in.lock:
                    obj = stand_in.objects.get(key)
                    if obj is None:
                        return self._status(
                            404, "NotFound", f'{m["plural"]}.{crd.group} "{m["name"]}" not found'
                        )
                    script = stand_in.scripts.get(key)
                    if script:
                        obj["status"] = script.pop(0) if len(script) > 1 else script[0]
                self._send(200, obj)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def script(
        self, plural: str, name: str, statuses: list[dict[str, Any]], ns: str = "data-pipeline"
    ) -> None:
        with self.lock:
            self.scripts[(plural, ns, name)] = list(statuses)

    def api_client(self) -> Any:
        from kubernetes import client

        cfg = client.Configuration()
        cfg.host = self.url
        return client.ApiClient(cfg)


@pytest.fixture
def api_server(independent_crds: dict[str, list[CrdSchema]]) -> Iterator[ApiServerStandIn]:
    stand_in = ApiServerStandIn(independent_crds)
    stand_in.thread.start()
    yield stand_in
    stand_in.server.shutdown()
    stand_in.server.server_close()


def condition(kind: str, reason: str, message: str = "", status: str = "True") -> dict[str, Any]:
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastUpdateTime": _now(),
        "lastTransitionTime": _now(),
    }
