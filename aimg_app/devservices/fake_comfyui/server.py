"""The fake ComfyUI's HTTP and WebSocket server (aiohttp) around its engine."""
from __future__ import annotations

import asyncio
import sys
import threading
import time
import uuid

from aiohttp import WSMsgType, web

from .engine import Engine, _Prompt, log
from .nodes import NODES


class FakeComfyUI(Engine):
    """One fake ComfyUI server. ``start()`` runs it on a thread of its own (tests);
    ``serve_forever()`` runs it in the calling thread (the CLI)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, render_seconds: float = 0.05,
                 model_files: list[str] | None = None):
        self.host, self.port = host, port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        super().__init__(render_seconds=render_seconds, model_files=model_files)

    def _reset_state(self) -> None:
        super()._reset_state()
        self._sockets: dict[str, set[web.WebSocketResponse]] = {}

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

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
        @web.middleware
        async def _count_connections(request: web.Request, handler):
            # For tests that check clients keep their connections (a new one per request shows).
            peer = request.transport.get_extra_info("peername") if request.transport else None
            if peer and request.path != "/ws":
                self.stats.connections.add(tuple(peer[:2]))
            return await handler(request)

        app = web.Application(client_max_size=256 * 1024 * 1024, middlewares=[_count_connections])
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
        r.add_get("/object_info/{node_class}", self._object_info_one)
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
        number = self._number  # ComfyUI numbers prompts from 0
        self._number += 1
        prompt_id = str(body.get("prompt_id") or uuid.uuid4())
        extra = dict(body.get("extra_data") or {})
        if body.get("client_id"):
            extra["client_id"] = body["client_id"]
        extra["create_time"] = int(time.time() * 1000)
        self.pending.append(_Prompt(number, prompt_id, graph, extra, outputs))
        self.stats.prompts_accepted += 1
        self.stats.accepted_at[prompt_id] = time.time()
        self._queue_event.set()
        await self._broadcast_status()
        return web.json_response({"prompt_id": prompt_id, "number": number, "node_errors": {}})

    def _rejected(self, error: dict, node_errors) -> web.Response:
        self.stats.prompts_rejected += 1
        return web.json_response({"error": error, "node_errors": node_errors}, status=400)

    async def _get_prompt(self, request: web.Request) -> web.Response:
        # ComfyUI answers the bare exec_info here, without the WebSocket message's "status" wrapper.
        return web.json_response(self._status_message()["data"]["status"])

    async def _get_queue(self, request: web.Request) -> web.Response:
        return web.json_response({"queue_running": [self.running.entry()] if self.running else [],
                                  "queue_pending": [p.entry() for p in self.pending]})

    async def _post_queue(self, request: web.Request) -> web.Response:
        # Like ComfyUI: only "clear" and "delete" are read; any other key is ignored.
        # A status message goes out only when the queue changed, as ComfyUI's does.
        body = await request.json()
        before = len(self.pending)
        if body.get("clear"):
            self.pending.clear()
        for prompt_id in body.get("delete", []) or []:
            if any(p.prompt_id == prompt_id for p in self.pending):
                self.stats.deleted.append((time.time(), prompt_id))
            self.pending = [p for p in self.pending if p.prompt_id != prompt_id]
        if len(self.pending) != before:
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
        # ComfyUI stores whatever it is sent; a file it cannot open fails later, in LoadImage.
        self.inputs[full] = upload.file.read()
        return web.json_response({"name": name, "subfolder": subfolder, "type": str(form.get("type") or "input")})

    async def _object_info_one(self, request: web.Request) -> web.Response:
        name = request.match_info["node_class"]
        info = self._node_infos()
        return web.json_response({name: info[name]} if name in info else {})

    async def _object_info(self, request: web.Request) -> web.Response:
        return web.json_response(self._node_infos())

    def _node_infos(self) -> dict:
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
        for name, node in NODES.items():
            info[name] = {"input": {"required": {k: spec(*v) for k, v in node.inputs.items()}},
                          "output": list(node.outputs), "output_node": node.output_node, "name": name}
        return info

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

    def _crash(self) -> None:
        """Die like a killed process: stop listening and drop every connection."""
        log.info("fake ComfyUI crashing on purpose")
        self._loop.stop()


def main(host: str = "127.0.0.1", port: int = 8188, render_seconds: float = 0.05) -> int:
    FakeComfyUI(host, port, render_seconds=render_seconds).serve_forever()
    return 0


if __name__ == "__main__":  # pragma: no cover
    main()

