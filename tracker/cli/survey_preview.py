"""`tracker survey preview`: write the survey mail and every page a customer can see as files."""

from __future__ import annotations

import os
import secrets
import time
import traceback
from pathlib import Path

from tracker.cli.base import UsageError
from tracker.config import SCALES, ConfigError, Settings, load_settings
from tracker.i18n.catalogue import ALIASES, SUPPORTED
from tracker.model import Survey
from tracker.surveys.custom import CustomSurvey
from tracker.surveys.template_check import Sample, fault_line

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
    subject, plain, html, message = _rendered_mail(settings, survey)
    links = {}
    if custom is not None and custom.logo is not None:
        _save(folder / "assets" / custom.logo.filename, custom.logo.data)
        links[f"{settings.public_url}{custom.logo.url_path}"] = custom.logo.filename
    return [_save(folder / "mail.html", _local(html, links)),
            _save(folder / "mail.txt", f"Subject: {subject}\n\n{plain}"), _save(folder / "mail.eml", message)]


def _rendered_mail(settings: Settings, survey: Survey) -> tuple[str, str, str, bytes]:
    """Render the mail's subject, text, HTML and whole message; an operator's template that fails to render is the
    one line `tracker check` gives for it (ConfigError, exit 2), not a Jinja traceback."""
    from tracker.mail.message import render_survey
    from tracker.surveys.message import build_message, survey_mail

    templates = os.path.join(settings.template_dir, "mail") if settings.template_dir else None
    expires_ms = survey.expires_at_ms or 0
    try:
        mail = survey_mail(settings, survey, EXAMPLE["name"], expires_ms)
        subject, plain, html = render_survey(mail, templates)
        message = build_message(settings, survey, EXAMPLE["name"], expires_ms).data
    except Exception as exc:
        if templates is None or not _operator_fault(exc, templates):
            raise
        raise ConfigError(fault_line(exc, templates, f"the survey mail fails to render ({_described(survey)})")) \
            from None
    return subject, plain, html, message


def _write_pages(settings: Settings, survey: Survey, folder: Path, custom: CustomSurvey | None) -> list[Path]:
    from flask import g, url_for

    from tracker.mail.branding import page_stylesheet
    from tracker.store import Store
    from tracker.surveys.tokens import make_token
    from tracker.web.app import create_app
    from tracker.web.pages.brand import page_brand
    from tracker.web.pages.renderers import page_renderers

    # A preview needs no Redis: the one TRACKER_REDIS_URL names (another application's on localhost, maybe) is left
    # alone, unopened.
    app = create_app(settings, Store.never_asked(), enqueue=lambda *args: None)
    token = make_token(settings.secret_key, survey.sid)
    templates = os.path.join(settings.template_dir, "pages") if settings.template_dir else None
    with app.test_request_context("/", base_url=settings.public_url):
        g.survey_brand = page_brand(custom, survey)
        links = {url_for("survey.static", filename="survey.css"): "survey.css"}
        _save(folder / "assets" / "survey.css", Path(app.blueprints["survey"].static_folder or "",
                                                     "survey.css").read_bytes())
        if custom is not None and custom.colour:
            name = f"brand-{custom.colour[1:]}.css"
            _save(folder / "assets" / name, page_stylesheet(custom.colour))
            links[url_for("brand.stylesheet", colour=custom.colour[1:])] = name
        if custom is not None and custom.logo:
            _save(folder / "assets" / custom.logo.filename, custom.logo.data)
            links[custom.logo.url_path] = custom.logo.filename
        written = []
        for name, render in page_renderers(settings, survey, token, custom).items():
            try:
                html = render()
            except Exception as exc:
                if templates is None or not _operator_fault(exc, templates):
                    raise
                raise ConfigError(fault_line(exc, templates, f"the {name} page fails to render "
                                                              f"({_described(survey)})")) from None
            written.append(_save(folder / f"{name}.html", _local(html, links)))
    return written


def _save(path: Path, content: str | bytes) -> Path:
    """Write one file of the preview. _folder() proved the folder writable, yet one file may still fail (a folder
    of its name in the way, a full disk): one line naming it, not a traceback."""
    try:
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


def _operator_fault(exc: BaseException, folder: str) -> bool:
    """Say whether exc is the fault of the operator's templates in folder: Jinja's own error, or raised in one.

    A failure of anything else (a setting the mail cannot be built with) is no template's, and a line naming
    TRACKER_TEMPLATE_DIR would send the operator looking in the wrong place: it stays the traceback it is.
    """
    from jinja2 import TemplateError

    if isinstance(exc, TemplateError):
        return True
    inside = os.path.abspath(folder) + os.sep
    return any(os.path.abspath(frame.filename).startswith(inside)
               for frame in traceback.extract_tb(exc.__traceback__))


def _described(survey: Survey) -> str:
    """Describe the previewed survey as `tracker check` describes the sample that failed (en, csat5, …)."""
    return Sample(survey.lang or "en", survey.scale, survey.kind, True, survey.brand, survey.source).describe()
