// Submit a batch and follow it with Server-Sent Events (plain HTTP, through any proxy).
//   IMAGEGEN_URL=... IMAGEGEN_API_KEY=... node dist/follow_sse.js
// Exits 0 when the batch succeeded.

import { exampleBatch, saveImages, submit, type BatchObject } from "./client.js";

async function main(): Promise<number> {
  let batch = await submit(exampleBatch());
  // Each `batch` event's data is the batch object; the stream ends after a terminal phase.
  const response = await fetch(new URL(batch.links["events"] ?? "", process.env["IMAGEGEN_URL"]), {
    headers: { Authorization: `Bearer ${process.env["IMAGEGEN_API_KEY"]}`, Accept: "text/event-stream" },
  });
  if (!response.ok || !response.body) throw new Error(`events: ${response.status}`);
  const decoder = new TextDecoder();
  let buffered = "";
  let event = "";
  for await (const chunk of response.body) {
    buffered += decoder.decode(chunk as Uint8Array, { stream: true });
    const lines = buffered.split(/\r?\n/);
    buffered = lines.pop() ?? "";
    for (const line of lines) {
      if (line.startsWith("event:")) event = line.slice(6).trim();
      else if (line.startsWith("data:") && event === "batch") {
        batch = JSON.parse(line.slice(5)) as BatchObject;
        console.log(`${batch.status.padEnd(10)} ${batch.progress ?? ""}`);
      }
    }
  }
  const saved = await saveImages(batch, "out");
  console.log(`${batch.id}: ${batch.status}, ${saved} images saved under out/`);
  return batch.status === "Succeeded" ? 0 : 1;
}

process.exitCode = await main();
