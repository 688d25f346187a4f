#!/usr/bin/env bash
# More load than one machine on plain hosts: one `tlsbench load` segment per host over ssh,
# all starting at one wall-clock time, their JSON fetched with scp and merged here with
# `tlsbench merge` (README "More load than one machine").
#
#   deploy/ssh/run-segments.sh -H gen1,gen2,gen3 -o out/ -- https://server:4433/ \
#       --cacert certs/ca.pem --new-conn -c 512 -d 30s --warmup 5s
#
# Options (before --):
#   -H HOSTS  comma-separated ssh destinations, or @FILE with one per line (# comments). N is
#             their count; host i runs --segment i/N.
#   -o DIR    where the segments' JSON and merged.json go (created) [default: segments-<UTC>].
#   -l SECS   how far ahead the shared --start-at is [default: 10]: longer than ssh takes to
#             reach every host, or a host that starts late is refused by tlsbench (more than
#             1 s past), never run out of step.
# Everything after -- is the `tlsbench load` command line of the whole load (URL and flags);
# --segment, --start-at and --json are added per host. Paths in it (e.g. --cacert) are read
# on each host. TLSBENCH names the program on the hosts and here [default: tlsbench]; the
# hosts' clocks must agree (NTP) to well under the lead. Needs GNU date, ssh and scp.
set -euo pipefail

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
}

hosts_arg=""
out=""
lead=10
while getopts "H:o:l:h" opt; do
    case "$opt" in
    H) hosts_arg="$OPTARG" ;;
    o) out="$OPTARG" ;;
    l) lead="$OPTARG" ;;
    *) usage ;;
    esac
done
shift $((OPTIND - 1))
[[ "${1:-}" == "--" ]] && shift
[[ -n "$hosts_arg" && $# -ge 1 ]] || usage
[[ "$lead" =~ ^[0-9]+$ ]] || { echo "run-segments: -l $lead: not a whole number of seconds" >&2; exit 2; }

hosts=()
if [[ "$hosts_arg" == @* ]]; then
    while IFS= read -r line; do
        line="${line%%#*}"
        line="${line//[[:space:]]/}"
        [[ -n "$line" ]] && hosts+=("$line")
    done <"${hosts_arg#@}"
else
    IFS=',' read -r -a hosts <<<"$hosts_arg"
fi
n=${#hosts[@]}
(( n > 0 )) || { echo "run-segments: -H $hosts_arg names no host" >&2; exit 2; }

tlsbench="${TLSBENCH:-tlsbench}"
out="${out:-segments-$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$out"
start_at="$(date -u -d "+${lead} seconds" +%Y-%m-%dT%H:%M:%SZ)"
echo "run-segments: $n segment(s), start at $start_at, results in $out" >&2

# One remote command line per host, each word quoted for the remote shell.
remote_json() { echo "/tmp/tlsbench-segment-$1-of-$n.json"; }
pids=()
for i in "${!hosts[@]}"; do
    cmd=("$tlsbench" load "$@" --segment "$i/$n" --start-at "$start_at" --json "$(remote_json "$i")")
    # Expanded here on purpose: each word is already quoted (%q) for the remote shell.
    # shellcheck disable=SC2029
    ssh -o BatchMode=yes "${hosts[$i]}" "$(printf '%q ' "${cmd[@]}")" \
        >"$out/segment-$i.log" 2>&1 &
    pids+=("$!")
done

failed=0
for i in "${!hosts[@]}"; do
    if ! wait "${pids[$i]}"; then
        echo "run-segments: segment $i/$n on ${hosts[$i]} failed; see $out/segment-$i.log" >&2
        failed=1
    fi
done
# A failed segment is not merged away: the merged load would be smaller than the one asked.
(( failed == 0 )) || exit 1

files=()
for i in "${!hosts[@]}"; do
    scp -q -o BatchMode=yes "${hosts[$i]}:$(remote_json "$i")" "$out/segment-$i.json"
    files+=("$out/segment-$i.json")
done
"$tlsbench" merge "${files[@]}" -o "$out/merged.json"
echo "run-segments: merged $n segment(s) into $out/merged.json" >&2
