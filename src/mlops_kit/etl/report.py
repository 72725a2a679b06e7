"""The quality report of a run: JSON for machines, one self-contained HTML page for people."""

from __future__ import annotations

import html
from typing import Any

import pyarrow as pa

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#1d2330}
h1{font-size:1.5rem;margin-bottom:.2rem} .muted{color:#6b7280}
.cards{display:flex;gap:1rem;margin:1.2rem 0}
.card{flex:1;border:1px solid #e5e7eb;border-radius:8px;padding:.8rem 1rem}
.card b{display:block;font-size:1.6rem} .ok{color:#15803d} .bad{color:#b91c1c}
table{border-collapse:collapse;width:100%;margin:.6rem 0 1.4rem}
th,td{border-bottom:1px solid #e5e7eb;padding:.35rem .5rem;text-align:left;vertical-align:top}
th{background:#f9fafb} td.num{text-align:right;font-variant-numeric:tabular-nums}
.bar{background:#f59e0b;height:.8rem;border-radius:3px}
code{font-size:12px;word-break:break-all}
"""


REASONS: dict[str, str] = {
    "malformed_json": "the line is not a JSON object",
    "wrong_type": "a value has the wrong type (text where a number belongs)",
    "invalid_timestamp": "a time is neither ISO 8601 nor an epoch number",
    "ragged_row": "the CSV row has more or fewer fields than the header",
    "null": "a required field has no value",
    "unaccepted_value": "a value outside its accepted set",
    "pattern_mismatch": "a text value does not match the column's pattern",
    "out_of_range": "a value outside the range the dataset spec declares",
    "future_timestamp": "the event time lies in the future (clock skew?)",
    "stale_timestamp": "the event time is older than the age limit",
    "unknown_entity": "the entity id is not in the registry of known ids: register it first",
    "duplicate_key": "another record with the same entity and time, different values, was kept",
}
"""What each reason means, for a reason that spans several fields."""


def build_report(
    run_id: str,
    accounting: dict[str, Any],
    quarantine: pa.Table,
    max_quarantine_rate: float,
    samples_per_reason: int = 5,
    objects: list[dict[str, Any]] | None = None,
    notes: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The report as a JSON-ready dict (accounting, reasons, fields, samples, objects
    quarantined whole and object-level notes)."""
    by_reason: dict[str, dict[str, Any]] = {}
    if quarantine.num_rows:
        rows = quarantine.select(["reason", "field", "detail", "record", "_source", "_line"])
        for rec in rows.to_pylist():
            entry = by_reason.setdefault(
                rec["reason"], {"count": 0, "fields": {}, "detail": rec["detail"], "samples": []}
            )
            entry["count"] += 1
            if entry["detail"] != rec["detail"]:
                entry["detail"] = REASONS.get(rec["reason"], rec["reason"])
            fld = rec["field"] or "-"
            entry["fields"][fld] = entry["fields"].get(fld, 0) + 1
            if len(entry["samples"]) < samples_per_reason:
                entry["samples"].append(
                    {"record": rec["record"], "source": rec["_source"], "line": rec["_line"]}
                )
    rate = accounting["quarantined"] / accounting["rows_in"] if accounting["rows_in"] else 0.0
    return {
        "run_id": run_id,
        "accounting": accounting,
        "quarantine_rate": rate,
        "max_quarantine_rate": max_quarantine_rate,
        "passed": rate <= max_quarantine_rate,
        "reasons": dict(sorted(by_reason.items(), key=lambda kv: -kv[1]["count"])),
        "objects_quarantined": [
            {k: o.get(k) for k in ("uri", "reason", "detail")} for o in objects or []
        ],
        "notes": list(notes or []),
    }


def render_html(report: dict[str, Any]) -> str:
    """A readable, self-contained HTML page of the report."""
    e = html.escape
    acc = report["accounting"]
    passed = report["passed"]
    status = '<span class="ok">passed</span>' if passed else '<span class="bad">failed</span>'
    cards = "".join(
        f'<div class="card"><span class="muted">{e(label)}</span><b>{acc.get(key, 0):,}</b></div>'
        for label, key in (
            ("rows in", "rows_in"),
            ("loaded", "loaded"),
            ("quarantined", "quarantined"),
            ("duplicates dropped", "duplicates_dropped"),
        )
    )
    total_bad = max(1, acc.get("quarantined", 0))
    reason_rows = []
    sample_blocks = []
    for reason, info in report["reasons"].items():
        width = 100 * info["count"] / total_bad
        fields = ", ".join(f"{e(k)} ({v})" for k, v in sorted(info["fields"].items()))
        reason_rows.append(
            f"<tr><td><b>{e(reason)}</b><br><span class='muted'>{e(info['detail'] or '')}</span></td>"
            f"<td>{fields}</td><td class='num'>{info['count']:,}</td>"
            f"<td style='width:30%'><div class='bar' style='width:{width:.1f}%'></div></td></tr>"
        )
        samples = "".join(
            f"<tr><td><code>{e(str(s['source']).rsplit('/', 1)[-1])}:{s['line']}</code></td>"
            f"<td><code>{e(str(s['record'])[:400])}</code></td></tr>"
            for s in info["samples"]
        )
        sample_blocks.append(
            f"<h3>{e(reason)}</h3><table><tr><th>where</th><th>record as received</th></tr>"
            f"{samples}</table>"
        )
    reasons_html = (
        "<table><tr><th>reason</th><th>fields</th><th>rows</th><th></th></tr>"
        + "".join(reason_rows)
        + "</table>"
        if reason_rows
        else "<p class='ok'>No record was rejected.</p>"
    )
    objects = report.get("objects_quarantined", [])
    objects_html = ""
    if objects:
        objects_html = (
            "<h2>Objects quarantined whole</h2><table><tr><th>object</th><th>reason</th></tr>"
            + "".join(
                f"<tr><td><code>{e(str(o['uri']))}</code></td><td><b>{e(str(o['reason']))}</b>"
                f"<br><span class='muted'>{e(str(o['detail']))}</span></td></tr>"
                for o in objects
            )
            + "</table>"
        )
    notes = report.get("notes", [])
    notes_html = ""
    if notes:
        notes_html = (
            "<h2>Notes on objects</h2><table><tr><th>object</th><th>note</th></tr>"
            + "".join(
                f"<tr><td><code>{e(str(n['uri']).rsplit('/', 1)[-1])}</code></td>"
                f"<td><b>{e(str(n['kind']))}</b>: {e(str(n['detail']))}</td></tr>"
                for n in notes
            )
            + "</table>"
        )
    identity = (
        f"{acc['rows_in']:,} in = {acc['loaded']:,} loaded + {acc['quarantined']:,} quarantined"
        f" + {acc['duplicates_dropped']:,} duplicates dropped"
    )
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>Quality report {e(report["run_id"])}</title><style>{_CSS}</style></head><body>
<h1>Data quality report</h1>
<div class="muted">run {e(report["run_id"])} &middot; gate {status}: quarantine rate
{report["quarantine_rate"]:.2%} (threshold {report["max_quarantine_rate"]:.2%})</div>
<div class="cards">{cards}</div>
<p class="muted">Accounting: {e(identity)}</p>
{objects_html}{notes_html}
<h2>Rejected records by reason</h2>{reasons_html}
{"".join(sample_blocks)}
</body></html>"""
