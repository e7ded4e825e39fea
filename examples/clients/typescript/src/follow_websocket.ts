// Submit a batch, follow it live over the WebSocket, download its images.
//   IMAGEGEN_URL=... IMAGEGEN_API_KEY=... node dist/follow_websocket.js
// Exits 0 when the batch succeeded. Node can send Authorization on the handshake (the
// `ws` package); a browser asks for a stream ticket instead (see docs/integration.md).

import WebSocket from "ws";

import { apiKey, baseUrl, exampleBatch, saveImages, submit, type BatchObject } from "./client.js";

async function main(): Promise<number> {
  let batch = await submit(exampleBatch());
  const url = new URL(batch.links["events"] ?? "", baseUrl);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  // The server sends the batch now and at every change, then closes (1000) after a
  // terminal phase. A dropped connection loses nothing: reconnect, or GET the batch.
  batch = await new Promise<BatchObject>((resolve, reject) => {
    let last = batch;
    const socket = new WebSocket(url, { headers: { Authorization: `Bearer ${apiKey}` } });
    socket.on("message", (data) => {
      last = JSON.parse(data.toString()) as BatchObject;
      console.log(`${last.status.padEnd(10)} ${last.progress ?? ""}`);
    });
    socket.on("close", () => resolve(last));
    socket.on("error", reject);
  });
  const saved = await saveImages(batch, "out");
  console.log(`${batch.id}: ${batch.status}, ${saved} images saved under out/`);
  return batch.status === "Succeeded" ? 0 : 1;
}

process.exitCode = await main();
