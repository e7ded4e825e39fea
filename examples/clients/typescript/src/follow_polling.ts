// Submit a batch and poll it until it ends: the simplest way, for batch jobs and crons.
//   IMAGEGEN_URL=... IMAGEGEN_API_KEY=... node dist/follow_polling.js
// Polls every 2 s (each poll is one request against your rate limit; `call()` waits as a
// 429's Retry-After says). Exits 0 when the batch succeeded.

import { setTimeout as sleep } from "node:timers/promises";

import { TERMINAL, exampleBatch, getBatch, saveImages, submit } from "./client.js";

const POLL_SECONDS = 2;
const GIVE_UP_SECONDS = 600;

async function main(): Promise<number> {
  let batch = await submit(exampleBatch());
  const deadline = Date.now() + GIVE_UP_SECONDS * 1000;
  while (!TERMINAL.has(batch.status) && Date.now() < deadline) {
    await sleep(POLL_SECONDS * 1000);
    batch = await getBatch(batch);
    console.log(`${batch.status.padEnd(10)} ${batch.progress ?? ""}`);
  }
  const saved = await saveImages(batch, "out");
  console.log(`${batch.id}: ${batch.status}, ${saved} images saved under out/`);
  return batch.status === "Succeeded" ? 0 : 1;
}

process.exitCode = await main();
