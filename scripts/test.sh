#!/usr/bin/env bash
# The test suite. PostgreSQL-backed tests use SHIPNAV_TEST_PG_URL
# (default postgresql+psycopg2://postgres@127.0.0.1:5432/test); they are skipped when it is not
# reachable, unless SHIPNAV_REQUIRE_POSTGRES=1 (as in CI), which makes them fail instead.
source "$(dirname "$0")/bootstrap.sh"
# The static checks first (seconds): style, the layer contracts, the types.
ruff check --quiet . && ruff format --check --quiet .
if ! contracts=$(lint-imports --no-cache 2>&1); then echo "$contracts"; exit 1; fi
mypy
exec python -m pytest -q -rs "$@"
