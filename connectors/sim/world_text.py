"""Names and message templates for the generated world (``world.py``).

Why templates and not a corpus: the world must be vendor-neutral, license-free
and deterministic, and the sentiment scorer must meet the same things real
inboxes hold: short sentences whose tone varies, e-mail replies that drag the
quoted history and a signature along (so stripping them matters), agent
replies that are polite but say "sorry", internal notes, bot auto-replies.
Every template's tone was checked against VADER (negative ones score
compound <= -0.05, positive ones >= 0.05); ``tests/test_sim_world.py`` keeps
that true for what the generator actually emits.
"""

from __future__ import annotations

import random

FIRST_NAMES = (
    "Jane", "John", "Maria", "Ahmed", "Li", "Sofia", "Lukas", "Emma", "Noah", "Olivia", "Liam", "Ava", "Mateo",
    "Chloe", "Ethan", "Mia", "Hiro", "Priya", "Arjun", "Fatima", "Omar", "Elena", "Ivan", "Anna", "Pierre",
    "Camille", "Giulia", "Marco", "Sven", "Ingrid", "Kwame", "Amara", "Diego", "Lucia", "Tom", "Grace", "Ben",
    "Hannah", "Yuki", "Mei", "Carlos", "Isabel", "Nina", "Oscar", "Ruth", "Samuel", "Tara", "Victor", "Wendy",
    "Zoe", "Felix", "Leah", "Max", "Nora", "Paul", "Rosa", "Sara", "Theo", "Uma", "Yara",
)
LAST_NAMES = (
    "Smith", "Johnson", "Garcia", "Müller", "Chen", "Rossi", "Dubois", "Kowalski", "Silva", "Nguyen", "Kim",
    "Patel", "Khan", "Ivanova", "Jensen", "Larsen", "Okafor", "Mensah", "Tanaka", "Sato", "Lopez", "Martin",
    "Bernard", "Fischer", "Weber", "Novak", "Horvat", "Costa", "Santos", "Brown", "Taylor", "Wilson", "Moore",
    "Clark", "Lewis", "Walker", "Young", "King", "Wright", "Scott", "Green", "Baker", "Adams", "Nelson", "Hill",
    "Campbell", "Mitchell", "Roberts", "Carter", "Phillips", "Evans", "Turner", "Torres", "Parker", "Collins",
)
ORG_PREFIXES = (
    "Acme", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay", "Stark", "Wayne", "Wonka", "Soylent", "Cyberdyne",
    "Tyrell", "Massive", "Oceanic", "Pied Piper", "Aperture", "Black Mesa", "Gringotts", "Monarch", "Nakatomi",
    "Oscorp", "Prestige", "Sterling", "Bluth", "Dunder", "Kramerica", "Virtucon", "Gekko", "Zorg", "Blue Sun",
    "Northwind", "Contoso", "Fabrikam", "Tailspin", "Woodgrove", "Litware", "Proseware", "Adatum", "Lucerne",
    "Alpine", "Coho", "Margie", "Fourth Coffee", "Wide World", "Trey", "Relecloud", "Humongous", "Lamna",
)
ORG_SUFFIXES = (
    "Logistics", "Labs", "Health", "Foods", "Systems", "Retail", "Energy", "Media", "Capital", "Robotics",
    "Analytics", "Travel", "Insurance", "Pharma", "Motors", "Studios", "Bank", "Telecom", "Airlines", "Apparel",
)
ORG_LEGAL = ("Inc", "GmbH", "Ltd", "LLC", "SA", "BV", "AB", "Group", "Holdings", "Co")

GROUPS = (("Support", False), ("Billing", False), ("Technical", False), ("Tier 2", True))

PRODUCT_AREAS: dict[str, tuple[str, ...]] = {
    "billing": ("Invoice shows the wrong amount", "Charged twice this month", "Need a copy of last month's invoice",
                "Question about upgrading our plan", "VAT number missing on invoice", "Refund for unused seats"),
    "login": ("Can't log in after password reset", "SSO login fails for new users", "Two-factor codes not arriving",
              "Account locked after too many attempts", "Invite link expired"),
    "integrations": ("CRM sync stopped working", "Chat notifications not arriving", "Webhook returns 500 errors",
                     "Calendar integration duplicates events", "Need help connecting our data warehouse"),
    "reporting": ("Dashboard numbers don't match the export", "Scheduled report was not sent",
                  "How do I filter the monthly report?", "CSV export is empty", "Charts not loading"),
    "api": ("API returns 429 too often", "Question about API pagination", "API key stopped working",
            "Timeouts on the orders endpoint", "Webhook signature does not validate"),
    "mobile": ("iOS app crashes on startup", "Android app won't sync", "Push notifications missing",
               "Offline mode loses my changes"),
    "data_import": ("CSV import fails at row 1200", "Duplicate contacts after import", "How to import historical data?",
                    "Import is stuck at 99%"),
    "performance": ("App is very slow today", "Pages take 30 seconds to load", "Search is timing out",
                    "Bulk update takes forever"),
}
AREA_WEIGHTS = (0.20, 0.14, 0.14, 0.14, 0.10, 0.09, 0.09, 0.10)
AREA_GROUP = {"billing": "Billing", "api": "Technical", "integrations": "Technical", "performance": "Technical"}

DETAILS = (
    "It started this morning.", "This affects several people on our team.", "We haven't changed anything on our side.",
    "I attached a screenshot.", "The error message says 'Something went wrong'.", "It happens in every browser.",
    "Our account ID is {n}.", "It worked fine last week.", "Steps: open the page, click save, nothing happens.",
)

DESCRIPTION_NEUTRAL = (
    "Hi, {subject_l}. {detail} Could you take a look?", "Hello team, {subject_l}. {detail}",
    "Hi there, quick question: {subject_l}. {detail} Thanks in advance.",
    "Hello, {subject_l}. {detail} Can you help?",
)
DESCRIPTION_NEGATIVE = (
    "Again: {subject_l}. This is the third time this month and it is really frustrating.",
    "{subject}. This is a serious problem for us and we are losing money because of it.",
    "Hi, {subject_l}. Honestly this is unacceptable, our whole team is blocked again.",
    "{subject}. I am very disappointed, this keeps breaking and nobody fixes it.",
)
CUSTOMER_NEUTRAL = (
    "I tried that but the issue is still there.", "Here is the screenshot you asked for.",
    "It happens on both Chrome and Firefox.", "Our account ID is {n}.", "Sure, I can do a call tomorrow at 10.",
    "Which settings page do you mean exactly?", "I cleared the cache as suggested, same result.",
    "Any update on this?", "The user in question is {first}.", "We are on the latest version.",
)
CUSTOMER_NEGATIVE = (
    "This is still not working and it has been {wait}. We are getting really frustrated.",
    "This is awful. Our whole team is blocked and angry about it.",
    "I have asked three times now and still no help. This is ridiculous.",
    "Very disappointed and angry with how this is being handled.",
    "We are seriously considering cancelling our contract if this isn't fixed.",
    "Still broken. This is a terrible experience and a waste of our time.",
    "The problem is back again. Your fix did not work and we lost data.",
    "No answer for {wait}? That is not acceptable for a paying customer.",
)
CUSTOMER_POSITIVE = (
    "Thank you so much, that fixed it!", "Great, works perfectly now. Appreciate the quick help!",
    "Perfect, thanks a lot for the fast answer.", "That did the trick, thanks! Have a great day.",
    "Awesome, everything works again. Thanks for your help.",
)
CUSTOMER_REOPEN = (
    "Sorry, I have to reopen this: the problem is back.", "This is happening again since yesterday.",
    "Unfortunately the issue returned after the update.",
)
AGENT_FIRST = (
    "Hi {first}, thanks for reaching out. I'm looking into this now and will update you shortly.",
    "Hello {first}, sorry for the trouble! Could you send us a screenshot of the error?",
    "Hi {first}, thanks for the details. Could you tell me which browser and version you use?",
    "Hi {first}, I can see the issue on our side and I'm checking with the team.",
)
AGENT_FOLLOWUP = (
    "Thanks {first}. I've passed this to our engineering team and will keep you posted.",
    "Could you try again now? We deployed a change that should help.",
    "I've reset the setting on our side. Please let me know if it works now.",
    "Thanks for your patience, {first}. We're still investigating.",
    "Please try clearing the cache and logging in again.",
)
AGENT_SOLVE = (
    "Good news: the fix has been deployed. I'll mark this as solved, just reply if anything comes up.",
    "Glad that worked! I'll close this ticket now, feel free to reach out anytime.",
    "This should be fixed now. Let us know if you need anything else.",
)
AGENT_APOLOGY = (
    "I'm really sorry for the delay, {first}. I've escalated this to our senior team as a priority.",
    "Apologies for the long wait. A specialist is now working on your case.",
)
NOTES = (
    "Checked the logs: error 500 from the sync worker.", "Looks like known bug ENG-{n}.",
    "Customer is on the annual plan.", "Reproduced on staging.", "Waiting on engineering for a fix.",
    "Escalating to Tier 2.", "Asked the billing team to double check the invoice.",
)
BOT_MESSAGES = (
    "Thanks for contacting Support! We've received your request (#{ticket}) and will get back to you soon.",
    "Hi! While you wait, our help center has articles that might answer your question.",
)
SYSTEM_MESSAGES = ("SLA policy applied: {policy}.", "Ticket routed to group {group}.")
SPAM_BODIES = (
    "Cheap watches!!! Visit our store for the best deals", "You have won a prize, click here to claim it",
    "SEO services for your website, first page guaranteed",
)
MERGE_NOTE = "This request was closed and merged into request #{target}."
RATING_COMMENTS = {
    1: ("Terrible support, nobody solved my problem.", "Way too slow and unhelpful."),
    2: ("Took far too long.", "The answer didn't really help."),
    3: ("It was ok.", "Solved eventually."),
    4: ("Good help, thanks.", "Quick and friendly."),
    5: ("Excellent support, thank you!", "Super fast and very helpful."),
}
SIGNATURES = ("\n\n--\n{first}", "\n\nSent from my iPhone", "\n\nBest regards,\n{first} {last}\n{org}",
              "\n\nThanks,\n{first}")
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def human_wait(seconds: int) -> str:
    """'3 days' / '5 hours': how a customer complains about a wait."""
    if seconds >= 2 * 86400:
        return f"{seconds // 86400} days"
    if seconds >= 2 * 3600:
        return f"{seconds // 3600} hours"
    return "hours"


def quote_header(ts: int, name: str) -> str:
    """The line an e-mail client puts above quoted history: ``On Mon, Jan 5, 2025 at 3:04 PM Jane <...> wrote:``."""
    days = ts // 86400
    weekday = WEEKDAYS[(days + 3) % 7]
    # civil-from-days (Howard Hinnant): no datetime objects in the hot loop
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    year = yoe + era * 400 + (1 if month <= 2 else 0)
    sec = ts % 86400
    hour, minute = sec // 3600, sec % 3600 // 60
    ampm = "AM" if hour < 12 else "PM"
    return (f"On {weekday}, {MONTHS[month - 1]} {day}, {year} at {(hour % 12) or 12}:{minute:02d} {ampm} "
            f"{name} <support@helpdesk.example> wrote:")


def decorate_email(rng: random.Random, body: str, *, quoted: str | None, quoted_at: int, quoted_by: str,
                   first: str, last: str, org: str) -> str:
    """Add a signature (40%) and the quoted previous message (35%, replies only), like real mail clients do."""
    if rng.random() < 0.4:
        body += rng.choice(SIGNATURES).format(first=first, last=last, org=org or "")
    if quoted is not None and rng.random() < 0.35:
        lines = "\n".join("> " + line for line in quoted.splitlines())
        body += "\n\n" + quote_header(quoted_at, quoted_by) + "\n" + lines
    return body
