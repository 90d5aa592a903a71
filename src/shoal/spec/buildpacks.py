"""The buildpacks shoal's builds use, with versions: what ``GET /v2/apps/buildpacks`` lists and
what ``upgrade_buildpack`` pins an app to (runtime reference §1.2).

DigitalOcean's ids are its own (``digitalocean/node``...) over pinned Heroku buildpack releases
(Python v322, Node.js v341, §1.5–1.6); shoal's local builders follow those releases, so each is
listed with that release as its major version. An app pins *major* versions only
(``build_config.cnb_versioning.buildpacks[{id, major_version}]``); minor updates apply on their own.
The builders that add a stack (the buildpacks issue) add its entry here, so the list stays what
shoal really builds with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Buildpack:
    id: str
    name: str
    version: str  # major.minor.patch
    description: tuple[str, ...]
    docs_link: str
    stacks: tuple[str, ...]  # shoal's detected stacks (runtime.local.detect) this buildpack builds
    slugs: tuple[str, ...]  # DigitalOcean environment_slug values that select it

    @property
    def major_version(self) -> int:
        return int(self.version.split(".")[0])

    def as_wire(self) -> dict[str, Any]:
        """godo's ``Buildpack``: one entry per version; shoal carries only the latest of each."""
        return {"id": self.id, "version": self.version, "major_version": self.major_version, "latest": True,
                "name": self.name, "description": list(self.description), "docs_link": self.docs_link}


BUILDPACKS: tuple[Buildpack, ...] = (
    Buildpack("digitalocean/python", "Python", "322.0.0",
              ("Installs a virtualenv per build from requirements.txt, pyproject.toml or Pipfile.",
               "Runs the Procfile's web/worker line, else python main.py or app.py."),
              "https://docs.digitalocean.com/products/app-platform/reference/buildpacks/python/",
              ("python",), ("python",)),
    Buildpack("digitalocean/node", "Node.js", "341.0.0",
              ("Installs dependencies with npm ci (or npm install) and runs npm run build.",
               "Runs the Procfile's line, else npm start."),
              "https://docs.digitalocean.com/products/app-platform/reference/buildpacks/nodejs/",
              ("node",), ("node-js", "gatsby", "hexo")),
    Buildpack("digitalocean/static", "Static site", "1.0.0",
              ("Serves the output directory (_static, dist, public or build) or the HTML at the root.",),
              "https://docs.digitalocean.com/products/app-platform/reference/buildpacks/",
              ("static",), ("html",)),
    Buildpack("digitalocean/custom", "Custom build and run commands", "1.0.0",
              ("Runs the component's build_command, then its run_command, with no language detected.",),
              "https://docs.digitalocean.com/products/app-platform/how-to/build-run-commands/",
              ("custom",), ()),
)
BUILDPACKS_BY_ID = {b.id: b for b in BUILDPACKS}
