"""XLSX copies: every text openpyxl keeps is masked, what cannot be masked is refused
with what to do, and the same workbook gives the same bytes in every run."""

from __future__ import annotations

import datetime
import hashlib
import io
import re
import zipfile

import openpyxl
import pytest
from openpyxl.comments import Comment
from openpyxl.workbook.defined_name import DefinedName

from gongkai.config import PrivacySettings
from gongkai.item import Attachment
from gongkai.plugins.masking import Columns
from gongkai.plugins.sheets import UnreadableAttachment, masked_bytes, prepared_copy

ID = "510121194801251981"  # valid check digit
PHONE = "13800138000"
NAME = "周大勇"
RAW = (ID, PHONE, NAME)


def _book(title="名单"):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = title
    sheet.append(["序号", "户主姓名", "联系电话", "备注"])
    sheet.append([1, "钱永福", PHONE, "无"])
    return book, sheet


def _bytes(book) -> bytes:
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _mask(data: bytes, names=()) -> bytes | None:
    policy = PrivacySettings()
    return masked_bytes(_path(), data, policy, Columns.of(policy), names)


def _path():
    from pathlib import Path

    return Path("名单.xlsx")


def _parts(data: bytes) -> str:
    """Every XML part of a workbook as one text (media left out)."""
    with zipfile.ZipFile(io.BytesIO(data)) as book:
        return "\n".join(
            book.read(n).decode("utf-8") for n in book.namelist() if n.endswith((".xml", ".rels"))
        )


def _assert_no_raw(data: bytes) -> None:
    text = _parts(data)
    for raw in RAW:
        assert raw not in text


def _refusal(data: bytes, names=()) -> str:
    with pytest.raises(UnreadableAttachment) as refused:
        _mask(data, names)
    message = str(refused.value)
    assert not re.search(r"\d{5}", message)  # never the raw digits
    return message


# --- defect 5: texts besides cell values ------------------------------------------------


@pytest.mark.parametrize(
    "formula", ['="5101211948"&"01251981"', '=CONCATENATE("138","00138000")', "=13800138000+0"]
)
def test_a_formula_building_a_number_is_refused_by_cell(formula):
    book, sheet = _book()
    sheet["D3"] = formula
    message = _refusal(_bytes(book))
    assert message.startswith("cell D3 of sheet 名单 holds a formula that builds text (")
    assert "paste the values instead (选择性粘贴 → 数值)" in message


def test_formulas_without_personal_numbers_stay_and_follow_renamed_sheets():
    book, sheet = _book()
    sheet["E2"] = "=SUM(A2:A2)"
    sheet["F2"] = f'=IF(D2="无","{NAME}",D2)'
    other = book.create_sheet(PHONE)
    other["A1"] = f"='{PHONE}'!B1&名单!A1"
    masked = openpyxl.load_workbook(io.BytesIO(_mask(_bytes(book), [NAME])))
    assert masked["名单"]["E2"].value == "=SUM(A2:A2)"
    assert masked["名单"]["F2"].value == '=IF(D2="无","周**",D2)'
    assert masked["138＊＊＊＊8000"]["A1"].value == "='138＊＊＊＊8000'!B1&名单!A1"


def test_a_hyperlink_is_masked_in_its_target_and_display():
    book, sheet = _book()
    sheet["D4"].hyperlink = f"tel:{PHONE}"
    sheet["D5"].hyperlink = f"mailto:x@example.cn?subject={NAME}"
    sheet["D5"].hyperlink.display = f"{NAME} {PHONE}"
    data = _mask(_bytes(book), [NAME])
    _assert_no_raw(data)
    assert 'Target="tel:138****8000"' in _parts(data)


@pytest.mark.parametrize(
    "part", ["oddHeader", "oddFooter", "evenHeader", "evenFooter", "firstHeader", "firstFooter"]
)
@pytest.mark.parametrize("side", ["left", "center", "right"])
def test_headers_and_footers_are_masked(part, side):
    book, sheet = _book()
    getattr(getattr(sheet.HeaderFooter, part), side).text = f"经办人{NAME}电话 {PHONE}"
    data = _mask(_bytes(book), [NAME])
    _assert_no_raw(data)
    masked = openpyxl.load_workbook(io.BytesIO(data)).active
    assert getattr(getattr(masked.HeaderFooter, part), side).text == "经办人周**电话 138****8000"


def test_data_validation_messages_and_lists_are_masked():
    from openpyxl.worksheet.datavalidation import DataValidation

    book, sheet = _book()
    rule = DataValidation(
        type="list",
        formula1=f'"{NAME},钱永福"',
        prompt=f"联系 {PHONE}",
        error=f"错了找 {PHONE}",
        promptTitle=f"{NAME}提示",
        errorTitle=f"{NAME}提醒",
    )
    sheet.add_data_validation(rule)
    rule.add("D2:D9")
    data = _mask(_bytes(book), [NAME])
    _assert_no_raw(data)
    (masked,) = openpyxl.load_workbook(io.BytesIO(data)).active.data_validations.dataValidation
    assert masked.prompt == "联系 138****8000" and masked.promptTitle == "周**提示"


def test_a_defined_name_holding_a_number_is_refused():
    book, _ = _book()
    book.defined_names["phone"] = DefinedName("phone", attr_text=f'"{PHONE}"')
    message = _refusal(_bytes(book))
    assert message == (
        "the workbook defines a name 'phone' holding a number; delete it (公式 → 名称管理器) "
        "and attach it again"
    )


def test_a_defined_name_for_a_range_stays():
    book, _ = _book()
    book.defined_names["list"] = DefinedName("list", attr_text="名单!$A$1:$D$2")
    masked = openpyxl.load_workbook(io.BytesIO(_mask(_bytes(book))))
    assert masked.defined_names["list"].value == "名单!$A$1:$D$2"


def test_document_properties_comment_authors_and_custom_properties_are_masked():
    from openpyxl.packaging.custom import IntProperty, StringProperty

    book, sheet = _book()
    for field in ("creator", "lastModifiedBy", "subject", "description", "keywords"):
        setattr(book.properties, field, f"{NAME} {PHONE}")
    book.properties.title = f"{NAME}等低保花名册"
    book.properties.category = f"{NAME}"
    sheet["A1"].comment = Comment("核对", NAME)
    book.custom_doc_props.append(StringProperty(name="经办人", value=f"{NAME} {PHONE}"))
    book.custom_doc_props.append(IntProperty(name="电话", value=int(PHONE)))
    book.custom_doc_props.append(IntProperty(name="份数", value=3))
    data = _mask(_bytes(book), [NAME])
    _assert_no_raw(data)
    masked = openpyxl.load_workbook(io.BytesIO(data))
    assert masked.properties.title == "周**等低保花名册"
    assert masked.active["A1"].comment.author == "周**"
    props = {p.name: p.value for p in masked.custom_doc_props.props}
    assert props == {"经办人": "周** 138****8000", "份数": 3}  # the number is dropped


def test_charts_images_and_their_texts_are_dropped():
    # openpyxl keeps charts (title, cached cells) and, with Pillow, images (alt text).
    from openpyxl.chart import BarChart, Reference
    from openpyxl.drawing.image import Image
    from PIL import Image as Picture

    book, sheet = _book()
    chart = BarChart()
    chart.title = f"{NAME} {PHONE}"
    chart.add_data(Reference(sheet, min_col=1, min_row=1, max_row=2), titles_from_data=True)
    sheet.add_chart(chart, "F2")
    png = io.BytesIO()
    Picture.new("RGB", (2, 2)).save(png, "PNG")
    sheet.add_image(Image(png), "H2")
    data = _bytes(book).replace(b'descr="Picture"', f'descr="{NAME}身份证"'.encode())
    loaded = openpyxl.load_workbook(io.BytesIO(data)).active
    assert loaded._charts and loaded._images  # kept by openpyxl: dropped by masking
    masked = _mask(data, [NAME])
    _assert_no_raw(masked)
    names = zipfile.ZipFile(io.BytesIO(masked)).namelist()
    assert not [n for n in names if "chart" in n or "media" in n or "drawing" in n]


def test_a_filter_value_and_a_table_column_are_masked():
    from openpyxl.worksheet.table import Table

    book, sheet = _book()
    sheet["D1"] = f"{NAME}备注"
    sheet.add_table(Table(displayName="名册", ref="A1:D2"))
    sheet.auto_filter.ref = "A1:D2"
    sheet.auto_filter.add_filter_column(2, [PHONE])
    data = _mask(_bytes(book), [NAME])
    _assert_no_raw(data)


# --- defect 6: IDs and cards stored as numbers ------------------------------------------


@pytest.mark.parametrize(
    ("number", "digits"), [(5.10121194801252e17, 18), (6.22202123456789e18, 19)]
)
def test_a_long_number_excel_rounded_is_refused(number, digits):
    book, sheet = _book()
    sheet["D3"] = number
    assert _refusal(_bytes(book)) == (
        f"cell D3 of sheet 名单 holds a number of {digits} digits that Excel stored as a "
        "number and rounded; format the column as text (设置单元格格式 → 文本), re-enter "
        "the numbers and attach it again"
    )


def test_a_mobile_typed_as_a_number_is_still_masked():
    book, sheet = _book()
    sheet["C2"] = float(PHONE)
    sheet["A3"] = 999999999999999.0  # just below the limit: kept
    masked = openpyxl.load_workbook(io.BytesIO(_mask(_bytes(book)))).active
    assert masked["C2"].value == "138****8000" and masked["A3"].value == 999999999999999


# --- defect 7: sheet titles ---------------------------------------------------------------


def test_sheet_titles_are_masked_with_a_full_width_star_short_and_unique():
    book, _ = _book(f"钱永福{PHONE}")
    book.create_sheet(f"{NAME}家")
    book.create_sheet("周大明家")
    long_title = "竹篙镇竹篙村2026年低保对象名单联系人" + PHONE  # 31 characters
    assert len(long_title) == 31
    book.create_sheet(long_title)
    data = _mask(_bytes(book), [NAME, "周大明"])
    _assert_no_raw(data)
    titles = openpyxl.load_workbook(io.BytesIO(data)).sheetnames
    assert titles == [
        "钱永福138＊＊＊＊8000",
        "周＊＊家",
        "周＊＊家 (2)",
        long_title[:20] + "138＊＊＊＊8000",
    ]
    assert all(len(t) <= 31 and "*" not in t for t in titles)
    assert _mask(data) is None  # masking the copy again changes nothing


# --- defect 8: a workbook without a created date ------------------------------------------


def _without_dates(data: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            body = source.read(info)
            if info.filename == "docProps/core.xml":
                body = re.sub(rb"<dcterms:(created|modified)[^>]*>[^<]*</dcterms:\1>", b"", body)
            target.writestr(info, body)
    return out.getvalue()


def test_a_workbook_without_a_created_date_gives_the_same_bytes_at_any_time(monkeypatch):
    import time

    book, _ = _book()
    original = _without_dates(_bytes(book))
    assert b"dcterms:created" not in zipfile.ZipFile(io.BytesIO(original)).read("docProps/core.xml")
    first = _mask(original)

    class Later(datetime.datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime.datetime(2031, 5, 6, 7, 8, 9, tzinfo=tz)

    later = time.time() + 86400 * 400
    monkeypatch.setattr(time, "time", lambda: later)
    monkeypatch.setattr(datetime, "datetime", Later)  # what openpyxl stamps a file with
    second = _mask(original)
    assert first == second
    core = zipfile.ZipFile(io.BytesIO(first)).read("docProps/core.xml").decode()
    assert core.count("1980-01-01T00:00:00Z") == 2  # created and modified


# --- what stays as it was -----------------------------------------------------------------


def test_unrelated_content_stays():
    from openpyxl.styles import Font

    book, sheet = _book()
    sheet["E1"], sheet["E2"] = "金额", 1234.5
    sheet["F2"] = datetime.date(2026, 11, 20)
    sheet["G2"] = "=SUM(E2:E2)"
    sheet["A1"].font = Font(bold=True)
    sheet.column_dimensions["B"].width = 20
    sheet.merge_cells("H1:I1")
    sheet.oddFooter.center.text = "第 &P 页"
    sheet["D2"].hyperlink = "https://www.jintang.gov.cn/"
    masked = openpyxl.load_workbook(io.BytesIO(_mask(_bytes(book)))).active
    assert masked["C2"].value == "138****8000" and masked["B2"].value == "钱**"
    assert masked["E2"].value == 1234.5 and masked["G2"].value == "=SUM(E2:E2)"
    assert masked["F2"].value == datetime.datetime(2026, 11, 20)
    assert masked["A1"].font.bold and masked.column_dimensions["B"].width == 20
    assert "H1:I1" in {str(r) for r in masked.merged_cells.ranges}
    assert masked.oddFooter.center.text == "第 &P 页"
    assert masked["D2"].hyperlink.target == "https://www.jintang.gov.cn/"


def test_a_normal_workbook_gives_the_same_bytes_every_run(monkeypatch):
    import time

    book, _ = _book()
    original = _bytes(book)
    first = _mask(original)
    later = time.time() + 7200
    monkeypatch.setattr(time, "time", lambda: later)
    assert _mask(original) == first


def test_a_clean_workbook_is_not_copied_and_prepared_copy_points_at_the_masked_one(tmp_path):
    clean = openpyxl.Workbook()
    clean.active.append(["序号", "村"])
    assert _mask(_bytes(clean)) is None

    book, _ = _book()
    source = tmp_path / "名单.xlsx"
    source.write_bytes(_bytes(book))
    attachment = Attachment(
        title="名单", path=source, sha256=hashlib.sha256(source.read_bytes()).hexdigest()
    )
    policy = PrivacySettings()
    store = tmp_path / "prepared"
    copy = prepared_copy(attachment, policy, Columns.of(policy), store, [NAME])
    assert copy.path != source and store in copy.path.parents and copy.filename == "名单.xlsx"
    assert hashlib.sha256(copy.path.read_bytes()).hexdigest() == copy.sha256
    _assert_no_raw(copy.path.read_bytes())
    assert prepared_copy(attachment, policy, Columns.of(policy), store, [NAME]) == copy
