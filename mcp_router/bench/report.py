"""Benchmark output: the stderr progress bar, the stdout table, the JSON file and the plot."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO


class ProgressBar:
    """A one-line progress bar on stderr (redrawn in place on a terminal, every ~10 % otherwise)."""

    def __init__(self, total: int, label: str = "", stream: TextIO | None = None, width: int = 30) -> None:
        self.total = max(1, total)
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.done = 0
        self.started = time.perf_counter()
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last_decile = -1
        self._draw("")

    def update(self, n: int = 1, note: str = "") -> None:
        self.done = min(self.total, self.done + n)
        self._draw(note)

    def _draw(self, note: str) -> None:
        frac = self.done / self.total
        decile = int(frac * 10)
        if not self.tty and decile == self._last_decile and self.done < self.total:
            return
        self._last_decile = decile
        elapsed = time.perf_counter() - self.started
        eta = elapsed / frac - elapsed if frac > 0 else 0.0
        filled = round(frac * self.width)
        bar = "#" * filled + "." * (self.width - filled)
        line = (
            f"{self.label} [{bar}] {self.done}/{self.total} {elapsed:5.0f}s elapsed, ~{eta:4.0f}s left {note}"
        )
        if self.tty:
            self.stream.write("\r" + line.ljust(110)[:160])
        else:
            self.stream.write(line.rstrip() + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def format_table(report: dict[str, Any]) -> str:
    """The policies as a fixed-width table, best quality first, with each arm's traffic share."""
    arms = list(report["arms"])
    short = {arm: arm[:9] for arm in arms}
    legend = ""
    if len(set(short.values())) < len(arms):  # truncated names collide: number the arms instead
        short = {arm: f"arm{i + 1}" for i, arm in enumerate(arms)}
        legend = "arms: " + ", ".join(f"{short[a]} = {a}" for a in arms)
    head = (
        f"{'policy':<15} {'quality':>7} {'±ci95':>6} {'lat mean':>8} {'lat p95':>7} {'SLA':>6} "
        f"{'q/cycle':>7} {'t/o':>5} " + " ".join(f"{short[a]:>9}" for a in arms)
    )
    lines = [
        f"{report['benchmark']}: {report['steps']} steps x {report['seeds']} seeds, "
        f"L_ref = {report['params']['l_ref_s']} s, timeout = {report['params']['timeout_s']} s, "
        + report["params"].get(
            "judge_label", f"judge noise σ = {report['params']['judge_noise_sigma']} (simulated judge)"
        )
        + (f", {report['machine']['cores']} cores" if "machine" in report else ""),
        "arms (unloaded): "
        + ", ".join(
            f"{a} q={v['quality']:.3f} lat={v['latency_mean_s']:.3f}s" for a, v in report["arms"].items()
        ),
        head,
        "-" * len(head),
    ]
    ranked = sorted(report["policies"].items(), key=lambda kv: -kv[1]["quality_per_cycle"])
    for name, p in ranked:
        lines.append(
            f"{name:<15} {p['quality']:7.4f} {p['quality_ci95']:6.4f} {p['latency_mean_s']:8.3f} "
            f"{p['latency_p95_s']:7.3f} {p['sla_rate']:6.3f} {p['quality_per_cycle']:7.4f} "
            f"{p.get('timeout_rate', 0.0):5.3f} " + " ".join(f"{p['share'][a]:9.3f}" for a in arms)
        )
    lines.append(
        "(sorted by quality per reference cycle; share columns = traffic share per arm; t/o = timeouts)"
    )
    if legend:
        lines.append(legend)
    lines.extend(report.get("notes", []))
    return "\n".join(lines)


def write_json(report: dict[str, Any], path: str | Path) -> None:
    Path(path).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


def plot(report: dict[str, Any], path: str | Path, focus: str = "lqm") -> None:
    """Two panels: quality against mean latency per policy (± ci95), and `focus`'s traffic share over
    the stream (stacked), with the scenario's marks (load surge, capacity drop) shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    policies = report["policies"]
    arms = list(report["arms"])
    if focus not in policies:
        focus = next(iter(policies))
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5.2))

    colours = plt.get_cmap("tab20").colors
    markers = "o^vD<>pP*Xh"
    for k, (name, p) in enumerate(policies.items()):
        gold = name in ("best-fixed", "oracle")
        left.errorbar(
            p["latency_mean_s"],
            p["quality"],
            yerr=p["quality_ci95"],
            fmt=("s" if name == "best-fixed" else "D") if gold else markers[k % len(markers)],
            color="black" if gold else colours[k % len(colours)],
            markeredgecolor="black" if name.startswith("lqm") else "none",
            capsize=3,
            markersize=9 if name.startswith("lqm") else 7,
            label=name,
        )
        if gold:
            xy = (p["latency_mean_s"], p["quality"])
            left.annotate(name, xy, xytext=(6, -10), textcoords="offset points", fontsize=8)
    left.legend(fontsize=7, ncol=2, loc="best", framealpha=0.85)
    l_ref = report["params"]["l_ref_s"]
    left.axvline(l_ref, color="grey", linestyle=":", linewidth=1)
    left.text(l_ref, left.get_ylim()[0], " L_ref", color="grey", fontsize=8, va="bottom")
    left.set_xlabel("mean latency per call (s, simulated; timeouts count as the timeout)")
    left.set_ylabel("mean quality per call (gold; failures count 0)")
    left.set_title(f"{report['benchmark']}: quality vs latency ({report['seeds']} seeds)")
    left.grid(alpha=0.3)

    shares = policies[focus]["share_over_time"]
    bins = len(shares)
    x = [(b + 0.5) / bins * 100 for b in range(bins)]
    right.stackplot(x, [[row[a] for row in shares] for a in range(len(arms))], labels=arms, alpha=0.85)
    for mark in report.get("timeline_marks", []):
        if "to" in mark:
            right.axvspan(mark["from"] * 100, mark["to"] * 100, color="grey", alpha=0.15)
            right.text(mark["from"] * 100, 1.01, mark["label"], fontsize=7, va="bottom")
        else:
            right.axvline(mark["at"] * 100, color="black", linestyle="--", linewidth=1)
            right.text(mark["at"] * 100, 0.5, " " + mark["label"], fontsize=7, rotation=90, va="center")
    right.set_xlim(0, 100)
    right.set_ylim(0, 1)
    right.set_xlabel("stream progress (% of steps)")
    right.set_ylabel("traffic share")
    right.set_title(f"{focus}: traffic share over the stream (mean over seeds)", pad=14)
    right.legend(loc="lower left", fontsize=8, framealpha=0.8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def emit(report: dict[str, Any], args: Any) -> None:
    """What every benchmark does at the end: the JSON and the plot if asked for, then the table."""
    if getattr(args, "json", None):
        write_json(report, args.json)
        print(f"bench: wrote {args.json}", file=sys.stderr)
    if getattr(args, "plot", None):
        plot(report, args.plot)
        print(f"bench: wrote {args.plot}", file=sys.stderr)
    print(format_table(report))
