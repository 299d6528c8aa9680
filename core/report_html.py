"""``gongkai report --html FILE``: the assessment as one self-contained page.

The ranking, the key areas, a bar chart of each unit's on-time rate (inline SVG, the
numbers also in text and in the table beside it) and, per unit, the findings behind its
figures. CSS is inline and nothing is fetched, so the page can be mailed or opened from
a USB stick; it passes axe-core (WCAG 2.1 A/AA) and the Nu Html Checker
(tests/test_report_page.py). The style is the parity page's.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from .item import CST
from .parity_html import _CSS
from .report import PART_LABELS, Report, Tally, UnitReport
from .report_xlsx import FINDING_COLUMNS, TALLY_COLUMNS, finding_rows

_MORE_CSS = """
.num{text-align:right;font-variant-numeric:tabular-nums}
.figures{display:flex;flex-wrap:wrap;gap:.6rem;padding:0;list-style:none}
.figures li{border:1px solid #8a8a8a;border-radius:4px;padding:.4rem .8rem}
.figures strong{display:block;font-size:1.4rem}
"""


def render_page(report: Report) -> str:
    """The whole page as text."""
    title = f"{report.label}政务公开工作考核报告"
    at = report.now.astimezone(CST)
    total = report.total
    scope = "".join(
        f"；{label}：{escape(value)}"
        for label, value in (("责任单位", report.unit), ("重点领域", report.area))
        if value
    )
    weights = "，".join(f"{PART_LABELS[k]}{w:g}" for k, w in report.weights.items())
    parts = [
        "<!DOCTYPE html>",
        '<html lang="zh-CN">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title>",
        f"<style>{_CSS}{_MORE_CSS}</style>",
        "</head>",
        "<body>",
        "<header>",
        f"<h1>{escape(title)}</h1>",
        f"<p>统计期间：{report.start}至{report.end}{scope}。生成时间：{at:%Y年%m月%d日 %H:%M}"
        f"（北京时间）。得分权重：{escape(weights)}。</p>",
        "</header>",
        '<main id="main">',
        '<section aria-labelledby="overall-title">',
        '<h2 id="overall-title">总体情况</h2>',
        '<ul class="figures">',
        *(
            f"<li><strong>{value}</strong>{label}</li>"
            for label, value in (
                ("应公开事项", total.judged),
                ("按时公开", total.on_time),
                ("逾期公开", total.late),
                ("逾期未公开", total.overdue),
                ("按时率", _rate(total.on_time_rate)),
                ("未按周期更新", total.cycle_gaps),
                ("未解读政策", total.interpretations_missing),
                ("一致性问题事项", total.parity_problem_items),
            )
        ),
        "</ul>",
        "</section>",
        _chart(report.units),
        _ranking(report),
        _areas(report),
    ]
    for number, unit in enumerate(report.units, 1):
        parts.append(_unit(number, unit))
    if not report.units:
        parts.append("<p>本期无应公开事项。</p>")
    parts += ["</main>", "</body>", "</html>", ""]
    return "\n".join(parts)


def _chart(units: Sequence[UnitReport]) -> str:
    """One horizontal bar per unit: its on-time rate."""
    shown = [u for u in units if u.tally.on_time_rate is not None]
    if not shown:
        return ""
    label_w, bar_w, row_h, top = 210, 420, 26, 22
    width, height = label_w + bar_w + 70, top + row_h * len(shown) + 8
    rows = []
    for n, unit in enumerate(shown):
        rate = unit.tally.on_time_rate or 0.0
        y = top + n * row_h
        rows.append(
            f'<text x="{label_w - 8}" y="{y + 17}" text-anchor="end" font-size="13" '
            f'fill="#1a1a1a">{escape(unit.unit)}</text>'
            f'<rect x="{label_w}" y="{y + 4}" width="{round(bar_w * rate, 1)}" height="18" '
            f'fill="#1a6b34"/>'
            f'<text x="{label_w + round(bar_w * rate, 1) + 6}" y="{y + 17}" font-size="13" '
            f'fill="#1a1a1a">{_rate(rate)}</text>'
        )
    axis = "".join(
        f'<line x1="{label_w + bar_w * f}" x2="{label_w + bar_w * f}" y1="{top - 4}" '
        f'y2="{height - 4}" stroke="#8a8a8a" stroke-width="0.5"/>'
        f'<text x="{label_w + bar_w * f}" y="{top - 8}" text-anchor="middle" font-size="11" '
        f'fill="#1a1a1a">{int(f * 100)}%</text>'
        for f in (0, 0.5, 1)
    )
    summary = "；".join(f"{u.unit}{_rate(u.tally.on_time_rate)}" for u in shown) + "。"
    return "\n".join(
        [
            '<section aria-labelledby="chart-title" class="chart">',
            '<h2 id="chart-title">各单位按时公开率</h2>',
            f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
            'aria-labelledby="chart-svg-title chart-svg-desc">',
            '<title id="chart-svg-title">各单位按时公开率</title>',
            f'<desc id="chart-svg-desc">{escape(summary)}</desc>',
            axis,
            *rows,
            "</svg>",
            f"<p>{escape(summary)}</p>",
            "</section>",
        ]
    )


def _ranking(report: Report) -> str:
    head = ["排名", "责任单位", "得分", *(title for _, title, _ in TALLY_COLUMNS)]
    rows = [
        [u.rank or "—", u.unit, "—" if u.score is None else f"{u.score:.1f}", *_cells(u.tally)]
        for u in report.units
    ]
    rows.append(["", "合计", "", *_cells(report.total)])
    return _section("ranking", "单位排名", _table("单位排名及各项指标", head, rows, row_header=1))


def _areas(report: Report) -> str:
    if not report.areas:
        return ""
    head = ["重点领域", *(title for _, title, _ in TALLY_COLUMNS)]
    rows = [[a.name, *_cells(a.tally)] for a in report.areas]
    return _section("areas", "重点领域", _table("各重点领域指标", head, rows, row_header=0))


def _unit(number: int, unit: UnitReport) -> str:
    rows = [["" if v is None else v for v in row] for row in finding_rows(unit)]
    score = "无可评项" if unit.score is None else f"得分{unit.score:.1f}，第{unit.rank}名"
    body = f"<p>{escape(score)}。</p>" + (
        _table(f"{unit.unit}明细", [t for t, _ in FINDING_COLUMNS], rows, row_header=None)
        if rows
        else "<p>本期无明细。</p>"
    )
    return _section(f"unit-{number}", unit.unit, body)


def _section(key: str, heading: str, body: str) -> str:
    return (
        f'<section aria-labelledby="{key}-title">\n<h2 id="{key}-title">{escape(heading)}</h2>\n'
        f"{body}\n</section>"
    )


def _table(
    caption: str, head: Sequence[str], rows: Sequence[Sequence[object]], row_header: int | None
) -> str:
    lines = [
        f'<div class="scroll" role="region" tabindex="0" aria-label="{escape(caption)}">',
        f"<table><caption>{escape(caption)}</caption>",
        "<thead><tr>" + "".join(f'<th scope="col">{escape(h)}</th>' for h in head),
        "</tr></thead>",
        "<tbody>",
    ]
    for row in rows:
        cells = []
        for n, value in enumerate(row):
            text = escape(str(value))
            css = ' class="num"' if isinstance(value, int | float) else ""
            if n == row_header:
                cells.append(f'<th scope="row">{text}</th>')
            else:
                cells.append(f"<td{css}>{text}</td>")
        lines.append("<tr>" + "".join(cells) + "</tr>")
    lines += ["</tbody>", "</table>", "</div>"]
    return "\n".join(lines)


def _cells(tally: Tally) -> list[object]:
    values = tally.as_dict()
    return [
        _rate(tally.on_time_rate) if key == "on_time_rate" else values[key]
        for key, _, _ in TALLY_COLUMNS
    ]


def _rate(rate: float | None) -> str:
    return "—" if rate is None else f"{rate:.1%}"
