"""The service's rules: shown before the first Start, accepted by version.

The operator may supply the text (``--rules-file``) and translations beside it (``rules.txt`` ->
``rules.de.txt``, ``rules.pt-BR.txt``). The version is a hash of every text, so editing any of them
asks everyone to accept again: ``welcome`` carries it and ``accept_rules`` must echo it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_RULES = """\
Before you start

1. You must be 18 or older.
2. No nudity and no sexual content. Keep your clothes on.
3. Keep your face in view of the camera.
4. No harassment, hate, threats or spam. Be kind or press Next.
5. Do not record or share other people without their consent.

Break the rules and you may be banned. Press Report to tell us about someone who breaks them: the
server keeps a few pictures of their video with your report for a moderator to review.
"""

#: Rules files over this size are refused (they are sent to every visitor).
MAX_RULES_BYTES = 32 * 1024
_LANG = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})?$")


class RulesError(ValueError):
    """The rules file cannot be used (the message says why)."""


@dataclass(frozen=True)
class Rules:
    """The default text and its translations (language tag, lower case -> text)."""

    text: str = DEFAULT_RULES
    translations: Mapping[str, str] = field(default_factory=dict)

    @property
    def version(self) -> str:
        """12 hex digits derived from every text (changes when any of them changes)."""
        digest = hashlib.sha256()
        for lang, text in [("", self.text), *sorted(self.translations.items())]:
            digest.update(lang.encode() + b"\0" + text.encode("utf-8") + b"\0")
        return digest.hexdigest()[:12]

    @property
    def languages(self) -> list[str]:
        return sorted(self.translations)

    def for_language(self, accept_language: str | None) -> tuple[str, str | None]:
        """``(text, language)`` for an ``Accept-Language`` header or a bare tag (``None``: the default)."""
        for tag in _preferred(accept_language or ""):
            if tag in self.translations:
                return self.translations[tag], tag
            base = tag.split("-", 1)[0]
            if base in self.translations:
                return self.translations[base], base
        return self.text, None

    def to_json(self, accept_language: str | None = None) -> dict:
        text, language = self.for_language(accept_language)
        return {"version": self.version, "text": text, "language": language}

    def accepts(self, version: object) -> bool:
        return isinstance(version, str) and version == self.version


def load_rules(path: Path | None) -> Rules:
    """The built-in rules (``path`` is ``None``) or the operator's file and its translations.

    Raises :class:`RulesError` for a missing, empty, oversized or non-UTF-8 file."""
    if path is None:
        return Rules()
    path = Path(path)
    text = _read(path)
    translations: dict[str, str] = {}
    suffix = path.suffix
    stem = path.name[: -len(suffix)] if suffix else path.name
    for candidate in sorted(path.parent.glob(f"{glob_escape(stem)}.*{glob_escape(suffix)}")):
        middle = candidate.name[len(stem) + 1: len(candidate.name) - len(suffix)]
        if candidate == path or not _LANG.match(middle):
            continue
        translations[middle.lower()] = _read(candidate)
    return Rules(text=text, translations=translations)


def _read(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RulesError(f"rules file {path}: cannot read it ({exc.strerror or exc})") from None
    if len(data) > MAX_RULES_BYTES:
        raise RulesError(f"rules file {path}: {len(data)} bytes, at most {MAX_RULES_BYTES} allowed")
    try:
        text = data.decode("utf-8-sig").replace("\r\n", "\n").strip()
    except UnicodeDecodeError:
        raise RulesError(f"rules file {path}: not UTF-8 text") from None
    if not text:
        raise RulesError(f"rules file {path}: empty")
    return text + "\n"


def _preferred(header: str) -> list[str]:
    """Language tags of an Accept-Language header, best first (``q=0`` left out)."""
    weighted = []
    for position, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        tag = tag.strip().lower()
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if tag and tag != "*" and _LANG.match(tag) and quality > 0:
            weighted.append((-quality, position, tag))
    return [tag for _, _, tag in sorted(weighted)]


def glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)
