"""ETL components: transform -> quality_check -> load, or the whole run as ``etl_run``.

Each component is an interface only: its body calls one function of
:mod:`mlops_kit.components.runtime.etl`, which calls :mod:`mlops_kit.etl.run`. A batch
travels between the steps as a Dataset folder (``rows.parquet``, ``quarantine.parquet``,
``batch.json``). When the transform finds nothing new it writes the empty batch
(metadata ``status: noop``) and the following steps do nothing.

``etl_run`` is the same run in one task, on the backend it is given: ``local`` (the pod)
or ``ray`` (Ray tasks over entity partitions, on the cluster ``ray_address`` names), for
a lake that outgrows one pod.
"""

from mlops_kit.components._kfp import HTML, Dataset, Input, Metrics, Output, dsl
from mlops_kit.components.image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def transform(
    batch: Output[Dataset],
    files_landed: Input[Dataset] = None,
    api_landed: Input[Dataset] = None,
    stream_landed: Input[Dataset] = None,
    source: str = "",
    now: str = "",
    settings_json: str = "{}",
):
    """Extract and normalise every raw object not yet committed into one batch.

    Args:
        batch: the batch folder; metadata: status (pending or noop), run_id, now,
            inputs, input_uris, rows_in, rows, rejected_at_extract, landed_objects,
            landed_in_batch.
        files_landed: landed objects of a file ingestion (lineage and ordering).
        api_landed: landed objects of an API ingestion (lineage and ordering).
        stream_landed: landed objects of a stream ingestion (lineage and ordering).
        source: only take raw objects of this source ("": every source).
        now: reference time of the run, ISO 8601 ("": the current time).
        settings_json: JSON object of mlops_kit settings overrides ("{}": the pod's
            MLOPS_KIT_* environment and config file).
    """
    from mlops_kit.components.runtime.etl import transform_step

    transform_step(batch, files_landed, api_landed, stream_landed, source, now, settings_json)


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def quality_check(
    batch: Input[Dataset],
    checked: Output[Dataset],
    metrics: Output[Metrics],
    report: Output[HTML],
    settings_json: str = "{}",
):
    """Apply the quality rules; fail the task above quality.max_quarantine_rate.

    Args:
        batch: the batch of the transform step.
        checked: the checked batch (valid readings and every quarantined row); metadata:
            status, run_id, rows_in, valid, quarantined, duplicates_dropped,
            quarantined_by_reason, quarantine_rate, max_quarantine_rate, passed,
            report_json_uri, report_html_uri.
        metrics: rows_in, loaded, quarantined, duplicates_dropped, quarantine_rate.
        report: the quality report as one HTML page.
        settings_json: JSON object of mlops_kit settings overrides ("{}": the pod's
            MLOPS_KIT_* environment and config file).
    """
    from mlops_kit.components.runtime.etl import quality_check_step

    quality_check_step(batch, checked, metrics, report, settings_json)


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def load(
    checked: Input[Dataset],
    metrics: Output[Metrics],
    settings_json: str = "{}",
):
    """Commit a checked batch: processed readings, features, quarantine, warehouse.

    Args:
        checked: the checked batch of the quality_check step.
        metrics: rows_in, loaded, quarantined, duplicates_dropped, quarantine_rate,
            feature_rows, warehouse_rows_upserted; metadata also: run_id, status
            (committed or noop), manifest_uri, report_html_uri.
        settings_json: JSON object of mlops_kit settings overrides ("{}": the pod's
            MLOPS_KIT_* environment and config file).
    """
    from mlops_kit.components.runtime.etl import load_step

    load_step(checked, metrics, settings_json)


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def etl_run(
    metrics: Output[Metrics],
    report: Output[HTML],
    files_landed: Input[Dataset] = None,
    api_landed: Input[Dataset] = None,
    stream_landed: Input[Dataset] = None,
    backend: str = "local",
    workers: int = 0,
    ray_address: str = "",
    source: str = "",
    now: str = "",
    settings_json: str = "{}",
):
    """Extract, check, transform and commit every raw object not yet committed, in one task.

    Args:
        metrics: rows_in, loaded, quarantined, duplicates_dropped, quarantine_rate,
            feature_rows; metadata also: run_id, status (committed or noop), backend,
            manifest_uri, and per stage wall_s and cpu_s (stage_<name>_wall_s, ...).
        report: the quality report as one HTML page.
        files_landed: landed objects of a file ingestion (lineage and ordering).
        api_landed: landed objects of an API ingestion (lineage and ordering).
        stream_landed: landed objects of a stream ingestion (lineage and ordering).
        backend: "local" (this task's process) or "ray" (Ray tasks partitioned by
            entity; the same rows are committed).
        workers: ray backend: parallel tasks per stage (0: the ray.workers setting).
        ray_address: ray backend: the cluster to run on, e.g. a KubeRay head service
            "ray://mlops-kit-etl-head-svc:10001" ("": a local Ray cluster in the pod).
        source: only take raw objects of this source ("": every source).
        now: reference time of the run, ISO 8601 ("": the current time).
        settings_json: JSON object of mlops_kit settings overrides ("{}": the pod's
            MLOPS_KIT_* environment and config file).
    """
    from mlops_kit.components.runtime.etl import etl_run_step

    etl_run_step(
        metrics,
        report,
        files_landed,
        api_landed,
        stream_landed,
        backend,
        workers,
        ray_address,
        source,
        now,
        settings_json,
    )
