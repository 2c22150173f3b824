#!/bin/sh
# First start of the compose PostgreSQL (an empty data volume): one role and one database
# per service, each database owned by its role and closed to the others. The passwords
# come from the container's environment (docker-compose.yml). Runs once: to change a
# password later, ALTER ROLE ... PASSWORD by hand.
set -eu

create() {  # create <role and database name> <password>
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v name="$1" -v password="$2" <<'SQL'
CREATE ROLE :"name" LOGIN PASSWORD :'password';
CREATE DATABASE :"name" OWNER :"name";
REVOKE ALL ON DATABASE :"name" FROM PUBLIC;
SQL
}

create relance_invoice_api "$INVOICE_API_DB_PASSWORD"
create relance_scheduler "$SCHEDULER_DB_PASSWORD"
create relance_notifier "$NOTIFIER_DB_PASSWORD"
create relance_payment_matcher "$PAYMENT_MATCHER_DB_PASSWORD"
