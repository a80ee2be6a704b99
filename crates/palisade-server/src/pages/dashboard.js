// Palisade's security dashboard: an administrator signs in (password, then the second step when the
// login asks for one), and the page shows GET /monitoring/dashboard for the chosen range, refreshed
// every 10 s (or `?refresh=N` seconds). The charts are SVG drawn here; the page talks only to this
// server's JSON API and keeps its access token in sessionStorage (gone when the tab closes). The
// sign-in itself (the password form, the second step, signing out) is signin.js's, loaded before.
"use strict";

const $ = (id) => document.getElementById(id);
const { METHOD_NAMES, api, status, run, answered } = window.PalisadeSignIn;
const SVG_NS = "http://www.w3.org/2000/svg";
const TOKEN_KEY = "palisade.dashboard.access_token";
const DEFAULT_REFRESH_SECONDS = 10;
const APPROVAL_POLL_MS = 3000;

const RANGE_NAMES = { 3600: "last hour", 86400: "last 24 hours", 604800: "last 7 days" };
const SERIES_NAMES = {
  events: "Security events",
  failed_logins: "Failed logins",
  blocked_attempts: "Blocked attempts",
  incidents: "Incidents opened",
};
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

let refreshTimer = null;
let approvalTimer = null;
let generation = 0; // bumped by every load and sign-out, so a late answer is dropped
let lastData = null; // the last dashboard shown, to redraw the charts when the window is resized

const token = () => sessionStorage.getItem(TOKEN_KEY);

// `?refresh=N` in the page's URL: seconds between refreshes (1 to 3600; 10 otherwise).
function refreshSeconds() {
  const n = Number(new URLSearchParams(location.search).get("refresh"));
  return Number.isInteger(n) && n >= 1 && n <= 3600 ? n : DEFAULT_REFRESH_SECONDS;
}

// ---- signing in and out --------------------------------------------------------------------------
// After signin.js showed the second step: the methods by name, the password form hidden.
function secondStep(answer, codeMethods) {
  $("code-methods").textContent = answer.methods.map((m) => METHOD_NAMES[m] || (m === "webauthn" ? "Passkey" : m)).join(", ");
  $("password-form").hidden = true;
  if (codeMethods.length > 0) $("code").focus();
}

// An answer that needs no second step (signin.js shows that): an approval to wait for, or the token.
async function signedIn(answer) {
  if (answer.approval_required) {
    status("This device waits for approval: approve it from a device you are signed in on, or with the link mailed to you.");
    const poll = async () => {
      try {
        const next = await api("POST", "/auth/login/approval", { approval_token: answer.approval_token });
        if (next.approval_required) approvalTimer = setTimeout(poll, APPROVAL_POLL_MS);
        else await answered(next);
      } catch (e) {
        showSignIn();
        status("The approval did not come: " + e.message, true);
      }
    };
    approvalTimer = setTimeout(poll, APPROVAL_POLL_MS);
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, answer.access_token);
  status("Signed in.");
  await enter();
}

// With a token: who it is, then the dashboard (or the refusal).
async function enter() {
  let profile;
  try {
    profile = await api("GET", "/auth/profile", undefined, token());
  } catch (e) {
    if (e.status === 401) return expired();
    throw e;
  }
  $("who").textContent = profile.username;
  $("signin").hidden = true;
  $("session").hidden = false;
  $("forbidden").hidden = true;
  $("dashboard").hidden = false;
  await load();
}

function stopTimers() {
  generation += 1;
  clearTimeout(refreshTimer);
  clearTimeout(approvalTimer);
  refreshTimer = null;
  approvalTimer = null;
}

function showSignIn() {
  stopTimers();
  sessionStorage.removeItem(TOKEN_KEY);
  window.PalisadeSignIn.reset();
  lastData = null;
  $("who").textContent = "";
  $("signin").hidden = false;
  $("session").hidden = true;
  $("forbidden").hidden = true;
  $("dashboard").hidden = true;
  clearDashboard();
}

function expired() {
  showSignIn();
  status("Your session has expired or was ended: sign in again.", true);
}

function forbidden() {
  stopTimers();
  $("dashboard").hidden = true;
  $("forbidden").hidden = false;
  status("Administrators only: this account may not see the dashboard.", true);
}

// ---- the data ------------------------------------------------------------------------------------
async function load() {
  clearTimeout(refreshTimer);
  const mine = ++generation;
  const range = $("range").value;
  try {
    const data = await api("GET", "/monitoring/dashboard?range=" + encodeURIComponent(range), undefined, token());
    if (mine !== generation) return;
    render(data);
    if ($("status").className === "error") status("");
  } catch (e) {
    if (mine !== generation) return;
    if (e.status === 401) return expired();
    if (e.status === 403) return forbidden();
    status("The dashboard could not be loaded: " + e.message + ". Trying again.", true);
  }
  if (mine === generation) refreshTimer = setTimeout(load, refreshSeconds() * 1000);
}

const pad = (n) => String(n).padStart(2, "0");
const clock = (d) => pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
const hourMinute = (d) => pad(d.getHours()) + ":" + pad(d.getMinutes());
const count = (n) => Number(n || 0).toLocaleString("en");

function setMetric(name, value) {
  const el = document.querySelector(`[data-metric="${name}"]`);
  el.textContent = count(value);
  el.dataset.value = String(value ?? 0);
  el.closest(".card").classList.toggle("nonzero", Number(value) > 0);
}

function render(data) {
  lastData = data;
  const { metrics, threats, compliance, incidents } = data;
  for (const name of ["total_events", "security_incidents", "blocked_attempts", "anomalies_detected"]) {
    setMetric(name, metrics[name]);
  }
  setMetric("failed_logins", threats.failed_logins);
  setMetric("brute_force_attempts", threats.brute_force_attempts);
  setMetric("audit_events", compliance.audit_events);
  setMetric("policy_violations", compliance.policy_violations);
  setMetric("unresolved_incidents", incidents.unresolved);
  for (const el of document.querySelectorAll("[data-severity]")) {
    const n = (incidents.by_severity || {})[el.dataset.severity] || 0;
    el.textContent = count(n);
    el.dataset.value = String(n);
    el.parentElement.classList.toggle("nonzero", n > 0);
  }

  const since = new Date(data.since);
  const until = new Date(data.until);
  $("range-label").textContent = "· " + (RANGE_NAMES[data.range_seconds] || data.range_seconds + " s") +
    (Number.isNaN(since.getTime()) ? "" : ", since " + dayTime(since, data.range_seconds));
  renderSuspicious(threats.suspicious_ips || []);
  drawCharts();

  const updated = Number.isNaN(until.getTime()) ? new Date() : until;
  $("updated-at").textContent = clock(updated);
  $("updated-at").dateTime = updated.toISOString();
  $("refresh-every").textContent = " · refreshes every " + refreshSeconds() + " s";
  $("dashboard").dataset.rangeSeconds = String(data.range_seconds);
  $("dashboard").dataset.updated = data.until;
}

function renderSuspicious(addresses) {
  const body = $("suspicious-rows");
  if (addresses.length === 0) {
    const row = body.insertRow();
    body.replaceChildren(row);
    row.className = "empty";
    const cell = row.insertCell();
    cell.colSpan = 3;
    cell.textContent = "None in this range.";
    return;
  }
  const most = Math.max(...addresses.map((a) => a.failures), 1);
  const rows = addresses.map((a) => {
    const row = document.createElement("tr");
    row.dataset.ip = a.ip;
    row.dataset.failures = String(a.failures);
    const ip = document.createElement("td");
    const code = document.createElement("code");
    code.textContent = a.ip;
    ip.append(code);
    const failures = document.createElement("td");
    failures.className = "num";
    failures.textContent = count(a.failures);
    const share = document.createElement("td");
    share.className = "bar-cell";
    share.setAttribute("aria-hidden", "true");
    const bar = document.createElement("span");
    bar.className = "share";
    bar.style.width = Math.max(2, Math.round((a.failures / most) * 100)) + "%"; // CSSOM: allowed by the CSP
    share.append(bar);
    row.append(ip, failures, share);
    return row;
  });
  body.replaceChildren(...rows);
}

function clearDashboard() {
  for (const el of document.querySelectorAll("[data-metric], [data-severity]")) {
    el.textContent = "—";
    delete el.dataset.value;
  }
  for (const el of document.querySelectorAll(".card.nonzero, .severities .nonzero")) el.classList.remove("nonzero");
  renderSuspicious([]);
  for (const figure of document.querySelectorAll("figure.chart")) {
    figure.querySelector("figcaption").textContent = SERIES_NAMES[figure.dataset.series];
    for (const old of figure.querySelectorAll("svg")) old.remove();
    delete figure.dataset.total;
  }
  $("updated-at").textContent = "—";
  delete $("dashboard").dataset.rangeSeconds;
  delete $("dashboard").dataset.updated;
  $("range-label").textContent = "";
  $("bucket-label").textContent = "";
}

// ---- the charts ----------------------------------------------------------------------------------
// A bucket's start as an axis label: the time of day for a day or less, with the date beyond.
function dayTime(d, rangeSeconds) {
  if (rangeSeconds <= 86400) return hourMinute(d);
  return MONTHS[d.getMonth()] + " " + d.getDate() + " " + hourMinute(d);
}

function span(seconds) {
  if (seconds % 86400 === 0) return seconds === 86400 ? "day" : seconds / 86400 + " days";
  if (seconds % 3600 === 0) return seconds === 3600 ? "hour" : seconds / 3600 + " hours";
  if (seconds % 60 === 0) return seconds === 60 ? "minute" : seconds / 60 + " minutes";
  return seconds + " s";
}

function svg(name, attributes, text) {
  const el = document.createElementNS(SVG_NS, name);
  for (const [key, value] of Object.entries(attributes)) el.setAttribute(key, String(value));
  if (text !== undefined) el.textContent = text;
  return el;
}

function drawCharts() {
  if (!lastData) return;
  const { charts, range_seconds: rangeSeconds } = lastData;
  $("bucket-label").textContent = "· per " + span(charts.bucket_seconds);
  const starts = (charts.buckets || []).map((b) => new Date(b));
  const until = new Date(lastData.until);
  for (const figure of document.querySelectorAll("figure.chart")) {
    const name = figure.dataset.series;
    const values = (charts.series || {})[name] || [];
    drawChart(figure, SERIES_NAMES[name] || name, values, starts, charts.bucket_seconds, rangeSeconds, until);
  }
}

// One bar chart: a bar per bucket, the y axis from 0 to the largest count, bucket times under it.
// Drawn at the figure's width in pixels, so the labels keep their size in a narrow window.
function drawChart(figure, title, values, starts, bucketSeconds, rangeSeconds, until) {
  const total = values.reduce((a, b) => a + b, 0);
  const peak = Math.max(0, ...values);
  const peakAt = values.indexOf(peak);
  const caption = figure.querySelector("figcaption");
  const summary = document.createElement("span");
  summary.className = "muted";
  summary.textContent = " · total " + count(total) + (peak > 0 ? ", peak " + count(peak) : "");
  caption.replaceChildren(title, summary);
  figure.dataset.total = String(total);
  figure.dataset.peak = String(peak);
  for (const old of figure.querySelectorAll("svg")) old.remove();

  const width = Math.max(240, Math.floor(figure.clientWidth || 300));
  const height = 170;
  const yLabel = count(peak);
  const left = Math.max(28, 8 + 7 * yLabel.length);
  const right = 10;
  const top = 10;
  const bottom = 26;
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  const n = Math.max(values.length, 1);
  const step = plotW / n;
  const scale = peak > 0 ? plotH / peak : 0;

  const described = `${title} per ${span(bucketSeconds)}, ${RANGE_NAMES[rangeSeconds] || rangeSeconds + " s"}: total ${total}` +
    (peak > 0 && starts[peakAt] ? `, peak ${peak} at ${dayTime(starts[peakAt], rangeSeconds)}` : "") + ".";
  const chart = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": described });
  chart.append(svg("title", {}, described));

  // The grid: 0, half and the peak, labelled 0 and the peak.
  const y = (v) => top + plotH - v * scale;
  chart.append(svg("line", { class: "axis", x1: left, x2: width - right, y1: top + plotH, y2: top + plotH }));
  chart.append(svg("line", { class: "axis", x1: left, x2: left, y1: top, y2: top + plotH }));
  chart.append(svg("text", { class: "tick", x: left - 5, y: top + plotH, "text-anchor": "end", "dominant-baseline": "middle" }, "0"));
  if (peak > 0) {
    chart.append(svg("line", { class: "grid", x1: left, x2: width - right, y1: top, y2: top }));
    chart.append(svg("line", { class: "grid", x1: left, x2: width - right, y1: y(peak / 2), y2: y(peak / 2) }));
    chart.append(svg("text", { class: "tick", x: left - 5, y: top, "text-anchor": "end", "dominant-baseline": "middle" }, yLabel));
  } else {
    chart.append(svg("text", { class: "none", x: left + plotW / 2, y: top + plotH / 2, "text-anchor": "middle", "dominant-baseline": "middle" },
      "None in this range"));
  }

  // The bars, each with its bucket and count as a tooltip.
  const gap = step > 4 ? Math.min(step * 0.2, 6) : 0;
  values.forEach((v, i) => {
    if (v <= 0) return;
    const h = Math.max(1, v * scale);
    const bar = svg("rect", { class: "bar", x: (left + i * step + gap / 2).toFixed(2), y: (top + plotH - h).toFixed(2),
      width: Math.max(1, step - gap).toFixed(2), height: h.toFixed(2), "data-value": v });
    const from = starts[i];
    if (from && !Number.isNaN(from.getTime())) {
      const to = new Date(from.getTime() + bucketSeconds * 1000);
      bar.append(svg("title", {}, `${dayTime(from, rangeSeconds)}–${dayTime(to, rangeSeconds)}: ${v}`));
    }
    chart.append(bar);
  });

  // Bucket times under the axis, as many as fit without touching (about 6.5 px a character), and
  // the range's end at the right.
  const labelWidth = (rangeSeconds > 86400 ? 12 : 5) * 6.5 + 12;
  const tick = (x, label, anchor) => {
    chart.append(svg("line", { class: "axis", x1: x, x2: x, y1: top + plotH, y2: top + plotH + 4 }));
    chart.append(svg("text", { class: "tick", x, y: height - 6, "text-anchor": anchor }, label));
  };
  const last = starts[starts.length - 1];
  const end = last && !Number.isNaN(last.getTime()) ? new Date(last.getTime() + bucketSeconds * 1000) : null;
  const limit = end ? left + plotW - labelWidth : width; // where the end's label begins
  const every = Math.max(1, Math.ceil(n / Math.max(1, Math.floor(plotW / labelWidth))));
  let free = 0; // the x where the next label may begin
  for (let i = 0; i < starts.length; i += every) {
    if (Number.isNaN(starts[i].getTime())) continue;
    const x = left + i * step;
    const from = i === 0 ? x : x - labelWidth / 2;
    if (from < free || from + labelWidth > limit) continue;
    free = from + labelWidth;
    tick(x, dayTime(starts[i], rangeSeconds), i === 0 ? "start" : "middle");
  }
  if (end) tick(left + plotW, Math.abs(until - end) < 60_000 ? "now" : dayTime(end, rangeSeconds), "end");
  figure.append(chart);
}

// ---- wiring ----------------------------------------------------------------------------------------
document.addEventListener("DOMContentLoaded", () => {
  window.PalisadeSignIn.init({ signedIn, onSecondStep: secondStep, token, beforeSignOut: stopTimers, signedOut: showSignIn });

  $("range").addEventListener("change", () => run(load));

  // The charts are drawn at their width in pixels: again when it changes (a resized window).
  let drawnWidth = 0;
  let resizing = null;
  new ResizeObserver(([entry]) => {
    const width = Math.round(entry.contentRect.width);
    if (width === drawnWidth || width === 0) return;
    drawnWidth = width;
    clearTimeout(resizing);
    resizing = setTimeout(drawCharts, 100);
  }).observe(document.querySelector(".charts"));

  if (token()) run(enter);
  else showSignIn();
});
