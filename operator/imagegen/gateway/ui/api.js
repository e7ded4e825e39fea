// The batch API as the page uses it: the key from sessionStorage in Authorization, the
// rate-limit headers read from every answer, problem+json errors turned into ApiError.

const KEY_STORAGE = "imagegen.apiKey";
const PREFIX = "/api/v1/batches";

export class ApiError extends Error {
  constructor(status, problem, retryAfter) {
    super(problem.detail || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
    this.errors = problem.errors || [];
    this.retryAfter = retryAfter;
  }
}

const budgetListeners = [];

export function onBudget(listener) {
  budgetListeners.push(listener);
}

export function key() {
  return sessionStorage.getItem(KEY_STORAGE);
}

export function setKey(value) {
  sessionStorage.setItem(KEY_STORAGE, value);
}

export function forgetKey() {
  sessionStorage.removeItem(KEY_STORAGE);
}

// `"requests";r=58;t=1` and `"requests";q=60;w=60`: the requests entry's parameters.
function requestsEntry(header) {
  if (!header) return null;
  const entry = header.split(",").map((part) => part.trim()).find((part) => part.startsWith('"requests"'));
  if (!entry) return null;
  const found = {};
  for (const parameter of entry.split(";").slice(1)) {
    const [name, value] = parameter.split("=");
    found[name.trim()] = Number(value);
  }
  return found;
}

function readBudget(response) {
  const state = requestsEntry(response.headers.get("RateLimit"));
  const policy = requestsEntry(response.headers.get("RateLimit-Policy"));
  if (!state) return;
  const budget = { remaining: state.r, resetSeconds: state.t, limit: policy ? policy.q : null };
  for (const listener of budgetListeners) listener(budget);
}

export async function call(path, { method = "GET", body, headers = {}, withKey } = {}) {
  const sent = { ...headers, Authorization: `Bearer ${withKey || key()}` };
  if (body !== undefined) sent["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers: sent,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "omit",
    cache: "no-store",
  });
  readBudget(response);
  if (response.ok) return response;
  let problem = { detail: `HTTP ${response.status}` };
  try {
    problem = await response.json();
  } catch {
    // Not problem+json (a proxy's page): the status says enough.
  }
  throw new ApiError(response.status, problem, Number(response.headers.get("Retry-After")) || null);
}

export async function listBatches({ cursor, limit = 10, withKey } = {}) {
  const query = new URLSearchParams({ limit: String(limit) });
  if (cursor) query.set("cursor", cursor);
  return (await call(`${PREFIX}?${query}`, { withKey })).json();
}

export async function getBatch(id) {
  return (await call(`${PREFIX}/${encodeURIComponent(id)}`)).json();
}

export async function submitBatch(request) {
  const response = await call(PREFIX, {
    method: "POST",
    body: request,
    // A retried click after a network error must not create a second batch.
    headers: { "Idempotency-Key": crypto.randomUUID() },
  });
  return response.json();
}

export async function cancelBatch(batch) {
  return (await call(batch.links.cancel, { method: "POST" })).json();
}

export async function streamTicket(batch) {
  return (await call(`${batch.links.events}/tickets`, { method: "POST" })).json();
}

export async function imageBlob(path) {
  return (await call(path)).blob();
}
