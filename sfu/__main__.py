"""Allow ``python -m sfu``."""

from .cli import main

raise SystemExit(main())
