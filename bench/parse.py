"""How fast the CAP codec reads the public corpus; prints one JSON object.

    .venv/bin/python bench/parse.py [--rounds N]

The corpus is ``$ALERTCAST_CORPUS`` or ``../shared/corpus`` next to the
repository. Each file is parsed ``rounds`` times (lenient mode, as feeds are
read); per-file times are the fastest round, so a busy machine inflates the
totals more than the per-file figures. Files the codec refuses by design
(``xee.cap``, ``invalid_xmlns.cap``) are timed too: refusing must be fast.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from alertcast.cap import parse_cap_all, to_cap_xml  # noqa: E402
from alertcast.errors import CapError  # noqa: E402

BIG_POLYGON = "wis2box_burkina_faso_meteoburkina_signed_41009pt_polygon.xml"


def corpus_path() -> Path:
    override = os.environ.get("ALERTCAST_CORPUS")
    return Path(override) if override else REPO.parent / "shared" / "corpus"


def time_parse(data: bytes, rounds: int) -> tuple[float, int, bool]:
    """(fastest seconds, alerts per parse, refused) over ``rounds`` parses."""
    best = float("inf")
    alerts = 0
    refused = False
    for _ in range(rounds):
        start = time.perf_counter()
        try:
            alerts = len(parse_cap_all(data))
        except CapError:
            refused = True
        best = min(best, time.perf_counter() - start)
    return best, alerts, refused


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    rounds = max(1, parser.parse_args().rounds)
    folder = corpus_path() / "cap"
    if not folder.is_dir():
        print(json.dumps({"error": f"no corpus at {folder}; set ALERTCAST_CORPUS"}))
        return 1
    files = sorted(path for path in folder.iterdir() if path.is_file())
    per_file: dict[str, float] = {}
    alerts_per_round = 0
    refused = []
    wall = time.perf_counter()
    for path in files:
        seconds, alerts, was_refused = time_parse(path.read_bytes(), rounds)
        per_file[path.name] = seconds * 1000
        alerts_per_round += alerts
        if was_refused:
            refused.append(path.name)
    wall = time.perf_counter() - wall
    slowest = max(per_file, key=per_file.__getitem__)
    fastest_round_ms = sum(per_file.values())
    result: dict[str, object] = {
        "files": len(files),
        "alerts_per_s": round(alerts_per_round / (fastest_round_ms / 1000), 1),
        "slowest_file": slowest,
        "slowest_ms": round(per_file[slowest], 2),
        "rounds": rounds,
        "alerts": alerts_per_round,
        "refused_files": refused,
        "corpus_ms_per_round": round(fastest_round_ms, 2),
        "median_file_ms": round(statistics.median(per_file.values()), 3),
        "wall_s": round(wall, 2),
    }
    if BIG_POLYGON in per_file:
        big = parse_cap_all((folder / BIG_POLYGON).read_bytes())[0].alert
        start = time.perf_counter()
        to_cap_xml(big)
        result["polygon_41009_parse_ms"] = round(per_file[BIG_POLYGON], 2)
        result["polygon_41009_write_ms"] = round((time.perf_counter() - start) * 1000, 2)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
