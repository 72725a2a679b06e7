"""The ETL pipeline to compile and submit: ingest -> transform -> quality_check -> load.

Ingestion covers files, the IoT stream and an optional HTTP API; the definition lives in
:mod:`mlops_kit.pipelines.etl` and is re-exported here.

Compile it to ``pipelines/etl.yaml`` (the same bytes as
``python -m mlops_kit.pipelines.compile``)::

    python pipelines/etl_pipeline.py

and submit it to Kubeflow Pipelines::

    python pipelines/etl_pipeline.py --host http://ml-pipeline-ui.kubeflow:80 \\
        --experiment etl --arg file_prefix=s3://acme-drop/2026-01-04/
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mlops_kit.pipelines.etl import etl_pipeline

PIPELINE_YAML = Path(__file__).with_name("etl.yaml")

__all__ = ["PIPELINE_YAML", "etl_pipeline"]


def _argument(text: str) -> tuple[str, object]:
    name, _, value = text.partition("=")
    try:
        return name, json.loads(value)
    except json.JSONDecodeError:
        return name, value


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Compile, and optionally submit, the ETL pipeline."
    )
    parser.add_argument("--host", help="Kubeflow Pipelines endpoint; submit after compiling")
    parser.add_argument("--experiment", default=None)
    parser.add_argument(
        "--arg",
        action="append",
        default=[],
        type=_argument,
        metavar="NAME=VALUE",
        help="pipeline argument (VALUE parsed as JSON when it is JSON)",
    )
    args = parser.parse_args()
    from mlops_kit.pipelines.compile import render

    PIPELINE_YAML.write_text(render(etl_pipeline), encoding="utf-8")
    print(f"compiled {PIPELINE_YAML}")
    if args.host:
        from mlops_kit.pipelines import submit

        run_id = submit(PIPELINE_YAML, args.host, dict(args.arg), args.experiment)
        print(f"submitted run {run_id}")


if __name__ == "__main__":
    main()
