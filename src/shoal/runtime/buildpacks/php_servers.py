"""``heroku-php-apache2`` and ``heroku-php-nginx`` as shoal provides them: one POSIX shell script.

Role: the text of the launch script the PHP buildpack writes into the build's layers and puts on
``PATH``, so a Procfile or ``run_command`` of ``heroku-php-apache2 public/`` works as on DigitalOcean:
the first argument is the document root (default the app's directory), the server listens on ``$PORT``
(``-p`` overrides), ``-C`` includes a server config file, ``-F`` a PHP-FPM pool config file, ``-i`` a
php.ini; ``-l`` is accepted and ignored (the servers' logs already go to stdout).

Which server runs: Apache with mod_php (``heroku-php-apache2``; ``.htaccess`` honoured, as Laravel's
``public/.htaccess`` needs) or nginx in front of PHP-FPM (``heroku-php-nginx``; unknown paths go to
``index.php``). Apache refuses to serve as root, so as root ``heroku-php-apache2`` runs nginx and
PHP-FPM instead (and says so); shoal's runtimes run apps as an unprivileged user. When a server is not installed, PHP's built-in server serves the same document root
and the script says so on stderr — fine for a test, not for production traffic.

Must not: need anything but ``/bin/sh`` to start; every file it writes goes under the build's layers.
"""

from __future__ import annotations

SCRIPT = r"""#!/bin/sh
# Written by shoal's PHP buildpack: serve a document root with PHP on $PORT (see heroku-php-apache2 -h).
set -eu
me=$(basename "$0")
server=${me#heroku-php-}
port=${PORT:-8080}; include=""; fpm_include=""; ini=""
while getopts "p:C:c:F:f:i:l:vh" opt; do
  case $opt in
    p) port=$OPTARG ;;
    C|c) include=$(realpath "$OPTARG") ;;
    F|f) fpm_include=$(realpath "$OPTARG") ;;
    i) ini=$(realpath "$OPTARG") ;;
    l|v) ;;
    h) echo "usage: $me [-p PORT] [-C SERVER_CONF] [-F FPM_CONF] [-i PHP_INI] [DOCUMENT_ROOT]"; exit 0 ;;
    *) exit 2 ;;
  esac
done
shift $((OPTIND - 1))
if ! root=$(cd "${1:-.}" 2>/dev/null && pwd); then
  echo "$me: document root ${1:-.} does not exist in $(pwd)" >&2; exit 1
fi
run=$(realpath "$(dirname "$0")/..")/run/$$
mkdir -p "$run"
# The servers log to a FIFO that cat copies to this script's stdout: when stdout is a socket (as under
# libuv), opening /dev/stdout or /proc/self/fd/1 fails with ENXIO, and nginx and Apache would not start.
logs="$run/log"
mkfifo "$logs"
cat "$logs" &
exec 3>"$logs"
root_user=""; if [ "$(id -u)" = 0 ]; then root_user=yes; fi
if [ -n "$ini" ]; then export PHPRC="$ini"; fi

builtin() {
  echo "$me: $1 is not installed; serving $root with PHP's built-in server on port $port" >&2
  exec php -S "0.0.0.0:$port" -t "$root"
}

apache() {
  bin=$(command -v apache2 || command -v httpd || true)
  mods=/usr/lib/apache2/modules
  php_mod=$(ls "$mods"/libphp*.so 2>/dev/null | head -n 1 || true)
  if [ -z "$bin" ] || [ -z "$php_mod" ]; then builtin "Apache with mod_php"; fi
  if [ -n "$root_user" ]; then
    # Apache will not serve pages as root, and its usual user cannot read a root-owned build.
    echo "$me: running as root, which Apache refuses; serving with nginx and PHP-FPM instead" >&2
    nginx_fpm
  fi
  conf="$run/apache.conf"
  {
    echo "ServerRoot $run"
    echo "Listen $port"
    echo "PidFile $run/apache.pid"
    echo "Mutex file:$run default"
    echo "DefaultRuntimeDir $run"
    echo "ServerName localhost"
    for m in mpm_prefork authz_core dir mime rewrite env headers setenvif; do
      echo "LoadModule ${m}_module $mods/mod_$m.so"
    done
    echo "LoadModule php_module $php_mod"
    echo "TypesConfig /etc/mime.types"
    echo "ErrorLog $logs"
    echo 'LogFormat "%h %l %u %t \"%r\" %>s %b \"%{Referer}i\" \"%{User-Agent}i\"" combined'
    echo "CustomLog $logs combined"
    echo "DocumentRoot \"$root\""
    echo "<Directory \"$root\">"
    echo "  Options FollowSymLinks"
    echo "  AllowOverride All"
    echo "  Require all granted"
    echo "</Directory>"
    echo "DirectoryIndex index.php index.html index.htm"
    echo "<FilesMatch \"\\.php\$\">"
    echo "  SetHandler application/x-httpd-php"
    echo "</FilesMatch>"
    if [ -n "$include" ]; then echo "Include $include"; fi
  } > "$conf"
  exec "$bin" -f "$conf" -DFOREGROUND
}

nginx_fpm() {
  bin=$(command -v nginx || true)
  fpm=$(command -v php-fpm || ls /usr/sbin/php-fpm* 2>/dev/null | head -n 1 || true)
  if [ -z "$bin" ] || [ -z "$fpm" ]; then builtin "nginx with PHP-FPM"; fi
  # A unix socket's path must stay under 108 bytes; a build's directory can be deeper than that.
  sockdir=$(mktemp -d /tmp/shoal-fpm.XXXXXX)
  sock="$sockdir/fpm.sock"
  {
    echo "[global]"
    echo "pid = $run/fpm.pid"
    echo "error_log = $logs"
    echo "daemonize = no"
    echo "[www]"
    if [ -n "$root_user" ]; then echo "user = root"; echo "group = root"; fi
    echo "listen = $sock"
    echo "pm = dynamic"
    echo "pm.max_children = 5"
    echo "pm.start_servers = 2"
    echo "pm.min_spare_servers = 1"
    echo "pm.max_spare_servers = 3"
    echo "clear_env = no"
    echo "catch_workers_output = yes"
    echo "decorate_workers_output = no"
    if [ -n "$fpm_include" ]; then echo "include = $fpm_include"; fi
  } > "$run/fpm.conf"
  {
    echo "daemon off;"
    echo "pid $run/nginx.pid;"
    echo "error_log $logs;"
    echo "worker_processes 1;"
    if [ -n "$root_user" ]; then echo "user root;"; fi
    echo "events { worker_connections 512; }"
    echo "http {"
    echo "  include /etc/nginx/mime.types;"
    echo "  access_log $logs;"
    for t in client_body fastcgi proxy uwsgi scgi; do echo "  ${t}_temp_path $run/$t;"; done
    echo "  server {"
    echo "    listen $port;"
    echo "    root \"$root\";"
    echo "    index index.php index.html index.htm;"
    echo "    location / { try_files \$uri \$uri/ /index.php?\$query_string; }"
    echo "    location ~ \\.php\$ {"
    echo "      try_files \$fastcgi_script_name =404;"
    echo "      include /etc/nginx/fastcgi_params;"
    echo "      fastcgi_param SCRIPT_FILENAME \$document_root\$fastcgi_script_name;"
    echo "      fastcgi_pass unix:$sock;"
    echo "    }"
    if [ -n "$include" ]; then echo "    include $include;"; fi
    echo "  }"
    echo "}"
  } > "$run/nginx.conf"
  # PHP-FPM makes itself a session leader, so a signal to this process group does not reach it: the
  # shell stays, and stops it when nginx ends (nginx gets the group's SIGTERM).
  "$fpm" -F ${root_user:+-R} -y "$run/fpm.conf" &
  fpm_pid=$!
  trap 'kill -TERM "$fpm_pid" 2>/dev/null || true; rm -rf "$sockdir"' EXIT
  trap 'exit 143' TERM
  trap 'exit 130' INT
  status=0
  "$bin" -c "$run/nginx.conf" -p "$run" || status=$?
  exit "$status"
}

case $server in
  apache2) apache ;;
  nginx) nginx_fpm ;;
  *) echo "$me: unknown server $server" >&2; exit 2 ;;
esac
"""
