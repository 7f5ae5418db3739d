"""The sentence judge: what the model writes reaches a customer only if a shop would sign it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nodes.sentences import (
    LANGUAGES,
    MAX_COPIED_RUN,
    copied_run_length,
    copied_share,
    detect_language,
    sentence_problem,
    words,
)

SHIPPING = "The shipping fee makes this not worth it. Can you knock it?"
STUDENT = "I'm a student on a tight budget, is there anything you can do"
PRICE_ES = "El precio es muy alto."
PRICE_DE = "Rabatt bitte, sonst kündige ich!"
PRICE_FR = "C'est trop cher pour moi"

# (reply, customer message, the category the reason must name)
REPORTED = [
    pytest.param("anything else", "", "fragment", id="anything-else"),
    pytest.param("Custo", "", "fragment", id="Custo"),
    pytest.param("custo", "", "fragment", id="custo"),
    pytest.param("furthermore", "", "fragment", id="furthermore"),
    pytest.param("likely am i to cancel", "", "fragment", id="likely-am-i"),
    pytest.param("A: No, I'm not able to provide you with a price.", "", "format", id="qa-A"),
    pytest.param(
        "I am not able to provide a detailed analysis of the customer's message",
        "",
        "meta",
        id="detailed-analysis",
    ),
    pytest.param(SHIPPING, SHIPPING, "parroting", id="shipping-copy"),
    pytest.param(
        "I'm a student on a tight budget, is there anything you can't",
        STUDENT,
        "fragment",
        id="student-copy",
    ),
    pytest.param(
        "I'm a student on a tight budget, is there anything you can't?",
        STUDENT,
        "parroting",
        id="student-copy-punctuated",
    ),
    pytest.param(PRICE_ES, PRICE_ES, "parroting", id="spanish-copy"),
    pytest.param("I'm going to respond with anything else.", "", "meta", id="names-routing"),
    pytest.param(
        "Lo siento, no puedo ofrecer un descuento ahora.",
        "Can I get a discount?",
        "language",
        id="spanish-to-english-customer",
    ),
]

OWN_BAD = [
    # fragments
    pytest.param("Thanks for the.", "", "fragment", id="dangling-article"),
    pytest.param("Sure, I can do that for your.", "", "fragment", id="dangling-possessive"),
    pytest.param("We can offer you free shipping and.", "", "fragment", id="dangling-and"),
    pytest.param("We can offer you a better price and", "", "fragment", id="no-full-stop"),
    pytest.param("your order has shipped today.", "", "fragment", id="lowercase-start"),
    pytest.param("Your order has shipped today", "", "fragment", id="no-end-punctuation"),
    pytest.param("Well, anyway, so, furthermore.", "", "fragment", id="only-discourse"),
    pytest.param('We will ship it "today.', "", "fragment", id="unbalanced-quote"),
    pytest.param("Your order (see the receipt is on its way.", "", "fragment", id="open-bracket"),
    pytest.param("Thanks for waiting. anything else you need.", "", "fragment", id="lower-2nd"),
    pytest.param("Happy to help with.", "", "fragment", id="dangling-preposition"),
    pytest.param("Gracias por su compra y.", "¿Dónde está mi pedido?", "fragment", id="dangling-y"),
    pytest.param(
        "Danke für Ihre Bestellung und.", "Wo ist meine Bestellung?", "fragment", id="dangling-und"
    ),
    # format artefacts
    pytest.param("Q: Can I get a discount? A: Yes.", "", "format", id="qa-transcript"),
    pytest.param("Answer: We can offer free shipping.", "", "format", id="answer-label"),
    pytest.param("Assistant: Thanks for your message!", "", "format", id="assistant-label"),
    pytest.param("Customer: Can I get a discount? Agent: Sure.", "", "format", id="customer-label"),
    pytest.param('{"reply": "Thanks for your message!"}', "", "format", id="json"),
    pytest.param('"reply": "Thanks for your message."', "", "format", id="json-field"),
    pytest.param("**Thanks** for your order, we appreciate it.", "", "format", id="bold"),
    pytest.param("### Reply\nThanks for your order.", "", "format", id="heading"),
    pytest.param("Use `accept` to take the deal now.", "", "format", id="backticks"),
    pytest.param("Please confirm with accept_offer today.", "", "format", id="action-id"),
    pytest.param("The customer_message asks for a discount.", "", "format", id="field-name"),
    pytest.param("I will route this to negotiate now.", "", "format", id="route-to-action"),
    pytest.param("<p>Thanks for your order.</p>", "", "format", id="html"),
    # meta talk
    pytest.param(
        "The customer is asking for a discount, so I will offer one.", "", "meta", id="3rd-person"
    ),
    pytest.param("As an AI, I cannot give discounts.", "", "meta", id="as-an-ai"),
    pytest.param("As a language model, I can't help with that.", "", "meta", id="language-model"),
    pytest.param(
        "According to my instructions, I must not share prices.", "", "meta", id="instructions"
    ),
    pytest.param("The system does not allow me to do that.", "", "meta", id="the-system"),
    pytest.param("I'm going to respond politely to this request.", "", "meta", id="going-to"),
    pytest.param("This is a reply to the user's message about shipping.", "", "meta", id="user"),
    pytest.param("The customer's account shows two orders.", "", "meta", id="customers-account"),
    pytest.param("El cliente quiere un descuento más grande.", PRICE_ES, "meta", id="el-cliente"),
    # parroting
    pytest.param(
        "Can you give me a better price on these headphones?",
        "Can you give me a better price on these headphones please?",
        "parroting",
        id="question-echo",
    ),
    pytest.param(
        "You have been a loyal customer for five years and you expect a discount.",
        "I've been a loyal customer for five years and I expect a discount.",
        "parroting",
        id="pronoun-swap-echo",
    ),
    pytest.param(
        "The shipping fee is too high. Can you knock it?",
        SHIPPING,
        "parroting",
        id="edited-echo",
    ),
    pytest.param(
        "Rabatt bitte, sonst kündige ich mein Abo!",
        PRICE_DE + " Mein Abo!",
        "parroting",
        id="german-echo",
    ),
    # language
    pytest.param(
        "Der Preis ist leider fest, aber der Versand ist kostenlos.",
        "El precio es muy alto para mí.",
        "language",
        id="german-to-spanish-customer",
    ),
    pytest.param(
        "Merci pour votre message, je vais vérifier.",
        "ok",
        "language",
        id="french-unknown-customer",
    ),
    pytest.param(
        "Il rimborso è stato elaborato, grazie mille.",
        "Where is my refund?",
        "language",
        id="italian-to-english-customer",
    ),
]


@pytest.mark.parametrize(("reply", "customer", "category"), REPORTED + OWN_BAD)
def test_refused(reply: str, customer: str, category: str) -> None:
    problem = sentence_problem(reply, customer)
    assert problem is not None
    assert problem.split(":")[0] == category, problem


def test_shop_language_decides_when_the_customer_is_unknown() -> None:
    reply = "Merci pour votre message, je vais vérifier."
    assert sentence_problem(reply, "ok", shop_language="fr") is None
    problem = sentence_problem("Vielen Dank, ich prüfe das gleich.", "ok", shop_language="fr")
    assert problem is not None and problem.startswith("language")


GERMAN_CUSTOMER_TEMPLATE = (
    "Thanks for your message. I can help with questions about your order, or look at what I "
    "can do on the price of your cart if you ask."
)

# (reply, customer message, shop language)
GOOD = [
    pytest.param("Sorry for the wait, your order is on its way.", "", "en", id="apology"),
    pytest.param(
        "You can track your order under My orders, or write to support@shop.example.",
        "Where is my parcel?",
        "en",
        id="hand-off-email",
    ),
    pytest.param(
        "Please see https://shop.example/returns for the return form.", "", "en", id="hand-off-url"
    ),
    pytest.param("Thanks for shopping with us!", "", "en", id="thanks"),
    pytest.param("Thanks for shopping with us! 😊", "", "en", id="thanks-emoji"),
    pytest.param("Thank you for your patience, we appreciate it.", "", "en", id="patience"),
    pytest.param("I'm sorry, I can't change the price of this item.", "", "en", id="cant"),
    pytest.param("Is there anything else I can help you with?", "", "en", id="closing-question"),
    pytest.param("Have a great day, and enjoy your new jacket!", "", "en", id="closing"),
    pytest.param("You're welcome, have a lovely weekend!", "", "en", id="welcome"),
    pytest.param("Returns are free within 30 days of delivery.", "", "en", id="policy"),
    pytest.param(
        "I'll pass this on to our support team, who will reply by email.", "", "en", id="pass-on"
    ),
    pytest.param("What size are you looking for?", "", "en", id="stranded-preposition"),
    pytest.param("Of course! Let me know which size you'd like.", "", "en", id="of-course"),
    pytest.param(
        '"My orders" is in the menu at the top of the page.', "", "en", id="opening-quote"
    ),
    pytest.param(
        "Our sneakers run true to size; if unsure, take your usual size.",
        "Do these sneakers run small?",
        "en",
        id="shares-sneakers-run",
    ),
    pytest.param("Yes, we ship to Canada.", "Do you ship to Canada?", "en", id="shares-3-of-5"),
    pytest.param(
        "Yes, the blue jacket is in stock.",
        "Is the blue jacket in stock?",
        "en",
        id="restates-question",
    ),
    pytest.param(
        "We're sorry; we have refunded the shipping fee on this order.",
        SHIPPING,
        "en",
        id="shares-shipping-fee",
    ),
    pytest.param(
        "We can't offer a student discount, but shipping is free over 50 euros.",
        STUDENT,
        "en",
        id="student-answer",
    ),
    pytest.param(
        "Lo siento, no puedo cambiar el precio de este artículo.", PRICE_ES, "en", id="es"
    ),
    pytest.param(
        "Gracias por tu paciencia, tu pedido ya está en camino.",
        "¿Dónde está mi pedido?",
        "en",
        id="es-order",
    ),
    pytest.param(
        "¿Te puedo ayudar con algo más?",
        "Hola, tengo una pregunta sobre mi pedido.",
        "en",
        id="es-inverted-question",
    ),
    pytest.param(
        "Danke für Ihre Nachricht, wir helfen Ihnen gerne weiter.", PRICE_DE, "en", id="de"
    ),
    pytest.param(
        "Ihre Bestellung ist unterwegs und kommt morgen an.",
        "Wo ist meine Bestellung?",
        "en",
        id="de-separable-particle",
    ),
    pytest.param(
        "Merci pour votre message, nous vous répondons très vite.", PRICE_FR, "en", id="fr"
    ),
    pytest.param(
        "Désolé, je ne peux pas baisser le prix de cet article.", PRICE_FR, "en", id="fr-price"
    ),
    pytest.param(
        "Mi dispiace, non posso cambiare il prezzo di questo articolo.",
        "Il prezzo è troppo alto per me.",
        "en",
        id="it",
    ),
    pytest.param(
        "Lamentamos, mas não podemos alterar o preço deste produto.",
        "O preço é muito alto para mim.",
        "en",
        id="pt",
    ),
    pytest.param(
        "Helaas kan ik geen extra korting geven op deze bestelling.",
        "Kan ik korting krijgen op mijn bestelling?",
        "en",
        id="nl",
    ),
    pytest.param(GERMAN_CUSTOMER_TEMPLATE, PRICE_DE, "en", id="en-template-to-de"),
    pytest.param("Vielen Dank für Ihre Geduld!", "ok", "de", id="de-shop-unknown-customer"),
    pytest.param(
        "I can't go beyond 15%; your code SGR-ABCDE-12345 still stands.",
        "Can I get more?",
        "en",
        id="hold-template",
    ),
    pytest.param(
        "A proposal for you is waiting for a manager's approval.", "", "en", id="starts-with-A"
    ),
    pytest.param("The customer service team will reply soon.", "", "en", id="customer-service"),
    pytest.param("Please check the user manual for details.", "", "en", id="user-manual"),
    pytest.param("I will respond by email within a day.", "", "en", id="respond-as-a-verb"),
    pytest.param("I can't negotiate on sale items, sorry.", "", "en", id="negotiate-as-a-verb"),
    pytest.param("It costs approx. 5 euros to ship.", "", "en", id="abbreviation"),
]


@pytest.mark.parametrize(("reply", "customer", "shop_language"), GOOD)
def test_signed(reply: str, customer: str, shop_language: str) -> None:
    assert sentence_problem(reply, customer, shop_language=shop_language) is None


LANGUAGE_CASES = [
    pytest.param("Can I get a discount?", "en", id="en-discount"),
    pytest.param("Where is my order?", "en", id="en-order"),
    pytest.param("Thanks, that's great!", "en", id="en-thanks"),
    pytest.param(SHIPPING, "en", id="en-shipping"),
    pytest.param(PRICE_ES, "es", id="es-price"),
    pytest.param("¿Dónde está mi pedido?", "es", id="es-order"),
    pytest.param("Quiero un descuento, por favor.", "es", id="es-discount"),
    pytest.param(PRICE_DE, "de", id="de-cancel"),
    pytest.param("Wo ist meine Bestellung?", "de", id="de-order"),
    pytest.param("Das ist mir zu teuer.", "de", id="de-expensive"),
    pytest.param(PRICE_FR, "fr", id="fr-expensive"),
    pytest.param("Où est ma commande ?", "fr", id="fr-order"),
    pytest.param("Je voudrais une réduction, s'il vous plaît.", "fr", id="fr-discount"),
    pytest.param("Il prezzo è troppo alto per me.", "it", id="it-price"),
    pytest.param("Dov'è il mio ordine?", "it", id="it-order"),
    pytest.param("Vorrei uno sconto, grazie.", "it", id="it-discount"),
    pytest.param("O preço é muito alto para mim.", "pt", id="pt-price"),
    pytest.param("Onde está o meu pedido?", "pt", id="pt-order"),
    pytest.param("Quero um desconto, por favor.", "pt", id="pt-discount"),
    pytest.param("Kan ik korting krijgen?", "nl", id="nl-discount"),
    pytest.param("Waar is mijn bestelling?", "nl", id="nl-order"),
    pytest.param("Dat is te duur voor mij.", "nl", id="nl-expensive"),
    pytest.param("ok", None, id="ok"),
    pytest.param("", None, id="empty"),
    pytest.param("Hi", None, id="one-word"),
    pytest.param("Danke", None, id="one-german-word"),
    pytest.param("12345 678", None, id="digits"),
    pytest.param("SGR-ABCDE-12345", None, id="code"),
    pytest.param("👍 👍", None, id="emoji"),
    pytest.param("support@shop.example https://shop.example", None, id="addresses"),
    pytest.param("Ich möchte a discount please", None, id="mixed"),
]


@pytest.mark.parametrize(("text", "expected"), LANGUAGE_CASES)
def test_detect_language(text: str, expected: str | None) -> None:
    assert detect_language(text) == expected


@pytest.mark.parametrize(
    ("text", "source", "expected"),
    [
        pytest.param("Our sneakers run true to size.", "Do these sneakers run small?", 2, id="2"),
        pytest.param(PRICE_ES, PRICE_ES, 5, id="whole"),
        pytest.param("Totally different words here.", SHIPPING, 0, id="none"),
        pytest.param("THE SHIPPING, fee!", SHIPPING, 3, id="normalised"),
        pytest.param("I\u2019m a student.", STUDENT, 3, id="curly-apostrophe"),
    ],
)
def test_copied_run_length(text: str, source: str, expected: int) -> None:
    assert copied_run_length(text, source) == expected


def test_copied_share_counts_only_long_runs() -> None:
    assert copied_share("Yes, the blue jacket is in stock.", "Is the blue jacket in stock?") == (
        pytest.approx(3 / 7)
    )
    assert copied_share("The shipping fee is too high. Can you knock it?", SHIPPING) == (
        pytest.approx(0.7)
    )


# --- properties -------------------------------------------------------------------------------

_WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyzäéñ", min_size=1, max_size=8)


@given(st.lists(_WORD, min_size=MAX_COPIED_RUN + 1, max_size=30))
def test_the_customer_text_handed_back_is_refused(ws: list[str]) -> None:
    message = " ".join(ws).capitalize() + "."
    assert sentence_problem(message, message) is not None


@given(st.text(max_size=200))
def test_a_text_copies_all_of_itself(text: str) -> None:
    assert copied_run_length(text, text) == len(words(text))


@given(st.text(max_size=120), st.text(max_size=120))
def test_copied_run_is_symmetric_and_bounded(a: str, b: str) -> None:
    run = copied_run_length(a, b)
    assert run == copied_run_length(b, a)
    assert run <= min(len(words(a)), len(words(b)))


@given(st.text(max_size=200), st.text(max_size=200))
def test_judge_and_detector_are_total(text: str, customer: str) -> None:
    problem = sentence_problem(text, customer)
    assert problem is None or problem.split(":")[0] in {
        "fragment",
        "format",
        "meta",
        "parroting",
        "language",
    }
    assert detect_language(text) in {*LANGUAGES, None}
