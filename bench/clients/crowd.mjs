// One process of bench/gateway.py's WebSocket clients, in Node: the same steps as the
// Python crowd (bench/gateway.py, client_run and crowd_run), at a fraction of the CPU, so
// that the clients are not what a 5,000-socket run measures.
//
// Talks to its parent in JSON lines: stdout "booted"; stdin the start time; stdout, once
// every client holds a snapshot or failed, [[t_start, t_snapshot, failure], …]; stdin
// [target seq or null, grace s]; stdout, once every client saw the target (or the grace
// ran out), [[seqs, times, first_seq, cover, resyncs, frames, failure], …].
//
// Times are CLOCK_MONOTONIC seconds (process.hrtime), the clock of Python's
// time.monotonic(), so the parent compares them with its own.
//
//   node crowd.mjs <uri> <origin> <first index> <step> <count> <ramp> <handshake s> <snapshot s>

import readline from "node:readline";
import WebSocket from "ws";

const [uri, origin, first, step, count, ramp, handshakeS, snapshotS] = process.argv.slice(2);
const now = () => Number(process.hrtime.bigint()) / 1e9;
const say = (value) => process.stdout.write(JSON.stringify(value) + "\n");
const RESYNC = JSON.stringify({ type: "resync" });

const lines = readline.createInterface({ input: process.stdin });
const orders = lines[Symbol.asyncIterator]();
const order = async () => JSON.parse((await orders.next()).value);

let target = Infinity;
let closing = false;
let pending = 0; // neither holding a snapshot nor failed
let undone = 0; // yet to see the target (or given up)
let settled, finished;
const settledP = new Promise((resolve) => (settled = resolve));
const finishedP = new Promise((resolve) => (finished = resolve));

function settle() {
  if (--pending === 0) settled();
}

function finish(c) {
  if (!c.done) {
    c.done = true;
    undone -= 1;
  }
  if (undone === 0 && target !== Infinity) finished();
}

function run(c) {
  const wait = Math.max(0, c.startAt - now()) * 1000;
  setTimeout(() => {
    c.tStart = now();
    const ws = new WebSocket(uri, { origin, handshakeTimeout: handshakeS * 1000, perMessageDeflate: false });
    c.ws = ws;
    let snapshotTimer = null;
    const fail = (failure) => {
      if (c.failure || c.tSnapshot) return;
      c.failure = failure;
      clearTimeout(snapshotTimer);
      settle();
      finish(c);
      ws.terminate();
    };
    ws.on("unexpected-response", () => fail("refused"));
    ws.on("error", (error) => {
      if (!c.tSnapshot) fail(error.code === "ECONNREFUSED" ? "refused" : /timed out/.test(error.message) ? "timeout" : "failed");
    });
    ws.on("open", () => {
      snapshotTimer = setTimeout(() => fail("timeout"), snapshotS * 1000);
    });
    ws.on("close", () => {
      if (!c.tSnapshot) fail("failed");
      else if (!closing && !c.done) {
        c.failure = "dropped";
        finish(c);
      }
    });
    ws.on("message", (data) => {
      const received = now();
      const message = JSON.parse(data);
      if (!c.tSnapshot) {
        if (message.type !== "snapshot") return fail("failed");
        clearTimeout(snapshotTimer);
        c.tSnapshot = received;
        c.firstSeq = c.have = message.seq;
        settle();
      } else if (message.type === "changes") {
        c.frames += 1;
        for (const item of message.items) {
          // stats.updated items carry the stats seq, not the seat seq.
          if (item.type.startsWith("seat.") && item.seq > c.have) {
            if (item.seq !== c.have + 1 && !c.awaiting) {
              c.awaiting = true;
              c.resyncs += 1;
              ws.send(RESYNC);
            }
            c.seqs.push(item.seq);
            c.times.push(received);
            c.have = item.seq;
          }
        }
      } else if (message.type === "snapshot") {
        c.awaiting = false;
        c.cover = Math.max(c.cover, message.seq);
        c.have = Math.max(c.have, message.seq);
      }
      if (c.have >= target) finish(c);
    });
  }, wait);
}

say("booted");
const startAt = await order();
const clients = [];
for (let g = Number(first), n = 0; n < Number(count); g += Number(step), n += 1) {
  clients.push({
    startAt: startAt + g / Number(ramp), tStart: 0, tSnapshot: 0, failure: "", firstSeq: 0,
    have: 0, cover: 0, awaiting: false, resyncs: 0, frames: 0, seqs: [], times: [], ws: null,
    done: false,
  });
}
pending = undone = clients.length;
if (pending === 0) settled();
clients.forEach(run);
await settledP;
say(clients.map((c) => [c.tStart, c.tSnapshot, c.failure]));

const [last, grace] = await order();
if (last !== null) {
  target = last;
  for (const c of clients) if (c.done || c.have >= target) finish(c);
  if (undone === 0) finished();
  // Past the grace period, what a client is still missing is lost.
  await Promise.race([finishedP, new Promise((resolve) => setTimeout(resolve, grace * 1000))]);
}
closing = true;
for (const c of clients) c.ws?.terminate();
// A pipe takes large writes asynchronously: exit only once all of it is out.
const results = clients.map((c) => [c.seqs, c.times, c.firstSeq, c.cover, c.resyncs, c.frames, c.failure]);
process.stdout.write(JSON.stringify(results) + "\n", () => process.exit(0));
