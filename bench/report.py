"""The bench's table (bench/results/latest.md) and plot (bench/results/latency.png) from its results."""

from pathlib import Path

NAMES = ("project", "naive", "raw")


def _ratio(a: float | None, b: float | None) -> str:
    if a and b == 0:
        return "∞ (none lossless)"
    return f"{a / b:.2f}×" if a is not None and b else "–"


def _latency(run: dict) -> str:
    ms = run["latency_ms"]
    loss = f"{run['loss']:.1%} loss" + (f", {run['failed_clients']} failed clients" if run["failed_clients"] else "")
    return f"{ms['p50']} / {ms['p99']} / {ms['p99.9']} ({loss})"


def _at_best(runs: list[dict]) -> dict | None:
    """The lossless run with the most deliveries/s."""
    lossless = [r for r in runs if r["loss"] == 0]
    return max(lossless, key=lambda r: r["deliveries_per_s"]) if lossless else None


def table(results: dict) -> str:
    """Markdown: each metric for project, naive and raw, with the project's ratios and the issue's targets."""
    t = results["targets"]
    have = [n for n in NAMES if n in t]
    get = {n: t.get(n) for n in NAMES}
    head = "| metric | " + " | ".join(have) + " | project / raw | project / naive | target |"
    lines = [head, "|" + "---|" * (len(have) + 4)]

    def row(metric: str, cells: dict, ratio_raw: str = "–", ratio_naive: str = "–", target: str = "") -> None:
        lines.append(f"| {metric} | " + " | ".join(str(cells.get(n, "–")) for n in have)
                     + f" | {ratio_raw} | {ratio_naive} | {target} |")

    for i, subs in enumerate(results["settings"]["subscribers"]):
        runs = {n: get[n]["latency"][i] for n in have}
        p99 = {n: runs[n]["latency_ms"]["p99"] for n in have}
        row(f"latency p50 / p99 / p99.9 ms, {subs} subs @10/s", {n: _latency(r) for n, r in runs.items()},
            _ratio(p99.get("project"), p99.get("raw")), _ratio(p99.get("project"), p99.get("naive")),
            "p99 ≤ 1.5× raw, no loss")
        row(f"publish p50 / p99 ms, {subs} subs", {n: f"{r['publish_ms']['p50']} / {r['publish_ms']['p99']}"
                                                   for n, r in runs.items()}, target="p99 ≤ 1 ms, flat")
    best = {n: get[n]["max_lossless_deliveries_per_s"] for n in have}
    subs = results["settings"]["sweep_subscribers"]
    row(f"max lossless deliveries/s, {subs} subs, 1 process", best, _ratio(best.get("project"), best.get("raw")),
        _ratio(best.get("project"), best.get("naive")), "≥ 0.7× raw, ≥ 3× naive")
    at_best = {n: _at_best(get[n]["throughput"]) for n in have}
    row("server / load generators CPU % at that rate", {
        n: f"{r['server_cpu_pct']} / {' + '.join(map(str, r['loadgen_cpu_pct']))}" if r else "–"
        for n, r in at_best.items()}, target="load generators below 100 %")
    memory = {n: get[n]["idle_memory"]["kib_per_connection"] for n in have}
    row(f"KiB per idle subscribed connection, {results['settings']['idle']} connections", memory,
        _ratio(memory.get("project"), memory.get("raw")), _ratio(memory.get("project"), memory.get("naive")),
        "≤ 30 KiB")
    rate = {n: get[n]["connect"]["per_s"] for n in have}
    row("connects (+ authenticate + subscribe) per s, 1,000 at once", rate,
        _ratio(rate.get("project"), rate.get("raw")), _ratio(rate.get("project"), rate.get("naive")))
    project = get["project"]
    if project:
        storm = project["reconnect_storm"]
        row(f"reconnect storm with since: {storm['clients']} clients resumed, s",
            {"project": f"{storm['seconds']} ({storm['failed_clients']} failed)"}, target="≤ 5 s")
        deflate = project["compression"]
        row("permessage-deflate: KiB per idle connection / max lossless deliveries/s",
            {"project": f"{deflate['idle_memory']['kib_per_connection']} / {deflate['max_lossless_deliveries_per_s']}"})
        scale = project["scale_out"]
        row("max lossless deliveries/s, 2 Daphne processes",
            {"project": f"{scale['max_lossless_deliveries_per_s']} (1 process: {best['project']})"})
    machine = results["machine"]
    lines.append(f"\n{machine['date']}, {machine['cpus']} CPUs, Python {machine['python']}, {machine['platform']}, "
                 f"{results['settings']['database']}; load generators: {results['settings']['loadgens']} processes.")
    return "\n".join(lines) + "\n"


def plot(results: dict, path: Path) -> None:
    """Latency p50 and p99 against subscribers for each target, log-log."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    colors = {"project": "tab:blue", "naive": "tab:red", "raw": "tab:green"}
    for name, data in results["targets"].items():
        runs = [r for r in data["latency"] if r["latency_ms"]["p50"] is not None]
        subs = [r["subscribers"] for r in runs]
        ax.plot(subs, [r["latency_ms"]["p50"] for r in runs], "o-", color=colors[name], label=f"{name} p50")
        ax.plot(subs, [r["latency_ms"]["p99"] for r in runs], "s--", color=colors[name], label=f"{name} p99")
        for r in runs:
            if r["loss"] > 0:
                ax.annotate(f"{r['loss']:.0%} lost", (r["subscribers"], r["latency_ms"]["p99"]), fontsize=7,
                            color=colors[name], textcoords="offset points", xytext=(4, 4))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("subscribers of one paper (10 events/s)")
    ax.set_ylabel("publish → client latency, ms")
    ax.set_title("Latency against subscribers (one Daphne process)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
