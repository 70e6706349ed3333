/**
 * The plot of BENCHMARKS.md, drawn as plain SVG: delivered throughput (top) and
 * request → arrival latency p50/p99 on a log scale (bottom) against the offered load.
 */

/** One open-loop point. */
export interface PlotPoint {
  offered: number;
  throughput: number;
  p50: number;
  p99: number;
}

const W = 680;
const PANEL_H = 230;
const M = { left: 70, right: 150, top: 34, gap: 70 };
const PLOT_W = W - M.left - M.right;

/** A round step giving about `count` ticks over [0, max]. */
function step(max: number, count: number): number {
  const raw = max / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  return ([1, 2, 2.5, 5, 10].find((f) => f * mag >= raw) ?? 10) * mag;
}

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");
const fmt = (v: number) => (v >= 1000 ? `${+(v / 1000).toFixed(1)}k` : `${+v.toFixed(1)}`);

/** Renders the SVG for `points`, with the server ceiling and the latency target drawn in. */
export function renderPlot(
  points: PlotPoint[],
  /** The minimal XMPP client at the same rates: what the server alone does. */
  server: PlotPoint[],
  ceiling: number,
  targetMs: number,
  title: string,
): string {
  const all = [...points, ...server];
  const xMax = Math.max(...all.map((p) => p.offered), ceiling) * 1.08;
  const yMax = Math.max(...all.map((p) => Math.max(p.throughput, p.offered)), ceiling) * 1.1;
  const x = (v: number) => M.left + (v / xMax) * PLOT_W;
  const top = M.top;
  const bottom = M.top + PANEL_H + M.gap;
  const y1 = (v: number) => top + PANEL_H - (v / yMax) * PANEL_H;
  const lat = all.flatMap((p) => [p.p50, p.p99]).filter((v) => v > 0);
  const lo = 10 ** Math.floor(Math.log10(Math.min(...lat, targetMs) * 0.9));
  const hi = 10 ** Math.ceil(Math.log10(Math.max(...lat, targetMs) * 1.1));
  const y2 = (v: number) =>
    bottom +
    PANEL_H -
    ((Math.log10(Math.max(v, lo)) - Math.log10(lo)) / Math.log10(hi / lo)) * PANEL_H;
  const out: string[] = [];
  const line = (x1: number, ya: number, x2: number, yb: number, style: string) =>
    out.push(
      `<line x1="${x1.toFixed(1)}" y1="${ya.toFixed(1)}" x2="${x2.toFixed(1)}" y2="${yb.toFixed(1)}" ${style}/>`,
    );
  const text = (tx: number, ty: number, s: string, extra = "") =>
    out.push(`<text x="${tx.toFixed(1)}" y="${ty.toFixed(1)}" ${extra}>${esc(s)}</text>`);
  const series = (
    data: PlotPoint[],
    ys: (p: PlotPoint) => number,
    y: (v: number) => number,
    color: string,
    label: string,
    ly: number,
    dashed = false,
  ) => {
    const dash = dashed ? ' stroke-dasharray="5 3"' : "";
    const pts = data.map((p) => `${x(p.offered).toFixed(1)},${y(ys(p)).toFixed(1)}`);
    out.push(
      `<polyline points="${pts.join(" ")}" fill="none" stroke="${color}" stroke-width="2"${dash}/>`,
    );
    for (const pt of pts) {
      const [cx, cy] = pt.split(",");
      out.push(
        dashed
          ? `<circle cx="${cx}" cy="${cy}" r="3" fill="white" stroke="${color}"/>`
          : `<circle cx="${cx}" cy="${cy}" r="3.5" fill="${color}"/>`,
      );
    }
    line(W - M.right + 12, ly, W - M.right + 32, ly, `stroke="${color}" stroke-width="2"${dash}`);
    text(W - M.right + 38, ly + 4, label);
  };
  const frame = (y0: number, yLabel: string) => {
    out.push(
      `<rect x="${M.left}" y="${y0}" width="${PLOT_W}" height="${PANEL_H}" fill="none" stroke="#444"/>`,
    );
    text(
      18,
      y0 + PANEL_H / 2,
      yLabel,
      `transform="rotate(-90 18 ${y0 + PANEL_H / 2})" text-anchor="middle"`,
    );
    const s = step(xMax, 6);
    for (let v = 0; v <= xMax; v += s) {
      line(x(v), y0 + PANEL_H, x(v), y0 + PANEL_H + 5, 'stroke="#444"');
      text(x(v), y0 + PANEL_H + 18, fmt(v), 'text-anchor="middle"');
    }
    text(
      M.left + PLOT_W / 2,
      y0 + PANEL_H + 36,
      "offered load (messages/s, open loop)",
      'text-anchor="middle"',
    );
  };

  text(W / 2, 20, title, 'text-anchor="middle" font-weight="bold"');
  frame(top, "messages/s delivered");
  const s1 = step(yMax, 5);
  for (let v = 0; v <= yMax; v += s1) {
    line(M.left - 5, y1(v), M.left, y1(v), 'stroke="#444"');
    line(M.left, y1(v), M.left + PLOT_W, y1(v), 'stroke="#ddd"');
    text(M.left - 8, y1(v) + 4, fmt(v), 'text-anchor="end"');
  }
  line(
    x(0),
    y1(0),
    x(Math.min(xMax, yMax)),
    y1(Math.min(xMax, yMax)),
    'stroke="#999" stroke-dasharray="4 4"',
  );
  line(
    M.left,
    y1(ceiling),
    M.left + PLOT_W,
    y1(ceiling),
    'stroke="#c0392b" stroke-dasharray="6 3"',
  );
  text(
    M.left + PLOT_W - 4,
    y1(ceiling) - 6,
    `server ceiling ${fmt(ceiling)}/s`,
    'text-anchor="end" fill="#c0392b"',
  );
  series(points, (p) => p.throughput, y1, "#2c7fb8", "gateway", top + 20);
  series(server, (p) => p.throughput, y1, "#2c7fb8", "minimal client", top + 40, true);
  line(
    W - M.right + 12,
    top + 60,
    W - M.right + 32,
    top + 60,
    'stroke="#999" stroke-dasharray="4 4"',
  );
  text(W - M.right + 38, top + 64, "offered");

  frame(bottom, "request → arrival (ms)");
  for (let v = lo; v <= hi * 1.001; v *= 10) {
    line(M.left - 5, y2(v), M.left, y2(v), 'stroke="#444"');
    line(M.left, y2(v), M.left + PLOT_W, y2(v), 'stroke="#ddd"');
    text(M.left - 8, y2(v) + 4, fmt(v), 'text-anchor="end"');
  }
  line(
    M.left,
    y2(targetMs),
    M.left + PLOT_W,
    y2(targetMs),
    'stroke="#c0392b" stroke-dasharray="6 3"',
  );
  text(
    M.left + PLOT_W - 4,
    y2(targetMs) - 6,
    `p99 target ${targetMs.toFixed(1)} ms at 50% (2 × minimal client)`,
    'text-anchor="end" fill="#c0392b"',
  );
  series(points, (p) => p.p50, y2, "#41ab5d", "gateway p50", bottom + 20);
  series(points, (p) => p.p99, y2, "#e6550d", "gateway p99", bottom + 40);
  series(server, (p) => p.p50, y2, "#41ab5d", "minimal p50", bottom + 60, true);
  series(server, (p) => p.p99, y2, "#e6550d", "minimal p99", bottom + 80, true);

  const h = bottom + PANEL_H + 48;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${h}" viewBox="0 0 ${W} ${h}" font-family="sans-serif" font-size="12" role="img" aria-label="${esc(title)}">
<title>${esc(title)}</title>
<rect width="100%" height="100%" fill="white"/>
${out.join("\n")}
</svg>
`;
}
