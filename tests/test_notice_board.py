"""The notice_board channel, checked on the PDFs it writes: their text as pdftotext reads
it, their pages, the footer's hash, the QR code as a decoder reads it off a rendered
page, and the examples published end to end through the real command."""

from __future__ import annotations

import io
import shutil
import subprocess
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image
from pydantic import ValidationError
from pypdf import PdfReader

from clihelp import EXAMPLES, as_json, run, write_config
from gongkai.channel import ChannelContext, PreparedItem
from gongkai.channels.notice_board import NoticeBoardChannel
from gongkai.testing import ChannelContract

pytestmark = pytest.mark.skipif(
    not shutil.which("pdftotext") or not shutil.which("pdftoppm"),
    reason="needs poppler-utils (pdftotext, pdftoppm); .ci/run installs it",
)

PORTAL = "https://www.jintang.gov.cn/zwgk/"
# Thursday 26 November 2026, 10:00 in Beijing.
THURSDAY = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)
HEADER = "| 序号 | 户主 | 村（社区） | 身份证号 | 补助金额（万元） |\n|---|---|---|---|---:|\n"


class TestNoticeBoardContract(ChannelContract):
    channel_class = NoticeBoardChannel
    config = {"portal_url": PORTAL}


def name_list(rows: int) -> str:
    lines = (
        f"| {n} | 张* | 花园村{n % 7 + 1}组 | 510121********{n % 10}23X | 3.5 |"
        for n in range(1, rows + 1)
    )
    return "经农户申请、村民代表评议，现将补助对象公示如下：\n\n" + HEADER + "\n".join(lines) + "\n"


def make_item(edition: int = 1, **changes) -> PreparedItem:
    fields = {
        "id": "nb-2026-0403",
        "catalog": "dilapidated.subsidy-list",
        "title": "三溪镇2026年农村危房改造补助对象公示",
        "body": name_list(4),
        "publisher": "三溪镇人民政府",
        "document_number": "三溪府〔2026〕12号",
        "formed_on": date(2026, 11, 20),
        "area": "三溪镇花园村",
        "contact": "028-84931234",
        "edition": edition,
        "content_hash": ("3f9a2c7e" if edition == 1 else "b41d0e95") + "0" * 56,
    }
    fields.update(changes)
    return PreparedItem(**fields)


def make_channel(tmp_path: Path, day: datetime = THURSDAY, **config) -> NoticeBoardChannel:
    config.setdefault("portal_url", PORTAL)
    context = ChannelContext(name="notice_board", state_dir=tmp_path, clock=lambda: day)
    return NoticeBoardChannel(NoticeBoardChannel.Config(**config), context)


def deliver(channel: NoticeBoardChannel, item: PreparedItem, previous=None):
    return channel.deliver(item, channel.render(item), previous)


def pdf_text(path: str | Path, page: int | None = None) -> str:
    pages = ["-f", str(page), "-l", str(page)] if page else []
    return subprocess.run(
        ["pdftotext", "-layout", *pages, str(path), "-"], capture_output=True, text=True, check=True
    ).stdout


def squeeze(text: str) -> str:
    """pdftotext's layout puts spaces between table cells and between the footer's parts."""
    return " ".join(text.split())


def the_pdf(receipt, area: str = "三溪镇花园村") -> Path:
    return Path(receipt.data["areas"][area]["file"])


def test_the_notice_carries_title_table_posting_phones_and_signature(tmp_path):
    channel = make_channel(tmp_path, complaint_phone="028-84930000")
    text = squeeze(pdf_text(the_pdf(deliver(channel, make_item()))))
    assert "三溪镇2026年农村危房改造补助对象公示" in text
    assert "三溪镇人民政府 三溪府〔2026〕12号" in text
    assert "序号 户主 村（社区） 身份证号 补助金额（万元）" in text
    assert "3 张* 花园村4组 510121********323X 3.5" in text
    # dilapidated.subsidy-list: posting_min 7 calendar days, from the publish date.
    assert "公示期：自2026年11月26日至2026年12月2日（7天）。" in text
    assert "咨询电话：028-84931234 监督举报电话：028-84930000" in text
    assert "三溪镇人民政府 2026年11月26日" in text and "（盖章）" in text


def test_a_long_list_spans_pages_and_repeats_its_header(tmp_path):
    receipt = deliver(make_channel(tmp_path), make_item(body=name_list(200)))
    pdf = the_pdf(receipt)
    pages = len(PdfReader(pdf).pages)
    assert pages >= 4
    for page in (2, pages):
        lines = [squeeze(line) for line in pdf_text(pdf, page).splitlines() if line.strip()]
        assert lines[0] == "序号 户主 村（社区） 身份证号 补助金额（万元）", page
    text = squeeze(pdf_text(pdf))
    for n in (1, 57, 143, 200):
        assert f" {n} 张* 花园村{n % 7 + 1}组 510121********{n % 10}23X 3.5 " in text


def test_every_page_has_the_footer_with_the_edition_hash_and_page_count(tmp_path):
    channel = make_channel(tmp_path)
    first = deliver(channel, make_item(body=name_list(120)))
    second = deliver(channel, make_item(edition=2, body=name_list(121)), first)
    pdf = the_pdf(second)
    pages = len(PdfReader(pdf).pages)
    for page in range(1, pages + 1):
        text = squeeze(pdf_text(pdf, page))
        assert "编号 nb-2026-0403 第2版 校验码 b41d0e95 三溪镇花园村" in text
        assert f"第{page}页 共{pages}页" in text
        assert "3f9a2c7e" not in text


def decoded_qr(pdf: Path, page: int) -> list[str]:
    png = subprocess.run(
        ["pdftoppm", "-r", "150", "-png", "-f", str(page), "-l", str(page), str(pdf)],
        capture_output=True,
        check=True,
    ).stdout
    return [code.text for code in zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))]


def test_the_qr_code_opens_the_portal_page_of_this_edition(tmp_path):
    receipt = deliver(make_channel(tmp_path), make_item())
    assert decoded_qr(the_pdf(receipt), 1) == [
        "https://www.jintang.gov.cn/zwgk/items/nb-2026-0403/?h=3f9a2c7e"
    ]
    text = squeeze(pdf_text(the_pdf(receipt)))
    assert "扫码核对网上版本" in text


def test_without_a_portal_address_no_qr_code_is_printed(tmp_path):
    channel = make_channel(tmp_path, portal_url=None)
    pdf = the_pdf(deliver(channel, make_item()))
    assert decoded_qr(pdf, 1) == []
    assert "扫码核对" not in pdf_text(pdf)


@pytest.mark.parametrize(
    ("page_size", "orientation", "points"),
    [
        ("A4", "portrait", (595, 842)),
        ("A4", "landscape", (842, 595)),
        ("A3", "portrait", (842, 1191)),
        ("A3", "landscape", (1191, 842)),
    ],
)
def test_page_size_and_orientation(tmp_path, page_size, orientation, points):
    channel = make_channel(tmp_path, page_size=page_size, orientation=orientation)
    pdf = the_pdf(deliver(channel, make_item()))
    box = PdfReader(pdf).pages[0].mediabox
    assert (round(float(box.width)), round(float(box.height))) == points
    assert "三溪镇2026年农村危房改造补助对象公示" in pdf_text(pdf)


def test_one_pdf_per_area(tmp_path):
    receipt = deliver(make_channel(tmp_path), make_item(area="镇A村、镇B村"))
    assert list(receipt.data["areas"]) == ["镇A村", "镇B村"]
    for area in ("镇A村", "镇B村"):
        pdf = the_pdf(receipt, area)
        assert pdf.name == f"{area}.pdf" and pdf.parent == Path(receipt.artifact)
        assert squeeze(pdf_text(pdf)).endswith(f"{area} 第1页 共1页")


def test_the_same_edition_gives_the_same_bytes(tmp_path):
    first = the_pdf(deliver(make_channel(tmp_path / "a"), make_item())).read_bytes()
    later = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)  # the same day in Beijing
    again = the_pdf(deliver(make_channel(tmp_path / "b", later), make_item())).read_bytes()
    assert first == again


def test_html_tables_with_merged_header_cells_repeat_both_header_rows(tmp_path):
    rows = "".join(f"<tr><td>{n}</td><td>李*</td><td>1.5</td></tr>" for n in range(1, 120))
    body = (
        '名单如下：\n\n<table><tr><th rowspan="2">序号</th><th colspan="2">补助对象</th></tr>'
        f"<tr><th>户主</th><th>金额（万元）</th></tr>{rows}</table>\n"
    )
    pdf = the_pdf(deliver(make_channel(tmp_path), make_item(body=body)))
    page2 = [squeeze(line) for line in pdf_text(pdf, 2).splitlines() if line.strip()]
    # 序号 spans both header rows, centred between them.
    assert page2[:3] == ["补助对象", "序号", "户主 金额（万元）"]
    assert page2[3].split() == [str(int(page2[3].split()[0])), "李*", "1.5"]


def test_body_markup_lists_quotes_and_links_are_printed(tmp_path):
    body = (
        "## 一、补助标准\n\n- D级危房每户**3.5万元**\n- C级危房每户1.5万元\n\n"
        "> 以上标准以县政府文件为准。\n\n详见[县政府网站](https://www.jintang.gov.cn/zwgk/)。\n"
    )
    text = squeeze(pdf_text(the_pdf(deliver(make_channel(tmp_path), make_item(body=body)))))
    assert "一、补助标准" in text
    assert "• D级危房每户3.5万元" in text
    assert "以上标准以县政府文件为准。" in text
    # Paper cannot follow a link: its address is printed.
    assert "详见县政府网站（https://www.jintang.gov.cn/zwgk/）。" in text


def test_a_configured_font_is_embedded(tmp_path):
    font = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
    if not font.is_file():
        pytest.skip("no DejaVu font on this machine")
    pdf = the_pdf(deliver(make_channel(tmp_path, font_path=font), make_item(title="Notice 2026")))
    fonts = subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True).stdout
    assert "DejaVuSans" in fonts and " yes " in fonts


def test_config_refuses_a_missing_font_and_a_bad_portal_address(tmp_path):
    with pytest.raises(ValidationError, match="not a file"):
        NoticeBoardChannel.Config(font_path=tmp_path / "none.ttf")
    with pytest.raises(ValidationError, match="http"):
        NoticeBoardChannel.Config(portal_url="www.jintang.gov.cn")
    with pytest.raises(ValidationError):
        NoticeBoardChannel.Config(page_size="B5")


def test_attachments_are_never_read(tmp_path):
    # The channel prints the prepared (masked) item; an original file is not its business.
    from gongkai.item import Attachment

    missing = Attachment(title="原始名单", path=tmp_path / "gone.xlsx", sha256="a" * 64)
    receipt = deliver(make_channel(tmp_path), make_item(attachments=(missing,)))
    assert the_pdf(receipt).is_file()


def test_withdraw_writes_take_down_instructions(tmp_path):
    channel = make_channel(tmp_path)
    item = make_item(area="镇A村、镇B村")
    posted = deliver(channel, item)
    receipt = channel.withdraw(item, posted, "名单有误")
    assert receipt.status == "awaiting-confirmation"
    assert receipt.data["action"] == "take-down"
    assert list(receipt.data["areas"]) == ["镇A村", "镇B村"]
    sheet = Path(receipt.data["instructions"]).read_text("utf-8")
    assert "请撤下" in sheet and "镇A村：镇A村.pdf" in sheet and "镇B村：镇B村.pdf" in sheet


def test_a_new_edition_asks_to_replace_the_old_notice(tmp_path):
    channel = make_channel(tmp_path)
    first = deliver(channel, make_item())
    second = deliver(channel, make_item(edition=2), first)
    assert (second.data["action"], second.data["replaces_edition"]) == ("replace", 1)
    sheet = Path(second.data["instructions"]).read_text("utf-8")
    assert "撤下第1版（校验码 3f9a2c7e），张贴第2版" in sheet


def test_the_daily_batch_holds_every_notice_to_post_today(tmp_path):
    channel = make_channel(tmp_path, batch=True)
    one = deliver(channel, make_item(area="镇A村、镇B村"))
    other = make_item(id="nb-2026-0404", title="竹篙镇低保初审对象公示", area="竹篙镇")
    two = deliver(channel, other)
    batch = Path(two.data["batch"])
    assert batch == tmp_path / "notice_board" / "batch" / "2026-11-26.pdf"
    assert one.data["batch"] == two.data["batch"]
    assert len(PdfReader(batch).pages) == 3
    assert "竹篙镇低保初审对象公示" in pdf_text(batch)
    channel.withdraw(other, two, "")
    assert len(PdfReader(batch).pages) == 2
    assert "竹篙镇低保初审对象公示" not in pdf_text(batch)


def test_render_shows_the_notice_as_text_without_writing(tmp_path):
    rendition = make_channel(tmp_path).render(make_item())
    assert "三溪镇2026年农村危房改造补助对象公示" in rendition.body
    assert (
        "二维码：https://www.jintang.gov.cn/zwgk/items/nb-2026-0403/?h=3f9a2c7e" in rendition.body
    )
    assert not (tmp_path / "notice_board").exists()


def test_publishing_the_examples_leaves_notices_awaiting_confirmation(tmp_path):
    config = write_config(
        tmp_path,
        f'[channels.notice_board]\nportal_url = "{PORTAL}"\ncomplaint_phone = "12345"\n',
    )
    result = run("publish", str(EXAMPLES), "--json", config=config)
    assert result.returncode == 0, result.stderr
    boards = [o for o in as_json(result)["outcomes"] if o["channel"] == "notice_board"]
    assert boards and {o["status"] for o in boards} == {"awaiting-confirmation"}
    status = run("status", "--json", config=config)
    rows = [r for r in as_json(status) if r["channel"] == "notice_board"]
    assert {r["state"] for r in rows} == {"awaiting-confirmation"}
    assert {r["item_id"] for r in rows} == {o["item_id"] for o in boards}
    # The subsidy list went out masked: the wall shows what the web shows.
    folder = tmp_path / "state" / "notice_board" / "jt-2026-dilapidated-0403" / "e1"
    text = squeeze(pdf_text(folder / "五凤镇.pdf"))
    assert "五凤镇2026年度农村危房改造补助农户名单公示" in text
    assert "510121194801251981" not in text and "13981234567" not in text
    assert "510121********1981" in text
    assert (folder / "instructions.txt").is_file()
