// The customer's cabinet: register or sign in (POST /auth/register, /auth/token), then my
// wallet (create, deposit, its latest movements), a form to order, my orders with their
// items, total, status and reason (pay one awaiting payment, with the time left in its
// window; cancel one that can still be cancelled), and my notifications, refreshed every
// 2 s. Plain DOM: every value is set with textContent, never parsed as HTML. Errors are
// shown as the API's problem details say them.
"use strict";

const REFRESH_MS = 2000;
// sessionStorage: the token lives as long as the tab, not on disk for other sites' visits.
const TOKEN_KEY = "saga.token";
const USER_KEY = "saga.user";
// What the API lets a customer cancel (functions/api/orders.py CUSTOMER_CANCELLABLE).
const CANCELLABLE = ["CREATED", "AWAITING_PAYMENT", "PAYMENT_PROCESSING"];
let timer = null;
let shownOrders = "";
let serverOffsetMs = 0;  // the server's clock minus ours, from each answer's Date header

function $(id) { return document.getElementById(id); }

async function api(path, options) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const headers = Object.assign({ "Accept": "application/json" }, (options || {}).headers);
  if (token) headers["Authorization"] = "Bearer " + token;
  const response = await fetch(path, Object.assign({}, options, { headers: headers }));
  const date = Date.parse(response.headers.get("Date") || "");
  if (!Number.isNaN(date)) serverOffsetMs = date - Date.now();
  const body = await response.json().catch(function () { return {}; });
  if (!response.ok) {
    const error = new Error(body.detail || body.title || response.statusText);
    error.status = response.status;
    throw error;
  }
  return body;
}

function post(path, body, headers) {
  return api(path, { method: "POST", body: body === undefined ? undefined : JSON.stringify(body),
                     headers: Object.assign({ "Content-Type": "application/json" }, headers) });
}

function randomKey() {  // crypto.randomUUID needs a secure context; this does not
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, function (b) { return b.toString(16).padStart(2, "0"); }).join("");
}

function problem(error) { $("problem").textContent = error ? error.message : ""; }

function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text == null ? "" : String(text);
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}

function button(label, action, orderId) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  b.dataset.action = action;
  b.dataset.order = orderId;
  return b;
}

function timeLeft(deadline) {
  const seconds = Math.floor((Date.parse(deadline) - (Date.now() + serverOffsetMs)) / 1000);
  if (seconds <= 0) return "window closed";
  return Math.floor(seconds / 60) + ":" + String(seconds % 60).padStart(2, "0") + " left";
}

function renderOrders(page) {
  const state = JSON.stringify(page.items);
  if (state !== shownOrders) {
    shownOrders = state;
    const tbody = $("orders");
    tbody.replaceChildren();
    for (const order of page.items) {
      const row = document.createElement("tr");
      row.dataset.order = order.id;
      cell(row, order.id, "id");
      cell(row, order.status);
      cell(row, order.status_group, order.status_group);
      cell(row, order.reason || "");
      cell(row, order.items.map(function (i) { return i.quantity + " x " + i.sku; }).join(", "));
      cell(row, order.total, "num");
      const actions = cell(row, "");
      actions.className = "actions";
      if (order.payment_mode === "confirm" && order.status === "AWAITING_PAYMENT" &&
          order.payment_deadline) {
        const pay = button("Pay", "pay", order.id);
        pay.dataset.deadline = order.payment_deadline;
        actions.appendChild(pay);
        actions.appendChild(document.createTextNode(" "));
        const left = document.createElement("span");
        left.className = "muted left";
        left.dataset.deadline = order.payment_deadline;
        actions.appendChild(left);
        actions.appendChild(document.createTextNode(" "));
      }
      if (CANCELLABLE.includes(order.status)) actions.appendChild(button("Cancel", "cancel", order.id));
      tbody.appendChild(row);
    }
  }
  for (const left of document.querySelectorAll("#orders .left")) {
    left.textContent = "(" + timeLeft(left.dataset.deadline) + ")";
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

async function renderWallet() {
  try {
    const account = await api("accounts/me");
    $("balance").textContent = account.balance;
    $("frozen").textContent = account.frozen;
    const ledger = $("ledger");
    ledger.replaceChildren();
    for (const entry of account.ledger) {
      const item = document.createElement("li");
      item.textContent = entry.kind + " " + entry.amount + (entry.order_id ? " (order " +
        entry.order_id.slice(0, 8) + ")" : "") + ", " + new Date(entry.created_at).toLocaleString();
      ledger.appendChild(item);
    }
    $("wallet").hidden = false;
    $("no-wallet").hidden = true;
  } catch (error) {
    if (error.status !== 404) throw error;
    $("wallet").hidden = true;
    $("no-wallet").hidden = false;
  }
}

async function refresh() {
  try {
    const results = await Promise.all([api("orders?limit=100"), api("notifications?limit=50"),
                                       renderWallet()]);
    renderOrders(results[0]);
    renderNotifications(results[1]);
    $("updated").textContent = "updated " + new Date().toLocaleTimeString();
  } catch (error) {
    if (error.status === 401) { signOut("Your session has expired; sign in again."); return; }
    $("updated").textContent = "refresh failed: " + error.message;
  }
}

async function loadProducts() {
  const page = await api("products?limit=100");
  const select = $("products");
  const chosen = select.value;  // kept: the counts change, the customer's choice does not
  select.replaceChildren();
  for (const product of page.items) {
    const option = document.createElement("option");
    option.value = product.sku;
    option.textContent = product.name + " (" + product.sku + "), " + product.price + ", " +
      product.available + " available";
    select.appendChild(option);
  }
  if (chosen) select.value = chosen;
}

function showCabinet() {
  $("doors").hidden = true;
  $("cabinet").hidden = false;
  $("who").textContent = sessionStorage.getItem(USER_KEY) || "";
  shownOrders = "";
  loadProducts().catch(problem);
  refresh();
  timer = setInterval(refresh, REFRESH_MS);
}

function signOut(message) {
  if (timer) clearInterval(timer);
  timer = null;
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(USER_KEY);
  $("cabinet").hidden = true;
  $("doors").hidden = false;
  $("sign-in-error").textContent = message || "";
  problem(null);
}

async function signIn(username, password) {
  const token = await post("auth/token", { username: username, password: password });
  sessionStorage.setItem(TOKEN_KEY, token.access_token);
  sessionStorage.setItem(USER_KEY, username);
  showCabinet();
}

$("sign-in").addEventListener("submit", async function (event) {
  event.preventDefault();
  const form = event.target;
  $("sign-in-error").textContent = "";
  try {
    await signIn(form.username.value, form.password.value);
    form.password.value = "";
  } catch (error) {
    $("sign-in-error").textContent = error.message;
  }
});

$("register").addEventListener("submit", async function (event) {
  event.preventDefault();
  const form = event.target;
  $("register-error").textContent = "";
  try {
    await post("auth/register", { username: form.username.value, password: form.password.value });
    await signIn(form.username.value, form.password.value);
    form.password.value = "";
  } catch (error) {
    $("register-error").textContent = error.message;
  }
});

async function act(work) {
  problem(null);
  try {
    await work();
  } catch (error) {
    problem(error);
  }
  await refresh();
}

$("create-wallet").addEventListener("click", function () {
  act(function () { return post("accounts"); });
});

$("deposit").addEventListener("submit", function (event) {
  event.preventDefault();
  const form = event.target;
  act(async function () {
    await post("accounts/deposit", { amount: form.amount.value.trim() });
    form.amount.value = "";
  });
});

$("new-order").addEventListener("submit", function (event) {
  event.preventDefault();
  const form = event.target;
  act(async function () {
    // A retried click is safe: the same key returns the order it created.
    await post("orders", {
      items: [{ sku: form.sku.value, quantity: Number(form.quantity.value) }],
      payment_mode: form.payment_mode.value, shipping_address: form.shipping_address.value,
    }, { "Idempotency-Key": randomKey() });
    await loadProducts();
  });
});

$("orders").addEventListener("click", function (event) {
  const target = event.target.closest("button[data-action]");
  if (!target) return;
  const id = target.dataset.order;
  act(function () {
    if (target.dataset.action === "pay") return post("orders/" + id + "/pay");
    return api("orders/" + id, { method: "PUT", headers: { "Content-Type": "application/json" },
                                 body: JSON.stringify({ status: "CANCELLED" }) });
  });
});

$("sign-out").addEventListener("click", function () { signOut(""); });

if (sessionStorage.getItem(TOKEN_KEY)) showCabinet();
