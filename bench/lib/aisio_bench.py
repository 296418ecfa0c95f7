"""Helpers shared by the bench/ scripts: find the aisio binary, run `aisio perf run
--json`, record the machine, the commit and the exact commands, write CSV and plots."""
import csv
import datetime
import json
import os
import platform
import shlex
import shutil
import socket
import subprocess
import sys
import time

def ensure_matplotlib():
    """Re-executes the script with the system python3 when this interpreter (e.g. a
    pyenv one) has no matplotlib (Debian: python3-matplotlib)."""
    try:
        import matplotlib  # noqa: F401
        return
    except ImportError:
        pass
    for py in ("/usr/bin/python3", "/bin/python3"):
        if os.path.exists(py) and os.path.realpath(py) != os.path.realpath(sys.executable):
            if subprocess.run([py, "-c", "import matplotlib"], capture_output=True).returncode == 0:
                os.execv(py, [py, *sys.argv])
    return False


def have_matplotlib():
    try:
        import matplotlib  # noqa: F401
        return True
    except ImportError:
        return False


ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RESULTS = os.path.join(ROOT, "bench", "results")


def find_aisio(explicit=None):
    """The aisio binary: --aisio, $AISIO, then the usual build directories."""
    cands = [explicit, os.environ.get("AISIO")]
    cands += [os.path.join(ROOT, d, "src", "tools", "aisio")
              for d in ("build-perf", "build", "build-release", "build-static")]
    for c in cands:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return os.path.abspath(c)
    sys.exit("bench: no aisio binary found; build it (cmake -S . -B build-perf -G Ninja "
             "-DCMAKE_BUILD_TYPE=Release && ninja -j2 -C build-perf aisio) or pass --aisio PATH")


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_describe():
    try:
        return subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty", "--tags"],
                              capture_output=True, text=True, check=True).stdout.strip()
    except Exception:
        return "unknown"


def load_average():
    try:
        return os.getloadavg()
    except OSError:
        return (0, 0, 0)


class Recorder:
    """Collects the commands run and the context into <results>/<name>/run-info.md."""

    default_notes = []  # added to every recorder's notes

    def __init__(self, name, title, outdir=None):
        self.name = name
        self.title = title
        self.dir = outdir or os.path.join(RESULTS, name)
        os.makedirs(self.dir, exist_ok=True)
        self.raw = os.path.join(self.dir, "raw")
        os.makedirs(self.raw, exist_ok=True)
        self.commands = []
        self.started = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
        self.load_before = load_average()
        self.notes = list(Recorder.default_notes)
        self.binary_commit = None

    def command(self, argv):
        self.commands.append(" ".join(shlex.quote(a) for a in argv))

    def note(self, text):
        self.notes.append(text)

    def write_info(self, extra=None):
        with open(os.path.join(self.dir, "run-info.md"), "w") as f:
            f.write(f"# {self.title}\n\n")
            f.write(f"- started: {self.started}\n")
            f.write(f"- finished: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}\n")
            f.write(f"- host: {socket.gethostname()}\n")
            f.write(f"- CPU: {cpu_model()}, {os.cpu_count()} online CPUs\n")
            f.write(f"- kernel: {platform.system()} {platform.release()}\n")
            f.write(f"- load average before: {' '.join(f'{x:.2f}' for x in self.load_before)}; "
                    f"after: {' '.join(f'{x:.2f}' for x in load_average())}\n")
            f.write(f"- source tree: {git_describe()}\n")
            if self.binary_commit:
                f.write(f"- aisio binary built from: {self.binary_commit}\n")
            f.write(f"- script: {' '.join(shlex.quote(a) for a in sys.argv)}\n")
            for n in self.notes:
                f.write(f"- note: {n}\n")
            if extra:
                f.write("\n" + extra.rstrip() + "\n")
            f.write("\n## Commands\n\n```\n")
            for c in self.commands:
                f.write(c + "\n")
            f.write("```\n")


def perf_run(rec, aisio, args, tag, timeout=120, env=None):
    """Runs `aisio perf run ARGS --json`, records the command, stores the JSON under
    raw/TAG.json and returns it parsed. env: extra environment variables."""
    out = os.path.join(rec.raw, f"{tag}.json")
    argv = [aisio, "perf", "run", *args, "--json", "--no-progress", "--json-file", out]
    rec.command([f"{k}={v}" for k, v in (env or {}).items()] + argv)
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=dict(os.environ, **(env or {})))
    if p.returncode != 0:
        sys.stderr.write(p.stdout[-2000:] + p.stderr[-2000:])
        raise RuntimeError(f"aisio perf run failed ({p.returncode}): {' '.join(argv)}")
    j = json.loads(p.stdout)
    rec.binary_commit = j.get("commit")
    return j


def summary(j):
    """Row values from a perf JSON report."""
    t = j["total"]
    jobs = j["jobs"]
    rd, wr = t["read"], t["write"]
    secs = max(1e-9, sum(x["job_runtime"] for x in jobs) / max(1, len(jobs)) / 1000)
    usr = sum(x["usr_cpu"] for x in jobs)
    sys_ = sum(x["sys_cpu"] for x in jobs)
    lat = rd["lat_ns"] if rd["total_ios"] else wr["lat_ns"]
    return {
        "iops": rd["iops"] + wr["iops"],
        "mib_s": rd["bw_mib"] + wr["bw_mib"],
        "lat_mean_us": lat["mean"] / 1e3,
        "lat_p50_us": lat["percentile"]["50.000000"] / 1e3,
        "lat_p99_us": lat["percentile"]["99.000000"] / 1e3,
        "lat_p999_us": lat["percentile"]["99.900000"] / 1e3,
        "usr_cpu_pct": usr,
        "sys_cpu_pct": sys_,
        "seconds": secs,
        "errors": t["errors"],
    }


def write_csv(path, rows, fields):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})


def plot(path, rows, x, ys, xlabel, ylabel, title, logx=False, y2=None, y2label=None, subtitle=None,
         reference=None):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    xs = [r[x] for r in rows]
    for key, label in ys:
        if key.startswith("cap"):
            ax.plot(xs, [r[key] for r in rows], linestyle="--", color="gray", label=label)
        else:
            ax.plot(xs, [r[key] for r in rows], marker="o", label=label)
    for ref in reference or []:
        ax.plot([p[0] for p in ref["points"]], [p[1] for p in ref["points"]], marker="x", linestyle=":",
                color="tab:green", label=ref["label"])
    if logx:
        ax.set_xscale("log", base=2)
        ax.set_xticks(xs)
        ax.set_xticklabels([str(v) for v in xs])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    ax.set_ylim(bottom=0)
    handles, labels = ax.get_legend_handles_labels()
    if y2:
        ax2 = ax.twinx()
        key, label = y2
        ax2.plot(xs, [r[key] for r in rows], marker="s", color="tab:red", linestyle="--", label=label)
        ax2.set_ylabel(y2label or label)
        ax2.set_ylim(bottom=0)
        h2, l2 = ax2.get_legend_handles_labels()
        handles += h2
        labels += l2
    ax.legend(handles, labels, loc="center right" if y2 else "best", fontsize=8)
    ax.set_title(title, fontsize=10)
    if subtitle:
        fig.text(0.5, 0.005, subtitle, ha="center", fontsize=7, color="gray")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path)
    plt.close(fig)


def millions(v):
    return v / 1e6


def wait_for_socket(path, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        if os.path.exists(path):
            return True
        time.sleep(0.05)
    return False


def which(name):
    return shutil.which(name)
