"""``sfu serve`` with moderation settings given as JSON, for the browser tests and benchmarks:

    python tests/moderated_serve.py '{"moderation_classifier": "marker"}' serve --host 127.0.0.1 --port 8080

The JSON object names :class:`sfu.moderation.settings.ModerationSettings` fields; everything after it
is ``sfu serve``'s own command line.
"""

from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sfu.cli import _load, build_parser  # noqa: E402
from sfu.moderation.settings import ModerationSettings  # noqa: E402
from sfu.runner import run  # noqa: E402


def main(argv: list[str]) -> int:
    settings = ModerationSettings(**json.loads(argv[0]))
    args = build_parser(with_loadtest=False).parse_args(argv[1:])
    config, _ = _load(args)
    return run(config, settings)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
