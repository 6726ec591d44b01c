// The dashboard page: a hash router over four views, tables and inline-SVG charts
// drawn here, live updates over server-sent events. No framework, nothing fetched
// from anywhere but this server.
"use strict";

const view = document.getElementById("view");
const live = document.getElementById("live");
let status = { explorer: null, ipfs_gateway: "https://ipfs.io" };
let sort = { col: "rank", dir: 1 };

// ------------------------------------------------------------------ helpers

function esc(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

async function api(path) {
  const r = await fetch(path, { headers: { accept: "application/json" } });
  let body;
  try { body = await r.json(); } catch (_) { body = { error: `HTTP ${r.status}` }; }
  if (!r.ok) {
    const e = new Error(body.error || `HTTP ${r.status}`);
    e.status = r.status;
    throw e;
  }
  return body;
}

function rate(h) {
  const units = ["H/s", "kH/s", "MH/s", "GH/s", "TH/s"];
  let v = h, u = 0;
  while (v >= 1000 && u + 1 < units.length) { v /= 1000; u++; }
  return `${v.toFixed(2)} ${units[u]}`;
}

function secs(s) {
  if (s === null || s === undefined) return "–";
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

function when(t) {
  return t ? new Date(t * 1000).toISOString().replace("T", " ").replace(".000Z", " UTC") : "–";
}

function short(h) { return h ? `${h.slice(0, 10)}…${h.slice(-6)}` : "–"; }

function addrLink(a) { return `<a class="mono" href="#/address/${a}" title="${a}">${short(a)}</a>`; }
function dealLink(d) { return `<a class="mono" href="#/deal/${d}" title="${d}">${short(d)}</a>`; }
function txLink(h) {
  if (!h) return "–";
  const href = status.explorer ? `${status.explorer}/tx/${h}` : `/api/tx/${h}`;
  return `<a class="mono tx" href="${esc(href)}" title="${h}">${short(h)}</a>`;
}
function badge(d) {
  const k = d.outcome || d.state;
  return `<span class="badge ${esc(k)}">${esc(k.replace(/_/g, " "))}</span>`;
}

function error(e) {
  const what = e.status === 404 ? "Not found" : e.status === 400 ? "Bad request" : "Error";
  view.innerHTML = `<div class="error" id="error" data-status="${e.status || 0}"><strong>${what}${e.status ? ` (${e.status})` : ""}:</strong> ${esc(e.message)}</div>`;
}

// ------------------------------------------------------------------ charts

const PALETTE = ["#2563eb", "#15803d", "#b91c1c", "#b45309", "#7c3aed", "#0891b2", "#be185d", "#4b5563", "#65a30d", "#ea580c"];

function frame(title, inner, legend = "") {
  return `<div class="chart"><h3>${esc(title)}</h3>${inner}${legend ? `<div class="legend">${legend}</div>` : ""}</div>`;
}

// Stacked bars: series = [{name, values}], labels per column.
function bars(title, labels, series, fmt = (v) => v) {
  const W = 420, H = 170, L = 36, B = 20, T = 8;
  const n = labels.length;
  const totals = labels.map((_, i) => series.reduce((s, x) => s + (x.values[i] || 0), 0));
  const max = Math.max(1, ...totals);
  // Each column's slot spans its share of the width; its bar is at most 48 wide, centered.
  const slot = (W - L - 4) / Math.max(1, n);
  const bw = Math.min(48, slot);
  const x0 = (i) => L + i * slot + (slot - bw) / 2;
  let g = `<line class="axis" x1="${L}" y1="${H - B}" x2="${W}" y2="${H - B}"/>`;
  g += `<text x="${L - 4}" y="${T + 8}" text-anchor="end">${esc(fmt(max))}</text><text x="${L - 4}" y="${H - B}" text-anchor="end">0</text>`;
  labels.forEach((lab, i) => {
    let y = H - B;
    series.forEach((s, k) => {
      const v = s.values[i] || 0;
      if (!v) return;
      const h = (v / max) * (H - B - T);
      y -= h;
      g += `<rect x="${(x0(i) + 1).toFixed(1)}" y="${y.toFixed(1)}" width="${Math.max(1, bw - 2).toFixed(1)}" height="${h.toFixed(1)}" fill="${PALETTE[k % PALETTE.length]}"><title>${esc(lab)}: ${esc(s.name)} ${esc(fmt(v))}</title></rect>`;
    });
    const every = Math.ceil(n / 8);
    if (i % every === 0) g += `<text x="${(L + i * slot + slot / 2).toFixed(1)}" y="${H - 6}" text-anchor="middle">${esc(lab)}</text>`;
  });
  const legend = series.length > 1 ? series.map((s, k) => `<span style="background:${PALETTE[k % PALETTE.length]}"></span>${esc(s.name)}`).join("") : "";
  return frame(title, `<svg viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(title)}">${g}</svg>`, legend);
}

function line(title, labels, values, fmt = (v) => v) {
  const W = 420, H = 170, L = 64, B = 20, T = 8;
  const max = Math.max(1e-9, ...values);
  const n = values.length;
  const x = (i) => L + (n <= 1 ? (W - L) / 2 : (i * (W - L - 8)) / (n - 1));
  const y = (v) => H - B - (v / max) * (H - B - T);
  let g = `<line class="axis" x1="${L}" y1="${H - B}" x2="${W}" y2="${H - B}"/>`;
  g += `<text x="${L - 4}" y="${T + 8}" text-anchor="end">${esc(fmt(max))}</text><text x="${L - 4}" y="${H - B}" text-anchor="end">0</text>`;
  if (n) {
    g += `<polyline fill="none" stroke="${PALETTE[0]}" stroke-width="2" points="${values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" ")}"/>`;
    values.forEach((v, i) => { g += `<circle cx="${x(i).toFixed(1)}" cy="${y(v).toFixed(1)}" r="3" fill="${PALETTE[0]}"><title>${esc(labels[i])}: ${esc(fmt(v))}</title></circle>`; });
    const every = Math.ceil(n / 8);
    labels.forEach((lab, i) => { if (i % every === 0) g += `<text x="${x(i).toFixed(1)}" y="${H - 6}" text-anchor="middle">${esc(lab)}</text>`; });
  }
  return frame(title, `<svg viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(title)}">${g}</svg>`);
}

function hourLabels(h) {
  return h.counts.map((_, i) => new Date((h.start + i * 3600) * 1000).toISOString().slice(11, 13) + "h");
}

// ------------------------------------------------------------------ views

const COLUMNS = [
  ["rank", "rank", (r) => r.rank],
  ["provider", "provider", (r) => r.provider, "addr"],
  ["hashrate", "hashrate ± err", (r) => r.hashrate],
  ["rounds", "uptime", (r) => r.rounds],
  ["days_offline", "offline", (r) => r.days_offline],
  ["multiplier", "time mult.", (r) => r.multiplier],
  ["jobs_completed", "jobs done", (r) => r.jobs_completed],
  ["points", "points", (r) => r.points],
  ["reputation", "rep.", (r) => r.reputation.score],
];

function cell(col, r) {
  switch (col) {
    case "provider": return `<a class="mono" href="#/provider/${r.provider}">${r.provider}</a>`;
    case "hashrate": return `${rate(r.hashrate)} <span class="muted">± ${r.hashrate_rel_std === null ? "–" : (r.hashrate_rel_std * 100).toFixed(0) + "%"}</span>`;
    case "rounds": return `${r.rounds} rnd <span class="muted">(${r.proofs} pr.)</span>`;
    case "days_offline": return `${r.days_offline}d`;
    case "multiplier": return `${r.multiplier.toFixed(2)}x`;
    case "points": return r.points.toFixed(2);
    case "reputation": return r.reputation.score.toFixed(2);
    default: return esc(r[col]);
  }
}

async function leaderboardView() {
  const data = await api("/api/leaderboard");
  const rows = data.providers.slice();
  const col = COLUMNS.find((c) => c[0] === sort.col) || COLUMNS[0];
  rows.sort((a, b) => {
    const x = col[2](a), y = col[2](b);
    return (x < y ? -1 : x > y ? 1 : 0) * sort.dir;
  });
  const head = COLUMNS.map(([k, label, , cls]) => `<th data-col="${k}" class="${cls || ""} ${sort.col === k ? (sort.dir > 0 ? "sorted-asc" : "sorted-desc") : ""}">${esc(label)}</th>`).join("");
  const body = rows.map((r) => `<tr data-provider="${r.provider}">${COLUMNS.map(([k, , get, cls]) => `<td data-col="${k}" data-value="${esc(String(get(r)))}" class="${cls || ""}">${cell(k, r)}</td>`).join("")}</tr>`).join("");
  view.innerHTML = `<h2>Leaderboard <span class="muted">(${rows.length} providers; click a column to sort)</span></h2>
    <table id="leaderboard"><thead><tr>${head}</tr></thead><tbody>${body || `<tr><td colspan="${COLUMNS.length}" class="text muted">No proofs of work or deals yet.</td></tr>`}</tbody></table>
    <p class="muted">Hashrate from the proofs per round at each round's target; its error band is the relative standard deviation 1/√proofs. Uptime: rounds with a proof (and proofs); offline: whole days since the last proof. Points and the time multiplier follow docs/pow.md; <code>lilypad-cli leaderboard --json</code> prints the same rows.</p>`;
  view.querySelectorAll("th[data-col]").forEach((th) => th.addEventListener("click", () => {
    const k = th.dataset.col;
    sort = { col: k, dir: sort.col === k ? -sort.dir : k === "rank" || k === "provider" ? 1 : -1 };
    view.dataset.ready = "";
    render();
  }));
}

async function providerView(addr) {
  const p = await api(`/api/providers/${addr}`);
  const r = p.row;
  const labels = p.rounds.map((x) => `#${x.round}`);
  view.innerHTML = `<h2>Provider <span class="mono">${esc(p.provider)}</span></h2>
    <div class="cards" id="provider-cards">
      <div class="card"><div class="k">rank</div><div class="v">${r.rank}</div></div>
      <div class="card"><div class="k">hashrate</div><div class="v">${rate(r.hashrate)}</div><div class="k">± ${r.hashrate_rel_std === null ? "–" : (r.hashrate_rel_std * 100).toFixed(0) + "%"}</div></div>
      <div class="card"><div class="k">reward points</div><div class="v" data-value="${r.points}">${r.points.toFixed(2)}</div></div>
      <div class="card"><div class="k">time multiplier</div><div class="v">${r.multiplier.toFixed(2)}x</div><div class="k">${r.rounds} rounds, ${r.days_offline}d offline</div></div>
      <div class="card"><div class="k">jobs completed</div><div class="v">${r.jobs_completed}</div><div class="k">reputation ${r.reputation.score.toFixed(2)}</div></div>
      <div class="card"><div class="k">median time to results</div><div class="v">${secs(r.reputation.median_secs_to_results)}</div></div>
    </div>
    <div class="charts">
      ${line("Hashrate per round", labels, p.rounds.map((x) => x.hashrate), rate)}
      ${bars("Proofs per round", labels, [{ name: "proofs", values: p.rounds.map((x) => x.proofs) }])}
      ${bars("Deals per hour (last 24 h)", hourLabels(p.deals_per_hour), [{ name: "deals", values: p.deals_per_hour.counts }])}
    </div>
    <h3>Deals</h3>${dealTable(p.deals)}`;
}

function dealTable(deals) {
  if (!deals.length) return `<p class="muted">None.</p>`;
  return `<table class="deals"><thead><tr><th class="text">deal</th><th class="text">created</th><th class="text">provider</th><th class="text">job creator</th><th class="text">state</th></tr></thead><tbody>${deals.map((d) => `<tr data-deal="${d.id}"><td class="text">${dealLink(d.id)}</td><td class="text">${when(d.created_at)}</td><td class="text">${addrLink(d.provider)}</td><td class="text">${addrLink(d.job_creator)}</td><td class="text">${badge(d)}</td></tr>`).join("")}</tbody></table>`;
}

async function networkView() {
  const n = await api("/api/network");
  const s = n.solver;
  const offers = s.reachable ? `${s.open_resource_offers}` : "–";
  const outcomeNames = Object.keys(n.outcomes_per_hour);
  const m = n.median_secs;
  view.innerHTML = `<h2>Network</h2>
    <div class="cards" id="network-cards">
      <div class="card"><div class="k">providers online (proof today)</div><div class="v" id="providers-online">${n.providers_online}</div><div class="k">${n.miners} have mined, ${n.providers} listed</div></div>
      <div class="card"><div class="k">open resource offers (solver)</div><div class="v" id="open-offers">${offers}</div><div class="k">${s.reachable ? `${s.open_job_offers} job offers waiting` : esc(s.error || "solver unreachable")}</div></div>
      <div class="card"><div class="k">GPUs / CPU offered</div><div class="v" id="offered">${s.offered ? `${s.offered.gpus} / ${(s.offered.cpu_millicores / 1000).toFixed(1)}` : "–"}</div><div class="k">${s.offered ? `GPUs / CPU cores, ${(s.offered.ram_mib / 1024).toFixed(1)} GiB RAM, from ${s.offered.providers} provider${s.offered.providers === 1 ? "" : "s"}` : "solver unreachable"}</div></div>
      <div class="card"><div class="k">deals</div><div class="v" id="deal-count">${n.deals}</div><div class="k">${Object.entries(n.deal_states).map(([k, v]) => `${v} ${esc(k.replace(/_/g, " "))}`).join(", ") || "none yet"}</div></div>
      <div class="card"><div class="k">block</div><div class="v">${n.head}</div><div class="k">${when(n.now)}</div></div>
    </div>
    <div class="charts">
      ${bars("Providers mining per round", n.rounds.map((r) => `#${r.round}`), [{ name: "providers", values: n.rounds.map((r) => r.providers) }])}
      ${bars("Jobs per hour (deals created, last 24 h)", hourLabels(n.jobs_per_hour), [{ name: "deals", values: n.jobs_per_hour.counts }])}
      ${bars("Deal outcomes per hour (last 24 h)", hourLabels(n.jobs_per_hour), outcomeNames.map((o) => ({ name: o.replace(/_/g, " "), values: n.outcomes_per_hour[o].counts })))}
      ${bars("Median time per deal phase", ["to results", "results→end", "challenge→end", "whole deal"], [{ name: "seconds", values: [m.created_to_results, m.results_to_finished, m.challenged_to_finished, m.created_to_finished].map((v) => v || 0) }], secs)}
    </div>
    <h3>Recent deals</h3>${dealTable(n.recent_deals)}`;
}

async function explorerView() {
  const n = await api("/api/network");
  view.innerHTML = `<h2>Explorer</h2>
    <p>Look up a <strong>deal</strong> (its id), an <strong>offer</strong> (a job or resource offer id, once it is in a deal) or an <strong>address</strong> (a provider, a job creator) with the search box above, or pick a recent deal.</p>
    <form id="explore" autocomplete="off"><input id="explore-q" size="70" class="mono" placeholder="0x…"> <button type="submit">Look up</button></form>
    <h3>Recent deals</h3>${dealTable(n.recent_deals)}`;
  document.getElementById("explore").addEventListener("submit", (e) => {
    e.preventDefault();
    lookup(document.getElementById("explore-q").value);
  });
}

async function dealView(id) {
  const d = await api(`/api/deals/${id}`);
  const steps = d.timeline.map((s) => `<li data-step="${s.kind}"><span class="kind">${esc(s.kind.replace(/_/g, " "))}</span> <span class="muted">${when(s.time)} · block ${s.block}</span> · tx ${txLink(s.tx)}<div class="muted">${s.kind === "results_submitted" ? cidLink(s.detail) : esc(s.detail)}</div></li>`).join("");
  view.innerHTML = `<h2>Deal <span class="mono">${esc(d.id)}</span> ${badge(d)}</h2>
    <dl class="facts" id="deal-facts">
      <dt>provider</dt><dd><a href="#/provider/${d.provider}">${d.provider}</a></dd>
      <dt>job creator</dt><dd><a href="#/address/${d.job_creator}">${d.job_creator}</a></dd>
      <dt>solver</dt><dd>${esc(d.solver)}</dd>
      <dt>job offer</dt><dd><a href="#/offer/${d.job_offer}">${d.job_offer}</a></dd>
      <dt>resource offer</dt><dd><a href="#/offer/${d.resource_offer}">${d.resource_offer}</a></dd>
      <dt>module</dt><dd>${esc(d.module_id)}</dd>
      <dt>price</dt><dd>${esc(d.price)} (base units)</dd>
      <dt>results CID</dt><dd id="results-cid">${d.results_cid ? cidLink(d.results_cid) : "–"}</dd>
    </dl>
    <h3>Timeline</h3><ol class="timeline" id="timeline">${steps}</ol>`;
}

function cidLink(cid) {
  if (/malformed/.test(cid)) return esc(cid);
  return `<a class="mono cid" href="${esc(status.ipfs_gateway)}/ipfs/${esc(cid)}">${esc(cid)}</a>`;
}

async function offerView(id) {
  const o = await api(`/api/offers/${id}`);
  view.innerHTML = `<h2>Offer <span class="mono">${esc(o.offer)}</span></h2>
    <table class="deals"><thead><tr><th class="text">deal</th><th class="text">offer kind</th><th class="text">provider</th><th class="text">job creator</th><th class="text">state</th></tr></thead><tbody>${o.deals.map((d) => `<tr data-deal="${d.deal}"><td class="text">${dealLink(d.deal)}</td><td class="text">${esc(d.kind)}</td><td class="text">${addrLink(d.provider)}</td><td class="text">${addrLink(d.job_creator)}</td><td class="text">${badge(d)}</td></tr>`).join("")}</tbody></table>`;
}

async function addressView(addr) {
  const a = await api(`/api/address/${addr}`);
  const r = a.provider;
  view.innerHTML = `<h2>Address <span class="mono">${esc(a.address)}</span></h2>
    ${r ? `<p>Provider ranked <strong>#${r.rank}</strong> with ${r.points.toFixed(2)} points: <a href="#/provider/${a.address}">its history</a>.</p>` : `<p class="muted">Not on the leaderboard.</p>`}
    <h3>Deals as provider</h3>${dealTable(a.deals_as_provider)}
    <h3>Deals as job creator</h3>${dealTable(a.deals_as_job_creator)}`;
}

// ------------------------------------------------------------------ routing

function lookup(q) {
  q = q.trim();
  if (/^0x[0-9a-fA-F]{40}$/.test(q)) { location.hash = `#/address/${q}`; return; }
  if (/^0x[0-9a-fA-F]{64}$/.test(q)) {
    api(`/api/deals/${q}`).then(() => { location.hash = `#/deal/${q}`; }, (e) => {
      if (e.status === 404) location.hash = `#/offer/${q}`; else error(e);
    });
    return;
  }
  error({ status: 400, message: `${JSON.stringify(q)} is neither a deal or offer id (0x and 64 hex digits) nor an address (0x and 40 hex digits)` });
}

document.getElementById("search").addEventListener("submit", (e) => {
  e.preventDefault();
  lookup(document.getElementById("q").value);
});

function route() {
  const parts = location.hash.replace(/^#\/?/, "").split("/");
  const [name, arg] = parts;
  const tab = name === "network" ? "network" : name === "" || name === "provider" ? "leaderboard" : "explorer";
  document.querySelectorAll("nav a").forEach((a) => a.classList.toggle("active", a.id === `nav-${tab}`));
  switch (name) {
    case "": return leaderboardView();
    case "provider": return providerView(arg);
    case "network": return networkView();
    case "explorer": return explorerView();
    case "deal": return dealView(arg);
    case "offer": return offerView(arg);
    case "address": return addressView(arg);
    default: return Promise.reject(Object.assign(new Error(`no view ${JSON.stringify(name)}`), { status: 404 }));
  }
}

let rendering = Promise.resolve();
function render() {
  rendering = rendering.then(() => route()).then(() => { view.dataset.ready = "1"; }, error);
  return rendering;
}

window.addEventListener("hashchange", () => { view.dataset.ready = ""; render(); });

// Live: each `update` event re-reads the current view's data.
function follow() {
  const es = new EventSource("/api/events");
  es.addEventListener("update", (e) => {
    const u = JSON.parse(e.data);
    live.className = "live";
    live.textContent = `live · block ${u.head}`;
    document.getElementById("head").textContent = `Snapshot ${u.version}, block ${u.head}.`;
    view.dataset.version = String(u.version);
    render();
  });
  es.onerror = () => { live.className = "live off"; live.textContent = "reconnecting…"; };
}

api("/api/status").then((s) => { status = s; }, () => {}).finally(() => { render(); follow(); });
