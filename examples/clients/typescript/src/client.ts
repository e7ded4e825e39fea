// A small client of the imagegen batch API, shared by the examples beside it. Its types
// come from docs/openapi.json (openapi-typescript, `npm run generate`), so a change of
// the API that breaks this code fails to compile.
//
// Configuration comes from the environment: IMAGEGEN_URL (the gateway) and
// IMAGEGEN_API_KEY (your tenant's key, igk_...).

import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";

import type { components } from "./openapi.js";

export type BatchRequest = components["schemas"]["BatchRequest"];
export type BatchObject = components["schemas"]["BatchObject"];
export type Problem = components["schemas"]["ProblemDocument"];

export const TERMINAL = new Set(["Succeeded", "PartiallySucceeded", "Failed", "Cancelled", "Rejected"]);
// Worth another try with the same Idempotency-Key; every other error is final.
const RETRIED = new Set([408, 409, 429, 502, 503, 504]);
const MAX_ATTEMPTS = 6;

export const baseUrl = required("IMAGEGEN_URL");
export const apiKey = required("IMAGEGEN_API_KEY");

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`set ${name}`);
  return value;
}

// Seconds to wait: the server's Retry-After when it sent one, else backoff with jitter.
export function retryAfter(response: Response, attempt: number): number {
  const header = response.headers.get("Retry-After");
  if (header && /^\d+$/.test(header)) return Number(header);
  return Math.min(30, 0.5 * 2 ** attempt) * (0.5 + Math.random() / 2);
}

// One API call, retried on 408/409/429/5xx as the server asks; throws for the rest.
export async function call(path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  headers.set("Authorization", `Bearer ${apiKey}`);
  if (init.body) headers.set("Content-Type", "application/json");
  let response: Response | undefined;
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt += 1) {
    response = await fetch(new URL(path, baseUrl), { ...init, headers, signal: AbortSignal.timeout(30_000) });
    if (!RETRIED.has(response.status) || attempt === MAX_ATTEMPTS - 1) break;
    await sleep(retryAfter(response, attempt) * 1000);
  }
  if (!response) throw new Error("no attempt made");
  if (!response.ok) {
    const problem = (await response.json().catch(() => ({}))) as Partial<Problem>;
    const fields = (problem.errors ?? []).map((e) => `${e.field}: ${e.detail}`).join("; ");
    throw new Error(`${init.method ?? "GET"} ${path}: ${response.status} ${problem.detail ?? ""} ${fields}`);
  }
  return response;
}

// Submit a batch once, whatever the retries: one Idempotency-Key for every attempt.
export async function submit(batch: BatchRequest): Promise<BatchObject> {
  const response = await call("/api/v1/batches", {
    method: "POST",
    body: JSON.stringify(batch),
    headers: { "Idempotency-Key": randomUUID() },
  });
  const created = (await response.json()) as BatchObject;
  console.log(`submitted ${created.id} (${response.headers.get("Location")}); requests left: ${response.headers.get("RateLimit")}`);
  return created;
}

export async function getBatch(batch: BatchObject): Promise<BatchObject> {
  return (await (await call(batch.links["self"] ?? `/api/v1/batches/${batch.id}`)).json()) as BatchObject;
}

export function exampleBatch(count = 5): BatchRequest {
  return {
    items: Array.from({ length: count }, (_, n) => ({ id: `img-${n}`, prompt: `a lighthouse, take ${n}` })),
    defaults: { size: "256x256", provider: "local", format: "png" },
    priority: "normal",
    metadata: { order: "example-42" },
  };
}

// Download every finished image; return how many.
export async function saveImages(batch: BatchObject, folder: string): Promise<number> {
  const { mkdir, writeFile } = await import("node:fs/promises");
  await mkdir(folder, { recursive: true });
  let saved = 0;
  for (const item of batch.items ?? []) {
    if (item.state !== "Succeeded" || !item.image) continue;
    const image = await call(item.image);
    await writeFile(`${folder}/${batch.id}-${item.id}.png`, Buffer.from(await image.arrayBuffer()));
    saved += 1;
  }
  return saved;
}
