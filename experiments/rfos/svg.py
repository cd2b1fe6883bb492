"""Minimal SVG line/point plots with linear or log axes (no matplotlib on the build machine)."""
import math

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]


def _ticks(lo, hi, log):
    if log:
        a, b = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
        return [10.0 ** k for k in range(a, b + 1)]
    span = hi - lo or 1.0
    step = 10 ** math.floor(math.log10(span / 5))
    for m in (1, 2, 5, 10):
        if span / (step * m) <= 6:
            step *= m
            break
    t = math.ceil(lo / step) * step
    out = []
    while t <= hi + 1e-12:
        out.append(round(t, 10))
        t += step
    return out


def _fmt(v, log):
    if log:
        k = round(math.log10(v))
        return "1" if k == 0 else ("10" if k == 1 else f"1e{k}")
    return f"{v:g}"


def plot(path, series, title, xlabel, ylabel, xlog=False, ylog=False, hlines=(), width=720, height=420,
         ylim=None):
    """series: dicts with x, y (lists), label, style ('line', 'points' or 'both'), color (optional),
    dash (optional).  hlines: (y, label, color)."""
    xs = [x for s in series for x in s["x"]]
    ys = [y for s in series for y in s["y"]] + [h[0] for h in hlines]
    if ylim:
        ylo, yhi = ylim
    else:
        ylo, yhi = min(ys), max(ys)
    xlo, xhi = min(xs), max(xs)
    if xlog:
        xlo, xhi = 10 ** math.floor(math.log10(xlo)), 10 ** math.ceil(math.log10(xhi))
    else:
        pad = (xhi - xlo) * 0.03 or 1
        xlo, xhi = xlo - pad, xhi + pad
    if ylog:
        ylo, yhi = 10 ** math.floor(math.log10(ylo)), 10 ** math.ceil(math.log10(yhi))
    elif not ylim:
        pad = (yhi - ylo) * 0.05 or 1
        ylo, yhi = ylo - pad, yhi + pad
    L, R, T, B = 70, 250, 40, 50
    pw, ph = width - L - R, height - T - B

    def X(v):
        f = (math.log10(v) - math.log10(xlo)) / (math.log10(xhi) - math.log10(xlo)) if xlog else (v - xlo) / (xhi - xlo)
        return L + f * pw

    def Y(v):
        f = (math.log10(v) - math.log10(ylo)) / (math.log10(yhi) - math.log10(ylo)) if ylog else (v - ylo) / (yhi - ylo)
        return T + ph - f * ph

    o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11">',
         f'<rect width="{width}" height="{height}" fill="white"/>',
         f'<text x="{L + pw / 2}" y="20" text-anchor="middle" font-size="13">{title}</text>',
         f'<rect x="{L}" y="{T}" width="{pw}" height="{ph}" fill="none" stroke="black"/>']
    for t in _ticks(xlo, xhi, xlog):
        if xlo <= t <= xhi:
            o.append(f'<line x1="{X(t):.1f}" y1="{T}" x2="{X(t):.1f}" y2="{T + ph}" stroke="#ddd"/>')
            o.append(f'<text x="{X(t):.1f}" y="{T + ph + 15}" text-anchor="middle">{_fmt(t, xlog)}</text>')
    for t in _ticks(ylo, yhi, ylog):
        if ylo <= t <= yhi:
            o.append(f'<line x1="{L}" y1="{Y(t):.1f}" x2="{L + pw}" y2="{Y(t):.1f}" stroke="#ddd"/>')
            o.append(f'<text x="{L - 5}" y="{Y(t) + 4:.1f}" text-anchor="end">{_fmt(t, ylog)}</text>')
    o.append(f'<text x="{L + pw / 2}" y="{height - 10}" text-anchor="middle">{xlabel}</text>')
    o.append(f'<text x="15" y="{T + ph / 2}" text-anchor="middle" transform="rotate(-90 15 {T + ph / 2})">{ylabel}</text>')
    ly = T + 10
    for i, (yv, lab, col) in enumerate(hlines):
        o.append(f'<line x1="{L}" y1="{Y(yv):.1f}" x2="{L + pw}" y2="{Y(yv):.1f}" stroke="{col}" stroke-dasharray="6,4"/>')
        o.append(f'<line x1="{L + pw + 10}" y1="{ly}" x2="{L + pw + 30}" y2="{ly}" stroke="{col}" stroke-dasharray="6,4"/>')
        o.append(f'<text x="{L + pw + 35}" y="{ly + 4}">{lab}</text>')
        ly += 16
    for i, s in enumerate(series):
        col = s.get("color", COLORS[i % len(COLORS)])
        pts = [(X(x), Y(y)) for x, y in zip(s["x"], s["y"]) if (not xlog or x > 0) and (not ylog or y > 0)]
        style = s.get("style", "line")
        dash = f' stroke-dasharray="{s["dash"]}"' if s.get("dash") else ""
        if style in ("line", "both") and len(pts) > 1:
            d = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
            o.append(f'<polyline points="{d}" fill="none" stroke="{col}" stroke-width="1.5"{dash}/>')
        if style in ("points", "both"):
            for x, y in pts:
                o.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{col}" fill-opacity="0.7"/>')
        if s.get("label"):
            if style == "points":
                o.append(f'<circle cx="{L + pw + 20}" cy="{ly}" r="3" fill="{col}"/>')
            else:
                o.append(f'<line x1="{L + pw + 10}" y1="{ly}" x2="{L + pw + 30}" y2="{ly}" stroke="{col}" stroke-width="1.5"{dash}/>')
            o.append(f'<text x="{L + pw + 35}" y="{ly + 4}">{s["label"]}</text>')
            ly += 16
    o.append("</svg>")
    with open(path + ".tmp", "w") as f:
        f.write("\n".join(o))
    import os
    os.replace(path + ".tmp", path)
