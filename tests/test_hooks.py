"""The validation hook: a plugin's problems stop an item, and the rest of the batch goes on."""

from __future__ import annotations

from gongkai import ItemProblem, hookimpl
from support.fakes import recording_plugin

PLACEHOLDER = "（此处填写）"


class PlaceholderCheck:
    """Refuses drafts that still carry a template's placeholder; remembers its calls."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str | None, str]] = []

    @hookimpl
    def gongkai_validate_item(self, item, entry, source):
        self.seen.append((item.id, entry.key if entry else None, source))
        if PLACEHOLDER in item.body:
            return [ItemProblem(source, "body", "placeholder text left in", "fill it in", item.id)]
        return []


def test_a_validation_problem_stops_the_item_and_the_rest_go_on(
    make_publisher, item_factory, script
):
    check = PlaceholderCheck()
    publisher = make_publisher(plugins=[recording_plugin(script), check])
    good = item_factory(id="jt-2026-housing-0401")
    draft = item_factory(id="jt-2026-housing-0402", body=good.body + f"联系人：{PLACEHOLDER}")

    result = publisher.publish([good, draft])

    [problem] = result.problems
    assert (problem.item_id, problem.field, problem.source) == (draft.id, "body", "<python>")
    assert [sent[0] for sent in script.sent] == [good.id]
    assert result.outcome(good.id, "recorder").status == "delivered"
    assert result.outcome(draft.id, "recorder") is None
    assert result.exit_code == 2
    # The hook sees the catalogue entry, so it can check per catalogue key.
    assert (draft.id, "housing.policy", "<python>") in check.seen


def test_gongkai_validate_reports_the_hooks_problem_by_file(make_publisher, tmp_path, script):
    path = tmp_path / "jt-2026-housing-0403.md"
    path.write_text(
        '+++\ncatalog = "housing.policy"\ntitle = "金堂县公共租赁住房申请指南"\n'
        'publisher = "金堂县房产管理局"\nformed_on = 2026-11-20\n+++\n'
        f"申请条件：在本县有稳定工作。申请材料：{PLACEHOLDER}。办理流程：个人申请后审核。\n",
        encoding="utf-8",
    )
    publisher = make_publisher(plugins=[recording_plugin(script), PlaceholderCheck()])

    good, problems = publisher.validate([path])

    assert good == []
    [problem] = problems
    assert problem.source == str(path) and problem.item_id == "jt-2026-housing-0403"
    assert script.sent == []


class Normalise:
    """Replaces full-width spaces in the body: what every channel carries afterwards."""

    @hookimpl
    def gongkai_prepare_item(self, item, settings):
        if "\u3000" in item.body:
            return item.model_copy(update={"body": item.body.replace("\u3000", " ")})
        return None


class Broken:
    @hookimpl
    def gongkai_prepare_item(self, item, settings):
        if item.id.endswith("-bad"):
            raise RuntimeError("dictionary file missing")
        return None


def test_the_prepare_hook_shapes_what_every_channel_carries(make_publisher, item_factory, script):
    seen = []
    script.on_deliver = lambda channel, item: seen.append(item.body)
    publisher = make_publisher(plugins=[recording_plugin(script), Normalise(), Broken()])
    spaced = item_factory(id="jt-2026-housing-0501", body=item_factory().body + "\u3000咨询电话。")
    result = publisher.publish([spaced, item_factory(id="jt-2026-housing-0502-bad")])
    # The prepared copy is what is hashed and sent.
    assert seen == [item_factory().body + " 咨询电话。"]
    assert result.outcome("jt-2026-housing-0501", "recorder").status == "delivered"
    # A plugin that fails stops that item only, naming the plugin.
    [problem] = result.problems
    assert problem.item_id == "jt-2026-housing-0502-bad"
    assert (
        "failed to prepare it" in problem.problem and "dictionary file missing" in problem.problem
    )
    # Preparing is deterministic: the same file is the same edition next time.
    again = publisher.publish(spaced)
    assert again.outcome("jt-2026-housing-0501", "recorder").status == "unchanged"
