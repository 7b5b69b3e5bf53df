"""Running one graph on a pool of ComfyUI servers, through comfy-api-client.

The pool picks a healthy server (``/system_stats`` answers, cached in Redis so every worker
shares what it learnt, one probe at a time per server) with the fewest runs in flight; a
server that fails is marked down for a while and the run moves on to another. Runs waiting
for a server go to it in the order they started (a line per server in Redis), so after a
restart the run that was executing goes back first. Each event loop (a worker's slot) keeps
one HTTP client per server, so runs reuse its connections. Faults are classified:

- ``Rejected``: ComfyUI refused the graph (400): the user's fault, never retried;
- ``RunFailed``: ComfyUI accepted it but a node raised (``execution_error``): not retried;
- ``ServerFault``: connection refused, timeouts, a restarted server that forgot the prompt,
  an interruption we did not ask for: retried on another server, a bounded number of times;
- ``TimedOut`` / ``Cancelled``: the prompt is interrupted on ComfyUI, then the run ends.
"""
from __future__ import annotations

import asyncio
import json
import logging
import random
import time
import uuid
import weakref
from dataclasses import dataclass, field
from typing import Awaitable, Callable

import httpx
import redis
import websockets
from comfy_api_client import ComfyAPIClient

log = logging.getLogger("aimg.worker.comfy")

POLL_S = 2.0  # how often the history is checked when the WebSocket is quiet
HEALTH_TIMEOUT_S = 5.0
# A server that failed is asked again after this long. Short: a restarted server is taken
# back within about this long (one probe per server at a time, so it costs little).
DOWN_RETRY_S = 0.5
WAIT_POLL_S = 0.1  # how often a run waiting for a server (or its turn) looks again (Redis only)
LINE_ALIVE_S = 5.0  # a waiting run's place in line lapses this long after its worker last looked


_ssl_context = None


def http_client(timeout: float) -> httpx.AsyncClient:
    """A new HTTP client for ComfyUI (for a one-off call on its own event loop). The TLS
    context is built once: loading the CA bundle costs tens of milliseconds."""
    global _ssl_context
    if _ssl_context is None:
        _ssl_context = httpx.create_ssl_context()
    return httpx.AsyncClient(timeout=timeout, verify=_ssl_context)


# One client per server per event loop (an httpx client belongs to the loop it runs on; a
# worker's slot keeps its loop across jobs), so runs reuse connections instead of opening
# new ones (TCP and, for https, TLS) for every run, health probe and download.
_clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, httpx.AsyncClient]]" = \
    weakref.WeakKeyDictionary()


_background: set[asyncio.Task] = set()


def shared_client(url: str, timeout: float) -> httpx.AsyncClient:
    """This event loop's HTTP client for the server ``url``."""
    per_loop = _clients.setdefault(asyncio.get_running_loop(), {})
    client = per_loop.get(url)
    if client is None or client.is_closed:
        client = per_loop[url] = http_client(timeout)
    return client


class ComfyError(Exception):
    """A run did not produce its outputs; ``message`` is safe to show to the user."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class Rejected(ComfyError):
    pass


class RunFailed(ComfyError):
    pass


class ServerFault(ComfyError):
    pass


class TimedOut(ComfyError):
    pass


class Cancelled(ComfyError):
    pass


class NoServerHas(Rejected):
    """Every configured server lacks a node class or a model file the graph names."""


# --- what a server has (from /object_info) -------------------------------------------------

CAPS_REFRESH_S = 60.0  # how old a server's node/model lists may get before a health probe reads them again


def capabilities_from(object_info: dict) -> dict:
    """The node classes of a server and the choices of its model inputs (every list-valued
    input whose name ends in ``_name``: ``ckpt_name``, ``lora_name``, ``control_net_name``...)."""
    models: dict[str, list[str]] = {}
    for class_type, spec in object_info.items():
        inputs = (spec or {}).get("input") or {}
        for group in ("required", "optional"):
            for name, config in (inputs.get(group) or {}).items():
                if name.endswith("_name") and isinstance(config, list) and config and isinstance(config[0], list):
                    models[f"{class_type}.{name}"] = [str(v) for v in config[0]]
    return {"nodes": sorted(object_info), "models": models, "at": time.time()}


def graph_needs(graph: dict) -> tuple[set[str], list[tuple[str, str, str]]]:
    """The node classes a graph uses, and its (class, input, value) choices of model inputs."""
    classes, choices = set(), []
    for node in graph.values():
        if not isinstance(node, dict) or "class_type" not in node:
            continue
        classes.add(node["class_type"])
        for name, value in (node.get("inputs") or {}).items():
            if name.endswith("_name") and isinstance(value, str):
                choices.append((node["class_type"], name, value))
    return classes, choices


def missing(caps: dict, needs: tuple[set[str], list[tuple[str, str, str]]]) -> list[str]:
    """What of ``needs`` a server with ``caps`` lacks, as phrases; empty when it has all."""
    classes, choices = needs
    nodes = set(caps.get("nodes") or [])
    gaps = [f"node {c}" for c in sorted(classes - nodes)]
    for class_type, name, value in choices:
        options = (caps.get("models") or {}).get(f"{class_type}.{name}")
        if options is not None and value not in options:
            gaps.append(f"{name} '{value}'")
    return gaps


class AimgComfyClient(ComfyAPIClient):
    """comfy-api-client's client, with the few calls it lacks: the raw bytes of an output
    (``retrieve_image`` decodes to a PIL image, which would re-encode every file) and a
    targeted interrupt."""

    async def view_bytes(self, filename: str, subfolder: str, folder_type: str) -> tuple[bytes, str]:
        response = await self.client.get(self.get_endpoint_url("/view"),
                                          params={"filename": filename, "subfolder": subfolder, "type": folder_type})
        if response.status_code == 404:
            raise ServerFault(f"ComfyUI lost the output {filename!r}.")
        response.raise_for_status()
        return response.content, response.headers.get("content-type", "application/octet-stream")

    async def delete_pending(self, prompt_ids: list[str]) -> None:
        """Take prompts out of ComfyUI's pending queue. ComfyUI reads only ``delete`` and
        ``clear`` on ``POST /queue`` (comfy-api-client's ``cancel_prompts`` sends ``cancel``,
        which ComfyUI ignores)."""
        response = await self.client.post(self.get_endpoint_url("/queue"), json={"delete": prompt_ids})
        response.raise_for_status()

    async def interrupt_prompt(self, prompt_id: str, running: bool = False) -> None:
        """Stop ``prompt_id`` only: delete it if pending, interrupt it if running. Deleting
        first leaves no window where it starts between a look at the queue and the delete.
        ``running``: it is known to execute (its ``execution_start`` came): interrupt at once."""
        if running:
            response = await self.client.post(self.get_endpoint_url("/interrupt"), json={"prompt_id": prompt_id})
            response.raise_for_status()
            return
        await self.delete_pending([prompt_id])
        queue = await self.get_queue()
        if any(e.prompt_id == prompt_id for e in queue.running):
            # Newer ComfyUI honours prompt_id; older ones interrupt whatever runs, which is ours.
            response = await self.client.post(self.get_endpoint_url("/interrupt"), json={"prompt_id": prompt_id})
            response.raise_for_status()


def rejection_message(response: httpx.Response) -> str:
    """ComfyUI's 400 body, as one readable sentence."""
    try:
        body = response.json()
    except ValueError:
        return "ComfyUI rejected the workflow."
    error = body.get("error") or {}
    parts = []
    for node_id, node in (body.get("node_errors") or {}).items():
        for err in node.get("errors", []):
            detail = f" ({err['details']})" if err.get("details") else ""
            parts.append(f"{node.get('class_type', 'node')} #{node_id}: {err.get('message', 'invalid')}{detail}")
    message = error.get("message") or "invalid workflow"
    if not parts and error.get("details"):
        parts.append(str(error["details"]))
    return f"ComfyUI rejected the workflow: {message}" + (f": {'; '.join(parts)}" if parts else ".")


@dataclass
class RunOutputs:
    server: str
    prompt_id: str
    images: dict[str, list[dict]] = field(default_factory=dict)  # node id -> [{filename, subfolder, type}]
    files: dict[str, list[tuple[bytes, str, str]]] = field(default_factory=dict)  # node id -> [(data, type, name)]


# When each server this process saw down went down, and when that was last logged: a down
# server is probed every DOWN_RETRY_S by every waiting run, but logged once a minute.
_down_since: dict[str, list[float]] = {}
DOWN_LOG_EVERY_S = 60.0


def _say_down(url: str) -> None:
    now = time.monotonic()
    seen = _down_since.get(url)
    if seen is None:
        _down_since[url] = [now, now]
        log.warning("ComfyUI server is down", extra={"server": url})
    elif now - seen[1] >= DOWN_LOG_EVERY_S:
        seen[1] = now
        log.warning("ComfyUI server is still down (%.0f s)", now - seen[0], extra={"server": url})


class ComfyPool:
    """The ComfyUI servers of this worker, with health and load shared through Redis."""

    def __init__(self, urls: list[str] | tuple[str, ...], connection: redis.Redis, *, health_ttl_s: float = 10.0,
                 http_timeout_s: float = 30.0):
        self.urls = [u.rstrip("/") for u in urls]
        self.redis = connection
        self.health_ttl_s = health_ttl_s
        self.http_timeout_s = http_timeout_s

    def _key(self, kind: str, url: str) -> str:
        return f"aimg:comfy:{kind}:{url}"

    def load(self, url: str) -> int:
        return int(self.redis.zcount(self._key("load", url), time.time(), "+inf"))

    def mark_down(self, url: str) -> None:
        # Short: a restarted server is taken back within seconds, whatever the health TTL.
        self.redis.set(self._key("down", url), "1", px=int(min(self.health_ttl_s, DOWN_RETRY_S) * 1000))
        self.redis.delete(self._key("up", url))

    async def healthy(self, url: str) -> bool:
        """Whether ``url`` answers, as last seen within the health TTL; else probed now, by
        one caller at a time (the others wait for its answer instead of probing too)."""
        while True:
            down, up = self.redis.exists(self._key("down", url)), self.redis.exists(self._key("up", url))
            if down or up:
                return bool(up) and not down
            if self.redis.set(self._key("probing", url), "1", nx=True, px=int(HEALTH_TIMEOUT_S * 1000) + 500):
                break
            await asyncio.sleep(0.01)
        try:
            return await self._probe(url)
        finally:
            self.redis.delete(self._key("probing", url))

    async def _probe(self, url: str) -> bool:
        try:
            response = await shared_client(url, self.http_timeout_s).get(f"{url}/system_stats",
                                                                          timeout=HEALTH_TIMEOUT_S)
            response.raise_for_status()
        except Exception:  # noqa: BLE001 - any failure to answer is "down"
            _say_down(url)
            self.mark_down(url)
            return False
        if _down_since.pop(url, None) is not None:
            log.info("ComfyUI server is answering again", extra={"server": url})
        caps = self.capabilities(url)
        if caps is None:  # never read: routing needs it now
            await self.refresh_capabilities(url)
        elif time.time() - caps.get("at", 0) > CAPS_REFRESH_S and self.redis.set(
                self._key("caps-refresh", url), "1", nx=True, px=int(CAPS_REFRESH_S * 1000)):
            # Known but old: read again beside the run, not before it (a real server's
            # /object_info takes a second or so; what a server has rarely changes).
            task = asyncio.ensure_future(self.refresh_capabilities(url))
            _background.add(task)  # a task nothing refers to may be collected before it ends
            task.add_done_callback(_background.discard)
        self.redis.set(self._key("up", url), "1", px=int(self.health_ttl_s * 1000))
        return True

    def capabilities(self, url: str) -> dict | None:
        """What ``url`` has (node classes, model files), as last read; None if never read."""
        raw = self.redis.get(self._key("caps", url))
        return json.loads(raw) if raw else None

    async def refresh_capabilities(self, url: str) -> dict | None:
        try:
            response = await shared_client(url, self.http_timeout_s).get(f"{url}/object_info")
            response.raise_for_status()
            caps = capabilities_from(response.json())
        except Exception:  # noqa: BLE001 - an old server without it: route there as before
            log.warning("could not read /object_info", extra={"server": url})
            return None
        self.redis.set(self._key("caps", url), json.dumps(caps), ex=24 * 3600)
        return caps

    async def acquire(self, avoid: list[str] = (), needs=None) -> str | None:
        """The healthy server with the fewest runs in flight (ties at random) that has every
        node class and model file in ``needs`` (``graph_needs``); servers in ``avoid`` (those
        that failed this run) only when no other is healthy; None when none is healthy now.
        Raises ``NoServerHas`` when every server is known to lack something."""
        candidates = list(self.urls)
        random.shuffle(candidates)
        candidates.sort(key=lambda u: (u in avoid, self.load(u)))
        lacking: dict[str, list[str]] = {}
        for url in candidates:
            caps = self.capabilities(url)
            if needs and caps is not None and missing(caps, needs):
                lacking[url] = missing(caps, needs)
                continue
            if await self.healthy(url):
                caps = self.capabilities(url)
                if needs and caps is not None and missing(caps, needs):
                    lacking[url] = missing(caps, needs)
                    continue
                return url
        if lacking and len(lacking) == len(self.urls):
            gaps = list(dict.fromkeys(g for found in lacking.values() for g in found))
            raise NoServerHas("No generation server has what this workflow needs: " + ", ".join(gaps) + ".")
        return None

    # --- the line of runs waiting for a server: earliest started first --------------------

    def able(self, needs) -> list[str]:
        """The servers that may run a graph with ``needs`` (as far as is known)."""
        return [u for u in self.urls if not (needs and (caps := self.capabilities(u)) is not None and missing(caps, needs))]

    def join_line(self, urls: list[str], member: str, order: float) -> None:
        pipe = self.redis.pipeline(transaction=False)
        for url in urls:
            pipe.zadd(self._key("line", url), {member: order})
        pipe.set(self._key("waiter", member), "1", px=int(LINE_ALIVE_S * 1000))
        pipe.execute()

    def stay_in_line(self, member: str) -> None:
        self.redis.set(self._key("waiter", member), "1", px=int(LINE_ALIVE_S * 1000))

    def leave_line(self, urls: list[str], member: str) -> None:
        pipe = self.redis.pipeline(transaction=False)
        for url in urls:
            pipe.zrem(self._key("line", url), member)
        pipe.delete(self._key("waiter", member))
        pipe.execute()

    def first_in_line(self, url: str, member: str, order: float) -> bool:
        """Whether no run that started before (``order``, then id) still waits for ``url``.
        A waiter whose worker stopped looking (died) leaves the line here."""
        line = self._key("line", url)
        ahead = [(m.decode() if isinstance(m, bytes) else m, score)
                 for m, score in self.redis.zrangebyscore(line, "-inf", order, withscores=True)]
        ahead = [m for m, score in ahead if m != member and (score < order or m < member)]
        if not ahead:
            return True
        alive = self.redis.exists(*[self._key("waiter", m) for m in ahead])
        if alive:
            if alive < len(ahead):  # some lapsed: take them out (each checked alone)
                for m in ahead:
                    if not self.redis.exists(self._key("waiter", m)):
                        self.redis.zrem(line, m)
            return False
        self.redis.zrem(line, *ahead)
        return True

    async def survey(self) -> list[dict]:
        """Ask every server now (health and /object_info), then ``describe``."""
        for url in self.urls:
            self.redis.delete(self._key("up", url), self._key("down", url))
            if await self.healthy(url):
                await self.refresh_capabilities(url)
        return self.describe()

    def describe(self) -> list[dict]:
        """Each server as last seen: up/down, its node classes and model files (for ``aimg``)."""
        rows = []
        for url in self.urls:
            state = ("down" if self.redis.exists(self._key("down", url)) else
                     "up" if self.redis.exists(self._key("up", url)) else "unknown")
            rows.append({"url": url, "health": state, "load": self.load(url), "capabilities": self.capabilities(url)})
        return rows

    def lease(self, url: str, ttl_s: float) -> "_Lease":
        return _Lease(self, url, ttl_s)


class _Lease:
    """A run in flight on a server (a scored member of a sorted set, so a dead worker's
    lease simply expires)."""

    def __init__(self, pool: ComfyPool, url: str, ttl_s: float):
        self.pool, self.url, self.ttl_s, self.token = pool, url, ttl_s, uuid.uuid4().hex

    def __enter__(self):
        self.pool.redis.zadd(self.pool._key("load", self.url), {self.token: time.time() + self.ttl_s})
        return self

    def __exit__(self, *exc):
        self.pool.redis.zrem(self.pool._key("load", self.url), self.token)


ProgressFn = Callable[..., Awaitable[None]]  # (fraction, note, started=False)


@dataclass
class ComfyRun:
    """One run of ``graph`` on the pool, following it to its end.

    ``client_id`` is stable across attempts and worker restarts (the WorkflowState id), so a
    worker that takes over a run receives the prompt's messages on its own WebSocket.
    ``uploads`` are (marker, file name, bytes): sent with ``/upload/image`` first, and the
    marker replaced by the name ComfyUI gives the file. ``cancel`` is set (by a pushed
    cancel) to stop the run at once. When no server is healthy the run waits up to
    ``wait_s`` for one (``on_waiting`` tells why it does not start), and a server that
    fails the run hands it to another, or to itself once it is back. Runs waiting for a
    server take it in ``order`` (when each started: a run that was executing when its server
    died goes back before the one queued behind it). ``attempts``: the submissions the run
    has had, this one included (its claims, and the resubmissions ``on_retry`` counted); a
    server fault at ``max_attempts`` ends the run, saying so.
    """

    pool: ComfyPool
    graph: dict
    client_id: str
    timeout_s: float
    max_attempts: int
    on_progress: ProgressFn
    on_submitted: Callable[[str, str], Awaitable[None]]
    cancel: asyncio.Event
    uploads: list[tuple[str, str, bytes]] = field(default_factory=list)
    resume: tuple[str, str] | None = None  # (server, prompt_id) of an earlier attempt
    wait_s: float = 600.0
    on_waiting: Callable[[bool], Awaitable[None]] | None = None
    attempts: int = 1
    on_retry: Callable[[str, str], Awaitable[int]] | None = None  # (server, why) -> attempts now
    order: float = field(default_factory=time.time)  # the run's start, then its first submission
    on_executed: Callable[[], None] | None = None  # ComfyUI is done with it (before the files are fetched)
    _in_line: list[str] | None = None  # the servers whose line this run is in, while it waits
    _submitted: bool = False

    async def run(self) -> RunOutputs:
        if self.resume:
            outputs = await self._try_resume(*self.resume, time.monotonic() + self.timeout_s)
            if outputs is not None:
                self._executed()
                try:
                    return await fetch_files(self.pool, outputs)
                except ServerFault:
                    pass
        failed: list[str] = []
        try:
            while True:
                server = await self._wait_for_server(failed)
                try:
                    with self.pool.lease(server, self.timeout_s + 60):
                        outputs = await self._run_on(server, time.monotonic() + self.timeout_s)
                    self._executed()
                    return await fetch_files(self.pool, outputs)
                except ServerFault as exc:
                    self._leave_line()
                    log.warning("ComfyUI server failed a run: %s", exc.message, extra={"server": server})
                    self.pool.mark_down(server)
                    failed.append(server)
                    if self.attempts >= max(1, self.max_attempts):
                        raise ServerFault(
                            f"Generation stopped after {self.attempts} attempt{'s' if self.attempts != 1 else ''}: "
                            f"the generation server failed each time (last: {exc.message}). Please try again.") from None
                    if self.on_retry is not None:
                        self.attempts = await self.on_retry(server, exc.message)
                    else:
                        self.attempts += 1
        finally:
            self._leave_line()

    def _executed(self) -> None:
        if self.on_executed is not None:
            self.on_executed()

    def _leave_line(self) -> None:
        """Out of the line (once submitted, or failed): the next run may take the server."""
        if self._in_line is not None:
            urls, self._in_line = self._in_line, None
            self.pool.leave_line(urls, self.client_id)

    async def _wait_for_server(self, failed: list[str]) -> str:
        """A healthy server whose turn is this run's. The run stays in line until it has
        submitted (``_run_on`` leaves it), so the run behind it cannot overtake it."""
        needs = graph_needs(self.graph)
        server = await self.pool.acquire(failed, needs)
        if server is not None and self.pool.first_in_line(server, self.client_id, self.order):
            return server
        self._in_line = self.pool.able(needs) or list(self.pool.urls)
        self.pool.join_line(self._in_line, self.client_id, self.order)
        announced = server is None  # only waiting for a turn: a moment, not worth a status
        if announced and self.on_waiting:
            await self.on_waiting(True)
        deadline = time.monotonic() + self.wait_s
        while True:
            if self.cancel.is_set():
                raise Cancelled("Cancelled.")
            if time.monotonic() >= deadline:
                raise ServerFault(f"No generation server became available within {self.wait_s:g} s. "
                                  "Please try again later.")
            try:
                await asyncio.wait_for(self.cancel.wait(), WAIT_POLL_S)
            except asyncio.TimeoutError:
                pass
            self.pool.stay_in_line(self.client_id)
            server = await self.pool.acquire(failed, needs)
            if server is not None and self.pool.first_in_line(server, self.client_id, self.order):
                break
            if server is None and not announced and self.on_waiting:
                announced = True
                await self.on_waiting(True)
        if announced and self.on_waiting:
            await self.on_waiting(False)
        return server

    async def _try_resume(self, server: str, prompt_id: str, deadline: float) -> RunOutputs | None:
        """An earlier attempt submitted ``prompt_id`` on ``server``: use its outputs if it
        finished, follow it if it still runs; None when it is gone (then submit again)."""
        try:
            client = AimgComfyClient(server, shared_client(server, self.pool.http_timeout_s))
            client.client_id = self.client_id
            if not await self._known(client, prompt_id):
                return None
            await self.on_progress(0.0, f"resuming prompt {prompt_id}")
            async with websockets.connect(self._ws_url(client), max_size=2**26, open_timeout=10) as ws:
                return await self._follow(client, ws, server, prompt_id, deadline, resumed=True)
        except (ServerFault, httpx.HTTPError, OSError, websockets.WebSocketException):
            return None

    async def _known(self, client: AimgComfyClient, prompt_id: str) -> bool:
        history = await client.get_history(prompt_id)
        if prompt_id in history:
            return history[prompt_id].get("status", {}).get("status_str") == "success"
        queue = await client.get_queue()
        return any(e.prompt_id == prompt_id for e in queue.pending + queue.running)

    def _ws_url(self, client: AimgComfyClient) -> str:
        scheme = "wss" if client.comfy_url.scheme == "https" else "ws"
        return f"{scheme}://{client.comfy_url.netloc}/ws?clientId={self.client_id}"

    async def _run_on(self, server: str, deadline: float) -> RunOutputs:
        try:
            client = AimgComfyClient(server, shared_client(server, self.pool.http_timeout_s))
            client.client_id = self.client_id
            graph = self.graph
            if self.uploads:
                graph = await self._upload(client, graph)
            # Connect first: messages of a fast prompt may come before POST /prompt returns.
            async with websockets.connect(self._ws_url(client), max_size=2**26, open_timeout=10) as ws:
                sent_at = time.time()  # before the request: two runs' answers may come back in either order
                try:
                    submitted = await client.submit_workflow(graph, return_future=False)
                except httpx.HTTPStatusError as exc:
                    if exc.response.status_code == 400:
                        raise Rejected(rejection_message(exc.response)) from None
                    raise ServerFault(f"ComfyUI answered {exc.response.status_code}") from None
                if not self._submitted:  # its place among waiting runs: when it first entered ComfyUI's queue
                    self._submitted, self.order = True, sent_at
                self._leave_line()  # in ComfyUI's queue now, in turn: the next waiting run may go
                await self.on_submitted(server, submitted.prompt_id)
                return await self._follow(client, ws, server, submitted.prompt_id, deadline)
        except (httpx.TransportError, OSError, websockets.WebSocketException, asyncio.TimeoutError) as exc:
            raise ServerFault(f"lost contact with ComfyUI: {type(exc).__name__}") from None

    async def _upload(self, client: AimgComfyClient, graph: dict) -> dict:
        from PIL import Image
        import io

        from aimg_app.services.graph_render import substitute

        markers = {}
        for marker, name, data in self.uploads:
            with Image.open(io.BytesIO(data)) as image:
                image.load()
                uploaded = await client.upload_image(name, image, subfolder="aimg")
            markers[marker] = f"{uploaded.subfolder}/{uploaded.name}" if uploaded.subfolder else uploaded.name
        return substitute(graph, markers)

    async def _follow(self, client: AimgComfyClient, ws, server: str, prompt_id: str, deadline: float,
                      resumed: bool = False) -> RunOutputs:
        cancelled = asyncio.ensure_future(self.cancel.wait())
        receiving: asyncio.Future | None = None
        images: dict[str, list[dict]] = {}  # from ``executed``: no history round trip when all came
        executing = False
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    await self._interrupt(client, prompt_id, executing)
                    raise TimedOut(f"Generation timed out after {self.timeout_s:g} s and was stopped.")
                if self.cancel.is_set():
                    if getattr(self, "abandoned", False):
                        # The run is no longer ours (handed back, or taken over): the prompt goes
                        # on for the worker that holds the run now.
                        raise Cancelled("The run was handed to another worker.")
                    await self._interrupt(client, prompt_id, executing)
                    raise Cancelled("Cancelled.")
                if receiving is None:
                    receiving = asyncio.ensure_future(ws.recv())
                done, _ = await asyncio.wait({receiving, cancelled}, timeout=min(POLL_S, remaining),
                                             return_when=asyncio.FIRST_COMPLETED)
                if receiving not in done:
                    if not done and await self._finished(client, prompt_id):
                        return await self._outputs(client, server, prompt_id)
                    continue
                try:
                    raw = receiving.result()
                except websockets.ConnectionClosed:
                    raise ServerFault("ComfyUI closed the connection") from None
                finally:
                    receiving = None
                if not isinstance(raw, str):
                    continue  # binary previews
                message = json.loads(raw)
                kind, data = message.get("type"), message.get("data") or {}
                if data.get("prompt_id") not in (None, prompt_id):
                    continue
                if kind == "execution_start":
                    executing = True
                    await self.on_progress(0.0, "started", True)
                elif kind == "progress" and data.get("max"):
                    await self.on_progress(float(data["value"]) / float(data["max"]), None)
                elif kind == "executed" and data.get("node") is not None:
                    images[str(data["node"])] = list((data.get("output") or {}).get("images") or [])
                elif kind == "execution_error":
                    raise RunFailed(f"Generation failed: {data.get('exception_message') or 'error'} "
                                    f"(in {data.get('node_type', 'a node')}).")
                elif kind == "execution_interrupted":
                    if self.cancel.is_set():
                        raise Cancelled("Cancelled.")
                    raise ServerFault("the prompt was interrupted on ComfyUI")
                elif kind == "execution_success" or (kind == "executing" and data.get("node") is None
                                                     and data.get("prompt_id") == prompt_id):
                    if images and not resumed:  # a follower that came late may have missed some
                        return RunOutputs(server, prompt_id, images)
                    return await self._outputs(client, server, prompt_id)
        finally:
            cancelled.cancel()
            if receiving is not None:
                receiving.cancel()

    async def _finished(self, client: AimgComfyClient, prompt_id: str) -> bool:
        """From the history: True when done; raises when it failed or was forgotten."""
        history = await client.get_history(prompt_id)
        entry = history.get(prompt_id)
        if entry is not None:
            status = entry.get("status") or {}
            if status.get("status_str") == "success" or status.get("completed"):
                return True
            for kind, data in status.get("messages", []):
                if kind == "execution_error":
                    raise RunFailed(f"Generation failed: {data.get('exception_message') or 'error'}.")
            if self.cancel.is_set():
                raise Cancelled("Cancelled.")
            raise ServerFault("the prompt ended without outputs")
        queue = await client.get_queue()
        if any(e.prompt_id == prompt_id for e in queue.pending + queue.running):
            return False
        raise ServerFault("ComfyUI forgot the prompt (restarted?)")

    async def _outputs(self, client: AimgComfyClient, server: str, prompt_id: str) -> RunOutputs:
        for _ in range(20):  # the history is written right after the last message
            history = await client.get_history(prompt_id)
            if prompt_id in history:
                outputs = history[prompt_id].get("outputs") or {}
                return RunOutputs(server, prompt_id, {nid: list(out.get("images") or [])
                                                      for nid, out in outputs.items()})
            await asyncio.sleep(0.05)
        raise ServerFault("ComfyUI has no history for the finished prompt")

    async def _interrupt(self, client: AimgComfyClient, prompt_id: str, running: bool = False) -> None:
        try:
            await client.interrupt_prompt(prompt_id, running)
        except Exception:  # noqa: BLE001 - best effort; the server may be gone
            log.warning("could not interrupt a prompt", extra={"promptId": prompt_id})


async def fetch_files(pool: ComfyPool, outputs: RunOutputs) -> RunOutputs:
    """Download the bytes of every output image of ``outputs`` (``/view``)."""
    try:
        client = AimgComfyClient(outputs.server, shared_client(outputs.server, pool.http_timeout_s))
        for node_id, entries in outputs.images.items():
            files = outputs.files.setdefault(node_id, [])
            for entry in entries:
                data, content_type = await client.view_bytes(entry["filename"], entry.get("subfolder", ""),
                                                             entry.get("type", "output"))
                files.append((data, content_type, entry["filename"]))
    except (httpx.HTTPError, OSError) as exc:
        raise ServerFault(f"lost contact with ComfyUI while downloading: {type(exc).__name__}") from None
    return outputs


def interrupt_now(server: str, prompt_id: str) -> None:
    """Synchronous best-effort interrupt (used when the job itself is being killed)."""
    async def _go():
        async with http_client(timeout=5) as http:
            await AimgComfyClient(server, http).interrupt_prompt(prompt_id)
    try:
        asyncio.run(_go())
    except Exception:  # noqa: BLE001
        log.warning("could not interrupt a prompt", extra={"promptId": prompt_id})

