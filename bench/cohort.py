"""Benchmark of the population pipeline (cohort): DuckDB, Spark and two pandas baselines on synthetic OMOP data.

1. Data. `generate()` writes about --rows drug_exposure rows (default 10 million) to --data, once;
   later runs reuse it. The generation time and rate are printed.
2. Engines. `duckdb` and `spark` run `run_cohort`. `pandas` is the issue's baseline, a straightforward
   pandas implementation of the same job (`cohort_pandas_plain.run_plain`: merges, sort_values and
   groupby shift/cummax/cumsum/agg; it reads the files, maps the products with the pipeline's own
   Python mapper and writes the same six outputs). `tuned` is a hand-tuned NumPy/pandas version of the
   episode step only (`cohort_pandas.run_pandas`): its product mapping and lookups are built before
   the clock and its episodes file is written after it, so it measures the core alone.
3. Speed and memory. Each engine runs in a fresh subprocess of this script (`--only ENGINE --json`),
   so peak memory is that engine's alone: wall time from the input files to every output file (the
   tuned baseline: to the episode table in memory), rows/s, CPU seconds, and peak RSS sampled every
   50 ms, the process plus its children (Spark's JVM), taken with the process's ru_maxrss where that
   is higher. The knowledge base is loaded before the clock starts for every engine. Growth is the
   peak minus the RSS before the engine started. Ratios are baseline seconds / engine seconds.
   DuckDB runs with --memory-limit (default 6GB, so that the whole process stays under 8 GB) and
   spills beyond it to a folder next to the outputs.
4. Agreement. Spark's and the pandas baseline's six outputs, and the tuned baseline's episode table,
   against DuckDB's, row by row on each output's keys: whole numbers and texts exactly, reals within
   1e-9 relative (float noise around zero, e.g. 1e-15 where the exact value is 0 or NULL, is counted
   apart). Before the timed runs both baselines are checked against DuckDB on a small data set
   (--check-rows).

--big runs only DuckDB on 100 million rows. No timed asserts: the figures are printed.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import pickle
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pyarrow.dataset as pads

from benzotaper.cohort.engine import DuckDBEngine, SparkEngine
from benzotaper.cohort.generate import generate
from benzotaper.cohort.pipeline import default_settings, run_cohort
from benzotaper.knowledge import load_knowledge
from cohort_pandas import check_equal, compare_detail, prepare, read_episodes, run_pandas
from cohort_pandas_plain import compare_outputs, run_plain

ROOT = Path("/tmp/benzotaper-cohort-bench")
DEFAULT_ROWS = 10_000_000
BIG_ROWS = 100_000_000
MEMORY_LIMIT = "6GB"
ENGINES = ("duckdb", "spark", "pandas", "tuned")
BASELINES = ("pandas", "tuned")
MARK = "COHORT-BENCH-RESULT "
MB = 1024 * 1024


class PeakRss:
    """Peak RSS of this process and all its children (Spark's JVM), sampled every `interval` seconds."""

    def __init__(self, interval: float = 0.05):
        self.interval = interval
        self.proc = psutil.Process()
        self.baseline = self.sample()
        self.peak = self.baseline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> int:
        total = self.proc.memory_info().rss
        for child in self.proc.children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                total += child.memory_info().rss
        return total

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, self.sample())

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.sample(), ru_maxrss())


def cpu_seconds() -> float:
    """User + system CPU time of this process so far (all its threads: DuckDB's and pandas' alike)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def ru_maxrss() -> int:
    """Lifetime peak RSS of this process in bytes (Linux reports kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def count_rows(source: Path) -> int:
    return int(pads.dataset(source / "drug_exposure", format="parquet").count_rows())


def ensure_data(data: Path, rows: int) -> None:
    """Generate the data set unless a complete one is there (generate() writes generated.json last)."""
    if (data / "generated.json").exists() or (data / "truth" / "generated.json").exists():
        return
    if data.exists() and any(data.iterdir()):
        raise SystemExit(f"{data} holds an incomplete data set (no generated.json): delete it or pass --data")
    print(f"generating {rows:,} rows in {data} ...", flush=True)
    done = 0

    def progress(n: int) -> None:
        nonlocal done
        done += n
        print(f"  {done:,} rows, {time.perf_counter() - t0:.0f} s", flush=True)

    t0 = time.perf_counter()
    g = generate(data, rows, progress=progress)
    wall = time.perf_counter() - t0
    print(f"generated {g.rows:,} rows ({g.persons:,} persons) in {wall:.1f} s: {g.rows / wall:,.0f} rows/s", flush=True)


# ---------------------------------------------------------------------------------------------------------------
# One engine, in its own process


def run_one(
    engine: str, source: Path, out: Path, threads: int, lookups: Path | None, memory_limit: str = MEMORY_LIMIT
) -> dict[str, Any]:
    """Time one engine on `source`; return the figures (the parent prints them)."""
    out.mkdir(parents=True, exist_ok=True)
    rows = count_rows(source)
    steps: dict[str, float] = {}
    if engine == "pandas":
        import pyarrow as pa

        pa.set_cpu_count(threads)
        pa.set_io_thread_count(threads)
        knowledge = load_knowledge()
        settings = default_settings(knowledge)
        gc.collect()
        with PeakRss() as mem:
            t0, c0 = time.perf_counter(), cpu_seconds()
            outputs = run_plain(source, out, settings, knowledge)
            seconds, cpu = time.perf_counter() - t0, cpu_seconds() - c0
        startup = 0.0
        episodes = len(outputs["episodes"])
    elif engine == "tuned":
        import pyarrow as pa

        pa.set_cpu_count(threads)
        pa.set_io_thread_count(threads)
        if lookups is not None and lookups.exists():
            settings, lk = pickle.loads(lookups.read_bytes())
        else:
            settings, lk = prepare(source)
        gc.collect()
        with PeakRss() as mem:
            t0, c0 = time.perf_counter(), cpu_seconds()
            df = run_pandas(source, settings, lk)
            seconds, cpu = time.perf_counter() - t0, cpu_seconds() - c0
        startup = 0.0
        t0 = time.perf_counter()
        df.to_parquet(out / "episodes.parquet", index=False)
        steps = {"write episodes (not in seconds)": time.perf_counter() - t0}
        episodes = len(df)
    else:
        knowledge = load_knowledge()
        with PeakRss() as mem:
            t0 = time.perf_counter()
            if engine == "duckdb":
                tmp = out.parent / "duckdb-tmp"
                tmp.mkdir(parents=True, exist_ok=True)
                eng: Any = DuckDBEngine(threads=threads, memory_limit=memory_limit, temp_dir=tmp)
            else:
                eng = SparkEngine(master=f"local[{threads}]")
            startup = time.perf_counter() - t0
            t0, c0 = time.perf_counter(), cpu_seconds()
            result = run_cohort(source, out, eng, knowledge=knowledge)
            seconds, cpu = time.perf_counter() - t0, cpu_seconds() - c0
        steps = result.timings
        episodes = int(result.summary["episodes"])
        eng.close()
        if engine == "spark":
            eng.spark.stop()
    return {
        "engine": engine,
        "rows": rows,
        "seconds": seconds,
        "cpu_s": cpu if engine != "spark" else None,  # Spark's work is in its JVM, a child process still running
        "startup_s": startup,
        "rows_per_s": rows / seconds,
        "peak_rss_mb": mem.peak / MB,
        "rss_growth_mb": (mem.peak - mem.baseline) / MB,
        "episodes": episodes,
        "steps": steps,
        "episodes_path": str(out / "episodes.parquet"),
    }


def spawn(engine: str, args: argparse.Namespace, data: Path, out: Path, lookups: Path | None) -> dict[str, Any] | None:
    """Run one engine in a fresh process of this script; None (and its error output) when it fails."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--only", engine, "--json"]
    cmd += ["--data", str(data), "--out", str(out), "--threads", str(args.threads), "--memory-limit", args.memory_limit]
    if lookups is not None:
        cmd += ["--lookups", str(lookups)]
    for attempt in range(1 + args.retries):
        print(f"running {engine} ..." if attempt == 0 else f"running {engine} again ...", flush=True)
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        for line in proc.stdout.splitlines():
            if line.startswith(MARK):
                result = dict(json.loads(line[len(MARK) :]))
                result["attempts"] = attempt + 1
                return result
        print(f"  {engine} FAILED (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}", flush=True)
    return None


# ---------------------------------------------------------------------------------------------------------------
# Parent: data, small check, engines, table


def small_check(rows: int, threads: int, engines: list[str]) -> None:
    """The baselines against DuckDB on a small data set, before anything is timed."""
    data = ROOT / f"rows-{rows}"
    ensure_data(data, rows)
    out = ROOT / f"out-{rows}" / "check-duckdb"
    eng = DuckDBEngine(threads=threads)
    try:
        run_cohort(data, out, eng)
    finally:
        eng.close()
    if "pandas" in engines:
        plain = run_plain(data, ROOT / f"out-{rows}" / "check-pandas")
        differ = compare_outputs(ROOT / f"out-{rows}" / "check-pandas", out)
        verdict = "equal" if not any(differ.values()) else f"DIFFER: {differ}"
        n = len(plain["episodes"])
        print(f"check on {count_rows(data):,} rows: pandas six outputs vs DuckDB: {verdict} ({n:,} episodes)")
    if "tuned" in engines:
        settings, lk = prepare(data)
        df = run_pandas(data, settings, lk)
        bad = check_equal(df, out / "episodes.parquet")
        verdict = "equal" if bad == 0 else f"{bad} rows DIFFER"
        print(f"check on {count_rows(data):,} rows: tuned episodes vs DuckDB: {verdict} ({len(df):,} episodes)")


def agreement(results: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Spark's and the baselines' outputs against DuckDB's: 'yes', or how many rows differ."""
    verdicts: dict[str, str] = {}
    if "duckdb" not in results:
        return verdicts
    ref_dir = Path(results["duckdb"]["episodes_path"]).parent
    for engine in ("spark", "pandas"):
        if engine in results:
            differ = compare_outputs(Path(results[engine]["episodes_path"]).parent, ref_dir)
            differing = {k: v for k, v in differ.items() if v}
            verdicts[engine] = "six outputs: yes" if not differing else f"NO: rows differ {differing}"
    ref = read_episodes(Path(results["duckdb"]["episodes_path"]))
    for engine in ("tuned",):
        if engine in results:
            bad, noise = compare_detail(read_episodes(Path(results[engine]["episodes_path"])), ref, show=5)
            verdict = "yes" if bad == 0 else f"NO: {bad} rows differ"
            verdicts[engine] = verdict + (f" ({noise} values differ by float noise around 0)" if noise else "")
    return verdicts


def ratio(baseline_s: float, seconds: float) -> str:
    """How many times faster than the baseline, e.g. '6.61x'."""
    return f"{baseline_s / seconds:.3g}x"


def print_table(results: dict[str, dict[str, Any]], verdicts: dict[str, str]) -> None:
    base = {b: results[b]["seconds"] for b in BASELINES if b in results}
    head = f"{'engine':8} {'seconds':>9} {'CPU s':>7} {'rows/s':>12} {'peak RSS MB':>12} {'growth MB':>10}"
    head += "".join(f" {'vs ' + b:>10}" for b in base)
    print(f"\n{head}  outputs = DuckDB's")
    for engine, r in results.items():
        ratios = "".join(f" {ratio(b, r['seconds']):>10}" for b in base.values())
        same = "(reference)" if engine == "duckdb" else verdicts.get(engine, "-")
        cpu = "-" if r.get("cpu_s") is None else f"{r['cpu_s']:.1f}"
        print(
            f"{engine:8} {r['seconds']:9.2f} {cpu:>7} {r['rows_per_s']:12,.0f} {r['peak_rss_mb']:12,.0f} "
            f"{r['rss_growth_mb']:10,.0f}{ratios}  {same}"
        )
    print()
    for engine, r in results.items():
        if len(r.get("all_seconds", [])) > 1:
            walls = ", ".join(f"{x:.2f}" for x in r["all_seconds"])
            cpus = ", ".join("-" if x is None else f"{x:.1f}" for x in r["all_cpu_s"])
            print(f"{engine}: {len(r['all_seconds'])} runs, seconds {walls}; CPU s {cpus} (the median run is shown)")
    tuned_s = base.get("tuned")
    for engine, r in results.items():
        line = f"{engine}: {r['episodes']:,} episodes from {r['rows']:,} rows"
        if engine == "tuned" and r["steps"]:
            line += "; " + ", ".join(f"{k} {v:.2f} s" for k, v in r["steps"].items())
        elif r["steps"]:
            steps = ", ".join(f"{k} {v:.2f}" for k, v in r["steps"].items())
            core = r["seconds"] - r["steps"].get("map products", 0.0) - r["steps"].get("write", 0.0)
            line += f"; engine startup {r['startup_s']:.1f} s (not in seconds); steps (s): {steps}"
            line += f"; without mapping and writing {core:.2f} s"
            if tuned_s:
                line += f" (tuned / this {tuned_s / core:.3g}x)"
        if r.get("attempts", 1) > 1:
            line += f"; FAILED {r['attempts'] - 1} time(s) before this run"
        print(line)
    print(
        "seconds: duckdb, spark and pandas = from the input files to all six output files (product mapping "
        "and lookups, interdose simulation, episodes, indicators, population tables, writing); tuned = read "
        "drug_exposure + episode table in memory, with the product mapping and lookups done beforehand and "
        "the episodes file written afterwards (both outside its seconds)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS, help="drug_exposure rows to generate")
    parser.add_argument("--engines", default=",".join(ENGINES), help="comma-separated: duckdb,spark,pandas,tuned")
    parser.add_argument("--data", type=Path, help=f"data folder (default {ROOT}/rows-N; generated if missing)")
    parser.add_argument("--out", type=Path, help=f"output folder (default {ROOT}/out-N)")
    parser.add_argument("--threads", type=int, default=2, help="threads for DuckDB, local[N] for Spark")
    parser.add_argument("--memory-limit", default=MEMORY_LIMIT, help="DuckDB memory_limit (it spills beyond)")
    parser.add_argument("--big", action="store_true", help=f"only DuckDB, on {BIG_ROWS:,} rows")
    parser.add_argument("--check-rows", type=int, default=50_000, help="rows of the baseline checks (0: skip)")
    parser.add_argument("--retries", type=int, default=1, help="runs again of an engine whose process failed")
    parser.add_argument("--repeat", type=int, default=1, help="timed runs per engine; the median one is reported")
    parser.add_argument("--only", choices=ENGINES, help=argparse.SUPPRESS)  # child process: one engine
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--lookups", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.big:
        args.rows, args.engines = BIG_ROWS, "duckdb"
    data = args.data or ROOT / f"rows-{args.rows}"
    out = args.out or ROOT / f"out-{args.rows}"

    if args.only:
        result = run_one(args.only, data, out, args.threads, args.lookups, args.memory_limit)
        print(MARK + json.dumps(result) if args.json else json.dumps(result, indent=2), flush=True)
        return

    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = sorted(set(engines) - set(ENGINES))
    if unknown:
        parser.error(f"unknown engine(s) {', '.join(unknown)}; choose from {', '.join(ENGINES)}")
    ensure_data(data, args.rows)
    if set(BASELINES) & set(engines) and args.check_rows:
        small_check(args.check_rows, args.threads, engines)
    lookups = None
    if "tuned" in engines:  # its product mapping runs here, so the tuned process measures its core alone
        lookups = out / "tuned-lookups.pickle"
        lookups.parent.mkdir(parents=True, exist_ok=True)
        lookups.write_bytes(pickle.dumps(prepare(data)))
    results: dict[str, dict[str, Any]] = {}
    for engine in engines:
        runs = []
        for _ in range(max(1, args.repeat)):
            r = spawn(engine, args, data, out / engine, lookups)
            if r is not None:
                runs.append(r)
                print(f"  {r['seconds']:.2f} s, peak RSS {r['peak_rss_mb']:,.0f} MB, {load()}", flush=True)
        if runs:
            results[engine] = median_run(runs)
    print_table(results, agreement(results))


def load() -> str:
    """The machine's load averages (1, 5, 15 min): other jobs on the same cores slow every engine down."""
    one, five, fifteen = psutil.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f}"


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median wall time, with every run's seconds (`all_seconds`) and peak RSS."""
    ordered = sorted(runs, key=lambda r: float(r["seconds"]))
    chosen = dict(ordered[(len(ordered) - 1) // 2])
    chosen["all_seconds"] = [r["seconds"] for r in runs]
    chosen["all_cpu_s"] = [r["cpu_s"] for r in runs]
    chosen["peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs)
    return chosen


if __name__ == "__main__":
    main()
