// The customer's cabinet: sign in with POST /auth/token, then list my orders and
// notifications, refreshed every 2 s while the page is open. Plain DOM: every value is set
// with textContent, so nothing from the server is ever parsed as HTML.
"use strict";

const REFRESH_MS = 2000;
// sessionStorage: the token lives as long as the tab, not on disk for other sites' visits.
const TOKEN_KEY = "saga.token";
const USER_KEY = "saga.user";
let timer = null;

function $(id) { return document.getElementById(id); }

async function api(path, options) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const headers = Object.assign({ "Accept": "application/json" }, (options || {}).headers);
  if (token) headers["Authorization"] = "Bearer " + token;
  const response = await fetch(path, Object.assign({}, options, { headers: headers }));
  const body = await response.json().catch(function () { return {}; });
  if (!response.ok) {
    const error = new Error(body.detail || body.title || response.statusText);
    error.status = response.status;
    throw error;
  }
  return body;
}

function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text == null ? "" : String(text);
  if (className) td.className = className;
  row.appendChild(td);
}

function renderOrders(page) {
  const tbody = $("orders");
  tbody.replaceChildren();
  for (const order of page.items) {
    const row = document.createElement("tr");
    cell(row, order.id, "id");
    cell(row, order.status);
    cell(row, order.status_group, order.status_group);
    cell(row, order.reason || "");
    tbody.appendChild(row);
  }
  $("no-orders").hidden = page.items.length > 0;
}

function renderNotifications(page) {
  const list = $("notifications");
  list.replaceChildren();
  for (const note of page.items) {
    const item = document.createElement("li");
    const title = document.createElement("strong");
    title.textContent = note.title;
    item.appendChild(title);
    item.appendChild(document.createTextNode(" " + note.body + " "));
    const when = document.createElement("span");
    when.className = "muted";
    when.textContent = new Date(note.created_at).toLocaleString();
    item.appendChild(when);
    list.appendChild(item);
  }
  $("no-notifications").hidden = page.items.length > 0;
}

async function refresh() {
  try {
    const results = await Promise.all([api("orders?limit=100"), api("notifications?limit=50")]);
    renderOrders(results[0]);
    renderNotifications(results[1]);
    $("updated").textContent = "updated " + new Date().toLocaleTimeString();
  } catch (error) {
    if (error.status === 401) { signOut("Your session has expired; sign in again."); return; }
    $("updated").textContent = "refresh failed: " + error.message;
  }
}

function showCabinet() {
  $("sign-in").hidden = true;
  $("cabinet").hidden = false;
  $("who").textContent = sessionStorage.getItem(USER_KEY) || "";
  refresh();
  timer = setInterval(refresh, REFRESH_MS);
}

function signOut(message) {
  if (timer) clearInterval(timer);
  timer = null;
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(USER_KEY);
  $("cabinet").hidden = true;
  $("sign-in").hidden = false;
  $("sign-in-error").textContent = message || "";
}

$("sign-in").addEventListener("submit", async function (event) {
  event.preventDefault();
  const form = event.target;
  $("sign-in-error").textContent = "";
  try {
    const token = await api("auth/token", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ username: form.username.value, password: form.password.value }),
    });
    form.password.value = "";
    sessionStorage.setItem(TOKEN_KEY, token.access_token);
    sessionStorage.setItem(USER_KEY, form.username.value);
    showCabinet();
  } catch (error) {
    $("sign-in-error").textContent = error.message;
  }
});

$("sign-out").addEventListener("click", function () { signOut(""); });

if (sessionStorage.getItem(TOKEN_KEY)) showCabinet();
