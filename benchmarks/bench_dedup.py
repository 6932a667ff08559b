"""Benchmark fimpack's MinHash near-dedup: signature throughput, and LSH quality vs brute force.

    .venv/bin/python benchmarks/bench_dedup.py --data bench-data

Prints two tables and writes ``<data>/results-dedup.json``.

Part 1, signature throughput, end to end from text to 256-permutation signatures, all methods
side by side in one process on the same corpus: ``--docs`` (1,500) Python files of 8-25 KB,
sampled with ``--seed`` from the interpreter's standard library (not its site-packages) and
the venv's site-packages (the stdlib alone has fewer than 500 files in that size range).

* fimpack      ``fimpack.dedup.signatures(texts)`` (5-gram shingles, one-permutation hashing)
* ds-update    datasketch default scheme (2.0: affine32), one ``MinHash(num_perm=256)`` per
               document and ``m.update(shingle.encode())`` per shingle
* ds-bulk      ``datasketch.MinHash.bulk(shingle byte lists, num_perm=256)``
* rensa        ``rensa.RMinHash(256, 42)``, ``.update(list of shingles)``, ``.digest()``
* rensa-matrix ``rensa.RMinHash.digest_matrix_from_token_byte_sets`` (its batch API; extra)

The other methods get their shingles from Python: the same ``[A-Za-z0-9_]+`` tokens,
``" ".join(tokens[i:i + 5])``, a set per document (a document of fewer than 5 tokens is one
shingle of all of them, as in fimpack), and that shingling is inside their timings. Every
method gets one untimed warm-up pass (it also fills fimpack's token-hash cache, so fimpack is
measured warm; the warm-up time is printed as "cold"), then ``--repeats`` timed passes,
interleaved round-robin across methods; the best is reported.

Part 2, quality vs brute force on real near duplicates: several released versions of the same
pure-Python packages (``SDISTS``, pinned), downloaded as sdists with pip into
``<data>/sdists`` (once; kept), their ``.py`` files extracted (once), plus ``--planted`` exact
copies of random files. Over all files of >= 1 KB:

* ground truth: exact Jaccard of fimpack's shingle-hash sets for every pair sharing at least
  one shingle (an inverted index as a sparse matrix product, X @ X.T), true pair = J >= 0.7;
* fimpack: pairs sharing at least one LSH band key (``NearDedupConfig().band_params()``, 25 x
  10) whose estimated Jaccard (signature agreement) is >= 0.7, as the pipeline verifies them;
* duplicate-pair precision / recall (overall and by exact-J band), candidate pairs before
  verification, and cluster precision / recall: pairs of files in the same connected component
  of the pipeline's edges (``bucket_pairs`` with its bucket cap, labelled by
  ``label_in_memory``) vs pairs in the same component of the ground-truth graph;
* "model": the detection probability of a pair of Jaccard J if signature positions agreed
  independently with probability J (the textbook S-curve with the verification step), averaged
  over the same pairs -- what a perfect MinHash would score.
"""
from __future__ import annotations

import argparse
import gc
import itertools
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import time
import zipfile
from collections import Counter, defaultdict
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

import fimpack.dedup as fdedup
from fimpack.dedup import minhash
from fimpack.dedup.components import label_in_memory
from fimpack.config import NearDedupConfig
from fimpack.dedup.near import band_keys, bucket_pairs

NUM_PERM = 256
NGRAM = 5
TOKEN = re.compile(r"[A-Za-z0-9_]+")

# Pure-Python packages, four released versions each (pip download --no-deps --no-binary :all:).
SDISTS = {
    "requests": ["2.22.0", "2.25.1", "2.28.2", "2.32.3"],
    "click": ["7.1.2", "8.0.4", "8.1.3", "8.1.7"],
    "pygments": ["2.10.0", "2.13.0", "2.15.1", "2.18.0"],
    "pytest": ["6.2.5", "7.1.3", "7.4.4", "8.2.2"],
}


# ----------------------------------------------------------------------------- part 1

def throughput_corpus(docs: int, seed: int, lo: int = 8_000, hi: int = 25_000):
    paths = sysconfig.get_paths()
    roots = [("stdlib", Path(paths["stdlib"])), ("site-packages", Path(paths["purelib"]))]
    found = []
    for label, root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames
                                 if d not in ("site-packages", "dist-packages", "rensa"))
            for name in sorted(filenames):
                if name.endswith(".py"):
                    p = Path(dirpath, name)
                    if lo <= p.stat().st_size <= hi:
                        found.append((label, p))
    rng = np.random.default_rng(seed)
    pick = sorted(rng.choice(len(found), size=min(docs, len(found)), replace=False))
    chosen = [found[i] for i in pick]
    texts = [p.read_text(encoding="utf-8", errors="replace") for _, p in chosen]
    sources = Counter(label for label, _ in chosen)
    return texts, {"candidates_8_25kb": len(found), "sources": dict(sources),
                   "roots": {label: str(root) for label, root in roots}}


def py_shingles(text: str) -> set[str]:
    toks = TOKEN.findall(text)
    if len(toks) < NGRAM:
        return {" ".join(toks)} if toks else set()
    return {" ".join(toks[i:i + NGRAM]) for i in range(len(toks) - NGRAM + 1)}


def run_fimpack(texts):
    return fdedup.signatures(texts, num_perm=NUM_PERM, ngram=NGRAM)


def run_python_shingling(texts):
    # each set is dropped at once, as in the MinHash loops (keeping 1,500 sets alive and
    # freeing them together costs more than building them)
    return sum(len(py_shingles(t)) for t in texts)


def run_ds_update(texts):
    from datasketch import MinHash

    out = []
    for t in texts:
        m = MinHash(num_perm=NUM_PERM)
        for s in py_shingles(t):
            m.update(s.encode())
        out.append(m.hashvalues)
    return out


def run_ds_bulk(texts):
    from datasketch import MinHash

    return MinHash.bulk([[s.encode() for s in py_shingles(t)] for t in texts], num_perm=NUM_PERM)


def run_rensa(texts):
    import rensa

    out = []
    for t in texts:
        m = rensa.RMinHash(NUM_PERM, 42)
        m.update(list(py_shingles(t)))
        out.append(m.digest())
    return out


def run_rensa_matrix(texts):
    import rensa

    return rensa.RMinHash.digest_matrix_from_token_byte_sets(
        [[s.encode() for s in py_shingles(t)] for t in texts], NUM_PERM, 42)


def part_throughput(args) -> dict:
    texts, corpus = throughput_corpus(args.docs, args.seed)
    nbytes = sum(len(t.encode("utf-8")) for t in texts)
    corpus.update(docs=len(texts), mbytes=nbytes / 1e6,
                  mean_kb=nbytes / len(texts) / 1e3)
    print(f"\n== Part 1: signatures, text -> {NUM_PERM} perms, {len(texts)} files, "
          f"{nbytes / 1e6:.1f} MB (mean {nbytes / len(texts) / 1e3:.1f} KB; "
          f"{corpus['sources']}) ==")

    methods = [("fimpack", run_fimpack), ("ds-update", run_ds_update),
               ("ds-bulk", run_ds_bulk)]
    try:
        import rensa  # noqa: F401
        rensa_version = version("rensa")
        methods += [("rensa", run_rensa), ("rensa-matrix", run_rensa_matrix)]
    except ImportError:
        rensa_version = None
        print("rensa is not installed: skipping it (pip install rensa to include it)")
    methods.append(("py-shingling only", run_python_shingling))  # reference, no MinHash

    cold, times = {}, defaultdict(list)
    for name, fn in methods:  # untimed warm-up, reported as "cold"
        gc.collect()
        t0 = time.perf_counter()
        fn(texts)
        cold[name] = time.perf_counter() - t0
    for _ in range(args.repeats):
        for name, fn in methods:
            gc.collect()
            t0 = time.perf_counter()
            fn(texts)
            times[name].append(time.perf_counter() - t0)

    rows = {}
    for name, _ in methods:
        best = min(times[name])
        rows[name] = {"best_s": best, "times_s": times[name], "cold_s": cold[name],
                      "docs_per_s": len(texts) / best, "mb_per_s": nbytes / 1e6 / best}
    base = rows["fimpack"]["best_s"]
    print(f"{'method':<18} {'best s':>8} {'cold s':>8} {'docs/s':>9} {'MB/s':>7} "
          f"{'fimpack speed-up':>17}")
    print("(best of the timed passes; cold: the untimed first pass; fimpack speed-up: this "
          "row's best time / fimpack's)")
    for name, r in rows.items():
        r["fimpack_speedup"] = r["best_s"] / base
        print(f"{name:<18} {r['best_s']:8.3f} {r['cold_s']:8.3f} {r['docs_per_s']:9.0f} "
              f"{r['mb_per_s']:7.2f} {r['fimpack_speedup']:16.2f}x")
    ratios = {"fimpack_over_ds_update": rows["ds-update"]["best_s"] / base,
              "fimpack_over_ds_bulk": rows["ds-bulk"]["best_s"] / base}
    if "rensa" in rows:
        ratios["fimpack_over_rensa"] = rows["rensa"]["best_s"] / base
        ratios["fimpack_over_rensa_matrix"] = rows["rensa-matrix"]["best_s"] / base
    print("fimpack docs/s / other docs/s (> 1: fimpack faster): "
          + ", ".join(f"{k.removeprefix('fimpack_over_')} {v:.2f}x" for k, v in ratios.items()))
    return {"corpus": corpus, "repeats": args.repeats, "methods": rows, "ratios": ratios,
            "rensa_version": rensa_version}


# ----------------------------------------------------------------------------- part 2

def _archive(sdist_dir: Path, name: str, ver: str) -> Path | None:
    prefix = f"{name}-{ver}.".lower()
    for p in sorted(sdist_dir.iterdir()):
        low = p.name.lower().replace("_", "-")
        if low.startswith(prefix) and low.endswith((".tar.gz", ".zip")):
            return p
    return None


def fetch_sdists(sdist_dir: Path, download: bool) -> dict:
    sdist_dir.mkdir(parents=True, exist_ok=True)
    got = {}
    for name, versions in SDISTS.items():
        for ver in versions:
            arch = _archive(sdist_dir, name, ver)
            if arch is None and download:
                print(f"pip download {name}=={ver} ...", flush=True)
                subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                                "--no-binary", ":all:", "-d", str(sdist_dir),
                                f"{name}=={ver}"], check=True)
                arch = _archive(sdist_dir, name, ver)
            if arch is None:
                raise SystemExit(f"missing sdist {name}=={ver} in {sdist_dir} "
                                 "(run without --no-download)")
            got[f"{name}=={ver}"] = arch
    return got


def extract_py(archive: Path, dest: Path) -> None:
    done = dest / ".extracted"
    if done.exists():
        return
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    if archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive) as z:
            for m in z.namelist():
                if m.endswith(".py") and ".." not in m:
                    out = dest / m
                    out.parent.mkdir(parents=True, exist_ok=True)
                    out.write_bytes(z.read(m))
    else:
        with tarfile.open(archive) as t:
            members = [m for m in t.getmembers() if m.isfile() and m.name.endswith(".py")]
            t.extractall(dest, members=members, filter="data")
    done.write_text("ok\n")


def quality_corpus(args):
    sdist_dir = Path(args.data) / "sdists"
    archives = fetch_sdists(sdist_dir, not args.no_download)
    keys, families, texts = [], [], []
    for spec, arch in archives.items():
        name, ver = spec.split("==")
        dest = sdist_dir / "extracted" / f"{name}-{ver}"
        extract_py(arch, dest)
        for p in sorted(dest.rglob("*.py")):
            if p.stat().st_size >= 1024:
                keys.append(f"{name}-{ver}/{p.relative_to(dest).as_posix()}")
                families.append(name)
                texts.append(p.read_text(encoding="utf-8", errors="replace"))
    rng = np.random.default_rng(args.seed)
    for i, j in enumerate(sorted(rng.choice(len(texts), size=args.planted, replace=False))):
        keys.append(f"planted/{i:02d}/{keys[j]}")
        families.append("planted")
        texts.append(texts[j])
    return keys, families, texts, {k: str(v.name) for k, v in archives.items()}


def exact_pairs(shingles: list[np.ndarray]):
    """(i, j, intersection, union) of every pair i < j sharing at least one shingle."""
    from scipy import sparse

    lengths = np.array([len(s) for s in shingles], dtype=np.int64)
    cols = np.unique(np.concatenate(shingles), return_inverse=True)[1]
    rows = np.repeat(np.arange(len(shingles)), lengths)
    x = sparse.csr_matrix((np.ones(len(cols), dtype=np.int32), (rows, cols)),
                          shape=(len(shingles), cols.max() + 1))
    inter = sparse.triu(x @ x.T, k=1).tocoo()
    i, j, n = inter.row.astype(np.int64), inter.col.astype(np.int64), inter.data.astype(np.int64)
    return i, j, n, lengths[i] + lengths[j] - n


def detection_model(js: np.ndarray, bands: int, rows: int, threshold: float) -> np.ndarray:
    """P(some band agrees on all rows AND agreements / NUM_PERM >= threshold) when every
    signature position agrees independently with probability J."""
    from scipy.stats import binom

    need = int(np.ceil(threshold * NUM_PERM - 1e-9))
    grid = np.linspace(0.0, 1.0, 1001)
    out = np.empty_like(grid)
    for g, p in enumerate(grid):
        band = binom.pmf(np.arange(rows + 1), rows, p)
        # state: [total agreements, any full band]
        dist = np.zeros((bands * rows + 1, 2))
        dist[0, 0] = 1.0
        for b in range(bands):
            new = np.zeros_like(dist)
            top = b * rows
            for k in range(rows + 1):
                if band[k] == 0.0:
                    continue
                new[k:k + top + 1, 0] += dist[:top + 1, 0] * band[k] * (k < rows)
                new[k:k + top + 1, 1] += dist[:top + 1, 1] * band[k]
                if k == rows:
                    new[k:k + top + 1, 1] += dist[:top + 1, 0] * band[k]
            dist = new
        rest = NUM_PERM - bands * rows
        tail = binom.pmf(np.arange(rest + 1), rest, p)
        total = np.convolve(dist[:, 1], tail)
        out[g] = total[need:].sum()
    return np.interp(js, grid, out)


def pair_counts(labels: np.ndarray) -> float:
    _, sizes = np.unique(labels, return_counts=True)
    return float((sizes * (sizes - 1) // 2).sum())


def part_quality(args) -> dict:
    t_start = time.perf_counter()
    keys, families, texts, sdists = quality_corpus(args)
    n = len(texts)
    t_corpus = time.perf_counter() - t_start
    cfg = NearDedupConfig()
    bands, rows = cfg.band_params()
    thr = cfg.threshold
    print(f"\n== Part 2: quality vs brute force, {n} files >= 1 KB "
          f"({', '.join(f'{k} {v}' for k, v in sorted(Counter(families).items()))}), "
          f"{len(sdists)} sdists, {args.planted} planted exact copies; "
          f"threshold {thr}, LSH {bands} x {rows} ==")

    t0 = time.perf_counter()
    shingles = [minhash.shingle_hashes(t) for t in texts]
    sigs = fdedup.signatures(texts)
    t_sig = time.perf_counter() - t0

    # Ground truth: every pair sharing a shingle, exact Jaccard; J >= thr  <=>  10 n >= 7 u.
    t0 = time.perf_counter()
    i, j, inter, union = exact_pairs(shingles)
    jac = inter / union
    true_mask = inter >= thr * union - 1e-9
    pair_id = i * n + j
    truth = set(pair_id[true_mask].tolist())
    t_exact = time.perf_counter() - t0
    # spot-check the sparse product against fimpack's own exact jaccard
    for k in np.random.default_rng(1).choice(len(i), size=min(200, len(i)), replace=False):
        assert abs(minhash.jaccard(shingles[i[k]], shingles[j[k]]) - jac[k]) < 1e-12

    # LSH candidates (every pair sharing a band key) and verified pairs.
    t0 = time.perf_counter()
    buckets = defaultdict(list)
    for d in range(n):
        for b in band_keys(sigs[d], bands, rows):
            buckets[b].append(d)
    cand = set()
    big = [m for m in buckets.values() if len(m) > 1]
    for members in big:
        for a, b in itertools.combinations(sorted(set(members)), 2):
            cand.add(a * n + b)
    cand_arr = np.fromiter(cand, dtype=np.int64, count=len(cand))
    ca, cb = cand_arr // n, cand_arr % n
    est = (sigs[ca] == sigs[cb]).sum(axis=1) / NUM_PERM
    predicted = set(cand_arr[est >= thr].tolist())
    # The pipeline's edges: bucket_pairs per bucket, with its cap on large buckets.
    edges = set()
    capped = 0
    for members in big:
        m = [(keys[d], sigs[d]) for d in members]
        if len(m) * (len(m) - 1) // 2 > cfg.max_bucket_pairs:
            capped += 1
        edges.update(bucket_pairs(m, thr, cfg.verify, cfg.max_bucket_pairs))
    index = {k: d for d, k in enumerate(keys)}
    edge_ids = {min(index[a], index[b]) * n + max(index[a], index[b]) for a, b in edges}
    t_lsh = time.perf_counter() - t0

    tp = len(predicted & truth)
    precision = tp / len(predicted) if predicted else 1.0
    recall = tp / len(truth) if truth else 1.0

    # By exact-J band: recall of true pairs, and where the false positives sit.
    pred_arr = np.fromiter(predicted, dtype=np.int64, count=len(predicted))
    in_pred, in_cand = np.isin(pair_id, pred_arr), np.isin(pair_id, cand_arr)
    model = detection_model(jac, bands, rows, thr)
    edges_j = [0.0, 0.5, 0.6, 0.65, 0.7, 0.75, 0.8, 0.9, 1.0 - 1e-12, 1.0 + 1e-9]
    names = ["<0.5", "0.5-0.6", "0.6-0.65", "0.65-0.7", "0.7-0.75", "0.75-0.8", "0.8-0.9",
             "0.9-1", "=1"]
    by_band = []
    for lo, hi, name in zip(edges_j[:-1], edges_j[1:], names):
        in_band = (jac >= lo) & (jac < hi)
        count = int(in_band.sum())
        found = int((in_band & in_pred).sum())
        by_band.append({"band": name, "pairs": count, "predicted": found,
                        "rate": found / count if count else None,
                        "model_rate": float(model[in_band].mean()) if count else None,
                        "candidates": int((in_band & in_cand).sum())})
    model_recall = float(model[true_mask].mean()) if true_mask.any() else 1.0
    fp_jac = jac[in_pred & ~true_mask].tolist()  # (a pair sharing no shingle would be J 0)
    fp_jac += [0.0] * (len(predicted) - int(in_pred.sum()))

    # Clusters: components of predicted (pipeline) edges vs of the ground-truth graph.
    from scipy import sparse
    from scipy.sparse.csgraph import connected_components

    tg = sparse.coo_matrix((np.ones(int(true_mask.sum())), (i[true_mask], j[true_mask])),
                           shape=(n, n))
    _, true_lab = connected_components(tg, directed=False)
    comp, rounds = label_in_memory(edges)
    pred_lab = np.array([index[comp[k]] if k in comp else d for d, k in enumerate(keys)])
    joint = true_lab.astype(np.int64) * n + pred_lab
    both = pair_counts(joint)
    pred_pairs, true_pairs_c = pair_counts(pred_lab), pair_counts(true_lab)
    true_groups = defaultdict(set)
    pred_groups = defaultdict(set)
    for d in range(n):
        true_groups[true_lab[d]].add(d)
        pred_groups[pred_lab[d]].add(d)
    pred_sets = {frozenset(s) for s in pred_groups.values() if len(s) > 1}
    true_multi = [frozenset(s) for s in true_groups.values() if len(s) > 1]
    clusters = {
        "pair_precision": both / pred_pairs if pred_pairs else 1.0,
        "pair_recall": both / true_pairs_c if true_pairs_c else 1.0,
        "pred_clusters": len(pred_sets), "true_clusters": len(true_multi),
        "true_clusters_exact": sum(s in pred_sets for s in true_multi),
        "files_removed_pred": n - len(pred_groups), "files_removed_true": n - len(true_groups),
        "co_clustered_pairs_pred": pred_pairs, "co_clustered_pairs_true": true_pairs_c,
        "components_rounds": rounds,
    }

    res = {
        "files": n, "families": dict(Counter(families)), "sdists": sdists,
        "threshold": thr, "bands": bands, "rows": rows,
        "overlapping_pairs": int(len(i)), "true_pairs": len(truth),
        "true_pairs_identical_sets": int((inter == union).sum()),
        "candidate_pairs": len(cand), "candidates_with_true_pair": len(cand & truth),
        "predicted_pairs": len(predicted), "true_positives": tp,
        "precision": precision, "recall": recall, "model_recall": model_recall,
        "false_positive_jaccard": sorted(fp_jac), "by_jaccard": by_band,
        "pipeline_edges": len(edges), "pipeline_edges_equal_predicted": edge_ids == predicted,
        "buckets_over_cap": capped, "largest_bucket": max(map(len, buckets.values())),
        "clusters": clusters,
        "seconds": {"corpus": t_corpus, "shingles_and_signatures": t_sig,
                    "brute_force": t_exact, "lsh_and_verify": t_lsh},
    }

    ok = lambda v: "" if v >= 0.95 else "  <-- below 0.95"  # noqa: E731
    print(f"pairs sharing >= 1 shingle (brute force)  {len(i):>10,}")
    print(f"true pairs, J >= {thr}                     {len(truth):>10,}  "
          f"({res['true_pairs_identical_sets']:,} with identical shingle sets)")
    print(f"LSH candidate pairs (before verification) {len(cand):>10,}  "
          f"({len(cand & truth):,} of them true)")
    print(f"predicted pairs (band hit + est J >= {thr}) {len(predicted):>9,}  "
          f"(true positives {tp:,})")
    print(f"pair precision                            {precision:10.4f}{ok(precision)}")
    print(f"pair recall                               {recall:10.4f}{ok(recall)}  "
          f"(independent-positions model: {model_recall:.4f})")
    print(f"cluster pair precision                    {clusters['pair_precision']:10.4f}"
          f"{ok(clusters['pair_precision'])}")
    print(f"cluster pair recall                       {clusters['pair_recall']:10.4f}"
          f"{ok(clusters['pair_recall'])}")
    print(f"clusters (size >= 2): predicted {clusters['pred_clusters']}, true "
          f"{clusters['true_clusters']}, true reproduced exactly "
          f"{clusters['true_clusters_exact']}; files removed: predicted "
          f"{clusters['files_removed_pred']}, true {clusters['files_removed_true']}")
    print(f"pipeline edges (bucket_pairs, cap {cfg.max_bucket_pairs}) {len(edges):,}, same as "
          f"predicted pairs: {res['pipeline_edges_equal_predicted']}; buckets over cap "
          f"{capped}; largest bucket {res['largest_bucket']}")
    print(f"{'exact J':<10} {'pairs':>9} {'candidates':>11} {'predicted':>10} {'rate':>7} "
          f"{'model':>7}")
    for r in by_band:
        rate = "" if r["rate"] is None else f"{r['rate']:.4f}"
        mrate = "" if r["model_rate"] is None else f"{r['model_rate']:.4f}"
        print(f"{r['band']:<10} {r['pairs']:>9,} {r['candidates']:>11,} {r['predicted']:>10,} "
              f"{rate:>7} {mrate:>7}")
    print("(rate: share of the band's pairs predicted -- recall for J >= 0.7, false-positive "
          "rate below; model: the same with independently agreeing signature positions)")
    print("seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in res["seconds"].items()))
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="bench-data")
    ap.add_argument("--docs", type=int, default=1500)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--planted", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-download", action="store_true", help="fail if an sdist is missing")
    ap.add_argument("--skip-throughput", action="store_true")
    ap.add_argument("--skip-quality", action="store_true")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    out = {"argv": sys.argv, "python": sys.version.split()[0], "platform": platform.platform(),
           "cpus": os.cpu_count(), "loadavg_start": os.getloadavg(),
           "versions": {}}
    for pkg in ("fimpack", "datasketch", "numpy", "xxhash", "scipy", "rensa"):
        try:
            out["versions"][pkg] = version(pkg)
        except PackageNotFoundError:
            out["versions"][pkg] = None
    if not args.skip_throughput:
        out["throughput"] = part_throughput(args)
    if not args.skip_quality:
        out["quality"] = part_quality(args)
    out["total_s"] = time.perf_counter() - t0
    out["loadavg_end"] = os.getloadavg()
    path = Path(args.data) / "results-dedup.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1, default=float) + "\n")
    print(f"\ntotal {out['total_s']:.0f} s; wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
