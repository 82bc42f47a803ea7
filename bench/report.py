"""The bench's table (bench/results/latest.md) and plot (bench/results/latency.png) from its results."""

from pathlib import Path

NAMES = ("project", "naive", "raw", "batched")
BASELINES = ("batched", "raw", "naive")  # the project's ratio to each, first the ceiling the targets name
TARGET_RATES = (10, 30, 80)  # sweep steps (events/s) at which the latency tail and the cost per delivery are compared


def _ratio(a: float | None, b: float | None) -> str:
    if a and b == 0:
        return "∞ (baseline 0)"
    return f"{a / b:.2f}×" if a is not None and b else "–"


def _latency(run: dict) -> str:
    ms = run["latency_ms"]
    loss = f"{run['loss']:.1%} loss" + (f", {run['failed_clients']} failed clients" if run["failed_clients"] else "")
    return f"{ms['p50']} / {ms['p99']} / {ms['p99.9']} ({loss})"


def _at_best(runs: list[dict]) -> dict | None:
    """The lossless run with the most deliveries/s."""
    lossless = [r for r in runs if r["loss"] == 0]
    return max(lossless, key=lambda r: r["deliveries_per_s"]) if lossless else None


def _step(runs: list[dict], rate: int) -> dict | None:
    """The sweep's run at this rate, if the sweep got that far."""
    return next((r for r in runs if r["rate"] == rate), None)


def _sustainable(target: dict) -> str:
    """Sustainable deliveries/s; "–" for results from before the bench measured it."""
    return str(target.get("sustainable_deliveries_per_s", "–"))


def table(results: dict) -> str:
    """Markdown: each metric for every system, with the project's ratio to each baseline and the issue's targets."""
    t = results["targets"]
    have = [n for n in NAMES if n in t]
    get = {n: t.get(n) for n in NAMES}
    bases = [n for n in BASELINES if n in t and "project" in t]
    head = "| metric | " + " | ".join(have) + "".join(f" | project / {b}" for b in bases) + " | target |"
    lines = [head, "|" + "---|" * (len(have) + len(bases) + 2)]

    def row(metric: str, cells: dict, ratios: dict | None = None, target: str = "", shares: list | None = None):
        """One metric; `ratios`: the figure per system from which the project's ratios are taken (or `shares`, the
        ratio column per baseline, given)."""
        if shares is None:
            shares = [_ratio(ratios.get("project"), ratios.get(b)) if ratios else "–" for b in bases]
        lines.append(f"| {metric} | " + " | ".join(str(cells.get(n, "–")) for n in have)
                     + "".join(f" | {s}" for s in shares) + f" | {target} |")

    for i, subs in enumerate(results["settings"]["subscribers"]):
        runs = {n: get[n]["latency"][i] for n in have}
        row(f"latency p50 / p99 / p99.9 ms, {subs} subs @10/s", {n: _latency(r) for n, r in runs.items()},
            {n: r["latency_ms"]["p99"] for n, r in runs.items()}, "p99 ≤ 1.5× batched, no loss")
        row(f"publish p50 / p99 ms, {subs} subs", {n: f"{r['publish_ms']['p50']} / {r['publish_ms']['p99']}"
                                                   for n, r in runs.items()}, target="p50 ≤ 1 ms, flat")
    best = {n: get[n]["max_lossless_deliveries_per_s"] for n in have}
    subs = results["settings"]["sweep_subscribers"]
    row(f"max lossless deliveries/s (none later than 2 s), {subs} subs, 1 process", best, best, "≥ 120,000 (kept)")
    limit = results["settings"].get("sustainable_p99_ms", 250)
    sustained = {n: get[n].get("sustainable_deliveries_per_s") for n in have}
    row(f"sustainable deliveries/s (no loss, p99 ≤ {limit} ms), {subs} subs, 1 process",
        {n: _sustainable(get[n]) for n in have}, sustained)
    at_best = {n: _at_best(get[n]["throughput"]) for n in have}
    row("server / load generators CPU % at the max lossless rate", {
        n: f"{r['server_cpu_pct']} / {' + '.join(map(str, r['loadgen_cpu_pct']))}" if r else "–"
        for n, r in at_best.items()}, target="load generators below 100 %")
    for rate in [r for r in results["settings"]["rates"] if r in TARGET_RATES]:
        step = {n: _step(get[n]["throughput"], rate) for n in have}
        p99 = {n: r["latency_ms"]["p99"] if r and not r["loss"] else None for n, r in step.items()}
        row(f"sweep @{rate}/s, {subs} subs: latency p50 / p99 / p99.9 ms",
            {n: _latency(r) if r else "–" for n, r in step.items()}, p99,
            "p99 ≤ 1.5× batched, no loss")
        cost = {n: r.get("server_cpu_us_per_delivery") if r else None for n, r in step.items()}
        row(f"sweep @{rate}/s, {subs} subs: server CPU µs per delivery",
            {n: "–" if c is None else c for n, c in cost.items()}, cost, "≤ 1.2× batched")
    _tail_rows(results, get, have, bases, row)
    memory = {n: get[n]["idle_memory"]["kib_per_connection"] for n in have}
    row(f"KiB per idle subscribed connection, {results['settings']['idle']} connections", memory, memory,
        "≤ 24 KiB")
    rate = {n: get[n]["connect"]["per_s"] for n in have}
    row("connects (+ authenticate + subscribe) per s, 1,000 at once", rate, rate, "≥ 0.7× raw")
    project = get["project"]
    if project:
        storm = project.get("reconnect_storm")  # absent with BENCH_STORM=0
        if storm:
            row(f"reconnect storm with since: {storm['clients']} clients resumed, s",
                {"project": f"{storm['seconds']} ({storm['failed_clients']} failed)"}, target="≤ 5 s")
        if project.get("gc"):
            row("longest garbage-collection pause, ms (each project server of the first run: gen0 / gen1 / gen2)",
                {"project": "; ".join(" / ".join(str(g["longest_ms"]) for g in each["generations"])
                                      for each in project["gc"])})
            row("longest full collection, ms, by when it ran (quiet: fan-out idle; busy: waited 30 s; other: start-up)",
                {"project": "; ".join(_full_pauses(each) for each in project["gc"])})
        deflate = project["compression"]
        row("permessage-deflate: KiB per idle connection / max lossless / sustainable deliveries/s",
            {"project": f"{deflate['idle_memory']['kib_per_connection']} / {deflate['max_lossless_deliveries_per_s']}"
                        f" / {_sustainable(deflate)}"})
        scale = project.get("scale_out")  # absent with BENCH_WEB_PROCESSES=1
        if scale:
            n = scale["daphnes"]
            row(f"{n} Daphne processes on one port: max lossless / sustainable deliveries/s",
                {"project": f"{scale['max_lossless_deliveries_per_s']} / {_sustainable(scale)} "
                            f"(1 process: {best['project']} / {_sustainable(project)})"})
            if "connect" in scale:
                row(f"{n} Daphne processes on one port: connects (+ authenticate + subscribe) per s, 1,000 at once",
                    {"project": f"{scale['connect']['per_s']} (1 process: {project['connect']['per_s']})"})
    machine = results["machine"]
    lines.append(f"\n{machine['date']}, {machine['cpus']} CPUs, Python {machine['python']}, {machine['platform']}, "
                 f"{results['settings']['database']}; load generators: {results['settings']['loadgens']} processes.")
    return "\n".join(lines) + "\n"


def _full_pauses(stats: dict) -> str:
    """One server's longest full collection per reason it ran (realtime.gctune)."""
    return ", ".join(f"{why} {ms}" for why, ms in sorted(stats.get("longest_full_ms", {}).items()))


def _worst_ratio(mine: list, theirs: list) -> str:
    """The largest ratio of one repeat's figure to the same repeat's baseline figure."""
    pairs = [(a, b) for a, b in zip(mine, theirs, strict=True) if a is not None and b]
    if not pairs or len(pairs) < len(mine):
        return "– (a repeat lost events)"
    return f"{max(a / b for a, b in pairs):.2f}× (worst repeat)"


def _tail_rows(results: dict, get: dict, have: list, bases: list, row) -> None:
    """The repeated tail steps: each repeat's p99 and cost per delivery, and the project's worst ratio per repeat."""
    tailed = [n for n in have if get[n].get("tail")]
    if "project" not in tailed:
        return
    subs = results["settings"]["sweep_subscribers"]
    for column, rate in enumerate(results["settings"]["tail_rates"]):
        repeats = {n: [steps[column] for steps in get[n]["tail"]] for n in tailed}
        p99 = {n: [r["latency_ms"]["p99"] if not r["loss"] else None for r in runs] for n, runs in repeats.items()}
        cost = {n: [r["server_cpu_us_per_delivery"] for r in runs] for n, runs in repeats.items()}
        count = len(repeats["project"])
        for label, figures, target in (("latency p99 ms", p99, "p99 ≤ 1.5× batched in each repeat, no loss"),
                                       ("server CPU µs per delivery", cost, "≤ 1.2× batched")):
            row(f"tail @{rate}/s, {subs} subs, {count} repeats: {label}",
                {n: " / ".join("lost" if f is None else str(f) for f in figures[n]) for n in tailed},
                target=target,
                shares=[_worst_ratio(figures["project"], figures[b]) if b in figures else "–" for b in bases])


def plot(results: dict, path: Path) -> None:
    """Latency p50 and p99 against subscribers for each target, log-log."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    colors = {"project": "tab:blue", "naive": "tab:red", "raw": "tab:green", "batched": "tab:purple"}
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
