"""Everything the citizens' bot says, by language: Spanish first, English on request.

Kept apart from the alert templates because these are conversation texts a
person reads while choosing what to receive, not alerts. The consent text is
stored word for word with each opt-in, so changing it changes what later
audit records say people agreed to; it never changes records already made.
Texts are plain (no parse mode): area names typed by people or imported from
a catalogue then need no escaping.
"""

from __future__ import annotations

from alertcast.subscribers.model import LANGUAGES, TOPIC_NAMES

DEFAULT_LANGUAGE = "es"

TEXTS: dict[str, dict[str, str]] = {
    "es": {
        "welcome": ("Hola. Este bot te envía alertas de emergencia y avisos públicos de tu zona."),
        "consent": (
            "Qué guardamos y por qué:\n"
            "• tu chat de Telegram (cifrado), para poder escribirte;\n"
            "• el idioma, los temas y la zona o ubicación que elijas, para enviarte solo "
            "lo que te afecta;\n"
            "• tus horas de silencio y tus respuestas a las alertas "
            "(«Estoy a salvo» / «Necesito ayuda»), para que las autoridades sepan "
            "quién necesita ayuda.\n"
            "No lo compartimos con nadie más. Puedes ver tus datos con /misalertas y "
            "borrarlos cuando quieras con /baja. Más información: /privacidad.\n"
            "Al continuar aceptas recibir estas alertas."
        ),
        "choose_language": "Elige tu idioma / Choose your language:",
        "choose_topics": ("¿Qué temas te interesan? Toca para marcar o desmarcar y luego «Listo»."),
        "topics_none": "Elige al menos un tema.",
        "topics_chosen": "Temas: {topics}",
        "done": "Listo",
        "choose_area": (
            "¿Dónde quieres recibir alertas? Escribe el nombre de tu municipio o alcaldía "
            "(por ejemplo «Iztapalapa»), o comparte tu ubicación con 📎 → Ubicación."
        ),
        "area_results": "Resultados para «{query}» ({first}–{last} de {total}). Elige uno:",
        "area_none": "No encontré «{query}». Prueba con otro nombre o comparte tu ubicación.",
        "area_expired": "Esa búsqueda ya no está activa. Escribe el nombre otra vez.",
        "point_received": "Ubicación recibida.",
        "summary": (
            "Revisa tu suscripción:\nIdioma: {language}\nTemas: {topics}\nZona: {area}\n¿Confirmas?"
        ),
        "confirm": "Confirmar",
        "restart": "Empezar de nuevo",
        "subscribed": (
            "¡Listo! Ya estás suscrito. Te avisaremos de las alertas de tu zona.\n"
            "Cambia tus datos con /zona, /temas, /idioma o /silencio; ve todo con "
            "/misalertas; date de baja con /baja."
        ),
        "settings": (
            "Tu suscripción:\n"
            "Idioma: {language}\n"
            "Temas: {topics}\n"
            "Zona: {area}\n"
            "Horas de silencio: {quiet}"
        ),
        "recent_header": "Alertas recientes para ti:",
        "recent_none": "No hay alertas recientes para tu zona.",
        "not_subscribed": "Aún no estás suscrito. Escribe /start para empezar.",
        "updated": "Guardado.",
        "language_set": "Idioma: Español.",
        "no_point": "ninguna",
        "point": "tu ubicación ({lat:.4f}, {lon:.4f})",
        "none": "ninguno",
        "quiet_none": "no",
        "choose_quiet": (
            "Elige tus horas de silencio (hora del centro de México). En esas horas solo "
            "te llegan las alertas extremas: esas siempre te llegan."
        ),
        "quiet_off": "Sin horas de silencio",
        "quiet_set": (
            "Horas de silencio: {start}–{end}. Las alertas extremas te llegarán de todos modos."
        ),
        "quiet_cleared": "Sin horas de silencio: te llegarán todas las alertas.",
        "leave_confirm": (
            "¿Quieres darte de baja? Se borrarán tus datos (zona, temas, idioma, "
            "respuestas) y dejarás de recibir alertas."
        ),
        "leave_yes": "Sí, darme de baja",
        "leave_no": "No, seguir",
        "left": ("Te diste de baja y borramos tus datos. Si quieres volver, escribe /start."),
        "stayed": "Sigues suscrito.",
        "ack_thanks": "Gracias, registrado",
        "ack_safe": "Estoy a salvo",
        "ack_need_help": "Necesito ayuda",
        "ack_answer": "Tu respuesta: {answer}",
        "ack_unknown": "No encontré tu suscripción.",
        "help": (
            "Comandos:\n"
            "/start – suscribirte\n"
            "/misalertas – tu suscripción y alertas recientes\n"
            "/zona – cambiar tu zona\n"
            "/temas – cambiar tus temas\n"
            "/idioma – cambiar el idioma\n"
            "/silencio – horas de silencio\n"
            "/privacidad – qué datos guardamos\n"
            "/baja – darte de baja y borrar tus datos\n"
            "In English: /help"
        ),
        "privacy": (
            "Privacidad:\n"
            "Guardamos tu chat de Telegram cifrado, tu idioma, tus temas, tu zona o "
            "ubicación, tus horas de silencio y tus respuestas a las alertas. Solo sirven "
            "para enviarte alertas de tu zona y para que las autoridades sepan quién "
            "necesita ayuda. Cada alta y baja queda registrada con el texto que viste. "
            "Con /baja borramos tus datos."
        ),
        "unknown": "No entendí. Escribe /ayuda para ver los comandos.",
    },
    "en": {
        "welcome": "Hello. This bot sends you emergency alerts and public notices for your area.",
        "consent": (
            "What we keep and why:\n"
            "• your Telegram chat (encrypted), to be able to write to you;\n"
            "• the language, topics and area or location you choose, to send you only "
            "what affects you;\n"
            "• your quiet hours and your answers to alerts (“I am safe” / “I need help”), "
            "so that the authorities know who needs help.\n"
            "We share it with nobody else. See your data with /myalerts and erase it "
            "whenever you like with /stop. More: /privacy.\n"
            "By continuing you agree to receive these alerts."
        ),
        "choose_language": "Elige tu idioma / Choose your language:",
        "choose_topics": "Which topics interest you? Tap to tick or untick, then “Done”.",
        "topics_none": "Choose at least one topic.",
        "topics_chosen": "Topics: {topics}",
        "done": "Done",
        "choose_area": (
            "Where do you want alerts for? Type the name of your municipality "
            "(for example “Iztapalapa”), or share your location with 📎 → Location."
        ),
        "area_results": "Results for “{query}” ({first}–{last} of {total}). Choose one:",
        "area_none": "No match for “{query}”. Try another name or share your location.",
        "area_expired": "That search is no longer active. Type the name again.",
        "point_received": "Location received.",
        "summary": (
            "Check your subscription:\n"
            "Language: {language}\n"
            "Topics: {topics}\n"
            "Area: {area}\n"
            "Confirm?"
        ),
        "confirm": "Confirm",
        "restart": "Start again",
        "subscribed": (
            "Done! You are subscribed. We will tell you about alerts for your area.\n"
            "Change your choices with /area, /topics, /language or /quiet; see everything "
            "with /myalerts; leave with /stop."
        ),
        "settings": (
            "Your subscription:\n"
            "Language: {language}\n"
            "Topics: {topics}\n"
            "Area: {area}\n"
            "Quiet hours: {quiet}"
        ),
        "recent_header": "Recent alerts for you:",
        "recent_none": "No recent alerts for your area.",
        "not_subscribed": "You are not subscribed yet. Send /start to begin.",
        "updated": "Saved.",
        "language_set": "Language: English.",
        "no_point": "none",
        "point": "your location ({lat:.4f}, {lon:.4f})",
        "none": "none",
        "quiet_none": "none",
        "choose_quiet": (
            "Choose your quiet hours (central Mexico time). During them only extreme "
            "alerts reach you: those always come through."
        ),
        "quiet_off": "No quiet hours",
        "quiet_set": "Quiet hours: {start}–{end}. Extreme alerts will still come through.",
        "quiet_cleared": "No quiet hours: every alert will reach you.",
        "leave_confirm": (
            "Do you want to unsubscribe? Your data (area, topics, language, answers) "
            "will be erased and you will stop receiving alerts."
        ),
        "leave_yes": "Yes, unsubscribe me",
        "leave_no": "No, keep me",
        "left": "You are unsubscribed and your data was erased. To come back, send /start.",
        "stayed": "You are still subscribed.",
        "ack_thanks": "Thanks, recorded",
        "ack_safe": "I am safe",
        "ack_need_help": "I need help",
        "ack_answer": "Your answer: {answer}",
        "ack_unknown": "Your subscription was not found.",
        "help": (
            "Commands:\n"
            "/start – subscribe\n"
            "/myalerts – your subscription and recent alerts\n"
            "/area – change your area\n"
            "/topics – change your topics\n"
            "/language – change the language\n"
            "/quiet – quiet hours\n"
            "/privacy – what data we keep\n"
            "/stop – unsubscribe and erase your data\n"
            "En español: /ayuda"
        ),
        "privacy": (
            "Privacy:\n"
            "We keep your Telegram chat encrypted, your language, topics, area or "
            "location, quiet hours and your answers to alerts. They serve only to send "
            "you alerts for your area and to let the authorities know who needs help. "
            "Every opt-in and opt-out is recorded with the text you were shown. "
            "/stop erases your data."
        ),
        "unknown": "I did not understand. Send /help to see the commands.",
    },
}

LANGUAGE_NAMES: dict[str, str] = {"es": "Español", "en": "English"}
"""Each language in its own name: the language buttons."""


def language_of(code: str | None) -> str:
    """A supported language for ``code`` (``en-GB`` → ``en``); Spanish otherwise."""
    short = (code or "").split("-", 1)[0].lower()
    return short if short in LANGUAGES else DEFAULT_LANGUAGE


def text(lang: str, key: str, /, **values: object) -> str:
    """The text ``key`` in language ``lang`` (Spanish when missing), filled with ``values``."""
    table = TEXTS.get(language_of(lang), TEXTS[DEFAULT_LANGUAGE])
    template = table.get(key, TEXTS[DEFAULT_LANGUAGE][key])
    return template.format(**values) if values else template


def consent_text(language: str) -> str:
    """Welcome and consent, exactly as shown and as stored with the opt-in."""
    return f"{text(language, 'welcome')}\n\n{text(language, 'consent')}"


def topic_name(topic: str, language: str) -> str:
    return TOPIC_NAMES.get(topic, {}).get(language_of(language), topic)
