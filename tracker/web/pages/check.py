"""The operator's page templates (TRACKER_TEMPLATE_DIR/pages), rendered at start-up with sample surveys.

Pages render leniently (an unknown variable prints nothing), but a template that reads an attribute of one, calls
it, or hands a filter what it cannot take raises as it renders: the customer who clicked a rating would get the
error page instead of the question, every one of them. `tracker web` and `tracker check` render every page a
customer can see (tracker.web.pages.renderers) in every language and scale, for the product's own text and each
shape of surveys-file entry (tracker.surveys.template_check.entry_samples), and refuse to start with one line
naming the template, its line and the page.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from tracker.config import ConfigError, Settings
from tracker.i18n.catalogue import SUPPORTED
from tracker.scales import SCALES
from tracker.surveys.template_check import Sample, entry_samples, fault_line


def _samples(settings: Settings) -> Iterator[Sample]:
    """Each language and scale with the product's own text, then each surveys-file entry's."""
    for lang in SUPPORTED:
        for scale in SCALES:
            yield Sample(lang, scale, "ticket", True)
    yield from entry_samples(settings)


def check_page_templates(settings: Settings) -> None:
    """Render every page for every sample with the operator's page templates; raise ConfigError with the first
    fault."""
    folder = os.path.join(settings.template_dir, "pages") if settings.template_dir else None
    if folder is None or not os.path.isdir(folder) or not any(n.endswith(".html") for n in os.listdir(folder)):
        return  # the packaged pages: the suite renders them
    from flask import g

    from tracker.store import Store
    from tracker.surveys.message import custom_survey
    from tracker.surveys.tokens import make_token
    from tracker.web.app import create_app
    from tracker.web.pages.brand import page_brand
    from tracker.web.pages.renderers import page_renderers

    # The check neither needs Redis nor writes to it.
    app = create_app(settings, Store.never_asked(), enqueue=lambda *args: None)
    for sample in _samples(settings):
        survey = sample.survey()
        custom = custom_survey(settings, survey)
        token = make_token(settings.secret_key, survey.sid)
        with app.test_request_context("/", base_url=settings.public_url):
            g.survey_brand = page_brand(custom, survey)
            g.lang = survey.lang
            for name, render in page_renderers(settings, survey, token, custom).items():
                try:
                    render()
                except Exception as exc:  # whatever a template raises, it would raise for every such customer
                    raise ConfigError(fault_line(exc, folder, f"the {name} page fails to render "
                                                 f"({sample.describe()})")) from None
