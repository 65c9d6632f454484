// One process of bench/gateway.py's WebSocket clients, in Node: the same steps as the
// Python crowd (bench/gateway.py, client_run and crowd_run), at a fraction of the CPU, so
// that the clients are not what a 5,000-socket run measures.
//
// Talks to its parent in JSON lines: stdout "booted"; stdin the start time; stdout, once
// every client holds a snapshot or failed, [[t_start, t_snapshot, failure], …]; stdin
// [target seq or null, grace s]; stdout, once every client saw the target (or the grace
// ran out), [[seqs, times, first_seq, cover, resyncs, frames, failure], …].
//
// bench/onsale.py adds a third element to that last order, the path of a JSON file
// {"first": <seq>, "occurred": [<CLOCK_MONOTONIC s of seq first + i, or null>, …]} (each
// change's occurred_at on this clock), and gets one summary instead of per-client lists:
// {"delays_ms": {<ms>: count}, delivered, healed, lost, unknown, resyncs, frames, failures,
// dropped: [[when, close code], …], loop_delay_p99_ms, loop_delay_max_ms, stall: [s, when]}.
// A long sale is tens of thousands of seqs a socket: each client keeps runs of seqs that
// arrived in one frame (start, end, time), not one record per seq.
//
// Times are CLOCK_MONOTONIC seconds (process.hrtime), the clock of Python's
// time.monotonic(), so the parent compares them with its own.
//
//   node crowd.mjs <uri> <origin> <first index> <step> <count> <ramp> <handshake s> <snapshot s>

import { readFileSync } from "node:fs";
import { monitorEventLoopDelay } from "node:perf_hooks";
import readline from "node:readline";
import WebSocket from "ws";

const [uri, origin, first, step, count, ramp, handshakeS, snapshotS] = process.argv.slice(2);
const now = () => Number(process.hrtime.bigint()) / 1e9;
const say = (value) => process.stdout.write(JSON.stringify(value) + "\n");
const sayThenExit = (value) => process.stdout.write(JSON.stringify(value) + "\n", () => process.exit(0));
const RESYNC = JSON.stringify({ type: "resync" });

const lines = readline.createInterface({ input: process.stdin });
const orders = lines[Symbol.asyncIterator]();
const order = async () => JSON.parse((await orders.next()).value);

// How late this process's timers and reads run: if it is busy, its delays are its own.
const loop = monitorEventLoopDelay({ resolution: 10 });
loop.enable();
let tick = now();
let stall = [0, 0]; // the longest gap between two ticks of a 100 ms timer, and when it ended
setInterval(() => {
  const t = now();
  if (t - tick > stall[0]) stall = [t - tick, t];
  tick = t;
}, 100).unref();
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

// A seq received at time t: the client's last run grows when it is the next seq of the same
// frame, else a new run starts.
function record(c, seq, t) {
  const last = c.runEnd.length - 1;
  if (last >= 0 && c.runEnd[last] === seq - 1 && c.runTime[last] === t) c.runEnd[last] = seq;
  else {
    c.runStart.push(seq);
    c.runEnd.push(seq);
    c.runTime.push(t);
  }
}

function run(c) {
  const wait = Math.max(0, c.startAt - now()) * 1000;
  setTimeout(() => {
    c.tStart = now();
    // An address of its own, for a server that trusts the proxy in front to forward it
    // (bench/onsale.py); a server that does not ignores it.
    const headers = { "X-Forwarded-For": `10.${128 + ((c.index >> 16) & 127)}.${(c.index >> 8) & 255}.${c.index & 255}` };
    const ws = new WebSocket(uri, { origin, headers, handshakeTimeout: handshakeS * 1000, perMessageDeflate: false });
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
    ws.on("close", (code) => {
      if (!c.tSnapshot) fail("failed");
      else if (!closing && !c.done) {
        c.failure = "dropped";
        c.closed = [now(), code];
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
            record(c, item.seq, received);
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
    index: g, startAt: startAt + g / Number(ramp), tStart: 0, tSnapshot: 0, failure: "", firstSeq: 0,
    have: 0, cover: 0, awaiting: false, resyncs: 0, frames: 0, runStart: [], runEnd: [],
    runTime: [], ws: null, done: false,
  });
}
pending = undone = clients.length;
if (pending === 0) settled();
clients.forEach(run);
await settledP;
say(clients.map((c) => [c.tStart, c.tSnapshot, c.failure]));

const [last, grace, occurredPath] = await order();
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
if (occurredPath) sayThenExit(delaySummary(JSON.parse(readFileSync(occurredPath, "utf8")), last));
else sayThenExit(clients.map(rawResult));

function rawResult(c) {
  const seqs = [];
  const times = [];
  c.runStart.forEach((start, i) => {
    for (let seq = start; seq <= c.runEnd[i]; seq += 1) {
      seqs.push(seq);
      times.push(c.runTime[i]);
    }
  });
  return [seqs, times, c.firstSeq, c.cover, c.resyncs, c.frames, c.failure];
}

// Per (client, seq up to the target): delivered (its delay from occurred_at, in whole ms),
// healed (covered by a resync's snapshot) or lost; as gateway.py's delivery_figures counts.
function delaySummary({ first, occurred }, target) {
  const summary = {
    delays_ms: {}, delivered: 0, healed: 0, lost: 0, unknown: 0, resyncs: 0, frames: 0, failures: {},
    dropped: clients.filter((c) => c.closed).map((c) => c.closed), // [when, close code]
    loop_delay_p99_ms: loop.percentile(99) / 1e6, loop_delay_max_ms: loop.max / 1e6, stall,
  };
  for (const c of clients) {
    if (c.failure) summary.failures[c.failure] = (summary.failures[c.failure] ?? 0) + 1;
    if (!c.tSnapshot) continue;
    summary.resyncs += c.resyncs;
    summary.frames += c.frames;
    let delivered = 0;
    let deliveredCovered = 0; // delivered seqs that a snapshot covered too
    c.runStart.forEach((start, i) => {
      const end = Math.min(c.runEnd[i], target ?? Infinity);
      for (let seq = start; seq <= end; seq += 1) {
        delivered += 1;
        if (seq <= c.cover) deliveredCovered += 1;
        const at = occurred[seq - first];
        if (at === null || at === undefined) summary.unknown += 1;
        else {
          const ms = Math.round((c.runTime[i] - at) * 1000);
          summary.delays_ms[ms] = (summary.delays_ms[ms] ?? 0) + 1;
        }
      }
    });
    const upTo = target ?? c.have;
    const healed = Math.max(0, Math.min(c.cover, upTo) - c.firstSeq - deliveredCovered);
    summary.delivered += delivered;
    summary.healed += healed;
    summary.lost += Math.max(0, upTo - c.firstSeq - delivered - healed);
  }
  return summary;
}
