# The in-guest suite: the aisio CLI (devices, bind) on the testbed's functions, then the
# GoogleTest binary tests/guest/guest_tests (filtered by aisio.filter if given).
rc=0
fail() { echo "cli check FAILED: $*"; rc=1; }

echo "--- aisio devices"
aisio devices || fail "aisio devices"
aisio devices --json > /tmp/devices.json || fail "aisio devices --json"
grep -q '"vendor": "1b36"' /tmp/devices.json || fail "no 1b36 function in --json"
bdf=$(sed -n 's/.*"bdf": "\(0000:01:00.0\)".*/\1/p' /tmp/devices.json | head -1)
[ "$bdf" = 0000:01:00.0 ] || fail "0000:01:00.0 not listed"
if [ -z "$AISIO_TESTBED_FILTER" ]; then
  user=uio; [ -e /sys/bus/pci/devices/$bdf/iommu_group ] && user=vfio
  for d in $user nvme; do
    aisio bind --driver $d $bdf || fail "aisio bind --driver $d"
  done
  drv=$(basename "$(readlink /sys/bus/pci/devices/$bdf/driver)")
  [ "$drv" = nvme ] || fail "after binding back: driver $drv"
  aisio bind --driver bogus $bdf 2>/dev/null && fail "bind accepted a bogus driver"
  aisio devices
fi

echo "--- guest_tests"
args=
[ -n "$AISIO_TESTBED_FILTER" ] && args="--gtest_filter=$AISIO_TESTBED_FILTER"
guest_tests --gtest_color=no $args || rc=1
if [ $rc != 0 ]; then echo "--- dmesg (tail) ---"; dmesg | tail -40; fi
exit $rc
