"""Property tests of masking (issue 8): generated personal numbers, written the ways
people write them, in every text field of an item, never survive; lookalikes do."""

from __future__ import annotations

import re
from datetime import date

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gongkai.config import PrivacySettings
from gongkai.item import Item
from gongkai.plugins.privacy import ID_CHECK, ID_WEIGHTS, gongkai_prepare_item, mask_text

POLICY = PrivacySettings()
FULL = str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")


@st.composite
def id_numbers(draw):
    region = draw(st.sampled_from(["510121", "110105", "440524", "510104"]))
    born = draw(st.dates(date(1930, 1, 1), date(2020, 12, 31)))
    serial = draw(st.integers(0, 999))
    body = f"{region}{born:%Y%m%d}{serial:03d}"
    total = sum(int(d) * w for d, w in zip(body, ID_WEIGHTS, strict=True))
    return body + ID_CHECK[total % 11]


@st.composite
def legacy_ids(draw):
    region = draw(st.sampled_from(["510121", "110105", "440524"]))
    born = draw(st.dates(date(1900, 1, 1), date(1999, 12, 31)))
    return f"{region}{born:%y%m%d}{draw(st.integers(0, 999)):03d}"


@st.composite
def mobiles(draw):
    return f"1{draw(st.sampled_from('3456789'))}{draw(st.integers(0, 10**9 - 1)):09d}"


@st.composite
def cards(draw):
    length = draw(st.integers(16, 19))
    body = "62" + "".join(str(draw(st.integers(0, 9))) for _ in range(length - 3))
    digits = [int(d) for d in reversed(body)]
    # The check digit that makes the Luhn sum a multiple of 10.
    total = sum(sum(divmod(2 * d, 10)) for d in digits[0::2]) + sum(digits[1::2])
    return body + str((10 - total % 10) % 10)


def written(number: str, style: str) -> str:
    """The number as a person or a form might write it."""
    if style == "full-width":
        return number.translate(FULL)
    if style == "spaced" and len(number) == 11:
        return f"{number[:3]} {number[3:7]} {number[7:]}"
    if style == "hyphens" and len(number) == 11:
        return f"{number[:3]}-{number[3:7]}-{number[7:]}"
    return number


chinese = st.text(alphabet="金堂县赵镇街道十里社区户主补助资金元公示名单，。：", max_size=12)
numbers = st.one_of(id_numbers(), legacy_ids(), mobiles(), cards())
styles = st.sampled_from(["plain", "full-width", "spaced", "hyphens"])


def digits_of(text: str) -> str:
    return re.sub(
        r"[\s\-]", "", text.translate(str.maketrans("０１２３４５６７８９Ｘ", "0123456789X"))
    )


@given(before=chinese, number=numbers, style=styles, after=chinese)
def test_no_generated_number_survives_in_text(before, number, style, after):
    # A number right before 元 is an amount (最高限价13900000000元), left alone on purpose.
    after = after.lstrip("元")
    masked = mask_text(f"{before}{written(number, style)}{after}", POLICY)
    assert number not in digits_of(masked)


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=60)
@given(
    number=numbers,
    style=styles,
    field=st.sampled_from(["title", "body", "contact", "area", "keywords", "publisher"]),
)
def test_no_generated_number_survives_in_any_field(number, style, field):
    text = f"联系人张三{written(number, style)}"
    data = {
        "id": "jt-prop",
        "catalog": "housing.policy",
        "title": "公共租赁住房名单公示",
        "body": "| 户主 | 证件号 |\n|---|---|\n| 张三 | 见下 |\n",
        "publisher": "金堂县房产管理局",
        "formed_on": date(2026, 11, 20),
    }
    data[field] = [text] if field == "keywords" else (data.get(field, "") + text)

    class Settings:
        privacy = POLICY

    prepared = gongkai_prepare_item(Item(**data), Settings())
    assert prepared is not None
    assert number not in digits_of(prepared.model_dump_json())


@given(
    text=st.sampled_from(
        [
            "金府发〔2026〕12号",
            "2026年11月20日至2026年11月27日",
            "补助资金合计360000.00元",
            "订单号440524188001010015",  # 18 digits, wrong check character
            "面积128.5平方米，共12户",
            "咨询电话028-84936677",
            "合同编号2026112012345678",  # 16 digits, Luhn fails
            "金额13800138000.50元",
        ]
    )
)
def test_lookalikes_are_left_alone(text):
    assert mask_text(text, POLICY) == text


# --- pre-publication checks -------------------------------------------------------------


def _problems(make_publisher, item):
    """The problems intake finds in ``item``, with an index number given."""
    publisher = make_publisher()
    return publisher.intake().prepare(item, "jt-check.md", {"jt-check": "X/2026-00001"})[1]


def test_markup_in_a_one_line_field_is_refused(make_publisher, item_factory):
    problems = _problems(
        make_publisher,
        item_factory(id="jt-check", title="公告<script>alert(1)</script>", area="赵镇<b>街道</b>"),
    )
    assert {p.field for p in problems} == {"title", "area"}
    assert all("plain text" in p.problem for p in problems)


def test_publish_at_before_formed_on_is_refused(make_publisher, item_factory):
    from datetime import datetime

    from gongkai.item import CST

    item = item_factory(id="jt-check", publish_at=datetime(2026, 11, 1, 9, tzinfo=CST))
    [problem] = _problems(make_publisher, item)
    assert problem.field == "publish_at" and "before formed_on" in problem.problem


def test_a_number_a_later_plugin_adds_is_caught_by_the_guard(make_publisher, item_factory, script):
    from gongkai.plugins.hookspecs import hookimpl
    from support.fakes import recording_plugin

    class Careless:
        @hookimpl(trylast=True)  # runs after privacy has masked
        def gongkai_prepare_item(self, item, settings):
            return item.model_copy(update={"contact": "联系人手机13981234567"})

    publisher = make_publisher(plugins=[recording_plugin(script), Careless()])
    item = item_factory(id="jt-check")
    _, problems = publisher.intake().prepare(item, "jt-check.md", {"jt-check": "X/2026-00001"})
    assert [p.field for p in problems] == ["contact"]
    assert "personal data" in problems[0].problem and "after masking" in problems[0].problem


def test_a_kept_public_number_is_not_flagged(item_factory):
    from gongkai.plugins.privacy import gongkai_validate_item

    class Settings:
        privacy = PrivacySettings(keep_numbers=("13800001111",))

    item = item_factory(id="jt-check", contact="服务热线13800001111")
    assert gongkai_validate_item(item=item, source="x.md", settings=Settings()) == []


def test_an_interpretation_must_name_a_release_that_exists(make_publisher, item_factory):
    publisher = make_publisher()
    lost = item_factory(id="jt-jd-1", kind="interpretation", related=("jt-no-such",))
    result = publisher.publish([lost])
    [problem] = result.problems
    assert problem.field == "related" and "jt-no-such" in problem.problem
    # In the same batch, or already in the ledger: both are fine.
    release = item_factory(id="jt-release")
    together = item_factory(id="jt-jd-2", kind="interpretation", related=("jt-release",))
    assert publisher.publish([together, release]).problems == []
    later = item_factory(id="jt-jd-3", kind="interpretation", related=("jt-release",))
    assert publisher.publish([later]).problems == []
    itself = item_factory(id="jt-jd-4", kind="interpretation", related=("jt-jd-4",))
    assert [p.field for p in publisher.publish([itself]).problems] == ["related"]
    # Another interpretation is not a release; a withdrawn release is gone.
    of_one = item_factory(id="jt-jd-5", kind="interpretation", related=("jt-jd-3",))
    [problem] = publisher.publish([of_one]).problems
    assert "is a 解读, not a release" in problem.problem
    publisher.withdraw("jt-release", "文件已废止")
    of_gone = item_factory(id="jt-jd-6", kind="response", related=("jt-release",))
    [problem] = publisher.publish([of_gone]).problems
    assert problem.field == "related" and "was withdrawn" in problem.problem
    assert "文件已废止" in problem.problem


def test_a_streamed_batch_knows_releases_in_later_chunks(make_publisher, tmp_path, monkeypatch):
    import gongkai.batch

    monkeypatch.setattr(gongkai.batch, "CHUNK", 1)
    items = tmp_path / "items"
    items.mkdir()
    head = (
        '+++\ncatalog = "housing.policy"\npublisher = "金堂县房产管理局"\nformed_on = 2026-11-20\n'
    )
    (items / "a-jd.md").write_text(
        head + 'title = "政策解读"\nkind = "interpretation"\nrelated = ["z-release"]\n+++\n'
        "申请条件、申请材料和办理流程如下。\n",
        encoding="utf-8",
    )
    (items / "z-release.md").write_text(
        head + 'title = "公共租赁住房申请指南"\n+++\n申请条件、申请材料和办理流程如下。\n',
        encoding="utf-8",
    )
    result = make_publisher().publish_paths([items])
    assert result.problems == [] and sorted(result.editions) == ["a-jd", "z-release"]


# --- tables and attachments -------------------------------------------------------------

_HEADERS = ["序号", "户主", "身份证号码", "联系电话", "银行卡号", "家庭住址", "备注"]


@st.composite
def rosters(draw):
    """A name list: rows of generated numbers written every way, under a header."""
    rows = []
    for n in range(draw(st.integers(1, 6))):
        cells = [str(n + 1), draw(st.sampled_from(["张三", "欧阳娜娜", "李秀英"]))]
        cells += [written(draw(numbers), draw(styles)) for _ in range(3)]
        cells += [draw(st.sampled_from(["五凤镇白果村3组", "竹篙镇土桥村5组12号"]))]
        cells += [draw(chinese) + written(draw(numbers), draw(styles))]
        rows.append(cells)
    return rows


def _survivors(rows, text: str) -> list[str]:
    flat = digits_of(text)
    return [
        digits_of(cell)
        for row in rows
        for cell in row[2:5]
        if len(digits_of(cell)) >= 11 and digits_of(cell) in flat
    ]


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=40, deadline=None)
@given(rows=rosters())
def test_no_generated_number_survives_in_a_markdown_table(rows):
    from gongkai.plugins.masking import Columns, mask_markdown

    table = "\n".join(
        ["| " + " | ".join(_HEADERS) + " |", "|" + "---|" * len(_HEADERS)]
        + ["| " + " | ".join(r) + " |" for r in rows]
    )
    masked = mask_markdown(table, POLICY, Columns.of(POLICY))
    assert not _survivors(rows, masked)
    assert "张三" not in masked and "3组" not in masked


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=25, deadline=None)
@given(rows=rosters(), kind=st.sampled_from([".csv", ".xlsx"]))
def test_no_generated_number_survives_in_a_csv_or_xlsx_attachment(rows, kind, tmp_path_factory):
    import csv
    import io

    import openpyxl

    from gongkai.plugins.masking import Columns
    from gongkai.plugins.sheets import masked_bytes, rows_of

    folder = tmp_path_factory.mktemp("roster")
    path = folder / f"名单{kind}"
    table = [["2026年低保对象花名册"], _HEADERS, *rows]
    if kind == ".csv":
        out = io.StringIO(newline="")
        csv.writer(out).writerows(table)
        data = out.getvalue().encode("utf-8")
    else:
        book = openpyxl.Workbook()
        for row in table:
            # Plain 11-digit numbers stored as numbers, as Excel keeps them when typed.
            book.active.append([int(c) if c.isdigit() and len(c) == 11 else c for c in row])
        out = io.BytesIO()
        book.save(out)
        data = out.getvalue()
    masked = masked_bytes(path, data, POLICY, Columns.of(POLICY))
    assert masked is not None
    path.write_bytes(masked)
    text = "\n".join(",".join(r) for r in rows_of(path))
    assert not _survivors(rows, text)
    assert "欧阳娜娜" not in text and "12号" not in text
