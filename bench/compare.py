"""Bench runs side by side: `python bench/compare.py LABEL=RUN.json LABEL=RUN.json ...` prints the project's
figures of each run (with the raw and batched ceilings', when a run has them, as the yardstick of how much the
machine itself moved between runs) and, for two runs, the ratio of the second to the first; for one run, the
project's ratio to its batched ceiling."""

import json
import sys
from pathlib import Path


def _latency(run: dict, subscribers: int, key: str) -> float | None:
    """p50 or p99 ms of the latency run at this many subscribers (10 events/s)."""
    for entry in run.get("latency", []):
        if entry["subscribers"] == subscribers and not entry["loss"]:
            return entry["latency_ms"][key]
    return None


def _sweep(run: dict, rate: int, key: str) -> float | None:
    """p50 or p99 ms, server CPU % or CPU µs per delivery at one step of the sweep, if it lost nothing."""
    for entry in run.get("throughput", []):
        if entry["rate"] == rate and not entry["loss"]:
            if key == "us":
                return entry.get("server_cpu_us_per_delivery")
            return entry["server_cpu_pct"] if key == "cpu" else entry["latency_ms"][key]
    return None


def figures(run: dict) -> dict[str, float | None]:
    """The comparable figures of one target's results."""
    rows = {
        "KiB per idle subscribed connection": run["idle_memory"]["kib_per_connection"],
        "connect + authenticate + subscribe per s (1,000 at once)": run["connect"]["per_s"],
        "max lossless deliveries/s, 1,000 subscribers": run["max_lossless_deliveries_per_s"],
        "sustainable deliveries/s (p99 ≤ 250 ms), 1,000 subscribers": run.get("sustainable_deliveries_per_s"),
    }
    for subscribers in (1, 100, 1000):
        for key in ("p50", "p99"):
            rows[f"{key} ms, {subscribers:,} subscribers @10/s"] = _latency(run, subscribers, key)
    for rate in (30, 80):
        for key, name in (("p50", "p50 ms"), ("p99", "p99 ms"), ("cpu", "server CPU %"),
                          ("us", "server CPU µs per delivery")):
            rows[f"sweep, 1,000 subscribers @{rate}/s: {name}"] = _sweep(run, rate, key)
    if "reconnect_storm" in run:
        storm = run["reconnect_storm"]
        rows[f"reconnect storm, {storm['clients']:,} clients: s until all resumed"] = storm["seconds"]
    if "compression" in run:
        rows["permessage-deflate: max lossless deliveries/s"] = run["compression"]["max_lossless_deliveries_per_s"]
    if "scale_out" in run:
        n = run["scale_out"].get("daphnes", 2)
        rows[f"{n} Daphne processes: max lossless deliveries/s"] = run["scale_out"]["max_lossless_deliveries_per_s"]
        if "connect" in run["scale_out"]:
            rows[f"{n} Daphne processes: connects per s (1,000 at once)"] = run["scale_out"]["connect"]["per_s"]
    return rows


def _cell(value: float | None) -> str:
    return "–" if value is None else f"{value:,}"


def table(runs: list[tuple[str, dict]]) -> str:
    """Markdown: one row per figure, one column per run (project, then raw and batched where present)."""
    project = [(label, figures(result["targets"]["project"])) for label, result in runs]
    ceilings = [(f"{name}, {label}", figures(result["targets"][name])) for name in ("raw", "batched")
                for label, result in runs if name in result["targets"]]
    header = [f"project, {label}" for label, _ in project]
    if len(project) == 2:
        header.append("second / first")
    batched = [figs for name, figs in ceilings if name.startswith("batched")]
    if len(project) == 1 and batched:
        header.append("project / batched")
    header += [name for name, _ in ceilings]
    lines = ["| metric | " + " | ".join(header) + " |", "|---" * (len(header) + 1) + "|"]
    names = [name for name in project[0][1] if any(figs.get(name) is not None for _, figs in project)]
    for name in names:
        cells = [_cell(figs.get(name)) for _, figs in project]
        if len(project) == 2:
            first, second = project[0][1].get(name), project[1][1].get(name)
            cells.append(f"{second / first:.2f}×" if first and second is not None else "–")
        if len(project) == 1 and batched:
            mine, ceiling = project[0][1].get(name), batched[0].get(name)
            cells.append(f"{mine / ceiling:.2f}×" if mine is not None and ceiling else "–")
        cells += [_cell(figs.get(name)) for _, figs in ceilings]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    runs = []
    for argument in sys.argv[1:]:
        label, _, path = argument.rpartition("=")
        runs.append((label or Path(path).stem, json.loads(Path(path).read_text())))
    print(table(runs), end="")
