"""An SMTP sink (aiosmtpd) that keeps every message as an .eml file under the data dir."""
from __future__ import annotations

import smtplib
import sys

from .service import EmbeddedService, free_port


class SmtpService(EmbeddedService):
    name = "smtp"
    env_var = "AIMG_SMTP_URL"
    requires = ("aiosmtpd",)

    def prepare(self) -> None:
        self.port = free_port()

    def command(self) -> list[str]:
        return [sys.executable, "-m", "aimg_app.devservices.smtp_sink", "--port", str(self.port),
                "--maildir", str(self.data_dir)]

    def ready(self) -> bool:
        with smtplib.SMTP("127.0.0.1", self.port, timeout=2) as smtp:
            return smtp.noop()[0] == 250

    def exports(self) -> dict[str, str]:
        return {"AIMG_SMTP_URL": f"smtp://127.0.0.1:{self.port}", "AIMG_SMTP_MAILDIR": str(self.data_dir)}

    def describe(self) -> str:
        return f"smtp://127.0.0.1:{self.port}  mails: {self.data_dir}"
