"""Strip quoted email history, signatures and disclaimers from a message before sentiment scoring.

Why: a customer's reply usually carries the whole thread below it ("On Mon, … wrote:",
"> …", Outlook "From: … Sent: …" blocks) plus a signature and a legal disclaimer. Scored
as-is, every reply would re-count the tone of earlier messages (including the agent's
apologies, which VADER reads as negative: "sorry", "problem") and disclaimers ("prohibited",
"error", "destroy") would push every corporate customer towards "negative". Only the text
the customer actually wrote in this message should count.

The rules are deliberately conservative: a cut happens only at a line that clearly starts
quoted history or a sign-off, so a message that merely *mentions* "regards" or "wrote" keeps
its text. Cheap substring checks guard every regex because this runs in the scoring hot loop.
"""

from __future__ import annotations

import re

__all__ = ["clean_message", "strip_leading_mentions"]

# --- quoted history -------------------------------------------------------------------------------
# "On Tue, 3 Mar 2024 at 10:12, Jane Doe <jane@x.com> wrote:" — Gmail may wrap it over two lines.
_ON_WROTE = re.compile(
    r"^[ \t]*(?:On|Am|Le|El|Il|Op)\b[^\n]{0,300}(?:\n[^\n]{0,200})?"
    r"(?:\bwrote|\bschrieb|a\s+écrit|escribió|ha\s+scritto|schreef)[^\n]{0,80}:[ \t]*$",
    re.MULTILINE,
)
_ORIGINAL = re.compile(
    r"^[ \t]*(?:-{2,}\s*(?:Original Message|Ursprüngliche Nachricht|Message d'origine|Forwarded message)\s*-{2,}"
    r"|Begin forwarded message:|_{10,})[ \t]*$",
    re.MULTILINE | re.IGNORECASE,
)
# Outlook: "From: X" followed within a few lines by "Sent: …" / "Date: …" (and usually To:/Subject:).
_OUTLOOK = re.compile(
    r"^[ \t]*\*?(?:From|Von|De)\*?:[^\n]*\n(?:[^\n]*\n){0,3}?[ \t]*\*?(?:Sent|Date|Gesendet|Envoyé)\*?:",
    re.MULTILINE | re.IGNORECASE,
)
_QUOTE_LINE = re.compile(r"^[ \t]*>[^\n]*(?:\n|$)", re.MULTILINE)

# --- signatures -----------------------------------------------------------------------------------
_SIG_DASHES = re.compile(r"^--[ \t]?$", re.MULTILINE)  # RFC 3676 "-- " (clients often eat the space)
_SENT_FROM = re.compile(
    r"^[ \t]*(?:Sent from my\b|Sent from (?:Mail|Outlook|Yahoo|Gmail|Samsung|my)\b|Sent via\b"
    r"|Get Outlook for\b|Envoyé de mon\b|Von meinem\b[^\n]*gesendet)[^\n]*$",
    re.MULTILINE | re.IGNORECASE,
)
_CLOSINGS = (
    r"(?:best|kind|warm|warmest|with|many|all the)?\s*(?:regards|wishes)|best|cheers|sincerely|yours(?: truly)?"
    r"|(?:many |thanks? and |with )?thanks(?: again| and regards| in advance)?|thank you(?: again)?|thx|ta"
    r"|respectfully|cordially|talk soon|take care|mit freundlichen grüßen|viele grüße|cordialement"
)
# A valediction alone on its line, optionally with the sender's name ("Best regards, Jane Doe").
_CLOSING_LINE = re.compile(
    rf"^[ \t]*(?:{_CLOSINGS})[ \t]*[,.!]?[ \t]*(?-i:[A-Z][\w.'-]*(?:[ \t]+[A-Z][\w.'-]*){{0,2}})?[ \t]*[,.]?[ \t]*$",
    re.IGNORECASE,
)
_MAX_SIGNATURE_LINES = 5
_DISCLAIMER = re.compile(
    r"^[ \t]*(?:\*+\s*)?(?:CONFIDENTIALITY NOTICE|CONFIDENTIAL(?:ITY)?\s*:|DISCLAIMER\s*:|IMPORTANT NOTICE\s*:"
    r"|This (?:e-?mail|message|communication)(?: and any (?:files|attachments)[^\n]{0,40}?)?"
    r"(?:\s*\([^)\n]{0,60}\))? (?:is|are|may (?:contain|be)|contains?) (?:strictly )?"
    r"(?:confidential|intended|privileged|for the (?:sole|exclusive) use)"
    r"|The information (?:contained )?in this (?:e-?mail|message|communication)"
    r"|If you (?:are not the intended recipient|have received this (?:e-?mail|message) in error))",
    re.MULTILINE | re.IGNORECASE,
)
_MENTIONS = re.compile(r"^(?:\s*[@＠]\w+[:,]?)+\s*")
_BLANKS = re.compile(r"[ \t]*\n(?:[ \t]*\n)+")

_CLOSING_HINTS = ("regard", "best", "cheers", "sincerely", "yours", "thank", "thx", "ta", "respectfully",
                  "cordial", "talk soon", "take care", "grüße", "wishes")


def _cut(text: str, match: re.Match[str] | None) -> str:
    return text if match is None else text[: match.start()]


def _looks_like_signature_line(line: str) -> bool:
    """Name, title, company, phone, URL: short, few words, not a sentence ("Please fix it.")."""
    line = line.strip()
    if len(line) > 60 or line.endswith(("!", "?")):
        return False
    words = len(line.split())
    return words <= 6 and (not line.endswith(".") or words <= 2)


def _strip_closing(text: str) -> str:
    """Cut a trailing "Best regards,\nJane Doe\nAcme" block; never the whole message."""
    lines = text.split("\n")
    tail = 0  # non-empty lines seen after the candidate closing
    for index in range(len(lines) - 1, 0, -1):
        line = lines[index]
        if not line.strip():
            continue
        if _CLOSING_LINE.match(line):
            if any(part.strip() for part in lines[:index]):
                return "\n".join(lines[:index])
            return text
        tail += 1
        if tail > _MAX_SIGNATURE_LINES or not _looks_like_signature_line(line):
            return text
    return text


def strip_leading_mentions(text: str) -> str:
    """Drop the "@AmazonHelp @115830 " prefix of a tweet: addressing, not content."""
    return _MENTIONS.sub("", text, count=1)


def clean_message(text: str | None, *, strip_mentions: bool = False) -> str:
    """The part of ``text`` the author wrote in this message: no quoted thread, signature or disclaimer.

    Quoted history is cut at its first marker (everything after belongs to older messages);
    ``>``-quoted lines are removed wherever they are (inline replies keep the text between them).
    ``strip_mentions`` drops leading ``@handles`` (tweets, chat).
    """
    if not text:
        return ""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if strip_mentions and ("@" in text or "＠" in text):
        text = strip_leading_mentions(text)
    if "\n" not in text:
        # One-line messages (chat, tweets) carry no thread or signature block; only the phone footer.
        if "ent " in text or "Get Outlook" in text:
            text = _cut(text, _SENT_FROM.search(text))
        return text.strip()
    if "wrote" in text or "schrieb" in text or "écrit" in text or "escribi" in text or "scritto" in text \
            or "schreef" in text:
        text = _cut(text, _ON_WROTE.search(text))
    if "--" in text or "__" in text or "forwarded" in text.lower():
        text = _cut(text, _ORIGINAL.search(text))
    if ":" in text:
        text = _cut(text, _OUTLOOK.search(text))
    if ">" in text:
        text = _QUOTE_LINE.sub("", text)
    if "--" in text:
        text = _cut(text, _SIG_DASHES.search(text))
    lowered = text.lower()
    if "sent " in lowered or "outlook" in lowered or "envoy" in lowered or "von meinem" in lowered:
        text = _cut(text, _SENT_FROM.search(text))
        lowered = text.lower()
    if "confidential" in lowered or "disclaimer" in lowered or "intended" in lowered or "notice" in lowered \
            or "information" in lowered or "in error" in lowered:
        text = _cut(text, _DISCLAIMER.search(text))
        lowered = text.lower()
    text = text.rstrip()
    if any(hint in lowered for hint in _CLOSING_HINTS):
        text = _strip_closing(text)
    if "\n\n" in text or "\n \n" in text:
        text = _BLANKS.sub("\n\n", text)
    return text.strip()
