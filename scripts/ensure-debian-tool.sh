#!/bin/sh
# Make sure a tool from a Debian package is on this machine, for the tests that run it:
#   sh scripts/ensure-debian-tool.sh COMMAND PACKAGE... -- WHAT-IT-IS-FOR
# promtool (package prometheus) runs the alerting rules in tests/test_alert_rules.py; chromium and
# chromedriver load every page of the documentation site in tests/tools/test_site_browser.py. As root with
# apt, install the packages; elsewhere, say what to install (those tests then say they were skipped, and why).
set -eu
command=$1; shift
packages=""
while [ $# -gt 0 ] && [ "$1" != "--" ]; do packages="$packages $1"; shift; done
[ $# -gt 0 ] && shift
purpose="$*"
command -v "$command" >/dev/null 2>&1 && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    mkdir -p .ops
    log=.ops/install-$command.log
    echo "installing$packages, for $command (log: $log)" >&2
    export DEBIAN_FRONTEND=noninteractive
    # shellcheck disable=SC2086
    if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends --no-upgrade $packages; } >"$log" 2>&1; then
        cat "$log" >&2
        echo "error: installing$packages ($command) failed (log: $log)" >&2
        exit 1
    fi
    exit 0
fi
echo "warning: $command is missing (Debian: apt-get install$packages): $purpose will be skipped" >&2
