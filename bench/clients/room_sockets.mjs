// bench/waiting_room.py's sample of waiting buyers, in Node: each one is a new browser
// session that takes a place in the event's waiting room over HTTP (POST …/room, without a
// cookie, from an address of its own), then opens the event's live socket with the session
// cookie it was given, as the seat map app does, and records every `room` frame it gets.
//
//   node room_sockets.mjs '<config JSON>'
//     {"base": "http://127.0.0.1:<proxy port>", "event_id": …, "count": …,
//      "concurrency": …, "timeout_s": …, "address_base": <second octet of the addresses>}
//
// Talks to its parent in JSON lines: stdout {"ready": …} once every buyer has a socket that
// got its first frame (or failed); stdin "stop"; stdout {"result": …}, then exit.
// Frames are recorded as [t, serving, waiting, personal (1: it has a `place`), ticket],
// t in CLOCK_MONOTONIC seconds (process.hrtime), the clock of Python's time.monotonic(), so
// the parent compares them with its own receipts of the same frames from Redis.

import http from "node:http";
import readline from "node:readline";
import WebSocket from "ws";

const config = JSON.parse(process.argv[2]);
const base = new URL(config.base);
const now = () => Number(process.hrtime.bigint()) / 1e9;
const say = (value) => process.stdout.write(JSON.stringify(value) + "\n");
const sayThenExit = (value) => process.stdout.write(JSON.stringify(value) + "\n", () => process.exit(0));

// Buyer i's address: trusted proxies make it the buyer's (bench/support.py, Server), so
// the per-address limits on new sessions and places see one buyer per address.
const addressOf = (i) => `10.${config.address_base}.${(i >> 8) & 255}.${i & 255}`;

// POST …/room without a cookie: a new session, a new place. Resolves {status, cookies, body}.
function join(i) {
  return new Promise((resolve) => {
    const req = http.request(
      {
        host: base.hostname, port: base.port, method: "POST",
        path: `/api/events/${config.event_id}/room`,
        headers: { Accept: "application/json", "Content-Length": 0, "X-Forwarded-For": addressOf(i), Origin: config.base },
        timeout: config.timeout_s * 1000,
      },
      (response) => {
        const chunks = [];
        response.on("data", (chunk) => chunks.push(chunk));
        response.on("end", () => {
          const cookies = (response.headers["set-cookie"] ?? []).map((line) => line.split(";")[0].trim());
          let body = null;
          try {
            body = JSON.parse(Buffer.concat(chunks));
          } catch {
            body = null;
          }
          resolve({ status: response.statusCode, cookies, body });
        });
        response.on("error", () => resolve({ status: 0, cookies: [], body: null }));
      },
    );
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", () => resolve({ status: 0, cookies: [], body: null }));
    req.end();
  });
}

// The live socket of the buyer's session; resolves once its first frame (the buyer's own
// `room` frame, with their place) is in, or it failed.
function open(c, cookies) {
  return new Promise((resolve) => {
    const uri = `ws://${base.host}/ws/events/${config.event_id}/`;
    const headers = { Cookie: cookies.join("; "), "X-Forwarded-For": addressOf(c.index) };
    const ws = new WebSocket(uri, { origin: config.base, headers, handshakeTimeout: config.timeout_s * 1000, perMessageDeflate: false });
    c.ws = ws;
    const timer = setTimeout(() => fail("timeout"), config.timeout_s * 1000);
    const fail = (failure) => {
      if (c.opened || c.failure) return;
      c.failure = failure;
      clearTimeout(timer);
      ws.terminate();
      resolve();
    };
    ws.on("unexpected-response", () => fail("refused"));
    ws.on("error", () => fail("failed"));
    ws.on("close", (code) => {
      if (!c.opened) fail(`closed ${code}`);
      else if (!stopping) c.closed = [now(), code];
    });
    ws.on("message", (data) => {
      const t = now();
      const frame = JSON.parse(data);
      if (frame.type !== "room") {
        // A snapshot: the socket was let onto the map, not into the room.
        if (!c.opened) fail(`got ${frame.type}`);
        return;
      }
      c.frames.push([t, frame.serving, frame.waiting, frame.place ? 1 : 0, frame.place?.ticket ?? null]);
      if (!c.opened) {
        c.opened = true;
        clearTimeout(timer);
        resolve();
      }
    });
  });
}

async function buyer(c) {
  const answer = await join(c.index);
  if (answer.status !== 200 || !answer.body?.place) {
    c.failure = `join ${answer.status}${answer.body?.code ? ` ${answer.body.code}` : ""}`;
    return;
  }
  await open(c, answer.cookies);
}

let stopping = false;
const clients = Array.from({ length: config.count }, (_, index) => ({
  index, frames: [], failure: "", opened: false, closed: null, ws: null,
}));
const began = now();
// A few at a time: the sample is the audience, not a connect storm.
let next = 0;
await Promise.all(
  Array.from({ length: Math.min(config.concurrency, clients.length) }, async () => {
    while (next < clients.length) await buyer(clients[next++]);
  }),
);
const failures = {};
for (const c of clients) if (c.failure) failures[c.failure] = (failures[c.failure] ?? 0) + 1;
say({ ready: { opened: clients.filter((c) => c.opened).length, failures, seconds: now() - began } });

const lines = readline.createInterface({ input: process.stdin });
for await (const line of lines) if (line.trim() === "stop") break;
stopping = true;
for (const c of clients) c.ws?.terminate();
sayThenExit({
  result: clients.map((c) => ({ frames: c.frames, failure: c.failure, closed: c.closed })),
});
