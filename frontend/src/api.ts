// The one way the app talks HTTP to Django: same-origin cookies, the CSRF header, and one
// Idempotency-Key per buyer action so a retry after a network failure cannot act twice.

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly detail: string;
  /** For seats_unavailable (and a few others): exactly the seats concerned. */
  readonly seats: string[];
  readonly limit: number | undefined;

  constructor(status: number, body: Record<string, unknown>) {
    const detail = typeof body.detail === "string" ? body.detail : `Request failed (${status}).`;
    super(detail);
    this.status = status;
    this.code = typeof body.code === "string" ? body.code : "error";
    this.detail = detail;
    this.seats = Array.isArray(body.seats) ? body.seats.map(String) : [];
    this.limit = typeof body.limit === "number" ? body.limit : undefined;
  }
}

const NETWORK_RETRIES = 2;
const RETRY_DELAY_MS = 400;

export function csrfToken(cookie: string = document.cookie): string | null {
  for (const part of cookie.split(";")) {
    const [name, ...value] = part.trim().split("=");
    if (name === "csrftoken") return decodeURIComponent(value.join("="));
  }
  return null;
}

// The server's clock, as far as its Date header tells (1 s resolution). Hold expiry times
// are the server's, and a buyer's clock may be minutes off: a countdown on the local clock
// would then end a hold early, or show one that is already gone.
const CLOCK_TOLERANCE_MS = 2_000;
let clockOffsetMs = 0;

export function serverNow(): number {
  return Date.now() + clockOffsetMs;
}

export function serverClockNote(dateHeader: string | null, localNow: number = Date.now()): void {
  const serverTime = Date.parse(dateHeader ?? "");
  if (Number.isNaN(serverTime)) return;
  const offset = serverTime - localNow;
  // Within the header's resolution (and the request's latency) the clocks agree.
  clockOffsetMs = Math.abs(offset) > CLOCK_TOLERANCE_MS ? offset : 0;
}

async function parsed<T>(response: Response): Promise<T> {
  serverClockNote(response.headers.get("Date"));
  const text = await response.text();
  let body: unknown = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = { detail: text.slice(0, 200) || response.statusText };
  }
  if (!response.ok) {
    throw new ApiError(response.status, (body ?? {}) as Record<string, unknown>);
  }
  return body as T;
}

export async function apiGet<T>(path: string, signal?: AbortSignal): Promise<T> {
  const response = await fetch(path, {
    credentials: "same-origin",
    headers: { Accept: "application/json" },
    signal,
  });
  return parsed<T>(response);
}

// The last command whose outcome is unknown (the network failed every attempt). If the buyer
// tries the very same action again, it is the same action to the server: same key.
let unsettled: { action: string; key: string } | null = null;

/**
 * A buyer command. Its automatic retries (network failures, or the first attempt still
 * running server-side) and a manual retry after a network failure replay the same action.
 */
export async function apiCommand<T>(path: string, body: unknown): Promise<T> {
  const action = `${path} ${JSON.stringify(body)}`;
  const key = unsettled?.action === action ? unsettled.key : crypto.randomUUID();
  unsettled = { action, key };
  for (let attempt = 0; ; attempt++) {
    const headers: Record<string, string> = {
      Accept: "application/json",
      "Content-Type": "application/json",
      "Idempotency-Key": key,
    };
    const csrf = csrfToken();
    if (csrf) headers["X-CSRFToken"] = csrf;
    let response: Response;
    try {
      response = await fetch(path, {
        method: "POST",
        credentials: "same-origin",
        headers,
        body: JSON.stringify(body),
      });
    } catch (error) {
      if (attempt >= NETWORK_RETRIES) throw error;
      await delay(RETRY_DELAY_MS * (attempt + 1));
      continue;
    }
    if (unsettled?.key === key) unsettled = null; // the server answered: settled
    try {
      return await parsed<T>(response);
    } catch (error) {
      const inFlight = error instanceof ApiError && error.code === "idempotency_key_in_flight";
      if (!inFlight || attempt >= NETWORK_RETRIES) throw error;
      await delay(RETRY_DELAY_MS * (attempt + 1));
    }
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A message for any failure: the server's detail, or the network's. */
export function errorText(error: unknown): string {
  if (error instanceof ApiError) return error.detail;
  if (error instanceof Error) return `Network error: ${error.message}`;
  return "Something went wrong.";
}
