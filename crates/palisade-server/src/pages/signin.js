// Signing in on Palisade's own pages (/passkeys, /dashboard): the password form, the second step (a
// code by method, "Send me a code", or a passkey), signing out, and the helpers the pages share: the
// JSON API, the status line, run() and the WebAuthn conversions. A classic script, loaded before the
// page's own; its one global is `PalisadeSignIn`. The page calls `PalisadeSignIn.init(hooks)` once
// the document is loaded:
//   signedIn(answer)       an answer that needs no second step (an access token, or an approval)
//   onSecondStep(answer)   optional: after the second step is shown
//   token()                the access token to end on "Sign out" (null when there is none)
//   beforeSignOut()        optional: before the logout request
//   signedOut()            after it, whatever it answered: back to the sign-in form
"use strict";

window.PalisadeSignIn = (() => {
  const $ = (id) => document.getElementById(id);
  const METHOD_NAMES = { totp: "Authenticator app", backup_code: "Backup code", sms: "Text message", email: "E-mail" };

  let mfaToken = null;
  let hooks = null;

  // ---- the API -----------------------------------------------------------------------------------
  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  async function api(method, path, body, token) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (token) headers.Authorization = "Bearer " + token;
    const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null; // a proxy's HTML error page, say
    }
    if (!response.ok) {
      throw new ApiError(response.status, (data && (data.detail || data.title)) || response.statusText || "HTTP " + response.status);
    }
    return data;
  }

  function status(text, isError) {
    const el = $("status");
    if (el.textContent === text && el.className === (isError ? "error" : "")) return;
    el.textContent = text;
    el.className = isError ? "error" : "";
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

  // ---- WebAuthn: base64url <-> ArrayBuffer, for the binary members of options and answers ---------
  function fromB64url(text) {
    const b64 = text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4);
    return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)).buffer;
  }
  function toB64url(buffer) {
    let s = "";
    for (const byte of new Uint8Array(buffer)) s += String.fromCharCode(byte);
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function requestOptions(options) {
    const pk = structuredClone(options.publicKey);
    pk.challenge = fromB64url(pk.challenge);
    pk.allowCredentials = (pk.allowCredentials || []).map((c) => ({ ...c, id: fromB64url(c.id) }));
    // A button press asks at once; the server's "conditional" mediation is for autofill.
    return { publicKey: pk };
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

  // ---- the steps -----------------------------------------------------------------------------------
  function showSendButton() {
    const method = $("code-method").value;
    $("send-code-button").hidden = method !== "sms" && method !== "email";
  }

  // The answer of a login or a second step: the next step, or the page's own `signedIn`.
  async function answered(answer) {
    $("password").value = "";
    if (!answer.mfa_required) {
      if (!answer.approval_required) mfaToken = null;
      return hooks.signedIn(answer);
    }
    mfaToken = answer.mfa_token;
    $("code-methods").textContent = answer.methods.join(", ");
    const codeMethods = answer.methods.filter((m) => m !== "webauthn");
    $("code-method").replaceChildren(...codeMethods.map((m) => new Option(METHOD_NAMES[m] || m, m)));
    $("code-fields").hidden = codeMethods.length === 0;
    $("code").value = "";
    showSendButton();
    $("second-factor-passkey-button").hidden = !answer.methods.includes("webauthn") || !window.PublicKeyCredential;
    $("code-form").hidden = false;
    if (hooks.onSecondStep) hooks.onSecondStep(answer, codeMethods);
    status(answer.factors_required > 1 ? "Two more factors are needed." : "A second factor is needed.");
  }

  // Back to the first step: the forms emptied, the second step hidden.
  function reset() {
    mfaToken = null;
    $("password-form").reset();
    $("code-form").reset();
    $("password-form").hidden = false;
    $("code-form").hidden = true;
  }

  function init(pageHooks) {
    hooks = pageHooks;

    $("password-form").addEventListener("submit", (event) => {
      event.preventDefault();
      run(async () => answered(await api("POST", "/auth/login", { username: $("username").value, password: $("password").value })));
    });

    $("code-form").addEventListener("submit", (event) => {
      event.preventDefault();
      run(async () => {
        const code = $("code").value.trim();
        const method = $("code-method").value;
        await answered(await api("POST", "/auth/mfa/verify", { mfa_token: mfaToken, method, code }));
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
      await answered(await api("POST", "/auth/webauthn/login/finish",
        { challenge_id: start.challenge_id, credential: assertionJson(credential), mfa_token: mfaToken }));
    }));

    $("signout-button").addEventListener("click", () => run(async () => {
      const current = hooks.token();
      if (hooks.beforeSignOut) hooks.beforeSignOut();
      try {
        if (current) await api("POST", "/auth/logout", undefined, current);
      } catch (e) {
        if (e.status !== 401) throw e; // already ended: signed out all the same
      } finally {
        hooks.signedOut();
      }
      status("Signed out.");
    }));
  }

  return {
    METHOD_NAMES, ApiError, api, status, run, fromB64url, toB64url, requestOptions, assertionJson, answered, reset, init,
  };
})();
