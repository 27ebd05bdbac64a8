#!/usr/bin/env python3
"""Tables and plot of issue 30's benchmark (tests/tests/scsipr_bench.rs).

Reads the "BENCH name value" lines the benchmark writes to target/scsipr-scale-bench.txt (or
the file given), prints the Markdown tables BENCHMARKS.md shows (the floor, lkh-scsipr, the
sg_persist script and mpathpersist per N LUs x P paths, their ratios, the cost of each further
LU) and writes the plot (time against LUs for each tool, log scale) as an SVG.

    python3 tests/bench/scsipr_scale.py [FIGURES] [--svg OUT.svg]

The floor of an operation that sends n commands with dependency depth D on C vCPUs is
T0 + max(D*L, n*s/C) (issue 30): T0 the start of a static binary that does nothing, L one PR IN
at queue depth 1, s the guest CPU time per command, from a straight-line fit of the wall time
of one round of n commands in flight (n = N and N*P, one READ KEYS per path) against n.
quickCheck: one READ FULL STATUS per LU (n = N, D = 1). A takeover or a restore of free disks:
per LU the observation, a REGISTER on each path, the PREEMPT AND ABORT (or RESERVE) and one
look to verify (n = N*(P+3), D = 4). C = 1 (the guest has one vCPU).
"""

import math
import re
import sys
from pathlib import Path

WINDOW_MS = 3000.0  # LifeKeeper's challenge window with FAILFASTTIMER=1: 2 * 1 s + 1 s
C = 1


def load(path):
    v = {}
    for line in Path(path).read_text().splitlines():
        m = re.match(r"BENCH (\S+) (\S+)", line.strip())
        if m:
            try:
                v[m.group(1)] = float(m.group(2))
            except ValueError:
                pass
    return v


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2] if xs else None


def spread(xs):
    xs = sorted(xs)
    return (xs[0], xs[len(xs) // 2], xs[-1]) if xs else None


def fit(points):
    """Least squares y = a + b x."""
    n = len(points)
    if n < 2:
        return None
    sx = sum(p[0] for p in points)
    sy = sum(p[1] for p in points)
    sxx = sum(p[0] ** 2 for p in points)
    sxy = sum(p[0] * p[1] for p in points)
    d = n * sxx - sx * sx
    if d == 0:
        return None
    b = (n * sxy - sx * sy) / d
    return (sy - b * sx) / n, b


def figures(v):
    ns = sorted({int(m.group(1)) for k in v for m in [re.match(r"lkh_quickcheck_n(\d+)_p\d+_median", k)] if m})
    ps = sorted({int(m.group(1)) for k in v for m in [re.match(r"lkh_quickcheck_n\d+_p(\d+)_median", k)] if m})
    t0 = v.get("t0_median")
    out = {"ns": ns, "ps": ps, "t0": t0, "t0_busybox": v.get("t0_busybox_median"), "rows": {}, "floor": {}}
    for p in ps:
        lat = v.get(f"p{p}_lat_median")
        batches = sorted(
            (int(m.group(1)), v[k])
            for k in v
            for m in [re.match(rf"p{p}_batch(\d+)_median$", k)]
            if m
        )
        f = fit(batches)
        s = f[1] if f else None
        cpu = [
            (int(m.group(1)), v[k])
            for k in v
            for m in [re.match(rf"p{p}_batch(\d+)_cpu_mean$", k)]
            if m
        ]
        cpu_per = [c / n for n, c in cpu if n >= 16]
        threads = sorted(
            (int(m.group(1)), v[k])
            for k in v
            for m in [re.match(rf"p{p}_threads(\d+)_median$", k)]
            if m
        )
        out["floor"][p] = {"L": lat, "s": s, "a": f[0] if f else None, "batches": batches,
                           "s_cpu": median(cpu_per), "threads": threads}
        for n in ns:
            row = {}
            row["quickcheck"] = v.get(f"lkh_quickcheck_n{n}_p{p}_median")
            row["quickcheck_spread"] = (v.get(f"lkh_quickcheck_n{n}_p{p}_min"), v.get(f"lkh_quickcheck_n{n}_p{p}_max"))
            free = [v[k] for k in v if re.match(rf"lkh_restore_free_n{n}_p{p}_r\d+_median$", k)]
            ocf = [v[k] for k in v if re.match(rf"lkh_takeover_ocf_n{n}_p{p}_r\d+_median$", k)]
            row["free"] = spread(free)
            row["ocf"] = spread(ocf)
            row["lk"] = v.get(f"lkh_takeover_lk_n{n}_p{p}_median")
            row["sg_quickcheck"] = v.get(f"sg_persist_quickcheck_n{n}_p{p}_median")
            row["sg_takeover"] = v.get(f"sg_persist_takeover_n{n}_p{p}_median")
            row["mp_quickcheck"] = v.get(f"mpathpersist_quickcheck_n{n}_p{p}_median")
            row["mp_takeover"] = v.get(f"mpathpersist_takeover_n{n}_p{p}_median")
            if t0 is not None and lat is not None and s is not None:
                row["floor_quickcheck"] = t0 + max(1 * lat, n * s / C)
                row["floor_takeover"] = t0 + max(4 * lat, n * (p + 3) * s / C)
            out["rows"][(n, p)] = row
    return out


def fmt(x, digits=1):
    if x is None:
        return "—"
    if x >= 10000:
        return f"{x / 1000:.1f} s"
    if x >= 1000:
        return f"{x / 1000:.2f} s"
    return f"{x:.{digits}f}"


def ratio(a, b):
    return f"{a / b:.2f}×" if a is not None and b else "—"


def slope(f, p, key, lo, hi):
    a = f["rows"].get((lo, p), {}).get(key)
    b = f["rows"].get((hi, p), {}).get(key)
    if isinstance(a, tuple):
        a = a[1]
    if isinstance(b, tuple):
        b = b[1]
    if a is None or b is None or hi == lo:
        return None
    return (b - a) / (hi - lo)


def tables(f):
    print(f"T0 (static binary that does nothing): {fmt(f['t0'], 2)} ms (busybox true: {fmt(f['t0_busybox'], 2)} ms)\n")
    print("| P | L (PR IN, depth 1) | s (fit of n in flight) | n in flight, one thread (n: ms) | the same, one thread per command |")
    print("|---|---|---|---|---|")
    for p, fl in f["floor"].items():
        b = ", ".join(f"{n}: {fmt(t)}" for n, t in fl["batches"])
        th = ", ".join(f"{n}: {fmt(t)}" for n, t in fl["threads"]) or "—"
        print(f"| {p} | {fmt(fl['L'], 2)} ms | {fmt(fl['s'], 3)} ms | {b} | {th} |")
    print()
    print("quickCheck (median of the rounds; min–max):\n")
    print("| N × P | floor | lkh-scsipr | ratio to floor | sg_persist script | ratio | mpathpersist | ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for (n, p), r in sorted(f["rows"].items(), key=lambda x: (x[0][1], x[0][0])):
        lo, hi = r["quickcheck_spread"]
        print(
            f"| {n} × {p} | {fmt(r.get('floor_quickcheck'))} | {fmt(r['quickcheck'])} ({fmt(lo)}–{fmt(hi)}) "
            f"| {ratio(r['quickcheck'], r.get('floor_quickcheck'))} | {fmt(r['sg_quickcheck'])} "
            f"| {ratio(r['quickcheck'], r['sg_quickcheck'])} | {fmt(r['mp_quickcheck'])} | {ratio(r['quickcheck'], r['mp_quickcheck'])} |"
        )
    print()
    print("Takeover and restore (median of the rounds; min–max). `OCF` = Pacemaker's start (no "
          "challenge window: the commands alone); `LifeKeeper` = restore from a dead owner, the "
          f"{WINDOW_MS / 1000:.0f} s challenge window included, and without it:\n")
    print("| N × P | floor | restore of free disks | takeover, OCF | ratio to floor | LifeKeeper (− window) | sg_persist script | ratio | mpathpersist | ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for (n, p), r in sorted(f["rows"].items(), key=lambda x: (x[0][1], x[0][0])):
        free = r["free"]
        ocf = r["ocf"]
        o = ocf[1] if ocf else None
        lk = r["lk"]
        print(
            f"| {n} × {p} | {fmt(r.get('floor_takeover'))} "
            f"| {fmt(free[1]) if free else '—'} ({fmt(free[0]) if free else '—'}–{fmt(free[2]) if free else '—'}) "
            f"| {fmt(o)} ({fmt(ocf[0]) if ocf else '—'}–{fmt(ocf[2]) if ocf else '—'}) | {ratio(o, r.get('floor_takeover'))} "
            f"| {fmt(lk)} ({fmt(lk - WINDOW_MS) if lk else '—'}) | {fmt(r['sg_takeover'])} | {ratio(o, r['sg_takeover'])} "
            f"| {fmt(r['mp_takeover'])} | {ratio(o, r['mp_takeover'])} |"
        )
    print()
    ns = f["ns"]
    if len(ns) >= 2:
        lo, hi = ns[-2], ns[-1]
        print(f"Each further LU (from {lo} to {hi} LUs), ms:\n")
        print("| P | floor quickCheck | lkh-scsipr quickCheck | floor takeover | lkh-scsipr takeover (OCF) | restore of free disks |")
        print("|---|---|---|---|---|---|")
        for p in f["ps"]:
            print(
                f"| {p} | {fmt(slope(f, p, 'floor_quickcheck', lo, hi), 2)} | {fmt(slope(f, p, 'quickcheck', lo, hi), 2)} "
                f"| {fmt(slope(f, p, 'floor_takeover', lo, hi), 2)} | {fmt(slope(f, p, 'ocf', lo, hi), 2)} | {fmt(slope(f, p, 'free', lo, hi), 2)} |"
            )


def svg(f, path):
    """Two panels (quickCheck, takeover), time against LUs, log scale, one line per tool."""
    W, H, M = 980, 430, 60
    pw = (W - 3 * M) / 2
    ph = H - 2 * M
    ns = f["ns"]
    if not ns:
        return
    colors = {"floor": "#777777", "lkh-scsipr": "#1f77b4", "sg_persist script": "#d62728", "mpathpersist": "#2ca02c"}
    dashes = {1: "", 2: "6,3", 4: "2,3"}
    panels = [
        ("quickCheck", {"floor": "floor_quickcheck", "lkh-scsipr": "quickcheck", "sg_persist script": "sg_quickcheck", "mpathpersist": "mp_quickcheck"}),
        ("takeover (commands: OCF start)", {"floor": "floor_takeover", "lkh-scsipr": "ocf", "sg_persist script": "sg_takeover", "mpathpersist": "mp_takeover"}),
    ]
    vals = []
    for _, keys in panels:
        for r in f["rows"].values():
            for k in keys.values():
                x = r.get(k)
                x = x[1] if isinstance(x, tuple) else x
                if x:
                    vals.append(x)
    if not vals:
        return
    ylo = 10 ** math.floor(math.log10(min(vals)))
    yhi = 10 ** math.ceil(math.log10(max(vals)))
    xmax = max(ns)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>']
    for i, (title, keys) in enumerate(panels):
        x0 = M + i * (pw + M)
        y0 = M

        def X(n):
            return x0 + pw * n / xmax

        def Y(t):
            return y0 + ph * (1 - (math.log10(t) - math.log10(ylo)) / (math.log10(yhi) - math.log10(ylo)))

        out.append(f'<text x="{x0 + pw / 2}" y="{y0 - 20}" text-anchor="middle" font-size="14">{title}</text>')
        out.append(f'<rect x="{x0}" y="{y0}" width="{pw}" height="{ph}" fill="none" stroke="black"/>')
        d = ylo
        while d <= yhi * 1.0001:
            y = Y(d)
            out.append(f'<line x1="{x0}" y1="{y:.1f}" x2="{x0 + pw}" y2="{y:.1f}" stroke="#dddddd"/>')
            label = f"{d / 1000:g} s" if d >= 1000 else f"{d:g} ms"
            out.append(f'<text x="{x0 - 5}" y="{y + 4:.1f}" text-anchor="end">{label}</text>')
            d *= 10
        for n in ns:
            out.append(f'<text x="{X(n):.1f}" y="{y0 + ph + 16}" text-anchor="middle">{n}</text>')
        out.append(f'<text x="{x0 + pw / 2}" y="{y0 + ph + 34}" text-anchor="middle">LUs (N)</text>')
        for tool, key in keys.items():
            for p in f["ps"]:
                pts = []
                for n in ns:
                    x = f["rows"].get((n, p), {}).get(key)
                    x = x[1] if isinstance(x, tuple) else x
                    if x:
                        pts.append((X(n), Y(x)))
                if len(pts) < 2:
                    continue
                poly = " ".join(f"{a:.1f},{b:.1f}" for a, b in pts)
                dash = f' stroke-dasharray="{dashes.get(p, "1,2")}"' if dashes.get(p, "1,2") else ""
                out.append(f'<polyline points="{poly}" fill="none" stroke="{colors[tool]}" stroke-width="2"{dash}/>')
                for a, b in pts:
                    out.append(f'<circle cx="{a:.1f}" cy="{b:.1f}" r="2.5" fill="{colors[tool]}"/>')
    ly = H - 14
    lx = M
    for tool, c in colors.items():
        out.append(f'<line x1="{lx}" y1="{ly - 4}" x2="{lx + 24}" y2="{ly - 4}" stroke="{c}" stroke-width="2"/>')
        out.append(f'<text x="{lx + 30}" y="{ly}">{tool}</text>')
        lx += 150
    for p, dsh in dashes.items():
        if p in f["ps"]:
            extra = f' stroke-dasharray="{dsh}"' if dsh else ""
            out.append(f'<line x1="{lx}" y1="{ly - 4}" x2="{lx + 24}" y2="{ly - 4}" stroke="black" stroke-width="2"{extra}/>')
            out.append(f'<text x="{lx + 30}" y="{ly}">P = {p}</text>')
            lx += 80
    out.append("</svg>")
    Path(path).write_text("\n".join(out) + "\n")


def main():
    args = sys.argv[1:]
    out_svg = None
    if "--svg" in args:
        i = args.index("--svg")
        out_svg = args[i + 1]
        del args[i : i + 2]
    src = args[0] if args else str(Path(__file__).resolve().parents[2] / "target/scsipr-scale-bench.txt")
    f = figures(load(src))
    tables(f)
    if out_svg:
        svg(f, out_svg)


if __name__ == "__main__":
    main()
