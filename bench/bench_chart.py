#!/usr/bin/env python3
"""The benchmark page's charts from ``bench_all.py --sweep``'s figures (bench/out/sweep.json).

usage: bench_chart.py SWEEP.json [--out docs/img]

Writes two SVG bar charts (no plotting library needed): bench-rows-by-size.svg (end-to-end
rows/s of the CSV route against the file's size) and bench-uploads-by-concurrency.svg (small
uploads/s, and p99 latency, against the uploads in flight).
"""

from __future__ import annotations

import argparse
import json
from html import escape
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
W, H, LEFT, BOTTOM, TOP = 560, 300, 70, 50, 40


def bar_chart(title: str, labels: list[str], values: list[float], unit: str,
              notes: list[str], subtitle: str = "") -> str:
    """One SVG bar chart: a bar per label, its value above it and a note under its label."""
    top = max(values) * 1.15 if values and max(values) > 0 else 1.0
    plot_w, plot_h = W - LEFT - 20, H - TOP - BOTTOM
    step = plot_w / max(1, len(values))
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
           f'viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{W / 2}" y="22" text-anchor="middle" font-size="14" font-weight="bold">'
           f'{escape(title)}</text>',
           f'<text x="{W - 8}" y="{H - 6}" text-anchor="end" font-size="10" fill="#888">'
           f'{escape(subtitle)}</text>',
           f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}" stroke="#444"/>',
           f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{LEFT + plot_w}" y2="{TOP + plot_h}" '
           'stroke="#444"/>']
    for i in range(5):
        v = top * i / 4
        y = TOP + plot_h - plot_h * i / 4
        out.append(f'<line x1="{LEFT - 4}" y1="{y:.1f}" x2="{LEFT + plot_w}" y2="{y:.1f}" '
                   'stroke="#ddd"/>')
        out.append(f'<text x="{LEFT - 8}" y="{y + 4:.1f}" text-anchor="end">{v:,.0f}</text>')
    out.append(f'<text x="16" y="{TOP + plot_h / 2}" transform="rotate(-90 16 '
               f'{TOP + plot_h / 2})" text-anchor="middle">{escape(unit)}</text>')
    for i, (label, value, note) in enumerate(zip(labels, values, notes)):
        x = LEFT + step * i + step * 0.2
        h = plot_h * value / top
        y = TOP + plot_h - h
        out.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{step * 0.6:.1f}" height="{h:.1f}" '
                   'fill="#3f7fbf"/>')
        cx = x + step * 0.3
        out.append(f'<text x="{cx:.1f}" y="{y - 5:.1f}" text-anchor="middle">{value:,.0f}</text>')
        out.append(f'<text x="{cx:.1f}" y="{TOP + plot_h + 16}" text-anchor="middle">'
                   f'{escape(label)}</text>')
        out.append(f'<text x="{cx:.1f}" y="{TOP + plot_h + 32}" text-anchor="middle" '
                   f'fill="#666">{escape(note)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("sweep", type=Path)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    args = ap.parse_args()
    sweep = json.loads(args.sweep.read_text())
    args.out.mkdir(parents=True, exist_ok=True)
    sizes = sweep["sizes"]
    loads = [c.get("load") for c in sweep["concurrency"] if c.get("load") is not None]
    subtitle = f"{sweep.get('when', '')} UTC, 2 cores" + (
        f", load {min(loads):.1f}-{max(loads):.1f}" if loads else "")
    (args.out / "bench-rows-by-size.svg").write_text(bar_chart(
        "CSV route, end to end: rows/s by file size", [f"{s['rows']:,} rows" for s in sizes],
        [s["rows_per_s"] for s in sizes], "rows/s", [f"{s['mb']:.1f} MB" for s in sizes],
        subtitle))
    conc = sweep["concurrency"]
    (args.out / "bench-uploads-by-concurrency.svg").write_text(bar_chart(
        "Small uploads (10-1,000 rows): uploads/s by uploads in flight",
        [f"{c['concurrency']} in flight" for c in conc], [c["uploads_per_s"] for c in conc],
        "uploads/s", [f"p99 {c['p99_ms']:.0f} ms" for c in conc], subtitle))
    print(f"charts written to {args.out} (from {args.sweep}, {sweep.get('when', '')})")


if __name__ == "__main__":
    main()
