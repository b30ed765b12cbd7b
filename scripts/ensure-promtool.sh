#!/bin/sh
# Make sure promtool (Debian's prometheus package) is on this machine: tests/test_alert_rules.py runs the
# alerting rules through `promtool test rules`. As root with apt, install it; elsewhere, say what to install
# (those tests then say they were skipped, and why).
set -eu
command -v promtool >/dev/null 2>&1 && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    mkdir -p .ops
    log=.ops/install-promtool.log
    echo "installing prometheus, for promtool (log: $log)" >&2
    export DEBIAN_FRONTEND=noninteractive
    if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends --no-upgrade prometheus; } >"$log" 2>&1; then
        cat "$log" >&2
        echo "error: installing prometheus (promtool) failed (log: $log)" >&2
        exit 1
    fi
    exit 0
fi
echo "warning: promtool is missing (Debian: apt-get install prometheus): the alert rule tests will be skipped" >&2
