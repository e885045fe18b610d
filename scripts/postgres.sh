#!/usr/bin/env bash
# Throwaway PostgreSQL cluster for tests and CI (trust auth, 127.0.0.1 only).
#
#   eval "$(scripts/postgres.sh start)"   # exports GUARDSTACK_TEST_PG_URL, GUARDSTACK_TEST_PG_DIR
#   ...run tests...
#   scripts/postgres.sh stop              # stops it and removes its directory
#
# start [DIR]  create a cluster in DIR (default: a new temp dir) on a free port, start it,
#              create database guardstack_test, print `export` lines for the shell.
# stop  [DIR]  stop the cluster in DIR (default $GUARDSTACK_TEST_PG_DIR) and delete DIR.
# pause [DIR] / resume [DIR]   stop / start the server keeping its data (outage tests).
#
# Needs the Debian `postgresql` package (apt-get install -y postgresql). Works as root
# (the server runs as user postgres) or as an ordinary user.
set -euo pipefail

bindir() {
    if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then
        pg_config --bindir
        return
    fi
    local d
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    if [ -n "$d" ] && [ -x "$d/initdb" ]; then
        echo "$d"
        return
    fi
    if command -v initdb >/dev/null 2>&1; then
        dirname "$(command -v initdb)"
        return
    fi
    echo "postgres.sh: PostgreSQL server binaries not found (apt-get install -y postgresql)" >&2
    exit 1
}

# Run a command as the cluster owner: postgres when we are root, else ourselves.
as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

cmd=${1:-}
dir=${2:-${GUARDSTACK_TEST_PG_DIR:-}}
case "$cmd" in
start)
    BIN=$(bindir)
    # A new cluster never reuses $GUARDSTACK_TEST_PG_DIR: that is a running one.
    dir=${2:-}
    if [ -z "$dir" ]; then
        dir=$(mktemp -d /tmp/guardstack-pg.XXXXXX)
    fi
    mkdir -p "$dir"
    chmod 755 "$dir"
    if [ "$(id -u)" = 0 ]; then chown postgres: "$dir"; fi
    port=$(free_port)
    as_owner "$BIN/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; exit 1; }
    # Socket in our dir (not /var/run/postgresql, which needs setup); TCP on 127.0.0.1 only.
    cat >>"$dir/data/postgresql.conf" <<CONF
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 100
CONF
    as_owner "$BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null \
        || { cat "$dir/server.log" >&2; exit 1; }
    as_owner "$BIN/createdb" -h 127.0.0.1 -p "$port" -U postgres guardstack_test
    echo "export GUARDSTACK_TEST_PG_URL=postgresql://postgres@127.0.0.1:$port/guardstack_test"
    echo "export GUARDSTACK_TEST_PG_DIR=$dir"
    ;;
stop)
    [ -n "$dir" ] || { echo "postgres.sh: stop needs DIR or \$GUARDSTACK_TEST_PG_DIR" >&2; exit 2; }
    BIN=$(bindir)
    if [ -f "$dir/data/postmaster.pid" ]; then
        as_owner "$BIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null || true
    fi
    case "$dir" in
    /tmp/*) rm -rf "$dir" ;;
    *) echo "postgres.sh: stopped; not deleting $dir (outside /tmp)" >&2 ;;
    esac
    ;;
pause)
    BIN=$(bindir)
    as_owner "$BIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    ;;
resume)
    BIN=$(bindir)
    as_owner "$BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null
    ;;
*)
    echo "usage: $0 start [DIR] | stop [DIR] | pause [DIR] | resume [DIR]" >&2
    exit 2
    ;;
esac
