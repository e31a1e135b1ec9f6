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
_STREET_WORDS = set(f"{_SUFFIXES}|{_FIRST}|{_ARTICLES}|{_WORD_TYPES}".replace("\\", "").split("|"))


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
    return out
