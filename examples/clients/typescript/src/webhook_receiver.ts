// Receive the batch's webhooks and verify their Standard Webhooks signatures.
//   IMAGEGEN_URL=... IMAGEGEN_API_KEY=... IMAGEGEN_WEBHOOK_SECRET=whsec_... \
//   WEBHOOK_PUBLIC_URL=https://hooks.example.com/imagegen node dist/webhook_receiver.js
// Listens on WEBHOOK_HOST:WEBHOOK_PORT (default 0.0.0.0:8080), submits a batch whose
// webhook is WEBHOOK_PUBLIC_URL (this server, as the gateway reaches it), and exits 0
// once a correctly signed `batch.completed` for it arrived.

import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingHttpHeaders } from "node:http";

import { exampleBatch, submit } from "./client.js";

const TOLERANCE_SECONDS = 300;
const WAIT_MS = 600_000;

interface WebhookEvent {
  type: string;
  timestamp: string;
  data: { id: string; status: string; progress?: string | null };
}

function header(headers: IncomingHttpHeaders, name: string): string {
  const value = headers[name];
  if (typeof value !== "string" || !value) throw new Error(`missing ${name}`);
  return value;
}

// The event, if the request is signed with the secret and recent; else it throws.
export function verify(secret: string, headers: IncomingHttpHeaders, body: Buffer): WebhookEvent {
  const id = header(headers, "webhook-id");
  const timestamp = header(headers, "webhook-timestamp");
  if (Math.abs(Date.now() / 1000 - Number(timestamp)) > TOLERANCE_SECONDS) throw new Error("stale timestamp");
  const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
  const expected = Buffer.from(
    "v1," + createHmac("sha256", key).update(`${id}.${timestamp}.`).update(body).digest("base64"),
  );
  // Several signatures, space-separated, are sent while a secret is being rotated.
  const matches = header(headers, "webhook-signature").split(" ").some((offered) => {
    const candidate = Buffer.from(offered);
    return candidate.length === expected.length && timingSafeEqual(candidate, expected);
  });
  if (!matches) throw new Error("no signature matches");
  return JSON.parse(body.toString("utf8")) as WebhookEvent;
}

async function main(): Promise<number> {
  const secret = process.env["IMAGEGEN_WEBHOOK_SECRET"] ?? "";
  let batchId = "";
  const outcome = new Promise<number>((resolve) => {
    const server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on("data", (chunk: Buffer) => chunks.push(chunk));
      request.on("end", () => {
        let event: WebhookEvent;
        try {
          event = verify(secret, request.headers, Buffer.concat(chunks));
        } catch (error) {
          console.log(`refused a delivery: ${(error as Error).message}`);
          response.writeHead(400).end();
          return;
        }
        // Answer fast; deduplicate by webhook-id: a delivery may come more than once.
        response.writeHead(204).end();
        if (event.data.id !== batchId) return;
        console.log(`verified ${event.type}: ${event.data.status} ${event.data.progress ?? ""}`);
        if (event.type === "batch.completed" || event.type === "batch.failed") {
          server.close();
          resolve(event.data.status === "Succeeded" ? 0 : 1);
        }
      });
    });
    server.listen(Number(process.env["WEBHOOK_PORT"] ?? 8080), process.env["WEBHOOK_HOST"] ?? "0.0.0.0");
    setTimeout(() => { console.log("no completion webhook in time"); server.close(); resolve(1); }, WAIT_MS).unref();
  });
  const request = exampleBatch();
  request.webhook = {
    url: process.env["WEBHOOK_PUBLIC_URL"] ?? "",
    events: ["running", "succeeded", "partiallySucceeded", "failed"],
  };
  batchId = (await submit(request)).id;
  return outcome;
}

process.exitCode = await main();
