#!/usr/bin/env bash
# The generator's CPU per operation against h2load's, on this machine and the same server
# (README, "Generator efficiency against h2load"). A benchmark, not a test: it prints numbers.
#
# The server (`tlsbench server`, one worker) runs on SERVER_CPU and each client on CLIENT_CPU,
# one after the other. Each client's CPU is the user and system time of its whole process
# (/usr/bin/time), at two operation counts; their difference over the count difference is the
# marginal CPU per operation, with startup, the first handshakes and aws-lc's one-time seeding
# left out. Both clients negotiate the same suite and group (h2load's OpenSSL 3.0 offers
# neither X25519MLKEM768 nor tlsbench's AES-256 first); tlsbench verifies the chain and h2load
# does not. The keep-alive pair also runs over plain HTTP (the server's --plain-listen): what
# the loopback stack charges each client with no TLS at all, most of it system time.
#
#   scripts/vs-h2load.sh [ROUNDS]        (default 5)
#
# Environment: TLSBENCH (binary, default target/release/tlsbench), SERVER_CPU (0),
# CLIENT_CPU (1), PORT (9443), PLAIN_PORT (9080), CONNS (keep-alive connections, 32).
# Needs h2load (Debian: nghttp2-client) and GNU time (time).
# Traffic goes to 127.0.0.1 only; every run is bounded by its count.
set -euo pipefail

ROUNDS=${1:-5}
TLSBENCH=${TLSBENCH:-target/release/tlsbench}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
PORT=${PORT:-9443}
PLAIN_PORT=${PLAIN_PORT:-9080}
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
    --cert-type ecdsa-p256 --threads 1 --plain-listen "127.0.0.1:$PLAIN_PORT" > "$WORK/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 600); do
    grep -q listening "$WORK/server.log" && break
    kill -0 "$SERVER" 2> /dev/null || { cat "$WORK/server.log" >&2; exit 1; }
    sleep 0.05
done
grep -q listening "$WORK/server.log" || { echo "vs-h2load: the server did not start" >&2; exit 1; }

# "user system" CPU seconds of one command.
cpu() {
    /usr/bin/time -o "$WORK/time" -f "%U %S" "$@" > "$WORK/out" 2>&1 || { cat "$WORK/out" >&2; exit 1; }
    cat "$WORK/time"
}

TB=("$TLSBENCH" load -t 1 --pin-cpus "$CLIENT_CPU" --warmup 0)
TB_TLS=("${TB[@]}" --cipher-suites "$SUITE" --kx-groups "$GROUP"
    --cacert "$WORK/certs/ecdsa-p256/ca.pem" --connect-to "127.0.0.1:$PORT")
H2=(taskset -c "$CLIENT_CPU" h2load --h1 -t 1 --tls13-ciphers TLS_AES_128_GCM_SHA256 --groups "$GROUP")
URL_H2="https://127.0.0.1:$PORT/"
URL_TB="https://bank32.com/"
URL_PLAIN="http://127.0.0.1:$PLAIN_PORT/"

# Marginal µs per operation between two runs ("user system" each) over N more operations:
# "total user system".
marginal() {
    awk -v lo="$1" -v hi="$2" -v n="$3" 'BEGIN {
        split(lo, a, " "); split(hi, b, " ")
        u = (b[1] - a[1]) * 1e6 / n; s = (b[2] - a[2]) * 1e6 / n
        printf "%.2f %.2f %.2f", u + s, u, s
    }'
}
ratio() { awk -v t="$1" -v h="$2" 'BEGIN { printf "%.3f", t / h }'; }
row() { # operation round h2load-marginal tlsbench-marginal
    local ht hu hs tt tu ts
    read -r ht hu hs <<< "$3"
    read -r tt tu ts <<< "$4"
    printf '%-17s %5s %9s %7s %7s %9s %7s %7s %7s\n' "$1" "$2" "$ht" "$hu" "$hs" "$tt" "$tu" "$ts" "$(ratio "$tt" "$ht")"
}

printf '%-17s %5s %9s %7s %7s %9s %7s %7s %7s\n' operation round h2load_us user sys tlsbench_us user sys ratio
ka=() kp=() floor=() user=() hs=()
for r in $(seq "$ROUNDS"); do
    # Keep-alive: CONNS connections, one request at a time each.
    h=$(marginal "$(cpu "${H2[@]}" -n 100000 -c "$CONNS" "$URL_H2")" \
        "$(cpu "${H2[@]}" -n 400000 -c "$CONNS" "$URL_H2")" 300000)
    t=$(marginal "$(cpu "${TB_TLS[@]}" -n 100000 -c "$CONNS" "$URL_TB")" \
        "$(cpu "${TB_TLS[@]}" -n 400000 -c "$CONNS" "$URL_TB")" 300000)
    row keep-alive "$r" "$h" "$t"
    ka+=("$(ratio "${t%% *}" "${h%% *}")")
    user+=("$(ratio "$(cut -d' ' -f2 <<< "$t")" "$(cut -d' ' -f2 <<< "$h")")")
    # The same over plain HTTP: what the loopback stack charges a client with no TLS at all.
    hp=$(marginal "$(cpu "${H2[@]}" -n 100000 -c "$CONNS" "$URL_PLAIN")" \
        "$(cpu "${H2[@]}" -n 400000 -c "$CONNS" "$URL_PLAIN")" 300000)
    tp=$(marginal "$(cpu "${TB[@]}" -n 100000 -c "$CONNS" "$URL_PLAIN")" \
        "$(cpu "${TB[@]}" -n 400000 -c "$CONNS" "$URL_PLAIN")" 300000)
    row keep-alive-plain "$r" "$hp" "$tp"
    kp+=("$(ratio "${tp%% *}" "${hp%% *}")")
    floor+=("$(ratio "${tp%% *}" "${h%% *}")")
    # Full handshakes, one request each: h2load cannot reconnect, so it opens one client per
    # handshake; tlsbench reconnects 32 connections.
    h=$(marginal "$(cpu "${H2[@]}" -n 1000 -c 1000 "$URL_H2")" \
        "$(cpu "${H2[@]}" -n 4000 -c 4000 "$URL_H2")" 3000)
    t=$(marginal "$(cpu "${TB_TLS[@]}" --new-conn -n 1000 -c 32 "$URL_TB")" \
        "$(cpu "${TB_TLS[@]}" --new-conn -n 4000 -c 32 "$URL_TB")" 3000)
    row handshake "$r" "$h" "$t"
    hs+=("$(ratio "${t%% *}" "${h%% *}")")
done

# median [min–max] of the arguments.
spread() {
    printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END {
        m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        printf "%.3f [%.3f-%.3f]", m, v[1], v[NR]
    }'
}
echo "ratio, median [min-max] of $ROUNDS rounds:"
echo "  keep-alive request:          $(spread "${ka[@]}")  (target <= 0.5)"
echo "  full handshake + request:    $(spread "${hs[@]}")  (target <= 0.3)"
echo "  keep-alive, user time only:  $(spread "${user[@]}")"
echo "  keep-alive over plain HTTP:  $(spread "${kp[@]}")"
echo "  tlsbench over plain HTTP / h2load over TLS: $(spread "${floor[@]}")  (a client with no TLS at all)"
