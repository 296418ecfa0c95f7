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

# nvmet_export DEVICE NQN: the kernel's NVMe/TCP target serves DEVICE as namespace 1 of
# subsystem NQN on 127.0.0.1:4420 (configfs; any host may connect).
nvmet_export() {
  cfs=/sys/kernel/config/nvmet
  ip link set lo up
  grep -q ' /sys/kernel/config ' /proc/mounts || mount -t configfs none /sys/kernel/config
  [ -d $cfs ] || fail "no $cfs: nvmet not loaded"
  mkdir $cfs/subsystems/$2
  echo 1 > $cfs/subsystems/$2/attr_allow_any_host
  mkdir $cfs/subsystems/$2/namespaces/1
  echo -n "$1" > $cfs/subsystems/$2/namespaces/1/device_path
  echo 1 > $cfs/subsystems/$2/namespaces/1/enable
  mkdir $cfs/ports/1
  echo tcp > $cfs/ports/1/addr_trtype
  echo ipv4 > $cfs/ports/1/addr_adrfam
  echo 127.0.0.1 > $cfs/ports/1/addr_traddr
  echo 4420 > $cfs/ports/1/addr_trsvcid
  ln -s $cfs/subsystems/$2 $cfs/ports/1/subsystems/$2
  # One host identity for both initiators (the kernel refuses one hostid under two NQNs).
  mkdir -p /etc/nvme
  echo nqn.2014-08.org.nvmexpress:uuid:5e1f0a6b-1c2d-4e3f-8a9b-0c1d2e3f4a5b > /etc/nvme/hostnqn
  echo 5e1f0a6b-1c2d-4e3f-8a9b-0c1d2e3f4a5b > /etc/nvme/hostid
  echo "tcp: kernel target on 127.0.0.1:4420, $2 -> $1"
}

# kernel_connect NQN: the kernel's NVMe/TCP initiator connects to NQN on 127.0.0.1:4420;
# $kdev = its namespace's block device.
kernel_connect() {
  echo "transport=tcp,traddr=127.0.0.1,trsvcid=4420,nqn=$1,hostnqn=$(cat /etc/nvme/hostnqn),hostid=$(cat /etc/nvme/hostid)" \
    > /dev/nvme-fabrics
  kdev=
  for i in $(seq 1 40); do
    for c in /sys/class/nvme/nvme*; do
      [ "$(cat $c/transport 2>/dev/null)" = tcp ] || continue
      for b in /dev/$(basename $c)n1 /dev/$(basename $c)c*n1; do [ -b "$b" ] && kdev=$b; done
    done
    [ -n "$kdev" ] && break
    sleep 0.25
  done
  [ -n "$kdev" ] || fail "the kernel initiator's namespace did not appear"
  echo "tcp: kernel initiator connected: $kdev"
}
