# tcpbench: 4 KiB random read at QD 1 and 32 over NVMe/TCP to the kernel's target
# (nvmet-tcp on 127.0.0.1, namespace = QEMU's NVMe under the kernel nvme driver), in
# the same guest: first fio (io_uring, O_DIRECT) on the kernel initiator's namespace,
# then `aisio perf run tcp://...` (our initiator, polled). CPU per I/O is the whole
# guest's busy time (initiator, target, kernel) from /proc/stat over the run divided by
# the I/Os done, and the initiator's own CPU per I/O (fio's usr+sys, perf's usr+sys).
# Under TCG only the ratios mean anything. bench/tcp-run runs it.
RUNTIME=${TCP_BENCH_RUNTIME:-8}
nqn=nqn.2026-12.io.aisio:bench
fail() { echo "tcpbench suite: FAIL: $*"; exit 1; }
. "$(dirname "$0")/lib.sh"
need aisio fio
[ -b /dev/nvme0n1 ] || fail "/dev/nvme0n1 missing (kernel nvme driver)"
nvmet_export /dev/nvme0n1 $nqn
kernel_connect $nqn

busy() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9}' /proc/stat; }
# Prints "TCPBENCH LABEL qd=QD iops=N cpu_us_per_io=X initiator_cpu_us_per_io=Y".
kernel() {
  b0=$(busy)
  fio --name=r --filename="$kdev" --rw=randread --bs=4k --ioengine=io_uring --iodepth="$1" --direct=1 \
    --time_based --runtime="$RUNTIME" --ramp_time=1 --size=256m --randseed=1 --eta=never --output-format=json \
    --output=/tmp/fio.json || fail "fio on $kdev"
  b1=$(busy)
  # fio's JSON: the first "io_bytes" and "iops" are the read side's; usr_cpu/sys_cpu
  # are % of one CPU over the job (its seconds: I/Os / IOPS).
  tr -d ' ,' < /tmp/fio.json | awk -F: -v qd="$1" -v db=$((b1 - b0)) '
    { gsub(/"/, "", $1) } !($1 in v) { v[$1] = $2 } END {
      ios = v["io_bytes"] / 4096; s = v["iops"] ? ios / v["iops"] : 0;
      printf "TCPBENCH kernel qd=%s iops=%d cpu_us_per_io=%.1f initiator_cpu_us_per_io=%.1f\n", qd, v["iops"],
        ios ? db * 10000 / ios : 0, ios ? (v["usr_cpu"] + v["sys_cpu"]) / 100 * s * 1e6 / ios : 0 }'
}
ours() {
  b0=$(busy)
  out=$(aisio perf run "tcp://127.0.0.1/$nqn" --rw randread --bs 4k --qd "$1" --runtime "$RUNTIME" --size 256M \
        --seed 1 --terse) || fail "aisio perf run over NVMe/TCP"
  b1=$(busy)
  echo "$out" | tr ' ' '\n' | awk -F= -v qd="$1" -v db=$((b1 - b0)) '
    { v[$1] = $2 } END {
      ios = v["iops"] * v["seconds"];
      printf "TCPBENCH aisio qd=%s iops=%d cpu_us_per_io=%.1f initiator_cpu_us_per_io=%.1f\n", qd, v["iops"],
        ios ? db * 10000 / ios : 0, ios ? (v["usr_cpu"] + v["sys_cpu"]) / 100 * v["seconds"] * 1e6 / ios : 0 }'
}
kernel 1
kernel 32
# The kernel initiator lets go before ours runs (the same namespace, no cache between).
for c in /sys/class/nvme/nvme*; do
  [ "$(cat $c/transport 2>/dev/null)" = tcp ] && echo 1 > $c/delete_controller
done
ours 1
ours 32
echo "tcpbench suite: OK"
