// The passkey page (/passkeys) in a real browser: headless Chromium with the DevTools protocol's
// virtual authenticator (a CTAP2 platform authenticator with resident keys and user verification),
// driven by playwright-core. Every step asserts what a broken page or server would get wrong; the
// first failure stops the run. Started by run.sh, which serves Palisade on http://localhost:<port>
// and registers the user; it passes BASE_URL, PALISADE_USERNAME, PALISADE_PASSWORD and
// PALISADE_USER_ID.
//
// Exit status 0 only when every step passed; the last line is "browser: N passed, N failed".

import {
  BASE_URL, WAIT_MS, check, env, expectNoCspViolation, launch, press, run, screenshot, statusLine, statusMark, step, waitForStatus,
} from "./harness.mjs";

const USERNAME = env("PALISADE_USERNAME");
const PASSWORD = env("PALISADE_PASSWORD");
const USER_ID = process.env.PALISADE_USER_ID || null;

// ---- the page ------------------------------------------------------------------------------------
const { context, page, requests } = await launch({
  viewport: { width: 900, height: 900 },
  requestPath: (url) => (url.pathname.startsWith("/auth/") ? url.pathname : null),
});

const cdp = await context.newCDPSession(page);
let authenticatorId = null;

const el = (id) => page.locator(`#${id}`);
const text = async (id) => ((await el(id).textContent()) ?? "").trim();
const amr = async () => (await text("amr")).split(/\s+/).filter(Boolean);
const credentials = async () => (await cdp.send("WebAuthn.getCredentials", { authenticatorId })).credentials;
const listItems = async () => page.locator("#passkey-list li").allTextContents();

// Polls `probe` until it returns true or WAIT_MS pass.
async function eventually(probe) {
  const deadline = Date.now() + WAIT_MS;
  while (Date.now() < deadline) {
    if (await probe()) return true;
    await page.waitForTimeout(100);
  }
  return probe();
}

// Waits for the status line, changed since `mark`, to show an error; fails if the page signs in
// instead.
async function waitForError(mark, what) {
  await page.waitForFunction(
    (mark) => window.__statusChanges > mark &&
      (document.getElementById("status").className === "error" || !document.getElementById("account").hidden),
    mark,
    { timeout: WAIT_MS },
  ).catch(() => {});
  const s = await statusLine();
  check(await el("account").isHidden(), `${what}: the page signed in (status ${JSON.stringify(s.text)})`);
  check(s.error, `${what}: no error shown; the status line says ${JSON.stringify(s.text)}`);
  check(await el("signin").isVisible(), `${what}: the sign-in section is not shown`);
  return s.text;
}

async function expectSignedInAs(mark, user) {
  await waitForStatus(mark, /^Signed in\.$/, "signing in");
  check(await el("account").isVisible(), "the account section is not shown");
  check(await el("signin").isHidden(), "the sign-in section is still shown");
  const heading = ((await page.locator("#account h2").textContent()) ?? "").replace(/\s+/g, " ").trim();
  check(heading === `Signed in as ${user}`, `the heading says ${JSON.stringify(heading)}, not "Signed in as ${user}"`);
}

function expectAmr(values, { has = [], lacks = [] }) {
  for (const v of has) check(values.includes(v), `amr ${JSON.stringify(values)} lacks "${v}"`);
  for (const v of lacks) check(!values.includes(v), `amr ${JSON.stringify(values)} has "${v}"`);
}

async function signOut() {
  await waitForStatus(await press("signout-button"), /^Signed out\.$/, "signing out");
  check(await el("signin").isVisible(), "after signing out the sign-in section is not shown");
  check(await el("account").isHidden(), "after signing out the account section is still shown");
}

async function passwordSignIn() {
  await el("username").fill(USERNAME);
  await el("password").fill(PASSWORD);
  return press("password-button");
}

async function passkeySignIn() {
  // Passwordless: nothing typed; the authenticator finds the account's discoverable credential.
  await el("username").fill("");
  await el("password").fill("");
  const before = requests.length;
  return { mark: await press("passkey-signin-button"), before };
}

// The passkey list once it shows `count` entries that all pass `test` (it is filled after the
// status line says "Signed in.", and a list from before a sign-out stays until then).
async function listOnce(count, test = () => true) {
  let items = [];
  await eventually(async () => {
    items = await listItems();
    return items.length === count && items.every(test);
  });
  return items;
}

// ---- the steps -----------------------------------------------------------------------------------
let credentialId = null;
await run(async () => {
  await step("the page loads on localhost with its CSP, and the browser has WebAuthn", async () => {
    const response = await page.goto(`${BASE_URL}/passkeys`);
    check(response && response.status() === 200, `GET /passkeys answered ${response && response.status()}`);
    const csp = response.headers()["content-security-policy"] ?? "";
    check(/default-src 'none'/.test(csp) && /script-src 'self'/.test(csp), `the CSP header is ${JSON.stringify(csp)}`);
    check(new URL(page.url()).hostname === "localhost", `the page is on ${page.url()}, not localhost`);
    check(await page.evaluate(() => window.isSecureContext), "http://localhost is not a secure context here");
    check(await page.evaluate(() => typeof window.PublicKeyCredential === "function"), "window.PublicKeyCredential is missing");
    await page.waitForLoadState("load");
    // The script ran (it says so on the status line when the browser lacks passkeys), and the
    // style sheet applied under the CSP.
    const s = await statusLine();
    check(!s.error, `the page shows an error on load: ${JSON.stringify(s.text)}`);
    check(await el("signin").isVisible(), "the sign-in section is not shown");
    check(await el("account").isHidden(), "the account section is shown before signing in");
    check(await el("code-form").isHidden(), "the second-step form is shown before signing in");
    const width = await page.evaluate(() => getComputedStyle(document.querySelector("main")).maxWidth);
    check(width !== "none", "passkeys.css did not apply (main has no max-width)");
    await screenshot("page-loaded");
  });

  await step("a virtual CTAP2 platform authenticator (resident keys, user verification) is attached", async () => {
    await cdp.send("WebAuthn.enable", { enableUI: false });
    const added = await cdp.send("WebAuthn.addVirtualAuthenticator", {
      options: {
        protocol: "ctap2",
        transport: "internal",
        hasResidentKey: true,
        hasUserVerification: true,
        isUserVerified: true,
        automaticPresenceSimulation: true,
      },
    });
    authenticatorId = added.authenticatorId;
    check(authenticatorId, "no authenticator id");
    check(
      await page.evaluate(() => PublicKeyCredential.isUserVerifyingPlatformAuthenticatorAvailable()),
      "the browser does not report a user-verifying platform authenticator",
    );
    check((await credentials()).length === 0, "the new authenticator already holds credentials");
  });

  await step("signing in with the password shows the account, amr has pwd", async () => {
    await expectSignedInAs(await passwordSignIn(), USERNAME);
    expectAmr(await amr(), { has: ["pwd"], lacks: ["hwk", "mfa"] });
    await eventually(async () => (await text("passkey-list")) === "None yet.");
    check((await text("passkey-list")) === "None yet.", `the passkey list says ${JSON.stringify(await text("passkey-list"))}`);
    await screenshot("signed-in-with-password");
  });

  await step("adding a passkey \"Virtual key\" lists it, and the authenticator holds one resident credential", async () => {
    await el("passkey-name").fill("Virtual key");
    await waitForStatus(await press("register-button"), /^Passkey added\.$/, "adding a passkey");
    const items = await listItems();
    check(items.length === 1, `the list has ${items.length} entries: ${JSON.stringify(items)}`);
    check(items[0].startsWith("Virtual key — added "), `the entry reads ${JSON.stringify(items[0])}`);
    check(items[0].includes("never used"), `a new passkey should read "never used": ${JSON.stringify(items[0])}`);
    const held = await credentials();
    check(held.length === 1, `the authenticator holds ${held.length} credentials, not 1`);
    const [credential] = held;
    check(credential.isResidentCredential === true, "the credential is not resident (discoverable)");
    check(credential.rpId === "localhost", `the credential's rpId is ${JSON.stringify(credential.rpId)}, not "localhost"`);
    if (USER_ID) {
      const handle = Buffer.from(credential.userHandle ?? "", "base64").toString("hex");
      check(handle === USER_ID.replace(/-/g, ""), `the user handle ${handle} is not the user id ${USER_ID}`);
    }
    credentialId = credential.credentialId;
    const finish = requests.filter((r) => r.path === "/auth/webauthn/register/finish");
    check(finish.length === 1 && finish[0].status === 201, `register/finish answered ${JSON.stringify(finish)}`);
    await screenshot("passkey-added");
  });

  await step("signing out shows the sign-in form again", signOut);

  await step("\"Sign in with a passkey\" with no username signs in the same user: amr hwk user mfa, no pwd", async () => {
    const { mark } = await passkeySignIn();
    await expectSignedInAs(mark, USERNAME);
    expectAmr(await amr(), { has: ["hwk", "user", "mfa"], lacks: ["pwd"] });
    const items = await listOnce(1, (item) => item.includes("last used "));
    check(items.length === 1 && items[0].includes("last used "), `the list should say "last used": ${JSON.stringify(items)}`);
    const [credential] = await credentials();
    check(credential.signCount > 0, `the authenticator's sign counter is ${credential.signCount} after a login`);
    await screenshot("signed-in-with-passkey");
  });

  await step("signing out again", signOut);

  await step("the password now needs a second step that offers webauthn", async () => {
    await waitForStatus(await passwordSignIn(), /^A second factor is needed\.$/, "the password step");
    check(await el("code-form").isVisible(), "the second-step form is not shown");
    check(await el("account").isHidden(), "the page signed in on the password alone");
    const methods = (await text("code-methods")).split(/,\s*/);
    check(methods.includes("webauthn"), `the second step offers ${JSON.stringify(methods)}, not webauthn`);
    check(await el("second-factor-passkey-button").isVisible(), "the \"Use a passkey\" button is hidden");
    await screenshot("second-step");
  });

  await step("\"Use a passkey\" completes the login: amr has pwd and hwk, the counter moved on", async () => {
    const counterBefore = (await credentials())[0].signCount;
    await expectSignedInAs(await press("second-factor-passkey-button"), USERNAME);
    expectAmr(await amr(), { has: ["pwd", "hwk", "user", "mfa"] });
    const counterAfter = (await credentials())[0].signCount;
    check(counterAfter > counterBefore, `the sign counter went from ${counterBefore} to ${counterAfter}`);
    check(await el("code-form").isHidden(), "the second-step form is still shown");
    const finish = requests.filter((r) => r.path === "/auth/webauthn/login/finish").at(-1);
    check(finish && finish.status === 200, `login/finish answered ${JSON.stringify(finish)}`);
    await listOnce(1);
    await screenshot("signed-in-with-password-and-passkey");
  });

  await step("signing out before the user-verification checks", signOut);

  await step("with user verification failing, the passkey sign-in fails and the page stays signed out", async () => {
    await cdp.send("WebAuthn.setUserVerified", { authenticatorId, isUserVerified: false });
    const { mark, before } = await passkeySignIn();
    const message = await waitForError(mark, "a passkey sign-in without user verification");
    const calls = requests.slice(before).map((r) => `${r.path} ${r.status}`);
    // Who refused: the browser (no login/finish sent) or the server (login/finish answered 401).
    const reached = calls.some((c) => c.startsWith("/auth/webauthn/login/finish"));
    console.log(`     refused by ${reached ? "the server" : "the browser"}: ${JSON.stringify(message)}; calls ${JSON.stringify(calls)}`);
    check(!reached || calls.includes("/auth/webauthn/login/finish 401"), `the server answered ${JSON.stringify(calls)}`);
    await screenshot("refused-without-user-verification");
  }, { allowConsoleErrors: /status of 401/ });

  await step("the server itself refuses an answer without user verification (options rewritten to UV discouraged)", async () => {
    // The browser would refuse first; rewrite the server's options so it does not ask the
    // authenticator for verification. The answer is then signed with UV=0, and only the server
    // stands between it and a session.
    let asked = null;
    await page.route("**/auth/webauthn/login/start", async (route) => {
      const response = await route.fetch();
      const body = await response.json();
      asked = body.options?.publicKey?.userVerification ?? null;
      if (body.options?.publicKey) body.options.publicKey.userVerification = "discouraged";
      await route.fulfill({ response, json: body });
    });
    try {
      const { mark, before } = await passkeySignIn();
      const message = await waitForError(mark, "a passkey answer without user verification");
      check(asked === "required", `the server's options ask for userVerification ${JSON.stringify(asked)}, not "required"`);
      const finish = requests.slice(before).find((r) => r.path === "/auth/webauthn/login/finish");
      check(finish, `the browser sent no answer (calls ${JSON.stringify(requests.slice(before))}): the server's check went untested`);
      check(finish.status === 401, `login/finish answered ${finish.status} to an answer without user verification, not 401`);
      console.log(`     the server answered 401: ${JSON.stringify(message)}`);
      await screenshot("server-refused-without-user-verification");
    } finally {
      await page.unroute("**/auth/webauthn/login/start");
      await cdp.send("WebAuthn.setUserVerified", { authenticatorId, isUserVerified: true });
    }
  }, { allowConsoleErrors: /status of 401/ });

  await step("with verification back, the passkey signs in again (the refusals did not lock it)", async () => {
    const { mark } = await passkeySignIn();
    await expectSignedInAs(mark, USERNAME);
    expectAmr(await amr(), { has: ["hwk", "user", "mfa"], lacks: ["pwd"] });
    await listOnce(1);
  });

  await step("removing the passkey empties the list; the key no longer signs in, the password alone does", async () => {
    const item = page.locator("#passkey-list li", { hasText: "Virtual key" });
    const mark = await statusMark();
    await item.getByRole("button", { name: "Remove" }).click();
    await waitForStatus(mark, /^Passkey removed\.$/, "removing the passkey");
    check((await text("passkey-list")) === "None yet.", `the list says ${JSON.stringify(await text("passkey-list"))}`);
    await screenshot("passkey-removed");
    await signOut();
    // The authenticator still holds the key; the server must not accept it any more.
    check((await credentials()).some((c) => c.credentialId === credentialId), "the authenticator lost its credential");
    const { mark: again, before } = await passkeySignIn();
    await waitForError(again, "a removed passkey");
    const finish = requests.slice(before).find((r) => r.path === "/auth/webauthn/login/finish");
    check(finish && finish.status === 401, `login/finish answered ${JSON.stringify(finish)} for a removed passkey`);
    await expectSignedInAs(await passwordSignIn(), USERNAME);
    expectAmr(await amr(), { has: ["pwd"], lacks: ["hwk", "mfa"] });
  }, { allowConsoleErrors: /status of 401/ });

  await step("no CSP violation was reported by the page", expectNoCspViolation);
});
