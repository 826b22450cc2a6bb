"""The cost-accuracy Pareto plot (matplotlib, PNG)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._extras import require
from .report import Row, pareto_front

__all__ = ["plot_pareto"]


def plot_pareto(rows: Sequence[Row], path: str | Path, *, x: str = "cost", title: str | None = None) -> Path:
    """Accuracy against mean unified cost (or mean tokens), one line per planner through its budgets.

    The Pareto frontier across all points is drawn as a dashed step line with its points ringed.
    """
    require("matplotlib", "plot")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def xval(r: Row) -> float:
        return r.cost if x == "cost" else r.tokens

    fig, ax = plt.subplots(figsize=(7.5, 5), dpi=120)
    lines: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for r in rows:
        lines[(r.model, r.planner)].append(r)
    many_models = len({r.model for r in rows}) > 1
    markers = "osD^vP*X"
    labels: list[tuple[Row, float, float, Any]] = []
    for k, ((model, planner), pts) in enumerate(sorted(lines.items())):
        pts.sort(key=xval)
        label = f"{planner} ({model})" if many_models else planner
        xs, ys = [xval(p) for p in pts], [p.accuracy for p in pts]
        below = [max(p.accuracy - p.ci[0], 0.0) if p.ci[0] == p.ci[0] else 0.0 for p in pts]
        above = [max(p.ci[1] - p.accuracy, 0.0) if p.ci[1] == p.ci[1] else 0.0 for p in pts]
        bars = ax.errorbar(
            xs,
            ys,
            yerr=[below, above],
            marker=markers[k % len(markers)],
            capsize=3,
            elinewidth=0.8,
            alpha=0.85,
            label=label,
        )
        color = bars.lines[0].get_color()
        labels.extend((p, px, py, color) for p, px, py in zip(pts, xs, ys, strict=True))
    points = [(xval(r), r.accuracy) for r in rows]
    front = pareto_front(points)
    if front:
        fx = [points[i][0] for i in front]
        fy = [points[i][1] for i in front]
        ax.step(fx, fy, where="post", linestyle="--", color="black", linewidth=1, label="Pareto frontier")
        ax.scatter(fx, fy, s=160, facecolors="none", edgecolors="black", linewidths=1.2)
    ax.set_xlabel("mean unified cost per episode ($)" if x == "cost" else "mean tokens per episode")
    ax.set_ylabel("accuracy")
    top = max((max(r.accuracy, r.ci[1] if r.ci[1] == r.ci[1] else 0.0) for r in rows), default=1.0)
    ax.set_ylim(-0.02, max(0.1, min(1.05, top * 1.15 + 0.02)))
    ax.autoscale_view()
    fig.canvas.draw()  # final limits, so labels can be kept apart in screen units
    placed: list[tuple[float, float]] = []
    for p, px, py, color in labels:
        sx, sy = ax.transData.transform((px, py))
        dy = 4.0
        while any(abs(sx - qx) < 36 and abs(sy + dy - qy) < 11 for qx, qy in placed):
            dy += 11  # another label is there: move this one up
        placed.append((sx, sy + dy))
        ax.annotate(
            f"B={p.budget}", (px, py), textcoords="offset points", xytext=(4, dy), fontsize=8, color=color
        )
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=9)
    n = sorted({r.n for r in rows})
    against = "cost" if x == "cost" else "tokens"
    per = n[0] if len(n) == 1 else f"{n[0]}-{n[-1]}"
    ax.set_title(title or f"accuracy vs {against} (n = {per} per point; bars: 95% interval)")
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out
