"""Write benchmarks/results.md and the plots from the JSON results of the benchmark scripts.

    python benchmarks/report.py        # after run_all.py (or any of the bench_*.py scripts)

Plots (matplotlib, PNG, in benchmarks/): ``lfw_roc.png`` (ROC on LFW, log FAR),
``encoder_throughput.png`` (faces/s per batch size, with the matmul ceiling) and
``search_scaling.png`` (ms per query against database size).
"""

import sys

import numpy as np

from _common import BENCH_DIR, CACHE_DIR, load_result

ANCHOR_PUBLISHED = "0.992 ± 0.003 (published for checkpoint 20170512-110547)"
ANCHOR_PROTOTYPE = "0.9928, 0.9938 with flip averaging (a plain prototype)"


def _figure():
    from matplotlib.figure import Figure

    return Figure(figsize=(6.4, 4.2), dpi=110, layout="constrained")


def plot_roc(lfw, path):
    import fr_eval

    distances_file = CACHE_DIR / "lfw_distances_float32.npz"
    if lfw is None or not distances_file.is_file():
        return None
    pairs = fr_eval.read_lfw_pairs(lfw["lfw_dir"] + "/pairs.txt") if "lfw_dir" in lfw else None
    if pairs is None:
        return None
    fig = _figure()
    ax = fig.add_subplot()
    with np.load(distances_file, allow_pickle=False) as data:
        shown = [lfw["package_settings"], lfw["chosen_settings"]]
        for r in lfw["results"]:
            if {k: r[k] for k in ("margin", "rule", "align")} not in shown:
                continue  # the sweep's other settings are in the table, not the plot
            key = f"{r['margin']}_{r['rule']}_{r['align']}_{r['tta']}_{r['dtype']}"
            if key not in data.files:
                continue
            d = data[key]
            far, tar, _ = fr_eval.roc_curve(d[pairs.is_same], d[~pairs.is_same])
            label = (f"{r['rule']} face, margin {r['margin']}{', eyes levelled' if r['align'] == 'eyes' else ''}, "
                     f"{'flip TTA' if r['tta'] == 'flip' else 'no TTA'}: acc {r['accuracy_mean']:.4f}")
            ax.plot(np.maximum(far, 1e-4), tar, label=label, lw=1.4,
                    ls="-" if r["tta"] == "none" else "--")
    ax.set_xscale("log")
    ax.set_xlim(3e-4, 1)
    ax.set_ylim(0.9, 1.0)
    ax.set_xlabel("false accept rate (log scale)")
    ax.set_ylabel("true accept rate")
    ax.set_title("FaceNet on LFW View 2 (6,000 pairs)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.savefig(path)
    return path


def plot_encoder(encoder, path):
    if encoder is None:
        return None
    rows = encoder["rows"]
    engines = list(dict.fromkeys(r["engine"] for r in rows))
    batches = sorted({r["batch"] for r in rows})
    fig = _figure()
    ax = fig.add_subplot()
    width = 0.8 / len(engines)
    for i, e in enumerate(engines):
        values = [next(r["images_per_s"] for r in rows if r["engine"] == e and r["batch"] == b) for b in batches]
        ax.bar(np.arange(len(batches)) + (i - (len(engines) - 1) / 2) * width, values, width, label=e)
    ax.axhline(encoder["ceiling_faces_per_s"], color="k", ls=":", lw=1,
               label=f"float32 matmul ceiling ({encoder['matmul_gflop_per_s']:.0f} GFLOP/s)")
    ax.set_xticks(np.arange(len(batches)), [f"batch {b}" for b in batches])
    ax.set_ylabel("faces per second")
    ax.set_title("Encoder throughput, Inception-ResNet-v1, 160x160")
    ax.legend(fontsize=7, loc="upper left")
    fig.savefig(path)
    return path


def plot_search(search, path):
    if search is None:
        return None
    rows = [r for r in search["rows"] if r["method"] != "memory"]
    fig = _figure()
    ax = fig.add_subplot()
    for method in dict.fromkeys(r["method"] for r in rows):
        points = sorted((r["size"], r["ms_per_query"]) for r in rows if r["method"] == method)
        batched = "queries" in method  # "FaceIndex ..., 256 queries": time per query of a batch
        ax.plot(*zip(*points), marker="o", ls="--" if batched else "-", label=method)
    for target_size, target_ms in ((100_000, 2.0), (1_000_000, 10.0)):  # issue 6, item 4: one query
        ax.plot([target_size], [target_ms], marker="_", color="k", ms=14, mew=2)
    ax.plot([], [], marker="_", color="k", ls="", ms=14, mew=2, label="target, one query")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("identities in the database")
    ax.set_ylabel("milliseconds per query")
    ax.set_title("who_is_it search time (random unit encodings)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.savefig(path)
    return path


def machine_lines(results):
    machines = [r["machine"] for r in results if r]
    if not machines:
        return []
    m = machines[0]
    dates = sorted(r["machine"]["date"] for r in results if r)
    loads = ", ".join(f"{r['machine']['load_average_1min']}" for r in results if r)
    return [f"- Machine: {m['cpu']}, {m['cores']} cores usable, {m['memory']} RAM ({', '.join(m['simd'])}); "
            f"{m['os']}; Python {m['python']}.",
            f"- Dates: {dates[0]} to {dates[-1]}. 1-minute load average when each result was saved: {loads} "
            "(the machine is shared; timings are ratios measured in one run, interleaved)."]


def lfw_section(lfw, lfw16):
    if lfw is None:
        return ["LFW not measured (no LFW folder; pass `--lfw DIR`)."]
    lines = ["| face choice | margin | align | TTA | accuracy (10-fold) | VAL @ FAR=1e-3 | ROC AUC | EER "
             "| accuracy at DEFAULT_THRESHOLD |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in lfw["results"] + (lfw16["results"] if lfw16 else []):
        dtype = "" if r["dtype"] == "float32" else f" ({r['dtype']})"
        lines.append(f"| {r['rule']}{dtype} | {r['margin']} | {r['align']} | {r['tta']} | "
                     f"{r['accuracy_mean']:.4f} ± {r['accuracy_std']:.4f} | "
                     f"{r['val_at_far_1e-3_mean']:.4f} ± {r['val_at_far_1e-3_std']:.4f} | "
                     f"{r['roc_auc']:.5f} | {r['eer']:.4f} | {r.get('accuracy_at_default_threshold', float('nan')):.4f} |")
    first = lfw["results"][0]
    package, chosen = lfw["package_settings"], lfw["chosen_settings"]
    lines += ["", f"Package settings: {package} (fr_utils defaults: 'package' = fr_utils.face_rank, the largest confident face). Benchmark's chosen settings: "
              f"{chosen}. 'central' = the largest face after discounting its distance from the image centre "
              "(LFW images are centred on the named person). Rows marked bfloat16 use the bfloat16 encoder.",
              "", f"Anchors: {ANCHOR_PUBLISHED}; {ANCHOR_PROTOTYPE}.",
              f"{first['images']} images, {first['pairs']} pairs; images without a detected face: "
              f"{first['images_without_face']} (they would get the median LFW face box, counted here); "
              f"images with several faces: {first['images_with_several_faces']}."]
    return lines


def encoder_section(encoder):
    if encoder is None:
        return ["Not measured."]
    import bench_encoder

    return ["```", *bench_encoder.summary(encoder), "```"]


def generic_section(result, module_name):
    if result is None:
        return ["Not measured."]
    module = __import__(module_name)
    return ["```", *module.summary(result), "```"]


def write(path=BENCH_DIR / "results.md"):
    lfw, lfw16 = load_result("lfw_float32"), load_result("lfw_bfloat16")
    encoder, enrol, search, notebook = (load_result(n) for n in ("encoder", "enrol", "search", "notebook"))
    plots = [plot_roc(lfw, BENCH_DIR / "lfw_roc.png"), plot_encoder(encoder, BENCH_DIR / "encoder_throughput.png"),
             plot_search(search, BENCH_DIR / "search_scaling.png")]
    commands = sorted({r["command"] for r in (lfw, lfw16, encoder, enrol, search, notebook) if r})
    lines = ["# Benchmark results", "",
             "Produced by `make bench` (`benchmarks/run_all.py`); every figure below is from the JSON files in "
             "`benchmarks/results/`, written by the scripts named there.", "",
             *machine_lines([lfw, lfw16, encoder, enrol, search, notebook]),
             "- Commands: " + "; ".join(f"`{c}`" for c in commands), "",
             "## 1. LFW View 2 accuracy", "", *lfw_section(lfw, lfw16), "",
             "## 2. Encoder throughput", "", *encoder_section(encoder), "",
             "## 3. Enrolment throughput (118 celebrity photos)", "", *generic_section(enrol, "bench_enrol"), "",
             "## 4. who_is_it search scaling", "", *generic_section(search, "bench_search"), "",
             "## 5. Notebook", "", *generic_section(notebook, "bench_notebook"), ""]
    lines += ["## Plots", ""] + [f"![{p.stem}]({p.name})" for p in plots if p] + [""]
    findings = BENCH_DIR / "findings.md"
    if findings.is_file():  # hand-written notes: what was tried and not kept, and why
        lines += [findings.read_text()]
    path.write_text("\n".join(lines))
    return path


if __name__ == "__main__":
    print(write())
    sys.exit(0)
