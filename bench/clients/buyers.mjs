// One process of bench/onsale.py's buyers, in Node: each buyer is a browser session of its
// own (cookie jar, CSRF token, client address) that opens the event's page, holds seats
// (picked from the seat map, or best available), then reserves, releases or walks away.
// With config.room, it joins the event's waiting room after the page, waits for its turn
// and takes its pass before holding.
// Node's own http module with a keep-alive agent: no dependency, and a fraction of the CPU
// a Python client would take, so that the clients are not what the sale measures.
//
//   node buyers.mjs '<config JSON>'      (the fields: see `config` in bench/onsale.py)
//
// Talks to its parent in JSON lines: stdout "booted" once the layout and a first seat map
// are loaded; stdin the sale's start (CLOCK_MONOTONIC s, Python's time.monotonic());
// stdout {"progress": …} every few seconds; stdout {"result": …} once every buyer of this
// process is done or the deadline passed (what is still in flight then is aborted).
//
// Buyer g (of all processes) arrives at start + g × ramp / buyers. Its commands are
// recorded as [kind, outcome, ms, t_start, seats, queued ms]: outcome "granted" for a 2xx,
// else the error's code (seats_unavailable, hold_expired, throttled, …), "http_<status>"
// without one, "timeout", "network" or "aborted" (the deadline); t_start on the monotonic
// clock, ms until the body was read, of which queued ms waiting for a pooled connection.

import http from "node:http";
import { gunzipSync } from "node:zlib";
import readline from "node:readline";
import { monitorEventLoopDelay } from "node:perf_hooks";

const config = JSON.parse(process.argv[2]);
const base = new URL(config.base);
const now = () => Number(process.hrtime.bigint()) / 1e9;
const say = (value) => process.stdout.write(JSON.stringify(value) + "\n");
const sleep = (s) => new Promise((resolve) => setTimeout(resolve, Math.max(0, s) * 1000));

// mulberry32: a seeded generator, so that a run's choices repeat.
let seed = config.seed >>> 0;
function random() {
  seed = (seed + 0x6d2b79f5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const between = (low, high) => low + random() * (high - low);

// --- HTTP ---------------------------------------------------------------------------------

const agent = new http.Agent({
  keepAlive: true,
  maxSockets: config.connections,
  maxFreeSockets: config.connections,
  scheduling: "fifo",
});
const inFlight = new Set();
let stopping = false;
let requests = 0; // this process's, for unique Idempotency-Keys

// One request; resolves {status, body, cookies, ms, t}. Never rejects: a timeout or a
// network error is a status of 0 and an outcome of its own.
function request(method, path, { jar, address, body, gzip } = {}) {
  const t = now();
  const headers = { Accept: "application/json", Host: base.host };
  if (gzip) headers["Accept-Encoding"] = "gzip";
  if (address) headers["X-Forwarded-For"] = address;
  if (jar && jar.size) headers.Cookie = [...jar].map(([k, v]) => `${k}=${v}`).join("; ");
  let payload = null;
  if (body !== undefined) {
    payload = JSON.stringify(body);
    headers["Content-Type"] = "application/json";
    headers["Content-Length"] = Buffer.byteLength(payload);
    headers["Idempotency-Key"] = `${config.run}-${config.first}-${requests}`;
    headers.Origin = config.base; // as a browser sends it with a POST
    if (jar?.has("csrftoken")) headers["X-CSRFToken"] = jar.get("csrftoken");
  }
  requests += 1;
  return new Promise((resolve) => {
    const done = (status, raw, outcome, response) => {
      inFlight.delete(req);
      let parsed = null;
      if (raw && raw.length) {
        try {
          if (response?.headers["content-encoding"] === "gzip") raw = gunzipSync(raw);
          parsed = JSON.parse(raw);
        } catch {
          parsed = null;
        }
      }
      if (jar && response) {
        for (const line of response.headers["set-cookie"] ?? []) {
          const [pair] = line.split(";");
          const at = pair.indexOf("=");
          jar.set(pair.slice(0, at).trim(), pair.slice(at + 1).trim());
        }
      }
      const queuedMs = ((onWire ?? now()) - t) * 1000;
      resolve({ status, body: parsed, outcome, ms: (now() - t) * 1000, t, queuedMs });
    };
    const req = http.request(
      { host: base.hostname, port: base.port, method, path, headers, agent, timeout: config.request_timeout_s * 1000 },
      (response) => {
        const chunks = [];
        response.on("data", (chunk) => chunks.push(chunk));
        response.on("end", () => done(response.statusCode, Buffer.concat(chunks), null, response));
        response.on("error", () => done(0, null, "network", null));
      },
    );
    req.on("timeout", () => {
      req.destroy();
      done(0, null, "timeout", null);
    });
    req.on("error", () => done(0, null, stopping ? "aborted" : "network", null));
    // When a pooled connection takes it: until then it waits here, in the client.
    let onWire = null;
    req.on("socket", () => (onWire = now()));
    inFlight.add(req);
    req.end(payload ?? undefined);
  });
}
function outcomeOf(answer) {
  if (answer.outcome) return answer.outcome;
  if (answer.status >= 200 && answer.status < 300) return "granted";
  return answer.body?.code ?? `http_${answer.status}`;
}

// --- what the buyers know of the seats: the seat map, refreshed now and then ---------------

// Rows in layout order; each {keys, numbers, free: Uint8Array, freeCount}. A buyer's pick
// is taken off the map at once (so that this process's buyers do not pick it again); what
// the others took shows at the next refresh, or in a conflict's answer.
const rows = [];
const rowOf = new Map(); // "<section id>|<row>" → row
const where = new Map(); // seat key → [row, position]

async function layoutLoad() {
  const answer = await request("GET", `/api/events/${config.event_id}/layout`, { gzip: true });
  if (answer.status !== 200) throw new Error(`layout: ${answer.status}`);
  for (const section of answer.body.sections) {
    const byRow = new Map();
    for (const [key, row, number] of section.seats) {
      if (!byRow.has(row)) byRow.set(row, []);
      byRow.get(row).push([number, key]);
    }
    for (const [label, seats] of byRow) {
      seats.sort((a, b) => a[0] - b[0]);
      const row = {
        keys: seats.map((s) => s[1]),
        numbers: seats.map((s) => s[0]),
        free: new Uint8Array(seats.length),
        freeCount: 0,
      };
      row.index = new Map(row.numbers.map((n, i) => [n, i]));
      row.keys.forEach((key, i) => where.set(key, [row, i]));
      rowOf.set(`${section.id}|${label}`, row);
      rows.push(row);
    }
  }
}

const maps = { fetched: 0, lastSeq: 0 };

async function mapRefresh() {
  const answer = await request("GET", `/api/events/${config.event_id}/seats`, { gzip: true });
  records.push(["map", outcomeOf(answer), answer.ms, answer.t, 0, answer.queuedMs]);
  if (answer.status !== 200) return;
  for (const section of answer.body.sections) {
    for (const { row: label, numbers, states } of section.rows) {
      const row = rowOf.get(`${section.section_id}|${label}`);
      if (!row) continue;
      row.free.fill(0);
      row.freeCount = 0;
      numbers.forEach((n, i) => {
        if (states[i] === "f") {
          row.free[row.index.get(n)] = 1;
          row.freeCount += 1;
        }
      });
    }
  }
  maps.fetched += 1;
  maps.lastSeq = answer.body.seq;
}

function take(keys) {
  for (const key of keys) {
    const found = where.get(key);
    if (found && found[0].free[found[1]]) {
      found[0].free[found[1]] = 0;
      found[0].freeCount -= 1;
    }
  }
}

// ``count`` free seats side by side (consecutive numbers) in one row, at random, taken off
// the map; null when the map shows no such block.
function pick(count) {
  for (let attempt = 0; attempt < 20; attempt += 1) {
    const found = blockIn(rows[Math.floor(random() * rows.length)], count);
    if (found) return found;
  }
  const candidates = rows.filter((row) => row.freeCount >= count);
  for (let i = candidates.length - 1; i >= 0; i -= 1) {
    const j = Math.floor(random() * (i + 1));
    [candidates[i], candidates[j]] = [candidates[j], candidates[i]];
    const found = blockIn(candidates[i], count);
    if (found) return found;
  }
  return null;
}

function blockIn(row, count) {
  if (row.freeCount < count) return null;
  const starts = [];
  let run = 0;
  for (let i = 0; i < row.keys.length; i += 1) {
    const adjacent = i > 0 && row.numbers[i] === row.numbers[i - 1] + 1;
    run = row.free[i] ? (adjacent ? run + 1 : 1) : 0;
    if (run >= count) starts.push(i - count + 1);
  }
  if (!starts.length) return null;
  const start = starts[Math.floor(random() * starts.length)];
  const keys = row.keys.slice(start, start + count);
  take(keys);
  return keys;
}

// --- the waiting room (config.room) ----------------------------------------------------------

// The room as this process last read it (GET …/room: one request a second for the whole
// process, not one per buyer). It stands in for the room's broadcast frames: the seat map
// app computes its position from its ticket and the room's `serving`, as waiters do here.
const room = { serving: 0, drawn: false, reads: 0 };
const waiters = []; // [ticket, resolve] of buyers not admitted yet

async function roomRead() {
  const answer = await request("GET", `/api/events/${config.event_id}/room`);
  if (answer.status !== 200) return;
  room.reads += 1;
  room.serving = answer.body.serving ?? 0;
  room.drawn = answer.body.drawn ?? room.drawn;
  for (let i = waiters.length - 1; i >= 0; i -= 1) {
    const [ticket, resolve] = waiters[i];
    if (ticket === null ? room.drawn : ticket <= room.serving) {
      waiters.splice(i, 1);
      resolve();
    }
  }
}

// Until ``ticket`` is admitted (null: until the start's draw has given the buyer one).
function admitted(ticket) {
  if (ticket !== null && ticket <= room.serving) return Promise.resolve();
  return new Promise((resolve) => waiters.push([ticket, resolve]));
}

// Join, wait for the turn, take the pass (its cookie lands in the jar). Returns whether the
// buyer may go on to the map; records the join, the pass and the time waited.
async function roomEnter(jar, address) {
  const joinPath = `/api/events/${config.event_id}/room`;
  let answer = await command("join", joinPath, jar, address, {});
  if (answer.status !== 200) return false;
  const joined = now();
  let ticket = answer.body.place?.ticket ?? null;
  if (ticket === null) {
    await admitted(null); // an early arrival: drawn at the start, then asks for its ticket
    if (stopping) return false;
    answer = await request("GET", joinPath, { jar, address });
    ticket = answer.body?.place?.ticket ?? null;
    if (ticket === null) return false;
  }
  for (;;) {
    await admitted(ticket);
    if (stopping) return false;
    answer = await command("pass", `${joinPath}/pass`, jar, address, {});
    if (answer.status === 200) break;
    if (answer.body?.code !== "not_your_turn") return false; // dropped, expired, …
    room.serving = Math.min(room.serving, ticket - 1); // not yet, whatever we read
  }
  waited.push(now() - joined);
  return true;
}

// --- the buyers ------------------------------------------------------------------------------

const records = []; // [kind, outcome, ms, t_start, seats, queued ms]
const waited = []; // s from each admitted buyer's join to their pass (config.room)
const reservations = []; // [reservation id, seats] granted
const fates = {}; // how each buyer's visit ended
const tally = { arrived: 0, done: 0 };

function fate(name) {
  fates[name] = (fates[name] ?? 0) + 1;
  tally.done += 1;
}

async function command(kind, path, jar, address, body) {
  const answer = await request("POST", path, { jar, address, body });
  const seats = answer.body?.seats?.length ?? 0;
  const got = answer.status < 300 ? seats : 0;
  records.push([kind, outcomeOf(answer), answer.ms, answer.t, got, answer.queuedMs]);
  return answer;
}

async function holdAttempt(jar, address, best, count) {
  const path = `/api/events/${config.event_id}/holds`;
  if (best) return command("hold best", path, jar, address, { best: { count } });
  const seats = pick(count);
  if (!seats) return null;
  return command("hold picked", path, jar, address, { seats });
}

async function buyer(g) {
  await sleep(config.start_at + (g * config.ramp_s) / config.buyers - now());
  if (stopping) return;
  tally.arrived += 1;
  const jar = new Map();
  const address = `10.${(g >> 16) & 255}.${(g >> 8) & 255}.${g & 255}`;
  const page = await request("GET", `/events/${config.event_id}/`, { jar, address });
  records.push(["page", outcomeOf(page), page.ms, page.t, 0, page.queuedMs]);
  if (config.room && !(await roomEnter(jar, address))) {
    return fate(stopping ? "stopped in the waiting room" : "turned away by the waiting room");
  }
  const best = random() < config.best_share;
  const count = 1 + Math.floor(random() * config.max_count);
  await sleep(between(0.5, 1.5) * config.think_s); // looks at the map
  let hold = null;
  for (let attempt = 0; attempt <= config.retries && !stopping; attempt += 1) {
    const answer = await holdAttempt(jar, address, best, count);
    if (answer === null) return fate("no seats on the map");
    if (answer.status === 201) {
      hold = answer.body;
      break;
    }
    const code = answer.body?.code;
    if (code === "seats_unavailable") take(answer.body.seats ?? []);
    else if (code !== "throttled") return fate(`hold refused: ${outcomeOf(answer)}`);
    await sleep(between(0.2, 1.0) * config.think_s); // looks again
  }
  if (!hold) return fate(stopping ? "stopped" : "gave up after conflicts");
  await sleep(between(0.5, 1.5) * config.think_s); // decides
  if (stopping) return fate("stopped");
  const roll = random();
  const token = encodeURIComponent(hold.hold_token);
  if (roll < config.reserve_share) {
    const answer = await command("reserve", `/api/holds/${token}/reserve`, jar, address, {});
    if (answer.status === 201) reservations.push([answer.body.reservation_id, answer.body.seats]);
    return fate(answer.status === 201 ? "reserved" : `reserve refused: ${outcomeOf(answer)}`);
  }
  if (roll < config.reserve_share + config.release_share) {
    const answer = await command("release", `/api/holds/${token}/release`, jar, address, {});
    return fate(answer.status === 200 ? "released" : `release refused: ${outcomeOf(answer)}`);
  }
  return fate("walked away (hold left to expire)");
}

// --- the parent's orders ---------------------------------------------------------------------

const lines = readline.createInterface({ input: process.stdin });
const orders = lines[Symbol.asyncIterator]();
const order = async () => JSON.parse((await orders.next()).value);

await layoutLoad();
await mapRefresh();
say("booted");
config.start_at = await order();
const mine = [];
for (let g = config.first; g < config.buyers; g += config.step) mine.push(g);

const loop = monitorEventLoopDelay({ resolution: 10 });
loop.enable();
const cpuBefore = process.cpuUsage();
const began = now();
const refresher = setInterval(() => {
  if (!stopping) mapRefresh();
}, config.map_every_s * 1000);
const roomReader = config.room
  ? setInterval(() => {
      if (!stopping && waiters.length) roomRead();
    }, 1000)
  : null;
const progress = setInterval(() => {
  const waiting = waiters.length;
  say({ progress: { arrived: tally.arrived, done: tally.done, in_flight: inFlight.size, commands: records.length, waiting } });
}, 5000);

const everyone = Promise.all(mine.map(buyer));
const deadline = sleep(config.start_at + config.timeout_s - now()).then(() => "deadline");
const ended = await Promise.race([everyone.then(() => "done"), deadline]);
stopping = true;
clearInterval(refresher);
clearInterval(progress);
if (roomReader) clearInterval(roomReader);
for (const [, resolve] of waiters.splice(0)) resolve(); // they see `stopping`
for (const req of inFlight) req.destroy();
if (ended === "deadline") await Promise.race([everyone, sleep(5)]);
loop.disable();
const cpu = process.cpuUsage(cpuBefore);
const result = {
  ended,
  buyers: mine.length,
  arrived: tally.arrived,
  records,
  reservations,
  fates,
  maps: maps.fetched,
  waited,
  room_reads: room.reads,
  wall_s: now() - began,
  cpu_s: (cpu.user + cpu.system) / 1e6,
  loop_delay_p99_ms: loop.percentile(99) / 1e6,
  loop_delay_max_ms: loop.max / 1e6,
};
// A pipe takes large writes asynchronously: exit only once all of it is out.
process.stdout.write(JSON.stringify({ result }) + "\n", () => process.exit(0));
