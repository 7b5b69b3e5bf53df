"""Outgoing mail: one function, plain SMTP to ``settings.smtp_url`` (``smtp://host:port`` or
``smtps://user:password@host:port``; ``?starttls=true`` upgrades a plain connection)."""
from __future__ import annotations

import smtplib
from email.message import EmailMessage
from email.utils import make_msgid
from urllib.parse import parse_qs, unquote, urlsplit

from .errors import ServiceUnavailable


def send_mail(settings, to: str, subject: str, text: str, html: str | None = None) -> str:
    """Send one message to ``to``; returns its Message-ID. 503 when no SMTP server answers."""
    if not settings.smtp_url:
        raise ServiceUnavailable("Mail is not configured (AIMG_SMTP_URL).")
    url = urlsplit(settings.smtp_url)
    sender = settings.mail_from or f"no-reply@{settings.default_domain.identifier}"
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    smtp_class = smtplib.SMTP_SSL if url.scheme == "smtps" else smtplib.SMTP
    try:
        with smtp_class(url.hostname or "127.0.0.1", url.port or (465 if url.scheme == "smtps" else 25), timeout=10) as smtp:
            if parse_qs(url.query).get("starttls", ["false"])[0].lower() == "true":
                smtp.starttls()
            if url.username:
                smtp.login(unquote(url.username), unquote(url.password or ""))
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException):
        raise ServiceUnavailable("The mail server is unavailable: please try again later.") from None
    return message["Message-ID"]
