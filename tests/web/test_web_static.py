"""Static checks of the web interface: CSP-compatible markup, no external resources, a module
graph whose every import resolves, every page routed and reachable from the navigation."""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath

import pytest

from camio.web.routes import CONTENT_TYPES, STATIC_DIR

JS_FILES = sorted(STATIC_DIR.rglob("*.js"))
PAGES = sorted((STATIC_DIR / "pages").glob("*.js"))
INDEX = STATIC_DIR / "index.html"


class _Markup(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self.refs: list[str] = []
        self.nav_routes: list[str] = []
        self._script_without_src = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        for name, _ in attrs:
            if name.startswith("on"):
                self.problems.append(f"inline handler {name} on <{tag}>")
            if name == "style":
                self.problems.append(f"inline style on <{tag}>")
        if tag == "style":
            self.problems.append("<style> element")
        if tag == "script":
            if not named.get("src"):
                self._script_without_src = True
            else:
                self.refs.append(str(named["src"]))
        for key in ("href", "src"):
            value = named.get(key)
            if value and value.startswith("/static/"):
                self.refs.append(value)
            if value and re.match(r"^(https?:)?//", value):
                self.problems.append(f"external resource {value}")
        if tag == "a" and named.get("data-route"):
            self.nav_routes.append(str(named["data-route"]))

    def handle_data(self, data: str) -> None:
        if self._script_without_src and data.strip():
            self.problems.append("inline script")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._script_without_src = False


def _markup() -> _Markup:
    parser = _Markup()
    parser.feed(INDEX.read_text())
    return parser


def test_index_has_no_inline_script_style_or_handlers() -> None:
    assert _markup().problems == []


def test_index_references_existing_static_files() -> None:
    refs = _markup().refs
    assert "/static/app.js" in refs and "/static/style.css" in refs
    for ref in refs:
        assert (STATIC_DIR / ref.removeprefix("/static/")).is_file(), ref


def test_every_static_file_has_a_known_type() -> None:
    for path in STATIC_DIR.rglob("*"):
        if path.is_file():
            assert path.suffix in CONTENT_TYPES, path


_FORBIDDEN_JS = [
    (re.compile(r"\beval\s*\("), "eval"),
    (re.compile(r"\bnew\s+Function\b"), "new Function"),
    (re.compile(r"\.innerHTML\b|\.outerHTML\s*=|insertAdjacentHTML"), "HTML from strings"),
    (re.compile(r"document\.write"), "document.write"),
    (re.compile(r"setAttribute\(\s*['\"]style['\"]"), "inline style attribute"),
    (re.compile(r"setAttribute\(\s*['\"]on\w+['\"]"), "inline handler attribute"),
    (re.compile(r"setTimeout\(\s*['\"`]|setInterval\(\s*['\"`]"), "string timers (eval)"),
]
_EXTERNAL = re.compile(r"https?://(?!www\.w3\.org/)[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")


@pytest.mark.parametrize("path", JS_FILES, ids=lambda p: p.relative_to(STATIC_DIR).as_posix())
def test_scripts_keep_to_the_csp_and_the_device(path: Path) -> None:
    source = path.read_text()
    for pattern, what in _FORBIDDEN_JS:
        assert not pattern.search(source), f"{path.name}: {what}"
    assert not _EXTERNAL.search(source), f"{path.name}: external URL"


def test_stylesheet_loads_nothing_from_outside() -> None:
    css = (STATIC_DIR / "style.css").read_text()
    assert "@import" not in css
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", css)
    assert "@font-face" not in css  # system fonts only


_STATIC_IMPORT = re.compile(r"import\s*\{([^}]*)\}\s*from\s*'([^']+)'")
_DYNAMIC_IMPORT = re.compile(r"import\(\s*'([^']+)'\s*\)")
_EXPORT = re.compile(r"export\s+(?:async\s+)?(?:function\*?|const|let|class)\s+([A-Za-z_$][\w$]*)")
_EXPORT_LIST = re.compile(r"export\s*\{([^}]*)\}")


def _exports(path: Path) -> set[str]:
    source = path.read_text()
    names = set(_EXPORT.findall(source))
    for group in _EXPORT_LIST.findall(source):
        names.update(n.strip().split(" as ")[-1] for n in group.split(",") if n.strip())
    return names


def _target(importer: Path, spec: str) -> Path:
    assert spec.startswith("./") or spec.startswith("../"), f"{importer.name}: bare import {spec}"
    resolved = (importer.parent / PurePosixPath(spec)).resolve()
    assert resolved.is_relative_to(STATIC_DIR), spec
    return resolved


@pytest.mark.parametrize("path", JS_FILES, ids=lambda p: p.relative_to(STATIC_DIR).as_posix())
def test_every_import_resolves_to_an_export(path: Path) -> None:
    source = path.read_text()
    for names, spec in _STATIC_IMPORT.findall(source):
        target = _target(path, spec)
        assert target.is_file(), f"{path.name}: {spec} missing"
        exported = _exports(target)
        for name in (n.strip() for n in names.split(",")):
            if name:
                assert name in exported, f"{path.name}: {name} is not exported by {spec}"
    for spec in _DYNAMIC_IMPORT.findall(source):
        assert _target(path, spec).is_file(), f"{path.name}: {spec} missing"


def test_every_page_is_routed_exported_and_in_the_navigation() -> None:
    app = (STATIC_DIR / "app.js").read_text()
    routed = set(re.findall(r"import\('\./pages/(\w+)\.js'\)", app))
    nav = set(_markup().nav_routes)
    for page in PAGES:
        name = page.stem
        assert name in routed, f"pages/{page.name} has no route"
        assert "render" in _exports(page), f"pages/{page.name} exports no render()"
        if name not in ("login", "setup"):
            assert name in nav, f"{name} is not in the navigation"
    assert nav <= routed


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
@pytest.mark.parametrize("path", JS_FILES, ids=lambda p: p.relative_to(STATIC_DIR).as_posix())
def test_scripts_parse(path: Path) -> None:
    node = shutil.which("node")
    assert node is not None
    result = subprocess.run(
        [node, "--check", str(path)], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stderr
