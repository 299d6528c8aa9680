"""``gongkai parity --html FILE``: the parity report as one self-contained page.

A township head reads it rather than the table: per township a matrix of items ×
channels, each cell coloured by state and labelled in words (colour is never the only
sign), the findings that need someone listed under it, and a small chart of parity over
the last 90 days. Everything is inline (CSS and SVG): the page makes no request, so it
can be mailed or opened from a USB stick. It passes axe-core (WCAG 2.1 AA) and the Nu
Html Checker (tests/test_parity_page.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from .item import CST
from .parity import ChannelParity, ItemParity, ParityReport
from .parity_history import DayParity

#: state → (Chinese label, CSS class: one of five colours, or plain).
LABELS: dict[str, tuple[str, str]] = {
    "current": ("一致", "current"),
    "ended": ("已到期撤下", "current"),
    "withdrawn": ("已撤回", "current"),
    "stale": ("旧版未更换", "stale"),
    "take-down": ("待撤下", "stale"),
    "awaiting": ("待确认", "awaiting"),
    "pending": ("待发布", "awaiting"),
    "scheduled": ("定时发布", "awaiting"),
    "publishing": ("发布中", "awaiting"),
    "overdue": ("确认逾期", "overdue"),
    "expired": ("公示期满未撤", "overdue"),
    "early": ("提前撤下", "overdue"),
    "failed": ("发布失败", "overdue"),
    "missing": ("缺失", "missing"),
    "not-configured": ("未配置", "missing"),
}
#: The legend: each colour once, with what it covers.
LEGEND = [
    ("current", "一致：载有现行版本"),
    ("stale", "旧版：仍是旧版本，或应撤下尚未撤下"),
    ("awaiting", "待确认：已生成，等待张贴、播放或发布的确认"),
    ("overdue", "逾期：确认逾期、公示期满未撤、提前撤下或发布失败"),
    ("missing", "缺失：目录要求的渠道没有发布或未配置"),
]
CHANNEL_NAMES = {
    "platform": "市级平台",
    "portal": "县门户网站",
    "wechat": "微信公众号",
    "notice_board": "公示栏",
    "broadcast": "广播",
    "archive": "归档",
    "webhook": "接口推送",
}

_CSS = """
*{box-sizing:border-box}
body{margin:0;font:16px/1.6 "Noto Sans CJK SC","Source Han Sans SC","Microsoft YaHei",sans-serif;
color:#1a1a1a;background:#fff}
header,main{max-width:78rem;margin:0 auto;padding:1rem 1.25rem}
header{border-bottom:3px solid #0b3a75}
h1{font-size:1.6rem;margin:.2rem 0}h2{font-size:1.3rem;margin:1.6rem 0 .6rem}
.verdict{font-weight:bold;padding:.5rem .8rem;display:inline-block;border-radius:4px}
.scroll{overflow-x:auto}
.scroll:focus{outline:3px solid #0b3a75}
table{border-collapse:collapse;width:100%;margin:.4rem 0 1rem}
caption{text-align:left;font-weight:bold;padding:.3rem 0}
th,td{border:1px solid #8a8a8a;padding:.35rem .5rem;vertical-align:top;text-align:left}
thead th{background:#eef1f5}
th[scope=row] small{display:block;color:#404040;font-weight:normal}
.current{background:#e3f3e6;color:#0b3d1a}
.stale{background:#fff1c2;color:#4d3900}
.awaiting{background:#e3edfa;color:#0b3266}
.overdue{background:#8f0a1a;color:#fff}
.missing{background:#fbe3e6;color:#6d0011;font-weight:bold}
.none{color:#404040}
ul.legend{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:.5rem}
ul.legend li{padding:.2rem .6rem;border-radius:3px}
.chart svg{max-width:100%;height:auto}
"""


def render_page(report: ParityReport, history: Sequence[DayParity]) -> str:
    """The whole page as text."""
    counts = report.counts()
    verdict_class = "current" if report.ok else "overdue"
    verdict = "一致性正常" if report.ok else "一致性未达标"
    at = report.now.astimezone(CST)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="zh-CN">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>政务公开线上线下一致性报告 {report.today}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        "<header>",
        "<h1>政务公开线上线下一致性报告</h1>",
        f"<p>生成时间：{at:%Y年%m月%d日 %H:%M}（北京时间）。确认超过"
        f"{report.overdue_days}天未登记即为逾期。</p>",
        f'<p class="verdict {verdict_class}">{verdict}：共{counts["items"]}项，'
        f"一致{counts['ok']}项，待办{counts['waiting']}项，未达标{counts['broken']}项</p>",
        "</header>",
        '<main id="main">',
        _chart(history),
        '<section aria-labelledby="legend-title">',
        '<h2 id="legend-title">图例</h2>',
        '<ul class="legend">',
        *(f'<li class="{css}">{escape(text)}</li>' for css, text in LEGEND),
        "</ul>",
        "</section>",
    ]
    towns: dict[str, list[ItemParity]] = {}
    for item in sorted(report.items, key=lambda i: (i.township, i.publisher, i.item_id)):
        towns.setdefault(item.township, []).append(item)
    if not towns:
        parts.append("<p>账本中暂无事项。</p>")
    for number, (town, items) in enumerate(towns.items(), 1):
        parts += _township(number, town, items)
    parts += ["</main>", "</body>", "</html>", ""]
    return "\n".join(parts)


def _township(number: int, town: str, items: list[ItemParity]) -> list[str]:
    channels = list(dict.fromkeys(c.channel for item in items for c in item.channels))
    head = "".join(
        f'<th scope="col">{escape(CHANNEL_NAMES.get(c, c))}<br><small>{escape(c)}</small></th>'
        for c in channels
    )
    rows = []
    for item in items:
        found = {c.channel: c for c in item.channels}
        cells = "".join(_cell(found.get(c)) for c in channels)
        late = '<br><strong class="overdue">超过法定公开时限</strong>' if item.late else ""
        rows.append(
            f'<tr><th scope="row">{escape(item.title)}<small>{escape(item.item_id)} · 第'
            f"{item.edition}版 · {escape(item.publisher)}</small>{late}</th>{cells}</tr>"
        )
    problems = [
        f"<li><strong>{escape(item.title)}</strong>（{escape(item.item_id)}）：{escape(p)}</li>"
        for item in items
        for p in item.problems
    ]
    caption = f"town-{number}"
    return [
        f'<section aria-labelledby="h-{caption}">',
        f'<h2 id="h-{caption}">{escape(town)}</h2>',
        f'<div class="scroll" role="region" tabindex="0" aria-labelledby="{caption}">',
        f'<table><caption id="{caption}">{escape(town)}：事项 × 发布渠道</caption>',
        f'<thead><tr><th scope="col">事项</th>{head}</tr></thead>',
        "<tbody>",
        *rows,
        "</tbody></table>",
        "</div>",
        *(["<h3>需要处理</h3>", "<ul>", *problems, "</ul>"] if problems else []),
        "</section>",
    ]


def _cell(channel: ChannelParity | None) -> str:
    if channel is None:
        return '<td class="none">不适用</td>'
    label, css = LABELS[channel.state]
    edition = f"<br>第{channel.edition}版" if channel.edition else ""
    areas = ""
    if len(channel.areas) > 1:
        areas = "".join(f"<br>{escape(a.area)}：{LABELS[a.state][0]}" for a in channel.areas)
    return f'<td class="{css}">{label}{edition}{areas}</td>'


def _chart(history: Sequence[DayParity]) -> str:
    """A bar per day: the share of items at parity that day, with the numbers in text."""
    if not history:
        return ""
    width, height, top, bottom, left = 720, 160, 10, 24, 40
    plot = height - top - bottom
    step = (width - left) / len(history)
    bars = []
    for n, day in enumerate(history):
        h = round(plot * day.share, 1) if day.items else 0
        x = round(left + n * step, 1)
        bars.append(
            f'<rect x="{x}" y="{round(top + plot - h, 1)}" width="{round(step * 0.8, 1)}" '
            f'height="{h}" fill="#1a6b34"/>'
        )
    first, last = history[0], history[-1]
    grid = "".join(
        f'<line x1="{left}" x2="{width}" y1="{top + plot * (1 - f)}" y2="{top + plot * (1 - f)}" '
        f'stroke="#8a8a8a" stroke-width="0.5"/>'
        f'<text x="{left - 4}" y="{top + plot * (1 - f) + 4}" text-anchor="end" '
        f'font-size="11" fill="#1a1a1a">{int(f * 100)}%</text>'
        for f in (0, 0.5, 1)
    )
    labels = (
        f'<text x="{left}" y="{height - 6}" font-size="11" fill="#1a1a1a">{first.day}</text>'
        f'<text x="{width}" y="{height - 6}" font-size="11" text-anchor="end" '
        f'fill="#1a1a1a">{last.day}</text>'
    )
    summary = f"今日一致{last.at_parity}项，共{last.items}项"
    counted = [d for d in history if d.items]  # days before the first item say nothing
    if counted:
        best = max(counted, key=lambda d: d.share)
        worst = min(counted, key=lambda d: d.share)
        summary += (
            f"；近{len(history)}天最低{worst.share:.0%}（{worst.day}），"
            f"最高{best.share:.0%}（{best.day}）"
        )
    summary += "。"
    return "\n".join(
        [
            '<section aria-labelledby="chart-title" class="chart">',
            f'<h2 id="chart-title">近{len(history)}天一致率</h2>',
            f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
            'aria-labelledby="chart-svg-title chart-svg-desc">',
            '<title id="chart-svg-title">每日处于一致状态的事项比例</title>',
            f'<desc id="chart-svg-desc">{escape(summary)}</desc>',
            grid,
            *bars,
            labels,
            "</svg>",
            f"<p>{escape(summary)}</p>",
            "</section>",
        ]
    )
