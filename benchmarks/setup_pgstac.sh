#!/usr/bin/env bash
# A venv of its own for the reference STAC API server (stac-fastapi-pgstac + pypgstac): it pins a
# stac-fastapi release newer than the one stac-fastapi-geoparquet (our `serve`) accepts, so it cannot
# share the project's environment. PostgreSQL + PostGIS come from Debian's packages.
#   bash benchmarks/setup_pgstac.sh [VENV]   (default ~/.cache/stac-mmtp/venv-pgstac)
set -euo pipefail
venv=${1:-${XDG_CACHE_HOME:-$HOME/.cache}/stac-mmtp/venv-pgstac}
if ! ls /usr/lib/postgresql/*/lib/postgis-3.so >/dev/null 2>&1; then
  apt-get update -q && apt-get install -y -q postgresql postgresql-15-postgis-3
fi
python3 -m venv "$venv"
"$venv/bin/pip" install -q 'stac-fastapi-pgstac[server]' 'pypgstac[psycopg]'
"$venv/bin/python" -c 'import stac_fastapi.pgstac, pypgstac; print("pgstac venv ready:", pypgstac.__version__)'
