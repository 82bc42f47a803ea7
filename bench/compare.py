"""Two bench runs side by side (`python bench/compare.py BEFORE.json AFTER.json`): the project's figures, with
the raw ceiling's as the yardstick of how much the machine itself moved between the runs."""

import json
import sys
from pathlib import Path


def _latency(run: dict, subscribers: int, key: str) -> float | None:
    """p50 or p99 ms of the latency run at this many subscribers (10 events/s)."""
    for entry in run.get("latency", []):
        if entry["subscribers"] == subscribers and not entry["loss"]:
            return entry["latency_ms"][key]
    return None


def figures(run: dict) -> dict[str, float | None]:
    """The comparable figures of one target's results."""
    rows = {
        "KiB per idle subscribed connection": run["idle_memory"]["kib_per_connection"],
        "connect + authenticate + subscribe per s (1,000 at once)": run["connect"]["per_s"],
        "max lossless deliveries/s, 1,000 subscribers": run["max_lossless_deliveries_per_s"],
    }
    for subscribers in (1, 100, 1000):
        for key in ("p50", "p99"):
            rows[f"{key} ms, {subscribers:,} subscribers @10/s"] = _latency(run, subscribers, key)
    if "reconnect_storm" in run:
        rows["reconnect storm, s until all resumed"] = run["reconnect_storm"]["seconds"]
    if "compression" in run:
        rows["permessage-deflate: max lossless deliveries/s"] = run["compression"]["max_lossless_deliveries_per_s"]
    if "scale_out" in run:
        rows["two Daphne processes: max lossless deliveries/s"] = run["scale_out"]["max_lossless_deliveries_per_s"]
    return rows


def _cell(value: float | None) -> str:
    return "–" if value is None else f"{value:,}"


def _ratio(before: float | None, after: float | None) -> str:
    return f"{after / before:.2f}×" if before and after is not None else "–"


def table(before: dict, after: dict) -> str:
    """Markdown: each figure of the project before and after, and the raw ceiling's as the machine's yardstick."""
    lines = [
        f"| metric | project {before['machine']['date']} (before) | project {after['machine']['date']} (after) "
        "| after / before | raw before | raw after |",
        "|---|---|---|---|---|---|",
    ]
    project_before, project_after = figures(before["targets"]["project"]), figures(after["targets"]["project"])
    raw_before = figures(before["targets"]["raw"]) if "raw" in before["targets"] else {}
    raw_after = figures(after["targets"]["raw"]) if "raw" in after["targets"] else {}
    for name, value in project_before.items():
        lines.append(f"| {name} | {_cell(value)} | {_cell(project_after.get(name))} | "
                     f"{_ratio(value, project_after.get(name))} | {_cell(raw_before.get(name))} | "
                     f"{_cell(raw_after.get(name))} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    old, new = (json.loads(Path(name).read_text()) for name in sys.argv[1:3])
    print(table(old, new), end="")
