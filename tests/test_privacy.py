"""Masking personal numbers: one policy, check digits, no false positives."""

from __future__ import annotations

import pytest

from gongkai.config import PrivacySettings
from gongkai.plugins.privacy import id_number_valid, mask_text


@pytest.mark.parametrize("number", ["11010519491231002X", "440524188001010014"])
def test_valid_id_numbers(number):
    assert id_number_valid(number)


def test_invalid_check_digit_is_not_an_id():
    assert not id_number_valid("440524188001010015")
    text = "订单号440524188001010015"
    assert mask_text(text, PrivacySettings()) == text


def test_masks_ids_phones_and_cards():
    text = "身份证11010519491231002X，手机13981234567，卡号6222021234567890128"
    masked = mask_text(text, PrivacySettings())
    assert masked == "身份证110105********002X，手机139****4567，卡号622202*********0128"


def test_policy_is_configurable_and_keeps_listed_numbers():
    policy = PrivacySettings(id_keep=(2, 3), keep_numbers=("13800001111",))
    masked = mask_text("11010519491231002X 13800001111 13912345678", policy)
    assert masked == "11*************02X 13800001111 139****5678"


def test_numbers_inside_longer_digit_runs_are_left_alone():
    text = "编号2026139812345678901"
    assert mask_text(text, PrivacySettings()) == text


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("id_keep", [-1, 4]),  # a negative count used to slice from the end: all 18 shown
        ("id_keep", [10, 10]),  # keeps more digits than an ID number has
        ("phone_keep", [6, 6]),
        ("bank_card_keep", [8, 8]),
    ],
)
def test_a_policy_that_would_mask_nothing_is_refused_at_load(tmp_path, key, value):
    from gongkai.config import load_settings
    from gongkai.errors import ConfigError

    path = tmp_path / "config.toml"
    path.write_text(f"[privacy]\n{key} = {value}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert info.value.file == str(path)
    assert info.value.key.startswith(f"privacy.{key}")


@pytest.mark.parametrize("keep", [(-1, 4), (10, 10), (18, 0), (0, 30)])
def test_mask_never_shows_more_digits_than_the_policy_keeps(keep):
    from gongkai.plugins.privacy import mask

    number = "11010519491231002X"
    shown = sum(c != "*" for c in mask(number, keep))
    head, tail = (max(0, n) for n in keep)
    assert shown <= min(head + tail, len(number)) and shown < len(number)


NAME_LIST = """五凤镇2026年度农村危房改造补助农户名单如下：

| 序号 | 户主 | 村（社区） | 补助金额（元） |
|---:|---|---|---:|
| 1 | 张三 | 白果村 | 12000 |
| 2 | 欧阳娜娜 | 白果村 | 8000 |

联系人：李四，电话028-84936677。"""


def test_names_in_person_columns_are_masked_by_surname():
    from gongkai.plugins.masking import Columns, mask_markdown

    policy = PrivacySettings()
    masked = mask_markdown(NAME_LIST, policy, Columns.of(policy))
    assert "| 张* |" in masked and "| 欧阳** |" in masked
    assert "白果村" in masked and "12000" in masked  # other columns untouched
    assert "联系人：李四" in masked  # prose is not a table


@pytest.mark.parametrize(
    ("name", "masked"), [("张三", "张*"), ("王小明", "王**"), ("诸葛亮", "诸葛*"), ("欧阳", "欧*")]
)
def test_mask_name_keeps_the_surname(name, masked):
    from gongkai.plugins.privacy import mask_name

    assert mask_name(name) == masked


def test_entries_that_must_show_full_names_keep_them(item_factory):
    from gongkai.plugins.privacy import gongkai_prepare_item

    item = item_factory(id="jt-names", body=NAME_LIST)

    class Masking:
        privacy = PrivacySettings()

    class FullNames:
        privacy = PrivacySettings(full_names_for=(item.catalog,))

    assert "| 张* |" in gongkai_prepare_item(item, Masking()).body
    kept = gongkai_prepare_item(item, FullNames())
    assert kept.body == item.body  # names stay whole
    assert kept.public_by_law == ("names",)  # and the edition records why


def test_landlines_are_masked_only_where_configured():
    text = "咨询电话028-84936677，监督电话0571 8765432，热线028-84930000"
    assert mask_text(text, PrivacySettings()) == text
    policy = PrivacySettings(mask_landlines=True, keep_numbers=("028-84930000",))
    masked = mask_text(text, policy)
    assert "028-8*****77" in masked and "0571 *****32" in masked
    assert "028-84930000" in masked  # a listed public number stays


def test_a_landline_policy_that_would_mask_nothing_is_refused():
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        PrivacySettings(landline_keep=(6, 6))


# --- ways of writing numbers found by the new-user trial --------------------------------

ID = "510121194801251981"


@pytest.mark.parametrize(
    ("text", "raw"),
    [
        ("电话：+8613800138000", "13800138000"),
        ("[联系我们](tel:+8613800138000)", "13800138000"),
        ("电话：008613800138000", "13800138000"),
        (f"Tel13800138000 ID{ID} No6222021234567890128", ID),
        ("Tel13800138000", "13800138000"),
        ("No6222021234567890128", "6222021234567890128"),
        ("卡号：6222 0212 3456 7890 128", "6222021234567890128"),
        ("卡号：6222-0212-3456-7890-128", "6222021234567890128"),
        ("身份证：510121 19480125 1981", ID),
        ("１３８－００１３－８０００", "13800138000"),
        ("138.0013.8000", "13800138000"),
        ("138—0013—8000", "13800138000"),
        ("138  0013  8000", "13800138000"),
    ],
)
def test_numbers_written_the_ways_people_write_them_are_masked(text, raw):
    masked = mask_text(text, PrivacySettings())
    digits = "".join(
        c
        for c in masked.translate(str.maketrans("０１２３４５６７８９", "0123456789"))
        if c.isdigit()
    )
    assert raw not in digits, masked
    assert "*" in masked


@pytest.mark.parametrize(
    "text",
    [
        "统一社会信用代码：115101210000000017",  # passes the ID check digit by chance
        "项目编号：202611281530000123",
        "营业执照注册号510121000108765",
        "最高限价13900000000元",
        "订单号 202611280001234567",  # Luhn-valid by chance, but led by a date
        "文号：金府发〔2026〕12号，金额13800138000.50元",
        "202611281530000123",  # no province 20: not an ID
    ],
)
def test_public_numbers_and_amounts_are_left_alone(text):
    assert mask_text(text, PrivacySettings()) == text


def test_the_deployments_own_org_codes_are_never_masked(item_factory):
    from gongkai.plugins.privacy import gongkai_prepare_item

    # An all-digit code that passes every ID check (the odds are small, not zero).
    code = "11010519491231002X"

    class Settings:
        privacy = PrivacySettings()
        org_code = None
        org_codes = {"金堂县教育局": code}

    item = item_factory(body=f"本单位代码{code}，申请人身份证{ID}。")
    prepared = gongkai_prepare_item(item, Settings())
    assert code in prepared.body and ID not in prepared.body


def test_addresses_in_a_street_keep_the_street():
    from gongkai.plugins.masking import cut_address

    assert cut_address("赵镇街道三星村1组8号", "township") == "赵镇街道"
    assert cut_address("金堂县赵镇街道十里社区3组", "village") == "金堂县赵镇街道十里社区"
    assert cut_address("五凤镇金箱村3组", "township") == "五凤镇"


# --- tables however written, markup that splits numbers, declarations ----------------------


@pytest.mark.parametrize(
    "body",
    [
        "户主 | 身份证号\n---|---\n周大勇 | 510121194801251981\n\n周大勇户因病致贫。",
        "| 序号 | **户主** | 身份证号 |\n|---|---|---|\n| 1 | 周大勇 | 510121194801251981 |",
        "> | 序号 | 户主 |\n> |---|---|\n> | 1 | 周大勇 |",
        "| 序号 | 户主<br>姓名 | 身份证号 |\n|---|---|---|\n| 1 | 周大勇 | x |",
        "| 户主 | 人数 |\n|---|---|\n| 周　大勇 | 3 |\n\n周大勇户因病致贫。",
    ],
)
def test_name_columns_are_found_however_the_table_is_written(body):
    from gongkai.plugins.masking import Columns, mask_markdown

    policy = PrivacySettings()
    masked = mask_markdown(body, policy, Columns.of(policy))
    assert "周大勇" not in masked and "大勇" not in masked
    assert ID not in masked


def _problems(make_publisher, item_factory, **fields):
    publisher = make_publisher()
    return publisher.publish(item_factory(**fields)).problems


@pytest.mark.parametrize(
    "line",
    [
        "电话：138&#48;0138000",
        "身份证：5101<b>21</b>194801251981",
        "电话：138<i></i>00138000",
        "身份证：510121194801\n251981",
        "身份证：5101**21**194801251981",
    ],
)
def test_a_number_split_by_markup_is_refused(make_publisher, item_factory, line):
    body = "申请条件：本县户籍。申请材料：身份证明。办理流程：审核。\n\n" + line
    problems = _problems(make_publisher, item_factory, body=body)
    assert [p.field for p in problems] == ["body"], problems
    assert "split by markup" in problems[0].problem
    assert "0138000" not in str(problems[0]) and "194801251981" not in str(problems[0])


def test_a_name_list_as_an_html_table_is_refused(make_publisher, item_factory):
    body = (
        "申请条件：本县户籍。申请材料：身份证明。办理流程：审核。\n\n<table><tr><th>户主</th>"
        "<th>人数</th></tr><tr><td>周大勇</td><td>3</td></tr></table>"
    )
    problems = _problems(make_publisher, item_factory, body=body)
    assert any("HTML table has a '户主' column" in p.problem for p in problems), problems


@pytest.mark.parametrize(
    ("declared", "ok"),
    [("names", True), ("联系电话", True), ("contact", True), ("body", False), ("姓名x", False)],
)
def test_public_by_law_names_a_column_or_a_declarable_field(
    make_publisher, item_factory, declared, ok
):
    body = (
        "申请条件：本县户籍。申请材料：身份证明。办理流程：审核。\n\n"
        "| 姓名 | 联系电话 |\n|---|---|\n| 周大勇 | 13800138000 |"
    )
    problems = _problems(make_publisher, item_factory, body=body, public_by_law=(declared,))
    assert (problems == []) is ok, problems
    if not ok:
        assert problems[0].field == "public_by_law" and declared in problems[0].problem


def test_explain_names_whole_names_and_landlines(item_factory):
    from gongkai.explain import item_changes, redact
    from gongkai.plugins.privacy import gongkai_prepare_item

    class Settings:
        privacy = PrivacySettings(mask_landlines=True)

    body = "| 序号 | 申请人 |\n|---|---|\n| 1 | 欧阳娜娜 |\n| 2 | 王　芳 |\n\n欧阳娜娜、王芳户因病致贫。"
    item = item_factory(body=body, contact="028-84932145", public_by_law=("contact",))
    item = item.model_copy(update={"public_by_law": ()})
    prepared = gongkai_prepare_item(item, Settings())
    changes = [str(c) for c in item_changes(item, prepared)]
    assert "body (line 3, 申请人, row 1): a name of 4 characters → 欧阳**" in changes
    assert "body (line 4, 申请人, row 2): a name of 2 characters → 王*" in changes
    assert "body (line 6): a name of 4 characters → 欧阳**" in changes
    assert "contact: a landline → 028-8*****45" in changes
    assert redact("zhou-510121194801251981.csv") == "zhou-******************.csv"
