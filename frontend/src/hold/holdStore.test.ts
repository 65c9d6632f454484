import { describe, expect, it } from "vitest";
import { memoryStorage } from "../testing/memoryStorage";
import { holdKey, holdRestore, holdSave } from "./holdStore";

const NOW = Date.parse("2030-05-01T12:00:00Z");
const hold = { token: "tok", seats: ["A-1-3"], expiresAt: "2030-05-01T12:05:00Z", seq: 42 };

describe("holdStore", () => {
  it("saves under a key per event and restores the same hold", () => {
    const storage = memoryStorage();
    holdSave(storage, 7, hold);
    expect(JSON.parse(storage.data.get(holdKey(7))!)).toEqual({
      hold_token: "tok",
      seats: ["A-1-3"],
      expires_at: "2030-05-01T12:05:00Z",
      seq: 42,
    });
    expect(holdRestore(storage, 7, NOW)).toEqual(hold);
    expect(holdRestore(storage, 8, NOW)).toBeNull();
  });

  it("drops an expired hold", () => {
    const storage = memoryStorage();
    holdSave(storage, 7, hold);
    expect(holdRestore(storage, 7, Date.parse("2030-05-01T12:05:01Z"))).toBeNull();
    expect(storage.data.has(holdKey(7))).toBe(false);
  });

  it("drops unreadable entries", () => {
    const storage = memoryStorage();
    storage.setItem(holdKey(7), "{not json");
    expect(holdRestore(storage, 7, NOW)).toBeNull();
    storage.setItem(holdKey(7), JSON.stringify({ hold_token: "x", seats: [], expires_at: "2030-05-01T12:05:00Z" }));
    expect(holdRestore(storage, 7, NOW)).toBeNull();
    expect(storage.data.size).toBe(0);
  });

  it("saving null forgets the hold", () => {
    const storage = memoryStorage();
    holdSave(storage, 7, hold);
    holdSave(storage, 7, null);
    expect(storage.data.size).toBe(0);
  });
});
