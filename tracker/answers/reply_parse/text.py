"""Plain text of an emailed reply: HTML turned to text, quoted history and signatures dropped."""

from __future__ import annotations

import re
from html.parser import HTMLParser

INVISIBLE = re.compile("[\u200b\u200e\u200f\ufeff\u00ad]")

BLOCKS = {"p", "div", "br", "li", "tr", "table", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "pre",
          "section", "article", "header", "footer", "dd", "dt"}
SKIPPED = {"script", "style", "head", "title", "blockquote", "template", "noscript", "xml"}
VOID = {"br", "img", "hr", "meta", "link", "input", "area", "base", "col", "embed", "source", "wbr"}
QUOTE_MARKERS = ("gmail_quote", "yahoo_quoted", "moz-cite-prefix", "protonmail_quote")
QUOTE_STARTS = ("divrplyfwdmsg", "appendonsend", "mail-editor-reference-message-container")


class _HtmlText(HTMLParser):
    """Collect the visible text of an HTML mail, leaving out quoted history."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip_tag: str | None = None
        self.skip_depth = 0
        self.stopped = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.stopped:
            return
        if self.skip_tag:
            self.skip_depth += tag == self.skip_tag
            return
        named = {k: (v or "") for k, v in attrs}
        marker = f"{named.get('class', '')} {named.get('id', '')}".lower()
        if tag not in VOID and any(m in marker for m in QUOTE_STARTS):
            self.stopped = True  # Outlook puts the quoted mail after this element, not inside it
        elif tag not in VOID and (tag in SKIPPED or any(m in marker for m in QUOTE_MARKERS)):
            self.skip_tag, self.skip_depth = tag, 1
        elif tag == "img" and 0 < len(named.get("alt", "").strip()) <= 8:
            self.parts.append(named["alt"].strip())  # Gmail sends emoji as images with the emoji as alt
        elif tag == "br":
            self.parts.append("\n")
        elif tag in BLOCKS:
            self._break()

    def _break(self) -> None:
        # Block edges end a line once; only <br> makes blank lines (Gmail wraps every line in a <div>).
        if self.parts and not self.parts[-1].endswith("\n"):
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if self.skip_tag:
            if tag == self.skip_tag:
                self.skip_depth -= 1
                if self.skip_depth <= 0:
                    self.skip_tag = None
            return
        if not self.stopped and tag in BLOCKS and tag != "br":
            self._break()

    def handle_data(self, data: str) -> None:
        if not (self.stopped or self.skip_tag):
            self.parts.append(re.sub(r"[ \t\r\n\f\xa0]+", " ", data))


def html_to_text(html: str) -> str:
    """Turn an HTML mail body into plain text without its quoted history."""
    parser = _HtmlText()
    try:
        parser.feed(html)
        parser.close()
        text = "".join(parser.parts)
    except Exception:  # html.parser is lenient, but a reply must never fail on odd markup
        text = re.sub(r"<[^>]*>", " ", html)
    return "\n".join(line.strip() for line in text.split("\n"))


# --- Quoted history and signatures ----------------------------------------------------------------

HEADER_END = re.compile(r"(\b(wrote|a\s+[ée]crit|escribi[óo]|ha\s+scritto|escreveu|napisa[łl](\s*\(a\))?|pisze|"
                        r"написал[аи]?)|写道|작성|のメッセージ)\s*[:：]\s*$", re.I)
HEADER_MID = re.compile(r"\b(skrev|schrieb|schreef|kirjoitti)\b.*:\s*$", re.I)
HEADER_OPENER = re.compile(r"^(on|den|am|le|el|op|il|em|dnia|\d|\w{2,4}\.?,?\s+\d)", re.I)
# Without the word: a time, then the sender's address in angle brackets and a colon ('30.09.2017, 18.30, "Jo" <jo@x>:',
# '2017-11-24 16:32 GMT+01:00 Jo <jo@x>:', Russian and other clients), or "On … <jo@x> wrote" without its colon.
HEADER_BARE = re.compile(r"\d{1,2}[:.]\d{2}\b.*<[^<>\s@]+@[^<>\s]+>\s*:\s*$")
HEADER_NO_COLON = re.compile(r"^on\b.*<[^<>\s@]+@[^<>\s]+>\s*wrote$", re.I)
TIME_OR_ADDRESS = re.compile(r"@|<|\d{1,2}[:.]\d{2}")
SEPARATOR = re.compile(r"^(-{3,}[^-]{3,60}-{3,}|_{2,4}|_{20,}|begin forwarded message:|videresendt melding:)$", re.I)
RULE = re.compile(r"^[-=_*~]*$")
WRAP_WIDTH = 60  # clients wrap quoted lines at 72-78 characters; a quoted line this long may have been wrapped
# An Outlook-style block of the quoted mail's headers: a From line and a Sent (or Date) line within a few lines of
# each other, either first, in the languages clients write them in.
FROM_LINE = re.compile(r"^\*?(from|fra|från|von|de|van|da|od|lähettäjä|от)\s*:\*?\s*\S", re.I)
SENT_LINE = re.compile(r"^\*?(sent|sendt|skickat|gesendet|envoy[ée](\s+le)?|enviad[oa](\s+em)?|verzonden|inviato|"
                       r"wysłan[eo]|lähetetty|отправлено|date|dato|datum|data|fecha|message du)\s*:", re.I)
MOBILE = re.compile(r"^(sent (from|with|via)|sendt (fra|från)|skickat från|von meinem|gesendet (von|mit)|"
                    r"envoy[ée] (de|depuis|à partir de)|enviado (desde|con)|verzonden (vanaf|met|van)|"
                    r"verstuurd (vanaf|met)|"
                    r"(get|hent|skaffa|obtenir|obtener|download|descargar) outlook|holen sie sich outlook|"
                    r"outlook voor)\b", re.I)
SIGN_OFFS = ("best regards|kind regards|warm regards|regards|best wishes|cheers|med vennlig hilsen|vennlig hilsen|"
             "mvh|hilsen|med venlig hilsen|venlig hilsen|vh|kh|kærlig hilsen|med vänliga hälsningar|vänliga hälsningar|"
             "vänlig hälsning|hälsningar|mit freundlichen grüßen|mit freundlichen grüssen|freundliche grüße|"
             "viele grüße|beste grüße|liebe grüße|lg|mfg|cordialement|bien cordialement|bien à vous|"
             "salutations|saludos|un saludo|saludos cordiales|atentamente|met vriendelijke groet|"
             "vriendelijke groet|groeten|mvg")
SIGN_OFF = re.compile(rf"^({SIGN_OFFS})[\s,.!:;-]*([^\W\d_][\w.'-]*(\s+[^\W\d_][\w.'-]*){{0,3}})?\s*$", re.I)


def _quote_header(lines: list[str], i: int) -> int:
    """Return how many lines from i form an "On … wrote:" line (clients wrap it), else 0."""
    first = lines[i].strip()
    if not first or len(first) > 300:
        return 0
    for n in (1, 2, 3):
        chunk = [line.strip() for line in lines[i:i + n]]
        # A wrapped header starts long ("On Mon, 22 Nov 2026 at 10:00, Acme Support <") and has no gaps.
        # Gmail may wrap the address's closing ">:" onto a line of its own, which looks like a quote.
        wrapped_end = n > 1 and chunk[-1] == ">:"
        if len(chunk) < n or (n > 1 and (not HEADER_OPENER.match(first) or len(first) < 24 or not chunk[-1]
                                         or (chunk[-1].startswith(">") and not wrapped_end))):
            break
        joined = " ".join(chunk[:-1]) + chunk[-1] if wrapped_end else " ".join(chunk)
        if len(joined) > 400:
            break
        if (HEADER_END.search(joined) and re.search(r"[\d@]", joined)) or (
                HEADER_MID.search(joined) and TIME_OR_ADDRESS.search(joined)) or HEADER_BARE.search(joined) or (
                HEADER_NO_COLON.search(joined) and re.search(r"\d", joined)):
            return n
    return 0


def _outlook_block(lines: list[str], i: int) -> bool:
    line = lines[i].strip()
    if FROM_LINE.match(line):
        return any(SENT_LINE.match(other.strip()) for other in lines[i + 1:i + 5])
    return bool(SENT_LINE.match(line)) and any(FROM_LINE.match(other.strip()) for other in lines[i + 1:i + 5])


def _wrapped_quote(lines: list[str], i: int) -> bool:
    """Say whether line i is the end of a quoted line its client wrapped without a ">": between two quoted lines,
    the one before it as long as a line is before a client wraps it (an answer written between quoted lines, under
    a short one such as a question, is kept)."""
    before, after = lines[i - 1].strip() if i else "", lines[i + 1].strip() if i + 1 < len(lines) else ""
    return bool(lines[i].strip()) and before.startswith(">") and len(before) >= WRAP_WIDTH and after.startswith(">")


def strip_quoted(text: str) -> str:
    """Keep only what the customer wrote: no quoted history, no signature."""
    lines = INVISIBLE.sub("", text).replace("\r\n", "\n").replace("\r", "\n").split("\n")
    kept: list[str] = []
    i = 0
    while i < len(lines):
        line, bare = lines[i], lines[i].strip()
        if bare.startswith(">") or _wrapped_quote(lines, i):
            i += 1
            continue
        if line.rstrip("\r") in ("--", "-- ") or SEPARATOR.match(bare) or _outlook_block(lines, i):
            break
        # "Sent from my iPhone" ends the reply; "Sent from my desk, is much easier" is part of it.
        if len(bare) <= 80 and ((MOBILE.match(bare) and not re.search(r",\s*\w", bare)) or SIGN_OFF.match(bare)):
            break
        header = _quote_header(lines, i)
        if header:
            following = next((x.strip() for x in lines[i + header:] if x.strip()), "")
            if not following.startswith(">"):
                break  # the quoted mail follows unmarked (Apple Mail, Outlook, HTML turned to text)
            i += header  # bottom-posting: the quoted lines are skipped, what follows them is kept
            continue
        kept.append(line.rstrip())
        i += 1
    while kept and RULE.match(kept[-1].strip()):  # a rule left above the history ("====", "-----")
        kept.pop()
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip()
