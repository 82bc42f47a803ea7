"""`make bench-connects`: the connect rate of /ws/papers on Daphne (realtime.server, as `make run` serves it) and on
uvicorn (its `websockets` implementation, the same ASGI application), beside the raw `websockets` ceiling.

Each repeat starts every server fresh, warms it with WARM_UP connects, then measures as `make bench` does
CONNECTS clients connecting at once (connect + authenticate + subscribe) and, for the project, the reconnect
storm of STORM clients resuming with `since`. Results: bench/results/connect-servers.json and the table in
bench/results/connect-servers.md."""

import json
import os
import tempfile
from pathlib import Path

from bench.run import (
    CONNECTS,
    REPLAYED,
    RESULTS,
    STORM,
    Target,
    base_environment,
    bench_database,
    connect_rate,
    machine,
)
from paperpipeline.redis_server import start_redis_server

REPEATS = int(os.environ.get("BENCH_CONNECT_REPEATS", "3"))
WARM_UP = 100  # clients connected once and discarded before measuring
SYSTEMS = (("project", "daphne"), ("project", "uvicorn"), ("raw", "daphne"))


def measure(name: str, server: str, env: dict[str, str], workdir: Path) -> dict:
    """One fresh server: the connect rate, and for the project the reconnect storm with `since`."""
    target = Target(name, env, workdir, server=server)
    target.start()
    try:
        connect_rate(target, WARM_UP)  # the first connects of a process load code and open connections
        result = {"connect": connect_rate(target, CONNECTS)}
        if name == "project" and STORM > 0:
            result["reconnect_storm"] = connect_rate(target, STORM, "--since", str(target.last_seq - REPLAYED),
                                                     "--replay", str(REPLAYED))
    finally:
        target.stop()
    print(target.label, result, flush=True)
    return result


def table(results: dict) -> str:
    """Per system and repeat: connects/s, server CPU while connecting, and the storm's seconds."""
    lines = ["| system | connects/s, repeats | server CPU % while connecting | reconnect storm s (failed) |",
             "|---|---|---|---|"]
    for label, runs in results["systems"].items():
        rates = " / ".join(str(run["connect"]["per_s"]) for run in runs)
        cpu = " / ".join(str(run["connect"]["server_cpu_pct"]) for run in runs)
        storms = " / ".join(f'{run["reconnect_storm"]["seconds"]} ({run["reconnect_storm"]["failed_clients"]})'
                            for run in runs if "reconnect_storm" in run) or "—"
        lines.append(f"| {label} | {rates} | {cpu} | {storms} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="bench-connects-"))
    with bench_database() as database_url:
        redis_process, redis_url = start_redis_server(workdir=workdir / "redis")
        env = base_environment(workdir, database_url, redis_url)
        results = {"machine": machine(),
                   "settings": {"connects": CONNECTS, "storm": STORM, "repeats": REPEATS,
                                "database": "PostgreSQL" if database_url else "SQLite"},
                   "systems": {}}
        try:
            for _ in range(REPEATS):  # interleaved: a slow spell of the machine hits every system alike
                for name, server in SYSTEMS:
                    label = name if name != "project" else f"project ({server})"
                    results["systems"].setdefault(label, []).append(measure(name, server, env, workdir))
        finally:
            redis_process.terminate()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "connect-servers.json").write_text(json.dumps(results, indent=2))
    (RESULTS / "connect-servers.md").write_text(table(results))
    print(table(results))


if __name__ == "__main__":
    main()
