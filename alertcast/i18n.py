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
    "progress.parse": {"en": "parsing", "es": "analizando"},
    "progress.verify": {"en": "verifying", "es": "verificando"},
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
