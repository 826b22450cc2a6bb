"""The cost-accuracy Pareto plot (matplotlib, PNG)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

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
    for (model, planner), pts in sorted(lines.items()):
        pts.sort(key=xval)
        label = f"{planner} ({model})" if many_models else planner
        (line,) = ax.plot([xval(p) for p in pts], [p.accuracy for p in pts], marker="o", label=label)
        for p in pts:
            ax.annotate(
                f"B={p.budget}",
                (xval(p), p.accuracy),
                textcoords="offset points",
                xytext=(4, 4),
                fontsize=8,
                color=line.get_color(),
            )
    points = [(xval(r), r.accuracy) for r in rows]
    front = pareto_front(points)
    if front:
        fx = [points[i][0] for i in front]
        fy = [points[i][1] for i in front]
        ax.step(fx, fy, where="post", linestyle="--", color="black", linewidth=1, label="Pareto frontier")
        ax.scatter(fx, fy, s=160, facecolors="none", edgecolors="black", linewidths=1.2)
    ax.set_xlabel("mean unified cost per episode ($)" if x == "cost" else "mean tokens per episode")
    ax.set_ylabel("accuracy")
    top = max((r.accuracy for r in rows), default=1.0)
    ax.set_ylim(-0.02, max(0.1, min(1.0, top * 1.25 + 0.02)))
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=9)
    n = sorted({r.n for r in rows})
    ax.set_title(title or f"accuracy vs cost (n = {n[0] if len(n) == 1 else f'{n[0]}-{n[-1]}'} per point)")
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out
