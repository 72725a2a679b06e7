"""Two promotions racing from the same champion, overlapping for certain (SQLite, PostgreSQL).

Each racer is its own process. The registry's test hook (:mod:`mlops_kit.registry._race`)
holds each promoter after it has re-read the champion and before it moves an alias until
the other promoter has either reached the same point or been refused the lock. So:

* with the lock, the first promoter writes while the second is provably waiting for the
  lock; the second then re-reads the new champion and is refused with
  ``champion_unchanged``;
* without the lock (the hook's test-only switch), both are inside the section at once
  having read the same champion, and neither is refused: both win, or MLflow's alias
  upsert (select, then insert) fails one of them with a unique-key violation. That control
  shows the race is real and that the compare-and-set alone does not stop it.

No step waits on a clock: the hook's own timeout is only a safety net, and a test fails
if it ever fired.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.registry.conftest import PASSED_REPORT, Bundles, log_bundle, make_registry

POLICY = {
    "thresholds": {"roc_auc": 0.5},
    "latency": {"max_p99_ms": 50.0, "calls": 50},
    "require_approval": False,
}

RACER = textwrap.dedent(
    """
    import json, sys
    from mlops_kit.config import load_settings
    from mlops_kit.registry import ModelRegistry, _race, parse_policy
    home, uri, name, version, evaluation, policy = sys.argv[1:7]
    reg = ModelRegistry(load_settings(home=home), tracking_uri=uri)
    d = reg.promote(name, version, parse_policy(json.loads(policy)), evaluation=evaluation)
    print(json.dumps({"version": version, "token": _race.token(), "accepted": d.accepted,
                      "failed": [c.name for c in d.failed],
                      "checks": {c.name: c.value for c in d.checks}}))
    """
)


@dataclass
class RaceStore:
    uri: str
    home: Path
    run_id: str
    evaluation: str


@pytest.fixture(scope="module")
def sqlite_store(
    bundles: Bundles, clean_env: None, tmp_path_factory: pytest.TempPathFactory
) -> RaceStore:
    root = tmp_path_factory.mktemp("race-sqlite")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    run_id = log_bundle(bundles.strong, bundles.training_set, uri, "race")
    return RaceStore(uri, root / "home", run_id, str(bundles.evaluation))


@pytest.fixture(scope="module")
def postgres_store(
    postgres_url: str,
    bundles: Bundles,
    clean_env: None,
    tmp_path_factory: pytest.TempPathFactory,
) -> RaceStore:
    import psycopg

    admin = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS mlflow_race")
        conn.execute("CREATE DATABASE mlflow_race")
    uri = postgres_url.rsplit("/", 1)[0] + "/mlflow_race"
    root = tmp_path_factory.mktemp("race-postgres")
    run_id = log_bundle(bundles.strong, bundles.training_set, uri, "race")
    return RaceStore(uri, root / "home", run_id, str(bundles.evaluation))


BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


@pytest.fixture(params=BACKENDS)
def race_store(request: pytest.FixtureRequest) -> RaceStore:
    fixture = {"sqlite": "sqlite_store", "postgresql": "postgres_store"}[request.param]
    store: RaceStore = request.getfixturevalue(fixture)
    return store


@dataclass
class Race:
    champion: str
    versions: tuple[str, str]
    results: dict[str, dict[str, Any]]
    """By version: what each racer's ``promote`` returned (racers that exited 0)."""
    errors: dict[str, str]
    """By version: the end of stderr of racers that did not exit 0."""
    markers: dict[str, dict[str, dict[str, Any]]]
    """By event (``reached``, ``blocked``, ``timeout``): token -> marker."""
    registry: Any
    name: str


def _race(store: RaceStore, folder: Path, *, locked: bool) -> Race:
    """Register three versions, make v1 champion, then race v2 and v3 from v1."""
    from mlops_kit.registry import _race as hook
    from mlops_kit.registry import parse_policy

    reg = make_registry(store.home, store.uri)
    name = f"race-{uuid.uuid4().hex[:8]}"
    v1, v2, v3 = (
        str(reg.register(store.run_id, name, quality_report=PASSED_REPORT)["version"])
        for _ in range(3)
    )
    assert reg.promote(name, v1, parse_policy(POLICY), evaluation=store.evaluation).accepted
    folder.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLOPS_KIT_", "MLFLOW_"))}
    env.update({"MLOPS_KIT_CONFIG": "/nonexistent/mlops_kit.yaml", hook.RACE_DIR_ENV: str(folder)})
    if not locked:
        env[hook.NO_LOCK_ENV] = "1"
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                RACER,
                str(store.home),
                store.uri,
                name,
                v,
                store.evaluation,
                json.dumps(POLICY),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for v in (v2, v3)
    ]
    results, errors = {}, {}
    for v, proc in zip((v2, v3), procs, strict=True):
        out, err = proc.communicate()
        if proc.returncode == 0:
            results[v] = json.loads(out.strip().splitlines()[-1])
        else:
            errors[v] = err[-3000:]
    markers: dict[str, dict[str, dict[str, Any]]] = {"reached": {}, "blocked": {}, "timeout": {}}
    for path in folder.glob("*.json"):
        data = json.loads(path.read_text())
        markers[data["event"]][data["token"]] = data
    assert markers["timeout"] == {}, "the rendezvous fell back on its safety timeout"
    return Race(v1, (v2, v3), results, errors, markers, reg, name)


def test_with_the_lock_exactly_one_racer_wins(race_store: RaceStore, tmp_path: Path) -> None:
    race = _race(race_store, tmp_path / "rendezvous", locked=True)
    assert race.errors == {}, race.errors
    winners = [r for r in race.results.values() if r["accepted"]]
    losers = [r for r in race.results.values() if not r["accepted"]]
    assert len(winners) == 1 and len(losers) == 1, race.results
    (winner,), (loser,) = winners, losers
    assert loser["failed"] == ["champion_unchanged"]
    assert loser["checks"]["champion_unchanged"] == winner["version"]
    reached = race.markers["reached"]
    # the winner read the old champion inside the section and wrote while the loser was
    # refused the lock; the loser entered only afterwards and read the winner's version
    assert set(race.markers["blocked"]) == {loser["token"]}
    assert reached[winner["token"]]["champion"] == race.champion
    assert reached[loser["token"]]["champion"] == winner["version"]
    reg, name = race.registry, race.name
    assert reg.aliases(name) == {"champion": winner["version"], "previous_champion": race.champion}
    assert reg.show(name)["champion_history"] == [race.champion, winner["version"]]
    promotes = [e for e in reg.audit(name) if e["action"] == "promote"]
    assert sorted((e["version"], e["decision"]) for e in promotes[-2:]) == sorted(
        [(winner["version"], "accepted"), (loser["version"], "refused")]
    )


def test_without_the_lock_both_racers_win(race_store: RaceStore, tmp_path: Path) -> None:
    race = _race(race_store, tmp_path / "rendezvous", locked=False)
    assert race.markers["blocked"] == {}
    reached = race.markers["reached"]
    assert sorted(m["version"] for m in reached.values()) == sorted(race.versions)
    assert {m["champion"] for m in reached.values()} == {race.champion}
    assert all(r["accepted"] for r in race.results.values()), race.results
    assert len(race.results) >= 1
    for err in race.errors.values():
        assert "IntegrityError" in err and "registered_model_alias" in err, err
