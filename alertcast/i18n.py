"""Spanish and English for people.

Messages meant for people (the CLI's summaries, the console's labels) are
looked up here. The language comes from ``ALERTCAST_LANG``, else ``LANG``;
Spanish when either starts with ``es``, English otherwise. Log events stay in
English: they are for machines and for operators' search boxes.
"""

from __future__ import annotations

import os

MESSAGES: dict[str, dict[str, str]] = {
    "audit.ok": {
        "en": "audit trail intact: {count} records checked",
        "es": "bitácora de auditoría íntegra: {count} registros verificados",
    },
    "audit.bad": {
        "en": "audit trail BROKEN at record {seq}: {reason}",
        "es": "bitácora de auditoría ALTERADA en el registro {seq}: {reason}",
    },
    "check.ok": {
        "en": "configuration OK: {feeds} feeds, {channels} channels ({path})",
        "es": "configuración correcta: {feeds} fuentes, {channels} canales ({path})",
    },
    "check.problems": {
        "en": "{count} configuration problem(s):",
        "es": "{count} problema(s) de configuración:",
    },
    "db.upgraded": {
        "en": "database at revision {revision} ({url})",
        "es": "base de datos en la revisión {revision} ({url})",
    },
    "parse.error": {"en": "error: {path}: {reason}", "es": "error: {path}: {reason}"},
    "parse.warning": {"en": "warning: {path}: {reason}", "es": "aviso: {path}: {reason}"},
    "serve.listening": {
        "en": "alertcast is running: open http://{host}:{port}/ (Ctrl+C to stop)",
        "es": "alertcast está en marcha: abra http://{host}:{port}/ (Ctrl+C para detener)",
    },
    "demo.data_dir": {
        "en": "demo data directory: {path}",
        "es": "directorio de datos de la demostración: {path}",
    },
    "demo.telegram": {
        "en": "Telegram (fake): watch the bot's posts at {url}",
        "es": "Telegram (simulado): vea las publicaciones del bot en {url}",
    },
    "demo.console": {
        "en": "officers' console: http://{host}:{port}/console/ — sign in as",
        "es": "consola de oficiales: http://{host}:{port}/console/ — entre como",
    },
    "demo.officer": {
        "en": "  {name} ({role}), password {password}",
        "es": "  {name} ({role}), contraseña {password}",
    },
    "progress.parse": {"en": "parsing", "es": "analizando"},
    "progress.verify": {"en": "verifying", "es": "verificando"},
    "status.alert": {"en": "alert {alert_id}", "es": "alerta {alert_id}"},
    "status.summary": {
        "en": "{done}/{total} done ({percent}%) · {rate}/s · ETA {eta}",
        "es": "{done}/{total} terminados ({percent} %) · {rate}/s · quedan {eta}",
    },
    "status.eta": {"en": "ETA {eta}", "es": "quedan {eta}"},
    "status.finished": {"en": "finished", "es": "terminado"},
    "status.waiting": {
        "en": "oldest waiting {age}",
        "es": "el más antiguo espera desde hace {age}",
    },
    "status.no_alert": {
        "en": "alert {alert_id} does not exist",
        "es": "la alerta {alert_id} no existe",
    },
    "status.no_deliveries": {
        "en": "alert {alert_id} has no deliveries",
        "es": "la alerta {alert_id} no tiene envíos",
    },
    "status.state.pending": {"en": "pending", "es": "pendientes"},
    "status.state.claimed": {"en": "sending", "es": "enviándose"},
    "status.state.sent": {"en": "sent", "es": "enviados"},
    "status.state.delivered": {"en": "delivered", "es": "entregados"},
    "status.state.failed": {"en": "failed", "es": "fallidos"},
    "status.state.dead": {"en": "dead", "es": "abandonados"},
    "status.state.cancelled": {"en": "cancelled", "es": "cancelados"},
    "status.state.unknown": {"en": "unknown", "es": "inciertos"},
    "channels.unknown": {
        "en": "error: no channel named {name!r} (configured: {known})",
        "es": "error: no hay ningún canal llamado {name!r} (configurados: {known})",
    },
    "channels.none": {"en": "no channels configured", "es": "no hay canales configurados"},
    "channels.col.name": {"en": "NAME", "es": "NOMBRE"},
    "channels.col.kind": {"en": "KIND", "es": "TIPO"},
    "channels.col.enabled": {"en": "ENABLED", "es": "ACTIVO"},
    "channels.col.rate": {"en": "RATE LIMITS", "es": "LÍMITES DE ENVÍO"},
    "channels.col.secrets": {"en": "SECRETS", "es": "SECRETOS"},
    "channels.yes": {"en": "yes", "es": "sí"},
    "channels.no": {"en": "no", "es": "no"},
    "channels.present": {"en": "present", "es": "presente"},
    "channels.missing": {"en": "MISSING", "es": "FALTA"},
    "channels.unlimited": {"en": "unlimited (local)", "es": "sin límite (local)"},
    "channels.per_recipient": {"en": "{rate}/s per recipient", "es": "{rate}/s por destinatario"},
    "channels.per_group": {"en": "{rate}/min per group", "es": "{rate}/min por grupo"},
    "channels.burst": {"en": "burst {burst}", "es": "ráfaga {burst}"},
    "channels.build_failed": {
        "en": "channel {name} cannot be built:",
        "es": "no se puede construir el canal {name}:",
    },
    "channels.no_check": {
        "en": "channel {name} built; no check available for its kind",
        "es": "canal {name} construido; su tipo no ofrece verificación",
    },
    "channels.check_ok": {
        "en": "channel {name} OK: {answer}",
        "es": "canal {name} correcto: {answer}",
    },
    "channels.check_failed": {
        "en": "channel {name} check FAILED ({error_class}):",
        "es": "la verificación del canal {name} FALLÓ ({error_class}):",
    },
    "channels.not_testable": {
        "en": "error: channel {name} is of kind {kind}, whose messages are public; not sent",
        "es": "error: el canal {name} es de tipo {kind}, de mensajes públicos; no se envía",
    },
    "channels.sent": {
        "en": "test message sent on {name} to {target} (id {id})",
        "es": "mensaje de prueba enviado por {name} a {target} (id {id})",
    },
    "channels.send_failed": {
        "en": "test message on {name} FAILED ({error_class}):",
        "es": "el mensaje de prueba por {name} FALLÓ ({error_class}):",
    },
    "subscribers.not_found": {
        "en": "there is no subscriber #{id}",
        "es": "no existe el suscriptor #{id}",
    },
    "subscribers.deleted": {
        "en": "subscriber #{id} and their answers erased",
        "es": "suscriptor #{id} y sus respuestas eliminados",
    },
    "subscribers.purged": {
        "en": "{count} subscriber(s) erased: gone and silent for more than {days} days",
        "es": "{count} suscriptor(es) eliminados: de baja y sin actividad en más de {days} días",
    },
    "subscribers.none": {"en": "no active subscribers", "es": "no hay suscriptores activos"},
    "subscribers.total": {"en": "total: {count}", "es": "total: {count}"},
}


def language() -> str:
    """``es`` or ``en``, from the environment."""
    for var in ("ALERTCAST_LANG", "LANG"):
        value = os.environ.get(var, "")
        if value:
            return "es" if value.lower().startswith("es") else "en"
    return "en"


def t(key: str, **values: object) -> str:
    """The message ``key`` in the current language, formatted with ``values``."""
    entry = MESSAGES[key]
    return entry.get(language(), entry["en"]).format(**values)
