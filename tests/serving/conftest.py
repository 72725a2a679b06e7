"""A served model for the serving tests: a lake of a bundled dataset, its features
materialized, a model trained, registered and promoted to champion."""

from __future__ import annotations

import socket
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from mlops_kit.config import load_settings
from mlops_kit.data.generate import SpecGeneratorConfig, generate, known_ids, to_raw
from mlops_kit.data.spec import spec_of
from mlops_kit.etl import run_etl, write_device_registry
from mlops_kit.ingest.raw_zone import land

T0 = datetime(2026, 3, 2, tzinfo=timezone.utc)
NOW = T0 + timedelta(days=4)
POLICY = {
    "thresholds": {"roc_auc": 0.5},
    "champion": {"metric": "roc_auc", "margin": -1.0},
    "latency": {"max_p99_ms": 50.0, "calls": 50},
    "require_approval": True,
    "evaluation": {"label_column": "label"},
}
CONFIG = {"epochs": 2, "patience": None, "batch_size": 128, "model": {"hidden_sizes": [8]}}


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_served(root: Path, dataset: str, **overrides: Any) -> dict[str, Any]:
    """Build the lake, the feature store and a champion under ``root``."""
    from mlops_kit.demo.model import register_and_promote, train_on_lake
    from mlops_kit.features.store import FeatureClient
    from mlops_kit.registry.policy import parse_policy

    s = load_settings(home=root / "home", dataset=dataset, **overrides)
    spec = spec_of(s)
    table = generate(spec, SpecGeneratorConfig(n_entities=6, start=T0, freq_s=900, steps=288))
    if spec.entity.known_ids.source == "registry":
        write_device_registry(s, known_ids(spec, 6))
    land(s.storage.raw_uri or "", "files", to_raw(spec, table).to_bytes(), "jsonl")
    assert run_etl(s, now=NOW).status == "committed"
    client = FeatureClient(s)
    client.apply()
    client.materialize(end=NOW)
    trained = train_on_lake(s, config=CONFIG)
    policy = parse_policy(POLICY, "(test)")
    out = register_and_promote(
        s, trained["run_id"], evaluation_uri=trained["evaluation_uri"], policy=policy
    )
    assert out["champion"]["accepted"], out["challenger"]
    return {"settings": s, "trained": trained, "policy": policy, "root": root, "online": client}


def register_challenger(served: dict[str, Any], hidden: int = 16) -> str:
    """Train another model on the same lake and make it challenger; its version."""
    from mlops_kit.demo.model import train_on_lake
    from mlops_kit.registry.registry import ModelRegistry

    s = served["settings"]
    config = {**CONFIG, "seed": 7, "model": {"hidden_sizes": [hidden]}}
    trained = train_on_lake(s, config=config)
    registry = ModelRegistry(s)
    name = registry.default_name(None)
    version = str(registry.register(trained["run_id"], name, who="test")["version"])
    decision = registry.promote(
        name,
        version,
        served["policy"],
        target="challenger",
        evaluation=trained["evaluation_uri"],
        who="test",
    )
    assert decision.accepted, decision.reasons()
    return version
