"""The App URL itself (`/`): a small page that leads to the dashboard, the API description and the probes."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template

bp = Blueprint("home", __name__)


@bp.get("/")
def home() -> Any:
    """Show where to go from the bare App URL, instead of a 404."""
    return render_template("pages/home.html", lang="en")
