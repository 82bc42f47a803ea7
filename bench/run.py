"""`make bench`: the project, the naive Channels baseline and the raw `websockets` ceiling, side by side in
one run on this machine, all over loopback, with the load generator in separate processes.

Measured now: publish→client latency (p50/p99/p99.9) at 1, 100 and 1,000 subscribers of one paper at
10 events/s, the highest sustained deliveries/s with no loss at 1,000 subscribers, and publish cost
against group size. Results: bench/results/latest.json and the table in bench/results/latest.md."""

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from paperpipeline.redis_server import free_port, start_redis_server  # noqa: E402

PYTHON = sys.executable
RESULTS = ROOT / "bench" / "results"
LOADGENS = 2  # processes; each holds half of the clients
SUBSCRIBERS = [int(n) for n in os.environ.get("BENCH_SUBSCRIBERS", "1,100,1000").split(",")]
RATES = [int(r) for r in os.environ.get("BENCH_RATES", "10,20,50,100").split(",")]
SECONDS = float(os.environ.get("BENCH_SECONDS", "8"))
TARGETS = os.environ.get("BENCH_TARGETS", "project,naive,raw").split(",")


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q * len(values)))], 2)


class Target:
    """One system under test: how to start it and what its clients and publisher need."""

    def __init__(self, name: str, env: dict[str, str], workdir: Path):
        self.name, self.env, self.workdir = name, env, workdir
        self.port = free_port()
        self.url = f"ws://127.0.0.1:{self.port}/ws/papers"
        self.client_args: list[str] = []
        self.publish_args: list[str] = []
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        if self.name == "project":
            self._prepare_project()
            command = [PYTHON, "-m", "realtime.server", "-b", "127.0.0.1", "-p", str(self.port),
                       "paperpipeline.asgi:application"]
        elif self.name == "naive":
            command = [PYTHON, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port), "bench.naive.asgi:application"]
        else:
            command = [PYTHON, "bench/raw_server.py", str(self.port)]
            self.url = f"ws://127.0.0.1:{self.port}/"
        log = (self.workdir / f"{self.name}.log").open("w")
        self.process = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        _wait_port(self.port)

    def _prepare_project(self) -> None:
        subprocess.run([PYTHON, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=self.env, check=True)
        script = (
            "from django.contrib.auth.models import User; from django.core.files.base import ContentFile;"
            "from papers.models import Paper; from rest_framework_simplejwt.tokens import AccessToken;"
            "u = User.objects.create_user('bench', password='bench-pw-123');"
            "p = Paper(owner=u, title='bench'); p.file.save('b.txt', ContentFile(b'x'), save=False); p.save();"
            "print(AccessToken.for_user(u), p.pk, u.pk)"
        )
        out = subprocess.run([PYTHON, "manage.py", "shell", "-c", script], cwd=ROOT, env=self.env, check=True,
                             capture_output=True, text=True).stdout.split()
        token, paper_id, owner_id = out[-3:]
        self.client_args = [token, paper_id]
        self.publish_args = [paper_id, owner_id]

    def stop(self) -> None:
        if self.process:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:  # a server still draining a backlog of 1,000 sockets
                self.process.kill()
                self.process.wait()


def _wait_port(port: int, timeout: float = 30) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def run_load(target: Target, subscribers: int, rate: float, seconds: float) -> dict:
    """Connect `subscribers` clients, publish at `rate` for `seconds`, and collect what arrived."""
    outs, gens = [], []
    for i in range(LOADGENS if subscribers > 1 else 1):
        share = subscribers // LOADGENS + (1 if i < subscribers % LOADGENS else 0) if subscribers > 1 else 1
        out = target.workdir / f"load-{target.name}-{subscribers}-{rate}-{i}.json"
        outs.append(out)
        gens.append(subprocess.Popen(
            [PYTHON, "bench/loadgen.py", target.name, target.url, str(share), str(out), *target.client_args],
            cwd=ROOT, env=target.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        ))
    for gen in gens:
        assert gen.stdout.readline().strip() == "READY", f"{target.name}: load generator failed"
    pub_out = target.workdir / f"pub-{target.name}-{subscribers}-{rate}.json"
    subprocess.run([PYTHON, "bench/publish.py", target.name, str(rate), str(seconds), str(pub_out),
                    *target.publish_args], cwd=ROOT, env=target.env, check=True)
    time.sleep(2)  # let the last events drain to every client before counting (a fixed grace, not a sync)
    for gen in gens:
        gen.stdin.close()
        gen.wait(timeout=60)
    published = json.loads(pub_out.read_text())
    latencies, delivered, failed = [], 0, 0
    for out in outs:
        data = json.loads(out.read_text())
        delivered += data["deliveries"]
        latencies += data["latencies_ms"]
        failed += len(data["failed_clients"])
    expected = published["published"] * subscribers
    return {
        "subscribers": subscribers, "rate": rate, "published": published["published"],
        "expected_deliveries": expected, "deliveries": delivered, "loss": round(1 - delivered / expected, 4),
        "failed_clients": failed,
        "deliveries_per_s": round(delivered / published["elapsed_s"], 1),
        "latency_ms": {"p50": percentile(latencies, 0.5), "p99": percentile(latencies, 0.99),
                       "p99.9": percentile(latencies, 0.999)},
        "publish_ms": {"p50": percentile(published["publish_ms"], 0.5),
                       "p99": percentile(published["publish_ms"], 0.99)},
    }


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="bench-"))
    redis_process, redis_url = start_redis_server(workdir=workdir / "redis")
    base_env = {**os.environ, "REDIS_URL": redis_url, "PYTHONPATH": str(ROOT), "PAPERPIPELINE_VAR_DIR": str(workdir),
                "DJANGO_DEBUG": "false", "DJANGO_SECRET_KEY": "bench-secret-key-not-for-production-0123456789",
                "WS_MAX_CONNECTIONS_PER_USER": "100000", "LOG_LEVEL": "WARNING"}
    results = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                           "platform": platform.platform()}, "targets": {}}
    try:
        for name in TARGETS:
            target = Target(name, base_env, workdir)
            target.start()
            runs = {"latency": [], "throughput": []}
            try:
                # A pause between runs lets the server finish closing the previous run's sockets.
                for subscribers in SUBSCRIBERS:
                    runs["latency"].append(run_load(target, subscribers, 10, SECONDS))
                    print(name, runs["latency"][-1], flush=True)
                    time.sleep(3)
                for rate in RATES:
                    runs["throughput"].append(run_load(target, max(SUBSCRIBERS), rate, SECONDS))
                    print(name, runs["throughput"][-1], flush=True)
                    time.sleep(3)
            finally:
                target.stop()
            lossless = [r["deliveries_per_s"] for r in runs["throughput"] if r["loss"] == 0]
            runs["max_lossless_deliveries_per_s"] = max(lossless) if lossless else 0
            results["targets"][name] = runs
    finally:
        redis_process.terminate()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(results, indent=2))
    (RESULTS / "latest.md").write_text(table(results))
    print(table(results))


def table(results: dict) -> str:
    """The comparison table, with the project's ratios to the baseline and the ceiling."""
    t = results["targets"]
    if set(t) != {"project", "naive", "raw"}:
        return json.dumps(t, indent=1) + "\n"
    lines = ["| metric | project | naive baseline | raw ceiling |", "|---|---|---|---|"]
    for i, subs in enumerate(SUBSCRIBERS):
        row = [t[n]["latency"][i] for n in ("project", "naive", "raw")]
        lines.append(f"| p50 / p99 / p99.9 ms, {subs} subs @10/s | " + " | ".join(
            f"{r['latency_ms']['p50']} / {r['latency_ms']['p99']} / {r['latency_ms']['p99.9']} (loss {r['loss']:.1%})"
            for r in row) + " |")
        lines.append(f"| publish p50 / p99 ms, {subs} subs | " + " | ".join(
            f"{r['publish_ms']['p50']} / {r['publish_ms']['p99']}" for r in row) + " |")
    best = {n: t[n]["max_lossless_deliveries_per_s"] for n in t}
    subs = max(SUBSCRIBERS)
    lines.append(f"| max lossless deliveries/s, {subs} subs | {best['project']} | {best['naive']} | {best['raw']} |")
    ratio_raw = best["project"] / best["raw"] if best["raw"] else 0
    ratio_naive = best["project"] / best["naive"] if best["naive"] else float("inf")
    lines.append(f"\nproject / raw ceiling: {ratio_raw:.2f}× (target ≥ 0.7×); "
                 f"project / naive: {ratio_naive:.2f}× (target ≥ 3×)")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
