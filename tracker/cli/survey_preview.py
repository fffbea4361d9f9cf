"""`tracker survey preview`: write the survey mail and every page a customer can see as files."""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

from tracker.cli.base import UsageError
from tracker.config import SCALES, Settings, load_settings
from tracker.i18n.catalogue import ALIASES, SUPPORTED
from tracker.model import Survey
from tracker.surveys.custom import CustomSurvey

DAY_MS = 86_400_000
# The example ticket the preview is about: nothing here is anyone's data.
EXAMPLE = {"customer": "kari.nordmann@example.com", "name": "Kari Nordmann", "ticket": "1001",
           "subject": "My order has not arrived"}


def _settings() -> Settings:
    """Read the settings a preview uses; Redis and the mail server are not needed, nor a secret key."""
    environ = dict(os.environ)
    environ.setdefault("TRACKER_REDIS_URL", "redis://127.0.0.1:6379")  # never contacted
    settings = load_settings(environ, needs="store")
    if not settings.secret_key:  # links in a preview need not verify anywhere
        from dataclasses import replace

        settings = replace(settings, secret_key=secrets.token_urlsafe(32))
    return settings


def _language(locale: str) -> str:
    wanted = locale.strip().lower().replace("_", "-")
    if wanted in SUPPORTED:
        return wanted
    if wanted in ALIASES:
        return ALIASES[wanted]
    raise UsageError(f"--locale must be one of {', '.join(SUPPORTED)}, got {locale!r}")


def _folder(out: str) -> Path:
    folder = Path(out)
    try:
        (folder / "assets").mkdir(parents=True, exist_ok=True)
        probe = folder / ".tracker-preview"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise UsageError(f"--out {out}: cannot write there: {exc.strerror or exc}") from None
    return folder


def _survey(settings: Settings, brand: str, source: str, lang: str, scale: str | None) -> Survey:
    from tracker.surveys.policy import choose_scale

    if scale is not None and scale not in SCALES:
        raise UsageError(f"--scale must be one of {', '.join(SCALES)}, got {scale!r}")
    now = int(time.time() * 1000)
    return Survey(sid="preview" + secrets.token_hex(6), tkey=f"{source or 'standard'}:{EXAMPLE['ticket']}",
                  kind="ticket", scale=scale or choose_scale(settings, source or None, brand or None),
                  customer=EXAMPLE["customer"], source=source or "standard", status="sent",
                  ticket_id=EXAMPLE["ticket"], subject=EXAMPLE["subject"], brand=brand or None, lang=lang,
                  solved_at_ms=now, created_at_ms=now, sent_at_ms=now,
                  expires_at_ms=now + settings.survey_expiry_days * DAY_MS)


def write_preview(brand: str, source: str, locale: str, scale: str | None, out: str) -> int:
    """Write the mail and the pages for a brand, source and language into the folder out."""
    settings = _settings()
    lang = _language(locale)
    folder = _folder(out)
    survey = _survey(settings, brand.strip(), source.strip().lower(), lang, scale)
    custom = settings.surveys.pick(survey.brand, survey.source, lang) if settings.surveys else None
    written = _write_mail(settings, survey, folder, custom) + _write_pages(settings, survey, folder, custom)
    entry = "the product's own text" if custom is None else f"the entry of {settings.surveys_file} that fits"
    print(f"Previewed the {survey.scale} survey for brand {brand or '-'}, source {source or '-'}, language {lang} "
          f"({entry}):")
    for path in written:
        print(f"  {path}")
    return 0


def _local(html: str, links: dict[str, str]) -> str:
    """Point the tracker's own asset URLs at the copies beside the preview, so it opens from disk."""
    for url, name in links.items():
        html = html.replace(f'"{url}"', f'"assets/{name}"')
    return html


def _write_mail(settings: Settings, survey: Survey, folder: Path, custom: CustomSurvey | None) -> list[Path]:
    from tracker.mail.message import render_survey
    from tracker.surveys.message import build_message, survey_mail

    mail = survey_mail(settings, survey, EXAMPLE["name"], survey.expires_at_ms or 0)
    subject, plain, html = render_survey(mail, os.path.join(settings.template_dir, "mail")
                                         if settings.template_dir else None)
    links = {}
    if custom is not None and custom.logo is not None:
        (folder / "assets" / custom.logo.filename).write_bytes(custom.logo.data)
        links[f"{settings.public_url}{custom.logo.url_path}"] = custom.logo.filename
    files = {"mail.html": _local(html, links), "mail.txt": f"Subject: {subject}\n\n{plain}"}
    for name, content in files.items():
        (folder / name).write_text(content, encoding="utf-8")
    (folder / "mail.eml").write_bytes(build_message(settings, survey, EXAMPLE["name"], survey.expires_at_ms or 0)
                                      .data)
    return [folder / "mail.html", folder / "mail.txt", folder / "mail.eml"]


def _write_pages(settings: Settings, survey: Survey, folder: Path, custom: CustomSurvey | None) -> list[Path]:
    from flask import g, url_for

    from tracker.mail.branding import page_stylesheet
    from tracker.surveys.tokens import make_token
    from tracker.web.app import create_app
    from tracker.web.pages.brand import page_brand
    from tracker.web.pages.renderers import page_renderers

    app = create_app(settings, enqueue=lambda *args: None)  # its store is never asked anything
    token = make_token(settings.secret_key, survey.sid)
    with app.test_request_context("/", base_url=settings.public_url):
        g.survey_brand = page_brand(custom, survey)
        links = {url_for("survey.static", filename="survey.css"): "survey.css"}
        (folder / "assets" / "survey.css").write_bytes(Path(app.blueprints["survey"].static_folder or "",
                                                            "survey.css").read_bytes())
        if custom is not None and custom.colour:
            name = f"brand-{custom.colour[1:]}.css"
            (folder / "assets" / name).write_text(page_stylesheet(custom.colour), encoding="utf-8")
            links[url_for("brand.stylesheet", colour=custom.colour[1:])] = name
        if custom is not None and custom.logo:
            (folder / "assets" / custom.logo.filename).write_bytes(custom.logo.data)
            links[custom.logo.url_path] = custom.logo.filename
        written = []
        for name, render in page_renderers(settings, survey, token, custom).items():
            path = folder / f"{name}.html"
            path.write_text(_local(render(), links), encoding="utf-8")
            written.append(path)
    return written
