"""The floor plan the README's "Where things live" draws: each package imports only the packages above it in its
list (but for the hand-offs it names), and no module imports itself back through others, counting the imports made
inside functions."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The README's list, top first: a package may import those before it.
ORDER = ("data", "top", "i18n", "store", "scores", "mail", "surveys", "answers", "ingest", "privacy", "alerts",
         "notify", "cases", "writeback", "web", "webhooks", "workers", "cli")
# The hand-offs the README names: (importing module, imported module or package).
HANDOFFS = {
    ("tracker.config", "tracker.surveys.custom"),
    ("tracker.scores.summary", "tracker.cases.stats"),
    ("tracker.surveys.send", "tracker.notify.events"),
    ("tracker.surveys.due", "tracker.cases.resurvey"),
    ("tracker.ingest.survey_events", "tracker.cases.resurvey"),
    ("tracker.ingest.resurvey_lines", "tracker.cases.resurvey"),
    ("tracker.ingest.case_lines", "tracker.cases.schemas"),
    ("tracker.ingest.case_lines", "tracker.cases.work"),
    ("tracker.notify.dispatch", "tracker.cases.target"),
    ("tracker.notify.dispatch", "tracker.writeback"),
    ("tracker.__main__", "tracker.cli.commands"),
    ("tracker.web.app", "webhooks.receiver"),
    ("tracker.web.app", "webhooks.inbound_mail"),
    ("tracker.web.app", "webhooks.fast_path"),
}


def modules() -> dict[str, Path]:
    found = {}
    for package in ("tracker", "webhooks", "workers"):
        for path in sorted((ROOT / package).rglob("*.py")):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def imports(path: Path, name: str, known: dict[str, Path]) -> set[str]:
    """The modules of this tree a module imports, wherever in it (a function's body too)."""
    found = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package.split(".")[:len(package.split(".")) - node.level + 1], base]).strip(".")
            for alias in node.names:  # `from tracker.web.pages import extra` names the module extra
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    return {module for module in found if module in known}


def package_of(module: str) -> str:
    parts = module.split(".")
    if parts[0] != "tracker":
        return parts[0]
    return parts[1] if len(parts) > 2 or (ROOT / "tracker" / parts[-1]).is_dir() else "top"


def test_every_package_imports_only_those_above_it_but_for_the_named_hand_offs() -> None:
    known = modules()
    upward = []
    for name, path in known.items():
        for imported in imports(path, name, known):
            mine, theirs = package_of(name), package_of(imported)
            if ORDER.index(theirs) > ORDER.index(mine) and (name, imported) not in HANDOFFS:
                upward.append(f"{name} -> {imported}")
    assert upward == [], "imports of a package below in the README's list that it does not name"
    listed = {package_of(module) for module in known}
    assert listed <= set(ORDER), listed - set(ORDER)


def test_no_module_imports_itself_back_through_others() -> None:
    known = modules()
    graph = {name: imports(path, name, known) - {name} for name, path in known.items()}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*trail[trail.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    assert cycles == [], "\n".join(" -> ".join(cycle) for cycle in cycles[:10])
