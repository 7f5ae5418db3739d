"""The judge of every text the model writes for a customer: would a shop sign it?

A small model writes fragments ("anything else", "Custo"), transcript artefacts ("A: ..."),
talk about its own task ("the customer's message"), the customer's own words handed back, or
the wrong language. ``sentence_problem`` names the first such fault, or returns ``None`` for a
text that reads like a shop wrote it. Numbers, codes, money and length are other guards' work.

Pure and stdlib only: no imports from the rest of the project, so any layer may use it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

__all__ = [
    "LANGUAGES",
    "copied_run_length",
    "copied_share",
    "detect_language",
    "sentence_problem",
    "words",
]

# --- thresholds -------------------------------------------------------------------------------

MIN_REPLY_WORDS = 4  # below this it is a fragment ("anything else", "Custo"), never a reply
MAX_COPIED_RUN = 4  # 2-4 shared words name the topic ("sneakers run"); 5 in a row is an echo
MIN_COVERING_RUN = 3  # shorter shared runs ("in stock", "your order") are just the same words
MAX_COPIED_SHARE = 0.6  # more than this of a reply in copied runs is the customer's text, edited
MIN_DETECT_WORDS = 2  # one word ("ok", "Danke") is too little to name a language
MIN_LANGUAGE_SCORE = 1.5  # the winner needs more than one function word shared by languages
LANGUAGE_MARGIN = 1.5  # the winner must outscore the runner-up this many times, else it is mixed
CHAR_WEIGHT = 0.5  # a letter like ß or ñ is evidence, but weaker than a whole function word
MAX_CHAR_SCORE = 2.0  # so a street name with umlauts cannot outvote a sentence of English words

LANGUAGES = ("en", "es", "de", "fr", "it", "pt", "nl")

# --- words ------------------------------------------------------------------------------------

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "\u00b4": "'"})
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")
_LINK = re.compile(
    r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+|\bhttps?://[^\s<>\"]*[^\s<>\".,;:!?)\]]|\bwww\.[\w.-]*\w",
    re.IGNORECASE,
)
_LINK_WORD = " 0 "  # an address counts as one word and matches no language


def words(text: str) -> list[str]:
    """The normalised words of ``text``: NFKC, lower case, punctuation stripped, "i'm" kept."""
    text = unicodedata.normalize("NFKC", text).translate(_APOSTROPHES).lower()
    return _WORD.findall(text)


def _mask_links(text: str) -> str:
    """``text`` with e-mail addresses and URLs replaced by one neutral word."""
    return _LINK.sub(_LINK_WORD, text)


# --- copying ----------------------------------------------------------------------------------


def _run_ends(text_words: Sequence[str], source_words: Sequence[str]) -> list[int]:
    """For each word of the text, the longest run ending there that also occurs in the source."""
    ends = [0] * len(text_words)
    previous = [0] * (len(source_words) + 1)
    for i, word in enumerate(text_words):
        current = [0] * (len(source_words) + 1)
        for k, other in enumerate(source_words, start=1):
            if word == other:
                current[k] = previous[k - 1] + 1
        ends[i] = max(current)
        previous = current
    return ends


def copied_run_length(text: str, source: str) -> int:
    """The longest run of consecutive normalised words of ``text`` found in ``source``."""
    return max(_run_ends(words(text), words(source)), default=0)


def copied_share(text: str, source: str, min_run: int = MIN_COVERING_RUN) -> float:
    """The share of ``text``'s words inside runs of ``min_run``+ words copied from ``source``."""
    text_words = words(text)
    if not text_words:
        return 0.0
    covered: set[int] = set()
    for end, length in enumerate(_run_ends(text_words, words(source))):
        if length >= min_run:
            covered.update(range(end - length + 1, end + 1))
    return len(covered) / len(text_words)


# --- language ---------------------------------------------------------------------------------

# Function words first, then the words shoppers and shops use; a word several languages share
# counts for each of them in equal parts, so only the distinctive ones decide.
_VOCABULARY: dict[str, str] = {
    "en": """the a an and or but is are was were be been am i you he she it we they me my your our
        their his her its us them this that these those of to in on at for with from by about as
        into can could would should will shall may might must do does did have has had not no yes
        please thanks thank hello hi hey what which who how when where why there here if so than
        then too very just get got any some all more much anything else something nothing there's
        it's i'm don't can't won't we're you're i'll we'll you'll i've we've i'd isn't aren't
        doesn't didn't that's let's what's here's s t m re ve ll d discount price order orders
        shipping delivery cheaper cheap expensive deal offer cancel subscription help happy sorry
        welcome great good today day days week want need like know let track under write support
        return returns size usual run runs true unsure take one give free cart item items out up fee
        worth knock student tight budget way wait patience team email reply lower further valid
        until end enjoy new jacket shoes stock lovely weekend right away sure look looking
        appreciate understand never again back after before only still other really think money time
        now buy bought pay paid refund parcel package arrive arrived interested nope yeah okay""",
    "es": """el la los las un una unos unas y o u pero de del al a en con por para sin sobre es son
        está están estoy soy eres ser hay muy más mas qué que cómo como cuándo dónde yo tú usted
        ustedes él ella nosotros mi mis tu tus su sus me te se le lo les nos no sí si gracias hola
        favor puedo puede puedes podemos quiero quisiera tengo tiene necesito precio descuento
        pedido envío gastos caro barato demasiado también ya este esta esto ese esa aquí ahora hoy
        mucho gusto ayudar ayuda compra tienda código cancelar suscripción oferta rebaja alto algo
        nada todo otro cuenta días saludos disculpe siento lamentamos claro bueno bien talla
        zapatillas estudiante presupuesto cambiar artículo paciencia camino mensaje pronto hacer
        otra vez gusta vale compro comprar mañana llega llegar paquete devolver reembolso tarjeta
        nunca siempre tenéis tienes hemos han fue sido estas estos grandes color entonces cuando""",
    "de": """der die das den dem des ein eine einen einem einer und oder aber ist sind bin bist war
        habe hat haben hast ich du sie er es wir ihr mich mir dich dir uns euch ihnen ihre ihrer
        ihren ihrem mein meine meinen dein unser unsere nicht kein keine ja nein bitte danke hallo
        mit von zu für auf aus bei nach über um im am zum zur vom beim ins wie was wer wo wann warum
        kann können könnten möchte würde wird werden soll muss auch noch schon sehr so nur mehr gibt
        gerne gern also will rabatt preis preise bestellung versand versandkosten teuer billig
        günstig angebot kündige kündigen abo sonst dann wenn dass weil hier jetzt heute vielen dank
        leider gutschein lieferung größe schuhe fallen normal klein groß einkauf tag tage schönen
        freundlichen grüßen entschuldigung tut leid helfen hilfe zurück sendung verfolgen konto
        nachricht weiter unterwegs kommt morgen geduld gut nehme nehmen paket angekommen
        zurückschicken geld nie immer wurde schicken geschickt denn doch mal etwas viel alle
        gegen""",
    "fr": """le la les un une des du de et ou mais est sont suis es être avoir ai as a avez avons
        ont je tu il elle nous vous ils elles on me te se moi toi lui leur mon ma mes ton ta tes son
        sa ses notre nos votre vos ce cet cette ces ça cela qui que quoi quel quelle pour par avec
        sans dans sur sous chez en au aux pas ne non oui plus très trop bien merci bonjour bonsoir
        plaît peux peut pouvez voudrais veux c'est j'ai n'est s'il qu'il c j l d n qu s m t jusqu
        lorsqu cher chère prix réduction remise commande livraison frais rabais offre annuler
        abonnement aussi encore déjà ici maintenant aujourd'hui désolé désolés navrée navré plaisir
        aider aide taille chaussures baisser article message répondons vite journée bonne où accord
        prends prendre colis arrivé retourner remboursement jamais toujours été fait faire bleu lien
        nouveau envoyé quand comment pourquoi parce beaucoup peu tout tous rien""",
    "it": """il lo la i gli le un uno una e ed o ma è sono sei siamo ho hai ha abbiamo avete hanno
        io tu lui lei noi voi loro mi ti ci si vi me te mio mia miei tuo tua suo sua nostro nostra
        vostro di del della dei delle dello degli a al alla ai da dal dalla in nel nella con su per
        tra fra che chi cosa come dove quando perché non sì no più molto troppo grazie ciao
        buongiorno prego posso può puoi potete possiamo vorrei voglio questo questa quello anche
        ancora già qui ora oggi prezzo sconto ordine spedizione caro costoso offerta codice
        annullare abbonamento aiutare aiuto taglia scarpe spiacenti dispiace purtroppo gentile
        cliente alto articolo cambiare l dell all dall nell sull dov c'è bene va prendo pacco
        arrivato restituire rimborso mai sempre stato fatto fare nuovo inviato blu tutto niente
        allora dopo prima ecco vero""",
    "pt": """o a os as um uma uns umas e ou mas de do da dos das em no na nos nas ao à aos com por
        para pelo pela sem é são está estão estou sou foi tem têm tenho há eu você vocês ele ela nós
        eles elas me te se lhe meu minha seu sua nosso nossa que quem qual como onde quando porque
        não sim muito mais também já aqui agora hoje obrigado obrigada olá oi favor posso pode podem
        podemos quero gostaria preciso preço desconto pedido encomenda frete envio entrega caro
        barato demais oferta código cancelar assinatura ajudar ajuda tamanho sapatos desculpe
        lamentamos cliente isso isto este esta esse essa tudo nada algo alguma algum vez alto mim
        alterar deste produto nunca chegou chega pacote devolver reembolso sempre feito fazer novo
        enviamos azul levo bem então depois antes ainda""",
    "nl": """de het een en of maar is zijn ben bent was waren heb hebt heeft hebben ik jij je u hij
        zij ze wij we jullie mij me mijn jouw uw ons onze hun dit dat deze die van voor met op aan
        in uit bij naar over om tot door niet geen ja nee wel graag alstublieft alsjeblieft dank
        bedankt hallo hoi wat wie waar wanneer waarom hoe kan kunt kunnen wil wilt willen zou zal
        moet ook nog al heel erg te zo meer korting prijs bestelling verzending verzendkosten duur
        goedkoop aanbieding annuleren abonnement helpen hulp maat schoenen sorry helaas klant er
        hier nu vandaag gaat krijgen krijg extra geven pakket aangekomen terugsturen groot nooit
        altijd nieuwe gestuurd terugbetaling verwerkt blauw goed neem nemen dus toch even alles
        niets veel wordt werd""",
}


def _word_weights() -> dict[str, dict[str, float]]:
    """Each vocabulary word's weight per language: 1 split evenly among the languages using it."""
    users: dict[str, list[str]] = {}
    for language, text in _VOCABULARY.items():
        for word in set(text.split()):
            users.setdefault(word, []).append(language)
    return {w: {lang: 1 / len(langs) for lang in langs} for w, langs in users.items()}


_WEIGHTS = _word_weights()

# Letters and marks that point at a language (several when they share it).
_CHAR_LANGUAGES: dict[str, tuple[str, ...]] = {
    "ñ": ("es",),
    "¿": ("es",),
    "¡": ("es",),
    "ä": ("de",),
    "ö": ("de",),
    "ü": ("de",),
    "ß": ("de",),
    "ã": ("pt",),
    "õ": ("pt",),
    "œ": ("fr",),
    "î": ("fr",),
    "û": ("fr",),
    "ò": ("it",),
    "ì": ("it",),
    "ç": ("fr", "pt"),
    "ê": ("fr", "pt"),
    "â": ("fr", "pt"),
    "ô": ("fr", "pt"),
    "è": ("fr", "it"),
    "ù": ("fr", "it"),
    "ë": ("fr", "nl"),
    "ï": ("fr", "nl"),
    "à": ("fr", "it", "pt"),
    "á": ("es", "pt"),
    "í": ("es", "pt"),
    "ó": ("es", "pt"),
    "ú": ("es", "pt"),
    "é": ("es", "fr", "it", "pt"),
}


def _word_scores(tokens: Sequence[str]) -> dict[str, float]:
    """Vocabulary evidence per language; an unknown "c'est" is scored by its parts."""
    scores = dict.fromkeys(LANGUAGES, 0.0)
    for token in tokens:
        parts = [token] if token in _WEIGHTS else token.split("'")
        for part in parts:
            for language, weight in _WEIGHTS.get(part, {}).items():
                scores[language] += weight
    return scores


def _char_scores(text: str) -> dict[str, float]:
    """Letter evidence per language, capped at ``MAX_CHAR_SCORE``."""
    scores = dict.fromkeys(LANGUAGES, 0.0)
    for char in text:
        for language in _CHAR_LANGUAGES.get(char, ()):
            scores[language] += CHAR_WEIGHT / len(_CHAR_LANGUAGES[char])
    return {language: min(score, MAX_CHAR_SCORE) for language, score in scores.items()}


def detect_language(text: str) -> str | None:
    """The ISO 639-1 code of ``text`` among ``LANGUAGES``; ``None`` if too short or unclear."""
    lowered = unicodedata.normalize("NFKC", _mask_links(text)).lower()
    tokens = [w for w in words(lowered) if any(c.isalpha() for c in w)]
    if len(tokens) < MIN_DETECT_WORDS:
        return None
    chars = _char_scores(lowered)
    scores = {lang: s + chars[lang] for lang, s in _word_scores(tokens).items()}
    ranked = sorted(scores.items(), key=lambda item: item[1], reverse=True)
    (best, top), (_, second) = ranked[0], ranked[1]
    if top < MIN_LANGUAGE_SCORE or top < second * LANGUAGE_MARGIN:
        return None
    return best


# --- format artefacts -------------------------------------------------------------------------

_SPEAKER_LABEL = re.compile(
    r"(?:^|(?<=\n)|(?<=[.!?]\s))[\"'(\[]*"
    r"(?:Q|A|(?i:answer|reply|response|assistant|customer|user|agent|bot|system|human|shopper"
    r"|output|input|question|action|respuesta|antwort|réponse|risposta|resposta|antwoord"
    r"|cliente|kunde|client|klant))\s*:(?!\d)"
)
_MARKUP = re.compile(
    r"[{}`]|\*\*|__|#{2,}|^\s*#|\"\w+\"\s*:|</?[a-z][\w-]*\s*/?>|\]\(|\bjson\b",
    re.IGNORECASE | re.MULTILINE,
)
_IDENTIFIER = re.compile(r"\b[^\W\d_][^\W_]*_\w+")
_ACTION = r"(?:respond|negotiate|accept[ _]offer)"
_ACTION_NAME = re.compile(
    rf"[\"'`]\s*{_ACTION}\s*[\"'`]|\b{_ACTION}\s*:|(?:->|→|=)\s*{_ACTION}\b"
    rf"|\b(?:action|route|routing|intent|classify|classified)\b[^.!?]{{0,20}}\b{_ACTION}\b",
    re.IGNORECASE,
)


def _format_problem(text: str) -> str | None:
    """A transcript label, JSON/markdown remnant, identifier or routing action in ``text``."""
    checks = (
        (_SPEAKER_LABEL, "speaker label"),
        (_MARKUP, "markup"),
        (_IDENTIFIER, "identifier"),
        (_ACTION_NAME, "action name"),
    )
    masked = _mask_links(text)
    for pattern, what in checks:
        if found := pattern.search(masked):
            return f"format: {what} {found.group(0).strip()!r}"
    return None


# --- meta talk --------------------------------------------------------------------------------

# "the customer service team", "the user manual" are the shop's nouns, not talk about a person.
_COMPOUNDS = (
    r"(?:service|support|care|team|account|area|portal|cent(?:er|re)|manual|guide|reviews?"
    r"|name|settings|profile|panel|experience|satisfaction)\b"
)
_META = re.compile(
    rf"\b(?:the|this)\s+(?:customer|user|shopper|buyer)s?\b(?!\s+{_COMPOUNDS})"
    r"|\b(?:customer|user)(?:'s|s')?\s+(?:message|request|query|question|input|text)\b"
    r"|\bas\s+an?\s+(?:ai|artificial\s+intelligence|language\s+model|chatbot|bot)\b"
    r"|\b(?:ai|large)\s+language\s+model\b|\bi(?:'m|\s+am)\s+an?\s+(?:ai|bot|language\s+model)\b"
    r"|\bdetailed\s+analysis\b|\banaly[sz]e\s+(?:the|this|your)\s+(?:message|request|text)\b"
    r"|\bi(?:'m|\s+am)\s+going\s+to\s+(?:respond|negotiate|route|classify)\b"
    r"|\bi\s+will\s+(?:now\s+)?respond\s+with\b"
    r"|\bmy\s+(?:instructions?|prompt|task)\b|\b(?:as|been|was)\s+instructed\b"
    r"|\b(?:the|this)\s+(?:system|task|assistant|chatbot)\b|\bsystem\s+prompt\b"
    r"|\bthe\s+(?:above|following)\s+(?:message|text|conversation)\b"
    r"|\b(?:el|la)\s+client[ea]\b|\b(?:der|des|dem|den)\s+kunden?\b|\b(?:le|du)\s+client\b"
    r"|\b(?:il|del)\s+cliente\b|\b(?:o|do)\s+cliente\b|\bde\s+klant\b",
    re.IGNORECASE,
)


def _meta_problem(text: str) -> str | None:
    """Talk about the model's own task, or about the customer in the third person."""
    normalised = unicodedata.normalize("NFKC", text).translate(_APOSTROPHES)
    if found := _META.search(normalised):
        return f"meta: {found.group(0)!r}"
    return None


# --- sentence shape ---------------------------------------------------------------------------


def _word_set(text: str) -> frozenset[str]:
    """The whitespace-separated words of ``text`` as a set (for the word lists below)."""
    return frozenset(text.split())


_OPENERS = "\"“„«»\u2018'([¿¡"
_CLOSERS = "\"”“»«\u2019')]"
_TERMINALS = ".!?"
_DOUBLE_QUOTES = '"“”„«»'
_BRACKETS = {")": "(", "]": "["}

_DISCOURSE_WORDS = _word_set(
    """furthermore moreover additionally however anyway anyways also else anything so well
    besides therefore thus hence meanwhile nevertheless nonetheless indeed then okay ok like
    basically actually finally lastly firstly secondly in addition other words and but or"""
)

# Words no sentence ends on in that language. English may strand prepositions ("looking for?");
# German and Dutch end on separable particles ("kommt morgen an"), so those are left out.
_DANGLING: dict[str, frozenset[str]] = {
    lang: _word_set(text)
    for lang, text in {
        "en": "the a an and or but nor because than if your my our their its every",
        "es": "el la los las un una unos unas y e o u pero porque que de del al a en con por "
        "para sin mi tu su mis tus sus nuestro nuestra",
        "de": "der die das den dem des ein eine einen einem einer und oder aber weil dass "
        "sondern für von ohne mein meine ihre unser unsere",
        "fr": "le la les un une des du au aux et ou mais car que de pour avec sans dans sur "
        "chez par mon ma mes ton ta tes son sa ses notre votre nos vos",
        "it": "il lo la i gli le un uno una e ed o ma che di del della a al alla da in con su "
        "per tra fra mio mia tuo tua suo sua nostro nostra",
        "pt": "o a os as um uma e ou mas porque que de do da dos das em no na com por para sem "
        "meu minha seu sua nosso nossa",
        "nl": "de het een en of maar want omdat van met mijn uw onze jouw",
    }.items()
}
_EN_STRANDED = _word_set("of for with from into onto about at by")
_WH_WORDS = _word_set("what which who whom whose where when how")
_ABBREVIATIONS = _word_set("e.g i.e etc approx vs ca incl z.b u.a bzw usw d.h p.ej p.ex ecc")
_SENTENCE_BREAK = re.compile(r"(\S*?)[.!?]+[\"”»)\]']*\s+[\"“„«(¿¡]*(\w)")
_LAST_TOKEN = re.compile("([\\w'\u2019-]+)\\W*$")


def _starts_like_a_sentence(text: str) -> bool:
    """The first letter or digit, after any opening quote or ¿/¡, is a capital or a digit."""
    stripped = text.lstrip().lstrip(_OPENERS)
    return bool(stripped) and (stripped[0].isupper() or stripped[0].isdigit())


def _ends_like_a_sentence(text: str) -> bool:
    """The text ends on . ! or ?, optionally followed by closing quotes, brackets or emoji."""
    tail = text.rstrip()
    while tail and (tail[-1] in _CLOSERS or _is_decoration(tail[-1])):
        tail = tail[:-1].rstrip()
    return bool(tail) and tail[-1] in _TERMINALS


def _is_decoration(char: str) -> bool:
    """An emoji or other symbol a closing line may carry after its full stop."""
    return unicodedata.category(char) in {"So", "Sk", "Mn"} or char == "\ufe0f"


def _balanced(text: str) -> bool:
    """Round and square brackets nest, and double quotes come in pairs."""
    stack: list[str] = []
    for char in text:
        if char in "([":
            stack.append(char)
        elif char in _BRACKETS and (not stack or stack.pop() != _BRACKETS[char]):
            return False
    return not stack and sum(text.count(q) for q in _DOUBLE_QUOTES) % 2 == 0


def _dangling_word(text: str, language: str) -> str | None:
    """The article/conjunction (or unstrandable preposition) the text stops on, if any."""
    found = _LAST_TOKEN.search(text.rstrip())
    if not found or "-" in found.group(1) or not found.group(1).islower():
        return None  # "Faites-le !" ends on a hyphenated pronoun; "Plan A." on a name
    last = found.group(1).translate(_APOSTROPHES)
    if last in _DANGLING.get(language, _DANGLING["en"]):
        return last
    if language == "en" and last in _EN_STRANDED and text.rstrip()[-1] in ".!":
        final = re.split(r"[.!?]\s+", text.rstrip())[-1]
        if not _WH_WORDS & set(words(final)):
            return last
    return None


def _lowercase_sentence_start(text: str) -> str | None:
    """A sentence after the first that starts in lower case ("Thanks. anything else.")."""
    for found in _SENTENCE_BREAK.finditer(text):
        before, first = found.group(1).lower(), found.group(2)
        if first.islower() and before.rstrip(".") not in _ABBREVIATIONS:
            return found.group(0).strip()
    return None


def _shape_problem(text: str, language: str) -> str | None:
    """Why ``text`` is not at least one complete sentence (in ``language``), or ``None``."""
    ws = words(text)
    if ws and all(w in _DISCOURSE_WORDS for w in ws):
        return f"fragment: only discourse words {' '.join(ws)!r}"
    if len(ws) < MIN_REPLY_WORDS:
        return f"fragment: {len(ws)} words, a reply needs {MIN_REPLY_WORDS}"
    if not any(c.isupper() for c in text):
        return "fragment: all lower case"
    if not _starts_like_a_sentence(text):
        return "fragment: does not start with a capital letter or digit"
    if not _ends_like_a_sentence(text):
        return "fragment: does not end with . ! or ?"
    if not _balanced(text):
        return "fragment: unbalanced quotes or brackets"
    if dangling := _dangling_word(text, language):
        return f"fragment: ends on {dangling!r}"
    if lower := _lowercase_sentence_start(text):
        return f"fragment: sentence starts in lower case {lower!r}"
    return None


# --- parroting and language -------------------------------------------------------------------


def _parrot_problem(text: str, customer_message: str) -> str | None:
    """The customer's own words handed back: one long run, or mostly copied runs."""
    if not customer_message.strip():
        return None
    run = copied_run_length(text, customer_message)
    if run > MAX_COPIED_RUN:
        return f"parroting: {run} consecutive words copied from the customer"
    share = copied_share(text, customer_message)
    if share > MAX_COPIED_SHARE:
        return f"parroting: {share:.0%} of the words copied from the customer"
    return None


def _language_problem(text: str, customer_message: str, shop_language: str) -> str | None:
    """A reply neither in the customer's language nor the shop's."""
    reply_language = detect_language(text)
    if reply_language is None or reply_language == shop_language:
        return None
    customer_language = detect_language(customer_message)
    if customer_language is None:
        return f"language: reply in {reply_language}, the shop writes {shop_language}"
    if reply_language != customer_language:
        return f"language: reply in {reply_language}, the customer wrote {customer_language}"
    return None


# --- the judge --------------------------------------------------------------------------------


def sentence_problem(
    text: str, customer_message: str = "", *, shop_language: str = "en"
) -> str | None:
    """Why ``text`` must not reach the customer (a short reason); ``None`` if a shop would sign it.

    Checks, first fault wins: format artefacts, meta talk, sentence shape, parroting of
    ``customer_message``, language (the customer's, or ``shop_language`` for templates).
    """
    masked = _mask_links(text)
    customer = _mask_links(customer_message)
    return (
        _format_problem(text)
        or _meta_problem(masked)
        or _shape_problem(masked, detect_language(masked) or shop_language)
        or _parrot_problem(masked, customer)
        or _language_problem(masked, customer, shop_language)
    )
