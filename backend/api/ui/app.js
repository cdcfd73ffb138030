// agentflow web page: submit runs, list them, watch one live, read and download its report.
// Plain DOM, no build step. Every value from the server is set as text, never parsed as HTML;
// the one exception is the report, which the server sanitises (nh3) before it is shown.

const KEY_STORAGE = "agentflow.apiKey";
const TERMINAL = new Set(["completed", "failed", "cancelled"]);
const $ = (selector) => document.querySelector(selector);

const state = { key: sessionStorage.getItem(KEY_STORAGE) || "", record: null, stream: null, timer: null };

class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
  }
}

// --- HTTP -------------------------------------------------------------------------------------

function headers(extra = {}) {
  // EventSource cannot send headers, so the event stream is read with fetch (see follow()).
  return state.key ? { ...extra, Authorization: `Bearer ${state.key}` } : extra;
}

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: headers(options.headers) });
  if (!response.ok) {
    const problem = await response.json().catch(() => ({ title: response.statusText }));
    throw new ApiError(response.status, problem);
  }
  return response;
}

async function* serverSentEvents(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event = { type: "message", data: [] };
      for (const line of block.split("\n")) {
        if (!line || line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "event") event.type = text;
        else if (field === "data") event.data.push(text);
      }
      if (event.data.length) yield { type: event.type, data: event.data.join("\n") };
    }
  }
}

// --- messages ---------------------------------------------------------------------------------

function show(error) {
  const box = $("#message");
  box.textContent = error ? `${error.message}${error.status ? ` (HTTP ${error.status})` : ""}` : "";
  box.hidden = !error;
}

function guarded(action) {
  return async (...args) => {
    try {
      show(null);
      await action(...args);
    } catch (error) {
      if (error.name !== "AbortError") show(error);
    }
  };
}

// --- runs list --------------------------------------------------------------------------------

async function refreshList() {
  const filters = new FormData($("#filters"));
  const query = new URLSearchParams({ limit: "20" });
  for (const name of ["type", "status"]) if (filters.get(name)) query.set(name, filters.get(name));
  const page = await (await api(`/workflows?${query}`)).json();
  const rows = page.items.map((record) => {
    const row = document.createElement("tr");
    row.dataset.id = record.workflow_id;
    if (state.record && state.record.workflow_id === record.workflow_id) row.setAttribute("aria-current", "true");
    const status = badge(record.status);
    const cells = [status, record.workflow_type, record.input.topic || "", new Date(record.created_at).toLocaleString()];
    for (const value of cells) {
      const cell = document.createElement("td");
      if (value instanceof Node) cell.append(value);
      else cell.textContent = value;
      row.append(cell);
    }
    row.children[2].className = "topic";
    row.children[2].title = record.input.topic || "";
    row.addEventListener("click", guarded(() => watch(record.workflow_id)));
    return row;
  });
  $("#runs tbody").replaceChildren(...rows);
}

function badge(status) {
  const span = document.createElement("span");
  span.className = `status ${status}`;
  span.textContent = status;
  return span;
}

// --- one run ----------------------------------------------------------------------------------

function seconds(record) {
  if (record.execution_time != null) return record.execution_time;
  const since = Date.parse(record.started_at || record.created_at);
  return Math.max(0, (Date.now() - since) / 1000);
}

function render(record) {
  const previous = state.record && state.record.workflow_id === record.workflow_id ? state.record : null;
  state.record = record;
  $("#run").hidden = false;
  $("#run-id").textContent = record.workflow_id;
  $("#run-type").textContent = record.workflow_type;
  const status = $("#run-status");
  status.textContent = record.status;
  status.className = `status ${record.status}`;
  $("#run-node").textContent = record.progress.node || "—";
  $("#run-iteration").textContent = String(record.progress.iteration);
  const sources = record.result && Array.isArray(record.result.sources) ? record.result.sources.length : null;
  $("#run-sources").textContent = sources == null ? "—" : String(sources);
  const usage = record.usage;
  $("#run-tokens").textContent = `${usage.input_tokens.toLocaleString()} in / ${usage.output_tokens.toLocaleString()} out`;
  // null: a model without a known price was called (its tokens still count).
  $("#run-cost").textContent = usage.est_cost_usd == null ? "unknown" : `$${usage.est_cost_usd.toFixed(4)}`;
  $("#run-elapsed").textContent = `${seconds(record).toFixed(1)} s`;
  const trail = previous ? previous.trail || [] : [];
  if (record.progress.node && trail[trail.length - 1] !== record.progress.node) trail.push(record.progress.node);
  record.trail = trail;
  $("#run-trail").textContent = trail.join(" → ");
  const error = $("#run-error");
  error.hidden = !record.error;
  error.textContent = record.error ? `${record.error.code}: ${record.error.message}` : "";
  renderPending(record);
  $("#cancel").hidden = TERMINAL.has(record.status);
  $("#exports").hidden = !record.result;
  for (const button of document.querySelectorAll("#exports [data-research]")) {
    button.hidden = record.workflow_type !== "research";
  }
}

function renderPending(record) {
  const plan = record.status === "waiting" && record.pending && record.pending.plan;
  $("#pending").hidden = !plan;
  if (!plan) return;
  const key = JSON.stringify(plan);
  if ($("#pending-plan").dataset.plan === key) return; // re-rendered every half second: keep the DOM
  $("#pending-plan").dataset.plan = key;
  $("#pending-plan").replaceChildren(
    ...plan.steps.map((step) => {
      const item = document.createElement("li");
      const kind = Object.assign(document.createElement("span"), { className: "kind" });
      const after = step.depends_on.length ? `, after ${step.depends_on.join(", ")}` : "";
      kind.textContent = ` (${step.id}: ${step.kind}${after})`;
      item.append(document.createTextNode(step.instruction), kind);
      return item;
    }),
  );
}

async function resume(action) {
  const id = state.record.workflow_id;
  const response = await api(`/workflows/${encodeURIComponent(id)}/resume`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ action }),
  });
  render(await response.json());
  await refreshList();
}

async function watch(workflowId) {
  if (state.stream) state.stream.abort();
  clearInterval(state.timer);
  state.record = null;
  $("#report").replaceChildren();
  const record = await (await api(`/workflows/${encodeURIComponent(workflowId)}`)).json();
  render(record);
  for (const row of document.querySelectorAll("#runs tbody tr")) {
    row.setAttribute("aria-current", String(row.dataset.id === workflowId));
  }
  if (!TERMINAL.has(record.status)) await follow(workflowId);
  await finished(workflowId);
}

async function follow(workflowId) {
  const stream = new AbortController();
  state.stream = stream;
  state.timer = setInterval(() => state.record && render(state.record), 500);
  try {
    const response = await api(`/workflows/${encodeURIComponent(workflowId)}/events`, {
      headers: { Accept: "text/event-stream" },
      signal: stream.signal,
    });
    for await (const event of serverSentEvents(response)) {
      if (event.type === "update" || event.type === "end") render(JSON.parse(event.data));
      if (event.type === "end") break;
    }
  } finally {
    clearInterval(state.timer);
    stream.abort();
  }
}

async function finished(workflowId) {
  if (!state.record || state.record.workflow_id !== workflowId || !TERMINAL.has(state.record.status)) return;
  await refreshList();
  if (state.record.result) await showReport(workflowId);
}

async function showReport(workflowId) {
  const page = await (await api(`/workflows/${encodeURIComponent(workflowId)}/export?format=html`)).text();
  // DOMParser never runs scripts; the export is sanitised on the server in any case.
  const doc = new DOMParser().parseFromString(page, "text/html");
  const content = doc.querySelector("main") || doc.body;
  for (const link of content.querySelectorAll('a[href^="http"]')) {
    link.target = "_blank";
    link.rel = "noopener noreferrer";
  }
  $("#report").replaceChildren(...Array.from(content.childNodes, (node) => document.importNode(node, true)));
}

async function exportBlob(format) {
  const id = state.record.workflow_id;
  const response = await api(`/workflows/${encodeURIComponent(id)}/export?format=${format}`);
  const disposition = response.headers.get("Content-Disposition") || "";
  const name = (disposition.match(/filename="([^"]+)"/) || [])[1] || `agentflow-${id}.${format}`;
  return { blob: await response.blob(), name };
}

async function download(format) {
  const { blob, name } = await exportBlob(format);
  const url = URL.createObjectURL(blob);
  const link = Object.assign(document.createElement("a"), { href: url, download: name });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

async function printable() {
  const { blob } = await exportBlob("html");
  window.open(URL.createObjectURL(blob), "_blank", "noopener");
}

// --- forms ------------------------------------------------------------------------------------

function workflowType() {
  return new FormData($("#submit-form")).get("type");
}

function syncForm() {
  const type = workflowType();
  for (const options of document.querySelectorAll("#submit-form .options")) options.hidden = options.dataset.for !== type;
  $("#topic-label").textContent = { research: "Question", planner: "Goal" }[type] || "Topic";
}

async function submit(event) {
  event.preventDefault();
  const form = new FormData(event.target);
  const type = form.get("type");
  const body = { topic: form.get("topic") };
  if (type === "research") {
    body.sources = form.getAll("sources");
    body.reflect = form.get("reflect") === "on";
  } else if (type === "planner") {
    body.max_steps = Number(form.get("max_steps"));
    body.approve_plan = form.get("approve_plan") === "on";
  } else {
    body.max_iterations = Number(form.get("max_iterations"));
  }
  const response = await api(`/workflows/${type}`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const record = await response.json();
  await refreshList();
  await watch(record.workflow_id);
}

async function cancel() {
  const id = state.record.workflow_id;
  render(await (await api(`/workflows/${encodeURIComponent(id)}/cancel`, { method: "POST" })).json());
}

function useKey(event) {
  event.preventDefault();
  state.key = $("#api-key").value.trim();
  if (state.key) sessionStorage.setItem(KEY_STORAGE, state.key);
  else sessionStorage.removeItem(KEY_STORAGE);
  guarded(refreshList)();
}

function start() {
  $("#api-key").value = state.key;
  $("#key-form").addEventListener("submit", useKey);
  $("#key-clear").addEventListener("click", (event) => {
    $("#api-key").value = "";
    useKey(event);
  });
  $("#submit-form").addEventListener("submit", guarded(submit));
  $("#submit-form").addEventListener("change", syncForm);
  $("#filters").addEventListener("submit", (event) => {
    event.preventDefault();
    guarded(refreshList)();
  });
  $("#cancel").addEventListener("click", guarded(cancel));
  $("#approve").addEventListener("click", guarded(() => resume("approve")));
  $("#reject").addEventListener("click", guarded(() => resume("reject")));
  for (const button of document.querySelectorAll("#exports [data-format]")) {
    button.addEventListener("click", guarded(() => download(button.dataset.format)));
  }
  $("#print").addEventListener("click", guarded(printable));
  syncForm();
  guarded(refreshList)();
}

start();
