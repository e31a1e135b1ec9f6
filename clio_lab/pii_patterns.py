"""The patterns the PII detector gives presidio for what its own recognisers lack or miss in several languages
(street addresses, national id numbers, account numbers, phone forms), with a score each, and the context words
that raise a match's score when they stand among the five words before it (:class:`clio_lab.pii.PIIDetector`).
"""

from __future__ import annotations

PATTERNS_VERSION = 10  # bump when PATTERNS, CONTEXT or the shape rules change: cached checks depend on them

_STREET_WORDS = (r"street|st|road|rd|avenue|ave|lane|ln|drive|dr|boulevard|blvd|way|court|ct|place|pl|square|sq|"
                 r"terrace|close|crescent|highway|hwy|parkway")
_STREET_FIRST = (r"[Rr]ue|[Aa]venue|[Bb]oulevard|[Cc]hemin|[Ii]mpasse|[Cc]alle|[Aa]venida|[Pp]aseo|[Pp]laza|[Cc]arrer|"
                 r"[Rr]ua|[Tt]ravessa|[Ll]argo|Via|Viale")  # "Via"/"Viale" capitalised: English "via Python"
# the street word, an optional article, then one to three capitalised words: Rue des Lilas, Calle Mayor
_STREET_FIRST_NAME = (rf"\b(?:{_STREET_FIRST}) (?:(?:de|del|de la|des|du|da|do|das|dos|la|le|les|los|las|di|della) )?"
                      r"[A-ZÀ-Ý][\w'À-ÿ.-]+(?: [A-ZÀ-Ý][\w'À-ÿ.-]+){0,2}")
PATTERNS: dict[str, list[tuple[str, str, float]]] = {
    "STREET_ADDRESS": [
        # 12 Elm Road / 221B Baker Street
        ("number then street", rf"\b\d{{1,5}}[A-Za-z]?,? (?:[A-Z][\w'.-]+ ){{1,4}}(?i:{_STREET_WORDS})\b\.?", 0.7),
        # 157 Rue des Lilas / Calle Mayor 5 / Rua das Flores, 20 / Via Roma 12: a house number before or after
        ("street word first", rf"\b\d{{1,5}},? {_STREET_FIRST_NAME}|{_STREET_FIRST_NAME},? \d{{1,5}}[A-Za-z]?\b", 0.65),
        # Rue des Lilas without a number: only with a context word ("address", "live", "habite", ...)
        ("street word first, no number", _STREET_FIRST_NAME, 0.4),
        # Hauptstraße 5 / Lindenweg 12a ("-ring" streets are left out: English "Spring 2", "String 1")
        ("German street", r"\b[A-ZÄÖÜ][a-zäöüß-]*(?:straße|strasse|str\.|weg|platz|allee|gasse|damm) "
                          r"\d{1,4}[a-z]?\b", 0.7),
    ],
    "ID_NUMBER": [
        ("ddd-dd-dddd", r"\b\d{3}-\d{2}-\d{4}\b", 0.45),
        ("passport-like", r"\b[A-Z]{1,2}\d{6,9}\b", 0.3),
        ("dotted national id", r"\b\d{2,3}\.\d{3}\.\d{3}-?\d{1,2}\b", 0.45),
        # Spanish DNI 12345678Z and NIE X1234567L
        ("letter-checked id", r"\b[XYZ]?\d{7,8}[A-Z]\b", 0.45),
        # French social security number 1 85 05 78 006 084 36
        ("French NIR", r"\b[12] ?\d{2} ?\d{2} ?\d{2} ?\d{3} ?\d{3} ?\d{2}\b", 0.5),
        # UK National Insurance number AB 12 34 56 C
        ("UK NI", r"\b[A-Z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b", 0.5),
        # German tax id 12 345 678 901, Portuguese NIF 123 456 789: only with a context word (score below 0.5)
        ("grouped digit id", r"\b\d{2,3}(?: \d{3}){2,3}\b", 0.3),
        # 9-character document numbers mixing letters and digits (passports, German ID cards): context only
        ("document number", r"\b(?=[A-Z0-9]{9}\b)(?=[A-Z]*\d)(?=\d*[A-Z])[A-Z0-9]{9}\b", 0.3),
        # Nordic personal numbers: Finnish 240259-079V, Swedish 961117-5820, Danish 040663-2461
        ("Nordic personal number", r"\b\d{6}[-+A-FU-Y]\d{3}[0-9A-Y]?\b", 0.55),
        # Czech and Slovak birth numbers 785312/1234 (rodné číslo): only beside "birth", "rodné", ...
        ("Czech birth number", r"(?<![\w/])\d{6}/\d{3,4}(?![\w/])", 0.45),
        # Italian codice fiscale BCCFRC15M25E852P
        ("Italian fiscal code", r"\b[A-Z]{6}\d{2}[A-EHLMPR-T]\d{2}[A-Z]\d{3}[A-Z]\b", 0.7),
        # other national numbers (Polish PESEL, Romanian CNP, Brazilian CPF, Dutch BSN...): only with a context word
        ("digits with an id word", r"(?<![\w.-])\d{9,13}(?![\w-])", 0.2),
    ],
    "ACCOUNT_NUMBER": [
        ("long digit run", r"\b\d{8,17}\b", 0.2),
        # bank account forms with a bank code in letters (GB KFLN36150797123041) or long runs; context only
        ("bank account form", r"\b[A-Z]{0,4}\d{8,30}\b", 0.2),
        # an IBAN that its country's length rule rejects (presidio checks it): only beside "IBAN" / "account"
        ("IBAN-like", r"\b[A-Z]{2}\d{2}[A-Z0-9]{11,30}\b", 0.3),
    ],
    "PHONE_NUMBER": [
        ("international", r"(?<![\w+])\+\d{1,3}(?:[ .-]?\(?\d{1,4}\)?){2,5}(?!\w)", 0.55),
        ("grouped digits", r"(?<![\w+-])\(?\d{3}\)?[ .-]\d{3,4}[ .-]\d{4}(?![\w-])", 0.5),
        # national forms: French 06 12 34 56 78, German 0171 123 4567, Spanish mobile 612 34 56 78 (context helps)
        ("national trunk prefix", r"(?<![\w+-])0\d{1,4}(?:[ .-]\d{2,4}){2,4}(?![\w-])", 0.45),
        ("Spanish mobile", r"(?<![\w+-])[6-9]\d{2}(?: \d{2}){3}(?![\w-])", 0.45),
        # +(370) 33946276 / (351) 936 252 417 / 23/343-0911 / 001-590-930-9706x1545
        ("bracketed code", r"(?<![\w])\+?\(\d{1,4}\)[ .-]?\d{2,4}(?:[ .-]?\d{2,4}){1,3}(?![\w-])", 0.5),
        ("slashed area code", r"(?<![\w/+-])\d{2,4}/\d{3}[ .-]?\d{3,4}(?![\w/-])", 0.45),
        ("with extension", r"(?<![\w+])(?:00\d{1,3}[ .-])?\(?\d{3}\)?[ .-]\d{3}[ .-]\d{4}[ \t]?(?:x|ext\.?)[ \t]?\d{1,5}\b",
         0.55),
        # 907 49 275 / 99604874 / 366966418: digits alone are phones only beside "call", "phone", ...
        # ("123 456 789 units" is a count written with thousands separators, not a phone)
        ("digit groups with a phone word",
         r"(?<![\w+.,-])(?!\d{1,3}(?: \d{3})+(?![\d]))(?:\d{2,4}(?: \d{1,4}){1,3}|\d{8,12})(?![\w-]|[.,]\d)", 0.2),
    ],
}
CONTEXT = {
    "STREET_ADDRESS": ["address", "live", "adresse", "dirección", "direccion", "endereço", "moro", "habite", "wohne"],
    "ID_NUMBER": ["id", "identity", "passport", "ssn", "social", "ausweis", "ausweisnummer", "identidad",
                  "identité", "identidade", "dni", "nif", "cpf", "national", "numéro", "número", "nummer",
                  "steuer", "steuernummer", "steuer-id", "insurance", "document", "passeport", "pasaporte",
                  "passaporte", "reisepass", "personalausweis", "identifikationsnummer", "tax", "security",
                  "pesel", "personnummer", "personal", "birth", "rodné", "rodne", "bsn", "cnp", "cpr", "hetu", "fiscale", "codice", "sin",
                  "nino"],
    "ACCOUNT_NUMBER": ["account", "acct", "iban", "konto", "kontonummer", "cuenta", "compte", "conta", "routing"],
    "PHONE_NUMBER": ["phone", "tel", "telephone", "mobile", "cell", "call", "telefon", "teléfono", "téléphone",
                     "telefone", "número", "numero", "whatsapp", "reach", "contact", "ring", "telefonnummer",
                     "handy", "handynummer", "móvil", "movil", "celular", "portable", "llámame", "llamar",
                     "appelle", "appelez", "appeler", "anrufen", "ruf", "ligue", "ligar"],
}
