"""The one home of helpers shared by test modules: vendor fixtures, events, and driving the survey loop."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures"
HEADERS_SUFFIX = ".headers.json"


@dataclass(frozen=True)
class VendorFixture:
    """A recorded vendor delivery: the body exactly as the vendor posts it, and the headers it sends."""

    source: str
    name: str
    body: bytes
    headers: dict[str, str]

    @property
    def id(self) -> str:
        """Return `<source>/<name>`, the key of the fixture's expectations."""
        return f"{self.source}/{self.name}"

    @property
    def event(self) -> str:
        """Return the vendor event the fixture is named for (the part before `__<variant>`)."""
        return self.name.split("__", 1)[0]

    @property
    def content_type(self) -> str:
        """Return the content type the vendor sends, JSON unless the headers file says otherwise."""
        return self.headers.get("content-type", "application/json")

    def json(self) -> Any:
        """Return the body decoded, for tests that derive a variant from it."""
        return json.loads(self.body)


def fixture_name(event: str) -> str:
    """Return the file name a vendor event's fixtures start with ("orders/create" -> "orders_create")."""
    return event.rsplit(":", 1)[-1].replace("/", "_")


def _load(path: Path) -> VendorFixture:
    headers_file = path.with_name(path.stem + HEADERS_SUFFIX)
    headers = json.loads(headers_file.read_text("utf-8")) if headers_file.exists() else {}
    return VendorFixture(path.parent.name, path.stem, path.read_bytes(), headers)


def _body_files(directory: Path) -> list[Path]:
    return sorted(path for path in directory.iterdir() if path.is_file() and not path.name.endswith(HEADERS_SUFFIX))


def vendor_fixture(source: str, name: str) -> VendorFixture:
    """Return one fixture of a source by name (without its extension)."""
    matches = [path for path in _body_files(FIXTURES / source) if path.stem == name]
    assert len(matches) == 1, f"no single fixture {source}/{name}: {matches}"
    return _load(matches[0])


def vendor_fixtures(source: str | None = None) -> list[VendorFixture]:
    """Return every fixture (of one source, or of all), in a stable order."""
    directories = [FIXTURES / source] if source else sorted(path for path in FIXTURES.iterdir() if path.is_dir())
    return [_load(path) for directory in directories for path in _body_files(directory)]
