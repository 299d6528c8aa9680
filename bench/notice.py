"""Notice-board benchmark (issue 11): PDF throughput and one long name list.

In one process it measures:

1. **1-page notices**: N items (default 200), each a short notice with a small table,
   delivered to the ``notice_board`` channel (one PDF, its instruction sheet, the QR
   code and the two-pass "第x页 共y页" footer each);
2. **a 2,000-row name list**: one item whose table runs over many pages with its
   header repeated on each;
3. the **baseline** for both: reportlab's canvas writing the same lines of text in the
   same font, with no table, QR code, page count or file per area. The ratios say what
   the layout costs on top of putting the characters on paper.

    python bench/notice.py
    python bench/notice.py --notices 500 --rows 5000

No test asserts these figures; they are for people.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

from pypdf import PdfReader
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen.canvas import Canvas

from gongkai.channel import ChannelContext, PreparedItem
from gongkai.channels.notice_board import NoticeBoardChannel
from gongkai.channels.notice_board.pdf import CID_FONT, font_name

TOWNS = ["赵镇街道", "五凤镇", "三溪镇", "竹篙镇", "淮口街道", "栖贤街道", "官仓街道", "白果街道"]
HEADER = "| 序号 | 户主 | 村（社区） | 身份证号 | 补助金额（万元） |\n|---|---|---|---|---:|\n"


def name_list(rows: int) -> str:
    lines = "\n".join(
        f"| {n} | 张* | 花园村{n % 9 + 1}组 | 510121********{n % 10}23X | 3.5 |"
        for n in range(1, rows + 1)
    )
    return "经农户申请、村民代表评议、镇政府审核，现将补助对象名单公示如下：\n\n" + HEADER + lines


def item(n: int, rows: int) -> PreparedItem:
    return PreparedItem(
        id=f"bench-{n:06}",
        catalog="dilapidated.subsidy-list",
        title=f"{TOWNS[n % len(TOWNS)]}2026年农村危房改造补助对象公示（第{n}批）",
        body=name_list(rows),
        publisher=f"{TOWNS[n % len(TOWNS)]}人民政府",
        document_number=f"金府办〔2026〕{n}号",
        formed_on=date(2026, 11, 20),
        area=f"{TOWNS[n % len(TOWNS)]}某村",
        contact="028-84931234",
        edition=1,
        content_hash=hashlib.sha256(str(n).encode()).hexdigest(),
    )


def baseline(notice: PreparedItem) -> bytes:
    """The same lines of text on A4 pages in the same font: no table, no QR code."""
    font_name(None)
    out = io.BytesIO()
    canvas = Canvas(out, pagesize=A4, invariant=1)
    lines = [notice.title, notice.publisher, *notice.body.splitlines()]
    y = A4[1] - 60
    for line in lines:
        if y < 60:
            canvas.showPage()
            y = A4[1] - 60
        canvas.setFont(CID_FONT, 10.5)
        canvas.drawString(50, y, line)
        y -= 16
    canvas.showPage()
    canvas.save()
    return out.getvalue()


def timed(work) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notices", type=int, default=200)
    parser.add_argument("--rows", type=int, default=2000)
    args = parser.parse_args()
    short = [item(n, 5) for n in range(args.notices)]
    long = item(args.notices, args.rows)
    with tempfile.TemporaryDirectory() as tmp:
        context = ChannelContext(
            name="notice_board",
            state_dir=Path(tmp),
            clock=lambda: datetime(2026, 11, 26, 2, tzinfo=UTC),
        )
        config = NoticeBoardChannel.Config(portal_url="https://www.jintang.gov.cn/zwgk/")
        channel = NoticeBoardChannel(config, context)
        channel.deliver(short[0], channel.render(short[0]), None)  # fonts, catalogue

        def deliver_all() -> None:
            for notice in short:
                channel.deliver(notice, channel.render(notice), None)

        pdfs = timed(deliver_all)
        plain = timed(lambda: [baseline(notice) for notice in short])
        print(
            f"1-page notices: {len(short)} in {pdfs:.2f} s = {len(short) / pdfs:.1f} PDFs/s "
            f"(baseline text-only canvas: {len(short) / plain:.1f} PDFs/s; "
            f"ratio {pdfs / plain:.1f}x)"
        )
        receipt = None

        def deliver_long() -> None:
            nonlocal receipt
            receipt = channel.deliver(long, channel.render(long), None)

        seconds = timed(deliver_long)
        plain_long = timed(lambda: baseline(long))
        pdf = next(iter(receipt.data["areas"].values()))["file"]
        pages = len(PdfReader(pdf).pages)
        print(
            f"{args.rows:,}-row name list: {seconds:.2f} s, {pages} pages "
            f"(baseline text-only canvas: {plain_long:.2f} s; ratio {seconds / plain_long:.1f}x)"
        )


if __name__ == "__main__":
    main()
