"""Scale benchmark (issue 7: a daily run costs what changed, memory stays bounded).

Generates N item files (Markdown with TOML front matter: county notices of every
catalogue entry, of varied length, some with a CSV attachment beside them) and a
config.toml with five instant channels (``bench/nullchannel.py``, every item to all
five). Then, at each size, it runs the real CLI in a fresh process per phase and
measures the wall time and that process's peak RSS (``os.wait4`` in a small launcher
process, so the bench's own memory is not counted):

1. first publish     ``gongkai publish ITEMS --json``        items/s
2. no-op rerun       the same, nothing changed               files/s
3. one change        one item's body edited, rerun           (checks: only it, new edition)
4. empty publish     ``gongkai publish --json`` (no paths: only ledger work)
5. status            ``gongkai status ITEM --json``

It prints a table with the targets of issue 7 beside each figure, the per-item cost
ratio of the first publish between sizes, and the ledger's delivery rows. ``--archive``
delivers to the built-in archive channel instead of the null channels (archive items/s).

Run (Unix, for os.wait4):

    python bench/scale.py                        # 1k, 10k, 100k
    python bench/scale.py --sizes 1000,10000     # or 1k,10k
    python bench/scale.py --big                  # adds 300k
    python bench/scale.py --archive --sizes 10k
    python bench/scale.py --keep /tmp/scale      # keep items and ledgers for the next run

With ``--keep DIR`` the generated items (and each ledger) are reused by later
invocations: a kept ledger skips phase 1 unless ``--fresh-ledger`` is given. No test
asserts these timings; they are for people.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))  # nullchannel, for the channel names

import nullchannel  # noqa: E402  (needs the path above)

ORG_CODE = "11510121009087532X"
#: The education bureau has its own code, as in the shipped config.toml.
EDUCATION = ("金堂县教育局", "115101210090875405")
BEIJING = ZoneInfo("Asia/Shanghai")
#: Bump when the generated items change shape, so a kept folder is made again.
GENERATOR_VERSION = 1
#: Item files per sub-folder: an office files its notices by batch, not in one folder.
PER_FOLDER = 1000
ATTACHMENT_SHARE = 0.1
#: gongkai.sources.RACY_NS, with a margin (see settle()).
RACY_SECONDS = 2.5

# The targets of issue 7.
FIRST_ITEMS_PER_S = {"null": 5000, "archive": 2000}
RERUN_SECONDS_PER_100K = 3.0
QUICK_SECONDS = 0.5
PEAK_RSS_MB = 300
RATIO_MAX = 1.2


# --- the CLI ------------------------------------------------------------------------------


def gongkai_command() -> list[str]:
    """The installed ``gongkai`` script of this interpreter, run directly: a pyenv shim
    or a wrapper shell would add its own start-up and process to the figures."""
    script = Path(sys.executable).parent / "gongkai"
    if script.is_file():
        return [str(script)]
    found = shutil.which("gongkai")
    return [found] if found else [sys.executable, "-c", "from gongkai.cli import main; main()"]


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    # bench/ on the path so that [plugins] load = ["nullchannel"] finds the module.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(BENCH_DIR), env.get("PYTHONPATH")) if p)
    return env


@dataclass
class Child:
    seconds: float
    rss_mb: float
    exit_code: int
    stdout: Path
    stderr: Path


#: Runs the measured commands on behalf of the bench (one JSON job per line on stdin,
#: one result per line on stdout). Why a separate process: Linux counts the peak RSS of
#: the process that forked a child (and, with vfork, its peak so far) into the child's
#: ru_maxrss, so children forked by the bench after it parsed a 160 MB --json report
#: would all show that much. The launcher stays small for the whole run.
LAUNCHER = """
import json, os, subprocess, sys, time
for line in sys.stdin:
    job = json.loads(line)
    with open(job["stdout"], "wb") as out, open(job["stderr"], "wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            job["argv"], stdout=out, stderr=err, env=job["env"], cwd=job["cwd"]
        )
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    result = {"seconds": seconds, "exit": proc.returncode, "maxrss": usage.ru_maxrss}
    print(json.dumps(result), flush=True)
"""


class Launcher:
    """The small process that starts each measured command (see LAUNCHER)."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", LAUNCHER], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )

    def run(self, args: list[str], logs: Path, label: str) -> Child:
        """Run one gongkai command in a fresh process; stdout and stderr go to files,
        so a large --json report costs the bench nothing while it runs."""
        logs.mkdir(parents=True, exist_ok=True)
        out, err = logs / f"{label}.json", logs / f"{label}.stderr"
        job = {
            "argv": gongkai_command() + args,
            "stdout": str(out),
            "stderr": str(err),
            "env": cli_env(),
            "cwd": str(logs),
        }
        self.proc.stdin.write(json.dumps(job).encode() + b"\n")
        self.proc.stdin.flush()
        done = json.loads(self.proc.stdout.readline())
        # ru_maxrss is in KiB on Linux, in bytes on macOS.
        rss = done["maxrss"] / (1024 * 1024 if sys.platform == "darwin" else 1024)
        return Child(done["seconds"], rss, done["exit"], out, err)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


def stderr_tail(child: Child, lines: int = 15) -> str:
    text = child.stderr.read_text("utf-8", errors="replace").splitlines()
    return "\n".join(text[-lines:])


def read_publish_report(path: Path) -> dict:
    """The --json report of publish, without keeping its outcomes: at 100k items they
    are a million objects, and the bench needs only which items got a new edition."""
    sent: dict[str, int] = {}
    statuses: Counter[str] = Counter()

    def hook(obj: dict):
        if {"item_id", "channel", "status", "edition"} <= obj.keys():  # an outcome
            statuses[obj["status"]] += 1
            if obj["status"] in ("delivered", "updated"):
                sent[obj["item_id"]] = max(sent.get(obj["item_id"], 0), obj["edition"] or 0)
            return None
        return obj

    with path.open("rb") as file:
        report = json.load(file, object_hook=hook)
    report["outcomes"] = len(report.get("outcomes", ()))
    report["sent"] = sent
    report["statuses"] = statuses
    return report


def catalogue_entries(launcher: Launcher, config: Path, logs: Path) -> list[dict]:
    child = launcher.run(["catalogue", "--json", "-c", str(config)], logs, "catalogue")
    if child.exit_code != 0:
        raise SystemExit(f"gongkai catalogue failed:\n{stderr_tail(child)}")
    return json.loads(child.stdout.read_text("utf-8"))


# --- the items ----------------------------------------------------------------------------

TOWNS = (
    "赵镇街道", "官仓街道", "栖贤街道", "高板街道", "白果街道", "淮口街道", "三星镇",
    "五凤镇", "竹篙镇", "转龙镇", "土桥镇", "又新镇", "广兴镇", "清江镇", "福兴镇",
    "云合镇", "三溪镇", "金龙镇", "隆盛镇", "赵家镇",
)  # fmt: skip
VILLAGES = (
    "金箱村", "建华村", "花园村", "红旗村", "双龙村", "永安村", "新民村", "和平村",
    "团结村", "光明村", "五星村", "长林村", "铁炉村", "桂花村", "东山社区", "沱江社区",
)  # fmt: skip
SURNAMES = (
    "王李张刘陈杨黄赵周吴徐孙马朱胡郭何林罗高郑梁谢宋唐许韩冯邓曹彭曾"
    "肖田董袁潘蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏"
)
GIVEN = (
    "大勇", "玉兰", "光明", "秀珍", "建国", "德华", "桂英", "志强", "春梅", "文华", "明",
    "军", "芳", "丽", "红", "平", "刚", "霞", "伟", "勇", "强", "敏", "静", "兵", "燕",
    "国富", "淑芬", "长寿", "学文", "永福", "家琪", "子涵", "浩然", "雨欣", "思远",
)  # fmt: skip
COMPANIES = (
    "四川蜀源水利建设有限公司", "成都沱江建设工程有限公司", "四川金水工程有限公司",
    "四川华西路桥有限公司", "成都金堂建筑安装工程有限公司", "四川锦城园林绿化有限公司",
    "四川天府环境工程有限公司", "成都东部市政工程有限公司",
)  # fmt: skip
SENTENCES = (
    "本次工作严格按照相关法律法规和政策规定执行，坚持公开、公平、公正的原则。",
    "经{town}人民政府初审、县级主管部门复核，相关情况属实。",
    "各村（社区）应当在公示栏张贴本公告，并通过村广播告知群众。",
    "群众对公示内容有异议的，可在公示期内以书面形式实名反映，逾期不予受理。",
    "县纪委监委派驻纪检监察组全程参与监督，确保程序规范、结果公正。",
    "有关部门将对反映的问题及时调查核实，并将处理结果反馈反映人。",
    "相关资金已纳入县级财政预算，实行专账管理、专款专用，严禁截留挪用。",
    "请符合条件的群众按规定时间和地点办理，逾期视为自动放弃。",
    "办理时需携带本人身份证、户口簿原件及复印件，委托他人办理的还需提供委托书。",
    "工作人员将通过电话、短信等方式通知相关当事人，请保持通讯畅通。",
    "对弄虚作假、骗取补助资金的，一经查实，将依法依规追回并严肃处理。",
    "具体内容按照{basis}及县人民政府有关规定执行。",
    "{town}便民服务中心设立咨询窗口，工作日上午9:00至12:00、下午13:30至17:30受理咨询。",
    "本事项涉及{village}等{count}个村（社区），共{households}户群众。",
)  # fmt: skip
NUMERALS = "一二三四五六七八九十"
PHONE_PREFIXES = ("133", "135", "138", "139", "150", "151", "158", "159", "180", "187", "189")
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"
LIST_WORDS = ("名单", "结果", "情况", "对象")
STANDARDS = (
    ("土地补偿费和安置补助费", "亩"), ("青苗补偿费", "亩"), ("砖混结构房屋", "平方米"),
    ("砖木结构房屋", "平方米"), ("果树（挂果）", "株"), ("D级危房拆除重建", "户"),
    ("C级危房修缮加固", "户"), ("临时生活救助", "人"), ("城乡低保金", "人·月"),
    ("学生营养餐", "生·天"), ("过渡安置费", "户·月"), ("搬迁奖励", "户"),
)  # fmt: skip


def id_number(rng: random.Random) -> str:
    """A Jintang (510121) ID number with a valid check digit, so privacy masks it."""
    born = date(1940, 1, 1) + timedelta(days=rng.randrange(365 * 65))
    head = f"510121{born:%Y%m%d}{rng.randrange(1000):03d}"
    return head + ID_CHECK[sum(int(d) * w for d, w in zip(head, ID_WEIGHTS, strict=True)) % 11]


def mobile(rng: random.Random) -> str:
    return rng.choice(PHONE_PREFIXES) + f"{rng.randrange(10**8):08d}"


def person(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + rng.choice(GIVEN)


def toml_str(text: str) -> str:
    # A JSON string is a valid TOML basic string; CJK stays readable.
    return json.dumps(text, ensure_ascii=False)


def formed_on(entry: dict, rng: random.Random, today: date) -> date:
    """A recent signing date that keeps the item within its statutory time limit, so a
    run is not one 'published late' note per item (a working day is at least a
    calendar day, so looking back no further than the limit's days is safe)."""
    limit = (entry.get("time_limit") or {}).get("days", 20)
    return today - timedelta(days=rng.randint(1, max(1, min(limit, 6))))


def table(rng: random.Random, entry: dict, rows: int) -> str:
    if entry["domain"] == "trading":
        head = "| 序号 | 单位名称 | 投标报价（元） | 工期（日历天） |\n|---|---|---|---|\n"
        lines = (
            f"| {n} | {rng.choice(COMPANIES)} | {rng.randrange(10**5, 10**8) / 100:,.2f} "
            f"| {rng.choice((90, 120, 180, 240))} |"
            for n in range(1, rows + 1)
        )
        return head + "\n".join(lines)
    head = (
        "| 序号 | 村（社区） | 姓名 | 身份证号 | 联系电话 | 金额（元） |\n"
        "|---|---|---|---|---|---|\n"
    )
    lines = (
        f"| {n} | {rng.choice(VILLAGES)} | {person(rng)} | {id_number(rng)} "
        f"| {mobile(rng)} | {rng.randrange(500, 40000)} |"
        for n in range(1, rows + 1)
    )
    return head + "\n".join(lines)


def paragraph(rng: random.Random, entry: dict, town: str, sentences: int) -> str:
    values = {
        "town": town,
        "basis": entry.get("basis") or "有关规定",
        "village": rng.choice(VILLAGES),
        "count": rng.randint(2, 12),
        "households": rng.randint(10, 900),
    }
    return "".join(rng.choice(SENTENCES).format(**values) for _ in range(sentences))


def body(rng: random.Random, entry: dict, town: str, contact: str, posting: int | None) -> str:
    """Sections named after the entry's required elements (the catalogue checks that
    each is named), a name list for list-like entries, then the posting period."""
    size = rng.choices((1, 3, 6), weights=(6, 3, 1))[0]  # short, medium, long
    parts = [f"根据{entry.get('basis') or '有关规定'}，现将{town}{entry['name']}有关事项公告如下："]
    for n, element in enumerate(group[0] for group in entry["elements"]):
        parts.append(f"## {NUMERALS[n % 10]}、{element}")
        parts += [paragraph(rng, entry, town, rng.randint(1, 4)) for _ in range(size)]
    if entry["audience"] == "specific-group" or any(w in entry["name"] for w in LIST_WORDS):
        parts.append(table(rng, entry, rng.randint(1, 5) * size * size))
    if posting:
        parts.append(f"公示期{posting}天。如有异议，请在公示期内向{town}人民政府反映。")
    parts.append(f"监督电话：{contact}。")
    return "\n\n".join(parts) + "\n"


@dataclass
class Generated:
    folder: Path
    count: int
    attachments: int
    probe_id: str
    probe_path: Path
    #: When the last file was written (time.time()), or 0 for a kept folder.
    written_at: float = 0.0


class ItemWriter:
    """Writes the n-th item file (and its attachment) of a generated folder."""

    def __init__(self, entries: list[dict], today: date, seed: int) -> None:
        self.entries = entries
        self.today = today
        self.rng = random.Random(seed)
        self.last_release: str | None = None
        self.attachments = 0

    def write(self, folder: Path, n: int) -> tuple[str, Path]:
        rng = self.rng
        entry = rng.choice(self.entries)
        item_id = f"jt-2026-{entry['domain']}-{n:06d}"
        path = folder / f"b{n // PER_FOLDER:04d}" / f"{item_id}.md"
        town = rng.choice(TOWNS)
        contact = f"028-849{rng.randrange(10000, 100000)}"
        posting = (entry.get("posting_min") or {}).get("days")
        lines = [
            "+++",
            f'id = "{item_id}"',
            f'catalog = "{entry["key"]}"',
            *self.kind_lines(entry),
            f"title = {toml_str(self.title(entry, town))}",
            f"publisher = {toml_str(entry['responsible_unit'])}",
            f"formed_on = {formed_on(entry, rng, self.today).isoformat()}",
            f'area = "{town}"',
            f"keywords = [{toml_str(entry['domain_name'])}, {toml_str(entry['name'])}]",
            f'contact = "{contact}"',
        ]
        if posting:
            lines.append(f"posting_days = {posting}")
        if entry["audience"] == "specific-group":
            lines.append('audience = "specific-group"')
        if rng.random() < 0.4:
            lines.append(f'document_number = "金府发〔{self.today.year}〕{n % 997 + 1}号"')
        if rng.random() < ATTACHMENT_SHARE:
            lines += self.attachment(path, entry, rng)
        lines.append("+++")
        text = "\n".join(lines) + "\n" + body(rng, entry, town, contact, posting)
        path.write_text(text, encoding="utf-8")
        if not entry["key"].startswith("general."):
            self.last_release = item_id
        return item_id, path

    def title(self, entry: dict, town: str) -> str:
        year = self.today.year
        if entry["key"] == "general.policy-interpretation":
            return f"《金堂县{year}年{town}相关政策》政策解读"
        if entry["key"] == "general.public-concern-response":
            return f"关于群众反映{town}{self.rng.choice(VILLAGES)}有关问题的回应"
        return f"{town}{year}年度{entry['name']}公示"

    def kind_lines(self, entry: dict) -> list[str]:
        # An interpretation must name the release it explains: the last one written.
        related = f'related = ["{self.last_release}"]' if self.last_release else None
        if entry["key"] == "general.policy-interpretation":
            return ['kind = "interpretation"', related or 'related = ["jt-2026-general-0"]']
        if entry["key"] == "general.public-concern-response":
            return ['kind = "response"'] + ([related] if related else [])
        return []

    def attachment(self, item_path: Path, entry: dict, rng: random.Random) -> list[str]:
        csv = item_path.with_suffix(".csv")
        chosen = rng.sample(STANDARDS, rng.randint(3, len(STANDARDS)))
        rows = [f"{what},{unit},{rng.randrange(100, 60000)}" for what, unit in chosen]
        csv.write_text("项目,单位,标准（元）\n" + "\n".join(rows) + "\n", encoding="utf-8")
        self.attachments += 1
        return [
            "",
            "[[attachments]]",
            f"title = {toml_str(entry['name'] + '明细表')}",
            f'path = "{csv.name}"',
        ]


def generate(folder: Path, count: int, entries: list[dict], seed: int) -> Generated:
    """Item files in ``folder``; a kept folder of the same shape is reused as it is."""
    # Beside the folder, not in it: a .json file in it would be read as an item.
    manifest = folder.with_name(folder.name + ".json")
    if manifest.is_file():
        kept = json.loads(manifest.read_text("utf-8"))
        if kept.get("version") == GENERATOR_VERSION and kept.get("count") == count:
            return Generated(
                folder, count, kept["attachments"], kept["probe_id"], folder / kept["probe_path"]
            )
        shutil.rmtree(folder)
    today = datetime.now(BEIJING).date()
    writer = ItemWriter(entries, today, seed)
    for batch in range(0, count, PER_FOLDER):
        (folder / f"b{batch // PER_FOLDER:04d}").mkdir(parents=True, exist_ok=True)
    probe = count // 2  # the item phase 3 edits
    probe_id, probe_path = "", folder
    for n in range(count):
        item_id, path = writer.write(folder, n)
        if n == probe:
            probe_id, probe_path = item_id, path
    manifest.write_text(
        json.dumps(
            {
                "version": GENERATOR_VERSION,
                "count": count,
                "attachments": writer.attachments,
                "probe_id": probe_id,
                "probe_path": str(probe_path.relative_to(folder)),
            }
        ),
        encoding="utf-8",
    )
    return Generated(folder, count, writer.attachments, probe_id, probe_path, time.time())


def edit_body(path: Path) -> None:
    """Append a correction to the body: new content each time, so a kept folder still
    gives a new edition on every invocation."""
    text = path.read_text("utf-8")
    number = text.count("更正说明") + 1
    path.write_text(
        text + f"\n更正说明：第{number}次更正，监督电话以本次公告为准。\n", encoding="utf-8"
    )


# --- config ------------------------------------------------------------------------------


def write_config(folder: Path, channels: tuple[str, ...]) -> Path:
    """config.toml in ``folder``, its state beside it. Written only when it differs, so
    a kept ledger sees the same config (files are skipped only under the same one)."""
    lines = [
        "[gongkai]",
        'state_dir = "state"',
        f'org_code = "{ORG_CODE}"',
        "",
        "[org_codes]",
        f'"{EDUCATION[0]}" = "{EDUCATION[1]}"',
    ]
    if set(channels) & set(nullchannel.NAMES):
        lines += ["", "[plugins]", 'load = ["nullchannel"]']
    for name in channels:
        lines += ["", f"[channels.{name}]", "every_item = true"]
    text = "\n".join(lines) + "\n"
    config = folder / "config.toml"
    folder.mkdir(parents=True, exist_ok=True)
    if not config.is_file() or config.read_text("utf-8") != text:
        config.write_text(text, encoding="utf-8")
    return config


def settle(items: Generated) -> None:
    """Wait until the files are older than gongkai's racy-time window (2 s). A file
    taken in within it is hashed again by the next run, and one with an attachment
    read again: right for a file just edited, but not the daily case this measures,
    where the folder was written long before."""
    if items.written_at:
        time.sleep(max(0.0, items.written_at + RACY_SECONDS - time.time()))


def ledger_summary(state: Path) -> str:
    """Delivery rows and size of the ledger, read-only (context for the figures)."""
    path = state / "ledger.sqlite3"
    # The write-ahead log is part of the ledger until SQLite checkpoints it.
    mb = sum(p.stat().st_size for p in (path, path.with_name(path.name + "-wal")) if p.exists())
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            rows = f"{db.execute('SELECT count(*) FROM deliveries').fetchone()[0]:,}"
    except sqlite3.Error as exc:  # the schema may have moved on
        rows = f"? ({exc})"
    return f"ledger: {rows} delivery rows, {mb / 1e6:,.0f} MB"


# --- the phases ---------------------------------------------------------------------------


@dataclass
class Measure:
    size: int
    phase: str
    seconds: float | None
    rss_mb: float | None
    rate: float | None = None
    detail: str = ""
    #: (what, met) for each target this figure has.
    targets: list[tuple[str, bool]] = field(default_factory=list)


@dataclass
class Setup:
    launcher: Launcher
    size: int
    variant: str
    items: Generated
    config: Path
    logs: Path
    channels: tuple[str, ...]

    @property
    def state(self) -> Path:
        return self.config.parent / "state"


def rss_target(measure: Measure) -> Measure:
    if measure.rss_mb is not None:
        measure.targets.append((f"≤{PEAK_RSS_MB} MB", measure.rss_mb <= PEAK_RSS_MB))
    return measure


def rerun_limit(size: int) -> float:
    # The target is 3 s at 100k; larger folders get 3 s per 100k files (stat is linear).
    return RERUN_SECONDS_PER_100K * max(1.0, size / 100_000)


def failed(child: Child, expected: tuple[int, ...] = (0,)) -> str:
    if child.exit_code in expected:
        return ""
    print(f"  ! exit {child.exit_code}; its stderr ends:\n{stderr_tail(child)}", flush=True)
    return f"EXIT {child.exit_code}; "


def publish(setup: Setup, label: str, paths: bool = True) -> tuple[Child, dict]:
    args = ["publish", "--json", "-c", str(setup.config)]
    if paths:
        args.insert(1, str(setup.items.folder))
    child = setup.launcher.run(args, setup.logs, f"{setup.size}-{label}")
    report = read_publish_report(child.stdout) if child.stdout.stat().st_size else {}
    return child, report


def phase_first(setup: Setup) -> Measure:
    child, report = publish(setup, "first")
    n = setup.size
    sent = len(report.get("sent", ()))
    delivered = report.get("statuses", {}).get("delivered", 0)
    check = "" if sent == n else f"CHECK: {sent} of {n} items delivered; "
    mb = child.stdout.stat().st_size / 1e6
    rate = n / child.seconds
    want = FIRST_ITEMS_PER_S[setup.variant]
    measure = Measure(
        n,
        "first publish",
        child.seconds,
        child.rss_mb,
        rate,
        f"{failed(child)}{check}{delivered:,} delivered, {report.get('files_read', 0):,} read, "
        f"--json {mb:,.0f} MB",
        [(f"≥{want:,}/s", rate >= want)],
    )
    return rss_target(measure)


def phase_noop(setup: Setup) -> Measure:
    child, report = publish(setup, "noop")
    n = setup.size
    sent = len(report.get("sent", ()))
    check = f"CHECK: {sent} items sent; " if sent else ""
    limit = rerun_limit(n)
    measure = Measure(
        n,
        "no-op rerun",
        child.seconds,
        child.rss_mb,
        n / child.seconds,
        f"{failed(child)}{check}{report.get('files_skipped', 0):,} skipped unread, "
        f"{report.get('files_read', 0):,} read",
        [(f"≤{limit:g} s", child.seconds <= limit)],
    )
    return rss_target(measure)


def phase_change(setup: Setup) -> Measure:
    edit_body(setup.items.probe_path)
    child, report = publish(setup, "change")
    sent = report.get("sent", {})
    probe = setup.items.probe_id
    edition = sent.get(probe, 0)
    updated = report.get("statuses", {}).get("updated", 0)
    if set(sent) != {probe} or edition < 2:
        check = f"CHECK: sent {sorted(sent)[:5]} (want only {probe} at edition ≥2); "
    elif updated != len(setup.channels):
        check = f"CHECK: {updated} channels updated, want {len(setup.channels)}; "
    else:
        check = ""
    limit = rerun_limit(setup.size)
    measure = Measure(
        setup.size,
        "one change",
        child.seconds,
        child.rss_mb,
        None,
        f"{failed(child)}{check}{probe} → edition {edition} on {updated} channel(s), "
        f"{report.get('files_read', 0):,} read",
        [(f"≤{limit:g} s", child.seconds <= limit)],
    )
    return rss_target(measure)


def phase_empty(setup: Setup) -> Measure:
    child, report = publish(setup, "empty", paths=False)
    counts = report.get("counts", {})
    measure = Measure(
        setup.size,
        "empty publish",
        child.seconds,
        child.rss_mb,
        None,
        f"{failed(child)}counts {dict(counts) or '{}'}, backlog {report.get('backlog') or '{}'}",
        [(f"≤{QUICK_SECONDS:g} s", child.seconds <= QUICK_SECONDS)],
    )
    return rss_target(measure)


def phase_status(setup: Setup) -> Measure:
    probe = setup.items.probe_id
    args = ["status", probe, "--json", "-c", str(setup.config)]
    child = setup.launcher.run(args, setup.logs, f"{setup.size}-status")
    rows = json.loads(child.stdout.read_text("utf-8") or "[]")
    editions = max((len(r.get("editions", ())) for r in rows), default=0)
    check = "" if len(rows) == len(setup.channels) else f"CHECK: {len(rows)} rows; "
    measure = Measure(
        setup.size,
        "status ITEM",
        child.seconds,
        child.rss_mb,
        None,
        f"{failed(child)}{check}{len(rows)} delivery row(s), {editions} edition(s)",
        [(f"≤{QUICK_SECONDS:g} s", child.seconds <= QUICK_SECONDS)],
    )
    return rss_target(measure)


def run_size(setup: Setup, fresh_ledger: bool) -> list[Measure]:
    if fresh_ledger and setup.state.exists():
        shutil.rmtree(setup.state)
    kept = (setup.state / "ledger.sqlite3").exists()
    measures = []
    if kept:
        skipped = "kept ledger, not measured (--fresh-ledger measures it)"
        measures.append(Measure(setup.size, "first publish", None, None, detail=skipped))
        print_row(measures[-1])
    phases = (phase_noop, phase_change, phase_empty, phase_status)
    for phase in phases if kept else (phase_first, *phases):
        measures.append(phase(setup))
        print_row(measures[-1])
    return measures


# --- the report ---------------------------------------------------------------------------

HEADER = f"{'size':>8}  {'phase':<14} {'seconds':>8} {'items/s':>9} {'RSS MB':>7}  target"


def print_row(m: Measure) -> None:
    seconds = f"{m.seconds:8.2f}" if m.seconds is not None else f"{'—':>8}"
    rate = f"{m.rate:9,.0f}" if m.rate is not None else f"{'—':>9}"
    rss = f"{m.rss_mb:7.0f}" if m.rss_mb is not None else f"{'—':>7}"
    targets = ", ".join(f"{what} {'ok' if met else 'MISSED'}" for what, met in m.targets)
    print(f"{m.size:>8,}  {m.phase:<14} {seconds} {rate} {rss}  {targets}", flush=True)
    if m.detail:
        print(f"{'':>10}{m.detail}", flush=True)


def print_ratios(measures: list[Measure]) -> None:
    """Per-item cost of the first publish between consecutive sizes: near 1 means
    linear; more means something grows faster than the item count."""
    firsts = {m.size: m.seconds for m in measures if m.phase == "first publish" and m.seconds}
    sizes = sorted(firsts)
    for small, big in zip(sizes, sizes[1:], strict=False):
        ratio = (firsts[big] / big) / (firsts[small] / small)
        met = "ok" if ratio <= RATIO_MAX else "MISSED"
        print(
            f"per-item cost of the first publish, {big:,} vs {small:,}: {ratio:.2f} "
            f"(target ≤{RATIO_MAX} at 100,000 vs 10,000) {met}"
        )


def print_missed(measures: list[Measure]) -> None:
    missed = [
        f"{m.size:,} {m.phase} ({what})" for m in measures for what, met in m.targets if not met
    ]
    checked = sum(len(m.targets) for m in measures)
    print(f"targets met: {checked - len(missed)} of {checked}")
    for line in missed:
        print(f"  missed: {line}")


def parse_sizes(text: str) -> list[int]:
    """'1000,10000' or '1k,10k'."""
    sizes = []
    for part in filter(None, (p.strip().lower() for p in text.split(","))):
        scale = 1000 if part.endswith("k") else 1
        sizes.append(int(float(part.rstrip("k")) * scale))
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=parse_sizes, default=[1000, 10_000, 100_000])
    parser.add_argument("--big", action="store_true", help="add 300k to the sizes")
    parser.add_argument("--archive", action="store_true", help="the archive channel instead")
    parser.add_argument("--keep", type=Path, metavar="DIR", help="items and ledgers here, reused")
    parser.add_argument("--fresh-ledger", action="store_true", help="drop a kept ledger first")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    sizes = sorted(set(args.sizes + ([300_000] if args.big else [])))
    variant = "archive" if args.archive else "null"
    channels = ("archive",) if args.archive else nullchannel.NAMES

    # Started first, while the bench is small (see LAUNCHER).
    launcher = Launcher()
    temp = None if args.keep else tempfile.TemporaryDirectory(prefix="gongkai-scale-")
    root = args.keep.resolve() if args.keep else Path(temp.name)
    try:
        run_all(launcher, root, sizes, variant, channels, args)
    finally:
        launcher.close()
        if temp is not None:
            temp.cleanup()


def run_all(launcher: Launcher, root: Path, sizes: list[int], variant: str, channels, args) -> None:
    # The catalogue as the CLI shows it, so the items use its keys and elements.
    setup_config = write_config(root / "setup", channels)
    entries = catalogue_entries(launcher, setup_config, root / "setup")
    start = launcher.run(["--version"], root / "setup", "version")
    print(
        f"scale: {variant} channels {', '.join(channels)}; {len(entries)} catalogue entries; "
        f"CLI start-up (gongkai --version) {start.seconds:.2f} s, {start.rss_mb:.0f} MB; "
        f"folder {root}"
    )
    measures: list[Measure] = []
    for size in sizes:
        base = root / f"n{size}"
        began = time.perf_counter()
        items = generate(base / "items", size, entries, args.seed)
        took = time.perf_counter() - began
        print(
            f"\n{size:,} items ({items.attachments:,} with a CSV attachment) in {items.folder}, "
            f"ready in {took:.1f} s; edited item: {items.probe_id}"
        )
        print(HEADER)
        config = write_config(base / variant, channels)
        settle(items)
        logs = base / variant / "logs"
        setup = Setup(launcher, size, variant, items, config, logs, channels)
        done = run_size(setup, args.fresh_ledger)
        measures += done
        print(f"{'':>10}{ledger_summary(setup.state)}")
    print()
    print_ratios(measures)
    print_missed(measures)


if __name__ == "__main__":
    main()
