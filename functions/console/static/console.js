// The operators' console: plain DOM, no framework, no build step. Every value from the
// server is set with textContent (never parsed as HTML). The view and its filter live in
// the URL (?view=find&status=open...), so any page can be bookmarked and shared; links
// inside the page change it without a reload. Errors are the API's problem details.
"use strict";

const TOKEN_KEY = "saga.console.token";  // sessionStorage: gone with the tab
const API = "/console/api";
const REFRESH_MS = { overview: 5000, stuck: 5000, order: 3000 };
const FILTER_FIELDS = ["status", "reason", "customer", "sku", "id", "since", "until",
                       "older_than_s"];
let session = null;
let timer = null;

function $(id) { return document.getElementById(id); }

function el(tag, text, attributes) {
  const node = document.createElement(tag);
  if (text != null) node.textContent = String(text);
  for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, value);
  return node;
}

function link(text, query) { return el("a", text, { href: "?" + query }); }

function when(iso) { return iso ? new Date(iso).toLocaleString() : ""; }

function clock(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return d.toLocaleTimeString() + "." + String(d.getMilliseconds()).padStart(3, "0");
}

function short(id) { return String(id).slice(0, 8); }

class ApiError extends Error {
  constructor(status, problem) {
    super((problem.title || "error") + (problem.detail ? ": " + problem.detail : ""));
    this.status = status;
    this.problem = problem;
  }
}

async function api(path, body) {
  const headers = { "Accept": "application/json",
                    "Authorization": "Bearer " + sessionStorage.getItem(TOKEN_KEY) };
  const options = { headers: headers };
  if (body !== undefined) {
    options.method = "POST";
    headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(API + path, options);
  const answer = await response.json().catch(function () { return {}; });
  if (!response.ok) {
    if (response.status === 401 && session) signOut("Your token was refused: " +
                                                    (answer.detail || "sign in again"));
    throw new ApiError(response.status, answer);
  }
  return answer;
}

function fail(error) { $("error").textContent = error.message || String(error); }

function updated() { $("status").textContent = "updated " + new Date().toLocaleTimeString(); }

function fill(tbody, rows) {
  tbody.replaceChildren();
  for (const cells of rows) {
    const row = document.createElement("tr");
    for (const cell of cells) {
      const td = document.createElement("td");
      if (cell instanceof Node) td.appendChild(cell); else td.textContent = cell == null ? "" : String(cell);
      row.appendChild(td);
    }
    tbody.appendChild(row);
  }
}

function facts(dl, pairs) {
  dl.replaceChildren();
  for (const [term, value] of pairs) {
    dl.appendChild(el("dt", term));
    const dd = document.createElement("dd");
    if (value instanceof Node) dd.appendChild(value); else dd.textContent = value == null ? "–" : String(value);
    dl.appendChild(dd);
  }
}

function list(ul, items, empty) {
  ul.replaceChildren();
  for (const item of items) {
    const li = document.createElement("li");
    if (item instanceof Node) li.appendChild(item); else li.textContent = item;
    ul.appendChild(li);
  }
  if (!items.length) ul.appendChild(el("li", empty, { class: "muted" }));
}

// --- routing ---------------------------------------------------------------------------

function params() { return new URLSearchParams(location.search); }

function go(query) {
  history.pushState(null, "", "?" + query);
  route();
}

function show(view) {
  for (const section of document.querySelectorAll(".view")) {
    section.hidden = section.id !== "view-" + view;
  }
  for (const a of document.querySelectorAll("#nav a")) {
    if (a.dataset.view === view) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

const VIEWS = {
  overview: overview, find: find, stuck: stuck, order: order, letters: letters,
  letter: letter, audit: audit,
};

function route() {
  if (timer) clearInterval(timer);
  timer = null;
  $("error").textContent = "";
  $("status").textContent = "";
  if (!session) return;
  const view = VIEWS[params().get("view")] ? params().get("view") : "overview";
  show(view);
  VIEWS[view]().catch(fail);
  if (REFRESH_MS[view]) {
    timer = setInterval(function () { VIEWS[view](true).catch(fail); }, REFRESH_MS[view]);
  }
}

document.addEventListener("click", function (event) {
  const a = event.target.closest("a");
  if (!a || event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey) return;
  const href = a.getAttribute("href") || "";
  if (href.startsWith("?")) { event.preventDefault(); go(href.slice(1)); }
  else if (href === "/console") { event.preventDefault(); go("view=overview"); }
});
window.addEventListener("popstate", route);

// --- sign in ---------------------------------------------------------------------------

async function signIn() {
  try {
    session = await api("/session");
  } catch (error) {
    session = null;
    sessionStorage.removeItem(TOKEN_KEY);
    throw error.status === 403
      ? new Error("This token has no admin role: the console is for operators.") : error;
  }
  $("operator").textContent = session.operator;
  $("sign-in").hidden = true;
  $("nav").hidden = false;
  $("who").hidden = false;
  route();
}

function signOut(message) {
  session = null;
  sessionStorage.removeItem(TOKEN_KEY);
  if (timer) clearInterval(timer);
  show("none");
  $("nav").hidden = true;
  $("who").hidden = true;
  $("sign-in").hidden = false;
  $("error").textContent = message || "";
}

$("sign-in-form").addEventListener("submit", function (event) {
  event.preventDefault();
  $("error").textContent = "";
  sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
  $("token").value = "";
  signIn().catch(fail);
});
$("sign-out").addEventListener("click", function () { signOut(""); });

// --- overview --------------------------------------------------------------------------

async function overview() {
  const [ov, rt, st] = await Promise.all([api("/overview"), api("/runtime"), api("/stuck")]);
  $("ov-orders").textContent = ov.orders;
  facts($("ov-groups"), Object.entries(ov.by_group));
  facts($("ov-statuses"), Object.entries(ov.by_status).map(function ([status, n]) {
    return [status, link(n, "view=find&status=" + status)];
  }));
  const reasons = Object.entries(ov.cancelled_by_reason);
  facts($("ov-reasons"), reasons.length ? reasons.map(function ([reason, n]) {
    return [reason, link(n, "view=find&reason=" + reason)];
  }) : [["none", 0]]);
  $("ov-stuck").textContent = st.items.length + (st.more ? "+" : "");
  $("ov-letters").textContent = ov.dead_letters_waiting;
  facts($("ov-letter-types"), Object.entries(ov.dead_letters_by_type));
  const c = ov.completion;
  $("ov-completion").textContent = c.completed
    ? c.completed + (c.completed === 1 ? " order" : " orders") +
      " completed; from placed to completed: median " + c.p50_s +
      " s, p95 " + c.p95_s + " s, longest " + c.max_s + " s"
    : "No order completed in the last hour.";
  chart($("ov-chart"), ov.last_hour);
  $("rt-lag-note").textContent = rt.lag_note || "";
  fill($("rt-lag"), rt.sources.map(function (s) { return [s.source, s.consumer_group, s.lag]; }));
  $("rt-functions-note").textContent = rt.functions_note || "";
  fill($("rt-functions"), rt.functions.map(function (f) { return [f.name, f.state]; }));
  fill($("ov-tables"), ov.tables.map(function (t) {
    return [t.table, (t.rows_estimated ? "~" : "") + t.rows, megabytes(t.bytes), t.oldest || "none"];
  }));
  updated();
}

function megabytes(bytes) {
  return (bytes / 1048576).toFixed(1) + " MB";
}

function chart(holder, minutes) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  const width = 600, height = 120;
  svg.setAttribute("viewBox", "0 0 " + width + " " + height);
  svg.setAttribute("preserveAspectRatio", "none");
  const top = Math.max(1, ...minutes.map(function (m) { return Math.max(m.placed, m.completed); }));
  const step = width / minutes.length;
  minutes.forEach(function (m, i) {
    for (const [kind, value, offset] of [["placed", m.placed, 0], ["completed", m.completed, step / 2]]) {
      const bar = document.createElementNS(ns, "rect");
      const h = value / top * (height - 4);
      bar.setAttribute("x", String(i * step + offset));
      bar.setAttribute("y", String(height - h));
      bar.setAttribute("width", String(Math.max(step / 2 - 1, 1)));
      bar.setAttribute("height", String(h));
      bar.setAttribute("class", kind);
      const title = document.createElementNS(ns, "title");
      title.textContent = new Date(m.minute).toLocaleTimeString() + ": " + value + " " + kind;
      bar.appendChild(title);
      svg.appendChild(bar);
    }
  });
  holder.replaceChildren(svg);
}

// --- find ------------------------------------------------------------------------------

function filterOf(query) {
  const filter = {};
  for (const name of FILTER_FIELDS) if (query.get(name)) filter[name] = query.get(name);
  if (filter.older_than_s) filter.older_than_s = Number(filter.older_than_s);
  return filter;
}

function localInput(iso) {  // an ISO time as a datetime-local input shows it
  const d = new Date(iso);
  return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
}

function orderRows(items) {
  return items.map(function (o) {
    return [link(short(o.id), "view=order&id=" + o.id), when(o.created_at), o.customer_id,
            o.status, o.reason || "", o.total];
  });
}

async function find() {
  const query = params();
  const form = $("find-form");
  for (const name of ["status", "reason", "customer", "sku", "id"]) form[name].value = query.get(name) || "";
  form.since.value = query.get("since") ? localInput(query.get("since")) : "";
  form.until.value = query.get("until") ? localInput(query.get("until")) : "";
  form.older_than_min.value = query.get("older_than_s") ? Number(query.get("older_than_s")) / 60 : "";
  const search = new URLSearchParams(filterOf(query));
  search.set("limit", "50");
  const page = await api("/orders?" + search);
  fill($("find-rows"), orderRows(page.items));
  $("find-caption").textContent = page.items.length ? "" : "No order matches.";
  moreButton($("find-more"), page.next_cursor, async function (cursor) {
    search.set("cursor", cursor);
    const next = await api("/orders?" + search);
    for (const row of orderRows(next.items)) fillAppend($("find-rows"), row);
    return next.next_cursor;
  });
  bulk($("bulk-cancel"), "cancel", function () { return filterOf(params()); });
}

function fillAppend(tbody, cells) {
  const holder = document.createElement("tbody");
  fill(holder, [cells]);
  tbody.appendChild(holder.firstChild);
}

function moreButton(button, cursor, load) {
  button.hidden = !cursor;
  button.onclick = async function () {
    try {
      const next = await load(cursor);
      cursor = next;
      button.hidden = !next;
    } catch (error) { fail(error); }
  };
}

$("find-form").addEventListener("submit", function (event) {
  event.preventDefault();
  const form = event.target;
  const query = new URLSearchParams({ view: "find" });
  for (const name of ["status", "reason", "customer", "sku", "id"]) {
    if (form[name].value.trim()) query.set(name, form[name].value.trim());
  }
  for (const name of ["since", "until"]) {
    if (form[name].value) query.set(name, new Date(form[name].value).toISOString());
  }
  if (form.older_than_min.value !== "") {
    query.set("older_than_s", String(Math.round(Number(form.older_than_min.value) * 60)));
  }
  go(query.toString());
});

// --- bulk operations: a dry run, then the count typed back -----------------------------

function bulk(details, kind, filter) {
  const holder = details.querySelector("[data-bulk]");
  const form = $("bulk-template").content.firstElementChild.cloneNode(true);
  holder.replaceChildren(form);
  const run = form.querySelector(".bulk-run");
  const confirm = form.confirm;
  let phrase = null;
  const path = kind === "cancel" ? "/bulk/cancel" : "/bulk/redrive";
  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    form.querySelector(".bulk-result").textContent = "";
    try {
      const answer = await api(path, Object.assign(filter(), { why: form.why.value, dry_run: true }));
      phrase = answer.confirm;
      form.querySelector(".bulk-count").textContent = kind === "cancel"
        ? answer.affected + " open orders of the " + answer.matching + " the filter matches would be cancelled" +
          (answer.sample.length ? " (first: " + answer.sample.map(short).join(", ") + ")" : "") + "."
        : answer.affected + " waiting letters would be re-driven" +
          (answer.sample.length ? " (" + answer.sample.join(", ") + ")" : "") + ".";
      form.querySelector(".bulk-phrase").textContent = phrase;
      form.querySelector(".bulk-confirm").hidden = answer.affected === 0;
      run.hidden = answer.affected === 0;
      run.textContent = kind === "cancel" ? "Cancel " + answer.affected + " orders"
                                          : "Re-drive " + answer.affected + " letters";
      confirm.value = "";
      run.disabled = true;
    } catch (error) { fail(error); }
  });
  confirm.addEventListener("input", function () { run.disabled = confirm.value.trim() !== phrase; });
  run.addEventListener("click", async function () {
    run.disabled = true;
    try {
      const answer = await api(path, Object.assign(filter(), {
        why: form.why.value, dry_run: false, confirm: confirm.value }));
      form.querySelector(".bulk-result").textContent = answer.result.message +
        " (audit #" + answer.result.audit_id + ")";
      run.hidden = true;
      form.querySelector(".bulk-confirm").hidden = true;
    } catch (error) { fail(error); }
  });
}

// --- stuck -----------------------------------------------------------------------------

function olderThan() {
  const given = params().get("older_than_s");
  return given !== null && given !== "" ? Number(given) : session.stuck_after_s;
}

async function stuck(refresh) {
  const older = olderThan();
  if (!refresh) $("stuck-form").older_than_min.value = older / 60;
  const page = await api("/stuck?older_than_s=" + older);
  fill($("stuck-rows"), page.items.map(function (item) {
    const why = document.createElement("ul");
    list(why, item.why, "");
    return [link(short(item.order.id), "view=order&id=" + item.order.id),
            when(item.order.created_at), item.order.status, why];
  }));
  $("stuck-caption").textContent = page.items.length
    ? page.items.length + (page.more ? "+" : "") + " stuck, oldest first" : "Nothing is stuck.";
  // A refresh keeps the bulk form as it is: the operator may be typing in it.
  if (!refresh) bulk($("bulk-stuck"), "cancel", function () { return { status: "open", older_than_s: olderThan() }; });
  updated();
}

$("stuck-form").addEventListener("submit", function (event) {
  event.preventDefault();
  const minutes = Number(event.target.older_than_min.value);
  go("view=stuck&older_than_s=" + Math.round(minutes * 60));
});

// --- one order -------------------------------------------------------------------------

let shownOrder = null;

async function order(refresh) {
  const id = params().get("id");
  if (!refresh && shownOrder !== id) { $("order-result").textContent = ""; }
  shownOrder = id;
  const o = await api("/orders/" + encodeURIComponent(id));
  $("order-title").textContent = "Order " + o.order.id;
  facts($("order-facts"), [
    ["Status", o.order.status + (o.order.reason ? " (" + o.order.reason + ")" : "")],
    ["Customer", link(o.order.customer_id, "view=find&customer=" + encodeURIComponent(o.order.customer_id))],
    ["Total", o.order.total + " (" + o.order.payment_mode + ")"],
    ["Placed", when(o.order.created_at)],
    ["Last change", when(o.order.updated_at)],
    ["Items", o.items.map(function (i) { return i.quantity + " x " + i.sku; }).join(", ")],
  ]);
  $("cancel-button").disabled = Boolean(o.cancel_refused);
  $("cancel-button").title = o.cancel_refused || "";
  $("order-redrive-form").hidden = !o.dead_letters.some(function (l) { return l.state === "waiting"; });
  fill($("order-timeline"), o.timeline.map(function (e) {
    return [clock(e.at), e.function, e.what, e.outcome || "", e.detail || ""];
  }));
  fill($("order-events"), o.events.map(function (e) {
    const handled = e.handled.map(function (h) {
      return h.function + ": " + h.outcome + (h.latency_ms != null ? " after " + Math.round(h.latency_ms) + " ms" : "");
    }).join("; ");
    return [e.type.replace(/^shop\./, "").replace(/\.v1$/, "") + (e.redrive ? " (re-drive " + e.redrive + ")" : ""),
            e.producer,
            e.published_after_ms != null ? "after " + Math.round(e.published_after_ms) + " ms" : "not marked yet",
            handled];
  }));
  const fx = o.effects;
  facts($("order-effects"), [
    ["Stock", (fx.reservation || "nothing reserved") +
      (fx.stock_movements.length ? ": " + fx.stock_movements.map(function (m) {
        return m.kind + " " + m.sku; }).join(", ") : "")],
    ["Wallet", (fx.payment || "no payment") +
      (fx.ledger.length ? ": " + fx.ledger.map(function (l) { return l.kind + " " + l.amount; }).join(", ") : "")],
    ["Shipment", fx.shipment ? fx.shipment + (fx.tracking_number ? " " + fx.tracking_number : "") : "none"],
    ["Notifications", fx.notifications.join("; ") || "none"],
  ]);
  list($("order-letters"), o.dead_letters.map(function (l) {
    const li = document.createElement("span");
    li.appendChild(link("dead letter " + l.id, "view=letter&id=" + l.id));
    li.appendChild(document.createTextNode(" " + l.type + " at " + (l.failed_at || "?") +
      " (HTTP " + (l.error_code || "?") + "), " + l.state));
    return li;
  }), "none");
  list($("order-audit"), o.audit.map(auditLine), "none");
  const traces = o.traces.map(function (t) { return "trace " + t; });
  const logs = document.createElement("span");
  if (o.kibana.url) logs.appendChild(el("a", "Its log lines in Kibana Discover", { href: o.kibana.url, rel: "noopener" }));
  else logs.textContent = "Kibana (set SAGA_KIBANA_URL for a link): " + o.kibana.query;
  list($("order-traces"), traces.concat([logs]), "");
  updated();
}

function auditLine(a) {
  return "#" + a.id + " " + when(a.at) + " " + a.actor + ": " + a.action + " " + a.outcome +
    (a.why ? " (" + a.why + ")" : "") + (a.detail && a.detail.message ? ": " + a.detail.message : "");
}

function operation(formId, resultId, path, after) {
  $(formId).addEventListener("submit", async function (event) {
    event.preventDefault();
    const form = event.target;
    $(resultId).textContent = "";
    try {
      const answer = await api(path(), { why: form.why.value });
      $(resultId).textContent = answer.message + " (audit #" + answer.audit_id + ")";
      form.why.value = "";
    } catch (error) {
      $(resultId).textContent = error.message;
    }
    after();
  });
}

operation("cancel-form", "order-result",
          function () { return "/orders/" + encodeURIComponent(params().get("id")) + "/cancel"; },
          function () { order(true).catch(fail); });
operation("order-redrive-form", "order-result",
          function () { return "/orders/" + encodeURIComponent(params().get("id")) + "/redrive"; },
          function () { order(true).catch(fail); });

// --- dead letters ----------------------------------------------------------------------

async function letters() {
  const query = params();
  const form = $("letters-form");
  form.state.value = query.get("state") || "waiting";
  form.type.value = query.get("type") || "";
  const search = new URLSearchParams({ state: form.state.value, limit: "50" });
  if (form.type.value) search.set("type", form.type.value);
  const rows = function (items) {
    return items.map(function (l) {
      return [link(String(l.id), "view=letter&id=" + l.id), when(l.created_at), l.type,
              l.order_id ? link(short(l.order_id), "view=order&id=" + l.order_id) : "",
              (l.failed_at || "?") + " (HTTP " + (l.error_code || "?") + ")",
              l.state + (l.redrive_of ? ", failure of re-driving " + l.redrive_of : "")];
    });
  };
  const page = await api("/dead-letters?" + search);
  fill($("letters-rows"), rows(page.items));
  moreButton($("letters-more"), page.next_before, async function (before) {
    search.set("before", before);
    const next = await api("/dead-letters?" + search);
    for (const row of rows(next.items)) fillAppend($("letters-rows"), row);
    return next.next_before;
  });
  bulk($("bulk-redrive"), "redrive", function () {
    if (!params().get("type")) throw new Error("Give an event type first (the filter above).");
    return { type: params().get("type") };
  });
}

$("letters-form").addEventListener("submit", function (event) {
  event.preventDefault();
  const query = new URLSearchParams({ view: "letters", state: event.target.state.value });
  if (event.target.type.value.trim()) query.set("type", event.target.type.value.trim());
  go(query.toString());
});

function showLetter(l) {
  $("letter-title").textContent = "Dead letter " + l.id;
  facts($("letter-facts"), [
    ["State", l.state + (l.redrive_count ? " (" + l.redrive_count + " re-drives)" : "")],
    ["Type", l.type], ["Event", l.event_id],
    ["Order", l.order_id ? link(l.order_id, "view=order&id=" + l.order_id) : "–"],
    ["Failed at", (l.failed_at || "?") + " (HTTP " + (l.error_code || "?") + ")"],
    ["Stored", when(l.created_at)],
    ["Failure of re-driving", l.redrive_of],
    ["Its re-drives failed as", l.failed_again_as.join(", ") || "–"],
  ]);
  $("letter-masked").textContent = l.masked ? "(masked)" : "(unmasked: this was audited)";
  $("letter-data").textContent = JSON.stringify(l.data, null, 2);
  $("letter-error").textContent = l.error || "";
  $("letter-attributes").textContent = JSON.stringify(l.attributes, null, 2);
  list($("letter-audit"), l.audit.map(auditLine), "none");
}

async function letter() {
  showLetter(await api("/dead-letters/" + encodeURIComponent(params().get("id"))));
}

function letterPath(action) {
  return function () { return "/dead-letters/" + encodeURIComponent(params().get("id")) + "/" + action; };
}

operation("letter-redrive-form", "letter-result", letterPath("redrive"), function () { letter().catch(fail); });
operation("letter-resolve-form", "letter-result", letterPath("resolve"), function () { letter().catch(fail); });
$("letter-reveal-form").addEventListener("submit", async function (event) {
  event.preventDefault();
  try {
    showLetter(await api(letterPath("reveal")(), { why: event.target.why.value }));
    event.target.why.value = "";
  } catch (error) { fail(error); }
});

// --- audit -----------------------------------------------------------------------------

async function audit() {
  const rows = function (items) {
    return items.map(function (a) {
      const result = [a.filter ? "filter " + JSON.stringify(a.filter) : "",
                      a.detail && a.detail.message ? a.detail.message : ""].filter(Boolean).join("; ");
      return [a.id, when(a.at), a.actor, a.action, a.outcome, a.count, a.why, result];
    });
  };
  const page = await api("/audit?limit=50");
  fill($("audit-rows"), rows(page.items));
  moreButton($("audit-more"), page.next_before, async function (before) {
    const next = await api("/audit?limit=50&before=" + before);
    for (const row of rows(next.items)) fillAppend($("audit-rows"), row);
    return next.next_before;
  });
}

if (sessionStorage.getItem(TOKEN_KEY)) signIn().catch(fail);
