"""Vector index: build time, single-query latency, recall@10 and memory, against numpy.

Usage: .venv/bin/python benchmarks/query.py [--sizes 100000 1000000] [--queries 1000] [--json]
       [--ef 32 64 128] [--m M] [--ef-construction EF] [--exclude 1 16 64 256 1024] [--hard]
       [--kinds 3 9]

Data, per size N: N synthetic 64-d "latent vectors" in 1000 Gaussian clusters, as a VAE's
posterior means might lie: centres drawn from the prior N(0, I), each cluster isotropic with its
own spread (log-uniform between 0.1 and 1.0 per dimension, so the wide clusters overlap their
neighbours and the narrow ones are tight), cluster sizes uneven (lognormal weights). --hard
squeezes the centres to 0.6 N(0, I) and the spreads to 0.3..1.0: the clusters then overlap into
almost one 64-d Gaussian blob, the worst case for any graph index. Queries: --queries data
points drawn at random, each moved by Gaussian noise of a tenth of its cluster's spread --
"more like this sample", with nothing excluded.

Measured, for each size:
- build: `VectorIndex.build` with the default parameters (or --m / --ef-construction), all
  cores, wall time; then the saved file's size;
- latency: `VectorIndex.query(v, k=10)`, one query per call (hnswlib uses one thread for a
  single query), each timed apart with perf_counter after one untimed pass over the queries;
  p50 and p99 in ms, for the default ef_search and for each --ef;
- recall@10: the share of the exact 10 nearest neighbours (numpy, float64 re-ranking) that the
  index returns, averaged over the queries;
- numpy brute force, the honest baseline: squared norms precomputed, then per query one
  matrix-vector product, `argpartition` for the 10 smallest and a sort of those 10, each query
  timed apart; speed-up = numpy p50 / index p50;
- memory: a fresh Python process imports numpy, hnswlib and the index module, reads VmRSS from
  /proc/self/status, loads the saved index (checks included) and reads VmRSS again: the
  difference is the loaded index's own memory ("load s" is that load's wall time);
- with --exclude, at the largest size only: p50 latency with exclude sets of those sizes (ids
  drawn from each query's true neighbours, so they really are in the way), once asking hnswlib
  for k + len(exclude) and dropping them, once through hnswlib's filter callback; `query`
  switches between the two at `VectorIndex.OVERFETCH_MAX_EXCLUDE`.

- with --kinds, at the largest size only: "same kind only" searches (`query(only=...)`, as
  `Library.find_similar(same_kind=True)` makes them). The clusters are dealt at random to that
  many kinds, like a classifier's classes; each query keeps to the kind of the point it was
  drawn from, and its allowed ids are passed as the int64 array the library passes. p50 and
  recall@10 against the exact neighbours within the kind, next to the same queries unfiltered
  in the same run.

Goals at 1M vectors: p50 < 0.5 ms and recall@10 >= 0.95.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from sampletool.library.index import VectorIndex

DIM = 64
CLUSTERS = 1000
K = 10
DATA = (1.0, 0.1, 1.0)  # centre scale, smallest and largest cluster spread
HARD = (0.6, 0.3, 1.0)  # --hard: clusters overlap, nearly one 64-d Gaussian blob
QUERY_NOISE = 0.1  # of the cluster's spread, per dimension
GOAL_P50_MS = 0.5
GOAL_RECALL = 0.95

_RSS_PROBE = r"""
import json, sys, time
import hnswlib, numpy
from sampletool.library.index import VectorIndex

def rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024

before = rss()
t = time.perf_counter()
index = VectorIndex.load(sys.argv[1], int(sys.argv[2]))
load_s = time.perf_counter() - t
after = rss()
print(json.dumps({"before": before, "after": after, "load_s": load_s, "items": len(index)}))
"""


def clustered(
    n: int, hard: bool = False, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n clustered float32 vectors [n, DIM], each one's cluster spread [n] and cluster [n]."""
    centre_scale, low, high = HARD if hard else DATA
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((CLUSTERS, DIM)) * centre_scale
    spreads = np.exp(rng.uniform(np.log(low), np.log(high), CLUSTERS))
    weights = rng.lognormal(0.0, 1.0, CLUSTERS)
    labels = rng.choice(CLUSTERS, size=n, p=weights / weights.sum())
    x = np.empty((n, DIM), np.float32)
    for lo in range(0, n, 100_000):
        lab = labels[lo : lo + 100_000]
        noise = rng.standard_normal((len(lab), DIM))
        x[lo : lo + len(lab)] = centres[lab] + noise * spreads[lab, None]
    return x, spreads[labels], labels


def make_queries(
    x: np.ndarray, spread: np.ndarray, q: int, seed: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """q query vectors [q, DIM], each near a data point, and those points' positions [q]."""
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(x), size=q, replace=False)
    noise = rng.standard_normal((q, DIM)) * (QUERY_NOISE * spread[picks, None])
    return (x[picks] + noise).astype(np.float32), picks


def exact_knn(x: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Exact k nearest ids: float32 matrix products for 50 candidates, re-ranked in float64."""
    norms = np.einsum("ij,ij->i", x, x)
    out = np.empty((len(queries), k), np.int64)
    for lo in range(0, len(queries), 100):
        qb = queries[lo : lo + 100]
        d = norms[None, :] - 2 * (qb @ x.T)
        cand = np.argpartition(d, 50, axis=1)[:, :50]
        exact = ((x[cand].astype(np.float64) - qb[:, None, :].astype(np.float64)) ** 2).sum(-1)
        out[lo : lo + len(qb)] = np.take_along_axis(cand, np.argsort(exact, 1)[:, :k], 1)
    return out


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(
        np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)])
    )


def time_index(
    index: VectorIndex, queries: np.ndarray, exclude=None, only=None
) -> tuple[list, np.ndarray]:
    """Per-query latencies (s) and the ids found; one untimed pass first."""
    ex = exclude if exclude is not None else [None] * len(queries)
    on = only if only is not None else [None] * len(queries)
    for v, e, o in zip(queries, ex, on, strict=True):
        index.query(v, K, exclude=e, only=o)
    times, found = [], []
    for v, e, o in zip(queries, ex, on, strict=True):
        t = time.perf_counter()
        ids, _ = index.query(v, K, exclude=e, only=o)
        times.append(time.perf_counter() - t)
        found.append(ids[0])
    return times, np.asarray(found)


def time_numpy(x: np.ndarray, queries: np.ndarray) -> tuple[list, np.ndarray]:
    norms = np.einsum("ij,ij->i", x, x)
    times, found = [], []
    for v in queries[:5]:  # warm-up
        np.argpartition(norms - 2 * (x @ v), K)
    for v in queries:
        t = time.perf_counter()
        d = norms - 2 * (x @ v)
        top = np.argpartition(d, K)[:K]
        top = top[np.argsort(d[top])]
        times.append(time.perf_counter() - t)
        found.append(top)
    return times, np.asarray(found)


def pct(times: list, p: float) -> float:
    return float(np.percentile(np.asarray(times) * 1e3, p))


def loaded_rss(path: Path) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    done = subprocess.run(
        [sys.executable, "-c", _RSS_PROBE, str(path), str(DIM)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    return json.loads(done.stdout)


def run_size(n: int, args: argparse.Namespace, folder: Path, last: bool) -> dict:
    say = (lambda *a: None) if args.json else (lambda *a: print(*a, file=sys.stderr, flush=True))
    say(f"[{n}] data...")
    x, spread, cluster = clustered(n, hard=args.hard)
    queries, origin = make_queries(x, spread, args.queries)
    truth = exact_knn(x, queries, K)
    params = {}
    if args.m:
        params["m"] = args.m
    if args.ef_construction:
        params["ef_construction"] = args.ef_construction
    say(f"[{n}] build...")
    t = time.perf_counter()
    index = VectorIndex.build(np.arange(n, dtype=np.int64), x, **params)
    build_s = time.perf_counter() - t
    path = folder / f"index-{n}.hnsw"
    index.save(path)
    res = {
        "n": n,
        "m": index.m,
        "ef_construction": index.ef_construction,
        "ef_search": index.ef_search,
        "build_s": build_s,
        "file_bytes": path.stat().st_size,
    }
    say(f"[{n}] built in {build_s:.1f} s; queries...")
    default_ef = index.ef_search
    runs = []
    for ef in [default_ef, *[e for e in args.ef if e != default_ef]]:
        index.set_ef(ef)
        times, found = time_index(index, queries)
        runs.append(
            {
                "ef_search": ef,
                "p50_ms": pct(times, 50),
                "p99_ms": pct(times, 99),
                "recall_at_10": recall(found, truth),
            }
        )
    index.set_ef(default_ef)
    res.update({k: v for k, v in runs[0].items() if k != "ef_search"})
    res["ef_sweep"] = runs
    say(f"[{n}] numpy brute force...")
    times, found = time_numpy(x, queries)
    res["numpy_p50_ms"] = pct(times, 50)
    res["numpy_p99_ms"] = pct(times, 99)
    res["numpy_recall_at_10"] = recall(found, truth)
    res["speedup"] = res["numpy_p50_ms"] / res["p50_ms"]
    say(f"[{n}] memory...")
    probe = loaded_rss(path)
    res["rss_before_load"] = probe["before"]
    res["rss_index"] = probe["after"] - probe["before"]
    res["load_s"] = probe["load_s"]
    if args.exclude and last:
        say(f"[{n}] exclusion strategies...")
        res["exclude"] = exclusion_runs(index, queries, truth, args.exclude)
    if args.kinds and last:
        say(f"[{n}] same-kind searches...")
        res["kinds"] = kind_runs(index, x, cluster, queries, origin, args.kinds, res["p50_ms"])
    return res


def kind_runs(index, x, cluster, queries, origin, counts, p50_ms: float) -> list:
    """p50 latency and recall@10 of searches kept to one of `counts` kinds (clusters dealt to
    kinds at random; a query keeps to the kind of the point it was drawn from)."""
    out = []
    for count in counts:
        kind = np.random.default_rng(3).integers(0, count, cluster.max() + 1)[cluster]
        members = [np.flatnonzero(kind == c) for c in range(count)]
        only = [members[kind[i]] for i in origin]
        truth = np.stack(
            [o[exact_knn(x[o], q[None], K)[0]] for q, o in zip(queries, only, strict=True)]
        )
        times, found = time_index(index, queries, only=only)
        ok = all(np.isin(f, o).all() for f, o in zip(found, only, strict=True))
        out.append({"kinds": count, "p50_ms": pct(times, 50), "p99_ms": pct(times, 99),
                    "recall_at_10": recall(found, truth), "unfiltered_p50_ms": p50_ms,
                    "only_allowed": ok})  # fmt: skip
    return out


def exclusion_runs(index: VectorIndex, queries: np.ndarray, truth: np.ndarray, sizes) -> list:
    """p50 latency with exclude sets of each size, both strategies."""
    rng = np.random.default_rng(2)
    n = len(index)
    saved = VectorIndex.OVERFETCH_MAX_EXCLUDE
    out = []
    try:
        for size in sizes:
            sets = []
            for t in truth:  # the true neighbours first, then random ids
                extra = rng.integers(0, n, size=max(0, size - len(t)))
                sets.append(set(t[:size].tolist()) | set(extra.tolist()))
            row = {"size": size}
            for name, limit in (("overfetch", 1 << 62), ("filter", -1)):
                VectorIndex.OVERFETCH_MAX_EXCLUDE = limit
                times, found = time_index(index, queries, sets)
                ok = all(not (set(f.tolist()) & s) for f, s in zip(found, sets, strict=True))
                row[f"{name}_p50_ms"] = pct(times, 50)
                row[f"{name}_ok"] = ok
            out.append(row)
    finally:
        VectorIndex.OVERFETCH_MAX_EXCLUDE = saved
    return out


def print_table(results: list, machine: dict) -> None:
    print(
        f"{machine['cpu']}, {machine['cores']} cores; numpy {machine['numpy']}, "
        f"hnswlib {machine['hnswlib']}; k={K}, dim={DIM}, {machine['queries']} queries, "
        f"{machine['data']} data; load average {machine['load_average_start']:.1f} at the "
        f"start, {machine['load_average_end']:.1f} at the end"
    )
    head = (
        f"{'N':>9} {'M':>3} {'efC':>4} {'build s':>8} {'ef':>4} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'recall':>7} {'numpy p50':>9} {'speed-up':>8} {'file MB':>8} {'RSS MB':>7} "
        f"{'load s':>6}"
    )
    print(head)
    for r in results:
        for i, run in enumerate(r["ef_sweep"]):
            if i == 0:
                print(
                    f"{r['n']:>9} {r['m']:>3} {r['ef_construction']:>4} {r['build_s']:>8.1f} "
                    f"{run['ef_search']:>4} {run['p50_ms']:>7.3f} {run['p99_ms']:>7.3f} "
                    f"{run['recall_at_10']:>7.4f} {r['numpy_p50_ms']:>9.2f} "
                    f"{r['speedup']:>7.0f}x {r['file_bytes'] / 1e6:>8.1f} "
                    f"{r['rss_index'] / 1e6:>7.1f} {r['load_s']:>6.2f}"
                )
            else:
                print(
                    f"{'':>9} {'':>3} {'':>4} {'':>8} {run['ef_search']:>4} "
                    f"{run['p50_ms']:>7.3f} {run['p99_ms']:>7.3f} {run['recall_at_10']:>7.4f}"
                )
    for r in results:
        for row in r.get("exclude", []):
            print(
                f"exclude {row['size']:>5} ids at N={r['n']}: over-fetch p50 "
                f"{row['overfetch_p50_ms']:.3f} ms, filter callback p50 "
                f"{row['filter_p50_ms']:.3f} ms"
                + ("" if row["overfetch_ok"] and row["filter_ok"] else "  (EXCLUDED IDS RETURNED)")
            )
    for r in results:
        for row in r.get("kinds", []):
            print(
                f"same kind of {row['kinds']} at N={r['n']}: p50 {row['p50_ms']:.3f} ms, p99 "
                f"{row['p99_ms']:.3f} ms, recall@10 {row['recall_at_10']:.4f} (unfiltered p50 "
                f"{row['unfiltered_p50_ms']:.3f} ms)"
                + ("" if row["only_allowed"] else "  (IDS OF ANOTHER KIND RETURNED)")
            )
    big = max(results, key=lambda r: r["n"])
    ok = big["p50_ms"] < GOAL_P50_MS and big["recall_at_10"] >= GOAL_RECALL
    print(
        f"goals at N={big['n']}: p50 < {GOAL_P50_MS} ms and recall@10 >= {GOAL_RECALL}: "
        + ("met" if ok else "NOT met")
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--ef", type=int, nargs="*", default=[], help="more ef_search values")
    ap.add_argument("--m", type=int, default=0, help="graph degree (default: the index's)")
    ap.add_argument("--ef-construction", type=int, default=0)
    ap.add_argument("--exclude", type=int, nargs="*", default=[], help="exclude-set sizes")
    ap.add_argument("--hard", action="store_true", help="heavily overlapping clusters")
    ap.add_argument("--kinds", type=int, nargs="*", default=[], help="same-kind search, kinds")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    from importlib.metadata import version

    machine = {
        "cpu": platform.processor() or platform.machine(),
        "cores": len(os.sched_getaffinity(0)),
        "numpy": np.__version__,
        "hnswlib": version("hnswlib"),
        "queries": args.queries,
        "data": "hard" if args.hard else "clustered",
        "load_average_start": os.getloadavg()[0],
    }
    try:
        with open("/proc/cpuinfo") as f:
            names = [ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")]
        machine["cpu"] = names[0] if names else machine["cpu"]
    except OSError:
        pass
    sizes = sorted(args.sizes)
    with tempfile.TemporaryDirectory(prefix="sampletool-query-") as tmp:
        results = [run_size(n, args, Path(tmp), last=(n == sizes[-1])) for n in sizes]
    machine["load_average_end"] = os.getloadavg()[0]
    if args.json:
        print(json.dumps({"machine": machine, "k": K, "dim": DIM, "results": results}, indent=1))
    else:
        print_table(results, machine)
    return 0


if __name__ == "__main__":
    sys.exit(main())
