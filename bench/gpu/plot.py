#!/usr/bin/python3
"""Plots of the GPU sweeps (bench/gpu/device-run) from their CSVs.

    bench/gpu/plot.py bench/results/gpu-h200      # writes *.png beside the CSVs

Uses the system Python's matplotlib (Debian: python3-matplotlib).
"""
import csv
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

SIZES = [512, 1024, 2048, 4096, 8192, 16384, 32768, 65536]


def load(path):
    # Rows marked failed (device-run keeps them in the CSV) have no measures to plot:
    # say which, so a gap in a curve is explained. CSVs from before the status column
    # have only measured rows.
    with open(path) as f:
        rows = [dict(r) for r in csv.DictReader(f)]
    failed = [r for r in rows if r.get("status", "ok") != "ok"]
    for r in failed:
        print(f"{os.path.basename(path)}: not plotted: " + ",".join(f"{k}={v}" for k, v in r.items() if v))
    return [r for r in rows if r.get("status", "ok") == "ok"]


def label_size(b):
    return f"{b} B" if b < 1024 else f"{b // 1024} KiB"


def device_name(d):
    try:
        for line in open(os.path.join(d, "machine.txt")):
            if line.startswith("NVIDIA") or ", 5" in line and "NVIDIA" in line:
                return line.split(",")[0].strip()
    except OSError:
        pass
    return "GPU"


def iosize(d, name, title, ceiling_gbs, gpu):
    p = os.path.join(d, name + ".csv")
    if not os.path.exists(p):
        return
    rows = load(p)
    fig, ax = plt.subplots(1, 2, figsize=(13, 5))
    for bs in SIZES:
        r = sorted((x for x in rows if int(x["bs"]) == bs), key=lambda x: int(x["qd"]))
        if not r:
            continue
        qd = [int(x["qd"]) for x in r]
        ax[0].plot(qd, [float(x["gb_per_s"]) for x in r], marker="o", label=label_size(bs))
        ax[1].plot(qd, [float(x["iops"]) / 1e6 for x in r], marker="o", label=label_size(bs))
    ax[0].axhline(ceiling_gbs, color="gray", ls="--", lw=1)
    ax[0].text(1, ceiling_gbs * 1.02, f"model ceiling {ceiling_gbs:g} GB/s", color="gray", fontsize=8)
    ax[1].axhline(61.76, color="gray", ls="--", lw=1)
    ax[1].text(1, 61.76 * 1.02, "16 x 3.86 M IOPS", color="gray", fontsize=8)
    for a in ax:
        a.set_xscale("log", base=2)
        a.set_xlabel("queue depth = CUDA threads per queue (16 queues, 1 per controller)")
        a.grid(True, alpha=0.3)
    ax[0].set_ylabel("GB/s (payload)")
    ax[1].set_ylabel("M IOPS")
    ax[0].legend(title="I/O size", fontsize=8)
    fig.suptitle(f"{title} - device-initiated reads, {gpu}")
    fig.tight_layout()
    fig.savefig(os.path.join(d, name + ".png"), dpi=110)
    plt.close(fig)


def qdepth(d, gpu):
    p = os.path.join(d, "qdepth.csv")
    if not os.path.exists(p):
        return
    rows = load(p)
    fig, ax = plt.subplots(figsize=(7, 5))
    for qpd in (1, 2, 4):
        r = sorted((x for x in rows if int(x["queues"]) == 16 * qpd), key=lambda x: int(x["threads"]))
        ax.plot([int(x["threads"]) for x in r], [float(x["iops"]) / 1e6 for x in r], marker="o",
                label=f"{qpd} queue(s) per device")
    ax.axhline(61.76, color="gray", ls="--", lw=1)
    ax.text(256, 62.5, "roofline 16 x 3.86 M IOPS", color="gray", fontsize=8)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("CUDA threads (queues x QD)")
    ax.set_ylabel("M IOPS (512 B random reads)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"Queue depth and queue count, 16 software controllers (PM1753 model), {gpu}", fontsize=9)
    fig.tight_layout()
    fig.savefig(os.path.join(d, "qdepth.png"), dpi=110)
    plt.close(fig)


def ceiling(d, gpu):
    p = os.path.join(d, "ceiling.csv")
    if not os.path.exists(p):
        return
    rows = load(p)
    fig, ax = plt.subplots(figsize=(8, 5.5))
    for ctl, style in (("null-gpu", "-"), ("null-host", "--")):
        for qd in sorted({int(x["qd"]) for x in rows if x["controller"] == ctl}):
            r = sorted((x for x in rows if x["controller"] == ctl and int(x["qd"]) == qd), key=lambda x: int(x["threads"]))
            what = "GPU-resident null controller" if ctl == "null-gpu" else "host-thread null controllers (16 max)"
            ax.plot([int(x["threads"]) for x in r], [float(x["iops"]) / 1e6 for x in r], style, marker="o",
                    label=f"{what}, {qd} threads/queue")
    ax.axhline(100, color="red", ls=":", lw=1)
    ax.text(40, 110, "target 100 M commands/s", color="red", fontsize=8)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("CUDA threads (queues x threads per queue)")
    ax.set_ylabel("M commands/s")
    ax.grid(True, alpha=0.3, which="both")
    ax.legend(fontsize=7)
    ax.set_title(f"Device library ceiling: commands/s vs threads, {gpu}", fontsize=10)
    fig.tight_layout()
    fig.savefig(os.path.join(d, "ceiling.png"), dpi=110)
    plt.close(fig)


def data(d, gpu):
    p = os.path.join(d, "data.csv")
    if not os.path.exists(p):
        return
    rows = load(p)
    fig, ax = plt.subplots(figsize=(7, 5))
    for qd in sorted({int(x["qd"]) for x in rows}):
        r = sorted((x for x in rows if int(x["qd"]) == qd), key=lambda x: int(x["bs"]))
        ax.plot([int(x["bs"]) for x in r], [float(x["gb_per_s"]) for x in r], marker="o", label=f"QD {qd}")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("I/O size (bytes)")
    ax.set_ylabel("GB/s into GPU memory")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"Bytes moved: RAM-backed software controllers, CUDA copies per command, {gpu}", fontsize=9)
    fig.tight_layout()
    fig.savefig(os.path.join(d, "data.png"), dpi=110)
    plt.close(fig)


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else "bench/results/gpu-h200"
    gpu = device_name(d)
    iosize(d, "iosize", "I/O size x QD, 16 software controllers, PM1753 model (3.86 M IOPS, 14.5 GB/s each)", 232, gpu)
    iosize(d, "iosize-link", "I/O size x QD, PM1753 model with the paper's 45 GB/s GPU link shared (2.83 GB/s each)",
           45.2, gpu)
    qdepth(d, gpu)
    ceiling(d, gpu)
    data(d, gpu)
    print("plots written to", d)


if __name__ == "__main__":
    main()
