"""Rules that find names where spaCy's small English model does not (street addresses: :mod:`clio_lab.pii_addresses`).

The model tags names it has seen in English text; it misses most names from other languages, a name alone at
the start of a line, a surname after "last name?", names as dialogue speakers, and it tags no addresses at
all. These rules read the shapes such details take in messages:

* **names after a cue**: "my name is", "I'm", "Dear", "Hello", "regards,", a title ("Dr.", "Mrs", "Herr",
  "Mme"), a form label ("Last name:", "What's your last name?"), a dialogue speaker ("Nicole: ..."), a name on
  its own line above an address or before an e-mail address in brackets.

Each finding is ``(entity, start, end, score)``. Names are checked token by token: every word starts with a
capital letter of any alphabet ("Šárka", "Łukasz"), and common English words that follow cues ("Sure",
"Thanks", "Python") are refused.
"""

from __future__ import annotations

import re

Finding = tuple[str, int, int, float]

# a word that could be part of a name: letters of any script, with inner apostrophes or hyphens
_WORD = r"[^\W\d_](?:[^\W\d_]|['’-](?=[^\W\d_]))*"
_NAME = rf"{_WORD}\.?(?:[ \t]+(?:(?:van|von|de|der|den|da|di|du|del|della|dos|das|le|la|bin|al|ter|ten)[ \t]+)?{_WORD}){{0,3}}"

_CUES = (r"my name is|my name's|name is|i am|i['’]m|this is|call me|signed|sincerely|regards|best regards|"
         r"kind regards|warm regards|best wishes|cheers|thanks|thank you|many thanks|dear|hello|hi|hey|"
         r"c/o|patient|ship to|shipping to|bill to|deliver to|send to|billing address|"
         r"shipping address|delivery address|recipient")
_TITLES = (r"dr|mr|mrs|ms|miss|mx|prof|professor|sir|dame|lady|lord|herr|frau|mme|mlle|monsieur|madame|sr|sra|"
           r"srta|señor|señora|don|doña|dott|dottore|sig|signor|signora|pan|pani|ing|mgr|doc")
_LABELS = (r"attn|attention|first name|last name|surname|family name|full name|given name|middle name|maiden name|name|"
           r"patient|customer|client|passenger|employee|recipient|contact|guest|applicant|tenant|sender|from|to")

_CUE_NAME = re.compile(rf"(?i:\b(?:{_CUES}))[ \t]*[,:]?[ \t]+(?P<name>{_NAME})")
_KIN = (r"daughter|son|wife|husband|partner|friend|boss|colleague|coworker|co-worker|mother|mum|mom|father|dad|"
        r"brother|sister|neighbour|neighbor|landlord|landlady|teacher|doctor|cousin|uncle|aunt|grandmother|"
        r"grandfather|grandma|grandpa|niece|nephew|girlfriend|boyfriend|fiancé|fiancée|fiance|manager|roommate|"
        r"flatmate|client|tenant|student|child|kid|baby|stepson|stepdaughter|ex|sibling")
_KIN_NAME = re.compile(rf"(?i:\b(?:my|our|his|her|their)[ \t]+(?:(?:best|old|little|older|younger|elder|late|new)[ \t]+)?"
                       rf"(?:{_KIN}))[ \t]*,?[ \t]+(?P<name>{_NAME})")
# a verb or preposition before a name only where a clause about the person follows ("Tell Meveddet that ...",
# "a reference letter for Jon Cole, who ..."): on their own, "ask", "tell" and "for" precede anything
_VERB_NAME = re.compile(rf"(?i:\b(?:tell|ask|remind|thank|text|call|email|invite))[ \t]+(?P<name>{_NAME})"
                        rf"(?=[ \t]+(?i:that|to|if|whether|about|when)\b|,)")
_FOR_NAME = re.compile(rf"(?i:\b(?:for|from|with|to))[ \t]+(?P<name>{_NAME}),[ \t]+(?i:who|whom|whose|my|our)\b")
_TITLE_NAME = re.compile(rf"(?i:\b(?:{_TITLES}))\.?[ \t]+(?P<name>{_NAME})")
_LABEL_NAME = re.compile(rf"(?i:\b(?:{_LABELS}))[ \t]*:[ \t]*(?P<name>{_NAME})"
                         rf"|(?i:\bwhat(?:'s|’s| is) your (?:{_LABELS}))[ \t]*\?[ \t]*(?P<asked>{_NAME})")
_SPEAKER = re.compile(rf"^[ \t]*(?P<name>{_WORD}(?:[ \t]+{_WORD})?)[ \t]*:[ \t]*\S", re.M)
# one line of a dialogue: a speaker who addresses someone ("Nicole: Remember me, Mary?")
_SPEAKER_ADDRESSING = re.compile(rf"^[ \t]*(?P<name>{_WORD}):[^\n]*?,[ \t]+(?P<other>{_WORD})[ \t]*[?!](?=\s|$)",
                                 re.M)
_LINE_NAME = re.compile(rf"^[ \t]*(?P<name>{_WORD}(?:[ \t]+{_WORD}){{1,3}})[ \t]*$", re.M)
_BEFORE_EMAIL = re.compile(rf"(?P<name>{_WORD}(?:[ \t]+{_WORD}){{1,3}})[ \t]*[(<][\w.+-]+@")

# words that follow cues or open lines in ordinary messages and are no one's name
_NOT_NAMES = {
    "a", "an", "the", "and", "or", "but", "if", "so", "to", "of", "in", "on", "at", "for", "with", "from", "by",
    "i", "me", "my", "we", "our", "you", "your", "he", "she", "it", "they", "them", "this", "that", "there",
    "here", "what", "which", "who", "how", "why", "when", "where", "yes", "no", "not", "ok", "okay", "sure",
    "please", "thanks", "thank", "hello", "hi", "hey", "dear", "sir", "madam", "all", "everyone", "team",
    "again", "guys", "folks", "sorry", "great", "good", "well", "just", "also", "now", "then", "today",
    "tomorrow", "yesterday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday",
    "january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
    "november", "december", "chatgpt", "gpt", "assistant", "user", "bot", "ai", "python", "java", "javascript",
    "sql", "html", "css", "excel", "google", "microsoft", "apple", "amazon", "windows", "linux", "english",
    "german", "french", "spanish", "italian", "note", "example", "question", "answer", "error", "warning",
    "step", "summary", "title", "subject", "re", "fw", "fwd", "input", "output", "code", "data", "name",
    "address", "phone", "email", "date", "time", "total", "price", "yours", "best", "regards", "sincerely",
    "cheers", "love", "kind", "warm", "many", "much", "very", "more", "less", "some", "any", "each", "every",
    "one", "two", "three", "first", "last", "next", "new", "old", "human", "system", "customer", "client",
    "patient", "passenger", "employee", "recipient", "contact", "guest", "sender", "me,", "being", "having",
    "i'm", "i’m", "im", "i've", "i’ve", "i'd", "i’d", "i'll", "i’ll", "source", "sources", "reference",
    "references", "link", "url", "response", "reply", "prompt", "context", "instruction", "instructions", "task",
    "goal", "description", "topic", "keywords", "tags", "status", "type", "value", "result", "results", "option",
    "options", "features", "benefits", "pros", "cons", "pass", "fail", "true", "false", "none", "null",
    "before", "after", "case", "scenario", "version", "draft", "final", "update", "edit", "mentor", "admin",
    "doing", "going", "making", "working", "trying", "looking", "writing", "using", "reading", "learning",
    "happy", "glad", "able", "interested", "sure,", "done", "ready", "fine", "back", "here,", "afraid",
    # the labels of a form's address fields ("Street: ...", "City: ...")
    "street", "city", "town", "zip", "postcode", "country", "county", "province", "state",
}
_KEEP_LOWER = {"van", "von", "de", "der", "den", "da", "di", "du", "del", "della", "dos", "das", "le", "la", "bin",
               "al", "ter", "ten"}


_CAMEL_OK = re.compile(r"^(?:Mc|Mac|De|Di|Da|Du|La|Le|Van|Von|Fitz|O['’]|D['’])")


def _known_first(word: str) -> bool:
    names = known_names_or_none()
    return names is not None and word.casefold() in names[0]


def _name_tokens_ok(name: str) -> bool:
    tokens = name.replace("\t", " ").split()
    if not tokens or len(tokens) > 4 or tokens[0].lower() in _KEEP_LOWER:
        return False
    for t in tokens:
        bare = t.rstrip(".")
        if bare.lower() in _KEEP_LOWER:
            continue
        if not bare or not bare[0].isupper() or bare.lower() in _NOT_NAMES:
            return False
        # camelCase is code ("TypeError", "SceneKitView"), not a name, unless it is "McDonald" or "DeShawn"
        if re.search(r"[a-z][A-Z]", bare) and not _CAMEL_OK.match(bare):
            return False
        if len(bare) > 1 and bare.isupper():  # "SQL", "CASE II": acronyms and headings, not names
            return False
        if re.match(r"[A-Z]{2}[a-z]", bare):  # "ZHe", "HEllo": a unit or a typo, not a name
            return False
    return tokens[-1].rstrip(".").lower() not in _KEEP_LOWER


def _trim(text: str, start: int, end: int) -> tuple[int, int] | None:
    """Drop trailing words that are not name-like ("Sara Schwarz Apt" keeps "Sara Schwarz")."""
    words = list(re.finditer(r"\S+", text[start:end]))
    keep = []
    for w in words:
        bare = w.group().rstrip(".,;:!?")
        if not bare or (not bare[0].isupper() and bare.lower() not in _KEEP_LOWER) or bare.lower() in _NOT_NAMES:
            break
        keep.append(w)
    while keep and keep[-1].group().lower() in _KEEP_LOWER:
        keep.pop()
    if not keep:
        return None
    return start + keep[0].start(), start + keep[-1].start() + len(keep[-1].group().rstrip(".,;:!?"))


_CAP_RUN = re.compile(rf"(?<![\w'’.-])(?P<name>{_WORD}(?:[ \t]+(?:(?:van|von|de|der|da|di|del|dos|le|la)[ \t]+)?{_WORD}){{0,2}})"
                      r"(?![\w'’-])")


def _zipf(word: str) -> float:
    """How common a word is in English (wordfreq's Zipf scale: 7 for "the", 4 for "window", 0 for unseen)."""
    from wordfreq import zipf_frequency

    return zipf_frequency(word.casefold(), "en")


def _common_english(word: str) -> bool:
    return _zipf(word) >= 4.0


_CODE_WORD = re.compile(r"\b(?:class|def|function|struct|interface|enum|import|extends|implements|var|const|val|fn|"
                        r"func|trait|impl)$")


def _capitalised_runs(text: str) -> list[tuple[int, int]]:
    """Spans of one to four capitalised words in a row (particles such as "van" or "de" may join them)."""
    runs, current = [], []
    for w in re.finditer(r"[^\W\d_][\w'’-]*", text):
        word = w.group()
        gap = text[current[-1].end():w.start()] if current else ""
        joined = current and gap in (" ", "\t") or (current and gap == " " and word.lower() in _KEEP_LOWER)
        if word[0].isupper() or (current and word.lower() in _KEEP_LOWER and gap == " "):
            if current and not joined:
                runs.append(current)
                current = []
            current.append(w)
        else:
            if current:
                runs.append(current)
            current = []
    if current:
        runs.append(current)
    out = []
    for run in runs:
        # a sentence's capitalised first word ("Ask", "Then") is no part of the name that follows it
        while len(run) > 1 and (_zipf(run[0].group()) >= 5.0 or run[0].group().lower() in _KEEP_LOWER):
            run = run[1:]
        while run and run[-1].group().lower() in _KEEP_LOWER:
            run = run[:-1]
        if run and len(run) <= 4:
            out.append((run[0].start(), run[-1].end()))
    return out


def looks_like_a_name(tokens: list[str], first: frozenset[str], last: frozenset[str]) -> bool:
    """Some word is a known first name, or a known last name that is not an everyday English word ("Load" is a
    surname somewhere, "Load Balancer" no name), and not every word is a common English word."""
    bare = [t.rstrip(".,;:!?").removesuffix("'s").removesuffix("’s") for t in tokens]
    if all(_common_english(b) for b in bare):
        return False
    if any(b.casefold() in first for b in bare):
        return True
    # only a surname to go on: every other word must be rare too ("Load Balancer": "Balancer" is a surname)
    return any(b.casefold() in last and _zipf(b) < 4.5 and not any(_common_english(o) for o in bare if o != b)
               for b in bare)


def known_name_findings(text: str, first: frozenset[str], last: frozenset[str]) -> list[Finding]:
    """Capitalised words that open with a known first name: "Silvo Cerar", "my friend Réka". Two words need a
    known last name or a rare second word; one word alone must not open a sentence and must not be a common
    English word ("Will", "Grace", "Paris")."""
    out: list[Finding] = []
    for span in _capitalised_runs(text):
        name = text[span[0]:span[1]]
        tokens = name.split()
        if not _name_tokens_ok(name):
            continue
        head, tail = tokens[0].casefold(), tokens[-1].casefold()
        # given name first, or family name first (Hungarian "Szabó Irén"); never an everyday word ("Have", "As")
        if head not in first and not (len(tokens) >= 2 and head in last and tail in first):
            continue
        if _zipf(tokens[0]) >= 5.5:
            continue
        before = text[:span[0]].rstrip()
        if before.endswith(("@", "#", "$", ".", "/", "\\")) or _CODE_WORD.search(before):  # "@Bean", "class Foo"
            continue
        opens = not before or before[-1] in ".!?:;\n\"“”(" or before.endswith(("- ", "* "))
        if len(tokens) >= 2:
            if (tail in last or tail in first or not _common_english(tokens[-1])) and \
                    not all(_common_english(t) for t in tokens):
                out.append(("PERSON", span[0], span[1], 0.55 if opens else 0.6))
        elif not opens and _zipf(tokens[0]) < 3.5 and not tokens[0].endswith("s"):
            out.append(("PERSON", span[0], span[1], 0.55))  # alone, a name must be a rare word ("Shiro", "Réka")
    # two given names joined, anywhere in a sentence: "Anna and Mikko are coming"
    for m in _COORDINATED.finditer(text):
        pair = [m.group("a"), m.group("b")]
        if all(_name_tokens_ok(p) and p.casefold() in first and not _common_english(p) for p in pair):
            out += [("PERSON", m.start("a"), m.end("a"), 0.6), ("PERSON", m.start("b"), m.end("b"), 0.6)]
    return out


_COORDINATED = re.compile(rf"(?<![\w'’-])(?P<a>{_WORD})[ \t]+(?:and|&|or|und|et|y|e)[ \t]+(?P<b>{_WORD})(?![\w'’-])")


def known_names_or_none():
    from .pii_names import known_names

    return known_names()


def _overlapping(pattern: re.Pattern, text: str):
    """Matches that may start inside an earlier one ("Hi, I'm Anna": the cue "Hi" finds no name, "I'm" does)."""
    pos = 0
    while (m := pattern.search(text, pos)) is not None:
        yield m
        pos = m.start() + 1


def name_findings(text: str, *, after_address: set[int] | None = None) -> list[Finding]:
    """Names after cues, titles and form labels; dialogue speakers; a name alone on a line above an address
    (``after_address``: starts of address findings) or before an e-mail address."""
    out: list[Finding] = []

    def add(m: re.Match, score: float) -> None:
        group = "name" if m.group("name") is not None else "asked"
        span = _trim(text, m.start(group), m.end(group))
        if not span or not _name_tokens_ok(text[span[0]:span[1]]):
            return
        words = text[span[0]:span[1]].split()
        # one everyday word after a cue is the message going on ("Hello, Write a poem", "Hi, Can you")
        if len(words) == 1 and (_zipf(words[0]) >= 5.5 or (_zipf(words[0]) >= 4.5 and not _known_first(words[0]))):
            return
        out.append(("PERSON", span[0], span[1], score))

    for pattern, score in ((_TITLE_NAME, 0.85), (_LABEL_NAME, 0.8), (_CUE_NAME, 0.7), (_BEFORE_EMAIL, 0.7),
                           (_KIN_NAME, 0.7),
                           (_VERB_NAME, 0.6), (_FOR_NAME, 0.6)):
        for m in _overlapping(pattern, text):
            add(m, score)
    speakers = [m for m in _SPEAKER.finditer(text) if _name_tokens_ok(m.group("name"))]
    distinct = {m.group("name") for m in speakers}
    # a dialogue: two or three people speaking in turn ("Nicole: ...\nMary: ..."); many different labels,
    # each once, are headings ("Governance: ...", "History: ...")
    if len(speakers) >= 2 and (len(distinct) <= 2 or (len(distinct) == 3 and len(speakers) > 3)):
        for m in speakers:
            add(m, 0.75)
        names = {m.group("name") for m in speakers}
        for name in names:  # the speakers' names where they are addressed too ("Remember me, Carolyn?")
            for hit in re.finditer(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text):
                out.append(("PERSON", hit.start(), hit.end(), 0.75))
    # one speaker line alone says little ("Note: ..."), but a speaker with a known first name who addresses
    # someone with another is two people talking
    for m in _SPEAKER_ADDRESSING.finditer(text):
        a, b = m.group("name"), m.group("other")
        if a != b and all(_name_tokens_ok(w) and _known_first(w) for w in (a, b)):
            out.append(("PERSON", m.start("name"), m.end("name"), 0.7))
            out.append(("PERSON", m.start("other"), m.end("other"), 0.7))
    starts = after_address or set()
    for m in _LINE_NAME.finditer(text):
        before = text[:m.start()].rstrip()
        label = before.rsplit("\n", 1)[-1]
        if label.endswith(":") and len(label.split()) <= 4 and re.search(
                r"(?i)\b(?:ship|shipping|bill|billing|deliver|delivery|send|address|to|recipient)\b", label):
            add(m, 0.7)  # "Shipping to:\nOnuker Sezgin"
            continue
        nxt = text.find("\n", m.end())
        rest = text[m.end():].lstrip("\n \t")
        following = m.end() + (len(text[m.end():]) - len(rest))
        # a name line above an address: the address was found, or the next line opens with a house number and
        # the line holds a known name ("Trojan Horse" above "16" is a heading)
        names = known_names_or_none()
        if following in starts or (nxt >= 0 and re.match(r"\d", rest or "") and
                                   (names is None or looks_like_a_name(m.group("name").split(), *names))):
            add(m, 0.7)
    return out


from .pii_addresses import address_findings  # noqa: E402, F401  (its home before addresses had their own module)
