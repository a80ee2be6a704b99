// The printable compliance report (/compliance/reports/{standard}?format=html) in a real browser:
// headless Chromium driven by playwright-core, against a real Palisade. An administrator's token is
// sent as a header (the page has no sign-in of its own: it is fetched by an API client or printed by
// `palisade compliance report --format html`). The page must render every control the JSON report
// has, with the same score, load its style sheet under its strict CSP (no violation, no script),
// print to PDF, and say "technical control checks", never "certified" or "compliant". Without the
// token the answer is a 401 problem, not a page.
// Started by run.sh, which serves Palisade and makes PALISADE_REPORT_ADMIN_USERNAME an administrator
// with `palisade user grant-admin`; it passes BASE_URL and PALISADE_PASSWORD.
//
// Exit status 0 only when every step passed; the last line is "browser: N passed, N failed".

import { statSync } from "node:fs";
import { join } from "node:path";
import { BASE_URL, SCREENSHOTS, check, env, expectNoCspViolation, launch, run, screenshot, step } from "./harness.mjs";

const ADMIN = env("PALISADE_REPORT_ADMIN_USERNAME");
const PASSWORD = env("PALISADE_PASSWORD");
const { page, requests } = await launch({
  viewport: { width: 1200, height: 900 },
  prefix: "report-",
  requestPath: (url) => (url.pathname.startsWith("/compliance/") ? url.pathname : null),
});

await run(async () => {
  let token;
  let json;
  await step("the administrator signs in from the browser and gives a consent", async () => {
    // From the page itself: the session is bound to the client that opened it (a token replayed with
    // another user agent is refused as a hijack), so the browser must be the one that signs in.
    await page.goto(`${BASE_URL}/health`);
    const call = (method, path, body, bearer) => page.evaluate(async ({ method, path, body, bearer }) => {
      const headers = { "Content-Type": "application/json" };
      if (bearer) headers.Authorization = `Bearer ${bearer}`;
      const response = await fetch(path, { method, headers, body: body ? JSON.stringify(body) : undefined });
      return { status: response.status, data: await response.json() };
    }, { method, path, body, bearer });
    const login = await call("POST", "/auth/login", { username: ADMIN, password: PASSWORD });
    check(login.status === 200 && login.data.access_token, `login: ${login.status} ${JSON.stringify(login.data)}`);
    token = login.data.access_token;
    const consent = await call("POST", "/compliance/consents",
      { type: "data_processing", text: "We process your account data to run the service.", version: "2026-12" }, token);
    check(consent.status === 201, `consent: ${consent.status} ${JSON.stringify(consent.data)}`);
    const report = await call("GET", "/compliance/reports/GDPR", undefined, token);
    check(report.status === 200 && Array.isArray(report.data.controls), `JSON report: ${report.status}`);
    json = report.data;
    const consentControl = json.controls.find((c) => c.id === "consent_coverage");
    check(consentControl && /1/.test(consentControl.evidence.measured), `consent coverage: ${JSON.stringify(consentControl)}`);
  });

  await step("the page renders every control of the JSON report with its score", async () => {
    await page.setExtraHTTPHeaders({ Authorization: `Bearer ${token}` });
    const response = await page.goto(`${BASE_URL}/compliance/reports/GDPR?format=html`);
    check(response.status() === 200, `status ${response.status()}`);
    check(/^text\/html/.test(response.headers()["content-type"] ?? ""), `content type ${response.headers()["content-type"]}`);
    const h1 = await page.locator("h1").textContent();
    check(/GDPR/.test(h1) && /technical control checks/i.test(h1), `heading: ${h1}`);
    const articles = await page.locator("article.control").count();
    check(articles === json.controls.length, `${articles} controls on the page, ${json.controls.length} in the JSON`);
    for (const control of json.controls) {
      check(await page.locator(`article[id="${control.id}"]`).count() === 1, `control ${control.id} missing`);
    }
    const score = await page.locator(".score").textContent();
    check(score.trim() === `${json.score_percent}%`, `score ${score} vs ${json.score_percent}%`);
    const body = (await page.locator("body").textContent()).toLowerCase();
    check(!/\bcertified\b|\bcompliant\b/.test(body.replace(/not a certification/g, "")), "the page claims certification or compliance");
    await screenshot("gdpr");
  });

  await step("its style sheet loads under the strict CSP and nothing else does", async () => {
    await expectNoCspViolation();
    const css = requests.filter((r) => r.path === "/compliance/report.css");
    check(css.length === 1 && css[0].status === 200, `style sheet: ${JSON.stringify(css)}`);
    const font = await page.locator("h1").evaluate((el) => getComputedStyle(el).fontFamily);
    check(!/^"?Times/.test(font), `the style sheet is not applied (h1 font ${font})`);
    check(await page.locator("script").count() === 0, "the page has a script");
    const csp = (await page.goto(`${BASE_URL}/compliance/reports/GDPR?format=html`)).headers()["content-security-policy"];
    check(/default-src 'none'/.test(csp ?? ""), `CSP ${csp}`);
  });

  await step("it prints to PDF", async () => {
    await page.emulateMedia({ media: "print" });
    const file = join(SCREENSHOTS, "report-gdpr.pdf");
    await page.pdf({ path: file, format: "A4", printBackground: true });
    const size = statSync(file).size;
    check(size > 10_000, `the PDF is ${size} bytes`);
    await page.emulateMedia({ media: "screen" });
  });

  await step("without the token it is a 401 problem, not a page", async () => {
    await page.setExtraHTTPHeaders({});
    const response = await page.goto(`${BASE_URL}/compliance/reports/GDPR?format=html`);
    check(response.status() === 401, `status ${response.status()}`);
    check(/problem\+json/.test(response.headers()["content-type"] ?? ""), `content type ${response.headers()["content-type"]}`);
  }, { allowConsoleErrors: /401/ });
});
