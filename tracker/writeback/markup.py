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

# Jira's wiki markup (https://jira.atlassian.com/secure/WikiRendererHelpAction.jspa), each escaped with a backslash
# where it could open or close markup, so that everyday text ("Great service!", "Why?", "follow-up", 2026-12-01)
# goes as typed: the text effects and table cells (* _ + ^ ~ |), links and macros ([ ] { }), an image's opening "!"
# (right before its address), a citation's "??", and a hyphen that could open or close -deleted- text (not one
# between spaces or inside a word). A backslash itself, which would escape what follows or (doubled) break the line,
# is written as its character reference (Jira renders entities; pandoc's Jira writer does the same, there being no
# other way to show a backslash before markup). No value starts a line (each follows its name, its own line breaks
# become Jira's "\\"), so none opens a list or heading.
JIRA_SPECIAL = re.compile(r"\\|[*_+^~|\[\]{}]|!(?=\S)|\?(?=\?)|(?<![A-Za-z0-9])-(?=\S)|(?<=\S)-(?![A-Za-z0-9])")
# CommonMark's inline markup as markdown-it reads it (HTML off): emphasis and code (* _ `), links, images and
# Chatwoot's mention links ([ ]), GFM strikethrough (~~), an autolink (<scheme:…> or <name@host>) and a character
# reference (&name; &#123;); a backslash escapes any of them (and itself).
MARKDOWN_INLINE = re.compile(r"[\\`*_\[\]]|~(?=~)|<(?=[A-Za-z][A-Za-z0-9+.\-]{1,31}:|[^\s<>@]+@[^\s<>@]+>)"
                             r"|&(?=#?[A-Za-z0-9]+;)")
# What opens a block at the start of one of a value's own lines: a heading, a quote, a list item, a thematic break,
# a setext underline, an ordered list item (digits, then "." or ")", which takes the backslash).
MARKDOWN_BLOCK = re.compile(r"(?<=[\r\n])([ \t]*)([#>+\-=])")  # markdown-it ends a line at \n, \r\n or \r
MARKDOWN_ORDERED = re.compile(r"(?<=[\r\n])([ \t]*\d+)([.)])")


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
