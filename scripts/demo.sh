#!/usr/bin/env bash
# The embedded default: sandbox ShipStation + NAV, a local SQLite Dagster instance, one full sync.
source "$(dirname "$0")/bootstrap.sh"
exec shipnav demo "$@"
