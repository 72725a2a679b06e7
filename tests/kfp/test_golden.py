"""Golden files: the committed YAML equals a fresh compile of every component and pipeline."""

from __future__ import annotations

import pytest

from tests.conftest import REPO

pytest.importorskip("kfp")

pytestmark = pytest.mark.kfp


def _rendered() -> dict[str, str]:
    from mlops_kit.pipelines.compile import rendered

    return rendered()


RENDERED = _rendered()


@pytest.mark.parametrize("rel", sorted(RENDERED))
def test_committed_yaml_is_up_to_date(rel: str):
    path = REPO / rel
    assert path.is_file(), (
        f"{rel} is missing: run 'python -m mlops_kit.pipelines.compile' and commit it"
    )
    assert path.read_text(encoding="utf-8") == RENDERED[rel], (
        f"{rel} is stale (its component or pipeline changed since it was compiled): run "
        "'python -m mlops_kit.pipelines.compile' and commit the result"
    )


def test_every_compiled_file_has_a_definition():
    committed = {
        str(p.relative_to(REPO))
        for p in [*REPO.glob("components/*/component.yaml"), *REPO.glob("pipelines/*.yaml")]
    }
    orphans = sorted(committed - set(RENDERED))
    assert not orphans, f"compiled files without a definition (delete them): {orphans}"


def test_compile_is_deterministic_and_writes_only_changes(tmp_path):
    from mlops_kit.pipelines.compile import compile_all, main, stale

    first = compile_all(tmp_path)
    assert sorted(str(p.relative_to(tmp_path)) for p in first) == sorted(RENDERED)
    snapshot = {p: p.read_bytes() for p in first}
    assert compile_all(tmp_path) == []
    assert {p: p.read_bytes() for p in first} == snapshot
    assert stale(tmp_path) == []
    assert main(["--check", "--out-dir", str(tmp_path)]) == 0
    (tmp_path / "pipelines" / "etl.yaml").write_text("stale\n")
    assert stale(tmp_path) == ["pipelines/etl.yaml"]
    assert main(["--check", "--out-dir", str(tmp_path)]) == 1
