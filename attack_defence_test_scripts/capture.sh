#!/usr/bin/env bash
# Capture SecretStroll traffic for a Secret Race Strolling defence.
#
# Run it inside the SecretStroll *client* container, in the folder holding
# client.py, with your defence switched on. For each repetition and each grid
# cell it starts tcpdump, makes one SecretStroll query for that cell, then stops
# tcpdump, leaving one capture per query:
#
#     $OUT_DIR/trace_DD_MM_HHh_grid_<cell>.pcap
#
# DD_MM_HH (day, month, hour) names the repetition: pcap_to_csv.py turns it into
# the `rep` column (DD*10000 + MM*100 + HH). Two repetitions started in the same
# hour would overwrite each other's files, so when a repetition's DD_MM_HH is
# already used in $OUT_DIR the script takes the next free HH (it is only an id).
#
# Usage:
#     bash capture.sh                          # 1 repetition of cells 1..100
#     REPS=5 IFACE=eth0 bash capture.sh
#     FIRST_CELL=1 LAST_CELL=10 bash capture.sh   # a quick trial run
#
# Settings (environment variables, defaults in brackets):
#     REPS           repetitions of the whole grid [1]
#     FIRST_CELL     first cell queried [1]
#     LAST_CELL      last cell queried [100]
#     IFACE          interface tcpdump listens on [eth0]; "any" also works
#     OUT_DIR        folder for the .pcap files [captures]
#     SNAPLEN        bytes kept per packet; only headers are needed [64]
#     FILTER         tcpdump filter; drops bare ACKs, keeps TCP [greater 55 and tcp]
#     CLIENT_CMD     the query; {cell} is replaced by the cell number
#                    [python3 client.py grid {cell} -T restaurant -t]
#     QUERY_TIMEOUT  seconds before a hung query is abandoned [120]
#     SETTLE         seconds given to tcpdump to start and to catch the last
#                    packets after the query [1]
#
# tcpdump needs root (or CAP_NET_RAW), which the client container has.
#
# Next step, on the machine holding the captures:
#     python3 pcap_to_csv.py captures -o defence.csv.zip
# then upload defence.csv.zip on the platform's Defence page.

set -euo pipefail

REPS="${REPS:-1}"
FIRST_CELL="${FIRST_CELL:-1}"
LAST_CELL="${LAST_CELL:-100}"
IFACE="${IFACE:-eth0}"
OUT_DIR="${OUT_DIR:-captures}"
SNAPLEN="${SNAPLEN:-64}"
FILTER="${FILTER:-greater 55 and tcp}"
# Kept apart: the braces of {cell} would end a ${CLIENT_CMD:-...} default early.
default_client_cmd='python3 client.py grid {cell} -T restaurant -t'
CLIENT_CMD="${CLIENT_CMD:-$default_client_cmd}"
QUERY_TIMEOUT="${QUERY_TIMEOUT:-120}"
SETTLE="${SETTLE:-1}"

tcpdump_pid=""

stop_tcpdump() {
    if [[ -n "$tcpdump_pid" ]]; then
        # tcpdump flushes and closes its file on SIGTERM. (Not SIGINT: a
        # non-interactive shell starts background jobs with SIGINT ignored.)
        kill -TERM "$tcpdump_pid" 2>/dev/null || true
        wait "$tcpdump_pid" 2>/dev/null || true
        tcpdump_pid=""
    fi
}
trap 'stop_tcpdump; exit 130' INT TERM

# Print a DD_MM_HH stamp for a new repetition that no capture in OUT_DIR uses yet.
free_stamp() {
    local day_month hour
    day_month="$(date +%d_%m)"
    hour=$((10#$(date +%H)))
    while compgen -G "$OUT_DIR/trace_${day_month}_$(printf %02d "$hour")h_grid_*.pcap" >/dev/null; do
        hour=$((hour + 1))
        if ((hour > 99)); then
            echo "no free repetition id left for today in $OUT_DIR" >&2
            exit 1
        fi
    done
    printf '%s_%02d' "$day_month" "$hour"
}

command -v tcpdump >/dev/null || { echo "tcpdump not found: install it in this container" >&2; exit 1; }
mkdir -p "$OUT_DIR"

for ((rep = 1; rep <= REPS; rep++)); do
    stamp="$(free_stamp)"
    echo "repetition $rep/$REPS (id ${stamp}h): cells $FIRST_CELL..$LAST_CELL"
    for ((cell = FIRST_CELL; cell <= LAST_CELL; cell++)); do
        file="$OUT_DIR/trace_${stamp}h_grid_${cell}.pcap"
        # FILTER is passed as one argument: tcpdump accepts the expression that way.
        tcpdump -i "$IFACE" -s "$SNAPLEN" -w "$file" "$FILTER" 2>/dev/null &
        tcpdump_pid=$!
        sleep "$SETTLE"

        query="${CLIENT_CMD//\{cell\}/$cell}"
        if ! timeout "$QUERY_TIMEOUT" bash -c "$query" >/dev/null; then
            echo "  cell $cell: query failed or timed out (capture kept: check it or delete it)" >&2
        fi

        sleep "$SETTLE"
        stop_tcpdump
        echo "  cell $cell -> $file"
    done
done

echo "done. Next: python3 pcap_to_csv.py $OUT_DIR -o defence.csv.zip, then upload defence.csv.zip"
