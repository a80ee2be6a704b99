// The security dashboard (/dashboard) in a real browser: headless Chromium driven by playwright-core,
// against a real Palisade. An administrator (with an authenticator app, so the sign-in takes the
// second step) watches the page while this script runs a brute force on another account over the
// API; the page, refreshing every second (`?refresh=1`), must show the failed logins, the incident,
// the address and the charts. Then the range selector, a narrow window, an invalid token, signing
// out, and a non-administrator, who must see "Administrators only". Every step asserts; the first
// failure stops the run; a console error or a CSP violation fails the step it happens in.
// Started by run.sh, which serves Palisade, registers the three users and makes one an administrator
// with `palisade user grant-admin`; it passes BASE_URL, PALISADE_ADMIN_USERNAME,
// PALISADE_VIEWER_USERNAME, PALISADE_TARGET_USERNAME and PALISADE_PASSWORD (the same for all three).
//
// Exit status 0 only when every step passed; the last line is "browser: N passed, N failed".

import { createHmac } from "node:crypto";
import {
  BASE_URL, WAIT_MS, check, env, expectNoCspViolation, launch, press, run, screenshot, statusLine, statusMark, step, waitForStatus,
} from "./harness.mjs";

const ADMIN = env("PALISADE_ADMIN_USERNAME");
const VIEWER = env("PALISADE_VIEWER_USERNAME");
const TARGET = env("PALISADE_TARGET_USERNAME");
const PASSWORD = env("PALISADE_PASSWORD");
// The detector opens a `brute_force` incident at 10 failed logins of one account in 5 minutes.
const BRUTE_FORCE_FAILURES = 10;
// The server listens on 127.0.0.1; node's own requests go there directly (localhost may be ::1 first).
const API_URL = BASE_URL.replace("://localhost:", "://127.0.0.1:");

// ---- the API, from node ----------------------------------------------------------------------------
async function api(method, path, body, token) {
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(API_URL + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = text;
  }
  return { status: response.status, data };
}

// RFC 6238 TOTP (HMAC-SHA-1, 6 digits, 30 s steps) of a base32 secret, for time step `step`.
function totp(secret, step) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const c of secret.replace(/=+$/, "").toUpperCase()) {
    const v = alphabet.indexOf(c);
    if (v < 0) throw new Error(`not base32: ${c}`);
    bits += v.toString(2).padStart(5, "0");
  }
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const mac = createHmac("sha1", key).update(counter).digest();
  const offset = mac[mac.length - 1] & 0xf;
  const code = (mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000;
  return String(code).padStart(6, "0");
}
const nowStep = () => Math.floor(Date.now() / 30_000);

// A GET with the page's own token from inside the page: the same client as the page's session (the
// server ends a session whose token turns up from another client, as a hijack).
async function pageGet(path, token) {
  return page.evaluate(async ({ path, token }) => {
    const response = await fetch(path, { headers: { Authorization: `Bearer ${token}` } });
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = text;
    }
    return { status: response.status, data };
  }, { path, token });
}

// ---- the page ------------------------------------------------------------------------------------
const VIEWPORT = { width: 1200, height: 900 };
const { page, requests } = await launch({
  viewport: VIEWPORT,
  prefix: "dashboard-",
  requestPath: (url) =>
    (url.pathname.startsWith("/auth/") || url.pathname.startsWith("/monitoring/") ? url.pathname + url.search : null),
});

const el = (id) => page.locator(`#${id}`);
const text = async (id) => ((await el(id).textContent()) ?? "").replace(/\s+/g, " ").trim();
const pageToken = () => page.evaluate(() => sessionStorage.getItem("palisade.dashboard.access_token"));

// Every number the page shows, from the data-value attributes it sets (null before the first load).
const NUMBERS = [
  "total_events", "security_incidents", "blocked_attempts", "anomalies_detected", "failed_logins",
  "brute_force_attempts", "audit_events", "policy_violations", "unresolved_incidents",
];
async function shown() {
  return page.evaluate((names) => {
    const value = (el) => (el && el.dataset.value !== undefined ? Number(el.dataset.value) : null);
    const metrics = Object.fromEntries(names.map((n) => [n, value(document.querySelector(`[data-metric="${n}"]`))]));
    const severity = Object.fromEntries([...document.querySelectorAll("[data-severity]")].map((e) => [e.dataset.severity, value(e)]));
    const addresses = [...document.querySelectorAll("#suspicious-rows tr[data-ip]")]
      .map((r) => ({ ip: r.dataset.ip, failures: Number(r.dataset.failures), text: r.textContent.trim() }));
    const charts = Object.fromEntries([...document.querySelectorAll("figure.chart")].map((f) => {
      const svg = f.querySelector("svg");
      return [f.dataset.series, {
        total: f.dataset.total === undefined ? null : Number(f.dataset.total),
        peak: f.dataset.peak === undefined ? null : Number(f.dataset.peak),
        bars: f.querySelectorAll("rect.bar").length,
        tallest: Math.max(0, ...[...f.querySelectorAll("rect.bar")].map((r) => Number(r.getAttribute("height")))),
        labels: [...f.querySelectorAll("text.tick")].map((t) => t.textContent),
        svgWidth: svg ? svg.getBoundingClientRect().width : 0,
        drawnWidth: svg ? Number(svg.getAttribute("width")) : 0,
        figureWidth: f.getBoundingClientRect().width,
      }];
    }));
    const dashboard = document.getElementById("dashboard");
    return {
      metrics, severity, addresses, charts,
      range: dashboard.dataset.rangeSeconds ? Number(dashboard.dataset.rangeSeconds) : null,
      updated: dashboard.dataset.updated ?? null,
      updatedAt: document.getElementById("updated-at").textContent.trim(),
    };
  }, NUMBERS);
}

// Polls `probe` until it returns a truthy value or `ms` pass; returns the last value.
async function eventually(probe, ms = WAIT_MS) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value || Date.now() >= deadline) return value;
    await page.waitForTimeout(200);
  }
}

// The password step; returns the status mark from before it.
async function passwordStep(username) {
  await el("username").fill(username);
  await el("password").fill(PASSWORD);
  return press("password-button");
}

// The second step with `method` and `code`, then the dashboard's first numbers.
async function secondStep(method, code) {
  await el("code-method").selectOption(method);
  await el("code").fill(code);
  await waitForStatus(await press("code-button"), /^Signed in\.$/, `the ${method} step`);
}

async function expectDashboardFor(user) {
  await page.waitForFunction(() => document.querySelector('[data-metric="failed_logins"]').dataset.value !== undefined,
    undefined, { timeout: WAIT_MS }).catch(() => {});
  check(await el("dashboard").isVisible(), "the dashboard is not shown");
  check(await el("signin").isHidden(), "the sign-in section is still shown");
  check(await el("forbidden").isHidden(), "the \"Administrators only\" message is shown to an administrator");
  check((await text("who")) === user, `the page says signed in as ${JSON.stringify(await text("who"))}, not ${user}`);
  const s = await shown();
  for (const [name, value] of Object.entries(s.metrics)) {
    check(Number.isInteger(value) && value >= 0, `the ${name} card shows ${JSON.stringify(value)}`);
  }
  return s;
}

// ---- the steps -----------------------------------------------------------------------------------
let totpSecret = null;
let backupCodes = [];
let confirmedStep = 0;
let before = null; // the numbers shown before the attack
await run(async () => {
  await step("the page loads with its CSP and shows the sign-in form only", async () => {
    const response = await page.goto(`${BASE_URL}/dashboard?refresh=1`);
    check(response && response.status() === 200, `GET /dashboard answered ${response && response.status()}`);
    const csp = response.headers()["content-security-policy"] ?? "";
    check(/default-src 'none'/.test(csp) && /script-src 'self'/.test(csp) && /style-src 'self'/.test(csp),
      `the CSP header is ${JSON.stringify(csp)}`);
    await page.waitForLoadState("load");
    check(await el("signin").isVisible(), "the sign-in section is not shown");
    for (const id of ["dashboard", "session", "forbidden", "code-form"]) {
      check(await el(id).isHidden(), `#${id} is shown before signing in`);
    }
    const s = await statusLine();
    check(!s.error, `the page shows an error on load: ${JSON.stringify(s.text)}`);
    const width = await page.evaluate(() => getComputedStyle(document.querySelector("main")).maxWidth);
    check(width !== "none", "dashboard.css did not apply (main has no max-width)");
    await screenshot("sign-in");
  });

  await step(`the administrator ${ADMIN} has the admin scope and enrols an authenticator app (over the API)`, async () => {
    const login = await api("POST", "/auth/login", { username: ADMIN, password: PASSWORD });
    check(login.status === 200 && login.data.access_token, `logging in ${ADMIN} answered ${login.status} ${JSON.stringify(login.data)}`);
    const claims = JSON.parse(Buffer.from(login.data.access_token.split(".")[1], "base64url").toString());
    const scopes = String(claims.scope ?? claims.scp ?? "").split(/\s+/);
    check(scopes.includes("admin"), `${ADMIN}'s token has scopes ${JSON.stringify(scopes)}: did \`palisade user grant-admin\` work?`);
    const setup = await api("POST", "/auth/mfa/totp/setup", undefined, login.data.access_token);
    check(setup.status === 200 && setup.data.secret, `totp/setup answered ${setup.status} ${JSON.stringify(setup.data)}`);
    totpSecret = setup.data.secret;
    backupCodes = setup.data.backup_codes ?? [];
    check(backupCodes.length > 0, "the first factor came without backup codes");
    confirmedStep = nowStep();
    const confirm = await api("POST", "/auth/mfa/totp/confirm", { code: totp(totpSecret, confirmedStep) }, login.data.access_token);
    check(confirm.status >= 200 && confirm.status < 300, `totp/confirm answered ${confirm.status} ${JSON.stringify(confirm.data)}`);
    await api("POST", "/auth/logout", undefined, login.data.access_token);
  });

  await step("signing in as the administrator asks for the second step; the app's code opens the dashboard", async () => {
    await waitForStatus(await passwordStep(ADMIN), /^A second factor is needed\.$/, "the password step");
    check(await el("code-form").isVisible(), "the second-step form is not shown");
    check(await el("dashboard").isHidden(), "the dashboard is shown on the password alone");
    const methods = await page.locator("#code-method option").evaluateAll((os) => os.map((o) => o.value));
    check(methods.includes("totp") && methods.includes("backup_code"), `the second step offers ${JSON.stringify(methods)}`);
    await screenshot("second-step");
    // The code of the step after the one that confirmed the app: the replay guard refuses that one,
    // and the server accepts one step of skew.
    await secondStep("totp", totp(totpSecret, Math.max(nowStep(), confirmedStep + 1)));
    before = await expectDashboardFor(ADMIN);
    const stored = await page.evaluate(() => ({ session: Object.keys(sessionStorage), local: Object.keys(localStorage) }));
    check(stored.session.includes("palisade.dashboard.access_token"), `sessionStorage holds ${JSON.stringify(stored.session)}`);
    check(stored.local.length === 0, `localStorage holds ${JSON.stringify(stored.local)}: the token must stay in sessionStorage`);
    check(before.range === 86400, `the default range is ${before.range} s, not 24 hours`);
    check((await el("range").inputValue()) === "86400", "the range selector does not say 24 hours");
    check(/^\d\d:\d\d:\d\d$/.test(before.updatedAt), `"updated at" says ${JSON.stringify(before.updatedAt)}`);
    console.log(`     before the attack: failed_logins ${before.metrics.failed_logins}, security_incidents ${before.metrics.security_incidents}`);
    await screenshot("signed-in");
  });

  await step("the page shows what the API answers, and refreshes itself every second (?refresh=1)", async () => {
    // The page first, then the API: counts that grow can only have grown in between.
    const now = await shown();
    const answer = await pageGet("/monitoring/dashboard?range=86400", await pageToken());
    check(answer.status === 200, `GET /monitoring/dashboard answered ${answer.status} ${JSON.stringify(answer.data)}`);
    const d = answer.data;
    // The counts nobody else moves during this step; the event counts grow with every request.
    const stable = {
      failed_logins: d.threats.failed_logins,
      security_incidents: d.metrics.security_incidents,
      brute_force_attempts: d.threats.brute_force_attempts,
      policy_violations: d.compliance.policy_violations,
      unresolved_incidents: d.incidents.unresolved,
    };
    for (const [name, value] of Object.entries(stable)) {
      check(now.metrics[name] === value, `the ${name} card shows ${now.metrics[name]}, the API ${value}`);
    }
    for (const name of ["total_events", "audit_events"]) {
      const answered = name === "audit_events" ? d.compliance.audit_events : d.metrics.total_events;
      check(now.metrics[name] > 0 && now.metrics[name] <= answered, `the ${name} card shows ${now.metrics[name]}, the API ${answered}`);
    }
    for (const [sev, n] of Object.entries(d.incidents.by_severity)) {
      check(now.severity[sev] === n, `unresolved ${sev}: the page shows ${now.severity[sev]}, the API ${n}`);
    }
    for (const series of ["events", "failed_logins", "blocked_attempts", "incidents"]) {
      check(now.charts[series], `no chart for ${series}`);
      check(now.charts[series].labels.includes("0"), `the ${series} chart has no 0 label`);
      check(now.charts[series].labels.some((l) => /^\d\d:\d\d$/.test(l)), `the ${series} chart has no bucket time: ${JSON.stringify(now.charts[series].labels)}`);
    }
    const fl = d.charts.series.failed_logins.reduce((a, b) => a + b, 0);
    check(now.charts.failed_logins.total === fl, `the failed-logins chart totals ${now.charts.failed_logins.total}, the API ${fl}`);
    check(d.charts.buckets.length === d.charts.series.events.length, "the API's buckets and series differ in length");
    // Two more refreshes, a second apart.
    const first = now.updated;
    const second = await eventually(async () => { const u = (await shown()).updated; return u !== first && u; }, 5_000);
    check(second, `the page did not refresh within 5 s (updated ${first})`);
    const third = await eventually(async () => { const u = (await shown()).updated; return u !== second && u; }, 5_000);
    check(third, `the page refreshed once, then not again within 5 s (updated ${second})`);
    check(/every 1 s/.test(await text("updated")), `the page says ${JSON.stringify(await text("updated"))}`);
  });

  await step(`a scripted brute force: ${BRUTE_FORCE_FAILURES} wrong passwords for ${TARGET}, all refused`, async () => {
    const answers = [];
    for (let i = 0; i < BRUTE_FORCE_FAILURES; i += 1) {
      const r = await api("POST", "/auth/login", { username: TARGET, password: `wrong-password-${i}` });
      answers.push(r.status);
    }
    // 401 until the account locks, then 423: every one is a failed login for the detector.
    check(answers.every((s) => s === 401 || s === 423), `the logins answered ${JSON.stringify(answers)}`);
    check(answers[0] === 401, `the first wrong password answered ${answers[0]}, not 401`);
    console.log(`     answers ${JSON.stringify(answers)}`);
  });

  await step("the dashboard shows the attack on its own: failed logins, the incident, the address, the charts", async () => {
    const want = (s) =>
      s.metrics.failed_logins >= before.metrics.failed_logins + BRUTE_FORCE_FAILURES &&
      s.metrics.security_incidents >= before.metrics.security_incidents + 1 &&
      s.addresses.length > 0 &&
      s.charts.failed_logins.bars > 0 && s.charts.incidents.bars > 0;
    const after = await eventually(async () => { const s = await shown(); return want(s) ? s : null; }, 30_000) || (await shown());
    const m = after.metrics;
    check(m.failed_logins >= before.metrics.failed_logins + BRUTE_FORCE_FAILURES,
      `failed_logins went from ${before.metrics.failed_logins} to ${m.failed_logins}, not up by ${BRUTE_FORCE_FAILURES}`);
    check(m.security_incidents >= before.metrics.security_incidents + 1,
      `security_incidents went from ${before.metrics.security_incidents} to ${m.security_incidents}: no incident opened`);
    check(m.brute_force_attempts >= before.metrics.brute_force_attempts + 1,
      `brute_force_attempts went from ${before.metrics.brute_force_attempts} to ${m.brute_force_attempts}`);
    check(m.unresolved_incidents >= 1, `unresolved incidents: ${m.unresolved_incidents}`);
    const bySeverity = Object.values(after.severity).reduce((a, b) => a + (b ?? 0), 0);
    check(bySeverity === m.unresolved_incidents, `the severities add up to ${bySeverity}, unresolved says ${m.unresolved_incidents}`);
    const loopback = after.addresses.find((a) => a.ip === "127.0.0.1");
    check(loopback && loopback.failures >= BRUTE_FORCE_FAILURES,
      `the suspicious addresses are ${JSON.stringify(after.addresses)}: 127.0.0.1 with ${BRUTE_FORCE_FAILURES}+ failures is missing`);
    check(loopback.text.includes("127.0.0.1"), `the address row reads ${JSON.stringify(loopback.text)}`);
    const chart = after.charts.failed_logins;
    check(chart.bars > 0 && chart.tallest > 10, `the failed-logins chart has ${chart.bars} bars, the tallest ${chart.tallest} px`);
    check(chart.total >= BRUTE_FORCE_FAILURES, `the failed-logins chart totals ${chart.total}`);
    check(chart.labels.includes(chart.peak.toLocaleString("en")) && chart.labels.includes("0"),
      `the failed-logins chart's y axis is not labelled 0 and its peak ${chart.peak}: ${JSON.stringify(chart.labels)}`);
    check(after.charts.incidents.bars > 0, "the incidents chart has no bar");
    console.log(`     after the attack: failed_logins ${m.failed_logins}, security_incidents ${m.security_incidents}, ` +
      `brute_force_attempts ${m.brute_force_attempts}, unresolved ${m.unresolved_incidents} ${JSON.stringify(after.severity)}`);
    await screenshot("after-attack", { name: "dashboard.png" });
  });

  await step("the range selector: the last hour, then 7 days, then 24 hours again", async () => {
    for (const range of [3600, 604800, 86400]) {
      await el("range").selectOption(String(range));
      const s = await eventually(async () => { const s = await shown(); return s.range === range ? s : null; });
      check(s, `the page did not switch to a ${range} s range`);
      check(s.metrics.failed_logins >= BRUTE_FORCE_FAILURES, `over ${range} s the page shows ${s.metrics.failed_logins} failed logins`);
      const labels = s.charts.failed_logins.labels;
      const dated = labels.some((l) => /^[A-Z][a-z]{2} \d{1,2} \d\d:\d\d$/.test(l));
      check(range > 86400 ? dated : !dated, `the ${range} s chart's labels: ${JSON.stringify(labels)}`);
      if (range === 604800) await screenshot("seven-days");
    }
  });

  await step("in a narrow window (380 px) nothing spills sideways and the charts are redrawn to fit", async () => {
    await page.setViewportSize({ width: 380, height: 800 });
    try {
      // Redrawn at the figure's width (not a wide drawing shrunk, with its labels too small to read).
      const fits = (c) => c.drawnWidth > 0 && Math.abs(c.drawnWidth - c.figureWidth) <= 1 && Math.abs(c.svgWidth - c.drawnWidth) <= 1;
      const s = await eventually(async () => {
        const s = await shown();
        return Object.values(s.charts).every(fits) ? s : null;
      });
      check(s, `the charts were not redrawn for the narrow window: ${JSON.stringify((await shown()).charts)}`);
      check(s.charts.failed_logins.bars > 0, "the failed-logins chart lost its bars");
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      check(overflow <= 0, `the page is ${overflow} px wider than a 380 px window`);
      await screenshot("narrow");
    } finally {
      await page.setViewportSize(VIEWPORT);
    }
  });

  await step("a token the server refuses (401) returns the page to the sign-in form", async () => {
    const mark = await statusMark();
    // A token with a broken signature: what an expired or revoked one looks like to the page.
    await page.evaluate(() => {
      const key = "palisade.dashboard.access_token";
      const t = sessionStorage.getItem(key);
      sessionStorage.setItem(key, t.slice(0, -4) + (t.endsWith("AAAA") ? "BBBB" : "AAAA"));
    });
    await page.waitForFunction(
      (mark) => window.__statusChanges > mark && !document.getElementById("signin").hidden, mark, { timeout: WAIT_MS },
    ).catch(() => {});
    check(await el("signin").isVisible(), "the sign-in form is not shown after a 401");
    check(await el("dashboard").isHidden(), "the dashboard is still shown after a 401");
    const s = await statusLine();
    check(/sign in again/i.test(s.text), `the status line says ${JSON.stringify(s.text)}`);
    check((await pageToken()) === null, "the refused token is still in sessionStorage");
    check((await shown()).metrics.failed_logins === null, "the numbers are still on the page after the 401");
    const refused = requests.filter((r) => r.path.startsWith("/monitoring/dashboard") && r.status === 401);
    check(refused.length > 0, "the page never got a 401");
    // Nothing more is asked with it.
    const count = requests.length;
    await page.waitForTimeout(2500);
    check(requests.length === count, `the page went on asking: ${JSON.stringify(requests.slice(count))}`);
    await screenshot("expired");
  }, { allowConsoleErrors: /status of 401/ });

  await step("signing in again with a backup code, then \"Sign out\" ends the session", async () => {
    await waitForStatus(await passwordStep(ADMIN), /^A second factor is needed\.$/, "the password step");
    await secondStep("backup_code", backupCodes[0]);
    await expectDashboardFor(ADMIN);
    const token = await pageToken();
    await waitForStatus(await press("signout-button"), /^Signed out\.$/, "signing out");
    check(await el("signin").isVisible(), "after signing out the sign-in form is not shown");
    check(await el("dashboard").isHidden() && await el("session").isHidden(), "after signing out the dashboard is still shown");
    check((await pageToken()) === null, "the token is still in sessionStorage after signing out");
    const logout = requests.filter((r) => r.path === "/auth/logout").at(-1);
    check(logout && logout.status >= 200 && logout.status < 300, `POST /auth/logout answered ${JSON.stringify(logout)}`);
    const count = requests.length;
    await page.waitForTimeout(2000);
    check(requests.length === count, `the page went on asking after signing out: ${JSON.stringify(requests.slice(count))}`);
    const after = await pageGet("/monitoring/dashboard?range=3600", token);
    check(after.status === 401, `the signed-out token still reads the dashboard (${after.status})`);
  }, { allowConsoleErrors: /status of 401/ });

  await step(`a non-administrator (${VIEWER}) sees "Administrators only" and no numbers`, async () => {
    await passwordStep(VIEWER);
    await page.waitForFunction(() => !document.getElementById("forbidden").hidden, undefined, { timeout: WAIT_MS }).catch(() => {});
    check(await el("forbidden").isVisible(), `the "Administrators only" message is not shown (status ${JSON.stringify((await statusLine()).text)})`);
    check(/^Administrators only$/.test(await page.locator("#forbidden h2").innerText()), "the message's heading is not \"Administrators only\"");
    check(await el("dashboard").isHidden(), "the dashboard is shown to a non-administrator");
    check((await text("who")) === VIEWER, `the page says signed in as ${JSON.stringify(await text("who"))}`);
    check(await el("signout-button").isVisible(), "a non-administrator cannot sign out");
    check((await shown()).metrics.failed_logins === null, "numbers are on the page for a non-administrator");
    const refused = requests.filter((r) => r.path.startsWith("/monitoring/dashboard")).at(-1);
    check(refused && refused.status === 403, `GET /monitoring/dashboard answered ${JSON.stringify(refused)}, not 403`);
    const count = requests.length;
    await page.waitForTimeout(2000);
    check(requests.length === count, `the page went on asking after the 403: ${JSON.stringify(requests.slice(count))}`);
    await screenshot("not-an-administrator");
    await waitForStatus(await press("signout-button"), /^Signed out\.$/, "signing out");
  }, { allowConsoleErrors: /status of 403/ });

  await step("no CSP violation was reported by the page", expectNoCspViolation);
}, {
  onFailure: () => console.log(`     the page's last API calls: ${JSON.stringify(requests.slice(-8))}`),
});
