"""The ETL pipeline: ingest files, the stream and an optional API -> transform -> check -> load.

Every ingestion step runs (an API step without ``api_url`` and a disabled stream step land
nothing), so the transform always waits for all of them. The transform consumes every raw
object not yet committed; when there is none, the run is a no-op end to end. Caching is
off for every task: the steps read and write external state (the raw zone, checkpoints,
the warehouse), so the same inputs do not mean the same outputs.
"""

from typing import NamedTuple

from mlops_kit.components._kfp import Dataset, Metrics, dsl
from mlops_kit.components.etl import load, quality_check, transform
from mlops_kit.components.ingest import ingest_api, ingest_files, ingest_stream

PIPELINE_NAME = "mlops-kit-etl"


class EtlOutputs(NamedTuple):
    """The pipeline's outputs."""

    checked: Dataset
    quality_metrics: Metrics
    load_metrics: Metrics


@dsl.pipeline(
    name=PIPELINE_NAME,
    description=(
        "Ingest files, the IoT stream and an optional HTTP API into the raw zone, then "
        "extract, normalise, quality-check and load every new raw object."
    ),
)
def etl_pipeline(
    settings_json: str = "{}",
    file_uris: list[str] = [],
    file_prefix: str = "",
    file_source: str = "files",
    stream_enabled: bool = True,
    stream_source: str = "iot-stream",
    stream_max_batches: int = 0,
    api_url: str = "",
    api_source: str = "api",
    api_config_json: str = "{}",
    api_max_pages: int = 0,
    now: str = "",
) -> EtlOutputs:
    """Ingest -> transform -> quality_check -> load.

    Args:
        settings_json: JSON object of mlops_kit settings overrides passed to every step
            ("{}": the pods' MLOPS_KIT_* environment and config file).
        file_uris: files to land (local paths, file:// or s3:// URIs).
        file_prefix: a folder or s3:// prefix whose data files are landed too.
        file_source: raw-zone source name of the files.
        stream_enabled: consume the stream the settings select (stream.backend).
        stream_source: raw-zone source name (and checkpoint) of the stream.
        stream_max_batches: micro-batches to consume at most (0: until caught up).
        api_url: first page of an HTTP JSON API to land ("": no API step).
        api_source: raw-zone source name (and cursor) of the API.
        api_config_json: JSON object of further ApiSourceConfig fields.
        api_max_pages: pages to fetch at most (0: until the last page).
        now: reference time of the run, ISO 8601 ("": the current time).
    """
    files = ingest_files(
        uris=file_uris, prefix=file_prefix, source=file_source, settings_json=settings_json
    ).set_display_name("ingest files")
    stream = ingest_stream(
        enabled=stream_enabled,
        source=stream_source,
        max_batches=stream_max_batches,
        settings_json=settings_json,
    ).set_display_name("ingest stream")
    api = ingest_api(
        url=api_url,
        source=api_source,
        api_config_json=api_config_json,
        max_pages=api_max_pages,
        settings_json=settings_json,
    ).set_display_name("ingest API")
    batch = transform(
        files_landed=files.outputs["landed"],
        stream_landed=stream.outputs["landed"],
        api_landed=api.outputs["landed"],
        now=now,
        settings_json=settings_json,
    ).set_display_name("extract + transform")
    checked = quality_check(
        batch=batch.outputs["batch"], settings_json=settings_json
    ).set_display_name("quality check")
    loaded = load(checked=checked.outputs["checked"], settings_json=settings_json).set_display_name(
        "load"
    )
    for task in (files, stream, api, batch, checked, loaded):
        task.set_caching_options(False)
    return EtlOutputs(
        checked=checked.outputs["checked"],
        quality_metrics=checked.outputs["metrics"],
        load_metrics=loaded.outputs["metrics"],
    )
