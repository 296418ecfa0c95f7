# ublkbench: fio 4 KiB random read at QD 1 and 32 on the same QEMU NVMe controller in
# the same guest, first through the kernel nvme driver (/dev/nvme0n1), then through
# homid's ublk export (/dev/ublkb0, homid owning the function through uio). CPU per I/O
# is the whole guest's busy time (fio, homid, kernel) from /proc/stat over the run,
# divided by the I/Os done. Under TCG only the ratios mean anything.
# bench/ublk-run runs it and keeps the console under bench/results/ublk/.
RUNTIME=${UBLK_BENCH_RUNTIME:-10}
fail() { echo "ublkbench suite: FAIL: $*"; [ -n "${hpid:-}" ] && kill -TERM "$hpid"; exit 1; }
. "$(dirname "$0")/lib.sh"
need homid aisio fio
find_nvme

busy() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9}' /proc/stat; }
# run LABEL DEVICE QD: prints "LABEL qd=QD iops=N cpu_us_per_io=X"
run() {
  b0=$(busy)
  out=$(fio --name=r --filename="$2" --rw=randread --bs=4k --ioengine=libaio --iodepth="$3" --direct=1 \
        --time_based --runtime="$RUNTIME" --ramp_time=1 --size=256m --randseed=1 --minimal) || fail "fio on $2"
  b1=$(busy)
  echo "$out" | awk -F';' -v l="$1" -v qd="$3" -v db=$((b1 - b0)) '{
    ios = $6 * 1024 / 4096; iops = $8;
    printf "UBLKBENCH %s qd=%s iops=%d cpu_us_per_io=%.1f\n", l, qd, iops, ios ? db * 10000 / ios : 0 }'
}

[ -b /dev/nvme0n1 ] || fail "/dev/nvme0n1 missing (kernel nvme driver)"
echo "ublkbench: nvme0n1 scheduler: $(cat /sys/block/nvme0n1/queue/scheduler), $(ls /sys/block/nvme0n1/mq | wc -l) hardware queues"
run kernel /dev/nvme0n1 1
run kernel /dev/nvme0n1 32

aisio bind --driver uio "$bdf" || fail "bind uio"
cat > /tmp/homid.toml <<EOF2
[daemon]
socket = "/run/homid/homid.sock"
log_level = "debug"
[[controller]]
name = "qemu"
type = "pci"
address = "$bdf"
io_queues = 4
[[controller.namespace]]
nsid = 1
ublk = true
ublk_id = 0
ublk_queues = 1
ublk_depth = 64
ublk_max_io_kib = 128
[[allow]]
name = "root"
uids = [0]
EOF2
start_homid /run/homid/homid.sock /tmp/homid.log /dev/ublkb0 || fail "homid exited"
echo "ublkbench: ublkb0 scheduler: $(cat /sys/block/ublkb0/queue/scheduler), $(ls /sys/block/ublkb0/mq | wc -l) hardware queues"
run ublk /dev/ublkb0 1
run ublk /dev/ublkb0 32
kill -TERM $hpid; wait $hpid
grep "ublk 0 queue" /tmp/homid.log
echo "ublkbench suite: OK"
