"""Allow ``python -m alertcast``."""

from alertcast.cli import main

raise SystemExit(main())
