"""``budgetgraph view``: the page loads in a real headless Chromium (Debian's package, driven by Playwright),
the plot renders with hover, an episode opens on its budget timeline, no console errors, and hostile content
from a results file stays text."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from budgetgraph.envs.view import render_view, view_data

MINI = Path(__file__).resolve().parent / "data" / "multihop_mini.jsonl"
HOSTILE = '</script><script>document.title="owned"</script><img src=x onerror="document.title=1">'


def sweep(tmp_path: Path) -> Path:
    out = tmp_path / "r.jsonl"
    cmd = [
        sys.executable,
        "-m",
        "budgetgraph.cli",
        "eval",
        "hotpotqa",
        "--data",
        str(MINI),
        "--model",
        "scripted",
    ]
    cmd += [
        "--planner",
        "react,tracker",
        "--budget",
        "1,3",
        "--limit",
        "6",
        "--out",
        str(out),
        "--no-progress",
    ]
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    return out


def read(path: Path):
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return lines[0], [r for r in lines if r.get("type") == "episode"]


def test_the_data_has_rows_intervals_and_a_timeline_per_episode(tmp_path):
    header, records = read(sweep(tmp_path))
    data = view_data([("r.jsonl", header, records)])
    (f,) = data["files"]
    assert len(f["episodes"]) == 24 and {r["planner"] for r in f["rows"]} == {"react", "tracker"}
    ep = f["episodes"][0]
    events = [e["event"] for e in ep["timeline"]]
    assert events[0] == "reserve" and "commit" in events
    assert all("remaining" in e for e in ep["timeline"] if e["event"] == "commit")


def test_hostile_content_cannot_close_the_script_tag(tmp_path):
    header, records = read(sweep(tmp_path))
    records[0]["answer"] = HOSTILE
    page = render_view([("r.jsonl", header, records)])
    assert HOSTILE not in page and page.count("</script>") == 2  # the data block's and the code's own


def _browser():
    playwright = pytest.importorskip(
        "playwright.sync_api", reason="the browser test needs pip install 'budgetgraph[browser]'"
    )
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        if os.environ.get("BUDGETGRAPH_REQUIRE_BROWSER") == "1":
            pytest.fail(
                "chromium is not installed (apt-get install chromium) and BUDGETGRAPH_REQUIRE_BROWSER=1"
            )
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return playwright, chromium


def test_the_page_in_headless_chromium(tmp_path):
    sync_api, chromium = _browser()
    results = sweep(tmp_path)
    header, records = read(results)
    records[0]["answer"] = HOSTILE
    second = tmp_path / "second.jsonl"
    second.write_text("\n".join(json.dumps(r) for r in [header, *records]) + "\n")
    page_file = tmp_path / "view.html"
    proc = subprocess.run(
        [sys.executable, "-m", "budgetgraph.cli", "view", str(results), str(second), "-o", str(page_file)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    flags = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
    flags += ["--disable-sync", "--no-first-run", "--disable-quic"]
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=flags)
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        errors: list[str] = []
        requests: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: requests.append(r.url))
        page.goto(page_file.as_uri())
        assert page.locator("section.file").count() == 2  # two results files side by side
        assert page.locator("circle.point").count() == 8
        page.locator("circle.point").last.hover(force=True)
        tip = page.locator("#tip")
        assert tip.is_visible() and "B=" in tip.inner_text() and "acc" in tip.inner_text()
        # labelled points, the frontier, round ticks, and nothing drawn outside the plot's box
        plot = page.locator("svg.plot").first
        labels = plot.locator("text.point-label").all_text_contents()
        assert labels and all(t.startswith("B=") for t in labels)
        assert sum(len(t.removeprefix("B=").split(", ")) for t in labels) == 4  # every point named once
        assert plot.locator("path.frontier").count() == 1
        assert "Pareto frontier" in " ".join(plot.locator("text.legend").all_text_contents())
        outside = plot.evaluate(
            """s => { const box = s.getBoundingClientRect(); return [...s.querySelectorAll("text, circle")]
                .map(e => e.getBoundingClientRect())
                .filter(r => r.left < box.left - 0.5 || r.right > box.right + 0.5
                          || r.top < box.top - 0.5 || r.bottom > box.bottom + 0.5).length; }"""
        )
        assert outside == 0, f"{outside} plot elements are clipped"
        ticks = plot.evaluate(
            """s => [...s.querySelectorAll("text")].map(t => t.textContent)
                .filter(t => /^[0-9.]+$/.test(t))"""
        )
        assert ticks and all(len(t.replace(".", "").lstrip("0")) <= 3 for t in ticks), (
            ticks
        )  # 0.0015, not 0.00069
        page.screenshot(path=str(tmp_path / "plot.png"))
        page.locator("section.file").last.locator("summary").click()
        page.locator("section.file").last.locator("tr.ep").first.click()
        panel = page.locator("#episode")
        assert panel.is_visible() and page.locator("table.tl tr.commit").count() >= 2
        assert HOSTILE in panel.inner_text()  # shown as text, not run
        assert page.title() == "budgetgraph results"
        page.screenshot(path=str(tmp_path / "episode.png"))
        browser.close()
    assert errors == [], errors
    assert [u for u in requests if not u.startswith("file://")] == []  # nothing leaves the machine
