// Line charts as inline SVG, drawn here (no library): one or two series against seconds ago.
const NS = 'http://www.w3.org/2000/svg';
const W = 320, H = 120, L = 34, R = 6, T = 8, B = 18;

function el(name, attrs, text) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function fmt(v) { return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toPrecision(2); }

// series: [{name, color, values}]; t: seconds (<= 0).  Nulls are gaps.
export function lineChart(title, t, series, unit = '') {
  const box = document.createElement('figure');
  box.className = 'chart';
  const cap = document.createElement('figcaption');
  cap.className = 'title';
  cap.textContent = title + ': ' + series.map(s => {
    const last = [...s.values].reverse().find(v => v !== null && v !== undefined);
    return `${s.name} ${last === undefined ? '-' : fmt(last) + unit}`;
  }).join(' · ');
  box.append(cap);
  const svg = el('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': cap.textContent });
  const all = series.flatMap(s => s.values).filter(v => v !== null && Number.isFinite(v));
  const ymax = (Math.max(0, ...all) || 1) * 1.1;
  const tmin = Math.min(-60, ...t);
  const x = v => L + (W - L - R) * (v - tmin) / (0 - tmin || 1);
  const y = v => T + (H - T - B) * (1 - v / ymax);
  svg.append(el('line', { x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: '#999' }));
  svg.append(el('line', { x1: L, y1: T, x2: L, y2: H - B, stroke: '#999' }));
  svg.append(el('text', { x: L - 3, y: T + 8, 'text-anchor': 'end', 'font-size': 9, fill: '#555' }, fmt(ymax)));
  svg.append(el('text', { x: L - 3, y: H - B, 'text-anchor': 'end', 'font-size': 9, fill: '#555' }, '0'));
  svg.append(el('text', { x: L, y: H - 4, 'font-size': 9, fill: '#555' }, `${Math.round(tmin)} s`));
  svg.append(el('text', { x: W - R, y: H - 4, 'text-anchor': 'end', 'font-size': 9, fill: '#555' }, 'now'));
  for (const s of series) {
    let d = '', pen = false;
    s.values.forEach((v, i) => {
      if (v === null || !Number.isFinite(v)) { pen = false; return; }
      d += `${pen ? 'L' : 'M'}${x(t[i]).toFixed(1)},${y(v).toFixed(1)}`;
      pen = true;
    });
    if (d) svg.append(el('path', { d, fill: 'none', stroke: s.color, 'stroke-width': 1.5 }));
  }
  box.append(svg);
  return box;
}
