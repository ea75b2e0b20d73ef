import * as crypto from "crypto";

/**
 * The dashboard's one page: HTML, a style and a script, no framework. The script takes the
 * server's data from Server-Sent Events (/events) and draws it: host text only ever through
 * textContent and setAttribute (never innerHTML), chart lines from the point lists the server
 * shaped (ops/dashboard/shape.ts). The Content-Security-Policy allows exactly this style and
 * this script (by their sha256) and connections to this origin: nothing else runs or loads.
 */

const STYLE = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 16px; color: #1d2330; background: #f6f7f9; }
h1 { font-size: 18px; margin: 0 0 4px; } .meta { color: #5b6475; margin-bottom: 12px; }
.host { background: #fff; border: 1px solid #d9dde5; border-radius: 6px; padding: 10px 14px; margin-bottom: 14px; }
.host h2 { font-size: 16px; margin: 0 0 6px; } .stale { color: #b35c00; } .unhealthy, .unreachable { color: #b00020; }
.facts span { margin-right: 16px; } .facts b { font-weight: 600; }
table { border-collapse: collapse; margin: 8px 0; } td, th { padding: 2px 10px 2px 0; text-align: left; font-variant-numeric: tabular-nums; }
.charts { display: flex; gap: 16px; flex-wrap: wrap; } .panel { flex: 1 1 420px; }
.panel svg { width: 100%; height: 130px; background: #fbfbfd; border: 1px solid #e3e6ec; }
polyline { fill: none; stroke-width: 2; vector-effect: non-scaling-stroke; } .live { stroke: #1f6feb; color: #1f6feb; } .canary { stroke: #e36209; color: #e36209; }
.standby { stroke: #6e7781; color: #6e7781; } .idle, .gone { stroke: #b7bcc4; color: #8c939d; }
.legend span { margin-right: 12px; font-size: 12px; } .revisions { font: 12px/1.4 ui-monospace, monospace; color: #3b4252; white-space: pre-wrap; }
.problem { color: #b00020; }`;

const SCRIPT = `
"use strict";
const SVG = "http://www.w3.org/2000/svg";
function el(tag, cls, text) { const e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = String(text); return e; }
function fact(box, label, value) { const s = el("span"); s.appendChild(el("b", "", label + " ")); s.appendChild(document.createTextNode(value)); box.appendChild(s); }
const at = (r) => r ? r.version + " :" + r.port : "-";
const shown = (v, unit) => v === null ? "-" : unit === "%" ? (100 * v).toFixed(2) + "%" : Math.round(v) + " ms";
function panel(p, host) {
  const box = el("div", "panel");
  box.appendChild(el("div", "", p.title + " (top " + shown(p.max, p.unit) + ", last " + (p.seconds >= 120 ? Math.round(p.seconds / 60) + " min" : p.seconds + " s") + ")"));
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 600 120"); svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("data-host", host); svg.setAttribute("data-chart", p.unit === "%" ? "error-ratio" : "response-time");
  for (const l of p.lines) {
    const pl = document.createElementNS(SVG, "polyline");
    pl.setAttribute("class", l.role); pl.setAttribute("points", l.points);
    pl.setAttribute("data-version", l.version); pl.setAttribute("data-role", l.role); pl.setAttribute("data-count", String(l.count));
    svg.appendChild(pl);
  }
  box.appendChild(svg);
  const legend = el("div", "legend");
  for (const l of p.lines) legend.appendChild(el("span", l.role, "\\u25A0 " + l.version + " (" + l.role + ") " + shown(l.last, p.unit)));
  box.appendChild(legend);
  return box;
}
function hostBox(h) {
  const box = el("section", "host"); box.setAttribute("data-host", h.host);
  const title = el("h2", h.stale ? "stale" : h.state, h.host + " (" + h.address + ")" + (h.stale ? " STALE, last answer " + h.ageSeconds + "s ago" : h.state !== "ok" ? " " + h.state.toUpperCase() : ""));
  box.appendChild(title);
  const facts = el("div", "facts");
  fact(facts, "phase", h.phase + (h.phaseSeconds !== undefined ? " " + h.phaseSeconds + "s" : ""));
  fact(facts, "live", at(h.live)); fact(facts, "standby", at(h.standby));
  fact(facts, "canary", h.canary ? at(h.canary) + " " + h.canary.percent + "%" : "-"); fact(facts, "lock", h.lock);
  box.appendChild(facts);
  if (h.watch) box.appendChild(el("div", "", "watch " + h.watch));
  if (h.error) box.appendChild(el("div", "problem", h.error));
  for (const p of h.problems) box.appendChild(el("div", "problem", p));
  const t = el("table"); const head = el("tr");
  for (const c of ["release", "port", "role", "requests", "errors", "error ratio", "response time"]) head.appendChild(el("th", "", c));
  t.appendChild(head);
  for (const r of h.releases) {
    const tr = el("tr", r.role);
    for (const c of [r.version, r.port, r.role, r.requests, r.errors, r.requests > 0 ? (100 * r.errors / r.requests).toFixed(2) + "%" : "-", r.rtimeMs !== undefined ? r.rtimeMs + " ms" : "-"]) tr.appendChild(el("td", "", c));
    t.appendChild(tr);
  }
  box.appendChild(t);
  const charts = el("div", "charts");
  for (const p of h.charts) charts.appendChild(panel(p, h.host));
  box.appendChild(charts);
  box.appendChild(el("div", "", "recent revisions"));
  box.appendChild(el("div", "revisions", h.revisions.slice().reverse().join("\\n").replace(/\\t/g, "  ").replace(/(sha256=[0-9a-f]{12})[0-9a-f]{52}/g, "$1…")));
  return box;
}
function draw(d) {
  document.getElementById("title").textContent = "stack " + d.stack + ": declared " + d.declaredVersion + " at start";
  document.getElementById("meta").textContent = "updated " + d.at.replace("T", " ").replace(/\\.\\d+Z$/, " UTC") + " · read-only";
  const hosts = document.getElementById("hosts");
  hosts.replaceChildren(...d.hosts.map(hostBox));
  document.body.setAttribute("data-updated", d.at);
}
const events = new EventSource("/events");
events.onmessage = (m) => draw(JSON.parse(m.data));
events.onerror = () => { document.getElementById("meta").textContent = "connection to the dashboard lost; retrying…"; };
`;

const sha = (s: string) => `'sha256-${crypto.createHash("sha256").update(s).digest("base64")}'`;

/** The page's Content-Security-Policy: its own style and script, connections to itself, nothing else. */
export const PAGE_CSP = `default-src 'none'; style-src ${sha(STYLE)}; script-src ${sha(SCRIPT)}; connect-src 'self'; img-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`;

export const PAGE_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>CompliNist live view</title>
<style>${STYLE}</style></head>
<body><h1 id="title">connecting…</h1><div class="meta" id="meta"></div><main id="hosts"></main>
<script>${SCRIPT}</script></body></html>
`;
