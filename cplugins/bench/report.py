"""Reports of a benchmark record: terminal table, JSON file, PNG chart."""
from __future__ import annotations

import json
import os
from pathlib import Path

from cplugins.bench.stats import format_bytes, format_count, format_seconds


def _cell_time(entry: dict | None) -> str:
    if not entry:
        return "-"
    s = entry["stats"]
    return f"{format_seconds(s['median'])} [{format_seconds(s['p25'])}-" \
           f"{format_seconds(s['p75'])}]"


def _cell_rate(entry: dict | None) -> str:
    if not entry:
        return "-"
    s = entry["samples_per_s"]
    return f"{s['median']:.1f} samples/s [{s['p25']:.1f}-{s['p75']:.1f}]"


def table_rows(record: dict) -> list[list[str]]:
    """Rows (header first) of the summary table."""
    peak = record.get("matmul_peak")
    rows = [["case", "bs", "mode", "module median [p25-p75]", "baseline median [p25-p75]",
             "ratio [p25-p75]", "FLOPs", "FLOP/s", "% peak" if peak else "% peak (n/a)",
             "mem module", "mem base"]]
    for result in record["results"]:
        if result.get("status") != "ok":
            what = result.get("reason") or result.get("error", "")
            rows.append([result["case"], str(result.get("batch_size_requested") or "-"),
                         result.get("status", "?"), what, "", "", "", "", "", "", ""])
            continue
        loading = result.get("kind") == "dataloader"  # samples/s and their ratio
        cell = _cell_rate if loading else _cell_time
        for mode, res in result["modes"].items():
            module, base = res["module"], res.get("baseline")
            ratio = res.get("throughput_ratio" if loading else "ratio")
            ratio_cell = (f"{ratio['median']:.3f} [{ratio['p25']:.3f}-{ratio['p75']:.3f}]"
                          if ratio else "-")
            flops = (module.get("flops") or {}).get("total")
            frac = module.get("peak_fraction")
            rows.append([
                result["case"], str(result.get("batch_size", "-")), mode,
                f"{module['label']} {cell(module)}",
                f"{base['label']} {cell(base)}" if base else "-",
                ratio_cell, format_count(flops), format_count(
                    module.get("achieved_flops_per_s")),
                f"{100 * frac:.1f}%" if frac is not None else "-",
                format_bytes((module.get("memory") or {}).get("bytes")),
                format_bytes((base.get("memory") or {}).get("bytes")) if base else "-",
            ])
    return rows


def format_table(record: dict) -> str:
    """The summary table as aligned text, with the device and peak on top."""
    env = record["environment"]
    head = [f"device: {env['device_name']} ({env['device']}), torch {env['torch']}"
            f"{', cuda ' + str(env['cuda']) if env.get('cuda') else ''}, "
            f"threads {env['torch_threads']}, dtype {record['settings']['dtype']}"]
    peak = record.get("matmul_peak")
    if peak:
        head.append(f"measured matmul peak: {format_count(peak['flops_per_s'], 'FLOP/s')} "
                    f"({peak['dtype']}, n={peak['size']})")
    rows = table_rows(record)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    notes = ["ratio: module / baseline per interleaved round (median and quartiles; time, or "
             "samples/s for data loading); FLOPs: "
             "torch.utils.flop_counter (matmul/conv only); memory: "
             + ("CUDA allocator peak" if env["device"].startswith("cuda")
                else "process RSS growth (approximate)")]
    return "\n".join(head + [""] + lines + [""] + notes)


def write_json(record: dict, path: str | os.PathLike) -> Path:
    """Write the record (every sample included)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1, default=str) + "\n")
    return path


def write_chart(record: dict, path: str | os.PathLike) -> Path | None:
    """A PNG, one row per mode: left, median time of module and baseline of every case
    (log scale, whiskers at the quartiles); right, the per-round ratio module / baseline
    (median, quartile whiskers; 1 = as fast as the baseline; data loading: samples/s module /
    baseline, so above 1 = faster). None when nothing ran."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    by_mode: dict[str, list[tuple[str, dict]]] = {}
    for result in record["results"]:
        if result.get("status") != "ok":
            continue
        for mode, res in result["modes"].items():
            by_mode.setdefault(mode, []).append(
                (f"{result['case']} (bs {result.get('batch_size')})", res))
    if not by_mode:
        return None
    heights = [max(1.2, 0.55 * len(v) + 0.6) for v in by_mode.values()]
    fig, axes = plt.subplots(len(by_mode), 2, squeeze=False, figsize=(12, sum(heights) + 0.8),
                             gridspec_kw={"width_ratios": [3, 2], "height_ratios": heights})
    bar = 0.38
    for (ax_t, ax_r), (mode, entries) in zip(axes, by_mode.items()):
        loading = all("samples_per_s" in res["module"] for _, res in entries)
        ratio_key = "throughput_ratio" if loading else "ratio"
        lowest = min(res[role]["stats"]["p25"] for _, res in entries
                     for role in ("module", "baseline") if role in res)
        highest = max(res[role]["stats"]["p75"] for _, res in entries
                      for role in ("module", "baseline") if role in res)
        for i, (_name, res) in enumerate(entries):
            for offset, role, color in ((-bar / 2, "module", "tab:blue"),
                                        (bar / 2, "baseline", "tab:gray")):
                entry = res.get(role)
                if not entry:
                    continue
                s = entry["stats"]
                ax_t.barh(i + offset, s["median"], height=bar, color=color, capsize=2,
                          xerr=[[s["median"] - s["p25"]], [s["p75"] - s["median"]]],
                          label=role if i == 0 else None)
                ax_t.text(s["p75"], i + offset, f" {entry['label']} {format_seconds(s['median'])}",
                          va="center", fontsize=7)
            if ratio_key in res:
                r = res[ratio_key]
                ax_r.errorbar(r["median"], i, xerr=[[r["median"] - r["p25"]],
                                                    [r["p75"] - r["median"]]],
                              fmt="o", color="tab:blue", capsize=3)
                ax_r.text(r["p75"], i, f"  {r['median']:.3f}x", va="center", fontsize=8)
        names = [name for name, _ in entries]
        for ax in (ax_t, ax_r):
            ax.set_yticks(range(len(entries)))
            ax.set_ylim(len(entries) - 0.5, -0.5)
        ax_t.set_yticklabels(names, fontsize=8)
        ax_r.set_yticklabels([])
        ax_t.set_xscale("log")
        ax_t.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax_t.set_xlim(lowest / 3, highest * 12)  # room for the labels right of the bars
        ax_t.set_title(f"{mode}: median ms per {'sample' if loading else 'call'} (log)",
                       fontsize=9, loc="left")
        ax_t.legend(loc="lower right", fontsize=7, framealpha=0.7)
        ratios = [v for _, res in entries if ratio_key in res
                  for v in (res[ratio_key]["p25"], res[ratio_key]["p75"])]
        if ratios and max(ratios) / min(ratios) > 4:  # wide spread of ratios: log axis
            ax_r.set_xscale("log")
            ax_r.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax_r.axvline(1.0, color="black", linewidth=0.8, linestyle="--")
        ax_r.set_title(f"{mode}: {'samples/s ' if loading else ''}module / baseline "
                       "(1 = same speed)", fontsize=9, loc="left")
        ax_r.margins(x=0.3)
    env = record["environment"]
    fig.suptitle(f"cplugins bench: {env['device_name']} ({env['device']}), "
                 f"{record['settings']['dtype']}, torch {env['torch']}", fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def markdown_table(record: dict) -> str:
    """The summary table as GitHub markdown (for RESULTS.md-style write-ups)."""
    rows = table_rows(record)
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + " --- |" * len(rows[0])]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |"
              for row in rows[1:]]
    return "\n".join(lines)
