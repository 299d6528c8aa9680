"""Dispatch benchmark.

1. 2,000 items x 2 HTTP channels POSTing to a loopback server (in its own process) that
   adds 20 ms per request, at concurrency 16. Prints the wall time, the ratio to the
   ideal (requests x latency / concurrency) and to a baseline run in this process: the
   same POSTs from bare threads on the requests session gongkai's channels use, and
   the floor of bare http.client threads. Each is run --repeat times, alternating;
   best and median are printed.
   The CPU time per delivery is printed beside it (this process only).
2. A no-op rerun over 10,000 already-delivered items: items per second.
3. Items through the municipal platform channel to its sandbox simulator (20 ms added
   per request): token, create with an Idempotency-Key, the simulator's own state
   writes. Baseline: the same creates from bare threads on a requests session.
4. Items through the wechat channel to the sandbox's WeChat simulator (20 ms added per
   answer): a draft/add and a freepublish/submit each, plus a token and a cover. Prints
   items per second and the ratio to the same ideal (requests x latency / concurrency),
   beside the same creates sent from bare threads.

Run: python bench/dispatch.py [--items 2000] [--noop-items 10000] [--municipal-items 300]
     [--wechat-items 300]
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import multiprocessing
import os
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import requests
from nullchannel import NullChannel  # bench/ is on the path when run as a script

from gongkai import ChannelContext, Item, Publisher, sandbox
from gongkai.channels.webhook import WebhookChannel
from gongkai.channels.wechat import COVERS
from gongkai.config import settings_from_dict
from gongkai.http import new_session
from gongkai.plugins.hookspecs import hookimpl
from gongkai.sandbox.municipal import DEFAULT_APP_SECRET
from gongkai.sandbox.wechat import DEFAULT_APPID, DEFAULT_SECRET

LATENCY = 0.020
CONCURRENCY = 16
#: CPU seconds of this process per request, by contender (the server is another process).
CPU: dict[str, list[float]] = {"baseline": [], "gongkai": []}


def serve(port_queue, latency: float) -> None:
    """A minimal keep-alive HTTP server on asyncio: it costs little CPU per request, so
    the figures measure the client (gongkai), not Python's http.server."""

    reply = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        b'Content-Length: 11\r\n\r\n{"id":"ok"}'
    )

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                await asyncio.sleep(latency)
                writer.write(reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=256)
        port_queue.put(server.sockets[0].getsockname()[1])
        await server.serve_forever()

    asyncio.run(main())


class SecondWebhook(WebhookChannel):
    """A second HTTP channel (a county portal, say) on the same loopback server."""

    name = "portal_hook"


class BenchPlugin:
    @hookimpl
    def gongkai_register_channels(self):
        return [SecondWebhook, NullChannel]


def make_items(count: int, prefix: str) -> list[Item]:
    return [
        Item(
            id=f"{prefix}-{n:05d}",
            catalog="housing.policy",
            title=f"金堂县公共租赁住房申请指南（第{n}号）",
            body=f"申请条件：在本县有稳定工作。申请材料：身份证明。办理流程：个人申请，审核后公示。编号{n}。",
            publisher="金堂县房产管理局",
            formed_on=date(2026, 11, 20),
        )
        for n in range(count)
    ]


def publisher(state: Path, channels: dict) -> Publisher:
    settings = settings_from_dict(
        {
            "gongkai": {
                "state_dir": str(state),
                "concurrency": CONCURRENCY,
                "org_code": "11510121009087532X",
            },
            "channels": channels,
        }
    )
    return Publisher(settings, plugins=[BenchPlugin()], load_entry_points=False)


def baseline(url: str, requests_total: int) -> float:
    """The same POSTs from a bare thread pool through the very session gongkai's
    channels use (gongkai.http.new_session): no ledger, retries, logging or scheduler."""
    context = ChannelContext(
        name="baseline", state_dir=Path("."), clock=lambda: None, pool_size=CONCURRENCY
    )
    session = new_session(context)
    start, cpu = time.perf_counter(), time.process_time()
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        list(pool.map(lambda n: session.post(url, data=b'{"n":1}'), range(requests_total)))
    CPU["baseline"].append((time.process_time() - cpu) / requests_total)
    return time.perf_counter() - start


def raw_floor(port: int, requests_total: int) -> float:
    """The same POSTs over bare http.client keep-alive connections: what Python threads
    can do on this machine without requests' per-call work."""
    local = threading.local()

    def post(_: int) -> None:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("POST", "/items", body=b'{"n":1}')
        conn.getresponse().read()

    start = time.perf_counter()
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        list(pool.map(post, range(requests_total)))
    return time.perf_counter() - start


def dispatch_once(url: str, count: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        pub = publisher(
            Path(tmp),
            {
                "webhook": {"every_item": True, "url": url},
                "portal_hook": {"every_item": True, "url": url},
            },
        )
        items = make_items(count, "bench")
        start, cpu = time.perf_counter(), time.process_time()
        result = pub.publish(items)
        wall = time.perf_counter() - start
        CPU["gongkai"].append((time.process_time() - cpu) / (count * 2))
        pub.close()
    assert result.counts().get("delivered") == count * 2, result.counts()
    return wall


def municipal_once(count: int) -> tuple[float, float]:
    """Wall time of publishing ``count`` items through the ``platform`` channel to the
    sandbox's municipal simulator, and of the same creates sent from bare threads to a
    fresh simulator of their own (its state file grows with every article)."""
    os.environ.setdefault("GONGKAI_MUNICIPAL_SECRET", DEFAULT_APP_SECRET)
    faults = sandbox.Faults(latency=LATENCY)
    with (
        tempfile.TemporaryDirectory() as tmp,
        sandbox.start(Path(tmp), faults, names=["municipal"]) as running,
    ):
        pub = publisher(
            Path(tmp) / "gongkai",
            {
                "platform": {
                    "every_item": True,
                    "base_url": running.url_for("municipal"),
                    "app_key": "sandbox-app",
                    "app_secret": {"env": "GONGKAI_MUNICIPAL_SECRET"},
                    "default_column": "bench",
                }
            },
        )
        start = time.perf_counter()
        result = pub.publish(make_items(count, "mun"))
        wall = time.perf_counter() - start
        pub.close()
    assert result.counts().get("delivered") == count, result.counts()

    with (
        tempfile.TemporaryDirectory() as tmp,
        sandbox.start(Path(tmp), faults, names=["municipal"]) as running,
    ):
        base = running.url_for("municipal")
        session = requests.Session()
        token = session.post(
            f"{base}/api/v1/auth/token",
            json={"app_key": "sandbox-app", "app_secret": DEFAULT_APP_SECRET},
        ).json()["access_token"]

        def create(n: int) -> None:
            article = {
                "external_id": f"bare-{n}",
                "edition": 1,
                "content_hash": f"{n:064d}",
                "title": "金堂县公共租赁住房申请指南",
                "content_html": "<p>申请条件：在本县有稳定工作。</p>",
                "publisher": "金堂县房产管理局",
                "formed_on": "2026-11-20",
            }
            headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": f"bare-{n}"}
            session.post(f"{base}/api/v1/columns/bench/articles", json=article, headers=headers)

        start = time.perf_counter()
        with ThreadPoolExecutor(CONCURRENCY) as pool:
            list(pool.map(create, range(count)))
        bare = time.perf_counter() - start
    return wall, bare


def wechat_once(count: int) -> tuple[float, float, int]:
    """Publish ``count`` items through the wechat channel to a fresh sandbox, and send
    the same draft/add and freepublish/submit pairs from bare threads to another: the
    two wall times and the number of requests the channel's simulator answered."""
    os.environ.setdefault("GONGKAI_WECHAT_SECRET", DEFAULT_SECRET)
    items = make_items(count, "wechat")
    faults = sandbox.Faults(latency=LATENCY)
    with (
        tempfile.TemporaryDirectory() as tmp,
        sandbox.start(Path(tmp), faults, names=["wechat"]) as running,
    ):
        options = {"base_url": running.url, "appid": DEFAULT_APPID}
        secret = {"env": "GONGKAI_WECHAT_SECRET"}
        pub = publisher(
            Path(tmp) / "state", {"wechat": {"every_item": True, **options, "secret": secret}}
        )
        bodies = [pub.render(item, "wechat").body for item in items]
        start = time.perf_counter()
        result = pub.publish(items)
        wall = time.perf_counter() - start
        pub.close()
        answered = len(running.server.simulators[0].log)
    assert result.counts().get("publishing") == count, result.counts()
    with (
        tempfile.TemporaryDirectory() as tmp,
        sandbox.start(Path(tmp), faults, names=["wechat"]) as running,
    ):
        bare = wechat_bare(running.url, bodies)
    return wall, bare, answered


def wechat_bare(url: str, bodies: list[str]) -> float:
    """The same creates from a bare thread pool on gongkai's requests session: no
    ledger, checkpoints, retries or scheduler."""
    context = ChannelContext(
        name="baseline", state_dir=Path("."), clock=lambda: None, pool_size=CONCURRENCY
    )
    session = new_session(context)
    token = session.post(
        f"{url}/cgi-bin/stable_token",
        json={"grant_type": "client_credential", "appid": DEFAULT_APPID, "secret": DEFAULT_SECRET},
    ).json()["access_token"]
    cover = session.post(
        f"{url}/cgi-bin/material/add_material",
        params={"access_token": token, "type": "thumb"},
        files={"media": ("housing.jpg", (COVERS / "housing.jpg").read_bytes(), "image/jpeg")},
    ).json()["media_id"]
    placeholder = "<media_id of the housing cover, uploaded when sending>"

    def create(body: str) -> None:
        data = body.replace(placeholder, cover).encode("utf-8")
        headers = {"Content-Type": "application/json; charset=utf-8"}
        query = {"access_token": token}
        media_id = session.post(
            f"{url}/cgi-bin/draft/add", params=query, data=data, headers=headers
        ).json()["media_id"]
        session.post(f"{url}/cgi-bin/freepublish/submit", params=query, json={"media_id": media_id})

    start = time.perf_counter()
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        list(pool.map(create, bodies))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--noop-items", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--municipal-items", type=int, default=300)
    parser.add_argument("--wechat-items", type=int, default=300)
    args = parser.parse_args()

    ports = multiprocessing.Queue()
    server = multiprocessing.Process(target=serve, args=(ports, LATENCY), daemon=True)
    server.start()
    port = ports.get(timeout=10)
    url = f"http://127.0.0.1:{port}/items"
    try:
        total_requests = args.items * 2
        ideal = total_requests * LATENCY / CONCURRENCY
        floors, bases, walls = [], [], []
        # Alternate the runs so that a noisy neighbour on the machine hits all alike.
        for _ in range(args.repeat):
            floors.append(raw_floor(port, total_requests))
            bases.append(baseline(url, total_requests))
            walls.append(dispatch_once(url, args.items))
        print(
            f"dispatch: {args.items} items x 2 channels = {total_requests} POSTs, "
            f"{LATENCY * 1000:.0f} ms each, concurrency {CONCURRENCY}, {args.repeat} runs"
        )
        print(f"  ideal     {ideal:7.2f} s")
        for label, runs in (("floor", floors), ("baseline", bases), ("gongkai", walls)):
            best, median = min(runs), statistics.median(runs)
            print(
                f"  {label:9} best {best:6.2f} s = {best / ideal:.2f}x ideal   "
                f"median {median:6.2f} s = {median / ideal:.2f}x ideal"
            )
        print("  (floor: bare http.client threads; baseline: bare threads on gongkai's requests")
        print("   session; neither has a ledger, retries, logging or a scheduler)")
        print(
            f"  gongkai / baseline: best {min(walls) / min(bases):.2f}x, "
            f"median {statistics.median(walls) / statistics.median(bases):.2f}x"
        )
        base_cpu, our_cpu = (statistics.median(CPU[k]) * 1e6 for k in ("baseline", "gongkai"))
        print(
            f"  CPU per delivery (median): gongkai {our_cpu:.0f} us, bare requests "
            f"{base_cpu:.0f} us, {our_cpu / base_cpu:.2f}x: the ledger, scheduler and logging "
            "cost the difference"
        )

        with tempfile.TemporaryDirectory() as tmp:
            pub = publisher(Path(tmp), {"null": {"every_item": True}})
            items = make_items(args.noop_items, "noop")
            first_start = time.perf_counter()
            pub.publish(items)
            first = time.perf_counter() - first_start
            start = time.perf_counter()
            result = pub.publish(items)
            rerun = time.perf_counter() - start
            pub.close()
        assert result.counts().get("unchanged") == args.noop_items, result.counts()
        print(
            f"no-op rerun: {args.noop_items} delivered items in {rerun:.2f} s = "
            f"{args.noop_items / rerun:,.0f} items/s  "
            f"(first publish to an instant channel: {first:.2f} s, rerun {rerun / first:.2f}x)"
        )

        wall, bare = municipal_once(args.municipal_items)
        ideal = args.municipal_items * LATENCY / CONCURRENCY
        print(
            f"municipal: {args.municipal_items} items to the sandbox simulator, "
            f"{LATENCY * 1000:.0f} ms per request: gongkai {wall:.2f} s = {wall / ideal:.2f}x "
            f"ideal, bare creates {bare:.2f} s; gongkai / bare {wall / bare:.2f}x"
        )

        wechat = [wechat_once(args.wechat_items) for _ in range(args.repeat)]
        requests_made = wechat[0][2]
        wechat_ideal = requests_made * LATENCY / CONCURRENCY
        walls = [w for w, _, _ in wechat]
        bares = [b for _, b, _ in wechat]
        print(
            f"wechat: {args.wechat_items} items to the sandbox's WeChat simulator, "
            f"{requests_made} requests (token, cover, draft/add, freepublish/submit), "
            f"{LATENCY * 1000:.0f} ms each, concurrency {CONCURRENCY}; ideal {wechat_ideal:.2f} s"
        )
        for label, runs in (("bare", bares), ("gongkai", walls)):
            best, median = min(runs), statistics.median(runs)
            print(
                f"  {label:8} best {best:6.2f} s = {args.wechat_items / best:,.0f} items/s = "
                f"{best / wechat_ideal:.2f}x ideal   median {median:6.2f} s = "
                f"{median / wechat_ideal:.2f}x ideal"
            )
        print(
            f"  gongkai / bare: best {min(walls) / min(bares):.2f}x (bare: the same creates "
            "from bare threads; the simulator writes its whole state file on every request)"
        )
    finally:
        server.terminate()


if __name__ == "__main__":
    main()
