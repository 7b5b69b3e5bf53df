"""A fake ComfyUI server: ComfyUI's own HTTP and WebSocket protocol, without a GPU.

It follows what a real ComfyUI 0.3.x answers (see the project's COMFYUI-PROTOCOL notes), so
the worker code that talks to it is the code that talks to a real GPU server: ``POST
/prompt`` validates the graph and answers ComfyUI's error format, one prompt runs at a
time, ``/ws`` streams ``status``/``execution_start``/``executing``/``progress``/``executed``/
``execution_success``/``execution_error``/``execution_interrupted``, outputs are real PNG
(and animated WEBP) files rendered with Pillow and served by ``/view``.

Knobs for tests and benchmarks: ``render_seconds`` (the time one sampler run takes),
``inject(kind, count)`` for failures (``execution_error``, ``hang``, ``crash``, ``reject``), and
``restart()`` (a restarted ComfyUI forgets every prompt). The same knobs are reachable over
HTTP under ``/fake/...`` when it runs as ``aimg fake-comfyui``.
"""
from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import sys
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web
from PIL import Image, ImageDraw

log = logging.getLogger("aimg.fake_comfyui")

SAMPLERS = ["euler", "euler_ancestral", "heun", "dpm_2", "dpm_2_ancestral", "lms", "dpmpp_2s_ancestral",
            "dpmpp_sde", "dpmpp_2m", "dpmpp_2m_sde", "dpmpp_3m_sde", "ddim", "uni_pc"]
SCHEDULERS = ["normal", "karras", "exponential", "sgm_uniform", "simple", "ddim_uniform"]
# What a fake server "has installed" unless told otherwise: the files the default templates name.
DEFAULT_MODEL_FILES = (
    "f222.safetensors", "v1-5-pruned-emaonly.safetensors", "realistic-vision-v5.safetensors",
    "sd_xl_base_1.0.safetensors", "juggernaut-xl-v9.safetensors", "detail-tweaker-xl.safetensors",
    "film-grain-xl.safetensors", "control_v11p_sd15_depth.safetensors", "control_v11p_sd15_openpose.safetensors",
    "a.safetensors", "b.safetensors",
)

# class_type -> (required inputs, optional inputs, is an output node). An input spec is
# (type, options); "*_FILE" types are combos over installed model files or uploaded inputs.
_INT_MAX = 0xFFFFFFFFFFFFFFFF
NODE_CLASSES: dict[str, tuple[dict[str, tuple], dict[str, tuple], bool]] = {
    "CheckpointLoaderSimple": ({"ckpt_name": ("MODEL_FILE", {})}, {}, False),
    "LoraLoader": ({"model": ("MODEL", {}), "clip": ("CLIP", {}), "lora_name": ("MODEL_FILE", {}),
                    "strength_model": ("FLOAT", {"min": -100.0, "max": 100.0}),
                    "strength_clip": ("FLOAT", {"min": -100.0, "max": 100.0})}, {}, False),
    "CLIPTextEncode": ({"text": ("STRING", {}), "clip": ("CLIP", {})}, {}, False),
    "EmptyLatentImage": ({"width": ("INT", {"min": 16, "max": 16384}), "height": ("INT", {"min": 16, "max": 16384}),
                          "batch_size": ("INT", {"min": 1, "max": 4096})}, {}, False),
    "EmptyImage": ({"width": ("INT", {"min": 1, "max": 16384}), "height": ("INT", {"min": 1, "max": 16384}),
                    "batch_size": ("INT", {"min": 1, "max": 4096}), "color": ("INT", {"min": 0, "max": 0xFFFFFF})},
                   {}, False),
    "KSampler": ({"model": ("MODEL", {}), "seed": ("INT", {"min": 0, "max": _INT_MAX}),
                  "steps": ("INT", {"min": 1, "max": 10000}), "cfg": ("FLOAT", {"min": 0.0, "max": 100.0}),
                  "sampler_name": ("COMBO", {"values": SAMPLERS}), "scheduler": ("COMBO", {"values": SCHEDULERS}),
                  "positive": ("CONDITIONING", {}), "negative": ("CONDITIONING", {}),
                  "latent_image": ("LATENT", {}), "denoise": ("FLOAT", {"min": 0.0, "max": 1.0})}, {}, False),
    "VAEDecode": ({"samples": ("LATENT", {}), "vae": ("VAE", {})}, {}, False),
    "VAEEncode": ({"pixels": ("IMAGE", {}), "vae": ("VAE", {})}, {}, False),
    "LoadImage": ({"image": ("INPUT_FILE", {})}, {}, False),
    "ImageScale": ({"image": ("IMAGE", {}), "upscale_method": ("COMBO", {"values": ["nearest-exact", "bilinear", "area", "bicubic", "lanczos"]}),
                    "width": ("INT", {"min": 0, "max": 16384}), "height": ("INT", {"min": 0, "max": 16384}),
                    "crop": ("COMBO", {"values": ["disabled", "center"]})}, {}, False),
    "RepeatLatentBatch": ({"samples": ("LATENT", {}), "amount": ("INT", {"min": 1, "max": 64})}, {}, False),
    "ControlNetLoader": ({"control_net_name": ("MODEL_FILE", {})}, {}, False),
    "ControlNetApply": ({"conditioning": ("CONDITIONING", {}), "control_net": ("CONTROL_NET", {}),
                         "image": ("IMAGE", {}), "strength": ("FLOAT", {"min": 0.0, "max": 10.0})}, {}, False),
    "SaveImage": ({"images": ("IMAGE", {}), "filename_prefix": ("STRING", {})}, {}, True),
    "PreviewImage": ({"images": ("IMAGE", {})}, {}, True),
    "SaveAnimatedWEBP": ({"images": ("IMAGE", {}), "filename_prefix": ("STRING", {}),
                          "fps": ("FLOAT", {"min": 0.01, "max": 1000.0}), "lossless": ("BOOLEAN", {}),
                          "quality": ("INT", {"min": 0, "max": 100}),
                          "method": ("COMBO", {"values": ["default", "fastest", "slowest"]})}, {}, True),
}
# what each node class produces (used to check links)
NODE_OUTPUTS = {
    "CheckpointLoaderSimple": ["MODEL", "CLIP", "VAE"], "LoraLoader": ["MODEL", "CLIP"],
    "CLIPTextEncode": ["CONDITIONING"], "EmptyLatentImage": ["LATENT"], "EmptyImage": ["IMAGE"],
    "KSampler": ["LATENT"], "VAEDecode": ["IMAGE"], "VAEEncode": ["LATENT"], "LoadImage": ["IMAGE", "MASK"],
    "ImageScale": ["IMAGE"], "RepeatLatentBatch": ["LATENT"], "ControlNetLoader": ["CONTROL_NET"],
    "ControlNetApply": ["CONDITIONING"], "SaveImage": [], "PreviewImage": [], "SaveAnimatedWEBP": [],
}


class _Interrupted(Exception):
    pass


class _ExecutionFailed(Exception):
    def __init__(self, node_id: str, node_type: str, message: str, exc_type: str = "RuntimeError"):
        super().__init__(message)
        self.node_id, self.node_type, self.exc_type = node_id, node_type, exc_type


@dataclass
class _Prompt:
    number: int
    prompt_id: str
    graph: dict
    extra_data: dict
    outputs: list[str]

    def entry(self) -> list:
        return [self.number, self.prompt_id, self.graph, self.extra_data, self.outputs]


@dataclass
class FakeStats:
    """What the fake saw: for benchmarks (throughput, idle gaps between prompts)."""

    prompts_accepted: int = 0
    prompts_rejected: int = 0
    executed: int = 0
    runs: list[tuple[float, float]] = field(default_factory=list)  # (start, end) monotonic times
    accepted_at: dict[str, float] = field(default_factory=dict)  # prompt id -> wall time of POST /prompt
    finished_at: dict[str, float] = field(default_factory=dict)  # prompt id -> wall time its run ended
    deleted: list[tuple[float, str]] = field(default_factory=list)  # (wall time, prompt id) taken off the queue
    interrupted: list[tuple[float, str]] = field(default_factory=list)  # (wall time, prompt id) interrupted

    def idle_gaps(self) -> list[float]:
        return [max(0.0, b[0] - a[1]) for a, b in zip(self.runs, self.runs[1:])]

    def as_dict(self) -> dict:
        gaps = self.idle_gaps()
        busy = sum(end - start for start, end in self.runs)
        return {"promptsAccepted": self.prompts_accepted, "promptsRejected": self.prompts_rejected,
                "executed": self.executed, "busySeconds": busy,
                "meanIdleGapSeconds": (sum(gaps) / len(gaps)) if gaps else None, "idleGaps": len(gaps)}


class FakeComfyUI:
    """One fake ComfyUI server. ``start()`` runs it on a thread of its own (tests);
    ``serve_forever()`` runs it in the calling thread (the CLI)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, render_seconds: float = 0.05,
                 model_files: list[str] | None = None):
        self.host, self.port = host, port
        self.render_seconds = render_seconds
        self.model_files = list(DEFAULT_MODEL_FILES if model_files is None else model_files)
        self.stats = FakeStats()
        self._failures: deque[dict] = deque()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._reset_state()

    # -- state -------------------------------------------------------------------------
    def _reset_state(self) -> None:
        self.history: dict[str, dict] = {}
        self.outputs: dict[tuple[str, str, str], bytes] = {}  # (type, subfolder, filename) -> bytes
        self.inputs: dict[str, bytes] = {}
        self.pending: list[_Prompt] = []
        self.running: _Prompt | None = None
        self._number = 0
        self._counter = 0
        self._interrupt = False
        self._sockets: dict[str, set[web.WebSocketResponse]] = {}
        self._queue_event: asyncio.Event | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def inject(self, kind: str, count: int = 1, **options: Any) -> None:
        """Make the next ``count`` prompts misbehave: ``execution_error`` (the sampler raises),
        ``hang`` (never finishes until interrupted), ``crash`` (the server stops mid-run),
        ``reject`` (``POST /prompt`` answers a validation error)."""
        if kind not in {"execution_error", "hang", "crash", "reject"}:
            raise ValueError(f"unknown failure kind {kind!r}")
        with self._lock:
            for _ in range(count):
                self._failures.append({"kind": kind, **options})

    def _take_failure(self, kinds: set[str]) -> dict | None:
        with self._lock:
            if self._failures and self._failures[0]["kind"] in kinds:
                return self._failures.popleft()
        return None

    def restart(self) -> None:
        """Forget every prompt, output and upload, as a restarted ComfyUI does."""
        def _do():
            for sockets in self._sockets.values():
                for ws in list(sockets):
                    asyncio.ensure_future(ws.close())
            self._executor.cancel()
            self._reset_state()
            self._queue_event = asyncio.Event()
            self._executor = asyncio.ensure_future(self._execute_loop())
        self._call(_do)

    # -- lifecycle ---------------------------------------------------------------------
    def _app(self) -> web.Application:
        app = web.Application(client_max_size=256 * 1024 * 1024)
        r = app.router
        r.add_get("/", self._index)
        r.add_get("/ws", self._ws)
        r.add_post("/prompt", self._post_prompt)
        r.add_get("/prompt", self._get_prompt)
        r.add_get("/queue", self._get_queue)
        r.add_post("/queue", self._post_queue)
        r.add_get("/history", self._get_history)
        r.add_get("/history/{prompt_id}", self._get_history_one)
        r.add_post("/history", self._post_history)
        r.add_get("/view", self._view)
        r.add_post("/interrupt", self._interrupt_handler)
        r.add_get("/system_stats", self._system_stats)
        r.add_post("/upload/image", self._upload_image)
        r.add_get("/object_info", self._object_info)
        r.add_post("/fake/inject", self._fake_inject)
        r.add_post("/fake/restart", self._fake_restart)
        r.add_get("/fake/stats", self._fake_stats)
        return app

    async def _start_async(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue_event = asyncio.Event()
        self._runner = web.AppRunner(self._app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        self._executor = asyncio.ensure_future(self._execute_loop())

    async def _stop_async(self) -> None:
        self._executor.cancel()
        for sockets in self._sockets.values():
            for ws in list(sockets):
                await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def start(self) -> "FakeComfyUI":
        """Run on a background thread; returns once it listens (``url`` is then valid)."""
        def _run():
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            loop.run_until_complete(self._start_async())
            self._started.set()
            loop.run_forever()
            loop.run_until_complete(self._stop_async())
            loop.close()

        self._started.clear()
        self._thread = threading.Thread(target=_run, name=f"fake-comfyui-{self.port}", daemon=True)
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("the fake ComfyUI did not start")
        return self

    def stop(self) -> None:
        """Stop listening and drop every connection (a dead server, to the workers)."""
        if self._thread is not None:
            if self._thread.is_alive() and self._loop is not None and not self._loop.is_closed():
                try:
                    self._loop.call_soon_threadsafe(self._loop.stop)
                except RuntimeError:  # it stopped on its own meanwhile (a crash)
                    pass
            self._thread.join(10)
            self._thread = None

    def serve_forever(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        loop.run_until_complete(self._start_async())
        print(f"fake ComfyUI listening on {self.url}", file=sys.stderr, flush=True)
        try:
            loop.run_forever()
        except KeyboardInterrupt:
            pass
        finally:
            loop.run_until_complete(self._stop_async())
            loop.close()

    def _call(self, fn) -> None:
        if self._loop is None:
            fn()
            return
        done = threading.Event()

        def _wrapped():
            try:
                fn()
            finally:
                done.set()
        self._loop.call_soon_threadsafe(_wrapped)
        done.wait(10)

    def __enter__(self) -> "FakeComfyUI":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- websocket ---------------------------------------------------------------------
    def _status_message(self, sid: str | None = None) -> dict:
        remaining = len(self.pending) + (1 if self.running else 0)
        data: dict[str, Any] = {"status": {"exec_info": {"queue_remaining": remaining}}}
        if sid:
            data["sid"] = sid
        return {"type": "status", "data": data}

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=None)
        await ws.prepare(request)
        sid = request.query.get("clientId") or uuid.uuid4().hex
        self._sockets.setdefault(sid, set()).add(ws)
        try:
            await ws.send_json(self._status_message(sid))
            async for msg in ws:
                if msg.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                    break
        finally:
            self._sockets.get(sid, set()).discard(ws)
        return ws

    async def _send(self, event: str, data: dict, client_id: str | None) -> None:
        targets = self._sockets.get(client_id, set()) if client_id else set()
        for ws in list(targets):
            try:
                await ws.send_json({"type": event, "data": data})
            except (ConnectionError, RuntimeError):
                targets.discard(ws)

    async def _broadcast_status(self) -> None:
        message = self._status_message()
        for sockets in list(self._sockets.values()):
            for ws in list(sockets):
                try:
                    await ws.send_json(message)
                except (ConnectionError, RuntimeError):
                    sockets.discard(ws)

    # -- HTTP: prompts -----------------------------------------------------------------
    async def _index(self, request: web.Request) -> web.Response:
        return web.Response(text="<html><body>fake ComfyUI</body></html>", content_type="text/html")

    async def _post_prompt(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            return web.Response(status=500, text="500 Internal Server Error\n\nServer got itself in trouble")
        if not isinstance(body, dict) or "prompt" not in body:
            return self._rejected({"type": "no_prompt", "message": "No prompt provided", "details": "No prompt provided",
                                   "extra_info": {}}, [])
        graph = body["prompt"]
        failure = self._take_failure({"reject"})
        if failure is not None:
            return self._rejected({"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation",
                                   "details": "", "extra_info": {}},
                                  {"1": {"errors": [{"type": "custom_validation_failed",
                                                     "message": failure.get("message", "Injected validation failure"),
                                                     "details": "", "extra_info": {}}],
                                         "dependent_outputs": [], "class_type": "Injected"}})
        error, node_errors, outputs = self._validate(graph)
        if error is not None:
            return self._rejected(error, node_errors)
        self._number += 1
        prompt_id = str(body.get("prompt_id") or uuid.uuid4())
        extra = dict(body.get("extra_data") or {})
        if body.get("client_id"):
            extra["client_id"] = body["client_id"]
        self.pending.append(_Prompt(self._number, prompt_id, graph, extra, outputs))
        self.stats.prompts_accepted += 1
        self.stats.accepted_at[prompt_id] = time.time()
        self._queue_event.set()
        await self._broadcast_status()
        return web.json_response({"prompt_id": prompt_id, "number": self._number, "node_errors": {}})

    def _rejected(self, error: dict, node_errors) -> web.Response:
        self.stats.prompts_rejected += 1
        return web.json_response({"error": error, "node_errors": node_errors}, status=400)

    async def _get_prompt(self, request: web.Request) -> web.Response:
        return web.json_response(self._status_message()["data"] | {})

    async def _get_queue(self, request: web.Request) -> web.Response:
        return web.json_response({"queue_running": [self.running.entry()] if self.running else [],
                                  "queue_pending": [p.entry() for p in self.pending]})

    async def _post_queue(self, request: web.Request) -> web.Response:
        # Like ComfyUI: only "clear" and "delete" are read; any other key is ignored.
        body = await request.json()
        if body.get("clear"):
            self.pending.clear()
        for prompt_id in body.get("delete", []) or []:
            if any(p.prompt_id == prompt_id for p in self.pending):
                self.stats.deleted.append((time.time(), prompt_id))
            self.pending = [p for p in self.pending if p.prompt_id != prompt_id]
        await self._broadcast_status()
        return web.Response(status=200)

    async def _get_history(self, request: web.Request) -> web.Response:
        items = list(self.history.items())
        max_items = request.query.get("max_items")
        if max_items and max_items.isdigit():
            items = items[-int(max_items):]
        return web.json_response(dict(items))

    async def _get_history_one(self, request: web.Request) -> web.Response:
        prompt_id = request.match_info["prompt_id"]
        entry = self.history.get(prompt_id)
        return web.json_response({prompt_id: entry} if entry else {})

    async def _post_history(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("clear"):
            self.history.clear()
        for prompt_id in body.get("delete", []) or []:
            self.history.pop(prompt_id, None)
        return web.Response(status=200)

    async def _view(self, request: web.Request) -> web.Response:
        q = request.query
        key = (q.get("type", "output"), q.get("subfolder", ""), q.get("filename", ""))
        data = self.inputs.get(key[2]) if key[0] == "input" else self.outputs.get(key)
        if data is None:
            return web.Response(status=404)
        content_type = "image/webp" if key[2].endswith(".webp") else "image/png"
        return web.Response(body=data, content_type=content_type,
                            headers={"Content-Disposition": f'filename="{key[2]}"'})

    async def _interrupt_handler(self, request: web.Request) -> web.Response:
        prompt_id = None
        if request.can_read_body:
            try:
                prompt_id = (await request.json()).get("prompt_id")
            except (ValueError, AttributeError):
                prompt_id = None
        if self.running is not None and (prompt_id is None or prompt_id == self.running.prompt_id):
            self._interrupt = True
            self.stats.interrupted.append((time.time(), self.running.prompt_id))
        return web.Response(status=200)

    async def _system_stats(self, request: web.Request) -> web.Response:
        return web.json_response({
            "system": {"os": "posix", "ram_total": 16 * 2**30, "ram_free": 12 * 2**30, "comfyui_version": "0.3.64",
                       "required_frontend_version": "1.27.10", "python_version": sys.version,
                       "pytorch_version": "2.8.0+cpu (fake)", "embedded_python": False, "argv": ["main.py", "--cpu"]},
            "devices": [{"name": "cpu", "type": "cpu", "index": None, "vram_total": 16 * 2**30,
                         "vram_free": 12 * 2**30, "torch_vram_total": 16 * 2**30, "torch_vram_free": 12 * 2**30}],
        })

    async def _upload_image(self, request: web.Request) -> web.Response:
        form = await request.post()
        upload = form.get("image")
        if upload is None or not hasattr(upload, "file"):
            return web.Response(status=400)
        name = upload.filename or f"upload-{uuid.uuid4().hex}.png"
        subfolder = str(form.get("subfolder") or "")
        full = f"{subfolder}/{name}" if subfolder else name
        data = upload.file.read()
        try:
            Image.open(io.BytesIO(data)).verify()
        except Exception:  # noqa: BLE001 - ComfyUI answers 400 for what it cannot open
            return web.Response(status=400)
        self.inputs[full] = data
        return web.json_response({"name": name, "subfolder": subfolder, "type": str(form.get("type") or "input")})

    async def _object_info(self, request: web.Request) -> web.Response:
        def spec(kind: str, opts: dict) -> list:
            # As ComfyUI: a combo input is [list of choices, config]; model inputs list the files.
            if kind == "MODEL_FILE":
                return [list(self.model_files), {}]
            if kind == "INPUT_FILE":
                return [sorted(self.inputs), {"image_upload": True}]
            if kind == "COMBO":
                return [list(opts["values"]), {}]
            return [kind, opts]

        info = {}
        for name, (required, optional, is_output) in NODE_CLASSES.items():
            info[name] = {"input": {"required": {k: spec(*v) for k, v in required.items()}},
                          "output": NODE_OUTPUTS[name], "output_node": is_output, "name": name}
        return web.json_response(info)

    async def _fake_inject(self, request: web.Request) -> web.Response:
        body = await request.json()
        try:
            self.inject(body.get("kind", ""), int(body.get("count", 1)),
                        **{k: v for k, v in body.items() if k not in {"kind", "count"}})
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({"queued_failures": len(self._failures)})

    async def _fake_restart(self, request: web.Request) -> web.Response:
        self._reset_state()
        self._queue_event = asyncio.Event()
        self._executor.cancel()
        self._executor = asyncio.ensure_future(self._execute_loop())
        return web.json_response({"restarted": True})

    async def _fake_stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats.as_dict())

    # -- validation (ComfyUI's error format) -------------------------------------------
    def _model_file_ok(self, value: Any) -> bool:
        return isinstance(value, str) and value in self.model_files

    def _validate(self, graph: Any) -> tuple[dict | None, Any, list[str]]:
        if not isinstance(graph, dict):
            return ({"type": "invalid_prompt", "message": "Cannot execute because the prompt is not an object.",
                     "details": "", "extra_info": {}}, {}, [])
        for node_id, node in graph.items():
            class_type = node.get("class_type") if isinstance(node, dict) else None
            if class_type is None:
                return ({"type": "invalid_prompt",
                         "message": "Cannot execute because a node is missing the class_type property.",
                         "details": f"Node ID '#{node_id}'", "extra_info": {}}, {}, [])
            if class_type not in NODE_CLASSES:
                return ({"type": "invalid_prompt", "message": f"Cannot execute because node {class_type} does not exist.",
                         "details": f"Node ID '#{node_id}'", "extra_info": {}}, {}, [])
        outputs = [nid for nid, node in graph.items() if NODE_CLASSES[node["class_type"]][2]]
        if not outputs:
            return ({"type": "prompt_no_outputs", "message": "Prompt has no outputs", "details": "", "extra_info": {}},
                    [], [])
        node_errors: dict[str, dict] = {}
        for out in outputs:
            for nid in self._ancestors(graph, out):
                errors = self._validate_node(graph, nid)
                if errors:
                    entry = node_errors.setdefault(nid, {"errors": errors, "dependent_outputs": [],
                                                         "class_type": graph[nid]["class_type"]})
                    if out not in entry["dependent_outputs"]:
                        entry["dependent_outputs"].append(out)
        if node_errors:
            return ({"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation",
                     "details": "", "extra_info": {}}, node_errors, [])
        return None, {}, outputs

    def _ancestors(self, graph: dict, start: str) -> list[str]:
        seen, order, stack = set(), [], [start]
        while stack:
            nid = stack.pop()
            if nid in seen or nid not in graph:
                continue
            seen.add(nid)
            order.append(nid)
            for value in (graph[nid].get("inputs") or {}).values():
                if _is_link(value):
                    stack.append(str(value[0]))
        return order

    def _validate_node(self, graph: dict, nid: str) -> list[dict]:
        node = graph[nid]
        required, _optional, _out = NODE_CLASSES[node["class_type"]]
        inputs = node.get("inputs") or {}
        errors = []
        for name, (kind, opts) in required.items():
            config = [kind, opts]
            if name not in inputs:
                errors.append({"type": "required_input_missing", "message": "Required input is missing",
                               "details": name, "extra_info": {"input_name": name}})
                continue
            value = inputs[name]
            if _is_link(value):
                source = str(value[0])
                if source not in graph:
                    errors.append({"type": "exception_during_validation", "message": "Exception when validating node",
                                   "details": f"'{source}'", "extra_info": {"input_name": name, "input_config": config,
                                                                            "received_value": value}})
                    continue
                produced = NODE_OUTPUTS[graph[source]["class_type"]]
                index = value[1] if isinstance(value[1], int) else -1
                if index < 0 or index >= len(produced) or (kind in NODE_OUTPUTS_TYPES and produced[index] != kind):
                    got = produced[index] if 0 <= index < len(produced) else "?"
                    errors.append({"type": "return_type_mismatch", "message": "Return type mismatch between linked nodes",
                                   "details": f"{name}, received_type({got}) mismatch input_type({kind})",
                                   "extra_info": {"input_name": name, "input_config": config, "received_type": got,
                                                  "linked_node": value}})
                continue
            error = self._check_value(name, kind, opts, value)
            if error:
                error["extra_info"] = {"input_name": name, "input_config": config, "received_value": value}
                errors.append(error)
        return errors

    def _check_value(self, name: str, kind: str, opts: dict, value: Any) -> dict | None:
        if kind in NODE_OUTPUTS_TYPES:  # a link was required, a literal was given
            return {"type": "invalid_input_type", "message": f"Failed to convert an input value to a {kind} value",
                    "details": f"{name}, {value}"}
        if kind in ("INT", "FLOAT"):
            try:
                if isinstance(value, bool) or value is None:
                    raise ValueError
                number = int(value) if kind == "INT" else float(value)
            except (TypeError, ValueError):
                return {"type": "invalid_input_type", "message": f"Failed to convert an input value to a {kind} value",
                        "details": f"{name}, {value}, invalid literal"}
            if "min" in opts and number < opts["min"]:
                return {"type": "value_smaller_than_min", "message": f"Value {number} smaller than min of {opts['min']}",
                        "details": name}
            if "max" in opts and number > opts["max"]:
                return {"type": "value_bigger_than_max", "message": f"Value {number} bigger than max of {opts['max']}",
                        "details": name}
            return None
        if kind == "STRING":
            if not isinstance(value, str):
                return {"type": "invalid_input_type", "message": "Failed to convert an input value to a STRING value",
                        "details": f"{name}, {value}"}
            return None
        if kind == "BOOLEAN":
            return None if isinstance(value, bool) else {
                "type": "invalid_input_type", "message": "Failed to convert an input value to a BOOLEAN value",
                "details": f"{name}, {value}"}
        if kind == "COMBO" and value not in opts["values"]:
            return {"type": "value_not_in_list", "message": "Value not in list",
                    "details": f"{name}: '{value}' not in {opts['values']}"}
        if kind == "MODEL_FILE" and not self._model_file_ok(value):
            return {"type": "value_not_in_list", "message": "Value not in list",
                    "details": f"{name}: '{value}' not in {self.model_files}"}
        if kind == "INPUT_FILE" and value not in self.inputs:
            return {"type": "value_not_in_list", "message": "Value not in list",
                    "details": f"{name}: '{value}' not in {sorted(self.inputs)[:20]}"}
        return None

    # -- execution ---------------------------------------------------------------------
    async def _execute_loop(self) -> None:
        while True:
            while not self.pending:
                self._queue_event.clear()
                await self._queue_event.wait()
            prompt = self.pending.pop(0)
            self.running = prompt
            self._interrupt = False
            started = time.monotonic()
            try:
                await self._execute(prompt)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a fake bug must not stop the server
                log.exception("fake ComfyUI failed to execute a prompt")
            finally:
                self.running = None
                self.stats.runs.append((started, time.monotonic()))
                self.stats.finished_at[prompt.prompt_id] = time.time()
                self.stats.executed += 1
                await self._broadcast_status()

    async def _execute(self, prompt: _Prompt) -> None:
        client_id = prompt.extra_data.get("client_id")
        pid = prompt.prompt_id
        messages: list[list] = []

        async def emit(event: str, data: dict, record: bool = False) -> None:
            if record:
                messages.append([event, data])
            await self._send(event, data, client_id)

        entry = {"prompt": prompt.entry(), "outputs": {},
                 "status": {"status_str": "success", "completed": False, "messages": messages},
                 "meta": {}}
        await emit("execution_start", {"prompt_id": pid, "timestamp": _ms()}, record=True)
        await emit("execution_cached", {"nodes": [], "prompt_id": pid, "timestamp": _ms()}, record=True)
        failure = self._take_failure({"execution_error", "hang", "crash"})
        values: dict[str, Any] = {}
        order = self._topological(prompt.graph, prompt.outputs)
        # An injected failure strikes the sampler (or, in a model-free graph, the first output node).
        strike = next((n for n in order if prompt.graph[n]["class_type"] == "KSampler"),
                      next(n for n in order if n in prompt.outputs))
        try:
            for nid in order:
                if self._interrupt:
                    raise _Interrupted()
                node = prompt.graph[nid]
                await emit("executing", {"node": nid, "display_node": nid, "prompt_id": pid})
                if nid == strike and failure is not None:
                    if failure["kind"] == "crash":
                        asyncio.get_running_loop().call_soon(self._crash)
                        await asyncio.sleep(3600)
                    if failure["kind"] == "hang":
                        while not self._interrupt:
                            await asyncio.sleep(0.02)
                        raise _Interrupted()
                    if failure["kind"] == "execution_error":
                        raise _ExecutionFailed(nid, node["class_type"],
                                               failure.get("message", "CUDA out of memory. Tried to allocate 2.00 GiB"),
                                               failure.get("exception_type", "torch.OutOfMemoryError"))
                values[nid] = await self._run_node(prompt, nid, node, values, emit,
                                                   hang=bool(failure and failure["kind"] == "hang"))
                if nid in prompt.outputs and values[nid]:
                    entry["outputs"][nid] = values[nid]
                    await emit("executed", {"node": nid, "display_node": nid, "output": values[nid], "prompt_id": pid})
        except _Interrupted:
            await emit("execution_interrupted", {"prompt_id": pid, "node_id": nid, "node_type": node["class_type"],
                                                 "executed": list(values), "timestamp": _ms()}, record=True)
            entry["status"].update(status_str="error", completed=False)
            self.history[pid] = entry
            return
        except _ExecutionFailed as exc:
            await emit("execution_error", {"prompt_id": pid, "node_id": exc.node_id, "node_type": exc.node_type,
                                           "executed": list(values), "exception_message": str(exc),
                                           "exception_type": exc.exc_type, "traceback": ["(fake traceback)"],
                                           "current_inputs": {}, "current_outputs": {}, "timestamp": _ms()},
                       record=True)
            entry["status"].update(status_str="error", completed=False)
            self.history[pid] = entry
            return
        await emit("execution_success", {"prompt_id": pid, "timestamp": _ms()}, record=True)
        entry["status"].update(status_str="success", completed=True)
        self.history[pid] = entry
        self.running = None
        await self._broadcast_status()
        await emit("executing", {"node": None, "display_node": None, "prompt_id": pid})

    def _crash(self) -> None:
        """Die like a killed process: stop listening and drop every connection."""
        log.info("fake ComfyUI crashing on purpose")
        self._loop.stop()

    def _topological(self, graph: dict, outputs: list[str]) -> list[str]:
        order: list[str] = []
        state: dict[str, int] = {}

        def visit(nid: str) -> None:
            if state.get(nid) == 2:
                return
            state[nid] = 1
            for value in (graph[nid].get("inputs") or {}).values():
                if _is_link(value) and state.get(str(value[0])) != 1:
                    visit(str(value[0]))
            state[nid] = 2
            order.append(nid)

        for out in sorted(outputs, key=lambda x: (len(x), x)):
            visit(out)
        return order

    async def _run_node(self, prompt: _Prompt, nid: str, node: dict, values: dict, emit, hang: bool) -> Any:
        inputs = node.get("inputs") or {}

        def arg(name: str) -> Any:
            value = inputs.get(name)
            if _is_link(value):
                produced = values[str(value[0])]
                return produced[value[1]] if isinstance(produced, tuple) else produced
            return value

        kind = node["class_type"]
        if kind == "CheckpointLoaderSimple":
            return ({"model": inputs["ckpt_name"]}, {"clip": True}, {"vae": True})
        if kind == "LoraLoader":
            return (arg("model"), arg("clip"))
        if kind == "CLIPTextEncode":
            return {"text": arg("text")}
        if kind == "EmptyLatentImage":
            return {"w": int(inputs["width"]), "h": int(inputs["height"]), "n": int(inputs["batch_size"]),
                    "seed": 0, "text": "", "source": None}
        if kind == "EmptyImage":
            color = int(inputs["color"])
            return {"w": int(inputs["width"]), "h": int(inputs["height"]), "n": int(inputs["batch_size"]),
                    "seed": color, "text": "", "source": None}
        if kind == "LoadImage":
            with Image.open(io.BytesIO(self.inputs[inputs["image"]])) as img:
                return ({"w": img.width, "h": img.height, "n": 1, "seed": 0, "text": "", "source": inputs["image"]}, None)
        if kind in ("VAEDecode", "VAEEncode"):
            return dict(arg("samples") if kind == "VAEDecode" else arg("pixels"))
        if kind == "ImageScale":
            image = dict(arg("image"))
            if int(inputs["width"]):
                image["w"] = int(inputs["width"])
            if int(inputs["height"]):
                image["h"] = int(inputs["height"])
            return image
        if kind == "RepeatLatentBatch":
            return dict(arg("samples"), n=arg("samples")["n"] * int(inputs["amount"]))
        if kind == "ControlNetLoader":
            return {"control_net": inputs["control_net_name"]}
        if kind == "ControlNetApply":
            return dict(arg("conditioning"))
        if kind == "KSampler":
            latent = dict(arg("latent_image"))
            steps = int(inputs["steps"])
            # The time a GPU would take: spread over the steps, with ComfyUI's progress messages.
            per_step = self.render_seconds / max(1, steps)
            step = 0
            while step < steps or hang:
                if self._interrupt:
                    raise _Interrupted()
                await asyncio.sleep(per_step if not hang else 0.05)
                if not hang:
                    step += 1
                    await emit("progress", {"value": step, "max": steps, "prompt_id": prompt.prompt_id, "node": nid})
            latent.update(seed=int(inputs["seed"]), text=str(arg("positive")["text"]))
            return latent
        if kind in ("SaveImage", "PreviewImage", "SaveAnimatedWEBP"):
            image = arg("images")
            return self._save(prompt, nid, kind, inputs, image)
        raise _ExecutionFailed(nid, kind, f"node {kind} is not implemented by the fake")

    def _save(self, prompt: _Prompt, nid: str, kind: str, inputs: dict, image: dict) -> dict:
        frames = [_render(image, index) for index in range(image["n"])]
        folder = "output" if kind != "PreviewImage" else "temp"
        prefix = str(inputs.get("filename_prefix") or "ComfyUI").replace("\\", "/")
        subfolder, _, base = prefix.rpartition("/")
        entries = []
        if kind == "SaveAnimatedWEBP":
            self._counter += 1
            filename = f"{base}_{self._counter:05d}_.webp"
            buf = io.BytesIO()
            duration = int(1000 / float(inputs.get("fps") or 6))
            frames[0].save(buf, format="WEBP", save_all=True, append_images=frames[1:], duration=duration,
                           lossless=False, quality=int(inputs.get("quality") or 80), method=0)
            self.outputs[(folder, subfolder, filename)] = buf.getvalue()
            entries.append({"filename": filename, "subfolder": subfolder, "type": folder})
            return {"images": entries, "animated": [True]}
        for frame in frames:
            self._counter += 1
            filename = f"{base}_{self._counter:05d}_.png"
            buf = io.BytesIO()
            frame.save(buf, format="PNG", compress_level=1)
            self.outputs[(folder, subfolder, filename)] = buf.getvalue()
            entries.append({"filename": filename, "subfolder": subfolder, "type": folder})
        return {"images": entries}


NODE_OUTPUTS_TYPES = {"MODEL", "CLIP", "VAE", "CONDITIONING", "LATENT", "IMAGE", "MASK", "CONTROL_NET"}


def _is_link(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[0], (str, int)) and isinstance(value[1], int)


def _ms() -> int:
    return int(time.time() * 1000)


def _render(image: dict, index: int) -> Image.Image:
    """A deterministic picture of the prompt: colours from the seed, the text drawn on it."""
    digest = hashlib.sha256(f"{image['seed']}:{image['text']}:{index}".encode()).digest()
    w, h = max(1, image["w"]), max(1, image["h"])
    img = Image.new("RGB", (w, h), (digest[0], digest[1], digest[2]))
    draw = ImageDraw.Draw(img)
    draw.rectangle([w // 8, h // 8, w - w // 8, h - h // 8], fill=(digest[3], digest[4], digest[5]))
    offset = (index * 7) % max(1, w // 2)
    draw.ellipse([offset, h // 3, offset + w // 4, h // 3 + h // 4], fill=(digest[6], digest[7], digest[8]))
    if image["text"]:
        draw.text((4, 4), image["text"][:80], fill=(255, 255, 255))
    return img


def main(host: str = "127.0.0.1", port: int = 8188, render_seconds: float = 0.05) -> int:
    FakeComfyUI(host, port, render_seconds=render_seconds).serve_forever()
    return 0


if __name__ == "__main__":  # pragma: no cover
    main()
