// The batch UI: sign in with an API key, submit batches, list them, follow one live.
// Routes live in the URL's fragment: #/ (list) and #/batches/<id> (one batch).

import * as api from "./api.js";
import * as live from "./live.js";

const $ = (id) => document.getElementById(id);
const PAGE_SIZE = 10;

const state = {
  cursors: [null],   // cursor of each page seen; the last is the current page's
  nextCursor: null,
  following: null,   // live.follow() of the open batch page
  objectUrls: [],    // thumbnails' object URLs, revoked when the page changes
  thumbnails: new Map(),
  countdowns: [],    // [element, deadline ISO] refreshed every second
};

// ---------- messages ----------

function banner(text) {
  const element = $("banner");
  element.textContent = text || "";
  element.hidden = !text;
}

function explain(error) {
  if (error instanceof api.ApiError) {
    if (error.status === 429) {
      const wait = error.retryAfter ? ` Try again in ${error.retryAfter} s.` : "";
      return `Rate limit reached: your tenant has used its request budget for now.${wait}`;
    }
    return error.message;
  }
  return `The gateway could not be reached (${error.message}).`;
}

// Any call: a refused key signs out with a message; everything else goes to the banner.
async function guarded(action) {
  try {
    banner("");
    return await action();
  } catch (error) {
    if (error instanceof api.ApiError && error.status === 401 && !error.problem.type?.endsWith("bad-stream-ticket")) {
      signOut("Your API key is no longer accepted (unknown, rotated or expired). Sign in again.");
      return undefined;
    }
    banner(explain(error));
    return undefined;
  }
}

api.onBudget(({ remaining, limit, resetSeconds }) => {
  const of = limit ? ` of ${limit}` : "";
  $("budget").textContent = `Request budget: ${remaining}${of} left (full again in ${resetSeconds} s)`;
});

// ---------- views ----------

function show(view) {
  for (const id of ["signin-view", "list-view", "batch-view"]) $(id).hidden = id !== view;
  $("sign-out").hidden = view === "signin-view";
}

function stopFollowing() {
  state.following?.stop();
  state.following = null;
  for (const url of state.objectUrls) URL.revokeObjectURL(url);
  state.objectUrls = [];
  state.thumbnails = new Map();
}

async function route() {
  stopFollowing();
  state.countdowns = [];
  if (!api.key()) {
    show("signin-view");
    $("api-key").focus();
    return;
  }
  const match = location.hash.match(/^#\/batches\/([a-z0-9.-]+)$/);
  if (match) {
    show("batch-view");
    await openBatch(match[1]);
  } else {
    show("list-view");
    await guarded(loadPage);
  }
}

function signOut(message) {
  api.forgetKey();
  $("budget").textContent = "";
  $("api-key-error").textContent = message || "";
  if (location.hash && location.hash !== "#/") location.hash = "#/";
  route();
}

// ---------- sign in ----------

$("signin-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const candidate = $("api-key").value.trim();
  const error = $("api-key-error");
  error.textContent = "";
  if (!candidate) {
    error.textContent = "Enter your API key.";
    return;
  }
  try {
    await api.listBatches({ limit: 1, withKey: candidate });
  } catch (failure) {
    $("api-key").setAttribute("aria-invalid", "true");
    error.textContent = failure instanceof api.ApiError && failure.status === 401
      ? "That API key was refused: it is unknown or has expired. Ask your platform team for the current key."
      : explain(failure);
    return;
  }
  $("api-key").removeAttribute("aria-invalid");
  $("api-key").value = "";
  api.setKey(candidate);
  state.cursors = [null];
  route();
});

$("sign-out").addEventListener("click", () => signOut(""));

// ---------- create ----------

const FIELDS = ["prompts", "size", "provider", "priority", "webhook"];

// Which form field a problem+json error's `field` (items.3.prompt, defaults.size, ...) is about.
function formField(path) {
  const parts = path.split(".");
  if (parts[0] === "webhook") return "webhook";
  if (parts[0] === "priority") return "priority";
  if (parts.includes("size")) return "size";
  if (parts.includes("provider")) return "provider";
  if (parts[0] === "items") return "prompts";
  return null;
}

function clearFieldErrors() {
  for (const name of FIELDS) {
    $(`${name}-error`).textContent = "";
    $(name).removeAttribute("aria-invalid");
  }
}

function showFieldErrors(errors) {
  const unplaced = [];
  let first = null;
  for (const error of errors) {
    const name = formField(error.field || "");
    if (!name) {
      unplaced.push(error.detail);
      continue;
    }
    const index = (error.field || "").match(/^items\.(\d+)\./);
    const where = index && name === "prompts" ? `line ${Number(index[1]) + 1}: ` : "";
    const element = $(`${name}-error`);
    element.textContent = [element.textContent, where + error.detail].filter(Boolean).join("; ");
    $(name).setAttribute("aria-invalid", "true");
    first = first || $(name);
  }
  first?.focus();
  return unplaced;
}

function batchRequest() {
  const prompts = $("prompts").value.split("\n").map((line) => line.trim()).filter(Boolean);
  const request = {
    items: prompts.map((prompt) => ({ prompt })),
    defaults: { size: $("size").value.trim(), provider: $("provider").value.trim() },
    priority: $("priority").value,
  };
  const webhook = $("webhook").value.trim();
  if (webhook) request.webhook = { url: webhook };
  return request;
}

$("create-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  clearFieldErrors();
  banner("");
  const status = $("create-status");
  const request = batchRequest();
  if (request.items.length === 0) {
    $("prompts-error").textContent = "Write at least one prompt, one per line.";
    $("prompts").setAttribute("aria-invalid", "true");
    $("prompts").focus();
    return;
  }
  status.textContent = `Submitting ${request.items.length} image(s)…`;
  try {
    const created = await api.submitBatch(request);
    $("prompts").value = "";
    state.cursors = [null];
    // Said once the list is reloaded, so the message and the new row appear together.
    await guarded(loadPage);
    status.textContent = `Batch ${created.id} accepted.`;
  } catch (error) {
    status.textContent = "";
    if (error instanceof api.ApiError && error.status === 422 && error.errors.length) {
      const unplaced = showFieldErrors(error.errors);
      banner(unplaced.length ? `${error.message}: ${unplaced.join("; ")}` : "");
      status.textContent = "The batch was not submitted: see the fields marked.";
    } else if (error instanceof api.ApiError && error.status === 401) {
      signOut("Your API key is no longer accepted (unknown, rotated or expired). Sign in again.");
    } else {
      banner(explain(error));
    }
  }
});

// ---------- list ----------

// The SLA deadline: a countdown while the batch runs; met or missed once it ended.
function countdownText(deadline, phase, completedAt) {
  if (!deadline) return "—";
  const at = new Date(deadline).toLocaleTimeString();
  if (live.TERMINAL.has(phase)) {
    if (!completedAt || !["Succeeded", "PartiallySucceeded"].includes(phase)) return at;
    return new Date(completedAt) <= new Date(deadline) ? `met (by ${at})` : `missed (was ${at})`;
  }
  const seconds = Math.round((new Date(deadline) - Date.now()) / 1000);
  if (seconds < 0) return `passed ${Math.abs(seconds)} s ago`;
  const minutes = Math.floor(seconds / 60);
  return `${minutes}:${String(seconds % 60).padStart(2, "0")} left`;
}

function cell(row, text) {
  const element = row.insertCell();
  element.textContent = text ?? "—";
  return element;
}

async function loadPage() {
  const cursor = state.cursors[state.cursors.length - 1];
  const page = await api.listBatches({ cursor, limit: PAGE_SIZE });
  const body = $("batch-table").tBodies[0];
  body.replaceChildren();
  state.countdowns = [];
  for (const batch of page.data) {
    const row = body.insertRow();
    row.dataset.batch = batch.id;
    const link = document.createElement("a");
    link.href = `#/batches/${batch.id}`;
    link.textContent = batch.id;
    row.insertCell().append(link);
    cell(row, batch.status).className = `phase phase-${batch.status}`;
    cell(row, batch.progress || `0/${batch.request_counts.total}`);
    cell(row, batch.region);
    const deadline = cell(row, countdownText(batch.deadline, batch.status, batch.completed_at));
    state.countdowns.push([deadline, batch.deadline, batch.status, batch.completed_at]);
  }
  $("list-empty").hidden = page.data.length > 0;
  state.nextCursor = page.next_cursor || null;
  $("next-page").disabled = !state.nextCursor;
  $("first-page").disabled = state.cursors.length === 1;
}

$("next-page").addEventListener("click", () => {
  if (!state.nextCursor) return;
  state.cursors.push(state.nextCursor);
  guarded(loadPage);
});
$("first-page").addEventListener("click", () => {
  state.cursors = [null];
  guarded(loadPage);
});
$("refresh").addEventListener("click", () => guarded(loadPage));

setInterval(() => {
  for (const [element, deadline, phase, completedAt] of state.countdowns) {
    element.textContent = countdownText(deadline, phase, completedAt);
  }
}, 1000);

// ---------- one batch ----------

function itemEntry(id) {
  let entry = document.getElementById(`item-${id}`);
  if (entry) return entry;
  entry = document.createElement("li");
  entry.id = `item-${id}`;
  entry.className = "item";
  const figure = document.createElement("div");
  figure.className = "thumb";
  const caption = document.createElement("p");
  caption.className = "caption";
  entry.append(figure, caption);
  $("items").append(entry);
  return entry;
}

async function thumbnail(batch, item, entry) {
  if (state.thumbnails.has(item.id)) return;
  state.thumbnails.set(item.id, null);
  const blob = await guarded(() => api.imageBlob(item.image));
  if (!blob) {
    state.thumbnails.delete(item.id);
    return;
  }
  const url = URL.createObjectURL(blob);
  state.objectUrls.push(url);
  state.thumbnails.set(item.id, url);
  const image = document.createElement("img");
  image.src = url;
  image.alt = `image ${item.id}`;
  image.width = 128;
  image.height = 128;
  const download = document.createElement("a");
  download.href = url;
  download.download = `${batch.id}-${item.id}.${blob.type.split("/")[1] || "png"}`;
  download.textContent = "Download";
  download.className = "download";
  entry.querySelector(".thumb").replaceChildren(image);
  entry.querySelector(".caption").append(" ", download);
}

function render(batch) {
  $("batch-title").textContent = `Batch ${batch.id}`;
  const phase = $("batch-phase");
  phase.textContent = batch.cancel_requested && !live.TERMINAL.has(batch.status)
    ? `${batch.status} (cancelling)` : batch.status;
  phase.dataset.phase = batch.status;
  const counts = batch.request_counts;
  const done = counts.succeeded + counts.failed;
  $("batch-progress").max = counts.total;
  $("batch-progress").value = done;
  $("batch-progress-text").textContent = batch.progress || `${done}/${counts.total}`;
  $("batch-region").textContent = batch.region || "not dispatched yet";
  state.countdowns = [[$("batch-deadline"), batch.deadline, batch.status, batch.completed_at]];
  $("batch-deadline").textContent = countdownText(batch.deadline, batch.status, batch.completed_at);
  $("batch-message").textContent = batch.message || "";
  $("cancel-batch").disabled = live.TERMINAL.has(batch.status) || batch.cancel_requested;
  $("download-all").disabled = counts.succeeded === 0;
  const known = new Set();
  for (const item of batch.items) {
    known.add(item.id);
    const entry = itemEntry(item.id);
    entry.dataset.state = item.state;
    const caption = entry.querySelector(".caption");
    if (!caption.querySelector(".download")) {
      caption.textContent = `${item.id}: ${item.state}${item.error ? ` — ${item.error}` : ""}`;
    }
    if (item.state === "Succeeded" && item.image) thumbnail(batch, item, entry);
  }
  // Items without a result yet are queued; the API lists results only.
  const waiting = counts.total - known.size;
  let placeholder = document.getElementById("items-waiting");
  if (waiting > 0) {
    if (!placeholder) {
      placeholder = document.createElement("li");
      placeholder.id = "items-waiting";
      placeholder.className = "item waiting";
    }
    $("items").append(placeholder);
    placeholder.textContent = `${waiting} item(s) waiting to start`;
  } else {
    placeholder?.remove();
  }
}

async function openBatch(id) {
  $("items").replaceChildren();
  $("batch-live").textContent = "";
  const batch = await guarded(() => api.getBatch(id));
  if (!batch) {
    $("batch-title").textContent = "Batch not found";
    return;
  }
  render(batch);
  $("batch-title").focus();
  const prefer = new URLSearchParams(location.search).get("transport") === "sse" ? "sse" : "websocket";
  const following = live.follow(batch, {
    onBatch: render,
    onTransport: (text) => { $("batch-live").textContent = text; },
    prefer,
  });
  state.following = following;
  following.done.catch((error) => guarded(() => Promise.reject(error)));
}

$("cancel-batch").addEventListener("click", async () => {
  const id = location.hash.split("/").pop();
  const batch = await guarded(() => api.getBatch(id));
  if (!batch) return;
  const cancelled = await guarded(() => api.cancelBatch(batch));
  if (cancelled) render(cancelled);
});

$("download-all").addEventListener("click", () => {
  for (const link of document.querySelectorAll("#items a.download")) link.click();
});

window.addEventListener("hashchange", route);
route();
