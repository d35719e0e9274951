"""How fast alerts render: every corpus alert × every channel kind × Spanish and English.

    python bench/render.py [--corpus ../shared/corpus] [--rounds 3]

Prints one JSON object, ``{"renders": N, "renders_per_s": ...}``, plus the
number of alerts and the slowest single render, so that a change that makes
the fitting ladder re-render a template too often shows up here. Templates
are compiled before timing starts: the number is the steady state of a
running service, not of a cold start.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

# Runs from a checkout as well as from an installed package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from alertcast.cap import parse_cap_all
from alertcast.channel_profiles import CHANNEL_KINDS
from alertcast.domain import Alert
from alertcast.errors import CapError
from alertcast.render import render

LANGUAGES = ("es", "en")


def corpus_alerts(corpus: Path) -> list[Alert]:
    """Every alert in ``corpus/cap`` that parses (the negative tests do not)."""
    alerts: list[Alert] = []
    for path in sorted((corpus / "cap").iterdir()):
        try:
            alerts.extend(parsed.alert for parsed in parse_cap_all(path.read_bytes()))
        except CapError:
            continue
    return alerts


def main(corpus: Path, rounds: int) -> None:
    alerts = corpus_alerts(corpus)
    for alert in alerts:  # warm-up: compile every template once
        render(alert, "telegram", language="es")
        render(alert, "sms", language="en")
    renders = 0
    slowest = 0.0
    started = time.perf_counter()
    for _ in range(rounds):
        for alert in alerts:
            for kind in CHANNEL_KINDS:
                for language in LANGUAGES:
                    one = time.perf_counter()
                    render(alert, kind, language=language)
                    slowest = max(slowest, time.perf_counter() - one)
                    renders += 1
    elapsed = time.perf_counter() - started
    result = {
        "renders": renders,
        "renders_per_s": round(renders / elapsed, 1),
        "alerts": len(alerts),
        "channels": len(CHANNEL_KINDS),
        "languages": list(LANGUAGES),
        "rounds": rounds,
        "slowest_render_ms": round(slowest * 1000, 2),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    default_corpus = os.environ.get("ALERTCAST_CORPUS") or str(
        Path(__file__).resolve().parent.parent.parent / "shared" / "corpus"
    )
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=Path(default_corpus))
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    main(args.corpus, args.rounds)
