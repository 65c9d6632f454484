import { afterEach, describe, expect, it, vi } from "vitest";
import { ApiError, apiCommand, csrfToken, serverClockNote, serverNow } from "./api";

afterEach(() => {
  vi.unstubAllGlobals();
  vi.useRealTimers();
});

function reply(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
}

describe("api", () => {
  it("reads the csrftoken cookie", () => {
    expect(csrfToken("sessionid=x; csrftoken=abc%3D; other=1")).toBe("abc=");
    expect(csrfToken("sessionid=x")).toBeNull();
  });

  it("sends the CSRF token, JSON and an idempotency key, reused across network retries", async () => {
    vi.useFakeTimers();
    vi.stubGlobal("document", { cookie: "csrftoken=tok123" });
    const fetch = vi
      .fn()
      .mockRejectedValueOnce(new TypeError("Failed to fetch"))
      .mockResolvedValueOnce(reply(201, { hold_token: "h" }));
    vi.stubGlobal("fetch", fetch);
    const pending = apiCommand<{ hold_token: string }>("/api/events/7/holds", { seats: ["A-1-1"] });
    await vi.runAllTimersAsync();
    expect(await pending).toEqual({ hold_token: "h" });
    expect(fetch).toHaveBeenCalledTimes(2);
    const [path, init] = fetch.mock.calls[0];
    expect(path).toBe("/api/events/7/holds");
    expect(init.method).toBe("POST");
    expect(init.credentials).toBe("same-origin");
    expect(init.body).toBe('{"seats":["A-1-1"]}');
    expect(init.headers["X-CSRFToken"]).toBe("tok123");
    expect(init.headers["Content-Type"]).toBe("application/json");
    expect(init.headers["Idempotency-Key"]).toMatch(/^[0-9a-f-]{36}$/);
    expect(fetch.mock.calls[1][1].headers["Idempotency-Key"]).toBe(init.headers["Idempotency-Key"]);
  });

  it("a new action gets a new key", async () => {
    vi.stubGlobal("document", { cookie: "" });
    const fetch = vi.fn().mockImplementation(async () => reply(200, {}));
    vi.stubGlobal("fetch", fetch);
    await apiCommand("/a", {});
    await apiCommand("/a", {});
    const keys = fetch.mock.calls.map(([, init]) => init.headers["Idempotency-Key"]);
    expect(keys[0]).not.toBe(keys[1]);
    expect(fetch.mock.calls[0][1].headers["X-CSRFToken"]).toBeUndefined();
  });

  it("turns error bodies into ApiError with code, detail and seats", async () => {
    vi.stubGlobal("document", { cookie: "" });
    vi.stubGlobal(
      "fetch",
      vi.fn().mockResolvedValue(
        reply(409, { code: "seats_unavailable", detail: "Some seats are taken.", seats: ["A-1-2"] }),
      ),
    );
    const error = await apiCommand("/api/events/7/holds", {}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ status: 409, code: "seats_unavailable", detail: "Some seats are taken.", seats: ["A-1-2"] });
  });

  it("a manual retry after a network failure reuses the key; after an answer it does not", async () => {
    vi.useFakeTimers();
    vi.stubGlobal("document", { cookie: "" });
    const fetch = vi
      .fn()
      .mockRejectedValueOnce(new TypeError("offline"))
      .mockRejectedValueOnce(new TypeError("offline"))
      .mockRejectedValueOnce(new TypeError("offline"))
      .mockImplementation(async () => reply(201, {}));
    vi.stubGlobal("fetch", fetch);
    const first = apiCommand("/api/holds/t/reserve", {}).catch((e: unknown) => e);
    await vi.runAllTimersAsync();
    expect(await first).toBeInstanceOf(TypeError);
    await apiCommand("/api/holds/t/reserve", {}); // the buyer clicks Confirm again
    await apiCommand("/api/holds/t/reserve", {}); // a new action once the last one settled
    const keys = fetch.mock.calls.map(([, init]) => init.headers["Idempotency-Key"]);
    expect(new Set(keys.slice(0, 4)).size).toBe(1);
    expect(keys[4]).not.toBe(keys[0]);
  });

  it("follows the server's clock when the buyer's is off by more than the Date header's resolution", () => {
    const local = Date.now();
    serverClockNote(new Date(local + 5 * 60_000).toUTCString(), local);
    expect(serverNow() - Date.now()).toBeGreaterThan(5 * 60_000 - 2_000);

    serverClockNote(new Date(local - 800).toUTCString(), local); // within resolution: agree
    expect(Math.abs(serverNow() - Date.now())).toBeLessThan(50);

    serverClockNote(null, local); // no header: nothing learnt
    expect(Math.abs(serverNow() - Date.now())).toBeLessThan(50);
  });
});
