"""Ingestion components: files, an HTTP JSON API and the IoT stream into the raw zone.

Each component is an interface only: its body calls one function of
:mod:`mlops_kit.components.runtime.ingest`, which calls :mod:`mlops_kit.ingest`. Every one
writes ``landed``, a JSON list of the raw objects it landed (``uri``, ``source``,
``sha256``, ``size``, ``format``, ``created``), with counts and URIs in its metadata.
"""

from typing import List

from mlops_kit.components._kfp import Dataset, Output, dsl
from mlops_kit.components.image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def ingest_files(
    landed: Output[Dataset],
    uris: List[str] = [],
    prefix: str = "",
    source: str = "files",
    settings_json: str = "{}",
):
    """Land files (CSV, JSON lines, Parquet) in the raw zone, bytes unchanged.

    Args:
        landed: JSON list of the landed raw objects; metadata: kind, source, objects,
            created, bytes, uris, status.
        uris: file URIs to land (local paths, file:// or s3://).
        prefix: a folder or s3:// prefix whose data files are landed as well.
        source: raw-zone source name.
        settings_json: JSON object of mlops_kit settings overrides ("{}": the pod's
            MLOPS_KIT_* environment and config file).
    """
    from mlops_kit.components.runtime.ingest import ingest_files_step

    ingest_files_step(landed, uris, prefix, source, settings_json)


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def ingest_api(
    landed: Output[Dataset],
    url: str = "",
    source: str = "api",
    api_config_json: str = "{}",
    max_pages: int = 0,
    restart: bool = False,
    settings_json: str = "{}",
):
    """Land the pages of an HTTP JSON API in the raw zone, resuming at the saved cursor.

    Args:
        landed: JSON list of the landed raw objects (one per page); metadata: kind,
            source, objects, created, bytes, uris, status, url, pages, records, retries,
            complete.
        url: the first page's URL; "" skips the step (status skipped).
        source: raw-zone source name (and the cursor's folder).
        api_config_json: JSON object of further ApiSourceConfig fields (items_field,
            next_cursor_field, cursor_style, headers_from_env, bearer_token_env...).
        max_pages: stop after this many pages (0: until the last page).
        restart: ignore the saved cursor and start at the first page.
        settings_json: JSON object of mlops_kit settings overrides ("{}": the pod's
            MLOPS_KIT_* environment and config file).
    """
    from mlops_kit.components.runtime.ingest import ingest_api_step

    ingest_api_step(landed, url, source, api_config_json, max_pages, restart, settings_json)


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def ingest_stream(
    landed: Output[Dataset],
    enabled: bool = True,
    source: str = "iot-stream",
    batch_size: int = 0,
    max_batches: int = 0,
    idle_timeout_s: float = 0.0,
    settings_json: str = "{}",
):
    """Land the stream's new records in micro-batches, resuming at the checkpoint.

    The stream is the one the settings select (stream.backend local or kinesis).

    Args:
        landed: JSON list of the landed raw objects (one per micro-batch); metadata:
            kind, source, objects, created, bytes, uris, status, backend, batches,
            records_read, records_landed, duplicates_skipped, checkpoint.
        enabled: False skips the step (status skipped), e.g. when a long-running
            consumer lands the stream instead.
        source: raw-zone source name (and the checkpoint's folder).
        batch_size: records per micro-batch (0: stream.batch_size of the settings).
        max_batches: stop after this many micro-batches (0: until caught up).
        idle_timeout_s: keep polling an idle stream this long before returning.
        settings_json: JSON object of mlops_kit settings overrides ("{}": the pod's
            MLOPS_KIT_* environment and config file).
    """
    from mlops_kit.components.runtime.ingest import ingest_stream_step

    ingest_stream_step(
        landed, enabled, source, batch_size, max_batches, idle_timeout_s, settings_json
    )
