"""The local mail catcher of `tracker dev`: an SMTP server that keeps mails as files, and a viewer."""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import threading
import time
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session
from flask import Flask, abort, render_template, send_file

TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "mail"
NAME = re.compile(r"^[0-9]{20}-[0-9]{6}$")
LISTED = 500


class _Store:
    """aiosmtpd handler that writes every accepted message to folder as <arrival>.eml."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._sequence = itertools.count(1)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        name = f"{time.time_ns():020d}-{next(self._sequence) % 1_000_000:06d}"
        partial = self.folder / f".{name}.part"
        partial.write_bytes(raw)
        # Rename last so the viewer never lists a half-written mail.
        os.replace(partial, self.folder / f"{name}.eml")
        return "250 Message accepted for delivery"


class MailCatcher:
    """Receive mail over SMTP on 127.0.0.1 and store each message as an .eml file in folder."""

    def __init__(self, folder: str | Path, port: int = 0, host: str = "127.0.0.1") -> None:
        self.folder = Path(folder)
        self.host = host
        self.port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Return the TRACKER_SMTP_URL that delivers to this catcher."""
        return f"smtp://{self.host}:{self.port}"

    def start(self) -> MailCatcher:
        """Start listening in a background thread; port 0 picks a free port."""
        self.folder.mkdir(parents=True, exist_ok=True)
        loop = asyncio.new_event_loop()
        handler = _Store(self.folder)
        server = loop.run_until_complete(loop.create_server(
            lambda: SMTP(handler, hostname="tracker-dev", ident="tracker dev mail catcher", loop=loop,
                         enable_SMTPUTF8=True),  # customers may have non-ASCII local parts
            self.host, self.port))
        self.port = server.sockets[0].getsockname()[1]
        self._loop, self._server = loop, server
        self._thread = threading.Thread(target=loop.run_forever, name="mail-catcher", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening, drop open client connections and end the background thread."""
        loop, server, thread = self._loop, self._server, self._thread
        if loop is None or server is None or thread is None:
            return
        asyncio.run_coroutine_threadsafe(_shut_down(server), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
        self._loop = self._server = self._thread = None

    def __enter__(self) -> MailCatcher:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


async def _shut_down(server: asyncio.Server) -> None:
    server.close()
    # Cancel the per-connection tasks too: a sender keeping its connection open would
    # otherwise hold the loop (Server.wait_closed waits for clients since Python 3.12).
    tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def _summary(path: Path) -> dict[str, Any]:
    with path.open("rb") as handle:
        headers = BytesHeaderParser(policy=policy.default).parse(handle)
    try:
        when = parsedate_to_datetime(str(headers["Date"]))
    except (TypeError, ValueError):
        when = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    return {"name": path.stem, "from": headers["From"] or "", "to": headers["To"] or "",
            "subject": headers["Subject"] or "", "time": when}


def _with_top_target(html: str) -> str:
    # Links must leave the sandboxed iframe for the top window: there the survey page runs
    # unsandboxed (forms allowed) and may refuse to be framed.
    base = '<base target="_top">'
    head = re.search(r"<head[^>]*>", html, re.IGNORECASE)
    return html[: head.end()] + base + html[head.end():] if head else base + html


def make_viewer_app(folder: str | Path) -> Flask:
    """Build the small web app that lists caught mails and shows each one."""
    store = Path(folder)
    store.mkdir(parents=True, exist_ok=True)
    app = Flask(__name__, template_folder=str(TEMPLATES))

    def mail_path(name: str) -> Path:
        path = store / f"{name}.eml"
        if not NAME.fullmatch(name) or not path.is_file():
            abort(404)
        return path

    @app.get("/")
    def index() -> str:
        names = sorted((p for p in store.glob("*.eml") if NAME.fullmatch(p.stem)), reverse=True)
        mails = [_summary(path) for path in names[:LISTED]]
        return render_template("catcher_index.html", mails=mails, total=len(names))

    @app.get("/mail/<name>")
    def show(name: str) -> Any:
        if name.endswith(".eml"):
            return send_file(mail_path(name[:-4]), mimetype="message/rfc822", as_attachment=True,
                             download_name=name)
        msg = message_from_bytes(mail_path(name).read_bytes(), policy=policy.default)
        assert isinstance(msg, EmailMessage)
        html_part = msg.get_body(preferencelist=("html",))
        text_part = msg.get_body(preferencelist=("plain",))
        html = html_part.get_content() if html_part is not None else None
        return render_template(
            "catcher_mail.html", name=name, headers=list(msg.items()),
            subject=msg["Subject"] or "", html=_with_top_target(html) if html else None,
            text=text_part.get_content() if text_part is not None else None)

    return app
