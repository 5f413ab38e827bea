# Test services for .ci/run (sourced): a throwaway PostgreSQL and Dask cluster on 127.0.0.1.
# start_postgres exports SANCHARI_TEST_PG_URL, start_dask SANCHARI_TEST_DASK_SCHEDULER; each
# records the PIDs it started, and stop_services (the EXIT trap) stops exactly those.
# Both skip with a message where their programs are missing (the tests then skip or use a
# local cluster of their own).

SERVICE_PIDS=()
PG_PID=
SERVICE_DIR=$(mktemp -d /tmp/sanchari-ci.XXXXXX)
PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

as_postgres() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start_postgres() {
    if [ -z "$PG_BIN" ] || [ ! -x "$PG_BIN/initdb" ]; then
        echo "PostgreSQL is not installed: its store tests will be skipped" >&2
        return 0
    fi
    local port data
    port=$(free_port)
    data="$SERVICE_DIR/pg"
    mkdir -p "$data"
    if [ "$(id -u)" = 0 ]; then chown -R postgres: "$SERVICE_DIR"; fi
    chmod 700 "$SERVICE_DIR"
    as_postgres "$PG_BIN/initdb" -D "$data/data" -A trust -U postgres >"$data/initdb.log"
    as_postgres "$PG_BIN/pg_ctl" -D "$data/data" -l "$data/server.log" -w -t 60 \
        -o "-p $port -k $data -c listen_addresses=127.0.0.1" start >/dev/null
    PG_PID=$(head -n 1 "$data/data/postmaster.pid")
    export SANCHARI_TEST_PG_URL="postgresql://postgres@127.0.0.1:$port/postgres"
    echo "PostgreSQL at $SANCHARI_TEST_PG_URL" >&2
}

wait_for_port() {  # PORT SECONDS
    local deadline=$((SECONDS + $2))
    until python3 -c "import socket; socket.create_connection(('127.0.0.1', $1), 1)" 2>/dev/null; do
        if [ $SECONDS -ge $deadline ]; then return 1; fi
        sleep 0.5
    done
}

start_dask() {
    if ! command -v dask >/dev/null 2>&1; then
        echo "dask is not installed: the Dask tests use a local cluster of their own" >&2
        return 0
    fi
    local port address
    port=$(free_port)
    address="tcp://127.0.0.1:$port"
    # workers import the job runners of the tests (tests.service_fixtures) from this checkout
    export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
    dask scheduler --host 127.0.0.1 --port "$port" --dashboard-address :0 \
        >"$SERVICE_DIR/scheduler.log" 2>&1 &
    SERVICE_PIDS+=("$!")
    wait_for_port "$port" 60 || { cat "$SERVICE_DIR/scheduler.log" >&2; return 1; }
    for name in worker-1 worker-2; do
        OMP_NUM_THREADS=1 dask worker "$address" --name "$name" --nthreads 1 --nworkers 1 --host 127.0.0.1 \
            --dashboard-address :0 --local-directory "$SERVICE_DIR/$name" \
            >"$SERVICE_DIR/$name.log" 2>&1 &
        SERVICE_PIDS+=("$!")
    done
    python3 - "$address" <<'EOF' || { cat "$SERVICE_DIR"/*.log >&2; return 1; }
import sys
from distributed import Client

with Client(sys.argv[1], timeout=60) as client:
    client.wait_for_workers(2, timeout=120)
EOF
    export SANCHARI_TEST_DASK_SCHEDULER="$address"
    echo "Dask scheduler at $address with 2 workers" >&2
}

stop_services() {
    local pid
    # the workers, then the scheduler (SIGTERM: they close cleanly)
    for ((i = ${#SERVICE_PIDS[@]} - 1; i >= 0; i--)); do
        kill -TERM "${SERVICE_PIDS[i]}" 2>/dev/null || true
    done
    # PostgreSQL: SIGINT is its fast shutdown (it ends open sessions)
    if [ -n "$PG_PID" ]; then kill -INT "$PG_PID" 2>/dev/null || true; fi
    for pid in "${SERVICE_PIDS[@]}" $PG_PID; do
        for _ in $(seq 1 60); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.25
        done
        kill -KILL "$pid" 2>/dev/null || true
    done
    rm -rf "$SERVICE_DIR"
}
