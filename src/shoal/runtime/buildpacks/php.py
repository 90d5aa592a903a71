"""The PHP buildpack: ``composer install --no-dev`` and the ``heroku-php-*`` servers.

As heroku-buildpack-php v278 (reference §1.8): a ``composer.json`` that requires packages needs a
committed ``composer.lock``; ``composer install --no-dev --prefer-dist --optimize-autoloader
--no-progress --no-interaction`` (``HEROKU_PHP_INSTALL_DEV`` keeps dev packages); a ``compile`` script in
``composer.json`` runs after it. Default process ``web: heroku-php-apache2``; ``heroku-php-apache2`` and
``heroku-php-nginx`` are on ``PATH`` (``php_servers.py``), as is ``vendor/bin``.

PHP and Composer come from the stack image or the host (Debian's ``php-cli`` and ``composer``); there is
no archive shoal can provision them from. Composer checks the PHP version and extensions the lock asks
for and names what it wanted and found when they do not match. Packages are fetched from Packagist
as usual; where it is unreachable, only apps without dependencies or with ``path`` repositories build.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from shoal.domain.deployments import StepFailed
from shoal.runtime.buildpacks.php_servers import SCRIPT
from shoal.runtime.buildpacks.recipe import Action, BuildContext, Log, Recipe, Toolchain, WriteFile, with_path
from shoal.runtime.buildpacks.toolchains import Toolchains
from shoal.runtime.buildpacks.tree import Tree

SERVERS = ("heroku-php-apache2", "heroku-php-nginx")
DEFAULT_PROCESSES: Mapping[str, str] = MappingProxyType({"web": SERVERS[0]})


def needs_lock(tree: Tree) -> bool:
    """Whether ``composer.json`` requires packages (not just ``php`` or extensions) and has no lock."""
    require = tree.json("composer.json").get("require")
    packages = [name for name in (require if isinstance(require, dict) else {})
                if name != "php" and not str(name).startswith(("ext-", "lib-"))]
    return bool(packages) and not tree.has("composer.lock")


async def plan(ctx: BuildContext, tools: Toolchains, log: Log) -> Recipe:
    tree = Tree(ctx.source)
    php = await tools.find("php")
    if php is None:
        raise StepFailed("BuildJobFailed", "PHP app (composer.json or index.php found): PHP is not installed on "
                                           "this machine (Debian package php-cli); it cannot be provisioned")
    bin_dir = ctx.layers / "php" / "bin"
    env = {**with_path(ctx.env, bin_dir, ctx.app / "vendor" / "bin"), "COMPOSER_ALLOW_SUPERUSER": "1",
           "COMPOSER_HOME": str(ctx.cache / "composer"), "COMPOSER_NO_INTERACTION": "1"}
    steps: list[Action] = [WriteFile(f"Writing {name} (document root on $PORT)", bin_dir / name, SCRIPT, 0o755)
                           for name in SERVERS]
    toolchains: list[Toolchain] = [php]
    if tree.has("composer.json"):
        composer = await _composer(tools, tree)
        toolchains.append(composer)
        steps += _composer_steps(ctx, tree, composer, env)
    else:
        log("=> No composer.json: nothing to install")
    servers = [t for name in ("apache2", "nginx") if (t := await tools.present(name)) is not None]
    log("=> Web servers for heroku-php-*: " + (", ".join(t.describe() for t in servers) or
                                               "neither Apache nor nginx; PHP's built-in server stands in"))
    return Recipe(("digitalocean/php",), tuple(toolchains), tuple(steps), processes=DEFAULT_PROCESSES,
                  run_path=(bin_dir, ctx.app / "vendor" / "bin"))


async def _composer(tools: Toolchains, tree: Tree) -> Toolchain:
    if needs_lock(tree):
        raise StepFailed("BuildJobFailed", "composer.json requires packages but there is no composer.lock; run "
                                           "composer update and commit composer.lock")
    composer = await tools.find("composer")
    if composer is None:
        raise StepFailed("BuildJobFailed", "composer.json found, and Composer is not installed on this machine "
                                           "(Debian package composer); it cannot be provisioned")
    return composer


def _composer_steps(ctx: BuildContext, tree: Tree, composer: Toolchain, env: dict[str, str]) -> list[Action]:
    dev = ctx.user_env.get("HEROKU_PHP_INSTALL_DEV") is not None
    flags = ("--prefer-dist", "--optimize-autoloader", "--no-progress", "--no-interaction", "--no-ansi")
    install = ("install", *(() if dev else ("--no-dev",)), *flags)
    steps: list[Action] = [ctx.command(f"Running composer {' '.join(install[:2])}", composer.exe, *install, env=env)]
    scripts = tree.json("composer.json").get("scripts")
    if isinstance(scripts, dict) and "compile" in scripts:
        steps.append(ctx.command("Running composer run-script compile", composer.exe, "run-script",
                                 *(() if dev else ("--no-dev",)), "compile", env=env))
    return steps
