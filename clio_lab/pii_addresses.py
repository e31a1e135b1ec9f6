"""Rules that find street addresses, which spaCy's small English model does not tag at all.

Street addresses in the forms of many countries: a house number then a street whose last word is a street
type (the USPS suffix list: "Street", "Grove", "Neck", ...), a street word first ("Rue", "Calle", "Via",
"ul.", "aleja", ...) or a street-type ending ("-katu", "-vej", "-gatan", "-straße", "-utca", ...) then a
number; the span runs on over apartment parts and the postcode and town that follow, across lines. Each
finding is ``(entity, start, end, score)``, as in :mod:`clio_lab.pii_rules` (names).
"""

from __future__ import annotations

import re

Finding = tuple[str, int, int, float]

# the USPS street suffixes (Publication 28, appendix C1) and their common abbreviations
_SUFFIXES = (
    "alley|aly|annex|arcade|avenue|ave|av|bayou|beach|bend|bluff|bluffs|bottom|boulevard|blvd|branch|bridge|brg|"
    "brook|brooks|burg|burgs|bypass|camp|canyon|cape|causeway|center|centre|circle|cir|circles|cliff|cliffs|club|"
    "common|commons|corner|corners|course|court|ct|courts|cove|coves|creek|crescent|cres|crest|crossing|crossroad|"
    "curve|dale|dam|divide|drive|dr|drives|estate|estates|expressway|extension|falls|ferry|field|fields|flat|flats|"
    "ford|fords|forest|forge|forges|fork|forks|fort|freeway|garden|gardens|gateway|glen|glens|green|greens|grove|"
    "groves|harbor|harbour|harbors|haven|heights|highway|hwy|hill|hills|hollow|inlet|island|islands|isle|junction|"
    "junctions|key|keys|knoll|knolls|lake|lakes|land|landing|lane|ln|light|lights|loaf|lock|locks|lodge|loop|mall|"
    "manor|manors|meadow|meadows|mews|mill|mills|mission|motorway|mount|mountain|mountains|neck|orchard|oval|"
    "overpass|park|parks|parkway|pkwy|parkways|pass|passage|path|pike|pine|pines|place|pl|plain|plains|plaza|"
    "point|points|port|ports|prairie|radial|ramp|ranch|rapid|rapids|rest|ridge|ridges|river|road|rd|roads|route|"
    "row|rue|run|shoal|shoals|shore|shores|skyway|spring|springs|spur|spurs|square|sq|squares|station|stravenue|"
    "stream|street|st|streets|summit|terrace|ter|throughway|trace|track|trafficway|trail|trl|trailer|tunnel|"
    "turnpike|underpass|union|unions|valley|valleys|via|viaduct|view|views|village|villages|ville|vista|walk|"
    "walks|wall|way|ways|well|wells|close|wynd|gate|quay|parade|esplanade|embankment|rise|chase|"
    "extensions|fall|crossroads|sound|retreat|circuit|concourse|promenade|grange|glade|boulevarde|"
    "approach|brae|cul-de-sac|outlook|strip|vale|waters|wharf|"
    "marg|chowk|ganj|nagar|gali|colony|bazar|bazaar|zila")  # Indian street types
# a street word that comes first, in the languages of Europe and the Americas
_FIRST = (r"rue|avenue|av\.|avda\.?|avenida|boulevard|bd|bulevar|bulevardul|bulevard|chemin|impasse|allée|place|"
          r"quai|cours|route|calle|c/|paseo|plaza|carrer|camino|callejón|ronda|travesía|glorieta|pasaje|"
          r"circunvalación|periférico|prolongación|andador|cerrada|privada|retorno|acceso|bajada|cañada|cuesta|"
          r"rambla|urbanización|vía|pasadizo|continuación|borgo|rua|travessa|largo|praça|"
          r"alameda|ladeira|estrada|via|viale|piazza|piazzale|corso|vicolo|strada|contrada|lungomare|aleja|al\.|"
          r"incrocio|stretto|rotonda|galleria|piazzetta|salita|traversa|rampa|circonvallazione|"
          r"peatonal|circuito|corredor|diagonal|eje|"
          r"ul\.|ulica|plac|os\.|osiedle|calea|strada|str\.|splaiul|soseaua|drumul|aleea|intrarea|șoseaua|piața|ulice|náměstí|nábřeží|"
          r"trieda|námestie|cesta|trg|iela|gatvė|prospekt|pr\.|sokak|caddesi|bulvarı")
# a street type written as the end of one word: Vaarnakatu, Buntmagervej, Gengatan, Hauptstraße, Kossuth utca
_ENDINGS = (r"katu|tie|kuja|polku|raitti|kaari|rinne|väylä|bulevardi|puistikko|ranta|tori|aukio|kierros|"
            r"linja|vej|vænget|gade|allé|gatan|gata|vägen|väg|gränd|veien|vei|veg|"
            r"gata|straße|strasse|str\.|weg|gasse|platz|-ring|allee|damm|steig|ufer|laan|straat|gracht|plein|"
            r"kade|singel|dreef|utca|út|tér|körút|rakpart|ulica|cesta|trg|iela|gatvė|tänav|maantee|sokak|sokağı|"
            r"caddesi|bulvarı|mahallesi|røa|svingen|bakken|stien|haugen|åsen|toppen|lökken|ringen|gärdet")

_HOUSE = r"\d{1,6}[A-Za-z]?(?:[/-]\d{1,4}[A-Za-z]?)?\.?"
_CAP = r"[^\W\d_][\w'’.-]*"
_UNIT = (r"(?:[ \t]*,?[ \t]*(?i:apt|apartment|suite|ste|unit|flat|fl|floor|bldg|building|edif|depto|dpto|interior|int|"
         r"piso|puerta|étage|esc|escalera|stiege|top|lgh|lok|m|bus|boîte|bte|app|appt|no|nr|piano|scala|"
         r"interno|bl|sc|ap|et|box|dto|torre|oficina|of|local|bodega|apartamento|apto|casa|lote|manzana|mz|"
         r"#)\.?[ \t]*\w{1,6})")
_MONTHS = (r"(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec|january|february|march|april|june|july|"
           r"august|september|october|november|december|chapter|section|version|step|part|page|room|level|"
           r"season|episode|volume|article|figure|table|line|item|question|day|week|year|grade)\b")
_ARTICLES = r"de|del|de la|des|du|da|do|das|dos|di|della|la|le|les|los|las"
_WORD_TYPES = ("utca|út|tér|körút|ulica|cesta|trg|iela|gatvė|tänav|sokak|caddesi|vej|gade|gatan|veien|straat|laan|"
               "kuja|tie|katu|polku|pot|tee|gata|väg|vei")
# patterns whose matches need no capitalised name word after the first (checked as written)
_UNIT_LINE = re.compile(r"(?P<core>\b(?:Flat|Studio|Apartment|Unit|Suite)[ \t]+\d{1,4}[A-Z]?)(?=[ \t]*(?:,|\n|[ \t]\d))")
_MILITARY = re.compile(r"(?P<core>\b(?:PSC|CMR|Unit)[ \t]+\d{3,5},?[ \t]+Box[ \t]+\d{3,5}"
                  rf"|\b(?:USNS|USNV|USS|USCGC)[ \t]+{_CAP})")
_SMALL_LETTER_STREET = re.compile(rf"(?P<core>\b{_CAP}(?:,?[ \t]+[^\W\d_A-Z][\w-]*){{0,2}},?[ \t]+(?:ulica|ulice|cesta|utca|út|tér|körút|trg|náměstí|nábřeží|aleja|iela|gatvė|tänav)"
                  rf"(?:[ \t]+[IVXLC]{{1,6}})?)\.?,?[ \t]+{_HOUSE}{_UNIT}*")
# numbered streets of Latin America and Indonesia, the number after a sign: Calle 83 # 42-9 Sur / Cl. 186J # 5-1 /
# Diagonal 8 N° 595 / Av. La Plata N° 911 / Gg. Cempaka No. 250 / Jl. Jend. Sudirman No. 76
_NUMBERED = re.compile(
    r"(?P<core>\b(?:Calle|Cl\.|Carrera|Cra\.|Cr\.|Kr\.|Diagonal|Diag\.|Dg\.|Transversal|Tv\.|Tr\.|Avenida|Av\.|Avda\.|"
    r"Boulevard|Bulevar|Pasaje|Camino|Ruta|Gang|Gg\.|Jalan|Jl\.|Jln\.|Lorong|Lr\.)"
    r"(?:[ \t]+[\w°ª.()-]+){1,6}?[ \t]+(?:#|N°|Nº|No\.|Nro\.)[ \t]*\d{1,5}[A-Za-z]?(?:-\d{1,4})?"
    r"(?:[ \t]+(?:Sur|Este|Norte|Oeste))?)" + _UNIT + "*")
# Post office boxes and Indian house numbers, then the lines that follow: PO Box 12 / H.No. 556
_BOX = re.compile(r"(?P<core>\b(?:P\.?O\.?[ \t]?Box|Casilla|H\.[ \t]?No\.|House[ \t]No\.?)[ \t]*\d{1,6}(?:/\d{1,4})?)")
# 30/179, Menon Path / 152, Patel Marg: a house number and a comma before the street (Indian addresses)
# 87548 rang Marchand / 1162 montée Hébert (Québec): a small street word, only after a house number
_HOUSE_FIRST_WORD = re.compile(rf"(?P<core>\b{_HOUSE}[ \t]+(?:rang|montée|côte|chemin|rue|boulevard|avenue|place|"
                               rf"croissant|impasse)[ \t]+{_CAP}(?:[ \t]+{_CAP}){{0,2}})" + _UNIT + "*")
# Ruta U-255, km 17 (Chile)
_ROUTE_KM = re.compile(r"(?P<core>\bRuta[ \t]+[A-Z]?-?\d{1,4},?[ \t]+km\.?[ \t]+\d{1,4})")
_COMMA_HOUSE = re.compile(rf"(?P<core>\b\d{{1,4}}(?:/\d{{1,4}})?,[ \t]+{_CAP}(?:[ \t]+{_CAP}){{0,2}}[ \t]+"
                          r"(?:Marg|Path|Chowk|Ganj|Nagar|Gali|Colony|Bazar|Road|Street|Lane|Zila)\b)")
_STREETS = [
    # 769 Brian Neck / 22842 Jason Bridge Suite 297 / 12 Elm Road
    (re.compile(rf"(?P<core>\b{_HOUSE}[ \t]+(?:{_CAP}[ \t]+){{0,3}}{_CAP}[ \t]+(?=[A-Z])(?i:(?:{_SUFFIXES}))\b\.?)"
                rf"{_UNIT}*"), 0.6),
    # Rue des Lilas 5 / Calle Mayor, 5 / aleja Zielona 690 / 8, avenue Lesage / Via Roma 12 int. 3
    (re.compile(rf"(?P<core>(?:\b{_HOUSE},?[ \t]+)?(?i:\b(?:{_FIRST}))[ \t]+(?:(?i:{_ARTICLES})[ \t]+)?{_CAP}"
                rf"(?:[ \t]+{_CAP}){{0,3}})(?:,?[ \t]+{_HOUSE})?{_UNIT}*"), 0.55),
    # Vaarnakatu 706 / Herma-Matthäi-Ring 1915 / Kossuth utca 206. / Sandvikrøa 3
    (re.compile(rf"(?P<core>\b(?:{_CAP}[ \t]+)?[^\W\d_][\w'’-]*(?i:(?:{_ENDINGS})))\.?,?[ \t]+{_HOUSE}{_UNIT}*"), 0.6),
    (re.compile(rf"(?P<core>\b{_CAP}[ \t]+(?i:(?:{_WORD_TYPES})))\.?,?[ \t]+{_HOUSE}{_UNIT}*"), 0.6),
    # Flat 10 / Studio 5 / Apartment 3B, then the street or town on the same or next line
    (_UNIT_LINE, 0.5),
    # US military mail: PSC 8041, Box 2421 / Unit 1691 Box 4499 / USNV Leppik, then "FPO AP 39898"
    (_MILITARY, 0.5),
    # Stara slovenska ulica 971 / Vrhovci, cesta XXXII 8a: words after the first written small, as these
    # languages write street names
    (_SMALL_LETTER_STREET, 0.55),
    (_NUMBERED, 0.6),
    (_BOX, 0.5),
    (_COMMA_HOUSE, 0.6),
    (_HOUSE_FIRST_WORD, 0.6),
    (_ROUTE_KM, 0.6),
    # Tranovského 74 / Pračanská 94 / Φαναρίου 59: a street with no street word, only when a postcode and town
    # follow (on the same line or the next, Greek postcodes after "ΤΚ")
    (re.compile(rf"(?P<core>\b(?!{_MONTHS})\b{_CAP}(?:[ \t]+{_CAP}){{0,2}})[ \t]+{_HOUSE}{_UNIT}*(?=[ \t]*(?:,|\n|,[ \t]*\n)"
                rf"[ \t]*(?:[A-Z]{{1,2}}-|ΤΚ[ \t]*)?\d{{2,5}}(?:[ -]\d{{2,3}})?[ \t]+[A-ZÀ-ÖØ-ÞĀ-ſΆ-ΏΑ-Ω])"), 0.5),
]
_ARTICLE_WORDS = set(_ARTICLES.replace("de la|", "").split("|")) | {"y", "e", "et", "und", "am", "an", "im", "sur",
                                                                      "sous", "upon", "on", "en", "i", "a"}
_STREET_WORDS = set(f"{_SUFFIXES}|{_FIRST}|{_ARTICLES}|{_WORD_TYPES}".replace("\\", "").split("|"))


def _town_words(words: list[str]) -> bool:
    """Whether the words after the first could all belong to a town's name."""
    for i, w in enumerate(words[1:], 1):
        if w[:1].islower() and w.lower() not in _ARTICLE_WORDS and not (
                len(w) <= 4 and i + 1 < len(words) and words[i + 1][:1].isupper()):
            return False
    return True


def _street_start(text: str, start: int, core_end: int) -> tuple[int, bool] | None:
    """Where a street really starts in a match: leading small words that are no street words ("to" in "to
    Vaarnakatu 706") are dropped. ``None`` when a word of the street's name is not capitalised ("83 is on its
    way" is no street); street words and articles may be written small ("boulevard Balmat", "Rue des Lilas").
    The flag says the street is street words only ("12 Park Road"), which counts only with a town or a cue."""
    words = list(re.finditer(r"[^\W\d_][\w'’.-]*", text[start:core_end]))

    def named(w: re.Match) -> bool:
        return w.group().lower().rstrip(".") not in _STREET_WORDS and w.group().lower() not in _STREET_WORDS

    while words and named(words[0]) and not words[0].group()[0].isupper() and text[start:start + words[0].start()].strip() == "":
        start += words[0].end()
        start += len(text[start:]) - len(text[start:].lstrip(" \t"))
        words = list(re.finditer(r"[^\W\d_][\w'’.-]*", text[start:core_end]))
    names = [w for w in words if named(w)]
    if not names and len(words) >= 2 and text[start:start + 1].isdigit() and all(w.group()[0].isupper() for w in words):
        return start, True
    ok = names and all(w.group()[0].isupper() and not (len(w.group()) > 1 and w.group().isupper()) for w in names)
    return (start, False) if ok else None
# after "lives at", "my address is", "package to", ...: a few words holding a house number are a street,
# whatever the street is called ("Gagarinova 5", "Na križovatkách 1", "792 Long Lookout")
_CUED_STREET = re.compile(
    rf"(?i:\b(?:address is|address:|lives at|live at|living at|located at|moved to|reside at|residing at|"
    rf"(?:ship|shipped|send|sent|deliver|delivered|mail|post|package|parcel|letter|documents)\s+to))[ \t]+"
    rf"(?P<core>(?:{_CAP}[ \t]+){{0,3}}{_HOUSE}(?:[ \t]+{_CAP}){{0,3}}|{_HOUSE}(?:[ \t]+{_CAP}){{1,4}}){_UNIT}*")
# what may follow a street: postcode and town, a town, a state and ZIP, a UK postcode, a country
_TAIL = re.compile(
    r"(?:[ \t]*(?:,[ \t]*\n|,|\n)[ \t]*(?:"
    r"(?:[A-Z]{1,2}-|ΤΚ[ \t]*)?\d{2,5}(?:[ -]\d{2,3})?,?[ \t]+[^\W\d_][\w'’.-]*"  # 90743 Multia / 515 00 Ronov / H-4915 X
    rf"(?:[ \t]+(?:(?:{_ARTICLES})\b|[A-ZÀ-ÖØ-ÞĀ-ſ(][\w'’.()-]*)){{0,4}}"
    r"|[A-Z]{1,2}\d[A-Z\d]?[ \t]*\d[A-Z]{2}"                               # TR3W 5AA
    r"|(?i:torre|apartamento|apto|oficina|local|bodega|casa|piso|dto|dpto|depto|interior|bloque|RD)\.?[ \t]+\w{1,6}"
    r"(?:[ \t]+(?i:apartamento|apto|dto|piso|oficina)\.?[ \t]+\w{1,6})?"           # Torre 5 apartamento 771 / RD 10
    r"|\d{5,7}(?=[ \t]*\n)"                                                    # a postcode on its own line
    r"|[^\W\d_][\w'’.-]*(?:[ \t]+[^\W\d_][\w'’.-]*){0,3},?[ \t]+(?:[A-Z]{2,3}[ \t]+)?\d{4,6}(?:-\d{3,4})?"  # Town, NE 39581
    r"|[^\W\d_][\w'’.-]*(?:[ \t]+[^\W\d_(][\w'’.()-]*){0,3}(?:[ \t]*\([A-Z]{2}\))?"  # Lake Katieview / Piadena (CR)
    r"))", re.M)
_CONTEXT = re.compile(r"(?i)\b(?:address|addressed|ship|shipping|shipped|deliver|delivery|send|sent|mail|post|"
                      r"lives?|living|located|moved|billing|package|parcel|visit|invoice|residence|reside|"
                      r"adresse|dirección|endereço|indirizzo|adres|osoite|adresa|cím)\b")


# -- addresses by their structure, in any script -------------------------------------------------------------------
# Parts between commas or single line breaks: a street with a house number ("Бриселска 8б/1", "д. 22",
# "הנקר 47", "Ηραίου 5"), short parts of capitalised words ("г. Тула", "Marinilla"), and a postcode with or
# without its town ("96605 Ресен", "ΤΚ 306 59 Γρεβενά", "Nagaon-271959", "NS X8N3P4", a bare "2121288"). A street
# part and a postcode part at most four parts apart make an address, whatever the street is called: the rules
# above need street words of the languages they were written for.
_POSTCODE = (r"(?:ΤΚ[ \t]*|[A-Z]{1,2}-)?(?:\d{5}-\d{3,4}|\d{4}-\d{3}|\d{3}[ \t]\d{2}|\d{2}-\d{3}|\d{4}[ \t]?[A-Z]{2}(?![^\W\d_])|\d{4,7}"
             r"|[A-Z]\d[A-Z][ \t]?\d[A-Z]\d|[A-Z]{1,2}\d[A-Z\d]?[ \t]?\d[A-Z]{2})(?![\w-])")
_TOWN_WORD = r"(?:[^\W\d_](?<![a-zà-ÿα-ωа-я])[\w'’.-]*|(?:de|del|la|le|les|los|de la|di|da|do|dos|das)(?=[ \t]))"
_POST_PART = re.compile(
    rf"(?:(?P<pre>(?:{_TOWN_WORD}[ \t-]+){{1,3}}(?:[A-Z]{{2,3}}[ \t]+)?)|[A-Z]{{2,3}}[ \t]+)?(?P<code>{_POSTCODE})"
    rf"(?P<town>(?:[ \t]+{_TOWN_WORD}){{0,3}})")
_HOUSE_TOKEN = re.compile(r"^(?:№|N°|Nº|No\.|#)?\d{1,5}[^\W\d_]{0,2}(?:[/-]\d{1,4}[^\W\d_]{0,2})*\.?$")
_ABBREV = re.compile(r"^[^\W\d_]{1,4}\.$")
_YEAR = re.compile(r"^(?:19|20)\d\d$")
_COUNTED = re.compile(rf"^(?:{_MONTHS[4:-3]}|windows|iphone|galaxy|python|ubuntu|macos|ios|android|pixel|"
                      r"version|v|release|build|issue|ticket|order|invoice|item|rank|top|gen|"
                      r"vol|ed|edition|model|type|class|size|level|stage|phase|round|act|scene|book|verse|"
                      r"psalm|track|disc|cd|dvd|ch|sec|art|fig|tab|pp?|para)\b\.?$", re.I)
# small words that open or sit inside streets where they are written small: Slavic, Armenian, Vietnamese, units
_SMALL_STREET = {"ул", "улица", "пр", "проспект", "пер", "переулок", "ш", "шоссе", "бул", "бульвар", "наб", "набережная",
                 "пл", "площадь", "проезд", "д", "дом", "к", "корп", "стр", "кв", "г", "с", "п", "ст", "вулиця", "вул",
                 "провулок", "шосе", "набережна", "площа", "узвіз", "парк", "буд", "майдан", "алея", "тупик",
                 "ք", "գ", "բն", "փ", "պող", "số", "đường", "phố", "hẻm", "ngõ", "khóm", "phường", "xã",
                 "apt", "apartment", "apartamento", "apto", "piso", "depto", "dpto", "suite", "unit", "flat", "floor",
                 "interior", "etapa", "torre", "bloque", "casa", "lote", "no", "nr", "bus", "boîte", "app", "esc",
                 "km", "sur", "norte", "este", "oeste", "rang", "montée", "allé", "chemin", "rue", "avenue"}
_TITLE_WORDS = {"dr", "mr", "mrs", "ms", "prof", "sr", "sra", "ing", "lic", "проф", "д-р", "herr", "frau", "mme", "m"}


def _token_ok(tok: str) -> bool:
    """A word that can be part of a street, town or unit: a house number, an abbreviation, a capitalised word (or one
    of a script without capitals), a small street word."""
    bare = tok.rstrip(".,").lower()
    if _HOUSE_TOKEN.match(tok) or _ABBREV.match(tok) or bare in _SMALL_STREET or bare in _STREET_WORDS:
        return True
    return tok[:1].isalpha() and not tok[:1].islower() and not (len(tok) > 3 and tok.isupper() and tok.isascii())


def _tokens(text: str, start: int, end: int) -> list[tuple[int, int, str]]:
    return [(start + m.start(), start + m.end(), m.group()) for m in re.finditer(r"\S+", text[start:end])]


def _house_part(toks: list[tuple[int, int, str]]) -> bool:
    """A street with its house number: a house number (not a year) and a word of two letters or more, or an
    abbreviation ("д. 22")."""
    return (any(_HOUSE_TOKEN.match(t) and not _YEAR.match(t.strip("#№.")) for _, _, t in toks)
            and any((sum(c.isalpha() for c in t) >= 2 or _ABBREV.match(t)) and not _HOUSE_TOKEN.match(t)
                    for _, _, t in toks)
            and len(toks) <= 7
            and not any(_COUNTED.match(t) for _, _, t in toks))  # "Section 12", "March 3", "Windows 11"


def _number_part(toks: list[tuple[int, int, str]]) -> bool:
    """A house number alone between commas or on its line ("R. Nunes, 627"), a street only beside a street name."""
    return len(toks) == 1 and bool(_HOUSE_TOKEN.match(toks[0][2])) and not _YEAR.match(toks[0][2].strip("#№."))


def _street_word_part(toks: list[tuple[int, int, str]]) -> bool:
    """A part that holds an abbreviation or a small street word ("г. Тула", "ул. Садовая")."""
    return any(_ABBREV.match(t) or t.rstrip(".").lower() in _SMALL_STREET for _, _, t in toks)


def _name_part(toks: list[tuple[int, int, str]]) -> bool:
    return 0 < len(toks) <= 5 and all(_token_ok(t) for _, _, t in toks) and any(
        sum(c.isalpha() for c in t) >= 2 for _, _, t in toks)


def _post_part(text: str, start: int, end: int, whole: bool) -> int | None:
    """Where a postcode part that opens ``text[start:end]`` ends (``whole``: it must fill the part)."""
    m = _POST_PART.match(text, start, end)
    if not m:
        return None
    code = m.group("code")
    bare = not (m.group("pre") or "").strip() and not m.group("town").strip()
    if bare and (_YEAR.match(code) or len(re.sub(r"\D", "", code)) < 4):
        return None
    if bare and text[m.end():end].strip(" \t.") and not text[m.end():end].lstrip(" \t")[:1].islower():
        return None
    if whole and text[m.end():end].strip(" \t."):
        return None
    if (m.group("pre") or "").strip() and m.group("pre").split()[0].rstrip(".").lower() in _TITLE_WORDS:
        return None
    return m.end()


def _parts(text: str) -> list[list[tuple[int, int]]]:
    """The text's blocks (ended by a blank line, ``;``, ``:``, ``!``, ``?`` or a full stop after a long word or a
    number), each a list of parts between commas and single line breaks, as ``(start, end)`` without spaces."""
    blocks, parts, pos = [], [], 0
    for m in re.finditer(r"\n[ \t]*\n|[;:!?](?=\s|$)|(?<=[^\W_]{4})\.(?=\s|$)|(?<=\d)\.(?=\s|$)|,[ \t]*,?|\n|$", text):
        a, b = pos, m.start()
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        if b > a:
            parts.append((a, b))
        if m.group().strip(" \t") not in (",", "", "\n") and not m.group().startswith(","):
            blocks.append(parts)
            parts = []
        pos = m.end()
        if m.end() == len(text):
            break
    if parts:
        blocks.append(parts)
    return blocks


def structural_address_findings(text: str) -> list[Finding]:
    """Addresses found by their parts (a street with a house number near a postcode), in any script."""
    if not re.search(r"\d{2}", text):
        return []
    out: list[Finding] = []
    for parts in _parts(text):
        for i, (ps, pe) in enumerate(parts):
            post_end = _post_part(text, ps, pe, whole=False)
            if post_end is None:
                continue
            # the street: this part or up to four before it, with only whole address-like parts between
            first, begin = None, None
            for j in range(i - 1, max(-1, i - 5), -1):
                s, e = parts[j]
                toks = _tokens(text, s, e)
                kept = []
                for tok in reversed(toks):
                    if not _token_ok(tok[2]):
                        break
                    kept.insert(0, tok)
                whole = len(kept) == len(toks)
                number_alone = whole and _number_part(kept) and (
                    (j + 1 < i and _name_part(_tokens(text, *parts[j + 1])))
                    or (j > 0 and _name_part(_tokens(text, *parts[j - 1]))))
                if first is None and (_house_part(kept) or number_alone):
                    first, begin = j, kept[0][0]
                    if not whole:
                        break
                elif not whole or not kept or len(kept) > 5:
                    if first is not None and kept and _street_word_part(kept):
                        begin = kept[0][0]  # "ship a copy to г. Самара, ул. Садовая, д. 14": the town's part
                    break
                elif first is not None and not _street_word_part(kept):
                    break  # a capitalised part before the street counts only with a street word ("г. Тула")
                elif first is not None:
                    begin = kept[0][0]
            # or the street after the postcode ("ք. Իջևան, 3745, Շուկայի 39"), when the postcode fills its part
            end = post_end
            if first is None and post_end == pe:
                for j in range(i + 1, min(len(parts), i + 3)):
                    toks = _tokens(text, *parts[j])
                    kept = []
                    for tok in toks:
                        if not _token_ok(tok[2]):
                            break
                        kept.append(tok)
                    if _house_part(kept):
                        first, end = j, kept[-1][1]
                        begin = ps
                        break
                    if len(kept) != len(toks) or not kept or len(kept) > 4:
                        break
                if first is not None:
                    for j in range(i - 1, max(-1, i - 3), -1):  # "ք. Իջևան" before the postcode
                        toks = _tokens(text, *parts[j])
                        if toks and len(toks) <= 4 and all(_token_ok(t) for _, _, t in toks) and any(
                                _ABBREV.match(t) for _, _, t in toks):
                            begin = toks[0][0]
                        else:
                            break
            if first is None:
                continue
            if end == pe:  # a town or region or two after the postcode ("053444, Marinilla, Antioquia")
                for j in range(i + 1, min(len(parts), i + 3)):
                    toks = _tokens(text, *parts[j])
                    if toks and len(toks) <= 3 and all(_token_ok(t) and not _HOUSE_TOKEN.match(t) for _, _, t in toks):
                        end = toks[-1][1]
                    else:
                        break
            while end > begin and text[end - 1] in ".,":
                end -= 1
            out.append(("STREET_ADDRESS", begin, end, 0.6))
    return out


# -- form fields: "Street: ...", "City: ...", "Adresse: ..." at the start of a line --------------------------------
_FIELD = re.compile(
    r"(?im)^[ \t]*(?:(?:street|home|postal|mailing|billing|shipping|delivery|permanent|current)[ \t]+address|"
    r"address(?:[ \t]+line[ \t]*\d)?|street|street name|city|town|city/town|postcode|post code|postal code|zip|"
    r"zip code|adresse|anschrift|straße|strasse|wohnort|ort|stadt|plz|ville|code postal|dirección|direccion|calle|"
    r"ciudad|localidad|código postal|endereço|morada|cidade|cep|indirizzo|città|adres|straat|woonplaats|plaats|"
    r"ulica|miasto|kod pocztowy|adresa|ulice|město|obec|psč|gade|postnummer|gata|gatuadress|postort|osoite|"
    r"katuosoite|kaupunki|postinumero|cím|utca|város|irányítószám|adresi|şehir|адрес|улица|город|адреса|місто)"
    r"[ \t]*:[ \t]*(?P<core>[^\n]*[^\W_][^\n]*)$")


def field_address_findings(text: str) -> list[Finding]:
    """The value of an address field of a form ("Street: Sapilasbulevardi 733", "City: Lempäälä")."""
    out: list[Finding] = []
    for m in _FIELD.finditer(text):
        core = m.group("core")
        value = core.strip()
        if len(value.split()) > 12 or not (any(c.isdigit() for c in value) or _token_ok(value.split()[0])
                                            and not value[:1].isdigit() and value[:1].isalpha()):
            continue
        start = m.start("core") + len(core) - len(core.lstrip())
        out.append(("STREET_ADDRESS", start, start + len(value), 0.6))
    return out


_AS_WRITTEN = (_UNIT_LINE, _MILITARY, _SMALL_LETTER_STREET, _NUMBERED, _BOX, _COMMA_HOUSE, _HOUSE_FIRST_WORD, _ROUTE_KM)


def address_findings(text: str) -> list[Finding]:
    """Street addresses, each with the postcode, town and unit parts that follow it (up to three more parts)."""
    out: list[Finding] = []
    for pattern, score in (*_STREETS, (_CUED_STREET, 0.45)):
        for m in pattern.finditer(text):
            begin = m.start("core") if pattern is _CUED_STREET else m.start()
            if pattern in _AS_WRITTEN:
                found = (begin, False) if text[begin].isupper() or text[begin].isdigit() else None
            else:
                found = _street_start(text, begin, m.end("core"))
            if found is None:
                continue
            start, street_words_only = found
            lead = re.search(r"(?<![\w.,/-])\d{3,6}[ \t]+$", text[max(0, start - 8):start])
            if lead and text[start:start + 1].isupper():  # "28245 Puruntie 82": a number before the street
                start -= len(lead.group())
            end = m.end()
            tail_parts = 0
            while tail_parts < 3:
                t = _TAIL.match(text, end)
                if not t or not t.group().strip(", \n\t"):
                    break
                piece = t.group().strip(", \n\t")
                # a town is capitalised and short; a following sentence is not part of the address
                if not piece[:1].isupper() and not piece[:1].isdigit():
                    break
                if len(piece.split()) > 5 or re.search(r"[.!?]\s", piece) and not re.search(r"\d", piece):
                    break
                # a town's words are capitalised but for articles and short joining words before a capitalised
                # one ("Vila Franca de Xira", "Vysoká pri Morave"); "Please also ship a" is the message going on
                if not re.search(r"\d", piece) and not _town_words(piece.split()):
                    break
                if piece.endswith((".", "!", "?")) and text[t.end():t.end() + 1] in ("", " ", "\n"):
                    end, tail_parts = t.end() - 1, tail_parts + 1  # the sentence ends with the town
                    break
                end = t.end()
                tail_parts += 1
            cued = bool(_CONTEXT.search(text[max(0, start - 60):start]))
            if street_words_only and not (tail_parts or cued):
                continue
            s = score + (0.15 if tail_parts else 0) + (0.15 if cued else 0)
            out.append(("STREET_ADDRESS", start, end, round(min(s, 0.95), 2)))
    return out + structural_address_findings(text) + field_address_findings(text)
