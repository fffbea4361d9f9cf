"""A note's lines in the markup a helpdesk renders a note's text in, so that the customer's words show as typed.

A customer's comment, reason, extra answers and name reach an agent's screen inside a note that the helpdesk
renders: Jira Service Management as wiki markup, Chatwoot as Markdown. Unescaped, `*urgent*` turns bold,
`[your refund|https://…]` a link in the agent's name of a stranger's choosing, `{color:red}…` recoloured text, a line
`h1. …` or `# …` a heading. Every name and value is written so that each of those characters is shown as itself (the
note's own names hold none of them); the last line, the link to the customer's page on our dashboard, is ours.
"""

from __future__ import annotations

import re

Lines = tuple[tuple[str, str], ...]  # a note's fields: (name, value)
LINK = "Dashboard"  # the name of the last line: the customer's page on our dashboard, our own link, never escaped

# Jira's wiki markup: the characters its text effects, links, macros, tables, lists and images open or close with
# (https://jira.atlassian.com/secure/WikiRendererHelpAction.jspa), escaped with a backslash; a hyphen only where it
# could open or close -deleted- text (not inside "follow-up" or a date). A backslash itself, which would escape
# what follows or (doubled) break the line, is written as its character reference (Jira renders entities; pandoc's
# Jira writer does the same, there being no other way to show a backslash before markup).
JIRA_SPECIAL = re.compile(r"[\\*_?+^~|\[\]{}!#]|(?<![A-Za-z0-9])-|-(?![A-Za-z0-9])")
# CommonMark's inline markup (and GFM's strikethrough and tables): any ASCII punctuation may take a backslash.
MARKDOWN_INLINE = re.compile(r"[\\`*_\[\]<>!&~|]")
# What opens a block at the start of a line: a heading, a quote, a list item, a thematic break, a setext underline.
MARKDOWN_BLOCK = re.compile(r"^(\s*)([#>+\-=])", re.MULTILINE)
MARKDOWN_ORDERED = re.compile(r"^(\s*\d+)([.)])", re.MULTILINE)  # an ordered list item: digits, then "." or ")"


def jira_wiki(title: str, lines: Lines, link: str) -> str:
    """Return the note as Jira wiki markup: one line a field, a value's own line breaks as Jira's `\\\\`."""
    return "\n".join([title, *(f"{_jira(name)}: {_jira(value)}" for name, value in lines), f"{LINK}: {link}"])


def markdown(title: str, lines: Lines, link: str) -> str:
    """Return the note as Markdown: one line a field, each value's characters shown as typed."""
    return "\n".join([title, *(f"{_markdown(name)}: {_markdown(value)}" for name, value in lines), f"{LINK}: {link}"])


def _jira(value: str) -> str:
    """Escape a value's wiki markup; its line breaks become Jira's forced break, so no line of it opens a block."""
    escaped = JIRA_SPECIAL.sub(lambda m: "&#92;" if m.group(0) == "\\" else "\\" + m.group(0), value)
    return "\\\\ ".join(escaped.splitlines()) if escaped else escaped


def _markdown(value: str) -> str:
    """Escape a value's inline Markdown, and whatever would open a block at the start of one of its lines."""
    escaped = MARKDOWN_INLINE.sub(lambda m: "\\" + m.group(0), value)
    escaped = MARKDOWN_BLOCK.sub(r"\1\\\2", escaped)
    return MARKDOWN_ORDERED.sub(r"\1\\\2", escaped)
