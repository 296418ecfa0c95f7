# What the homid suites share (sourced, not a suite): the binaries they need, finding
# QEMU's NVMe function and binding it, and starting homid. The suite defines fail()
# (message, clean-up, exit 1) before sourcing this.
#   . "$(dirname "$0")/lib.sh"

# need BIN...: each on PATH (in the initramfs), else the suite fails naming it.
need() {
  for b in "$@"; do
    command -v "$b" >/dev/null || fail "$b is not in the initramfs (see the header of this script)"
  done
}

# find_nvme [sriov]: $bdf = the first NVMe function (PCI class 010802) on the bus, or
# the first SR-IOV capable one; the suite fails when there is none.
find_nvme() {
  for d in /sys/bus/pci/devices/*; do
    [ "$1" = sriov ] && [ ! -f "$d/sriov_totalvfs" ] && continue
    [ "$(cat "$d/class")" = 0x010802 ] && { bdf=${d##*/}; return 0; }
  done
  fail "no ${1:+SR-IOV capable }NVMe function on the PCI bus"
}

# bind_user BDF VFIO_CONFIG: BDF to uio_pci_generic, or to vfio-pci when the guest runs
# the configuration VFIO_CONFIG; sets $driver (uio or vfio).
bind_user() {
  driver=uio
  [ "$AISIO_TESTBED_CONFIG" = "$2" ] && driver=vfio
  aisio bind --driver $driver "$1" || fail "aisio bind --driver $driver $1"
}

# start_homid SOCKET [LOG [DEVICE]]: homid --config /tmp/homid.toml in the background
# ($hpid), its output appended to LOG (else the console), until SOCKET (and DEVICE)
# exist. Returns 1 when homid exits first (its log printed); fails after 60 s.
start_homid() {
  if [ -n "$2" ]; then
    homid --config /tmp/homid.toml >> "$2" 2>&1 &
  else
    homid --config /tmp/homid.toml &
  fi
  hpid=$!
  i=0
  while [ ! -S "$1" ] || { [ -n "$3" ] && [ ! -b "$3" ]; }; do
    i=$((i + 1))
    kill -0 $hpid 2>/dev/null || { [ -n "$2" ] && cat "$2"; hpid=; return 1; }
    [ $i -gt 300 ] && fail "homid did not create $1${3:+ and $3}"
    sleep 0.2
  done
}
