// ilagent sandbox page: alerts, escalation-policy levels and a request stream, kept live over
// server-sent events.
// On each (re)connection the server says "hello" once it has subscribed us; only then is the
// snapshot loaded, so nothing sent between snapshot and stream is lost; what the stream brings
// meanwhile is applied after the snapshot. Updates carry a rev/seq,
// so a stale copy never overwrites a newer one whatever order the two channels deliver in.
"use strict";

// Set once per page load: tests check it is still there to prove the page never reloaded.
window.sandboxPageLoadedAt = Date.now();

const MAX_ALERT_ROWS = 500;
const MAX_STREAM_ROWS = 200;
const FLASH_MS = 4000; // how long a changed level stays highlighted
const STATUSES = ["PENDING", "ACCEPTED", "RESOLVED"];

const alertsById = new Map(); // id -> {alert, row}
const policiesById = new Map(); // id -> {policy, node}
const streamBySeq = new Map(); // seq -> <li>
const counts = { accepted: 0, rejected: 0 };

const $ = (id) => document.getElementById(id);

// the daemon whose /trace tells an alert's story (ilagent sandbox --agent_url); "": no links
let agentUrl = "";

function traceCell(alertKey) {
  if (!agentUrl || !alertKey) return el("td", { className: "trace" });
  const href = `${agentUrl}/trace?alert_key=${encodeURIComponent(alertKey)}`;
  return el("td", { className: "trace" },
    el("a", { href, target: "_blank", rel: "noopener", title: `the daemon's journal of ${alertKey}`, text: "trace" }));
}

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props || {})) {
    if (name === "className") node.className = value;
    else if (name === "text") node.textContent = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) if (child != null) node.append(child);
  return node;
}

function clock(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleTimeString([], { hour12: false });
}

function timeCell(iso) {
  return el("td", { className: "time", title: iso || "", text: clock(iso) });
}

// -- alerts -------------------------------------------------------------------------------------

function alertCells(alert) {
  const status = STATUSES.includes(alert.status) ? alert.status : "PENDING";
  return [
    el("td", {}, el("span", { className: `badge ${status}`, text: alert.status })),
    el("td", { className: "summary" }, el("div", { className: "clip", title: alert.summary || "", text: alert.summary || "" })),
    el("td", { className: "key", title: alert.alertKey, text: alert.alertKey }),
    el("td", { className: `priority-${alert.priority}`, text: alert.priority }),
    el("td", { className: "num", text: String(alert.eventCount) }),
    timeCell(alert.firstAt),
    timeCell(alert.lastAt),
    traceCell(alert.alertKey),
  ];
}

function showAlert(alert) {
  const known = alertsById.get(alert.id);
  if (known && known.alert.rev > alert.rev) return; // a stale copy
  const row = known ? known.row : el("tr", { id: `alert-${alert.id}`, "data-alert-id": alert.id });
  row.setAttribute("data-alert-key", alert.alertKey);
  row.setAttribute("data-status", alert.status);
  row.replaceChildren(...alertCells(alert));
  alertsById.set(alert.id, { alert, row });
  if (!known) insertAlertRow(row, alert.id);
  refreshAlertSummary();
}

function insertAlertRow(row, id) {
  const body = $("alert-rows");
  // newest (highest id) first
  const after = [...body.children].find((other) => Number(other.dataset.alertId) < id);
  body.insertBefore(row, after || null);
  while (body.children.length > MAX_ALERT_ROWS) {
    const last = body.lastElementChild;
    alertsById.delete(Number(last.dataset.alertId));
    last.remove();
  }
  if (location.hash === `#${row.id}`) row.scrollIntoView({ block: "center" });
}

function refreshAlertSummary() {
  let open = 0;
  for (const { alert } of alertsById.values()) if (alert.status !== "RESOLVED") open += 1;
  $("open-count").textContent = String(open);
  $("no-alerts").hidden = alertsById.size > 0;
}

// -- escalation policies ------------------------------------------------------------------------

function personName(user) {
  const name = `${user.firstName || ""} ${user.lastName || ""}`.trim();
  return name ? `${name} <${user.email}>` : user.email;
}

function levelRow(rule, index) {
  const emails = rule.users.map((user) => user.email);
  const who = rule.users.length
    ? rule.users.map((user) => el("span", { className: "person", title: `user ${user.id}`, text: personName(user) }))
    : [el("span", { className: "nobody", text: "nobody" })];
  return el(
    "tr",
    { "data-level": String(index), "data-users": emails.join(",") },
    el("td", { className: "num", text: String(index) }),
    el("td", {}, ...who),
    el("td", { className: "num", text: `${rule.escalationTimeout} min` }),
  );
}

function showPolicy(policy, { flash = true } = {}) {
  const known = policiesById.get(policy.id);
  if (known && known.policy.rev >= policy.rev) return; // the same or a stale copy
  const node = known ? known.node : el("div", { className: "policy", id: `policy-${policy.id}` });
  node.setAttribute("data-policy-id", policy.id);
  node.setAttribute("data-routing-key", policy.routingKey || "");
  node.setAttribute("data-rev", policy.rev);
  const previous = known ? known.policy.escalationRules : [];
  const rows = policy.escalationRules.map((rule, index) => {
    const row = levelRow(rule, index);
    const before = previous[index];
    if (flash && known && (!before || JSON.stringify(before) !== JSON.stringify(rule))) {
      row.classList.add("flash");
      setTimeout(() => row.classList.remove("flash"), FLASH_MS);
    }
    return row;
  });
  node.replaceChildren(
    el(
      "h3",
      {},
      `${policy.name} `,
      el("code", { className: "key", text: policy.routingKey || "(no routing key)" }),
      el("small", { className: "time", title: policy.updatedAt || "", text: policy.updatedAt ? `changed ${clock(policy.updatedAt)}` : "" }),
    ),
    el(
      "table",
      {},
      el("thead", {}, el("tr", {}, el("th", { className: "num", text: "Level" }), el("th", { text: "On call" }), el("th", { className: "num", text: "Escalates after" }))),
      el("tbody", {}, ...rows),
    ),
  );
  policiesById.set(policy.id, { policy, node });
  if (!known) {
    const list = $("policy-list");
    const after = [...list.children].find((other) => Number(other.dataset.policyId) > policy.id);
    list.insertBefore(node, after || null);
  }
  $("no-policies").hidden = policiesById.size > 0;
}

function showPolicies(policies) {
  for (const policy of policies) showPolicy(policy);
}

function clearPolicies() {
  policiesById.clear();
  $("policy-list").replaceChildren();
  $("no-policies").hidden = false;
}

// -- request stream -----------------------------------------------------------------------------

function statusClass(status) {
  if (status === 429) return "s429";
  return `s${Math.floor(status / 100)}xx`;
}

function describe(request) {
  const body = request.body && typeof request.body === "object" ? request.body : {};
  const what = el("span", { className: "what" });
  // the ilagent route that sent it (its X-Ilagent-Route header): text only, never markup
  if (typeof request.route === "string") what.append(el("span", { className: "route", title: "ilagent route", text: request.route }));
  if (typeof body.eventType === "string") what.append(el("span", { className: "etype", text: body.eventType }));
  const text = body.summary || body.alertKey || body.email || "";
  if (text) what.append(`${text} `);
  const answer = request.answer;
  if (request.status >= 400 && answer && typeof answer.code === "string") {
    what.append(el("span", { className: "code", text: answer.code }));
  }
  what.append(el("span", { className: "path", text: `${request.method} ${request.path}` }));
  return what;
}

function showRequest(request, alert) {
  if (streamBySeq.has(request.seq)) return;
  const meta = [`#${request.seq}`, request.time, `key ${request.integrationKey || "-"}`];
  if (typeof request.route === "string") meta.push(`route ${request.route}`);
  if (alert) meta.push(`alert ${alert.id} ${alert.status}`);
  if (request.userAgent) meta.push(request.userAgent);
  const item = el(
    "li",
    { "data-seq": request.seq, "data-status": request.status, "data-route": typeof request.route === "string" ? request.route : "" },
    el(
      "details",
      {},
      el(
        "summary",
        {},
        el("span", { className: "time mono", title: request.time, text: clock(request.time) }),
        el("span", { className: `badge ${statusClass(request.status)}`, text: String(request.status) }),
        describe(request),
      ),
      el("div", { className: "meta", text: meta.join("  ·  ") }),
      el("div", { className: "label", text: "request body" }),
      el("pre", { text: request.body == null ? "(none)" : JSON.stringify(request.body, null, 2) }),
      el("div", { className: "label", text: "answer" }),
      el("pre", { text: request.answer == null ? "(none)" : JSON.stringify(request.answer, null, 2) }),
    ),
  );
  const list = $("stream-rows");
  const after = [...list.children].find((other) => Number(other.dataset.seq) < request.seq);
  list.insertBefore(item, after || null);
  streamBySeq.set(request.seq, item);
  while (list.children.length > MAX_STREAM_ROWS) {
    const last = list.lastElementChild;
    streamBySeq.delete(Number(last.dataset.seq));
    last.remove();
  }
  $("no-requests").hidden = true;
}

// -- counters, snapshot, stream -----------------------------------------------------------------

function showStats(stats, { exact = false } = {}) {
  // counters only grow between resets, so the larger of two copies is the newer one
  counts.accepted = exact ? stats.accepted : Math.max(counts.accepted, stats.accepted);
  counts.rejected = exact ? stats.rejected : Math.max(counts.rejected, stats.rejected);
  $("accepted-count").textContent = String(counts.accepted);
  $("rejected-count").textContent = String(counts.rejected);
}

function clearAll() {
  alertsById.clear();
  streamBySeq.clear();
  $("alert-rows").replaceChildren();
  $("stream-rows").replaceChildren();
  $("no-requests").hidden = false;
  clearPolicies();
  refreshAlertSummary();
}

async function getJson(path) {
  const response = await fetch(path, { headers: { Accept: "application/json" } });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

async function loadSnapshot() {
  const [alerts, stats, requests, policies] = await Promise.all([
    getJson(`/sandbox/alerts?limit=${MAX_ALERT_ROWS}`),
    getJson("/sandbox/stats"),
    getJson(`/sandbox/requests?last=${MAX_STREAM_ROWS}`),
    getJson("/sandbox/policies"),
  ]);
  // rebuilt only now that the fresh copy is here: the page never flashes empty
  clearAll();
  showSnapshot({ alerts, stats, requests, policies }, { exact: true });
}

function showSnapshot({ alerts, stats, requests, policies }, { exact = false } = {}) {
  for (const alert of [...alerts].reverse()) showAlert(alert);
  for (const policy of policies) showPolicy(policy, { flash: false });
  for (const request of requests) showRequest(request, null);
  showStats(stats, { exact });
}

// The state of the moment the page was served, embedded by the server: shown before the
// stream connects, so the first paint (and a screenshot right after load) is right.
function showInitialState() {
  const node = $("initial-state");
  const state = node ? JSON.parse(node.textContent || "null") : null;
  if (state && typeof state.agentUrl === "string") agentUrl = state.agentUrl;
  if (state) showSnapshot(state, { exact: true });
}

function setConnection(state) {
  const node = $("connection");
  node.dataset.state = state;
  node.textContent = state;
}

function onMessage(message) {
  if (message.type === "reset") {
    clearAll();
    showStats(message.stats, { exact: true });
    for (const policy of message.policies || []) showPolicy(policy, { flash: false });
  } else if (message.type === "policies") {
    showPolicies(message.policies);
  } else if (message.type === "request") {
    if (message.alert) showAlert(message.alert);
    if (message.policy) showPolicy(message.policy);
    showRequest(message.request, message.alert);
    showStats(message.stats);
  }
}

function connect() {
  const source = new EventSource("/sandbox/stream");
  // messages that arrive while a snapshot loads: applied after it, or the snapshot (asked for
  // before they happened) would wipe them out when it replaces the page. Each hello holds its
  // own: after a reconnect during a load, the newer snapshot covers what the older one held,
  // and messages stay held until that newer one is in.
  let held = null;
  source.addEventListener("hello", () => {
    setConnection("live");
    const mine = (held = []);
    // rebuild from scratch (a reset may have happened while we were away), once it is loaded
    loadSnapshot()
      .catch((error) => console.error("sandbox snapshot failed", error))
      .finally(() => {
        if (held !== mine) return; // a later hello's snapshot applies them
        held = null;
        for (const message of mine) onMessage(message);
      });
  });
  source.addEventListener("message", (event) => {
    const message = JSON.parse(event.data);
    if (held) held.push(message);
    else onMessage(message);
  });
  source.addEventListener("error", () => setConnection("connecting"));
}

document.addEventListener("DOMContentLoaded", () => {
  for (const node of document.querySelectorAll(".origin")) node.textContent = location.origin;
  $("reset").addEventListener("click", async () => {
    if (!confirm("Forget every alert, event, request, heartbeat and fault, and put the policies back as seeded at start?")) return;
    await fetch("/sandbox", { method: "DELETE" });
  });
  refreshAlertSummary();
  showInitialState();
  connect();
});
