// Palisade's passkey page: password sign-in (with the second step), adding and removing passkeys,
// and passwordless sign-in with a discoverable passkey. It talks only to this server's JSON API.
"use strict";

const $ = (id) => document.getElementById(id);
let accessToken = null;
let mfaToken = null;

function status(text, isError) {
  const el = $("status");
  el.textContent = text;
  el.className = isError ? "error" : "";
}

async function api(method, path, body, token) {
  const headers = { "Content-Type": "application/json" };
  if (token) headers.Authorization = "Bearer " + token;
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) throw new Error((data && (data.detail || data.title)) || response.statusText);
  return data;
}

// base64url <-> ArrayBuffer, for the binary members of WebAuthn options and answers.
function fromB64url(text) {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4);
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)).buffer;
}
function toB64url(buffer) {
  let s = "";
  for (const byte of new Uint8Array(buffer)) s += String.fromCharCode(byte);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function creationOptions(options) {
  const pk = structuredClone(options.publicKey);
  pk.challenge = fromB64url(pk.challenge);
  pk.user.id = fromB64url(pk.user.id);
  pk.excludeCredentials = (pk.excludeCredentials || []).map((c) => ({ ...c, id: fromB64url(c.id) }));
  return { publicKey: pk };
}
function requestOptions(options) {
  const pk = structuredClone(options.publicKey);
  pk.challenge = fromB64url(pk.challenge);
  pk.allowCredentials = (pk.allowCredentials || []).map((c) => ({ ...c, id: fromB64url(c.id) }));
  // A button press asks at once; the server's "conditional" mediation is for autofill.
  return { publicKey: pk };
}
function registrationJson(credential) {
  return {
    id: credential.id,
    rawId: toB64url(credential.rawId),
    type: credential.type,
    response: {
      attestationObject: toB64url(credential.response.attestationObject),
      clientDataJSON: toB64url(credential.response.clientDataJSON),
      transports: credential.response.getTransports ? credential.response.getTransports() : undefined,
    },
    extensions: credential.getClientExtensionResults(),
  };
}
function assertionJson(credential) {
  const r = credential.response;
  return {
    id: credential.id,
    rawId: toB64url(credential.rawId),
    type: credential.type,
    response: {
      authenticatorData: toB64url(r.authenticatorData),
      clientDataJSON: toB64url(r.clientDataJSON),
      signature: toB64url(r.signature),
      userHandle: r.userHandle ? toB64url(r.userHandle) : null,
    },
    extensions: credential.getClientExtensionResults(),
  };
}

function claims(token) {
  const part = token.split(".")[1];
  return JSON.parse(new TextDecoder().decode(fromB64url(part)));
}

const METHOD_NAMES = { totp: "Authenticator app", backup_code: "Backup code", sms: "Text message", email: "E-mail" };

function showSendButton() {
  const method = $("code-method").value;
  $("send-code-button").hidden = method !== "sms" && method !== "email";
}

async function signedIn(answer) {
  $("password").value = "";
  if (answer.mfa_required) {
    mfaToken = answer.mfa_token;
    $("code-methods").textContent = answer.methods.join(", ");
    const codeMethods = answer.methods.filter((m) => m !== "webauthn");
    const select = $("code-method");
    select.replaceChildren(...codeMethods.map((m) => new Option(METHOD_NAMES[m] || m, m)));
    $("code-fields").hidden = codeMethods.length === 0;
    $("code").value = "";
    showSendButton();
    $("second-factor-passkey-button").hidden = !answer.methods.includes("webauthn");
    $("code-form").hidden = false;
    status(answer.factors_required > 1 ? "Two more factors are needed." : "A second factor is needed.");
    return;
  }
  accessToken = answer.access_token;
  mfaToken = null;
  const profile = await api("GET", "/auth/profile", undefined, accessToken);
  $("who").textContent = profile.username;
  $("amr").textContent = (claims(accessToken).amr || []).join(" ");
  $("signin").hidden = true;
  $("code-form").hidden = true;
  $("account").hidden = false;
  status("Signed in.");
  await listPasskeys();
}

async function listPasskeys() {
  const list = await api("GET", "/auth/webauthn/credentials", undefined, accessToken);
  const ul = $("passkey-list");
  ul.replaceChildren();
  for (const key of list.credentials) {
    const li = document.createElement("li");
    li.textContent = key.name + " — added " + key.created_at.slice(0, 10) +
      (key.last_used_at ? ", last used " + key.last_used_at.slice(0, 10) : ", never used") + " ";
    const remove = document.createElement("button");
    remove.type = "button";
    remove.textContent = "Remove";
    remove.addEventListener("click", () => run(async () => {
      await api("DELETE", "/auth/webauthn/credentials/" + encodeURIComponent(key.id), undefined, accessToken);
      await listPasskeys();
      status("Passkey removed.");
    }));
    li.append(remove);
    ul.append(li);
  }
  if (list.credentials.length === 0) ul.textContent = "None yet.";
}

function clearAccount() {
  accessToken = null;
  mfaToken = null;
  $("who").textContent = "";
  $("amr").textContent = "";
  $("passkey-list").replaceChildren();
  $("password-form").reset();
  $("code-form").reset();
  $("code-form").hidden = true;
  $("account").hidden = true;
  $("signin").hidden = false;
}

async function run(action) {
  try {
    await action();
  } catch (e) {
    // The browser's own WebAuthn errors are long and technical; say what happened.
    const message = e && e.name === "NotAllowedError"
      ? "The passkey was not used: it was cancelled, timed out, or this device could not verify you."
      : e && e.name === "InvalidStateError"
        ? "This device already holds a passkey for this account."
        : (e && e.message) || String(e);
    status(message, true);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  if (!window.PublicKeyCredential) status("This browser does not support passkeys.", true);

  $("password-form").addEventListener("submit", (event) => {
    event.preventDefault();
    run(async () => signedIn(await api("POST", "/auth/login", { username: $("username").value, password: $("password").value })));
  });

  $("code-form").addEventListener("submit", (event) => {
    event.preventDefault();
    run(async () => {
      const code = $("code").value.trim();
      const method = $("code-method").value;
      await signedIn(await api("POST", "/auth/mfa/verify", { mfa_token: mfaToken, method, code }));
    });
  });

  $("code-method").addEventListener("change", showSendButton);

  $("send-code-button").addEventListener("click", () => run(async () => {
    const method = $("code-method").value;
    const sent = await api("POST", "/auth/mfa/" + method + "/send", { mfa_token: mfaToken });
    status("Code sent; it is valid for " + Math.round(sent.expires_in / 60) + " minutes.");
  }));

  $("second-factor-passkey-button").addEventListener("click", () => run(async () => {
    const start = await api("POST", "/auth/webauthn/login/start", { mfa_token: mfaToken });
    const credential = await navigator.credentials.get(requestOptions(start.options));
    await signedIn(await api("POST", "/auth/webauthn/login/finish",
      { challenge_id: start.challenge_id, credential: assertionJson(credential), mfa_token: mfaToken }));
  }));

  $("passkey-signin-button").addEventListener("click", () => run(async () => {
    const start = await api("POST", "/auth/webauthn/login/start", {});
    const credential = await navigator.credentials.get(requestOptions(start.options));
    await signedIn(await api("POST", "/auth/webauthn/login/finish",
      { challenge_id: start.challenge_id, credential: assertionJson(credential) }));
  }));

  $("register-form").addEventListener("submit", (event) => {
    event.preventDefault();
    run(async () => {
      const start = await api("POST", "/auth/webauthn/register/start", undefined, accessToken);
      const credential = await navigator.credentials.create(creationOptions(start.options));
      await api("POST", "/auth/webauthn/register/finish",
        { challenge_id: start.challenge_id, credential: registrationJson(credential), name: $("passkey-name").value || null },
        accessToken);
      await listPasskeys();
      status("Passkey added.");
    });
  });

  $("signout-button").addEventListener("click", () => run(async () => {
    try {
      await api("POST", "/auth/logout", undefined, accessToken);
    } finally {
      clearAccount();
    }
    status("Signed out.");
  }));
});
