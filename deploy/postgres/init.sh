#!/bin/sh
# Runs once, on an empty data volume (docker-entrypoint-initdb.d): two databases, two roles.
# The rooms role cannot even connect to the auth database (rooms-api never reads auth tables).
# Passwords come from secret files; PSQL may be overridden (scripts/compose-check runs this
# against a local server).
set -eu
PSQL="${PSQL:-psql -v ON_ERROR_STOP=1 --username ${POSTGRES_USER:-postgres} --dbname postgres}"
auth_pw="$(cat "$AUTH_DB_PASSWORD_FILE")"
rooms_pw="$(cat "$ROOMS_DB_PASSWORD_FILE")"
auth_db="${AUTH_DB_NAME:-auth}"
rooms_db="${ROOMS_DB_NAME:-rooms}"
$PSQL <<SQL
CREATE ROLE ${auth_db}_owner LOGIN PASSWORD '${auth_pw}';
CREATE ROLE ${rooms_db}_owner LOGIN PASSWORD '${rooms_pw}';
CREATE DATABASE ${auth_db} OWNER ${auth_db}_owner;
CREATE DATABASE ${rooms_db} OWNER ${rooms_db}_owner;
REVOKE ALL ON DATABASE ${auth_db} FROM PUBLIC;
REVOKE ALL ON DATABASE ${rooms_db} FROM PUBLIC;
SQL
