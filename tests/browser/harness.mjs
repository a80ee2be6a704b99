// What the browser tests (passkeys.mjs, dashboard.mjs, report.mjs) share: the settings run.sh passes, headless
// Chromium started with a fresh profile, the steps (each asserts; the first failure stops the run; a
// console error or a CSP violation fails the step it happens in), screenshots, the page's status line
// and the last line, "browser: N passed, N failed". One run per process: the state is this module's.

import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

export const env = (name, fallback) => {
  const value = process.env[name] ?? fallback;
  if (value === undefined || value === "") throw new Error(`${name} is not set (run.sh sets it)`);
  return value;
};
export const BASE_URL = env("BASE_URL").replace(/\/$/, "");
export const CHROMIUM = env("CHROMIUM", "/usr/bin/chromium");
export const SCREENSHOTS = env("SCREENSHOT_DIR", new URL("../../target/browser-screenshots/", import.meta.url).pathname);
export const WAIT_MS = 15_000;

// The flags this machine's Chromium needs: no sandbox as root, no GPU, and no background traffic
// (the network is closed; Chromium's own connections would be refused or time out).
export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export class StepFailure extends Error {}
export function check(condition, message) {
  if (!condition) throw new StepFailure(message);
}

// ---- the run's state ----------------------------------------------------------------------------
let passed = 0;
let failed = 0;
let shot = 0;
export const consoleErrors = []; // { step, text } of console errors and uncaught page errors
let currentStep = "";
let expectedErrors = null; // a RegExp: console errors the current step expects (a refused request)
let page = null;
let context = null;
let profile = null;
let screenshotPrefix = "";

export async function step(name, body, { allowConsoleErrors } = {}) {
  currentStep = name;
  expectedErrors = allowConsoleErrors ?? null;
  const before = consoleErrors.length;
  const started = Date.now();
  try {
    await body();
    const fresh = consoleErrors.slice(before);
    check(fresh.length === 0, `console errors: ${fresh.map((e) => e.text).join(" | ")}`);
    passed += 1;
    console.log(`ok   ${name} (${Date.now() - started} ms)`);
  } catch (e) {
    failed += 1;
    console.log(`FAIL ${name}: ${e instanceof StepFailure ? e.message : e.stack || e}`);
    throw e;
  } finally {
    expectedErrors = null;
  }
}

// ---- the browser ---------------------------------------------------------------------------------
// Starts Chromium with `viewport` and opens its page; returns { context, page, requests }, where
// `requests` gathers { method, path, status } of the page's calls for which `requestPath(url)` gives
// a path (null: not recorded). Screenshots are named `${prefix}NN-label.png`.
export async function launch({ viewport, prefix = "", requestPath }) {
  screenshotPrefix = prefix;
  // A hung browser or server must not hang CI: the whole run gets three minutes (it takes well
  // under one).
  setTimeout(() => {
    console.log(`FAIL the run took over 3 minutes (in step: ${currentStep})`);
    console.log(`browser: ${passed} passed, ${failed + 1} failed`);
    process.exit(1);
  }, 180_000).unref();

  profile = mkdtempSync(join(tmpdir(), "palisade-chromium-"));
  mkdirSync(SCREENSHOTS, { recursive: true });

  // playwright-core's launch() makes its own fresh profile directory and refuses --user-data-dir in
  // args; launchPersistentContext takes ours, so the profile is new and removed afterwards.
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport,
    });
  } catch (e) {
    rmSync(profile, { recursive: true, force: true });
    console.log(`FAIL starting ${CHROMIUM}: ${e.message}`);
    console.log("browser: 0 passed, 1 failed");
    process.exit(1);
  }
  page = context.pages()[0] ?? (await context.newPage());
  const requests = [];

  page.on("console", (message) => {
    if (message.type() !== "error") return;
    const where = message.location()?.url;
    const text = message.text() + (where ? ` (${where})` : "");
    // The browser asks for /favicon.ico by itself and the server has none: not the page's doing.
    if (where === `${BASE_URL}/favicon.ico` && /status of 404/.test(text)) return;
    // A CSP violation is never expected; a refused API call is, in the steps that provoke one.
    const expected = expectedErrors && !/Content Security Policy/i.test(text) && expectedErrors.test(text);
    if (!expected) consoleErrors.push({ step: currentStep, text });
  });
  page.on("pageerror", (error) => consoleErrors.push({ step: currentStep, text: `uncaught: ${error.message}` }));
  page.on("response", (response) => {
    const url = new URL(response.url());
    const path = url.origin === BASE_URL ? requestPath(url) : null;
    if (path) requests.push({ method: response.request().method(), path, status: response.status() });
  });
  // Violations reported by the page itself too, in case a console message is phrased differently;
  // and a count of the status line's changes, so a wait sees the answer to the action just taken and
  // not a message left over from the one before.
  await page.addInitScript(() => {
    window.__cspViolations = [];
    window.__statusChanges = 0;
    document.addEventListener("securitypolicyviolation", (e) =>
      window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"}`));
    document.addEventListener("DOMContentLoaded", () => {
      // Pages without a status line (the printable report) have nothing to observe.
      const status = document.getElementById("status");
      if (!status) return;
      new MutationObserver(() => { window.__statusChanges += 1; })
        .observe(status, { childList: true, characterData: true, subtree: true, attributes: true });
    });
  });
  return { context, page, requests };
}

export async function screenshot(label, { name } = {}) {
  shot += 1;
  const file = join(SCREENSHOTS, name ?? `${screenshotPrefix}${String(shot).padStart(2, "0")}-${label}.png`);
  await page.screenshot({ path: file, fullPage: true });
  console.log(`     screenshot ${file}`);
}

// ---- the page's status line (#status; class "error" on an error) ---------------------------------
export const statusLine = async () => ({
  text: ((await page.locator("#status").textContent()) ?? "").replace(/\s+/g, " ").trim(),
  error: (await page.locator("#status").getAttribute("class")) === "error",
});

// The status line's change count: take it before an action, and wait for a change after it.
export const statusMark = () => page.evaluate(() => window.__statusChanges);

// Clicks `#id` and returns the status mark from before the click.
export async function press(id) {
  const mark = await statusMark();
  await page.locator(`#${id}`).click();
  return mark;
}

// Waits until the status line, changed since `mark`, says `want` (a RegExp) or shows an error;
// fails on the other.
export async function waitForStatus(mark, want, what) {
  await page.waitForFunction(
    ({ mark, source }) => {
      const s = document.getElementById("status");
      return window.__statusChanges > mark && (s.className === "error" || new RegExp(source).test(s.textContent));
    },
    { mark, source: want.source },
    { timeout: WAIT_MS },
  ).catch(() => {});
  const s = await statusLine();
  check(!s.error && want.test(s.text), `${what}: the status line says ${JSON.stringify(s.text)}${s.error ? " (an error)" : ""}`);
}

export async function expectNoCspViolation() {
  const violations = await page.evaluate(() => window.__cspViolations);
  check(Array.isArray(violations) && violations.length === 0, `CSP violations: ${JSON.stringify(violations)}`);
}

// Runs the steps in `body`; after a failure (the failing step printed why; the later steps depend on
// it and are not run), a screenshot, the status line, the console errors and `onFailure`'s report.
// Then closes the browser, prints "browser: N passed, N failed" and sets the exit status.
export async function run(body, { onFailure } = {}) {
  try {
    await body();
  } catch {
    await screenshot("failure").catch(() => {});
    const s = await statusLine().catch(() => null);
    if (s) console.log(`     the page's status line: ${JSON.stringify(s.text)}`);
    for (const e of consoleErrors) console.log(`     console (${e.step}): ${e.text}`);
    if (onFailure) onFailure();
  } finally {
    await context.close().catch(() => {});
    rmSync(profile, { recursive: true, force: true });
  }
  console.log(`browser: ${passed} passed, ${failed} failed`);
  process.exitCode = failed === 0 && passed > 0 ? 0 : 1;
}
