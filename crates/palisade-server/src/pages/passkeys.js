// Palisade's passkey page: password sign-in (with the second step), adding and removing passkeys,
// and passwordless sign-in with a discoverable passkey. It talks only to this server's JSON API. The
// sign-in itself (the password form, the second step, signing out) is signin.js's, loaded before.
"use strict";

const $ = (id) => document.getElementById(id);
const { api, status, run, fromB64url, toB64url, requestOptions, assertionJson, answered } = window.PalisadeSignIn;
let accessToken = null;

function creationOptions(options) {
  const pk = structuredClone(options.publicKey);
  pk.challenge = fromB64url(pk.challenge);
  pk.user.id = fromB64url(pk.user.id);
  pk.excludeCredentials = (pk.excludeCredentials || []).map((c) => ({ ...c, id: fromB64url(c.id) }));
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
function claims(token) {
  const part = token.split(".")[1];
  return JSON.parse(new TextDecoder().decode(fromB64url(part)));
}

// Signed in (signin.js has done the second step, if any): the account and its passkeys.
async function signedIn(answer) {
  accessToken = answer.access_token;
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
  window.PalisadeSignIn.reset();
  $("who").textContent = "";
  $("amr").textContent = "";
  $("passkey-list").replaceChildren();
  $("account").hidden = true;
  $("signin").hidden = false;
}

document.addEventListener("DOMContentLoaded", () => {
  if (!window.PublicKeyCredential) status("This browser does not support passkeys.", true);
  window.PalisadeSignIn.init({ signedIn, token: () => accessToken, signedOut: clearAccount });

  $("passkey-signin-button").addEventListener("click", () => run(async () => {
    const start = await api("POST", "/auth/webauthn/login/start", {});
    const credential = await navigator.credentials.get(requestOptions(start.options));
    await answered(await api("POST", "/auth/webauthn/login/finish",
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
});
