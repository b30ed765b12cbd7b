#!/bin/sh
# Make sure PostgreSQL server binaries and PostGIS are on this machine (for the local cluster and the tests).
# As root with apt, install them; elsewhere, say what to install.
set -eu
PACKAGES="postgresql-15 postgresql-15-postgis-3"

have_server() { ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1; }
have_postgis() { ls /usr/share/postgresql/*/extension/postgis.control >/dev/null 2>&1; }

if have_server && have_postgis; then
    exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    # apt's output (about 200 lines on a fresh machine) goes to a log, shown only when the install fails.
    mkdir -p .ops
    log=.ops/install-postgres.log
    echo "installing $PACKAGES (log: $log)" >&2
    export DEBIAN_FRONTEND=noninteractive
    if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends --no-upgrade $PACKAGES; } >"$log" 2>&1; then
        cat "$log" >&2
        echo "error: installing $PACKAGES failed (log: $log)" >&2
        exit 1
    fi
    exit 0
fi
echo "error: PostgreSQL server binaries and PostGIS are needed: install $PACKAGES (Debian/Ubuntu)," \
     "or set DB_URL to an existing PostgreSQL + PostGIS database" >&2
exit 1
