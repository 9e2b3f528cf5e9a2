"""Every moderation setting, with the defaults an operator would expect.

One dataclass, documented the same way as the server's :class:`sfu.config.Config`: each field's
``metadata`` holds ``help``, ``flag``, ``metavar``, ``choices``, ``min``, ``max`` and ``secret``, so the
configuration loader can derive a command-line flag, an ``SFU_<NAME>`` environment variable and a TOML
key from it. Nothing here reads the environment or the disk except :meth:`ModerationSettings.data_path`
(the default data directory) and :meth:`ModerationSettings.read_admin_token`.
"""

# Each field's default comes from _setting(), which returns a dataclasses.field() with documentation:
# ruff: noqa: RUF009

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .identity import exempt_problems

#: What a user may report someone for (the ``reason`` of a ``report`` message).
REPORT_REASONS = ("nudity", "harassment", "minor", "spam", "other")
#: ``--moderation-classifier`` choices.
CLASSIFIERS = ("auto", "nudenet", "onnx", "none")
#: Classifiers accepted in settings built in code but not offered on the command line: ``marker``
#: flags a colour a test client draws on demand (end-to-end tests and benchmarks).
TEST_CLASSIFIERS = ("marker",)
#: NudeNet labels that count as nudity by default.
DEFAULT_FLAG_LABELS = [
    "FEMALE_GENITALIA_EXPOSED",
    "MALE_GENITALIA_EXPOSED",
    "FEMALE_BREAST_EXPOSED",
    "ANUS_EXPOSED",
    "BUTTOCKS_EXPOSED",
]
DEFAULT_FACE_LABELS = ["FACE_FEMALE", "FACE_MALE"]
HOUR = 3600.0
DAY = 24 * HOUR


def _setting(
    default: Any = None,
    help: str = "",
    *,
    factory: Any = None,
    flag: str | None = None,
    metavar: str | None = None,
    choices: list[str] | None = None,
    min: float | None = None,
    max: float | None = None,
    secret: bool = False,
) -> Any:
    metadata = {"help": help, "flag": flag, "metavar": metavar, "choices": choices, "min": min, "max": max,
                "secret": secret}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class ModerationSettings:
    # -- where things are kept -------------------------------------------------------------------
    data_dir: Path | None = _setting(
        None, "directory for the moderation database, evidence pictures and the device-token secret "
        "(default: $XDG_DATA_HOME/sfu, else ~/.local/share/sfu)", metavar="DIR",
    )
    database_url: str | None = _setting(
        None, "database for reports, bans and the audit log: postgresql://USER:PASSWORD@HOST/DB for "
        "several nodes (default: an SQLite file in --data-dir)", metavar="URL", secret=True,
    )
    evidence_retention_days: float = _setting(
        30.0, "delete evidence pictures this many days after they were captured", min=0.01, metavar="DAYS",
    )
    # -- rules -----------------------------------------------------------------------------------
    rules_file: Path | None = _setting(
        None, "text of the rules shown before the first Start (default: built-in rules: 18+, no nudity, "
        "keep your face in view, no harassment); translations beside it as NAME.LANG.EXT, e.g. rules.de.txt",
        metavar="PATH",
    )
    # -- reports ---------------------------------------------------------------------------------
    report_window: float = _setting(
        30.0, "seconds after the partner left during which they can still be reported", min=0, metavar="SECONDS",
    )
    max_note_length: int = _setting(500, "longest note a report may carry, in characters", min=0)
    report_rate_limit: int = _setting(
        5, "most reports one person may file within --report-rate-window (more get rate_limited)", min=1,
    )
    report_rate_window: float = _setting(600.0, "window of --report-rate-limit", min=1, metavar="SECONDS")
    report_dedupe_window: float = _setting(
        DAY, "the same reporter reporting the same person again within this window counts once",
        min=0, metavar="SECONDS",
    )
    reports_before_ban: int = _setting(
        5, "distinct reporters within --strike-window that ban someone automatically (0: never; reports "
        "otherwise wait for a moderator)", min=0,
    )
    # -- strikes and bans ------------------------------------------------------------------------
    strikes_before_ban: int = _setting(
        3, "strikes (automatic detections, moderator warnings) within --strike-window that lead to an "
        "automatic ban", min=1,
    )
    strike_window: float = _setting(DAY, "window in which strikes add up", min=1, metavar="SECONDS")
    ban_durations: list[float] = _setting(
        factory=lambda: [HOUR, DAY, 7 * DAY],
        flag="--ban-duration",
        metavar="SECONDS",
        help="lengths of successive automatic bans (repeatable; the last one repeats)",
    )
    ban_memory: float = _setting(
        90 * DAY, "earlier bans within this many seconds make the next automatic ban longer", min=0,
        metavar="SECONDS",
    )
    auto_ban_scope: str = _setting(
        "device", "what automatic bans cover: the device, or also its address (beware of shared addresses)",
        choices=["device", "device+address"],
    )
    address_ban_exempt: list[str] = _setting(
        factory=list, metavar="IP[/BITS]",
        help="client addresses or networks never banned by address (loopback never is; the server adds "
        "--ip-limits-exempt)",
    )
    device_secret: str | None = _setting(
        None, "key that signs device tokens and hashes client addresses; the same on every node "
        "(default: generated once and kept in --data-dir)", secret=True,
    )
    device_cookie_days: float = _setting(400.0, "lifetime of the sfu_device cookie, in days", min=1, metavar="DAYS")
    # -- moderator console -----------------------------------------------------------------------
    admin_token: str | None = _setting(
        None, "moderator token for /mod/ and /api/mod/ (no token: console and API off)", secret=True,
    )
    admin_token_file: Path | None = _setting(
        None, "read the moderator token from this file (keeps it out of the process list)", metavar="PATH",
    )
    console_session_hours: float = _setting(12.0, "how long a console sign-in lasts", min=0.01, metavar="HOURS")
    # -- who may connect -------------------------------------------------------------------------
    allowed_origins: list[str] = _setting(
        factory=list, flag="--allowed-origin", metavar="ORIGIN",
        help="page origins besides the server's own allowed to open the WebSocket, e.g. "
        "https://chat.example.org (repeatable)",
    )
    require_camera: bool = _setting(True, "pair only people whose video reaches the server")
    # -- automatic detection ---------------------------------------------------------------------
    moderation_classifier: str = _setting(
        "auto", "picture classifier: auto uses NudeNet when installed (AGPL-3.0, optional extra), else none",
        choices=list(CLASSIFIERS),
    )
    moderation_interval: float = _setting(
        10.0, "seconds between two samples of each person's video (besides the one at every pairing)",
        min=0.5, metavar="SECONDS",
    )
    moderation_model: Path | None = _setting(
        None, "ONNX image classifier for --moderation-classifier onnx", metavar="PATH",
    )
    moderation_model_labels: list[str] = _setting(
        factory=list, flag="--moderation-model-label", metavar="LABEL",
        help="the --moderation-model's output labels, in order (repeatable)",
    )
    moderation_model_input_size: int = _setting(224, "the --moderation-model's square input size, in pixels", min=16)
    moderation_flag_labels: list[str] = _setting(
        factory=lambda: list(DEFAULT_FLAG_LABELS), flag="--moderation-flag-label", metavar="LABEL",
        help="classifier labels that count as nudity (repeatable)",
    )
    moderation_threshold: float = _setting(0.5, "score from which a flagged label counts", min=0, max=1)
    require_face: bool = _setting(False, "hide the video of people whose face the classifier does not see")
    moderation_face_labels: list[str] = _setting(
        factory=lambda: list(DEFAULT_FACE_LABELS), flag="--moderation-face-label", metavar="LABEL",
        help="classifier labels that count as a face (repeatable)",
    )
    moderation_face_threshold: float = _setting(0.3, "score from which a face label counts", min=0, max=1)
    moderation_prescreen: bool = _setting(
        True, "show a new partner's video only once their first picture was classified clean",
    )
    moderation_workers: int = _setting(1, "classifier processes", min=1)
    moderation_queue: int = _setting(
        8, "samples waiting for the classifier at most; more are dropped and counted", min=1,
    )
    evidence_frames: int = _setting(3, "most recent pictures kept with a report", min=1, max=10)
    evidence_max_side: int = _setting(640, "evidence pictures are scaled down to this many pixels at most", min=64)
    evidence_jpeg_quality: int = _setting(80, "JPEG quality of evidence pictures", min=10, max=100)
    max_evidence_bytes: int = _setting(2_000_000, "largest evidence picture accepted, in bytes", min=1024)

    # ----------------------------------------------------------------------------------------------
    def data_path(self, env: Mapping[str, str] | None = None) -> Path:
        """The data directory: configured, else ``$XDG_DATA_HOME/sfu``, else ``~/.local/share/sfu``."""
        if self.data_dir is not None:
            return Path(self.data_dir)
        env = os.environ if env is None else env
        base = env.get("XDG_DATA_HOME") or str(Path(env.get("HOME") or Path.home()) / ".local" / "share")
        return Path(base) / "sfu"

    def read_admin_token(self) -> str | None:
        """The moderator token (setting first, then file), ``None`` when the console is off.

        Raises ``ValueError`` when the file cannot be read or the token is too short to be safe."""
        token = self.admin_token
        if token is None and self.admin_token_file is not None:
            try:
                token = Path(self.admin_token_file).read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                raise ValueError(f"admin_token_file {self.admin_token_file}: cannot read it ({exc})") from None
        if token is None or token == "":
            return None
        if len(token) < 16:
            raise ValueError("admin token: use at least 16 characters (e.g. `openssl rand -hex 24`)")
        return token

    def validate(self) -> list[str]:
        """Every problem at once, one line each (empty when usable)."""
        problems = []
        for f in fields(self):
            value = getattr(self, f.name)
            low, high = f.metadata.get("min"), f.metadata.get("max")
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                if not math.isfinite(value):
                    problems.append(f"{f.name}: must be a finite number")
                elif low is not None and value < low:
                    problems.append(f"{f.name}: must be at least {low}, got {value}")
                elif high is not None and value > high:
                    problems.append(f"{f.name}: must be at most {high}, got {value}")
            choices = f.metadata.get("choices")
            hidden = TEST_CLASSIFIERS if f.name == "moderation_classifier" else ()
            if choices and value not in choices and value not in hidden:
                problems.append(f"{f.name}: must be one of {', '.join(choices)}, got {value!r}")
        if not self.ban_durations:
            problems.append("ban_durations: give at least one duration")
        elif any(not math.isfinite(d) or d <= 0 for d in self.ban_durations):
            problems.append("ban_durations: every duration must be a positive number of seconds")
        if self.moderation_classifier == "onnx" and self.moderation_model is None:
            problems.append("moderation_classifier onnx needs --moderation-model PATH")
        if self.moderation_classifier == "onnx" and not self.moderation_model_labels:
            problems.append("moderation_classifier onnx needs its labels (--moderation-model-label, in order)")
        if self.admin_token is not None and self.admin_token_file is not None:
            problems.append("admin_token and admin_token_file: give one, not both")
        try:
            self.read_admin_token()
        except ValueError as exc:
            problems.append(str(exc))
        if self.database_url is not None:
            from .storage.engine import (
                database_url_problem,  # (storage imports this module)
            )

            problem = database_url_problem(self.database_url)
            if problem:
                problems.append(f"database_url: {problem}")
        problems += [f"address_ban_exempt: {p}" for p in exempt_problems(self.address_ban_exempt)]
        return problems
