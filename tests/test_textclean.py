"""Quoted history, signatures and disclaimers are stripped; what the customer wrote survives."""

from __future__ import annotations

import pytest

from kpi_engine.textclean import clean_message, strip_leading_mentions

GMAIL_REPLY = """Hi team,

The export is still broken and we are losing data every day.

On Tue, Mar 3, 2026 at 10:12 AM Acme Support <support@acme.example> wrote:
> Sorry for the trouble! We're looking into the awful bug.
> Best,
> Support"""

GMAIL_WRAPPED = """Still not working.

On Tue, Mar 3, 2026 at 10:12 AM Jane from Acme Support <
support@acme.example> wrote:

> Hi, sorry about the problem"""

OUTLOOK_REPLY = """Great, works now.

From: Acme Support <support@acme.example>
Sent: Monday, March 2, 2026 9:00 AM
To: Bob Smith
Subject: RE: Broken invoice

We are sorry about the terrible problem."""

ORIGINAL_MESSAGE = """Thanks, that fixed it!

-----Original Message-----
From: Support
Sent: Monday
Subject: terrible failure"""

DASH_SIGNATURE = """I love the new dashboard.
-- 
Bob Smith
Head of Problems | Disaster Recovery Inc"""

IPHONE = """Please cancel my order, it's a disaster.

Sent from my iPhone"""

CLOSING = """The invoice is wrong again.

Best regards,
Jane Doe
Finance Manager
Acme Inc.
+1 555 123 4567"""

DISCLAIMER = """Works great now.

Kind regards, Jane Doe

CONFIDENTIALITY NOTICE: This email is confidential. If you are not the intended recipient, any use is strictly
prohibited. Please destroy all copies."""

INLINE_QUOTES = """> you said it would ship today
It did not ship. Awful.
> please wait
I have waited a week."""


@pytest.mark.parametrize(("raw", "expected"), [
    (GMAIL_REPLY, "Hi team,\n\nThe export is still broken and we are losing data every day."),
    (GMAIL_WRAPPED, "Still not working."),
    (OUTLOOK_REPLY, "Great, works now."),
    (ORIGINAL_MESSAGE, "Thanks, that fixed it!"),
    (DASH_SIGNATURE, "I love the new dashboard."),
    (IPHONE, "Please cancel my order, it's a disaster."),
    (CLOSING, "The invoice is wrong again."),
    (DISCLAIMER, "Works great now."),
    (INLINE_QUOTES, "It did not ship. Awful.\nI have waited a week."),
    ("Line one\r\n\r\nOn Mon, 2 Mar 2026, Ann <a@b.example> wrote:\r\n> old", "Line one"),
    ("Das Problem besteht weiter.\n\nAm 02.03.2026 um 10:00 schrieb Support <s@x.example>:\n> alt",
     "Das Problem besteht weiter."),
])
def test_strips_history_and_signatures(raw: str, expected: str) -> None:
    assert clean_message(raw) == expected


@pytest.mark.parametrize("text", [
    "Thanks\nBut this still doesn't work.\nPlease fix it.",  # a valediction word followed by real sentences
    "the thing is broken\nthanks for nothing",  # sarcasm is content, not a sign-off
    "Thanks!",  # the whole message: never cut to nothing
    "I wrote to you on Monday and nobody answered.",  # 'wrote' in a sentence is not a quote header
    "Regards the invoice: it is wrong.\nPlease check the total and the VAT line on page two of it.",
])
def test_keeps_content_that_only_looks_like_a_marker(text: str) -> None:
    assert clean_message(text) == text


def test_empty_and_none() -> None:
    assert clean_message(None) == ""
    assert clean_message("") == ""
    assert clean_message("\n\n  \n") == ""


def test_mentions_stripped_only_when_asked_and_only_leading() -> None:
    tweet = "@AmazonHelp @115830 yep, cs could not tell me when @UPS arrives"
    assert clean_message(tweet, strip_mentions=True) == "yep, cs could not tell me when @UPS arrives"
    assert clean_message(tweet) == tweet
    assert strip_leading_mentions("@a: @b, hello") == "hello"


def test_quote_removal_changes_the_score() -> None:
    """The reason this module exists: an agent's quoted apology must not make a happy reply negative."""
    from kpi_engine.sentiment import label, score_text
    from kpi_engine.vader_fast import get_fast_vader

    reply = ("Perfect, that fixed it. Thank you!\n\nOn Mon, 2 Mar 2026 at 09:00, Support <s@x.example> wrote:\n"
             "> We are so sorry, this awful bug is a terrible problem and a serious failure.\n"
             "> We apologise for the frustrating, horrible outage.")
    assert label(get_fast_vader().compound(reply)) == "negative"
    assert label(score_text(reply)) == "positive"
