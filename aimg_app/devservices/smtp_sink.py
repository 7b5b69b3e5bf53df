"""``python -m aimg_app.devservices.smtp_sink --port P --maildir DIR``: accept and keep mail."""
from __future__ import annotations

import argparse
import os
import signal
import threading
import time
import uuid
from pathlib import Path


class MaildirHandler:
    def __init__(self, maildir: Path):
        self.maildir = maildir

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        name = f"{time.time_ns()}-{uuid.uuid4().hex[:8]}.eml"
        tmp = self.maildir / f".{name}.tmp"
        tmp.write_bytes(envelope.original_content or envelope.content)
        os.replace(tmp, self.maildir / name)  # readers never see half a message
        return "250 Message accepted for delivery"


def main() -> None:
    from aiosmtpd.controller import Controller

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--maildir", required=True)
    args = parser.parse_args()
    maildir = Path(args.maildir)
    maildir.mkdir(parents=True, exist_ok=True)
    controller = Controller(MaildirHandler(maildir), hostname="127.0.0.1", port=args.port)
    controller.start()
    print(f"SMTP sink on 127.0.0.1:{args.port}, mails in {maildir}", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
