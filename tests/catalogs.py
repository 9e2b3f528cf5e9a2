"""Reading the page's language catalogs (client/locales/*.js) and the keys the page uses, from Python.

A catalog is an ES module ``export default { 'key': 'text', ... };`` with string keys and string
values only (single or double quotes, JavaScript escapes, comments, trailing comma): anything else
is refused, so what a test reads is exactly what the browser gets.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLIENT = ROOT / "client"
LOCALES = CLIENT / "locales"

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "v": "\v", "0": "\0"}


class CatalogError(ValueError):
    pass


class _Reader:
    def __init__(self, text: str, name: str) -> None:
        self.text, self.name, self.pos = text, name, 0

    def fail(self, what: str) -> CatalogError:
        line = self.text.count("\n", 0, self.pos) + 1
        return CatalogError(f"{self.name}:{line}: {what}")

    def skip(self) -> None:
        """White space and comments."""
        while self.pos < len(self.text):
            if self.text[self.pos].isspace():
                self.pos += 1
            elif self.text.startswith("//", self.pos):
                end = self.text.find("\n", self.pos)
                self.pos = len(self.text) if end < 0 else end + 1
            elif self.text.startswith("/*", self.pos):
                end = self.text.find("*/", self.pos + 2)
                if end < 0:
                    raise self.fail("unterminated comment")
                self.pos = end + 2
            else:
                return

    def expect(self, token: str) -> None:
        self.skip()
        if not self.text.startswith(token, self.pos):
            raise self.fail(f"expected {token!r}, found {self.text[self.pos:self.pos + 20]!r}")
        self.pos += len(token)

    def peek(self) -> str:
        self.skip()
        return self.text[self.pos:self.pos + 1]

    def string(self) -> str:
        self.skip()
        quote = self.peek()
        if quote not in ("'", '"'):
            raise self.fail(f"expected a quoted string, found {self.text[self.pos:self.pos + 20]!r}")
        self.pos += 1
        out = []
        while True:
            if self.pos >= len(self.text):
                raise self.fail("unterminated string")
            c = self.text[self.pos]
            if c == quote:
                self.pos += 1
                return "".join(out)
            if c == "\n":
                raise self.fail("line break in a string")
            if c == "\\":
                self.pos += 1
                e = self.text[self.pos]
                if e == "u":
                    if self.text[self.pos + 1] == "{":
                        end = self.text.index("}", self.pos)
                        out.append(chr(int(self.text[self.pos + 2:end], 16)))
                        self.pos = end + 1
                    else:
                        out.append(chr(int(self.text[self.pos + 1:self.pos + 5], 16)))
                        self.pos += 5
                    continue
                out.append(_ESCAPES.get(e, e))
                self.pos += 1
                continue
            out.append(c)
            self.pos += 1


def parse_catalog(text: str, name: str = "catalog") -> dict[str, str]:
    """The key → text mapping of one catalog's source; :class:`CatalogError` if it is anything else."""
    r = _Reader(text, name)
    r.expect("export default")
    r.expect("{")
    out: dict[str, str] = {}
    while r.peek() != "}":
        key = r.string()
        r.expect(":")
        value = r.string()
        if key in out:
            raise r.fail(f"key {key!r} twice")
        out[key] = value
        if r.peek() == ",":
            r.expect(",")
        elif r.peek() != "}":
            raise r.fail("expected ',' or '}'")
    r.expect("}")
    if r.peek() == ";":
        r.expect(";")
    r.skip()
    if r.pos != len(r.text):
        raise r.fail("text after the catalog")
    return out


def load_catalog(lang: str) -> dict[str, str]:
    path = LOCALES / f"{lang}.js"
    return parse_catalog(path.read_text(encoding="utf-8"), path.name)


def languages() -> dict[str, str]:
    """LANGUAGES of client/i18n.js: code → name, in the switcher's order."""
    source = (CLIENT / "i18n.js").read_text(encoding="utf-8")
    block = re.search(r"export const LANGUAGES = Object\.freeze\(\{(.*?)\}\);", source, re.S)
    assert block, "LANGUAGES not found in client/i18n.js"
    return dict(re.findall(r"(\w+): '([^']+)'", block.group(1)))


def placeholders(text: str) -> set[str]:
    return set(re.findall(r"\{(\w+)\}", text))


def page_scripts() -> list[Path]:
    """The page's modules (the moderator console, client/mod/, stays English)."""
    return sorted(CLIENT.glob("*.js"))


_STRING = re.compile(r"""'((?:[^'\\\n]|\\.)*)'|"((?:[^"\\\n]|\\.)*)\"""")
#: The key argument of t(key), setText(node, key) and setAttr(node, attr, key), when it is a literal.
_CALLS = (
    re.compile(r"""\bt\(\s*(['"])([^'"]+)\1"""),
    re.compile(r"""\bsetText\(\s*[^,()]+,\s*(['"])([^'"]+)\1"""),
    re.compile(r"""\bsetAttr\(\s*[^,()]+,\s*[^,()]+,\s*(['"])([^'"]+)\1"""),
)


def keys_used_in_scripts(groups: set[str]) -> dict[str, set[str]]:
    """Text keys the page's scripts name, by file: the key argument of ``t()``, ``setText()`` and
    ``setAttr()``, and every string literal shaped like ``group.name`` for a catalog group."""
    found: dict[str, set[str]] = {}
    shape = re.compile(r"([a-z]+)\.[a-z0-9_]+(?:\.[a-z0-9_]+)*")
    for path in page_scripts():
        source = path.read_text(encoding="utf-8")
        keys = {m.group(2) for call in _CALLS for m in call.finditer(source)}
        for m in _STRING.finditer(source):
            literal = m.group(1) if m.group(1) is not None else m.group(2)
            match = shape.fullmatch(literal)
            if match and match.group(1) in groups:
                keys.add(literal)
        found[path.name] = keys
    return found


class _PageScan(HTMLParser):
    """Keys named by index.html, and its texts and labels that name none."""

    TEXT_ATTRS = ("aria-label", "title", "placeholder", "alt")
    #: The operator's site name (a setting, not a translation).
    BRAND = {"brand", "brand-name"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.keys: set[str] = set()
        self.untranslated: list[str] = []
        self._stack: list[tuple[str, dict[str, str]]] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag in ("svg", "script", "style"):
            self._skip += 1
        if tag not in ("meta", "link", "input", "img", "br", "use", "path", "circle", "rect"):
            self._stack.append((tag, a))
        if "data-i18n" in a:
            self.keys.add(a["data-i18n"])
        translated = set()
        for pair in a.get("data-i18n-attr", "").split(";"):
            if ":" in pair:
                attr, key = (s.strip() for s in pair.split(":", 1))
                translated.add(attr)
                self.keys.add(key)
        if self._skip or a.get("id") in self.BRAND:
            return
        for attr in self.TEXT_ATTRS:
            if a.get(attr, "").strip() and attr not in translated:
                self.untranslated.append(f"<{tag} {attr}={a[attr]!r}>")
        if tag == "meta" and a.get("name") == "description" and "content" not in translated:
            self.untranslated.append("<meta name=description content>")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("svg", "script", "style"):
            self._skip -= 1
        while self._stack:
            if self._stack.pop()[0] == tag:
                break

    def handle_data(self, data: str) -> None:
        if self._skip or not data.strip() or not self._stack:
            return
        tag, attrs = self._stack[-1]
        if "data-i18n" not in attrs and attrs.get("id") not in self.BRAND:
            self.untranslated.append(f"<{tag}> {data.strip()!r}")


def scan_page() -> _PageScan:
    scan = _PageScan()
    scan.feed((CLIENT / "index.html").read_text(encoding="utf-8"))
    return scan
