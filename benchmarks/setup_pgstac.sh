#!/usr/bin/env bash
# A venv of its own for the reference STAC API server (stac-fastapi-pgstac + pypgstac): it pins a
# stac-fastapi release newer than the one stac-fastapi-geoparquet (our `serve`) accepts, so it cannot
# share the project's environment. PostgreSQL + PostGIS come from Debian's packages.
#   bash benchmarks/setup_pgstac.sh [VENV]   (default ~/.cache/stac-mmtp/venv-pgstac)
# Idempotent: a venv that already holds these pins is kept (CI runs this on every run).
set -euo pipefail
venv=${1:-${XDG_CACHE_HOME:-$HOME/.cache}/stac-mmtp/venv-pgstac}
# pypgstac's version is the database schema's: the same pin as the test extra's (pyproject.toml)
pins=("stac-fastapi-pgstac[server]==7.2.0" "pypgstac[psycopg]==0.10.0")
if ! ls /usr/lib/postgresql/*/lib/postgis-3.so >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -q
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql postgresql-15-postgis-3
fi
stamp="$venv/.stac-mmtp-pins"
if [ "$(cat "$stamp" 2>/dev/null)" != "${pins[*]}" ]; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "${pins[@]}"
  echo "${pins[*]}" > "$stamp"
fi
"$venv/bin/python" -c 'import stac_fastapi.pgstac, pypgstac; print("pgstac venv ready:", pypgstac.__version__)'
