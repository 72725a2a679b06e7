"""The consistency checks of a dataset spec: each problem names its field and the fix."""

from __future__ import annotations

import re

from mlops_kit.data.expressions import Expression, ExpressionError
from mlops_kit.data.spec import NAME_PATTERN, NUMERIC, RESERVED, DatasetSpec, duration_s


def problems(spec: DatasetSpec) -> list[str]:
    """Every inconsistency of ``spec``, each naming its field and the fix."""
    out: list[str] = []
    key, ts = spec.entity.join_key, spec.event_time.column
    names = {"entity.name": spec.entity.name, "entity.join_key": key, "event_time.column": ts}
    for field, name in names.items():
        if not NAME_PATTERN.match(name):
            out.append(f"{field}: {name!r} is not a name; use letters, digits and _")
    known = spec.entity.known_ids
    if known.source == "values":
        if not known.values:
            out.append("entity.known_ids.values: list the known ids, or use source: none")
        clean = {
            "none": lambda v: v,
            "strip": str.strip,
            "strip_lower": lambda v: v.strip().lower(),
            "strip_upper": lambda v: v.strip().upper(),
        }[spec.entity.clean]
        dirty = [v for v in known.values if clean(v) != v]
        if dirty:
            out.append(
                f"entity.known_ids.values: {dirty[0]!r} is not clean under "
                f"clean: {spec.entity.clean} (ids are compared after cleaning); write "
                f"{clean(dirty[0])!r}"
            )
    elif known.values:
        out.append("entity.known_ids.values: values need source: values")
    if spec.derived_view is not None and not NAME_PATTERN.match(spec.derived_view):
        out.append(f"derived_view: {spec.derived_view!r} is not a name")
    if key == ts:
        out.append(f"event_time.column: {ts!r} is also the entity's join key; use two columns")
    for name, col in spec.columns.items():
        where = f"columns.{name}"
        if not NAME_PATTERN.match(name):
            out.append(f"{where}: {name!r} is not a name; use letters, digits and _")
        if name in (key, ts):
            out.append(
                f"{where}: {name!r} is the join key or the event time, declared by entity / "
                "event_time; remove it from columns"
            )
        if name in RESERVED:
            out.append(f"{where}: {name!r} is reserved for the pipeline; rename the column")
        if (col.min is not None or col.max is not None) and col.type not in NUMERIC:
            out.append(f"{where}: min/max need a float or int column, not {col.type}")
        if col.min is not None and col.max is not None and col.min > col.max:
            out.append(f"{where}: min ({col.min:g}) is greater than max ({col.max:g}); swap them")
        if col.pattern is not None:
            if col.type not in ("string", "category"):
                out.append(f"{where}: pattern needs a string or category column, not {col.type}")
            try:
                re.compile(col.pattern)
            except re.error as exc:
                out.append(f"{where}.pattern: not a regular expression ({exc})")
        if col.type == "category" and not col.values:
            out.append(f"{where}: a category column lists its values; add values: [...]")
        if col.units is not None:
            if col.type != "float":
                out.append(f"{where}.units: unit conversions need a float column")
            if col.units.column in spec.columns or col.units.column in (key, ts):
                out.append(
                    f"{where}.units.column: {col.units.column!r} is already a column; the unit "
                    "field is declared here only"
                )
            if col.unit and col.unit not in col.units.conversions:
                out.append(
                    f'{where}.units.conversions: add {col.unit!r}: "x" (the column\'s own unit)'
                )
    agg = spec.aggregations
    try:
        grain = duration_s(agg.grain)
    except ValueError as exc:
        out.append(f"aggregations.grain: {exc}")
        grain = 1
    if not agg.windows:
        out.append("aggregations.windows: declare at least one window, e.g. {1h: 1h}")
    for name, text in agg.windows.items():
        try:
            seconds = duration_s(text)
        except ValueError as exc:
            out.append(f"aggregations.windows.{name}: {exc}")
            continue
        if seconds % grain:
            out.append(
                f"aggregations.windows.{name}: {text} is not a multiple of the grain "
                f"{agg.grain}; use whole buckets"
            )
        if not NAME_PATTERN.match(f"x_{name}"):
            out.append(f"aggregations.windows.{name}: use letters, digits and _ in window names")
    for stat_col, stats in agg.stats.items():
        where = f"aggregations.stats.{stat_col}"
        if stat_col not in spec.columns:
            out.append(
                f"{where}: no column {stat_col!r}; columns are {', '.join(spec.columns) or 'none'}"
            )
        elif spec.columns[stat_col].type not in NUMERIC:
            out.append(
                f"{where}: {stat_col!r} is a {spec.columns[stat_col].type} column; statistics need a "
                "float, int or bool column"
            )
        if len(set(stats)) != len(stats):
            out.append(f"{where}: a statistic is listed twice")
        if not stats:
            out.append(f"{where}: list at least one statistic or remove the column")
    labels = spec.label_columns
    for i, lab in enumerate(spec.labels):
        where = f"labels[{i}]"
        if lab.column not in spec.columns:
            out.append(f"{where}.column: no column {lab.column!r}; declare it under columns")
        elif spec.columns[lab.column].type not in ("int", "bool", "category", "float"):
            out.append(f"{where}.column: a label is int, bool, float or category")
        if lab.column in agg.stats:
            out.append(
                f"{where}: {lab.column!r} is also aggregated as a feature, which leaks the "
                f"label into the features; remove it from aggregations.stats"
            )
    if len(set(labels)) != len(labels):
        out.append("labels: a column is listed twice")
    features: dict[str, str] = {}
    if not out:
        for window in agg.windows:
            for name, _ in spec.window_feature_list(window):
                if name in features:
                    out.append(
                        f"aggregations: the feature {name!r} is produced twice; rename a column"
                    )
                features[name] = window
    view_names = [v.name for v in spec.views]
    for i, view in enumerate(spec.views):
        where = f"views[{i}]"
        if not NAME_PATTERN.match(view.name):
            out.append(f"{where}.name: {view.name!r} is not a name")
        if view.window not in agg.windows:
            out.append(
                f"{where}.window: no window {view.window!r}; windows are {', '.join(agg.windows)}"
            )
    if len(set(view_names)) != len(view_names):
        out.append("views: two views have the same name; names must be unique")
    taken = {spec.entity.name, spec.feature_table, spec.service.name, *view_names}
    if spec.derived and spec.derived_view_name in taken:
        out.append(
            f"derived_view: {spec.derived_view_name!r} collides with a view, the entity, the "
            "table or the service; set derived_view to another name"
        )
    if spec.service.name in {spec.entity.name, *view_names}:
        out.append(f"service.name: {spec.service.name!r} collides with a view or the entity")
    for name, text in spec.derived.items():
        where = f"derived.{name}"
        if name in features or name in spec.columns:
            out.append(f"{where}: {name!r} is already a feature or a column; rename it")
        try:
            expr = Expression.parse(text)
        except ExpressionError as exc:
            out.append(f"{where}: {exc}")
            continue
        in_views = {v.window for v in spec.views}
        served = {f for f, window in features.items() if window in in_views}
        unknown = sorted(expr.names - served)
        if features and unknown:
            out.append(
                f"{where}: {', '.join(unknown)} is not a feature of any view; on-demand "
                f"features read aggregates such as {next(iter(sorted(served)), 'x_mean_1h')}"
            )
    if not spec.service.versions:
        out.append("service.versions: declare at least version 1")
    for version, sv in spec.service.versions.items():
        for served_view in sv.views or []:
            if served_view not in view_names and served_view != spec.derived_view_name:
                out.append(
                    f"service.versions.{version}.views: no view {served_view!r}; views are "
                    f"{', '.join([*view_names, spec.derived_view_name])}"
                )
    return out


def evolution_problems(old: DatasetSpec, new: DatasetSpec) -> list[str]:
    """Why ``new`` cannot replace ``old`` over the same data (empty when it can).

    Another dataset never can. A higher version may change anything (the data of the old
    version stays as written). The same version may only add: new columns, aggregations,
    windows, statistics, on-demand features and views; a removed or renamed column, or a
    type change, needs a new version.
    """
    if new.name != old.name:
        return [
            f"name: this data holds dataset {old.name!r}, the spec is {new.name!r}; "
            "use another lake (home / storage URIs) for another dataset"
        ]
    if new.version > old.version:
        return []
    if new.version < old.version:
        return [
            f"version: the data was written with {old.name} v{old.version}, the spec is "
            f"v{new.version}; use the newer spec"
        ]
    out: list[str] = []
    keys = {
        "entity.join_key": (old.entity.join_key, new.entity.join_key),
        "event_time.column": (old.event_time.column, new.event_time.column),
    }
    for field, (a, b) in keys.items():
        if a != b:
            out.append(f"{field}: {a!r} became {b!r} in v{new.version}; bump version")
    for name, col in old.columns.items():
        if name not in new.columns:
            out.append(
                f"columns.{name}: removed or renamed ({col.type}) without a new version; "
                f"keep it or bump version to {old.version + 1}"
            )
        elif new.columns[name].type != col.type:
            out.append(
                f"columns.{name}: type changed from {col.type} to {new.columns[name].type} "
                f"without a new version; bump version to {old.version + 1}"
            )
    for w, text in old.aggregations.windows.items():
        if new.aggregations.windows.get(w) != text:
            out.append(
                f"aggregations.windows.{w}: {text} changed or removed; bump version to "
                f"{old.version + 1}"
            )
    if old.aggregations.grain != new.aggregations.grain:
        out.append(
            f"aggregations.grain: {old.aggregations.grain} became {new.aggregations.grain}; "
            f"bump version to {old.version + 1}"
        )
    return out
