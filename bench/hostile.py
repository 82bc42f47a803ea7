"""Hostile uploads against the pipeline's parsers: time and peak memory of each, one fresh process per case.

    .venv/bin/python bench/hostile.py [--size 1000000] [--timeout 120] [--memory-mb 1024] [CASE ...]

Text cases run normalization, entity and relationship extraction on a text of about --size characters;
PDF cases run text extraction (in its child process, under --memory-mb of address space as a worker has).
A case still running after --timeout seconds is killed and reported as such.
"""

import argparse
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TEXT_CASES = {
    "unbroken word": lambda n: "a" * n,
    "capitalized word": lambda n: "A" + "a" * n,
    "soft hyphen, spaces": lambda n: "a\u00ad" + " " * n + ".",
    "hyphen, spaces": lambda n: "a-" + " " * n + ".",
    "proposed names": lambda n: "".join(f"We propose Foo{i}Net. " for i in range(n // 20)),
    "digits after a name": lambda n: "BERT" + "1" * n + "x",
    "digit-letter pairs": lambda n: "1a" * (n // 2),
    "acronym-like words": lambda n: "Aaaaaaa-bbbbbbb'cc " * (n // 19),
    "mentions without spaces": lambda n: "BERT,uses,RoBERTa,is,evaluated,on,SQuAD," * (n // 40),
}
# (pages, lines of 200 characters per page, times each page draws the shared stream)
PDF_CASES = {
    "pdf bomb, 300 pages x 230 K chars": (300, 1150, 1),
    "pdf bomb, 1 page x 460 M chars": (1, 1150, 2000),
    "pdf, 501 pages": (501, 1, 1),
}


def run_case(name: str, size: int) -> None:
    """Run one case in this process and print what it produced."""
    if name in TEXT_CASES:
        from papers.pipeline.entities import extract_entities
        from papers.pipeline.relationships import extract_relationships
        from papers.pipeline.text import normalize_text

        text = normalize_text(TEXT_CASES[name](size))
        entities = extract_entities(text)
        relationships = extract_relationships(text, entities)
        print(f"{len(text)} chars, {len(entities)} entities, {len(relationships)} relationships")
        return
    from papers.pipeline.text import TextExtractionError

    try:
        from papers.pipeline.isolated import extract_text_isolated
    except ImportError:  # before text extraction had a child process of its own: measure it in-process
        from papers.pipeline.text import extract_text as extract_text_isolated
    from tests.pipeline.test_limits import shared_stream_pdf

    pages, lines, repeats = PDF_CASES[name]
    with tempfile.TemporaryDirectory() as folder:
        pdf = shared_stream_pdf(Path(folder) / "bomb.pdf", pages=pages, lines=lines, repeats=repeats)
        try:
            print(f"{pdf.stat().st_size} B file: {len(extract_text_isolated(str(pdf)))} chars")
        except TextExtractionError as exc:
            print(f"{pdf.stat().st_size} B file: {exc.code}")


def measure(name: str, args: argparse.Namespace) -> str:
    """Run a case in a child process; its wall time, peak RSS (itself and its children) and output."""
    command = [sys.executable, __file__, "--run", name, "--size", str(args.size), "--memory-mb", str(args.memory_mb)]
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True, start_new_session=True)
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() - started > args.timeout:
            os.killpg(process.pid, signal.SIGKILL)
            os.wait4(process.pid, 0)
            return f"| {name} | killed after {args.timeout} s | | |"
        time.sleep(0.05)
    output = process.stdout.read().strip().replace("\n", " ")
    return f"| {name} | {time.monotonic() - started:.1f} s | {usage.ru_maxrss // 1024} MiB | {output} |"


def main() -> None:
    """Measure the chosen cases (all by default) and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cases", nargs="*", default=[*TEXT_CASES, *PDF_CASES])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--timeout", type=float, default=120)
    parser.add_argument("--memory-mb", type=int, default=1024)
    parser.add_argument("--run", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        if args.memory_mb:
            resource.setrlimit(resource.RLIMIT_AS, (args.memory_mb * 1024 * 1024, resource.RLIM_INFINITY))
        run_case(args.run, args.size)
        return
    print("| case | time | peak RSS | result |\n|---|---|---|---|")
    for name in args.cases:
        print(measure(name, args), flush=True)


if __name__ == "__main__":
    main()
