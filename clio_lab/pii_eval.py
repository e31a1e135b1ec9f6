"""An evaluation set for PII detection that the detector was not written against.

Values come from Faker in many locales (names with their own letters, local address layouts, phone and id
formats, IBANs); they are placed in sentence and dialogue templates of the shapes real messages take ("My name
is ...", a billing block over several lines, a name alone at the start of a line, "Dr." before a name, names
as dialogue speakers, "What's your last name? ..."), and every value's span is recorded. Sentences with no
personal detail at all (but capitals, numbers, dates, versions and places) measure false alarms.

**Held out.** Templates and locales are each split in two by a hash of their text (:func:`split_of`), so the
``"test"`` split shares no template and no locale with ``"dev"``. Changes to the detector are made looking
at ``"dev"`` only; ``"test"`` is for reporting (benchmarks/pii_detection.py ``--sets faker-test``). Two more
development sets widen what the rules learn from without touching ``"test"``: ``"fresh"`` (the dev templates
with locales of neither split) and ``"shapes"`` (new templates with the dev, fresh and eight more locales).

Example:
    >>> rows = pii_sentences(20, split="dev", seed=1)  # doctest: +SKIP
    >>> rows[0]["spans"][0]["kind"]  # doctest: +SKIP
    'name'
"""

from __future__ import annotations

import hashlib
import random
import re
from typing import Any

KINDS = ("name", "address", "phone", "email", "card", "iban", "account", "national_id", "ip")

LOCALES = ("en_US", "en_GB", "en_IE", "en_AU", "en_CA", "de_DE", "de_AT", "de_CH", "fr_FR", "fr_CH", "es_ES",
           "es_MX", "it_IT", "pt_PT", "pt_BR", "nl_NL", "nl_BE", "fi_FI", "sv_SE", "da_DK", "no_NO", "cs_CZ",
           "sk_SK", "pl_PL", "hu_HU", "ro_RO", "hr_HR", "sl_SI", "tr_TR", "lt_LT", "lv_LV", "et_EE")

# Locales in neither split, for a second development set ("fresh": the dev templates with these locales),
# added 2026-12-03 when the dev split's addresses were at 99.5% and its misses had nothing left to teach: rules
# are read off the fresh misses, and the test split still shares no template and no locale with them.
# (Faker locales whose addresses are their own: fr_BE, it_CH, de_LI and others fall back to US addresses.)
FRESH_LOCALES = ("en_NZ", "en_IN", "es_AR", "es_CL", "es_CO", "fr_CA", "id_ID", "el_GR")

# A third development set ("shapes", added 2026-12-04 when the fresh addresses stood at 94.8% and the held-out
# ones at 84.0%): new templates that put an address where no earlier template did (inside a sentence with text
# after it, after a name and a comma, in forms and letter heads, on one line), written without reading any
# test miss, with the dev and fresh locales and eight more of neither split. Rules read off its misses; the
# test split still shares no template and no locale with it.
SHAPE_LOCALES = ("mk_MK", "ru_RU", "uk_UA", "hy_AM", "en_BD", "zu_ZA", "he_IL", "vi_VN")
SHAPE_TEMPLATES = (
    "Our office is at {address}, second floor.",
    "Return address:\n{address}",
    "Deliver to {name} at {one_line_address} before noon.",
    "From: {name}\nAddress: {address}\nPhone: {phone}",
    "The new tenant at {street} is {name}.",
    "I live at {one_line_address} with my two cats.",
    "Venue: {one_line_address}",
    "Can you check whether {one_line_address} is in the delivery zone?",
    "{address}\n\nDear Sir or Madam,",
    "Mail the cheque to:\n\n{name}\n{address}\n\nThanks!",
    "{name}, {address}",
    "Write a complaint to my landlord; the flat is {one_line_address}.",
    "Name: {name}\nStreet: {street}\nCity: {city}",
    "We met at {name}'s place, {one_line_address}, last summer.",
    "Sender: {name}, {one_line_address}. Recipient: {name2}, {one_line_address2}.",
    "Update my address from {one_line_address} to {one_line_address2}.",
)

# {slot} placeholders: name, first, last, address, street, city, phone, email, card, iban, account, ssn, ip.
# One list for every shape; the split of each template is decided by its text, not by its place here.
TEMPLATES = (
    "My name is {first}.",
    "My name is {name} and I need help with my order.",
    "Hi, I'm {first} {last}. Could you check my account?",
    "This is {name} from the accounts team.",
    "Billing address: {name}\n{address}",
    "Shipping to:\n{name}\n{address}",
    "{name}\n\n{address}",
    "Please send the documents to {address}.",
    "I moved. My new address is {street}, {city}.",
    "What's your last name? {last}",
    "First name: {first}\nLast name: {last}",
    "Can you correct it to Dr. {name}?",
    "The appointment is with Dr. {last} next week.",
    "{first}: Remember me, {first2}?\n{first2}: Of course!",
    "{first}: Did you get the invoice?\n{first2}: Yes, thanks.",
    "Dear {name},\nthank you for your letter.",
    "Kind regards,\n{name}",
    "Best,\n{first}",
    "Write a reference letter for {name}, who worked with me for three years.",
    "Tell {first} that the meeting moved to Thursday.",
    "You can reach me on {phone}.",
    "Call {phone} if the parcel does not arrive.",
    "Phone: {phone}",
    "My mobile number changed to {phone}, please update it.",
    "Email me at {email}.",
    "Contact: {email}",
    "Send the report to {email} and {email2}.",
    "My card number is {card}, expiry next year.",
    "Card: {card}",
    "The payment from card {card} failed twice.",
    "Please transfer the refund to IBAN {iban}.",
    "IBAN: {iban}",
    "My bank account number is {account}.",
    "Account no. {account}, sort code 20-00-00.",
    "My social security number is {ssn}.",
    "National ID: {ssn}",
    "Here is my tax id {ssn} for the form.",
    "The server at {ip} keeps refusing my connection.",
    "Whitelist {ip} on the firewall.",
    "Login attempts came from {ip} last night.",
    "{name} ({email}) asked for a call back on {phone}.",
    "Patient {name}, born 1984, lives at {street}, {city}.",
    "Please invoice {name}, {address}, VAT included.",
    "Hello {first}, your package to {street} is on its way.",
    "Translate this for {first}: the keys are under the mat.",
    "Is {first} {last} a good name for a character?",
)

# Written after the first look at the test split's overall figure (never at its misses), to widen what "dev"
# covers: names in the middle of ordinary sentences. Always "dev".
DEV_EXTRA_TEMPLATES = (
    "I spoke with {name} yesterday about the refund.",
    "Please add {name} to the invoice as the contact person.",
    "{first} and {first2} are coming to the wedding.",
    "My daughter {first} is allergic to nuts.",
    "Our landlord, {name}, refuses to return the deposit.",
    "The report was signed by {name}.",
    "According to {name}, the shipment is delayed.",
    "Can you write a birthday message for my friend {first}?",
    "Forward this to {first} {last} in accounting.",
    "{name} is my emergency contact.",
    "I need a recommendation letter from Professor {last}.",
    "The flat is rented to {name} until May.",
)

CLEAN = (
    "Can you explain how photosynthesis works?",
    "Write a Python function that sorts a list of dictionaries by date.",
    "What is the capital of Australia?",
    "Summarise the plot of Hamlet in three sentences.",
    "My laptop runs Windows 11 and the update KB5034441 fails with error 0x80070643.",
    "The meeting is on 12 March 2024 at 10:30 in room 4B.",
    "Order 3 apples, 2 bananas and 1.5 kg of rice for under 20 euros.",
    "Compare the iPhone 15 Pro with the Samsung Galaxy S24.",
    "How do I install numpy 1.26 on Ubuntu 22.04?",
    "Explain the difference between TCP and UDP.",
    "Plan a three-day trip to Rome with museums and food.",
    "The recipe needs 250 g of flour, 2 eggs and 100 ml of milk.",
    "Draft an email to the team about the Q3 roadmap.",
    "What does HTTP status 404 mean?",
    "Give me a workout plan for Monday, Wednesday and Friday.",
    "Why is the sky blue during the day and red at sunset?",
    "Convert 72 degrees Fahrenheit to Celsius.",
    "List the planets of the Solar System in order.",
    "Help me write a cover letter for a data analyst job at a bank.",
    "In chapter 7 the Hobbit leaves the Shire for the Lonely Mountain.",
    "Version 2.3.1 fixed the memory leak reported in issue 4512.",
    "The train from Paris to Lyon takes about two hours.",
    "My Python script crashes with a KeyError when reading config.json.",
    "Recommend three fantasy novels like The Name of the Wind.",
    "Is it better to invest in index funds or ETFs?",
    "Set the timeout to 30 seconds and retry 5 times.",
    "Translate 'good morning' into German, French and Spanish.",
    "The Amazon river flows through Brazil, Peru and Colombia.",
    "Create a SQL query that groups orders by month for 2023.",
    "Microsoft Teams keeps crashing after the latest update.",
    "What are the symptoms of vitamin D deficiency?",
    "Write a haiku about autumn leaves in Kyoto.",
    "The invoice total is 1,249.99 USD including tax.",
    "Explain the Pythagorean theorem with an example.",
    "Python 3.12 removed the distutils module.",
    "Can you review this React component for performance issues?",
)


def split_of(text: str) -> str:
    """``"test"`` for about a third of templates and locales (by a hash of their text), ``"dev"`` for the rest."""
    return "test" if int(hashlib.sha256(text.encode("utf-8")).hexdigest(), 16) % 3 == 0 else "dev"


def _values(fake: Any, rng: random.Random) -> dict[str, str]:
    def one_line(s: str) -> str:
        return re.sub(r"\s*\n\s*", ", ", s.strip())

    first, last = fake.first_name(), fake.last_name()
    try:
        ssn = fake.ssn()
    except (AttributeError, NotImplementedError):  # a locale without national ids: a US one
        ssn = fake.unique.numerify("###-##-####")
    address = fake.address().strip()
    lines = [ln.strip() for ln in address.splitlines() if ln.strip()]
    return {"name": fake.name(), "first": first, "last": last, "first2": fake.first_name(), "address": address,
            "street": lines[0] if lines else fake.street_address(), "city": fake.city(), "phone": fake.phone_number(),
            "email": fake.email(), "email2": fake.email(), "card": fake.credit_card_number(), "iban": fake.iban(),
            "account": fake.bban() if rng.random() < 0.5 else fake.numerify("#" * rng.choice([8, 10, 12])),
            "ssn": ssn, "ip": fake.ipv4_public() if rng.random() < 0.8 else fake.ipv6(),
            "one_line_address": one_line(address)}


_KIND = {"name": "name", "first": "name", "last": "name", "first2": "name", "address": "address",
         "street": "address", "city": "address", "phone": "phone", "email": "email", "email2": "email",
         "card": "card", "iban": "iban", "account": "account", "ssn": "national_id", "ip": "ip",
         "name2": "name", "one_line_address": "address", "one_line_address2": "address"}


def _fill(template: str, values: dict[str, str]) -> tuple[str, list[dict[str, Any]]]:
    out, spans, pos = [], [], 0
    for m in re.finditer(r"\{(\w+)\}", template):
        out.append(template[pos:m.start()])
        start = sum(len(p) for p in out)
        value = values[m.group(1)]
        out.append(value)
        spans.append({"start": start, "end": start + len(value), "kind": _KIND[m.group(1)], "slot": m.group(1)})
        pos = m.end()
    out.append(template[pos:])
    text = "".join(out)
    # "{street}, {city}" is one address: merge adjacent address spans
    merged: list[dict[str, Any]] = []
    for s in spans:
        if merged and merged[-1]["kind"] == s["kind"] == "address" and text[merged[-1]["end"]:s["start"]].strip(", ") == "":
            merged[-1]["end"] = s["end"]
        else:
            merged.append(s)
    return text, merged


def pii_sentences(n: int = 1000, *, split: str = "dev", seed: int = 0, clean_share: float = 0.25) -> list[dict]:
    """``n`` sentences of the ``split`` (``"dev"``, ``"test"``, ``"fresh"``: the dev templates with locales of
    neither split, :data:`FRESH_LOCALES`, or ``"shapes"``: :data:`SHAPE_TEMPLATES` with the dev, fresh and
    :data:`SHAPE_LOCALES` locales): each ``{"text", "spans", "locale",
    "template", "clean"}``, spans ``{"start", "end", "kind"}``. About ``clean_share`` have no personal detail."""
    from faker import Faker

    if split not in ("dev", "test", "fresh", "shapes"):
        raise ValueError(f"split must be 'dev', 'test', 'fresh' or 'shapes', not {split!r}")
    part = "test" if split == "test" else "dev"  # "fresh" and "shapes" write with the dev clean sentences
    templates = [t for t in TEMPLATES if split_of(t) == part] + (list(DEV_EXTRA_TEMPLATES) if part == "dev" else [])
    clean = [t for t in CLEAN if split_of(t) == part]
    locales = [loc for loc in LOCALES if split_of(loc) == part]
    if split == "fresh":
        locales = list(FRESH_LOCALES)
    elif split == "shapes":
        templates, locales = list(SHAPE_TEMPLATES), locales + list(FRESH_LOCALES) + list(SHAPE_LOCALES)
    rng = random.Random(f"{seed}:{split}")
    fakers = {}
    rows = []
    for _i in range(n):
        if rng.random() < clean_share:
            text = rng.choice(clean)
            rows.append({"text": text, "spans": [], "locale": None, "template": text, "clean": True})
            continue
        loc = rng.choice(locales)
        if loc not in fakers:
            fakers[loc] = Faker(loc)
            fakers[loc].seed_instance(f"{seed}:{loc}")
        template = rng.choice(templates)
        values = _values(fakers[loc], rng)
        if split == "shapes":  # drawn only here, so that the other splits' values stay as they were
            values |= {"name2": fakers[loc].name(), "one_line_address2": _values(fakers[loc], rng)["one_line_address"]}
        text, spans = _fill(template, values)
        rows.append({"text": text, "spans": spans, "locale": loc, "template": template, "clean": False})
    return rows


def score(rows: list[dict], find: Any, min_cover: float = 0.5) -> dict[str, Any]:
    """Recall by kind (a span counts as found when findings cover at least ``min_cover`` of its non-space
    characters), the share of clean sentences flagged, and the misses (for reading).

    ``find(text)`` returns findings with ``start`` and ``end`` (e.g. ``PIIDetector().find``).
    """
    found, total = {}, {}
    misses, flagged_clean, n_clean = [], 0, 0
    for row in rows:
        findings = find(row["text"])
        if row["clean"]:
            n_clean += 1
            flagged_clean += bool(findings)
            continue
        for s in row["spans"]:
            chars = [i for i in range(s["start"], s["end"]) if not row["text"][i].isspace()]
            covered = sum(any(f.start <= i < f.end for f in findings) for i in chars)
            ok = bool(chars) and covered / len(chars) >= min_cover
            total[s["kind"]] = total.get(s["kind"], 0) + 1
            found[s["kind"]] = found.get(s["kind"], 0) + ok
            if not ok:
                misses.append({"kind": s["kind"], "value": row["text"][s["start"]:s["end"]], "text": row["text"]})
    n_found, n_total = sum(found.values()), sum(total.values())
    return {"overall": round(100 * n_found / n_total, 1) if n_total else None,
            "by_kind": {k: {"found": found[k], "of": total[k], "recall": round(100 * found[k] / total[k], 1)}
                        for k in sorted(total)},
            "clean_flagged": {"flagged": flagged_clean, "of": n_clean,
                              "share": round(100 * flagged_clean / n_clean, 1) if n_clean else None},
            "misses": misses}
