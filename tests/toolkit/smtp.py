"""A real SMTP server (aiosmtpd) on a free port that keeps every message it receives, and on demand
refuses or hangs instead (like the webhook ``Receiver``)."""

from __future__ import annotations

import asyncio
import threading
from email.message import Message as EmailMessage

from .ports import free_port
from .waiting import wait_for


class SMTPServer:
    """``messages`` holds each received e-mail (``email.message.Message``); ``attempts`` counts every
    message offered (DATA), accepted or not. Switches, each counted:

    - ``refuse(554)``: answer DATA with that SMTP error instead of accepting; ``refused``;
    - ``hang = True``: never answer DATA until ``release()`` or ``close()``; ``hung``.
    """

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller
        from aiosmtpd.handlers import Message

        owner = self
        self.messages: list[EmailMessage] = []
        self.lock = threading.Lock()
        self.attempts = self.refused = self.hung = 0
        self.refuse_with: int | None = None
        self.hang = False
        self._released = threading.Event()

        class Collect(Message):
            async def handle_DATA(self, server, session, envelope) -> str:
                with owner.lock:
                    owner.attempts += 1
                    hang, refuse = owner.hang, owner.refuse_with
                    if hang:
                        owner.hung += 1
                    elif refuse is not None:
                        owner.refused += 1
                if hang:
                    released = owner._released
                    await asyncio.get_running_loop().run_in_executor(None, released.wait)
                    return "421 closing"
                if refuse is not None:
                    return f"{refuse} refused by the test server"
                return await super().handle_DATA(server, session, envelope)

            def handle_message(self, message: EmailMessage) -> None:
                with owner.lock:
                    owner.messages.append(message)

        self.controller = Controller(Collect(), hostname="127.0.0.1", port=free_port())
        self.controller.start()
        self.port: int = self.controller.port

    def apprise_url(self, to: str = "oncall@example.com", sender: str = "alerts@example.com", query: str = "") -> str:
        return f"mailto://127.0.0.1:{self.port}?mode=insecure&from={sender}&to={to}" + (f"&{query}" if query else "")

    def wait_for(self, count: int, timeout: float) -> list[EmailMessage]:
        wait_for(lambda: len(self.messages) >= count, timeout, what=f"{count} e-mail(s) (got {len(self.messages)})")
        return self.messages

    def refuse(self, code: int = 554) -> None:
        self.refuse_with = code

    def accept(self) -> None:
        """Back to accepting every message (hanging ones are let go)."""
        self.refuse_with = None
        self.hang = False
        self.release()

    def release(self) -> None:
        self._released.set()
        self._released = threading.Event()

    def close(self) -> None:
        self._released.set()
        self.controller.stop()
