"""``python -m aimg_app.devservices.mongo_wire --port P --path FILE``: serve until SIGTERM/SIGINT."""
from __future__ import annotations

import argparse
import asyncio
import signal


async def serve(port: int, path: str) -> None:
    from mongoeco.engines.sqlite import SQLiteEngine
    from mongoeco.wire.proxy import AsyncMongoEcoProxyServer

    server = AsyncMongoEcoProxyServer(engine=SQLiteEngine(path), host="127.0.0.1", port=port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    print(f"mongoeco wire server on 127.0.0.1:{port} ({path})", flush=True)
    await stop.wait()
    await server.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.path))


if __name__ == "__main__":
    main()
