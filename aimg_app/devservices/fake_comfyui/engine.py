"""The fake ComfyUI's engine: ComfyUI's validation (and error format), its queue, and the
execution of a graph node by node, rendering real images with Pillow. No HTTP here: the
server (``server.py``) feeds it prompts and sends what ``_send`` and ``_broadcast_status``
are given over its WebSockets.
"""
from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from PIL import Image, ImageDraw

from .nodes import DEFAULT_MODEL_FILES, LINK_TYPES, NODES, is_link

log = logging.getLogger("aimg.fake_comfyui")


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
    connections: set = field(default_factory=set)  # (address, port) of every client that sent an HTTP request

    def idle_gaps(self) -> list[float]:
        return [max(0.0, b[0] - a[1]) for a, b in zip(self.runs, self.runs[1:])]

    def as_dict(self) -> dict:
        gaps = self.idle_gaps()
        busy = sum(end - start for start, end in self.runs)
        return {"promptsAccepted": self.prompts_accepted, "promptsRejected": self.prompts_rejected,
                "executed": self.executed, "busySeconds": busy,
                "meanIdleGapSeconds": (sum(gaps) / len(gaps)) if gaps else None, "idleGaps": len(gaps)}


class Engine:
    """ComfyUI's prompt queue and executor; one prompt runs at a time."""

    def __init__(self, *, render_seconds: float = 0.05, model_files: list[str] | None = None):
        self.render_seconds = render_seconds
        self.model_files = list(DEFAULT_MODEL_FILES if model_files is None else model_files)
        self.stats = FakeStats()
        self._failures: deque[dict] = deque()
        self._lock = threading.Lock()
        self._reset_state()

    def _reset_state(self) -> None:
        self.history: dict[str, dict] = {}
        self.outputs: dict[tuple[str, str, str], bytes] = {}  # (type, subfolder, filename) -> bytes
        self.inputs: dict[str, bytes] = {}
        self.pending: list[_Prompt] = []
        self.running: _Prompt | None = None
        self._number = 0
        self._counter = 0
        self._interrupt = False
        self._queue_event: asyncio.Event | None = None

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


    def _status_message(self, sid: str | None = None) -> dict:
        remaining = len(self.pending) + (1 if self.running else 0)
        data: dict[str, Any] = {"status": {"exec_info": {"queue_remaining": remaining}}}
        if sid:
            data["sid"] = sid
        return {"type": "status", "data": data}

    async def _send(self, event: str, data: dict, client_id: str | None) -> None:
        """Send one message to the client's WebSockets (the server's part)."""

    async def _broadcast_status(self) -> None:
        """Send the queue status to every WebSocket (the server's part)."""

    def _crash(self) -> None:
        """Die like a killed process (the server's part)."""

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
            if class_type not in NODES:
                return ({"type": "invalid_prompt", "message": f"Cannot execute because node {class_type} does not exist.",
                         "details": f"Node ID '#{node_id}'", "extra_info": {}}, {}, [])
        outputs = [nid for nid, node in graph.items() if NODES[node["class_type"]].output_node]
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
                if is_link(value):
                    stack.append(str(value[0]))
        return order

    def _validate_node(self, graph: dict, nid: str) -> list[dict]:
        node = graph[nid]
        required = NODES[node["class_type"]].inputs
        inputs = node.get("inputs") or {}
        errors = []
        for name, (kind, opts) in required.items():
            config = [kind, opts]
            if name not in inputs:
                errors.append({"type": "required_input_missing", "message": "Required input is missing",
                               "details": name, "extra_info": {"input_name": name}})
                continue
            value = inputs[name]
            if is_link(value):
                source = str(value[0])
                if source not in graph:
                    errors.append({"type": "exception_during_validation", "message": "Exception when validating node",
                                   "details": f"'{source}'", "extra_info": {"input_name": name, "input_config": config,
                                                                            "received_value": value}})
                    continue
                produced = NODES[graph[source]["class_type"]].outputs
                index = value[1] if isinstance(value[1], int) else -1
                if index < 0 or index >= len(produced) or (kind in LINK_TYPES and produced[index] != kind):
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
        if kind in LINK_TYPES:  # a link was required, a literal was given
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
            # After every prompt, whatever its end (success, error, interrupt), ComfyUI sends the
            # queue status, then ``executing`` with node null (no display_node).
            await self._broadcast_status()
            await self._send("executing", {"node": None, "prompt_id": prompt.prompt_id},
                             prompt.extra_data.get("client_id"))

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
        entry["meta"] = {nid: {"node_id": nid, "display_node": nid, "parent_node": None, "real_node_id": nid}
                         for nid in entry["outputs"]}
        self.history[pid] = entry

    def _topological(self, graph: dict, outputs: list[str]) -> list[str]:
        order: list[str] = []
        state: dict[str, int] = {}

        def visit(nid: str) -> None:
            if state.get(nid) == 2:
                return
            state[nid] = 1
            for value in (graph[nid].get("inputs") or {}).values():
                if is_link(value) and state.get(str(value[0])) != 1:
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
            if is_link(value):
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
            try:
                with Image.open(io.BytesIO(self.inputs[inputs["image"]])) as img:
                    size = img.size
            except OSError as exc:  # an upload that is not an image fails here, as in ComfyUI
                raise _ExecutionFailed(nid, kind, f"cannot identify image file '{inputs['image']}'",
                                       "PIL.UnidentifiedImageError") from exc
            return ({"w": size[0], "h": size[1], "n": 1, "seed": 0, "text": "", "source": inputs["image"]}, None)
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
            # Each step ends at its own deadline from the start, so a busy host (the fake shares
            # the CPU with what it serves) does not stretch the GPU time step by step.
            per_step = self.render_seconds / max(1, steps)
            loop = asyncio.get_running_loop()
            begun = loop.time()
            step = 0
            while step < steps or hang:
                if self._interrupt:
                    raise _Interrupted()
                await asyncio.sleep(max(0.0, begun + per_step * (step + 1) - loop.time()) if not hang else 0.05)
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

