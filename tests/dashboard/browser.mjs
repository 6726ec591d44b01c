// The dashboard in headless Chromium (Debian's /usr/bin/chromium) driven by
// playwright-core: checks every leaderboard row against `lilypad-cli leaderboard
// --json`, sorts, follows a provider to one of its deals and checks the deal's
// timeline, opens the network and explorer views, and saves a screenshot of each
// view. Fails on any page error, console error or request that leaves this server.
//
// Usage: node tests/dashboard/browser.mjs URL EXPECTED_LEADERBOARD_JSON OUT_DIR
// (run by lilypad-cli/tests/dashboard.rs; scripts/setup-browser.sh installs what it needs).
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";

const [base, expectedFile, outDir] = process.argv.slice(2);
if (!base || !expectedFile || !outDir) {
  console.error("usage: node tests/dashboard/browser.mjs URL EXPECTED_LEADERBOARD_JSON OUT_DIR");
  process.exit(2);
}
const expected = JSON.parse(fs.readFileSync(expectedFile, "utf8")).providers;
fs.mkdirSync(outDir, { recursive: true });
const origin = new URL(base).origin;

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
  console.log(`ok: ${what}`);
}

const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "lilypad-dashboard-chromium-"));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
  viewport: { width: 1200, height: 800 },
});
const problems = [];
await context.route("**/*", (route) => {
  const u = route.request().url();
  if (u.startsWith(origin)) return route.continue();
  problems.push(`a request left the dashboard: ${u}`);
  return route.abort();
});
const page = context.pages()[0] || (await context.newPage());
page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
page.on("console", (m) => {
  // The explorer's 404/400 lookups below log failed fetches; those are expected.
  if (m.type() === "error" && !/status of 40[04]/.test(m.text())) problems.push(`console error: ${m.text()}`);
});
const shot = (name) => page.screenshot({ path: path.join(outDir, `${name}.png`) });
const ready = () => page.waitForSelector("#view[data-ready='1']", { timeout: 15000 });

try {
  // ---------------------------------------------------------------- leaderboard
  await page.goto(`${base.replace(/\/$/, "")}/#/`);
  await ready();
  await page.waitForSelector("#leaderboard tbody tr[data-provider]");
  const shown = await page.$$eval("#leaderboard tbody tr[data-provider]", (trs) =>
    trs.map((tr) => ({
      provider: tr.dataset.provider,
      cells: Object.fromEntries([...tr.querySelectorAll("td")].map((td) => [td.dataset.col, { value: td.dataset.value, text: td.textContent.trim() }])),
    })));
  check(shown.length === expected.length, `${expected.length} leaderboard rows (${shown.length} shown)`);
  expected.forEach((want, i) => {
    const row = shown[i];
    check(row && row.provider === want.provider, `row ${i + 1} is ${want.provider}`);
    const c = row.cells;
    const same = (col, v) => check(c[col].value === String(v), `${want.provider} ${col} = ${v} (shown ${c[col].value})`);
    same("rank", want.rank);
    same("hashrate", want.hashrate);
    same("rounds", want.rounds);
    same("days_offline", want.days_offline);
    same("multiplier", want.multiplier);
    same("jobs_completed", want.jobs_completed);
    same("points", want.points);
    same("reputation", want.reputation.score);
    check(c.points.text === want.points.toFixed(2), `${want.provider} shows ${want.points.toFixed(2)} points`);
    check(c.provider.text === want.provider, `${want.provider} shown in full`);
    const band = want.hashrate_rel_std === null ? "–" : `${(want.hashrate_rel_std * 100).toFixed(0)}%`;
    check(c.hashrate.text.endsWith(`± ${band}`), `${want.provider} hashrate error band ${band}`);
  });

  // Sortable: by points, descending then ascending.
  await page.click("th[data-col='jobs_completed']");
  await ready();
  const byJobs = await page.$$eval("#leaderboard tbody tr td[data-col='jobs_completed']", (tds) => tds.map((td) => Number(td.dataset.value)));
  check(byJobs.every((v, i) => i === 0 || byJobs[i - 1] >= v), `sorted by jobs completed, most first: ${byJobs}`);
  await page.click("th[data-col='jobs_completed']");
  await ready();
  const byJobsUp = await page.$$eval("#leaderboard tbody tr td[data-col='jobs_completed']", (tds) => tds.map((td) => Number(td.dataset.value)));
  check(byJobsUp.every((v, i) => i === 0 || byJobsUp[i - 1] <= v), `then fewest first: ${byJobsUp}`);
  await page.click("th[data-col='rank']");
  await ready();
  await page.waitForSelector("#live:not(.off)", { timeout: 15000 });
  check(/live · block \d+/.test(await page.textContent("#live")), "the live feed is connected");
  await shot("leaderboard");

  // ---------------------------------------------------------------- a provider, then a deal
  // The provider with the most deals (ties: the better ranked).
  const dealsOf = (r) => r.reputation.completed + r.reputation.timed_out + r.reputation.lost + r.reputation.refunded + r.reputation.open;
  const top = expected.reduce((best, r) => (dealsOf(r) > dealsOf(best) ? r : best), expected[0]);
  await page.click(`#leaderboard tr[data-provider='${top.provider}'] td[data-col='provider'] a`);
  await page.waitForSelector("#provider-cards");
  await ready();
  const points = await page.getAttribute("#provider-cards .v[data-value]", "data-value");
  check(points === String(top.points), `the provider page shows ${top.points} points`);
  const charts = await page.$$eval(".chart svg", (s) => s.length);
  check(charts >= 3, `the provider page draws its history as charts (${charts})`);
  await shot("provider");

  const dealLinks = await page.$$eval("table.deals a[href^='#/deal/']", (as) => as.map((a) => a.getAttribute("href")));
  check(dealLinks.length > 0, `the provider lists its deals (${dealLinks.length})`);
  // The deal with the most steps makes the best page: open each, keep the longest.
  let best = null;
  for (const href of dealLinks) {
    const id = href.split("/").pop();
    const d = await (await page.request.get(`${origin}/api/deals/${id}`)).json();
    if (!best || d.timeline.length > best.timeline.length || (d.timeline.length === best.timeline.length && d.results_cid && !best.results_cid)) best = d;
  }
  await page.click(`table.deals a[href='#/deal/${best.id}']`);
  await page.waitForSelector("#timeline li");
  await ready();
  const steps = await page.$$eval("#timeline li", (lis) => lis.map((li) => ({ kind: li.dataset.step, tx: li.querySelector("a.tx")?.getAttribute("href") })));
  check(JSON.stringify(steps.map((s) => s.kind)) === JSON.stringify(best.timeline.map((s) => s.kind)), `deal ${best.id} timeline: ${steps.map((s) => s.kind).join(" → ")}`);
  check(steps[0].kind === "created" && steps[steps.length - 1].kind === "finished", "the timeline runs from created to finished");
  for (const [i, s] of steps.entries()) {
    check(s.tx && s.tx.endsWith(best.timeline[i].tx), `step ${s.kind} links its transaction`);
  }
  const receipt = await page.request.get(`${origin}${steps[0].tx}`);
  check(receipt.ok() && (await receipt.json()).transactionHash === best.timeline[0].tx, "the creation's transaction link answers with its receipt");
  if (best.results_cid) {
    const cid = await page.textContent("#results-cid a");
    check(cid === best.results_cid, `the results CID ${best.results_cid} is linked`);
  }
  await shot("deal");

  // ---------------------------------------------------------------- network
  await page.click("#nav-network");
  await page.waitForSelector("#network-cards");
  await ready();
  const online = expected.filter((r) => r.proofs > 0 && r.days_offline === 0).length;
  check((await page.textContent("#providers-online")).trim() === String(online), `${online} providers online`);
  const netCharts = await page.$$eval(".chart svg", (s) => s.length);
  check(netCharts >= 4, `the network view draws its charts (${netCharts})`);
  // The providers' daemons are up, their offers resting: CPU is offered.
  const offered = (await page.textContent("#offered")).trim();
  check(offered !== "0 / 0.0" && /^0 \/ \d+\.\d$/.test(offered), `CPU is offered (${offered})`);
  await shot("network");

  // ---------------------------------------------------------------- explorer
  await page.click("#nav-explorer");
  await page.waitForSelector("#explore");
  await ready();
  await shot("explorer");
  const unknown = `0x${"ab".repeat(32)}`;
  await page.fill("#explore-q", unknown);
  await page.press("#explore-q", "Enter");
  await page.waitForSelector("#error[data-status='404']");
  check((await page.textContent("#error")).includes("no deal"), "an unknown id: 404 with its reason");
  await page.fill("#q", "0x1234");
  await page.press("#q", "Enter");
  await page.waitForSelector("#error[data-status='400']");
  check(true, "a malformed id: 400");
  await page.fill("#q", best.id);
  await page.press("#q", "Enter");
  await page.waitForSelector("#timeline li");
  check(page.url().endsWith(`#/deal/${best.id}`), "a deal id looks up its deal");
  await page.fill("#q", best.job_offer);
  await page.press("#q", "Enter");
  await page.waitForSelector(`table.deals tr[data-deal='${best.id}']`);
  check(page.url().endsWith(`#/offer/${best.job_offer}`), "an offer id lists its deal");
  await page.fill("#q", best.job_creator);
  await page.press("#q", "Enter");
  await page.waitForSelector(`table.deals tr[data-deal='${best.id}']`);
  check(page.url().includes(`#/address/${best.job_creator}`), "an address lists its deals");

  check(problems.length === 0, `no page errors and nothing fetched elsewhere${problems.length ? `: ${problems.join("; ")}` : ""}`);
  console.log(`screenshots in ${outDir}`);
} catch (e) {
  await shot("failure").catch(() => {});
  console.error(e.stack || String(e));
  for (const p of ["/api/status", "/api/leaderboard"]) {
    const r = await page.request.get(`${origin}${p}`).catch(() => null);
    if (r) console.error(`${p}: ${await r.text()}`);
  }
  if (problems.length) console.error(problems.join("\n"));
  process.exitCode = 1;
} finally {
  await context.close();
  fs.rmSync(userDataDir, { recursive: true, force: true });
}
