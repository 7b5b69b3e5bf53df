"""Outgoing mail over SMTP (``AIMG_SMTP_URL``: ``smtp://host:port`` or ``smtps://user:pass@host:port``)."""
from __future__ import annotations

import smtplib
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

from .config import Settings
from .errors import ServiceUnavailable


def send_mail(settings: Settings, to: str, subject: str, text: str, html: str | None = None) -> None:
    if not settings.smtp_url:
        raise ServiceUnavailable("Mail is not configured (AIMG_SMTP_URL).")
    url = urlsplit(settings.smtp_url)
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = to
    message["Subject"] = subject
    message.set_content(text)
    if html:
        message.add_alternative(html, subtype="html")
    smtp_class = smtplib.SMTP_SSL if url.scheme == "smtps" else smtplib.SMTP
    try:
        with smtp_class(url.hostname or "127.0.0.1", url.port or (465 if url.scheme == "smtps" else 25), timeout=15) as smtp:
            if url.scheme == "smtp+starttls":
                smtp.starttls()
            if url.username:
                smtp.login(unquote(url.username), unquote(url.password or ""))
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException):
        raise ServiceUnavailable("The mail could not be sent; please try again later.") from None
