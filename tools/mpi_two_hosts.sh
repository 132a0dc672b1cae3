#!/usr/bin/env bash
# Two hosts on one machine: network namespaces mqan-h1 and mqan-h2 (each with its own hostname,
# h1 and h2) joined by a veth pair mq0 (10.77.0.1 <-> 10.77.0.2), one rank in each, Open MPI over
# TCP on that link only. mpirun runs on h1 and starts h2's daemon through a launch agent that
# enters h2's namespace (where a cluster would use ssh). Sets up, runs the 2-rank training,
# checks the job and tears everything down (also on failure or Ctrl-C). Needs root (ip netns),
# iproute2, util-linux (unshare), mpirun and a release build.
#   tools/mpi_two_hosts.sh [--steps N] [--preset tiny|small|default] [--batch-tokens B] [--mqan BIN]
set -euo pipefail
cd "$(dirname "$0")/.."
steps=6 preset=default tokens=9000 bin=.build/release/mqan
while [ $# -gt 0 ]; do
  case "$1" in
    --steps) steps=$2; shift 2 ;; --preset) preset=$2; shift 2 ;; --batch-tokens) tokens=$2; shift 2 ;;
    --mqan) bin=$2; shift 2 ;;
    -h|--help) sed -n 2,8p "$0"; exit 0 ;;
    *) echo "error: unknown option $1 (see $0 --help)" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "error: ip netns needs root" >&2; exit 1; }
[ -x "$bin" ] || { echo "error: $bin not found (swift build -c release --product mqan)" >&2; exit 1; }
command -v mpirun >/dev/null || { echo "error: mpirun not found (apt-get install openmpi-bin)" >&2; exit 1; }
bin=$(realpath "$bin")
work=""

teardown() {
  ip netns del mqan-h1 2>/dev/null || true   # deleting a namespace removes its end of the pair
  ip netns del mqan-h2 2>/dev/null || true
  rm -rf /etc/netns/mqan-h1 /etc/netns/mqan-h2
  [ -z "$work" ] || rm -rf "$work"
}
trap teardown EXIT
teardown  # a previous run's leftovers
work=$(mktemp -d /tmp/mqan-two-hosts.XXXXXX)

echo "setting up: namespaces mqan-h1, mqan-h2; veth mq0 10.77.0.1 <-> 10.77.0.2"
ip netns add mqan-h1
ip netns add mqan-h2
ip link add mq0 netns mqan-h1 type veth peer name mq0 netns mqan-h2
ip -n mqan-h1 addr add 10.77.0.1/24 dev mq0
ip -n mqan-h2 addr add 10.77.0.2/24 dev mq0
for ns in mqan-h1 mqan-h2; do ip -n $ns link set lo up; ip -n $ns link set mq0 up; done
# Names for the hosts inside the namespaces (ip netns exec bind-mounts /etc/netns/<ns>/hosts).
for ns in mqan-h1 mqan-h2; do
  mkdir -p /etc/netns/$ns
  printf '127.0.0.1 localhost\n10.77.0.1 h1\n10.77.0.2 h2\n' > /etc/netns/$ns/hosts
done
ip -n mqan-h1 -brief addr show mq0
ip -n mqan-h2 -brief addr show mq0

# The launch agent: `agent HOST COMMAND...` runs COMMAND on HOST, as `ssh HOST COMMAND...` would.
cat > "$work/agent" <<'AGENT'
#!/bin/sh
host=$1; shift
exec ip netns exec "mqan-$host" unshare --uts sh -c "hostname $host; $*"
AGENT
chmod +x "$work/agent"
printf 'h1 slots=1\nh2 slots=1\n' > "$work/hostfile"

args=(train --data "$PWD/Tests/MQANTests/Fixtures/data" --tasks sst,squad,multi30k.en.de --preset "$preset"
      --train-embeddings --threads 1 --batch-tokens "$tokens" --dropout 0 --steps "$steps"
      --val-every 100000 --save-every "$steps" --val-examples 1 --max-output 3 --save "$work/run")
# --bind-to none: both "hosts" are this machine's cores, and each would bind its one rank to its
# first core, the same core for both.
mpi=(mpirun --allow-run-as-root -np 2 --hostfile "$work/hostfile" --map-by node --bind-to none
     --mca plm_rsh_agent "$work/agent"
     --mca btl tcp,self --mca btl_tcp_if_include mq0 --mca oob_tcp_if_include mq0)
echo "running on h1: ${mpi[*]} $bin ${args[*]}"
ip netns exec mqan-h1 unshare --uts sh -c 'hostname h1; exec "$@"' sh "${mpi[@]}" sh -c \
  'echo "rank $OMPI_COMM_WORLD_RANK on $(hostname), addresses $(hostname -I 2>/dev/null || ip -brief addr show mq0)" >&2; exec "$@"' \
  sh "$bin" "${args[@]}"
python3 - "$work/run/log.jsonl" <<'PY'
import json, sys
rows = [r for r in map(json.loads, open(sys.argv[1])) if "loss" in r]
assert rows and all(r.get("ranks") == 2 for r in rows), "log.jsonl: not a 2-rank run"
steady = rows[1:] or rows
print(f"two hosts: {len(rows)} steps, {sum(r['tokens'] for r in steady) / sum(r['step_s'] for r in steady):.0f} tokens/s "
      f"(steps 2..{len(rows)}), step {sum(r['step_s'] for r in steady) / len(steady):.3f} s, of which "
      + (f"the gradient sum over TCP left after the backward pass (overlap on) "
         f"{sum(r['wait_s'] for r in steady) / len(steady):.3f} s"
         if rows[-1].get("overlap") else
         f"waiting {sum(r['wait_s'] for r in steady) / len(steady):.3f} s and the gradient sum over TCP "
         f"{sum(r['exchange_s'] for r in steady) / len(steady):.3f} s")
      + f"; final loss {rows[-1]['loss']:.4f}")
PY
ip -n mqan-h1 -s link show mq0 | awk '/RX:/{getline; rx=$1} /TX:/{getline; tx=$1} END{printf "h1 mq0: %.1f MB received, %.1f MB sent\n", rx/1e6, tx/1e6}'
test -f "$work/run/latest.safetensors" && echo "checkpoint: $work/run/latest.safetensors written by rank 0 (h1)"
echo "tearing down"
