"""``sfu serve`` with moderation settings given as JSON, for the browser tests and benchmarks:

    python tests/moderated_serve.py '{"moderation_classifier": "marker"}' serve --host 127.0.0.1 --port 8080

The JSON object names :class:`sfu.moderation.settings.ModerationSettings` fields, set over the
``moderation`` part of the configuration ``sfu serve``'s own command line (everything after it) loads;
so it can choose what the command line cannot, such as the ``marker`` test classifier.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sfu.cli import _load, build_parser  # noqa: E402
from sfu.runner import run  # noqa: E402


def main(argv: list[str]) -> int:
    overrides = json.loads(argv[0])
    args = build_parser(with_loadtest=False).parse_args(argv[1:])
    config, _ = _load(args)
    return run(dataclasses.replace(config, moderation=dataclasses.replace(config.moderation, **overrides)))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
