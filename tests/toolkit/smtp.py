"""A real SMTP server (aiosmtpd) on a free port that keeps every message it receives."""

from __future__ import annotations

import threading
from email.message import Message as EmailMessage

from .ports import free_port
from .waiting import wait_for


class SMTPServer:
    """``messages`` holds each received e-mail (``email.message.Message``)."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller
        from aiosmtpd.handlers import Message

        owner = self
        self.messages: list[EmailMessage] = []
        self.lock = threading.Lock()

        class Collect(Message):
            def handle_message(self, message: EmailMessage) -> None:
                with owner.lock:
                    owner.messages.append(message)

        self.controller = Controller(Collect(), hostname="127.0.0.1", port=free_port())
        self.controller.start()
        self.port: int = self.controller.port

    def apprise_url(self, to: str = "oncall@example.com", sender: str = "alerts@example.com") -> str:
        return f"mailto://127.0.0.1:{self.port}?mode=insecure&from={sender}&to={to}"

    def wait_for(self, count: int, timeout: float) -> list[EmailMessage]:
        wait_for(lambda: len(self.messages) >= count, timeout, what=f"{count} e-mail(s) (got {len(self.messages)})")
        return self.messages

    def close(self) -> None:
        self.controller.stop()
