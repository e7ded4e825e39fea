// Live updates of one batch: a WebSocket, else Server-Sent Events, else polling. Streams
// are opened with a single-use ticket (POST .../events/tickets), never with the key in a
// URL: a browser cannot set Authorization on a WebSocket or an EventSource.

import * as api from "./api.js";

export const TERMINAL = new Set(["Succeeded", "PartiallySucceeded", "Failed", "Cancelled", "Rejected"]);
const RETRIES = 3;
const POLL_MS = 2000;

function streamUrl(batch, ticket, scheme) {
  const url = new URL(batch.links.events, location.href);
  url.searchParams.set("ticket", ticket);
  if (scheme) url.protocol = scheme;
  return url;
}

function viaWebSocket(batch, onBatch, onOpen, track) {
  return api.streamTicket(batch).then(({ ticket }) => new Promise((resolve) => {
    const socket = new WebSocket(streamUrl(batch, ticket, location.protocol === "https:" ? "wss:" : "ws:"));
    track(() => socket.close());
    let opened = false;
    let last = null;
    socket.onopen = () => { opened = true; onOpen(); };
    socket.onmessage = (event) => { last = JSON.parse(event.data); onBatch(last); };
    socket.onclose = () => resolve({ opened, last });
  }));
}

function viaEventSource(batch, onBatch, onOpen, track) {
  return api.streamTicket(batch).then(({ ticket }) => new Promise((resolve) => {
    const source = new EventSource(streamUrl(batch, ticket));
    track(() => source.close());
    let opened = false;
    let last = null;
    source.onopen = () => { opened = true; onOpen(); };
    source.addEventListener("batch", (event) => { last = JSON.parse(event.data); onBatch(last); });
    // The server ends the stream after a terminal phase; EventSource would reconnect with
    // the used ticket, so any error or end closes it here.
    source.onerror = () => { source.close(); resolve({ opened, last }); };
  }));
}

// Follow the batch until a terminal phase or stop(); onTransport says how updates arrive.
// `prefer` ("websocket" or "sse") is where to start (the other is the fallback).
export function follow(batch, { onBatch, onTransport, prefer = "websocket" }) {
  let stopped = false;
  let closeCurrent = () => {};
  const track = (close) => { closeCurrent = close; };
  const order = prefer === "sse"
    ? [["Server-Sent Events", viaEventSource], ["WebSocket", viaWebSocket]]
    : [["WebSocket", viaWebSocket], ["Server-Sent Events", viaEventSource]];

  async function run() {
    let current = batch;
    if (TERMINAL.has(current.status)) { onTransport("finished"); return; }
    for (const [name, transport] of order) {
      for (let attempt = 0; attempt < RETRIES && !stopped; attempt += 1) {
        let result;
        try {
          result = await transport(current, (shown) => { current = shown; onBatch(shown); },
            () => onTransport(`live (${name})`), track);
        } catch (error) {
          if (error instanceof api.ApiError && error.status === 401) throw error;
          result = { opened: false, last: null };
        }
        if (stopped) return;
        if (TERMINAL.has(current.status)) { onTransport("finished"); return; }
        if (!result.opened) break;  // This transport does not get through: the next one.
      }
    }
    onTransport("polling");
    while (!stopped && !TERMINAL.has(current.status)) {
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      if (stopped) return;
      current = await api.getBatch(current.id);
      onBatch(current);
    }
    if (!stopped) onTransport("finished");
  }

  const done = run();
  return {
    done,
    stop() { stopped = true; closeCurrent(); },
  };
}
