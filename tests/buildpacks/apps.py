"""Test apps shaped like typical App Platform apps, one per language, written into a directory.

Each needs nothing the machine cannot reach: Python packages from PyPI, Node packages from npm, Go
with no dependencies or a vendor/ directory, PHP with a Composer path repository, Ruby with the gems
Debian's ruby-sinatra and puma packages install. Each answers ``/`` with a line naming itself.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


DJANGO = {
    "requirements.txt": "django>=4.2,<6\n",
    "manage.py": (
        "import os, sys\n"
        "if __name__ == '__main__':\n"
        "    os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'mysite.settings')\n"
        "    from django.core.management import execute_from_command_line\n"
        "    execute_from_command_line(sys.argv)\n"),
    "mysite/__init__.py": "",
    "mysite/settings.py": (
        "from pathlib import Path\n"
        "BASE_DIR = Path(__file__).resolve().parent.parent\n"
        "SECRET_KEY = 'test-only'\nDEBUG = False\nALLOWED_HOSTS = ['*']\n"
        "INSTALLED_APPS = ['django.contrib.staticfiles', 'hello']\n"
        "ROOT_URLCONF = 'mysite.urls'\nSTATIC_URL = '/static/'\nSTATIC_ROOT = BASE_DIR / 'staticfiles'\n"),
    "mysite/urls.py": (
        "from django.http import HttpResponse\nfrom django.urls import path\n"
        "urlpatterns = [path('', lambda request: HttpResponse('hello from django\\n'))]\n"),
    "mysite/serve.py": (  # a WSGI server from the standard library, so the test needs no gunicorn
        "import os\nfrom wsgiref.simple_server import make_server\n"
        "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'mysite.settings')\n"
        "from django.core.wsgi import get_wsgi_application\n"
        "make_server('0.0.0.0', int(os.environ['PORT']), get_wsgi_application()).serve_forever()\n"),
    "hello/__init__.py": "",
    "hello/static/hello/site.css": "body { color: teal; }\n",
    "Procfile": "web: python -m mysite.serve\n",
}

GO_MAIN = (
    'package main\n\nimport (\n\t"fmt"\n\t"net/http"\n\t"os"\n%s)\n\n'
    'func main() {\n\thttp.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {\n'
    '\t\tfmt.Fprintln(w, %s)\n\t})\n\thttp.ListenAndServe(":"+os.Getenv("PORT"), nil)\n}\n')


def go_app(root: Path, *, go: str = "1.22", vendored: bool = False, procfile: bool = True) -> Path:
    """``module example.com/hello-go`` (so ``bin/hello-go``); with a vendored dependency when asked."""
    files = {"go.mod": f"module example.com/hello-go\n\ngo {go}\n"}
    if vendored:
        files["go.mod"] += "\nrequire example.com/greet v1.0.0\n"
        files["go.sum"] = "example.com/greet v1.0.0 h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
        files["vendor/modules.txt"] = f"# example.com/greet v1.0.0\n## explicit; go {go}\nexample.com/greet\n"
        files["vendor/example.com/greet/greet.go"] = \
            'package greet\n\nfunc Hello() string { return "hello from vendored go" }\n'
        files["main.go"] = GO_MAIN % ('\n\t"example.com/greet"\n', "greet.Hello()")
    else:
        files["main.go"] = GO_MAIN % ("", '"hello from go"')
    if procfile:
        files["Procfile"] = "web: bin/hello-go\n"
    return write(root, files)


LARAVEL_HTACCESS = (
    "<IfModule mod_rewrite.c>\n    RewriteEngine On\n"
    "    RewriteCond %{REQUEST_FILENAME} !-d\n    RewriteCond %{REQUEST_FILENAME} !-f\n"
    "    RewriteRule ^ index.php [L]\n</IfModule>\n")


def php_app(root: Path) -> Path:
    """Laravel-shaped: ``public/index.php`` front controller with ``.htaccess``, a Composer path
    repository standing in for Packagist, ``artisan``, and a ``package.json`` whose build writes an asset."""
    write(root, {
        "composer.json": json.dumps({
            "name": "shoal/laravel-shaped", "type": "project",
            "require": {"php": ">=8.1", "shoal/greeting": "*"},
            "repositories": [{"type": "path", "url": "packages/greeting", "options": {"symlink": False}}],
            "autoload": {"psr-4": {"App\\": "app/"}}}, indent=2),
        "packages/greeting/composer.json": json.dumps({
            "name": "shoal/greeting", "version": "1.0.0", "autoload": {"psr-4": {"Greeting\\": "src/"}}}),
        "packages/greeting/src/Hello.php":
            "<?php\nnamespace Greeting;\nclass Hello { public static function say(): string "
            "{ return 'hello from php'; } }\n",
        "app/Http/Kernel.php": "<?php\nnamespace App\\Http;\nclass Kernel {}\n",
        "artisan": "#!/usr/bin/env php\n<?php\necho \"artisan\\n\";\n",
        "public/index.php":
            "<?php\nrequire __DIR__ . '/../vendor/autoload.php';\n"
            "echo \\Greeting\\Hello::say(), ' at ', parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH), \"\\n\";\n",
        "public/.htaccess": LARAVEL_HTACCESS,
        "package.json": json.dumps({"private": True, "scripts": {"build": "node -e \"require('fs')"
                                    ".writeFileSync('public/app.css', 'built assets\\\\n')\""}}),
        "Procfile": "web: heroku-php-apache2 public/\n",
    })
    lock = subprocess.run(["composer", "update", "--no-interaction", "--no-ansi", "--no-install", "-q"], cwd=root,
                          env={"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(root / ".home"),
                               "COMPOSER_ALLOW_SUPERUSER": "1"}, capture_output=True, text=True, timeout=120)
    assert lock.returncode == 0, lock.stdout + lock.stderr
    subprocess.run(["rm", "-rf", str(root / ".home")], check=True)
    return root


def sinatra_app(root: Path) -> Path:
    """A Sinatra app run by rackup through puma; its Gemfile.lock locks what Debian's packages installed."""
    write(root, {
        "Gemfile": 'source "https://rubygems.org"\nruby "~> 3.1"\ngem "sinatra"\ngem "puma"\n',
        "app.rb": 'require "sinatra/base"\nclass App < Sinatra::Base\n  get("/") { "hello from sinatra\\n" }\nend\n',
        "config.ru": 'require_relative "app"\nrun App\n',
    })
    lock = subprocess.run(["bundle", "lock", "--local"], cwd=root, capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(root)})
    assert lock.returncode == 0, lock.stdout + lock.stderr
    return root


NODE_PACKAGE = {
    "name": "hello-node", "version": "1.0.0", "private": True, "engines": {"node": ">=18"},
    "scripts": {"build": "node build.js", "start": "node server.js"},
    "dependencies": {"ms": "2.1.3"}, "devDependencies": {"is-number": "7.0.0"},
}
NODE_FILES = {
    # The build needs the dev dependency; the run only the runtime one (dev dependencies are pruned).
    "build.js": "require('is-number'); require('fs').writeFileSync('built.txt', "
                "'built by ' + process.env.npm_config_user_agent.split('/')[0]);\n",
    "server.js": "const ms = require('ms'); const fs = require('fs');\n"
                 "require('http').createServer((q, s) => s.end('hello from node, ' + ms(60000) + ', ' + "
                 "fs.readFileSync('built.txt') + '\\n')).listen(process.env.PORT);\n",
}
PNPM_LOCK = """lockfileVersion: '9.0'

settings:
  autoInstallPeers: true
  excludeLinksFromLockfile: false

importers:

  .:
    dependencies:
      ms:
        specifier: 2.1.3
        version: 2.1.3
    devDependencies:
      is-number:
        specifier: 7.0.0
        version: 7.0.0

packages:

  is-number@7.0.0:
    resolution: {integrity: sha512-41Cifkg6e8TylSpdtTpeLVMqvSBEVzTttHvERD741+pnZ8ANv0004MRL43QKPDlK9cGvNp6NZWZUBlbGXYxxng==}
    engines: {node: '>=0.12.0'}

  ms@2.1.3:
    resolution: {integrity: sha512-6FlzubTLZG3J2a/NVCAleEhjzq5oxgHyaCU9yYXvcLsvoVaHJq/s5xXI6/XXP6tz7R9xAOtHnSO/tXtF3WRTlA==}

snapshots:

  is-number@7.0.0: {}

  ms@2.1.3: {}
"""
YARN_LOCK = """# THIS IS AN AUTOGENERATED FILE. DO NOT EDIT THIS FILE DIRECTLY.
# yarn lockfile v1


is-number@7.0.0:
  version "7.0.0"
  resolved "https://registry.yarnpkg.com/is-number/-/is-number-7.0.0.tgz#7535345b896734d5f80c4d06c50955527a14f12b"
  integrity sha512-41Cifkg6e8TylSpdtTpeLVMqvSBEVzTttHvERD741+pnZ8ANv0004MRL43QKPDlK9cGvNp6NZWZUBlbGXYxxng==

ms@2.1.3:
  version "2.1.3"
  resolved "https://registry.yarnpkg.com/ms/-/ms-2.1.3.tgz#574c8138ce1d2b5861f0b44579dbadd60c6615b2"
  integrity sha512-6FlzubTLZG3J2a/NVCAleEhjzq5oxgHyaCU9yYXvcLsvoVaHJq/s5xXI6/XXP6tz7R9xAOtHnSO/tXtF3WRTlA==
"""


YARN_BERRY_LOCK = """# This file is generated by running "yarn install" inside your project.
# Manual changes might be lost - proceed with caution!

__metadata:
  version: 8
  cacheKey: 10c0

"hello-node@workspace:.":
  version: 0.0.0-use.local
  resolution: "hello-node@workspace:."
  dependencies:
    is-number: "npm:7.0.0"
    ms: "npm:2.1.3"
  languageName: unknown
  linkType: soft

"is-number@npm:7.0.0":
  version: 7.0.0
  resolution: "is-number@npm:7.0.0"
  checksum: 10c0/b4686d0d3053146095ccd45346461bc8e53b80aeb7671cc52a4de02dbbf7dc0d1d2a986e2fe4ae206984b4d34ef37e8b795ebc4f4295c978373e6575e295d811
  languageName: node
  linkType: hard

"ms@npm:2.1.3":
  version: 2.1.3
  resolution: "ms@npm:2.1.3"
  checksum: 10c0/d924b57e7312b3b63ad21fc5b3dc0af5e78d61a1fc7cfb5457edaf26326bf62be5307cc87ffb6862ef1c2b33b0233cdb5d4f01c4c958cc0d660948b65a287a48
  languageName: node
  linkType: hard
"""


def node_app(root: Path, manager: str) -> Path:
    """The same app locked by ``yarn`` (1), ``yarn4`` (Yarn 4 with node_modules, as deployments set it) or
    ``pnpm`` (no Procfile: the default process is npm start)."""
    if manager == "yarn4":
        package = {**NODE_PACKAGE, "packageManager": "yarn@4.5.3"}
        return write(root, {"package.json": json.dumps(package, indent=2), **NODE_FILES, "yarn.lock": YARN_BERRY_LOCK,
                            ".yarnrc.yml": "nodeLinker: node-modules\n"})
    lock = {"yarn": ("yarn.lock", YARN_LOCK), "pnpm": ("pnpm-lock.yaml", PNPM_LOCK)}[manager]
    return write(root, {"package.json": json.dumps(NODE_PACKAGE, indent=2), **NODE_FILES, lock[0]: lock[1]})


HEXO_SITE = {
    # No lockfile: npm install resolves these exact versions (hexo is detected by the dependency).
    # The "hexo" field marks a Hexo folder (hexo init writes it): without it hexo knows only init and help.
    "package.json": json.dumps({"name": "site", "version": "0.0.0", "private": True, "hexo": {"version": "7.3.0"},
                                "dependencies": {
        "hexo": "7.3.0", "hexo-renderer-ejs": "2.0.0", "hexo-renderer-marked": "6.3.0",
        "hexo-generator-index": "4.0.0"}}, indent=2),
    "_config.yml": "title: Hello Hexo\nurl: http://example.com\ntheme: plain\n",
    "themes/plain/layout/layout.ejs": "<h1><%= config.title %></h1><%- body %>\n",
    "themes/plain/layout/index.ejs": "<% page.posts.each(function(post){ %><p><%= post.title %></p><% }) %>\n",
    "source/_posts/first.md": "---\ntitle: First post\n---\nhello\n",
}


def hugo_site(root: Path, theme: Path | None = None) -> Path:
    """A Hugo site; its theme ``plain`` is written into ``theme`` when given (a separate repo to add as a
    submodule), else into ``themes/plain``."""
    theme_files = {
        "layouts/index.html": "<h1>{{ .Site.Title }}</h1>{{ range .Site.RegularPages }}<p>{{ .Title }}</p>{{ end }}\n",
        "layouts/_default/single.html": "<h1>{{ .Title }}</h1>{{ .Content }}\n",
        "layouts/_default/list.html": "<h1>{{ .Title }}</h1>\n",
        "theme.toml": 'name = "plain"\n',
    }
    write(theme if theme is not None else root / "themes" / "plain", theme_files)
    return write(root, {
        "hugo.toml": 'baseURL = "/"\ntitle = "hello from hugo"\ntheme = "plain"\n'
                     'disableKinds = ["taxonomy", "term", "RSS", "sitemap"]\n',
        "content/posts/first.md": '---\ntitle: "First post"\n---\nWritten in markdown.\n',
    })
