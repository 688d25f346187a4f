#!/usr/bin/env bash
# The generator's CPU per operation against h2load's, on this machine and the same server
# (README, "Generator efficiency against h2load"). A benchmark, not a test: it prints numbers.
#
# The server (`tlsbench server`, one worker) runs on SERVER_CPU and each client on CLIENT_CPU,
# one after the other. Each client's CPU is user + system time of its whole process
# (/usr/bin/time), at two operation counts; their difference over the count difference is the
# marginal CPU per operation, with startup, the first handshakes and aws-lc's one-time seeding
# left out. Both clients negotiate the same suite and group (h2load's OpenSSL 3.0 offers
# neither X25519MLKEM768 nor tlsbench's AES-256 first); tlsbench verifies the chain and h2load
# does not.
#
#   scripts/vs-h2load.sh [ROUNDS]        (default 5)
#
# Environment: TLSBENCH (binary, default target/release/tlsbench), SERVER_CPU (0),
# CLIENT_CPU (1), PORT (9443), CONNS (keep-alive connections, 32). Needs h2load (Debian: nghttp2-client) and GNU time (time).
# Traffic goes to 127.0.0.1 only; every run is bounded by its count.
set -euo pipefail

ROUNDS=${1:-5}
TLSBENCH=${TLSBENCH:-target/release/tlsbench}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
PORT=${PORT:-9443}
CONNS=${CONNS:-32}
SUITE=TLS13_AES_128_GCM_SHA256
GROUP=X25519

for tool in h2load /usr/bin/time taskset; do
    command -v "$tool" > /dev/null || { echo "vs-h2load: $tool not found (h2load: apt-get install nghttp2-client; time: apt-get install time)" >&2; exit 2; }
done
[ -x "$TLSBENCH" ] || { echo "vs-h2load: $TLSBENCH not built (cargo build --release)" >&2; exit 2; }

WORK=$(mktemp -d)
SERVER=
cleanup() {
    [ -n "$SERVER" ] && kill "$SERVER" 2> /dev/null && wait "$SERVER" 2> /dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

"$TLSBENCH" certs --out "$WORK/certs" --key-type ecdsa-p256 > /dev/null
taskset -c "$SERVER_CPU" "$TLSBENCH" server --listen "127.0.0.1:$PORT" --certs-dir "$WORK/certs" \
    --cert-type ecdsa-p256 --threads 1 > "$WORK/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 600); do
    grep -q listening "$WORK/server.log" && break
    kill -0 "$SERVER" 2> /dev/null || { cat "$WORK/server.log" >&2; exit 1; }
    sleep 0.05
done
grep -q listening "$WORK/server.log" || { echo "vs-h2load: the server did not start" >&2; exit 1; }

# CPU seconds (user + system) of one command.
cpu() {
    /usr/bin/time -o "$WORK/time" -f "%U %S" "$@" > "$WORK/out" 2>&1 || { cat "$WORK/out" >&2; exit 1; }
    awk '{ printf "%.3f", $1 + $2 }' "$WORK/time"
}

TB=("$TLSBENCH" load -t 1 --pin-cpus "$CLIENT_CPU" --warmup 0 --cipher-suites "$SUITE" --kx-groups "$GROUP"
    --cacert "$WORK/certs/ecdsa-p256/ca.pem" --connect-to "127.0.0.1:$PORT")
H2=(taskset -c "$CLIENT_CPU" h2load --h1 -t 1 --tls13-ciphers TLS_AES_128_GCM_SHA256 --groups "$GROUP")
URL_H2="https://127.0.0.1:$PORT/"
URL_TB="https://bank32.com/"

# µs per operation between two counts.
marginal() { awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN { printf "%.2f", (b - a) * 1e6 / n }'; }

printf '%-10s %5s %12s %12s %7s\n' operation round h2load_us tlsbench_us ratio
ka=() hs=()
for r in $(seq "$ROUNDS"); do
    # Keep-alive: CONNS connections, one request at a time each.
    h_lo=$(cpu "${H2[@]}" -n 100000 -c "$CONNS" "$URL_H2")
    h_hi=$(cpu "${H2[@]}" -n 400000 -c "$CONNS" "$URL_H2")
    t_lo=$(cpu "${TB[@]}" -n 100000 -c "$CONNS" "$URL_TB")
    t_hi=$(cpu "${TB[@]}" -n 400000 -c "$CONNS" "$URL_TB")
    h=$(marginal "$h_lo" "$h_hi" 300000)
    t=$(marginal "$t_lo" "$t_hi" 300000)
    ratio=$(awk -v t="$t" -v h="$h" 'BEGIN { printf "%.3f", t / h }')
    ka+=("$ratio")
    printf '%-10s %5s %12s %12s %7s\n' keep-alive "$r" "$h" "$t" "$ratio"
    # Full handshakes, one request each: h2load cannot reconnect, so it opens one client per
    # handshake; tlsbench reconnects 32 connections.
    h_lo=$(cpu "${H2[@]}" -n 1000 -c 1000 "$URL_H2")
    h_hi=$(cpu "${H2[@]}" -n 4000 -c 4000 "$URL_H2")
    t_lo=$(cpu "${TB[@]}" --new-conn -n 1000 -c 32 "$URL_TB")
    t_hi=$(cpu "${TB[@]}" --new-conn -n 4000 -c 32 "$URL_TB")
    h=$(marginal "$h_lo" "$h_hi" 3000)
    t=$(marginal "$t_lo" "$t_hi" 3000)
    ratio=$(awk -v t="$t" -v h="$h" 'BEGIN { printf "%.3f", t / h }')
    hs+=("$ratio")
    printf '%-10s %5s %12s %12s %7s\n' handshake "$r" "$h" "$t" "$ratio"
done

median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
echo "median ratio: keep-alive $(median "${ka[@]}") (target <= 0.5), full handshake $(median "${hs[@]}") (target <= 0.3)"
