"""Turning one run's results into what people read: a rich table, a PNG bar
chart, the results JSON and a markdown summary the README can quote.

offload's ratio to the best peer is given per figure so that ">1x" always means
offload is better (faster, quicker to start a job, smaller), whatever the figure.
A peer counts only on offload's broker; SQLite has no peer here, so
offload/sqlite is set against the best peer on any broker (marked ``*``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

Row = dict[str, Any]


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    scenario: str
    field: str
    higher_is_better: bool
    unit: str


METRICS = [
    Metric("enqueue_one", "enqueue 1-by-1 /s", "enqueue_one", "value", True, "jobs/s"),
    Metric("enqueue_bulk", "bulk enqueue /s", "enqueue_bulk", "value", True, "jobs/s"),
    Metric("drain", "drain /s", "drain", "value", True, "jobs/s"),
    Metric("p50", "latency p50 ms", "latency", "p50_ms", False, "ms"),
    Metric("p99", "latency p99 ms", "latency", "p99_ms", False, "ms"),
    Metric("io", "10 ms I/O mix /s", "io", "value", True, "jobs/s"),
    Metric("rss_small", "RSS small MiB", "memory", "rss_small_mib", False, "MiB"),
    Metric("rss_big", "RSS big MiB", "memory", "rss_big_mib", False, "MiB"),
]
BROKER_COLORS = {"redis": "#d62728", "postgres": "#1f77b4", "sqlite": "#2ca02c", "azure": "#9467bd"}


def value(row: Row, metric: Metric) -> float | None:
    """The figure, if complete. A rate cut short by its deadline still counts (it
    is a rate over the jobs that did run); a partial latency or last RSS does not."""
    result = row.get("scenarios", {}).get(metric.scenario, {})
    timed_out = result.get("status") == "timeout"
    # the first RSS reading is complete even when the second one ran out of time
    complete = metric.unit == "jobs/s" or metric.field == "rss_small_mib"
    if result.get("status") != "ok" and not (timed_out and complete):
        return None
    v = result.get(metric.field)
    return float(v) if v is not None else None


def _fmt(v: float, metric: Metric) -> str:
    return f"{v:,.0f}" if metric.unit == "jobs/s" else f"{v:,.1f}"


def cell(row: Row, metric: Metric) -> str:
    """The figure; a partial one says why (``timeout``) and, where fewer jobs than
    asked went through, how many did."""
    if row.get("status") != "ok":
        return str(row.get("status", "?"))
    result = row.get("scenarios", {}).get(metric.scenario, {})
    v = result.get(metric.field)
    if v is None:
        return str(result.get("status", "—"))
    text = _fmt(float(v), metric)
    jobs = result.get("jobs", result.get("n"))
    asked = result.get("big", result.get("requested"))
    if metric.field != "rss_small_mib" and jobs and asked and jobs < asked:
        text += f" ({jobs / 1000:.3g}k)"
    partial = result.get("status") != "ok" and metric.field != "rss_small_mib"
    return f"{text} (timeout)" if partial else text


def _peers_for(rows: list[Row], broker: str) -> tuple[list[Row], bool]:
    peers = [r for r in rows if r["library"] != "offload" and r.get("status") == "ok"]
    same = [r for r in peers if r["broker"] == broker]
    return (same, False) if same else (peers, True)


def ratio(rows: list[Row], offload_row: Row, metric: Metric) -> tuple[float | None, str, bool]:
    """offload's advantage over the best peer (>1 = offload better), that peer's
    row name, and whether it came from another broker."""
    mine = value(offload_row, metric)
    peers, other_broker = _peers_for(rows, offload_row["broker"])
    scored = [(v, r["row"]) for r in peers if (v := value(r, metric)) is not None]
    if mine is None or not scored or mine <= 0:
        return None, "", other_broker
    pick: Callable[..., tuple[float, str]] = max if metric.higher_is_better else min
    best, name = pick(scored)
    advantage = mine / best if metric.higher_is_better else best / mine
    return advantage, name, other_broker


def ratios(rows: list[Row]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row["library"] != "offload" or row.get("status") != "ok":
            continue
        out[row["row"]] = {}
        for m in METRICS:
            adv, best, other = ratio(rows, row, m)
            out[row["row"]][m.key] = {"advantage": adv, "best_peer": best, "other_broker": other}
    return out


def _ratio_text(entry: dict[str, Any]) -> str:
    if entry["advantage"] is None:
        return "—"
    star = "*" if entry["other_broker"] else ""
    return f"{entry['advantage']:.2f}x{star}"


# -- terminal ---------------------------------------------------------------------------


def print_tables(console: Console, results: dict[str, Any]) -> None:
    rows: list[Row] = results["rows"]
    table = Table(title=f"offload and peers — {results['date']} ({results['mode']} run)")
    table.add_column("library / broker")
    for m in METRICS:
        table.add_column(m.label, justify="right")
    for row in rows:
        style = "bold" if row["library"] == "offload" else None
        table.add_row(row["row"], *(cell(row, m) for m in METRICS), style=style)
    for name, entry in results["ratios"].items():
        table.add_row(f"[italic]{name} vs best peer[/]",
                      *(_ratio_text(entry[m.key]) for m in METRICS))  # fmt: skip
    console.print(table)
    console.print("ratio > 1x = offload better; * = no peer on that broker, best peer on any")
    print_reference(console, results.get("reference", {}))


def print_reference(console: Console, reference: dict[str, Any]) -> None:
    if not reference:
        return
    table = Table(title="physical limit: raw round trips, no library (jobs/s)")
    for col in ("client", "enqueue 1-by-1", "take 1-by-1", "enqueue x100", "take x100"):
        table.add_column(col, justify="right" if col != "client" else "left")
    for name, rates in reference.items():
        if "error" in rates:
            table.add_row(name, rates["error"], "", "", "")
            continue
        keys = ("enqueue_one", "take_one", "enqueue_batched", "take_batched")
        table.add_row(name, *(f"{rates[k]:,.0f}" for k in keys))
    console.print(table)


# -- files ------------------------------------------------------------------------------


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")


def chart(path: Path, results: dict[str, Any]) -> None:
    """One horizontal bar panel per figure; bars coloured by broker, offload's
    rows outlined so they stand out."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in results["rows"] if r.get("status") == "ok"]
    fig, axes = plt.subplots(2, 4, figsize=(20, 9), constrained_layout=True)
    for ax, metric in zip(axes.flat, METRICS, strict=True):
        names = [r["row"] for r in rows]
        values = [value(r, metric) or 0.0 for r in rows]
        colors = [BROKER_COLORS.get(r["broker"], "grey") for r in rows]
        widths = [2.5 if r["library"] == "offload" else 0.0 for r in rows]
        ax.barh(names, values, color=colors, edgecolor="black", linewidth=widths)
        arrow = "higher is better" if metric.higher_is_better else "lower is better"
        ax.set_title(f"{metric.label} ({arrow})", fontsize=10)
        ax.invert_yaxis()
        ax.tick_params(labelsize=8)
        for y, (v, r) in enumerate(zip(values, rows, strict=True)):
            ax.text(v, y, f" {cell(r, metric)}", va="center", fontsize=7)
    machine = results["machine"]
    fig.suptitle(f"offload vs peers, {results['date']}, {results['mode']} run, "
                 f"{machine['cpus']} CPUs, one worker process; colour = broker "
                 "(red Redis, blue PostgreSQL, green SQLite), outlined = offload")  # fmt: skip
    fig.savefig(path, dpi=90)
    plt.close(fig)


def markdown(results: dict[str, Any], png: str, settings: str) -> str:
    """The summary README links: the table, offload's ratios, the raw limit."""
    counts, machine = results["counts"], results["machine"]
    lines = [
        f"# offload vs peers — {results['date']}",
        "",
        f"{results['mode'].capitalize()} run of `python bench/peers/run.py`: "
        f"{machine['cpus']} CPUs ({machine['cpu']}), Python {machine['python']}, "
        f"load average {machine['loadavg_start']} at start and {machine['loadavg_end']} at end "
        "(the machine was shared while it ran). One producer, one worker process.",
        "",
        f"Counts: {counts['enqueue']:,} jobs enqueued and drained, {counts['latency']} latency "
        f"probes at {counts['latency_rate']:.0f}/s, {counts['io']:,} jobs of 10 ms I/O, RSS "
        f"after {counts['memory_small']:,} (small) and {counts['memory_big']:,} (big) jobs. "
        f"Chart: [{png}]({png}); every worker's settings: [{settings}]({settings}).",
        "",
        "| library / broker | " + " | ".join(m.label for m in METRICS) + " |",
        "|---|" + "---:|" * len(METRICS),
    ]
    for row in results["rows"]:
        name = f"**{row['row']}**" if row["library"] == "offload" else row["row"]
        lines.append(f"| {name} | " + " | ".join(cell(row, m) for m in METRICS) + " |")
    for name, entry in results["ratios"].items():
        lines.append(f"| *{name} vs best peer* | "
                     + " | ".join(_ratio_text(entry[m.key]) for m in METRICS) + " |")  # fmt: skip
    lines += ["", "Ratio > 1x means offload is better; `*`: no peer on that broker, so the "
              "best peer on any broker.", ""]  # fmt: skip
    lines += _reference_markdown(results.get("reference", {}))
    lines += _problems_markdown(results["rows"])
    return "\n".join(lines) + "\n"


def _reference_markdown(reference: dict[str, Any]) -> list[str]:
    if not reference:
        return []
    lines = ["## Physical limit (raw client round trips, jobs/s)", "",
             "| client | enqueue 1-by-1 | take 1-by-1 | enqueue x100 | take x100 |",
             "|---|---:|---:|---:|---:|"]  # fmt: skip
    keys = ("enqueue_one", "take_one", "enqueue_batched", "take_batched")
    for name, rates in reference.items():
        if "error" in rates:
            lines.append(f"| {name} | {rates['error']} | | | |")
        else:
            lines.append(f"| {name} | " + " | ".join(f"{rates[k]:,.0f}" for k in keys) + " |")
    return [*lines, ""]


def _problems_markdown(rows: list[Row]) -> list[str]:
    lines = []
    for row in rows:
        if row.get("status") != "ok":
            lines.append(f"- {row['row']}: {row['status']} — {row.get('reason', '')[:300]}")
            continue
        for name, result in row["scenarios"].items():
            if result.get("status") not in ("ok", "n/a"):
                detail = result.get("error", "") or json.dumps(
                    {k: v for k, v in result.items() if k != "status"}
                )
                lines.append(f"- {row['row']} / {name}: {result['status']} {detail[:300]}")
    return ["## Not measured", "", *lines, ""] if lines else []
