#!/usr/bin/env bash
# pg_anchor.sh SCRATCH DURATION OUT [CLIENTS...]: issue 18's PostgreSQL anchor, run by
# run_bench.sh. A Marten-style event store in PostgreSQL (fsync on, synchronous_commit on, no RPC
# layer), driven by pgbench with the transaction LogContact does: append one event to a task's
# stream with a per-stream version check, and upsert the task's projection, in one transaction.
#
#   streams(id, version)      the stream head; the append bumps it (UPDATE ... RETURNING), and
#                             events' UNIQUE (stream_id, version) refuses a second writer at the
#                             same version, as Marten's mt_streams / mt_events do
#   events(seq_id, id, stream_id, version, type, data jsonb, timestamp)   append-only
#   tasks(id, data jsonb, version, last_modified)   the inline projection (Marten's mt_doc_*)
#
# 1,000 tasks, as outreach-load preloads for log_contact; each transaction picks one at random.
# A throwaway cluster: initdb in SCRATCH/pg (on the bench's own disk), listening on a Unix socket
# there only (no TCP port), stopped and deleted on exit. PostgreSQL refuses to run as root, so as
# root it runs as the "postgres" user the Debian package creates. For each client count (default
# 1 16 64) pgbench runs DURATION seconds and one JSON line is appended to OUT:
#   {"clients":C,"tps":..,"latency_avg_ms":..,"transactions":..,"failed":..}
# pgbench sends the variables as parameters of prepared statements (-M prepared), hence the casts.
# Exit status 3 (and a message) when PostgreSQL is not installed: `make bench-deps` installs it.
set -euo pipefail

SCRATCH=$1
DURATION=$2
OUT=$3
shift 3
CLIENTS=("$@")
[[ ${#CLIENTS[@]} -gt 0 ]] || CLIENTS=(1 16 64)
TASKS=1000

PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [[ -z $PGBIN || ! -x $PGBIN/pgbench || ! -x $PGBIN/initdb ]]; then
  echo "pg_anchor: PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/pgbench):" \
    "run \`make bench-deps\` (as root, or with sudo) to install Debian's postgresql" >&2
  exit 3
fi

PGROOT=$SCRATCH/pg
PGDATA=$PGROOT/data
mkdir -p "$PGROOT"
AS=()
if [[ $(id -u) -eq 0 ]]; then
  if ! id postgres >/dev/null 2>&1; then
    echo "pg_anchor: running as root and there is no \"postgres\" user to run PostgreSQL as" >&2
    exit 3
  fi
  chown postgres: "$PGROOT"
  chmod o+x "$SCRATCH"  # the postgres user passes through the bench's scratch directory
  AS=(runuser -u postgres --)
  if ! "${AS[@]}" test -w "$PGROOT"; then
    echo "pg_anchor: the postgres user cannot reach $PGROOT (a parent directory is closed)" >&2
    exit 3
  fi
fi
pg() { "${AS[@]}" "$@"; }

cleanup() {
  if [[ -f $PGDATA/postmaster.pid ]]; then
    pg "$PGBIN/pg_ctl" -D "$PGDATA" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$PGROOT"
}
trap cleanup EXIT

pg "$PGBIN/initdb" -D "$PGDATA" -U bench --auth=trust -E UTF8 --locale=C.UTF-8 \
  >"$PGROOT/initdb.log" 2>&1 || { cat "$PGROOT/initdb.log" >&2; exit 1; }
pg "$PGBIN/pg_ctl" -D "$PGDATA" -l "$PGROOT/server.log" -w -t 60 start -o \
  "-c listen_addresses='' -c unix_socket_directories='$PGROOT' -c fsync=on \
   -c synchronous_commit=on -c full_page_writes=on -c wal_sync_method=fdatasync \
   -c max_connections=100" >/dev/null || { cat "$PGROOT/server.log" >&2; exit 1; }
PSQL=(pg "$PGBIN/psql" -h "$PGROOT" -U bench -d postgres -v ON_ERROR_STOP=1 -q)

# A task document and a ContactLogged event of about the size outreach stores for them.
"${PSQL[@]}" <<SQL
CREATE TABLE streams (
  id bigint PRIMARY KEY, type text NOT NULL, version bigint NOT NULL,
  created timestamptz NOT NULL DEFAULT now(), updated timestamptz NOT NULL DEFAULT now());
CREATE TABLE events (
  seq_id bigserial PRIMARY KEY, id uuid NOT NULL DEFAULT gen_random_uuid(),
  stream_id bigint NOT NULL REFERENCES streams (id), version bigint NOT NULL,
  type text NOT NULL, data jsonb NOT NULL, timestamp timestamptz NOT NULL DEFAULT now(),
  UNIQUE (stream_id, version));
CREATE TABLE tasks (
  id bigint PRIMARY KEY, data jsonb NOT NULL, version bigint NOT NULL,
  last_modified timestamptz NOT NULL DEFAULT now());
INSERT INTO streams (id, type, version) SELECT g, 'task', 1 FROM generate_series(1, $TASKS) g;
INSERT INTO events (stream_id, version, type, data)
  SELECT g, 1, 'TaskCreated', jsonb_build_object('taskId', 't' || g, 'patientId', 'patient-' || g,
    'kind', 'MANUAL', 'title', 'Schedule annual wellness visit', 'assignee', 'agent-' || g % 16,
    'followUpDate', '2026-12-01', 'actor', 'coordinator-1')
  FROM generate_series(1, $TASKS) g;
INSERT INTO tasks (id, version, data)
  SELECT g, 1, jsonb_build_object('taskId', 't' || g, 'patientId', 'patient-' || g,
    'kind', 'MANUAL', 'title', 'Schedule annual wellness visit', 'assignee', 'agent-' || g % 16,
    'status', 'OPEN', 'followUpDate', '2026-12-01', 'attempts', 0, 'version', 1)
  FROM generate_series(1, $TASKS) g;
VACUUM ANALYZE;
SQL

cat >"$PGROOT/log_contact.sql" <<SQL
\\set task random(1, $TASKS)
BEGIN;
UPDATE streams SET version = version + 1, updated = now()
  WHERE id = :task::bigint RETURNING version \\gset
INSERT INTO events (stream_id, version, type, data)
  VALUES (:task::bigint, :version::bigint, 'ContactLogged',
    jsonb_build_object('taskId', 't' || :task::bigint, 'outcome', 'NO_ANSWER',
      'notes', 'Called the mobile number; will try again.', 'followUpDate', '2026-12-02',
      'actor', 'coordinator-1', 'requestId', 'req-' || :task::bigint || '-' || :version::bigint));
INSERT INTO tasks (id, version, data)
  VALUES (:task::bigint, :version::bigint,
    jsonb_build_object('taskId', 't' || :task::bigint, 'patientId', 'patient-' || :task::bigint,
      'kind', 'MANUAL', 'title', 'Schedule annual wellness visit',
      'assignee', 'agent-' || :task::bigint % 16, 'status', 'IN_PROGRESS',
      'followUpDate', '2026-12-02', 'attempts', :version::bigint - 1,
      'lastOutcome', 'NO_ANSWER', 'version', :version::bigint))
  ON CONFLICT (id) DO UPDATE
  SET data = excluded.data, version = excluded.version, last_modified = now();
END;
SQL
chmod a+r "$PGROOT/log_contact.sql"

for c in "${CLIENTS[@]}"; do
  threads=$(( c < 2 ? 1 : 2 ))
  log=$PGROOT/pgbench-$c.log
  pg "$PGBIN/pgbench" -h "$PGROOT" -U bench -n -M prepared -f "$PGROOT/log_contact.sql" \
    -c "$c" -j "$threads" -T "$DURATION" postgres >"$log" 2>&1 || { cat "$log" >&2; exit 1; }
  awk -v c="$c" '
    /^tps = / { tps = $3 }
    /^latency average = / { lat = $4 }
    /^number of transactions actually processed: / { n = $6 }
    /^number of failed transactions: / { failed = $5 }
    END { printf "{\"clients\":%d,\"tps\":%s,\"latency_avg_ms\":%s,\"transactions\":%s,\"failed\":%s}\n",
          c, tps == "" ? "null" : tps, lat == "" ? "null" : lat, n == "" ? "null" : n,
          failed == "" ? 0 : failed }' "$log" >>"$OUT"
  echo "pg_anchor: $c clients: $(grep -E '^(tps|latency average) = ' "$log" | paste -sd' ')" >&2
done
