// The OAuth provider's browser pages (/oauth2/authorize's sign-in and consent, the form_post answer,
// /oauth2/logout) in a real browser: headless Chromium driven by playwright-core, against a real
// Palisade, for a relying party served here by node on another loopback port (another origin). The
// relying party ("Shop", registered by run.sh with `palisade client create`) records what arrives at
// its redirect URI (/cb: a GET query, or a POSTed form for response_mode=form_post) and its
// post-logout redirect URI (/bye), and redeems each code at /oauth2/token itself, with its secret
// (HTTP Basic) and the PKCE verifier made here, so a code that arrives is proved good.
// Started by run.sh, which serves Palisade and registers PALISADE_OAUTH_USERNAME; it passes BASE_URL,
// PALISADE_PASSWORD, OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET and OAUTH_RP_PORT.
//
// Exit status 0 only when every step passed; the last line is "browser: N passed, N failed".

import { createHash, createPublicKey, randomBytes, verify } from "node:crypto";
import { createServer } from "node:http";
import { join } from "node:path";
import { BASE_URL, SCREENSHOTS, WAIT_MS, check, env, expectNoCspViolation, launch, run, screenshot, step } from "./harness.mjs";

const USERNAME = env("PALISADE_OAUTH_USERNAME");
const PASSWORD = env("PALISADE_PASSWORD");
const CLIENT_ID = env("OAUTH_CLIENT_ID");
const CLIENT_SECRET = env("OAUTH_CLIENT_SECRET");
const RP_PORT = Number(env("OAUTH_RP_PORT"));
// The server listens on 127.0.0.1; node's own requests go there directly (localhost may be ::1 first).
const API_URL = BASE_URL.replace("://localhost:", "://127.0.0.1:");
// The relying party as the browser knows it: the origin its redirect URIs were registered with.
const RP_URL = `http://localhost:${RP_PORT}`;
const REDIRECT_URI = `${RP_URL}/cb`;
const POST_LOGOUT_URI = `${RP_URL}/bye`;
const SCOPE = "openid profile";

const b64url = (bytes) => Buffer.from(bytes).toString("base64url");
const fromB64url = (text) => Buffer.from(text, "base64url");
const escapeHtml = (s) => String(s).replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;");
const squash = (s) => (s ?? "").replace(/\s+/g, " ").trim();

// ---- the relying party ---------------------------------------------------------------------------
const flows = new Map(); // state -> { verifier, nonce }: the authorization requests sent
const arrivals = []; // { method, path, params, contentType, exchange }: what reached /cb and /bye
let frameSource = null; // the address /frame puts in its iframe

function basicAuth() {
  // RFC 6749 §2.3.1: id and secret form-urlencoded, then Basic.
  const encode = (s) => encodeURIComponent(s).replace(/%20/g, "+");
  return `Basic ${Buffer.from(`${encode(CLIENT_ID)}:${encode(CLIENT_SECRET)}`).toString("base64")}`;
}

async function token(form) {
  const response = await fetch(`${API_URL}/oauth2/token`, {
    method: "POST",
    headers: { Authorization: basicAuth(), "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(form).toString(),
  });
  const text = await response.text();
  let body;
  try { body = JSON.parse(text); } catch { body = text; }
  return { status: response.status, body, cacheControl: response.headers.get("cache-control") };
}

// What the relying party does with a code: redeem it with the verifier of the request whose state
// came back. Nothing is redeemed for a state it never sent.
async function redeem(params) {
  const flow = flows.get(params.state);
  if (!params.code || !flow) return null;
  return token({ grant_type: "authorization_code", code: params.code, redirect_uri: REDIRECT_URI, code_verifier: flow.verifier });
}

function htmlPage(title, body) {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head><body>${body}</body></html>`;
}

const rp = createServer((request, response) => {
  const chunks = [];
  request.on("data", (c) => chunks.push(c));
  request.on("end", async () => {
    try {
      const url = new URL(request.url, RP_URL);
      const send = (status, html) => {
        response.writeHead(status, { "Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store" });
        response.end(html);
      };
      if (url.pathname === "/favicon.ico") {
        response.writeHead(204).end();
      } else if (url.pathname === "/cb" || url.pathname === "/bye") {
        const contentType = request.headers["content-type"] ?? null;
        const params = Object.fromEntries(request.method === "POST"
          ? new URLSearchParams(Buffer.concat(chunks).toString("utf8"))
          : url.searchParams);
        const arrival = { method: request.method, path: url.pathname, query: url.search, params, contentType, exchange: null };
        if (url.pathname === "/cb") arrival.exchange = await redeem(params);
        arrivals.push(arrival);
        const result = url.pathname === "/bye"
          ? "<h1>Signed out of Shop</h1>"
          : arrival.exchange?.status === 200 ? "<h1>Signed in to Shop</h1>" : `<h1>Shop could not sign you in</h1>`;
        send(200, htmlPage("Shop", `${result}<p id="arrived">${escapeHtml(request.method)} ${escapeHtml(url.pathname)}</p>`));
      } else if (url.pathname === "/frame" && frameSource) {
        send(200, htmlPage("Shop framing Palisade",
          `<h1>Shop</h1><iframe id="frame" src="${escapeHtml(frameSource)}" width="600" height="500"></iframe>`));
      } else {
        send(404, htmlPage("Not found", "<h1>Not found</h1>"));
      }
    } catch (e) {
      response.writeHead(500).end(String(e));
    }
  });
});
await new Promise((resolve, reject) => rp.once("error", reject).listen(RP_PORT, "127.0.0.1", resolve));

// A fresh authorization request: PKCE S256, state and nonce; returns its URL and what the relying
// party keeps.
function authorization(extra = {}) {
  const verifier = b64url(randomBytes(32));
  const flow = { verifier, state: b64url(randomBytes(16)), nonce: b64url(randomBytes(16)) };
  flows.set(flow.state, flow);
  const query = new URLSearchParams({
    response_type: "code", client_id: CLIENT_ID, redirect_uri: REDIRECT_URI, scope: SCOPE,
    state: flow.state, nonce: flow.nonce,
    code_challenge: b64url(createHash("sha256").update(verifier).digest()), code_challenge_method: "S256",
    ...extra,
  });
  return { ...flow, url: `${BASE_URL}/oauth2/authorize?${query}` };
}

// An ID token's claims once its signature checks with the server's published key (JWKS).
let jwks = null;
async function idTokenClaims(jwt) {
  const [h, p, s] = jwt.split(".");
  const header = JSON.parse(fromB64url(h));
  jwks ??= await (await fetch(`${API_URL}/.well-known/jwks.json`)).json();
  const jwk = jwks.keys.find((k) => k.kid === header.kid) ?? (jwks.keys.length === 1 ? jwks.keys[0] : null);
  check(jwk, `no key ${header.kid} in the JWKS`);
  const key = createPublicKey({ key: jwk, format: "jwk" });
  const data = Buffer.from(`${h}.${p}`);
  const good = header.alg === "EdDSA" ? verify(null, data, key, fromB64url(s))
    : header.alg === "ES256" ? verify("sha256", data, { key, dsaEncoding: "ieee-p1363" }, fromB64url(s))
    : header.alg === "RS256" ? verify("sha256", data, key, fromB64url(s))
    : false;
  check(good, `the ID token's signature (${header.alg}) does not verify with the JWKS`);
  return JSON.parse(fromB64url(p));
}

// Checks what reached /cb for `flow` (sent as `method`) and the relying party's redemption of it;
// returns the tokens.
async function expectCode(arrival, flow, method) {
  check(arrival, "nothing arrived at the relying party's /cb");
  check(arrival.method === method, `the answer came by ${arrival.method}, not ${method}`);
  const { code, state, iss, error } = arrival.params;
  check(!error, `the relying party got error=${error} (${arrival.params.error_description})`);
  check(code && code.length >= 40, `code ${JSON.stringify(code)}`);
  check(state === flow.state, `state ${JSON.stringify(state)}, sent ${JSON.stringify(flow.state)}`);
  check(iss === BASE_URL, `iss ${JSON.stringify(iss)}, not ${BASE_URL}`);
  const exchange = arrival.exchange;
  check(exchange?.status === 200, `the token endpoint answered the relying party ${exchange?.status} ${JSON.stringify(exchange?.body)}`);
  const tokens = exchange.body;
  check(tokens.token_type === "Bearer" && tokens.access_token && tokens.id_token && tokens.refresh_token,
    `the token answer lacks a token: ${Object.keys(tokens).join(", ")}`);
  check(tokens.scope?.split(" ").sort().join(" ") === "openid profile", `scope ${JSON.stringify(tokens.scope)}`);
  check(/no-store/.test(exchange.cacheControl ?? ""), `the token answer's Cache-Control is ${exchange.cacheControl}`);
  const claims = await idTokenClaims(tokens.id_token);
  check(claims.iss === BASE_URL, `the ID token's iss is ${claims.iss}`);
  check([].concat(claims.aud).includes(CLIENT_ID), `the ID token's aud is ${JSON.stringify(claims.aud)}`);
  check(claims.nonce === flow.nonce, `the ID token's nonce is ${JSON.stringify(claims.nonce)}, sent ${flow.nonce}`);
  check(Array.isArray(claims.amr) && claims.amr.includes("pwd"), `the ID token's amr is ${JSON.stringify(claims.amr)}`);
  check(Number.isInteger(claims.auth_time), `the ID token's auth_time is ${claims.auth_time}`);
  return { ...tokens, claims };
}

async function userinfo(accessToken) {
  const response = await fetch(`${API_URL}/oauth2/userinfo`, { headers: { Authorization: `Bearer ${accessToken}` } });
  return { status: response.status, body: response.status === 200 ? await response.json() : await response.text() };
}

// Waits until the browser shows the relying party's `path` and one more answer than `before` has
// reached it (exactly one); returns that answer.
async function landOnRelyingParty(path, before) {
  const count = before + 1;
  await page.waitForURL((url) => url.origin === RP_URL && url.pathname === path, { timeout: WAIT_MS });
  const deadline = Date.now() + WAIT_MS;
  while (arrivals.length < count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  check(arrivals.length === count, `${arrivals.length} answers reached the relying party, expected ${count}`);
  check(arrivals[before].path === path, `the answer reached ${arrivals[before].path}, not ${path}`);
  return arrivals[before];
}

// ---- the pages -----------------------------------------------------------------------------------
const { context, page, requests } = await launch({
  viewport: { width: 1000, height: 760 },
  prefix: "oauth-",
  requestPath: (url) => (url.pathname.startsWith("/oauth2/") ? url.pathname : null),
});
page.setDefaultTimeout(WAIT_MS);

const heading = async () => squash(await page.locator("h1").first().textContent());
const mainText = async () => squash(await page.locator("main").innerText());

// The look of a page of the flow: its style sheet applied (a button with a background and white text
// instead of the browser's grey one, the card's rounded border), nothing wider than the window.
async function expectStyled(what) {
  const look = await page.evaluate(() => {
    const button = getComputedStyle(document.querySelector("main button"));
    const main = getComputedStyle(document.querySelector("main"));
    return {
      background: button.backgroundColor, color: button.color, radius: button.borderTopLeftRadius,
      mainRadius: main.borderTopLeftRadius, mainBorder: main.borderTopStyle, font: getComputedStyle(document.body).fontFamily,
      overflow: document.documentElement.scrollWidth - document.documentElement.clientWidth,
    };
  });
  const unstyled = ["rgb(239, 239, 239)", "rgb(240, 240, 240)", "rgba(0, 0, 0, 0)", "buttonface"];
  check(!unstyled.includes(look.background), `${what}: the button has the browser's background (${look.background}): no style sheet`);
  check(look.color === "rgb(255, 255, 255)", `${what}: the button's text is ${look.color}`);
  check(look.radius !== "0px" && look.mainRadius !== "0px" && look.mainBorder === "solid",
    `${what}: no rounded card or button (${JSON.stringify(look)})`);
  check(!/^"?Times/.test(look.font), `${what}: the body's font is ${look.font}`);
  check(look.overflow <= 0, `${what}: the page is ${look.overflow} px wider than the window`);
}

// A page of the flow as served: the headers every one has, and no script of its own.
function expectPageHeaders(response, what) {
  const h = response.headers();
  const csp = h["content-security-policy"] ?? "";
  for (const directive of ["default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'"]) {
    check(csp.includes(directive), `${what}: the CSP lacks ${directive}: ${csp}`);
  }
  check(!/form-action/.test(csp), `${what}: the CSP has a form-action (it would block the redirect to the client): ${csp}`);
  check(h["x-frame-options"] === "DENY", `${what}: X-Frame-Options ${h["x-frame-options"]}`);
  check(/no-store/.test(h["cache-control"] ?? ""), `${what}: Cache-Control ${h["cache-control"]}`);
  check(/^text\/html/.test(h["content-type"] ?? ""), `${what}: Content-Type ${h["content-type"]}`);
}

async function expectSignInPage(what) {
  check((await heading()) === "Sign in", `${what}: the heading is ${JSON.stringify(await heading())}, not "Sign in"`);
  check(/to continue to Shop\b/.test(await mainText()), `${what}: the page does not name the client: ${await mainText()}`);
  check(await page.locator('form[action="/oauth2/authorize/login"] input[name="password"]').count() === 1,
    `${what}: no password field in a form posting to /oauth2/authorize/login`);
  check(await page.locator('input[type="hidden"][name="request"]').count() === 1, `${what}: no hidden request field`);
}

async function signIn(password) {
  await page.locator('input[name="username"]').fill(USERNAME);
  await page.locator('input[name="password"]').fill(password);
  await page.locator('main form button[type="submit"]').click();
}

// ---- the steps -----------------------------------------------------------------------------------
let first; // the first authorization and its tokens
let second; // the form_post one
await run(async () => {
  await step("the sign-in page renders with its style sheet, under its CSP, with no script", async () => {
    first = authorization();
    const before = requests.length;
    const response = await page.goto(first.url);
    check(response.status() === 200, `GET /oauth2/authorize answered ${response.status()}`);
    expectPageHeaders(response, "the sign-in page");
    await expectSignInPage("the first authorization");
    check(await page.locator("script").count() === 0, "the sign-in page has a script");
    const css = requests.slice(before).filter((r) => r.path === "/oauth2/pages.css");
    check(css.length === 1 && css[0].status === 200, `the style sheet: ${JSON.stringify(css)}`);
    await expectStyled("the sign-in page");
    await expectNoCspViolation();
    await screenshot("signin");
    // A phone's width: the card fits, nothing spills sideways.
    await page.setViewportSize({ width: 360, height: 740 });
    await expectStyled("the sign-in page at 360 px");
    await screenshot("signin-narrow");
    await page.setViewportSize({ width: 1000, height: 760 });
    // Dark mode (the sheet's color-scheme is "light dark"): the text stays readable.
    await page.emulateMedia({ colorScheme: "dark" });
    const dark = await page.evaluate(() => {
      const body = getComputedStyle(document.body);
      return { color: body.color, background: body.backgroundColor, input: getComputedStyle(document.querySelector("input[name=username]")).color };
    });
    check(dark.color !== dark.background && dark.background !== "rgb(255, 255, 255)", `dark mode: ${JSON.stringify(dark)}`);
    await screenshot("signin-dark");
    await page.emulateMedia({ colorScheme: "light" });
  });

  await step("a wrong password shows the error on the sign-in page", async () => {
    await signIn("not-the-password-1");
    await page.waitForLoadState();
    await expectSignInPage("after a wrong password");
    const alert = page.locator('main .error[role="alert"]');
    check(await alert.count() === 1, `no error shown after a wrong password: ${await mainText()}`);
    const message = squash(await alert.textContent());
    check(message.length > 0 && !/\blocked\b/i.test(message), `the error reads ${JSON.stringify(message)}`);
    const color = await alert.evaluate((el) => getComputedStyle(el).color);
    check(color !== (await page.locator("main p").first().evaluate((el) => getComputedStyle(el).color)),
      `the error is not set apart (colour ${color})`);
    check(arrivals.length === 0, "something reached the relying party after a wrong password");
    await expectNoCspViolation();
    await screenshot("wrong-password");
    await page.emulateMedia({ colorScheme: "dark" });
    await screenshot("wrong-password-dark");
    await page.emulateMedia({ colorScheme: "light" });
  });

  await step("the right password leads to the consent page: the client's name and the scopes in words", async () => {
    await signIn(PASSWORD);
    await page.waitForLoadState();
    check((await heading()) === "Allow access?", `the heading is ${JSON.stringify(await heading())}, not "Allow access?"`);
    check(/\bShop asks to:/.test(await mainText()), `the page does not name the client: ${await mainText()}`);
    const scopes = (await page.locator("ul.scopes li").allTextContents()).map(squash);
    check(JSON.stringify(scopes) === JSON.stringify(["Know who you are (your account id)", "See your username"]),
      `the scopes read ${JSON.stringify(scopes)}`);
    check(!scopes.some((s) => /^(openid|profile)$/.test(s)), "a scope is shown by its code, not in words");
    const decisions = await page.locator('form[action="/oauth2/authorize/consent"] button[name="decision"]')
      .evaluateAll((buttons) => buttons.map((b) => `${b.value}:${b.textContent.trim()}`));
    check(JSON.stringify(decisions) === JSON.stringify(["allow:Allow", "deny:Deny"]), `the buttons: ${JSON.stringify(decisions)}`);
    await expectStyled("the consent page");
    const deny = await page.locator('button[value="deny"]').evaluate((b) => getComputedStyle(b).backgroundColor);
    const allow = await page.locator('button[value="allow"]').evaluate((b) => getComputedStyle(b).backgroundColor);
    check(deny !== allow, "Allow and Deny look the same");
    await expectNoCspViolation();
    await screenshot("consent");
    await page.emulateMedia({ colorScheme: "dark" });
    await screenshot("consent-dark");
    await page.emulateMedia({ colorScheme: "light" });
  });

  await step("Allow sends the browser to the relying party with code, state and iss; the code is good", async () => {
    const before = arrivals.length;
    await page.locator('button[value="allow"]').click();
    const arrival = await landOnRelyingParty("/cb", before);
    first.tokens = await expectCode(arrival, first, "GET");
    check(squash(await page.locator("h1").textContent()) === "Signed in to Shop", "the relying party's page says otherwise");
    const info = await userinfo(first.tokens.access_token);
    check(info.status === 200 && info.body.sub === first.tokens.claims.sub && info.body.preferred_username === USERNAME,
      `userinfo: ${info.status} ${JSON.stringify(info.body)}`);
  });

  await step("form_post in the same browser: no sign-in, no consent, the answer is POSTed to the relying party", async () => {
    second = authorization({ response_mode: "form_post" });
    const before = requests.length;
    const answers = arrivals.length;
    await page.goto(second.url, { waitUntil: "commit" });
    const arrival = await landOnRelyingParty("/cb", answers);
    second.tokens = await expectCode(arrival, second, "POST");
    check(/^application\/x-www-form-urlencoded/.test(arrival.contentType ?? ""), `the form came as ${arrival.contentType}`);
    check(arrival.query === "", `the code came in the address too: ${arrival.query}`);
    check(!new URL(page.url()).search, `the browser's address has a query: ${page.url()}`);
    const seen = requests.slice(before);
    check(!seen.some((r) => /^\/oauth2\/authorize\/(login|consent|mfa)$/.test(r.path)),
      `the browser went through a form: ${JSON.stringify(seen)}`);
    const script = seen.filter((r) => r.path === "/oauth2/form_post.js");
    check(script.length === 1 && script[0].status === 200, `the auto-submit script: ${JSON.stringify(seen)}`);
    check(second.tokens.claims.sub === first.tokens.claims.sub, "the form_post code is another user's");
    check(second.tokens.claims.auth_time === first.tokens.claims.auth_time, "the form_post code has another sign-in");
  });

  await step("the form_post answer page, stopped before its script runs, has the form and a button", async () => {
    // Its look, in case a browser runs no script: served with the same headers, styled.
    const third = authorization({ response_mode: "form_post" });
    await page.route(`${BASE_URL}/oauth2/form_post.js`, (route) => route.fulfill({ status: 200, contentType: "text/javascript", body: "" }));
    try {
      const response = await page.goto(third.url);
      check(response.status() === 200, `the form_post page answered ${response.status()}`);
      expectPageHeaders(response, "the form_post page");
      const form = page.locator("form#response");
      check(await form.getAttribute("method") === "post" && await form.getAttribute("action") === REDIRECT_URI,
        `the form posts to ${await form.getAttribute("action")}`);
      const fields = await form.locator('input[type="hidden"]').evaluateAll((inputs) => inputs.map((i) => i.name).sort());
      check(JSON.stringify(fields) === JSON.stringify(["code", "iss", "state"]), `the form's fields: ${JSON.stringify(fields)}`);
      await expectStyled("the form_post page");
      await expectNoCspViolation();
      await screenshot("form-post");
      // Pressed by hand, it arrives too.
      const answers = arrivals.length;
      await page.locator("form#response button").click();
      await expectCode(await landOnRelyingParty("/cb", answers), third, "POST");
    } finally {
      await page.unroute(`${BASE_URL}/oauth2/form_post.js`);
    }
  });

  await step("prompt=consent asks again; Deny sends access_denied back with state and iss, and no code", async () => {
    const denied = authorization({ prompt: "consent" });
    const response = await page.goto(denied.url);
    check(response.status() === 200, `GET /oauth2/authorize answered ${response.status()}`);
    check((await heading()) === "Allow access?", `prompt=consent: the heading is ${JSON.stringify(await heading())}`);
    const answers = arrivals.length;
    await page.locator('button[value="deny"]').click();
    const arrival = await landOnRelyingParty("/cb", answers);
    const { error, state, iss, code } = arrival.params;
    check(arrival.method === "GET" && error === "access_denied" && !code,
      `after Deny the relying party got ${JSON.stringify(arrival.params)}`);
    check(state === denied.state && iss === BASE_URL, `after Deny: state ${state}, iss ${iss}`);
    check(arrival.exchange === null, "the relying party redeemed something after Deny");
    // The earlier consent stands: the next request goes straight back with a code.
    const again = authorization();
    const next = arrivals.length;
    await page.goto(again.url, { waitUntil: "commit" });
    await expectCode(await landOnRelyingParty("/cb", next), again, "GET");
  });

  await step("logout without a hint asks first; confirming signs out and ends the client's sessions", async () => {
    const response = await page.goto(`${BASE_URL}/oauth2/logout`);
    check(response.status() === 200, `GET /oauth2/logout answered ${response.status()}`);
    expectPageHeaders(response, "the logout page");
    check((await heading()) === "Sign out?", `the heading is ${JSON.stringify(await heading())}, not "Sign out?"`);
    check(await page.locator('form[action="/oauth2/logout"] input[type="hidden"][name="confirm"]').count() === 1,
      "no confirmation form");
    // Still signed in until confirmed.
    check((await userinfo(first.tokens.access_token)).status === 200, "the access token stopped working before the confirmation");
    await expectStyled("the logout page");
    await expectNoCspViolation();
    await screenshot("logout-confirm");
    await page.locator('main form button[type="submit"]').click();
    await page.waitForLoadState();
    check((await heading()) === "Signed out", `after confirming, the heading is ${JSON.stringify(await heading())}`);
    check(/You are signed out/.test(await mainText()), `the page says ${await mainText()}`);
    await expectNoCspViolation();
    await screenshot("signed-out");
    for (const [name, flow] of [["first", first], ["form_post", second]]) {
      const info = await userinfo(flow.tokens.access_token);
      check(info.status === 401, `the ${name} access token still works after the logout: userinfo ${info.status}`);
      const refreshed = await token({ grant_type: "refresh_token", refresh_token: flow.tokens.refresh_token });
      check(refreshed.status === 400 && refreshed.body.error === "invalid_grant",
        `the ${name} refresh token still works after the logout: ${refreshed.status} ${JSON.stringify(refreshed.body)}`);
    }
  });

  await step("after the logout a new authorization shows the sign-in page again", async () => {
    const fourth = authorization();
    const answers = arrivals.length;
    const response = await page.goto(fourth.url);
    check(response.status() === 200, `GET /oauth2/authorize answered ${response.status()}`);
    await expectSignInPage("after the logout");
    check(arrivals.length === answers, "an answer reached the relying party without a sign-in");
    // Signing in again: the consent is remembered, straight back to the relying party.
    await signIn(PASSWORD);
    fourth.tokens = await expectCode(await landOnRelyingParty("/cb", answers), fourth, "GET");
    check(fourth.tokens.claims.auth_time >= first.tokens.claims.auth_time && fourth.tokens.claims.sid !== first.tokens.claims.sid,
      "the new sign-in's ID token has the old sign-in's sid");
    first = fourth;
  });

  await step("logout with id_token_hint signs out at once and goes to the post-logout URI with state", async () => {
    const state = b64url(randomBytes(12));
    const query = new URLSearchParams({ id_token_hint: first.tokens.id_token, post_logout_redirect_uri: POST_LOGOUT_URI, state });
    const answers = arrivals.length;
    await page.goto(`${BASE_URL}/oauth2/logout?${query}`, { waitUntil: "commit" });
    const arrival = await landOnRelyingParty("/bye", answers);
    check(arrival.method === "GET" && arrival.params.state === state, `/bye got ${JSON.stringify(arrival)}`);
    check((await userinfo(first.tokens.access_token)).status === 401, "the access token still works after the logout");
    await page.goto(authorization().url);
    await expectSignInPage("after the logout with a hint");
  });

  await step("the pages cannot be framed by another site", async () => {
    // The relying party's page frames the sign-in page; Chromium must refuse to show it.
    frameSource = authorization().url;
    const framer = await context.newPage();
    const messages = [];
    framer.on("console", (m) => messages.push(m.text()));
    try {
      const refused = new Promise((resolve) => {
        const look = (m) => { if (/Refused to (display|frame)|frame-ancestors|X-Frame-Options/i.test(m.text())) resolve(m.text()); };
        framer.on("console", look);
      });
      await framer.goto(`${RP_URL}/frame`);
      const refusal = await Promise.race([refused, new Promise((r) => setTimeout(() => r(null), WAIT_MS))]);
      check(refusal, `Chromium logged no refusal to frame the page: ${JSON.stringify(messages)}`);
      check(/frame-ancestors 'none'|X-Frame-Options/.test(refusal), `the refusal: ${refusal}`);
      const frame = await (await framer.locator("#frame").elementHandle()).contentFrame();
      check(frame, "the iframe has no frame at all");
      const fields = await frame.locator('input[name="password"]').count().catch(() => 0);
      check(fields === 0, `the framed sign-in page shows its form (frame ${frame.url()})`);
      check(!frame.url().startsWith(BASE_URL) || fields === 0, `the frame shows ${frame.url()}`);
      await framer.screenshot({ path: join(SCREENSHOTS, "oauth-framed.png"), fullPage: true });
    } finally {
      await framer.close();
    }
  });
}, {
  onFailure: () => {
    for (const a of arrivals) console.log(`     relying party: ${a.method} ${a.path} ${JSON.stringify(a.params)} exchange ${JSON.stringify(a.exchange)}`);
  },
});
rp.closeAllConnections();
rp.close();
