"""Which buildpack builds a source tree, in DigitalOcean's order.

Role: a pure decision over the files of the app's directory (``source_dir``) and the component's
``environment_slug`` and ``build_command``. It runs nothing and writes nothing.

The order (reference §1.1, §1.5–1.10):

1. ``environment_slug``, when it names a buildpack (``python``, ``node-js``, ``go``, ``php``, ``ruby``,
   ``ruby-on-rails``, ``hugo``, ``hexo``, ``jekyll``, ``gatsby``, ``html``, ``dotnet``). An unknown slug
   is reported and the files decide.
2. Go: ``go.mod`` (or the older ``Gopkg.toml``, ``Godeps/Godeps.json``, ``vendor/vendor.json``,
   ``glide.yaml``). A Go module file wins over Hugo: a Hugo site with a ``go.mod`` (Hugo modules) builds as
   Go on DigitalOcean, and so here.
3. PHP: ``composer.json`` or ``index.php``. A Laravel app also has a ``package.json`` for its assets; it is
   PHP, with the Node.js buildpack run after it when ``package.json`` has a build script.
4. Ruby: ``Gemfile``. A Jekyll site (``_config.yml`` and a Gemfile naming jekyll) is Jekyll. A Rails app
   has ``public/``; it is Ruby, never a static site.
5. Python: ``requirements.txt``, ``Pipfile``, ``setup.py``, ``pyproject.toml``, ``uv.lock``, ``poetry.lock``
   (before Node: a Django app with a ``package.json`` for front-end tools is far commoner than the reverse).
6. Node.js: ``package.json``; Gatsby and Hexo sites are told apart by their dependencies.
7. .NET: a ``*.sln``, ``*.slnx``, ``*.csproj``, ``*.fsproj`` or ``*.vbproj`` at the root.
8. Hugo: ``hugo.toml|yaml|json`` or ``config.toml|yaml|json`` beside ``content/``, ``layouts/`` or
   ``themes/``.
9. HTML: an ``index.html`` at the root, or — only without a ``build_command`` that would produce them —
   one of the static output dirs already committed.
10. Otherwise none: only the spec's ``build_command`` and ``run_command`` apply.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from shoal.runtime.buildpacks.tree import Tree

Language = Literal["python", "node", "go", "php", "ruby", "dotnet", "hugo", "jekyll", "hexo", "gatsby", "html",
                   "none"]

SLUGS: dict[str, Language] = {
    "python": "python", "node-js": "node", "go": "go", "php": "php", "ruby": "ruby", "ruby-on-rails": "ruby",
    "hugo": "hugo", "hexo": "hexo", "jekyll": "jekyll", "gatsby": "gatsby", "html": "html", "dotnet": "dotnet",
}
BUILDPACK_OF: dict[Language, str] = {
    "python": "digitalocean/python", "node": "digitalocean/node", "go": "digitalocean/go", "php": "digitalocean/php",
    "ruby": "digitalocean/ruby", "dotnet": "digitalocean/dotnet", "hugo": "digitalocean/hugo",
    "jekyll": "digitalocean/jekyll", "hexo": "digitalocean/hexo", "gatsby": "digitalocean/gatsby",
    "html": "digitalocean/html",
}
GO_MARKERS = ("go.mod", "Gopkg.toml", "Godeps/Godeps.json", "vendor/vendor.json", "glide.yaml")
PYTHON_MARKERS = ("requirements.txt", "Pipfile", "setup.py", "pyproject.toml", "uv.lock", "poetry.lock")
DOTNET_PATTERNS = ("*.sln", "*.slnx", "*.csproj", "*.fsproj", "*.vbproj")
HUGO_CONFIGS = tuple(f"{stem}.{ext}" for stem in ("hugo", "config") for ext in ("toml", "yaml", "yml", "json"))
HUGO_DIRS = ("content", "layouts", "themes", "archetypes")
# DigitalOcean's output_dir defaults for static sites, in its order (API reference §4.4).
STATIC_DIRS = ("_static", "dist", "public", "build")
STATIC_GENERATORS: frozenset[Language] = frozenset({"hugo", "jekyll", "hexo", "gatsby", "html"})


@dataclass(frozen=True)
class Detection:
    """The outcome: the language, the buildpacks that run (in order), and why — for the BUILD log.

    ``assets`` is set when a second buildpack (Node.js) runs after the first for front-end assets, as
    for a Laravel or Rails app with a ``package.json`` build script.
    """

    language: Language
    reason: str
    assets: bool = False
    unknown_slug: str | None = None

    @property
    def buildpacks(self) -> tuple[str, ...]:
        if self.language == "none":
            return ()
        first = BUILDPACK_OF[self.language]
        return (first, "digitalocean/node") if self.assets else (first,)


def detect(source: Path, environment_slug: str | None = None, build_command: str | None = None) -> Detection:
    """The buildpack for the app in ``source`` (see the module docstring for the order)."""
    tree = Tree(source)
    slug = (environment_slug or "").strip()
    by_slug = SLUGS.get(slug)
    if by_slug is not None:
        return _with_assets(tree, Detection(by_slug, f"environment_slug {slug!r}"))
    found = _by_files(tree, build_command)
    if slug:
        return Detection(found.language, found.reason, found.assets, unknown_slug=slug)
    return found


def _by_files(tree: Tree, build_command: str | None) -> Detection:
    for check in (_go, _php, _ruby, _python, _node, _dotnet, _hugo):
        found = check(tree)
        if found is not None:
            return _with_assets(tree, found)
    if tree.has("index.html"):
        return Detection("html", "index.html found")
    committed = next((name for name in STATIC_DIRS if tree.has_dir(name)), None)
    if committed and not build_command:
        return Detection("html", f"{committed}/ found and no build_command")
    return Detection("none", "no buildpack's files found")


def _go(tree: Tree) -> Detection | None:
    marker = next((name for name in GO_MARKERS if tree.has(name)), None)
    return Detection("go", f"{marker} found") if marker else None


def _php(tree: Tree) -> Detection | None:
    marker = next((name for name in ("composer.json", "index.php") if tree.has(name)), None)
    return Detection("php", f"{marker} found") if marker else None


def _ruby(tree: Tree) -> Detection | None:
    if not tree.has("Gemfile"):
        return None
    if tree.has("_config.yml") and ("jekyll" in tree.text("Gemfile") or tree.lock_mentions("Gemfile.lock", "jekyll")):
        return Detection("jekyll", "_config.yml and a Gemfile naming jekyll found")
    return Detection("ruby", "Gemfile found")


def _python(tree: Tree) -> Detection | None:
    marker = next((name for name in PYTHON_MARKERS if tree.has(name)), None)
    return Detection("python", f"{marker} found") if marker else None


def _node(tree: Tree) -> Detection | None:
    if not tree.has("package.json"):
        return None
    deps = tree.node_dependencies()
    for generator in ("gatsby", "hexo"):
        if generator in deps:
            return Detection("gatsby" if generator == "gatsby" else "hexo", f"package.json depending on {generator}")
    return Detection("node", "package.json found")


def _dotnet(tree: Tree) -> Detection | None:
    found = next((name for pattern in DOTNET_PATTERNS for name in tree.glob(pattern)), None)
    return Detection("dotnet", f"{found} found") if found else None


def _hugo(tree: Tree) -> Detection | None:
    config = next((name for name in HUGO_CONFIGS if tree.has(name)), None)
    if config and any(tree.has_dir(name) for name in HUGO_DIRS):
        return Detection("hugo", f"{config} found")
    return None


def _with_assets(tree: Tree, found: Detection) -> Detection:
    """PHP and Ruby apps with a ``package.json`` build script also run the Node.js buildpack (assets)."""
    if found.language in ("php", "ruby") and tree.has("package.json") and _builds_assets(tree):
        return Detection(found.language, found.reason + "; package.json has a build script", assets=True,
                         unknown_slug=found.unknown_slug)
    return found


def _builds_assets(tree: Tree) -> bool:
    scripts = tree.scripts()
    return "build" in scripts or "heroku-postbuild" in scripts
