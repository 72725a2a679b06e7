"""Component conventions: typed artifacts, image tag, settings_json, interface-only bodies."""

from __future__ import annotations

import ast
import importlib
import inspect
import subprocess
import sys
import textwrap

import pytest
import yaml

import mlops_kit
from mlops_kit.components import COMPONENTS, DEFAULT_IMAGE, IMAGE
from mlops_kit.components.image import image_tag
from mlops_kit.config import ImagesSettings

pytestmark = pytest.mark.kfp

DATASET, METRICS, HTML = "system.Dataset", "system.Metrics", "system.HTML"
MODEL = "system.Model"
RUNTIME_MODULES = tuple(
    f"mlops_kit.components.runtime.{domain}"
    for domain in ("ingest", "etl", "features", "training", "registry", "serving")
)
CLASSIFICATION = "system.ClassificationMetrics"

EXPECTED = {
    "ingest_files": ({}, {"landed": DATASET}),
    "ingest_api": ({}, {"landed": DATASET}),
    "ingest_stream": ({}, {"landed": DATASET}),
    "transform": (
        {"files_landed": DATASET, "api_landed": DATASET, "stream_landed": DATASET},
        {"batch": DATASET},
    ),
    "quality_check": ({"batch": DATASET}, {"checked": DATASET, "metrics": METRICS, "report": HTML}),
    "load": ({"checked": DATASET}, {"metrics": METRICS}),
    "etl_run": (
        {"files_landed": DATASET, "api_landed": DATASET, "stream_landed": DATASET},
        {"metrics": METRICS, "report": HTML},
    ),
    "features_apply": ({}, {"metrics": METRICS}),
    "features_materialize": ({}, {"metrics": METRICS}),
    "features_training_set": ({"labels": DATASET}, {"training_set": DATASET}),
    "train": ({"training_set": DATASET}, {"model": MODEL, "metrics": METRICS}),
    "launch_eks": ({"training_set": DATASET}, {"model": MODEL, "metrics": METRICS}),
    "launch_sagemaker": ({"training_set": DATASET}, {"model": MODEL, "metrics": METRICS}),
    "export_onnx": (
        {"model": MODEL, "validation": DATASET},
        {"onnx_model": MODEL, "metrics": METRICS},
    ),
    "evaluate_model": (
        {"onnx_model": MODEL, "evaluation": DATASET},
        {"metrics": CLASSIFICATION, "scores": METRICS},
    ),
    "register_model": ({"onnx_model": MODEL}, {}),
    "promote_model": ({"evaluation": DATASET}, {"report": METRICS}),
    "serve_rollout": ({}, {"report": METRICS}),
}
OPTIONAL_INPUTS = {"files_landed", "api_landed", "stream_landed", "labels", "validation"}


def _spec(name: str) -> dict:
    from mlops_kit.components import get_component
    from mlops_kit.pipelines.compile import render

    return yaml.safe_load(render(get_component(name)))


def _artifacts(defs: dict) -> dict[str, str]:
    return {k: v["artifactType"]["schemaTitle"] for k, v in defs.get("artifacts", {}).items()}


def test_catalogue_is_complete():
    assert set(EXPECTED) == set(COMPONENTS)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_component_interface(name: str):
    pytest.importorskip("kfp")
    spec = _spec(name)
    (component,) = spec["components"].values()
    inputs, outputs = EXPECTED[name]
    assert _artifacts(component.get("inputDefinitions", {})) == inputs
    assert _artifacts(component["outputDefinitions"]) == outputs
    for art_name, art in component.get("inputDefinitions", {}).get("artifacts", {}).items():
        assert bool(art.get("isOptional")) == (art_name in OPTIONAL_INPUTS), art_name
    settings = component["inputDefinitions"]["parameters"]["settings_json"]
    assert settings["parameterType"] == "STRING" and settings["defaultValue"] == "{}"
    (executor,) = spec["deploymentSpec"]["executors"].values()
    container = executor["container"]
    assert container["image"] == f"ghcr.io/mlops-kit/mlops-kit:{mlops_kit.__version__}"
    command = " ".join(container["command"])
    assert "pip install" not in command, "components install nothing at run time"
    assert any(f"{module} import" in command for module in RUNTIME_MODULES)


def test_image_follows_the_version():
    image, repository = IMAGE, DEFAULT_IMAGE
    assert image_tag(image) == mlops_kit.__version__
    assert image == f"{repository}:{mlops_kit.__version__}"
    assert repository == ImagesSettings.model_fields["pipeline"].default
    assert image_tag("registry:5000/a/b") == "" and image_tag("a/b:1.2") == "1.2"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_component_body_only_calls_the_runtime(name: str):
    """A component is its interface: docstring, one import from the runtime, one call."""
    pytest.importorskip("kfp")
    from mlops_kit.components import get_component

    func = get_component(name).python_func
    tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
    (fn,) = tree.body
    body = fn.body
    assert isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
    assert len(body) == 3, f"{name}: only a docstring, an import and a call"
    imp, call = body[1], body[2]
    assert isinstance(imp, ast.ImportFrom) and imp.module in RUNTIME_MODULES
    # the runtime mirrors the interface: components/<domain>.py -> components/runtime/<domain>.py
    interface_domain = func.__module__.rsplit(".", 1)[-1]
    assert imp.module == f"mlops_kit.components.runtime.{interface_domain}", name
    (alias,) = imp.names
    assert alias.name == f"{name}_step"
    assert isinstance(call, ast.Expr) and isinstance(call.value, ast.Call)
    assert call.value.func.id == alias.name
    params = list(inspect.signature(func).parameters)
    passed = [a.id for a in call.value.args]
    assert passed == params, f"{name} passes every parameter, in order"
    runtime = importlib.import_module(imp.module)
    assert list(inspect.signature(getattr(runtime, alias.name)).parameters) == params


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60
    )


def test_importing_the_packages_does_not_import_kfp():
    done = _python(
        """
        import sys
        import mlops_kit, mlops_kit.components, mlops_kit.pipelines
        import mlops_kit.components.image
        import mlops_kit.components.runtime.etl, mlops_kit.components.runtime.ingest
        import mlops_kit.components.runtime.features, mlops_kit.components.runtime.training
        import mlops_kit.components.runtime.registry
        import mlops_kit.pipelines.client
        assert "kfp" not in sys.modules, sorted(m for m in sys.modules if m.startswith("kfp"))
        print("ok")
        """
    )
    assert done.returncode == 0 and "ok" in done.stdout, done.stderr


def test_without_kfp_the_components_name_the_extra():
    done = _python(
        """
        import sys
        sys.modules["kfp"] = None  # as if kfp were not installed
        from mlops_kit.errors import MissingExtraError
        for load in (
            lambda: __import__("mlops_kit.components.etl"),
            lambda: __import__("mlops_kit.components.ingest"),
            lambda: __import__("mlops_kit.pipelines.etl"),
            lambda: __import__("mlops_kit.pipelines.compile").pipelines.compile.render(None),
            lambda: getattr(__import__("mlops_kit.components").components, "quality_check"),
            lambda: getattr(__import__("mlops_kit.pipelines").pipelines, "etl_pipeline"),
        ):
            try:
                load()
            except MissingExtraError as exc:
                assert "pip install 'mlops-kit[kfp]'" in str(exc), exc
            else:
                raise AssertionError("no MissingExtraError")
        print("ok")
        """
    )
    assert done.returncode == 0 and "ok" in done.stdout, done.stderr
