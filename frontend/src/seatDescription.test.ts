import { describe, expect, it } from "vitest";
import { countdownText, formatDate, priceFormat } from "./format";
import { describeSeat, seatLabel, seatLabelWithKey } from "./seatDescription";
import { testVenue } from "./testing/fixtures";

const venue = testVenue();
const at = (key: string) => venue.indexByKey.get(key)!;
const euros = priceFormat("EUR");

describe("seat texts", () => {
  it("describes the focused seat exactly as the screen reader hears it", () => {
    expect(describeSeat(venue, at("A-1-2"), "free", euros)).toBe("A row 1 seat 2, free, €50.00");
    expect(describeSeat(venue, at("A-1-3"), "selected", euros)).toBe("A row 1 seat 3, selected, €50.00");
    expect(describeSeat(venue, at("A-1-2"), "mine", euros)).toBe("A row 1 seat 2, held by you, €50.00");
    expect(describeSeat(venue, at("A-1-2"), "held", euros)).toBe("A row 1 seat 2, held by others, €50.00");
    expect(describeSeat(venue, at("A-2-1"), "reserved", euros)).toBe("A row 2 seat 1, reserved, €50.00");
    expect(describeSeat(venue, at("B-1-1"), "blocked", euros)).toBe("B row 1 seat 1, not for sale, €30.00");
    expect(describeSeat(venue, at("B-1-6"), "free", euros)).toBe(
      "B row 1 seat 6, free, €30.00, wheelchair accessible",
    );
  });

  it("labels seats with and without their key", () => {
    expect(seatLabel(venue, at("A-2-4"))).toBe("A row 2 seat 4");
    expect(seatLabelWithKey(venue, "A-1-2")).toBe("A row 1 seat 2 (A-1-2)");
    expect(seatLabelWithKey(venue, "Q-1-1")).toBe("Q-1-1");
  });

  it("formats prices in the layout's currency", () => {
    expect(euros("80.00")).toBe("€80.00");
    expect(priceFormat("USD")(1234.5)).toBe("$1,234.50");
    expect(priceFormat("NOPE")("3")).toBe("3.00");
  });

  it("counts down in mm:ss, never below zero", () => {
    expect(countdownText(600_000)).toBe("10:00");
    expect(countdownText(61_000)).toBe("01:01");
    expect(countdownText(59_001)).toBe("01:00");
    expect(countdownText(-5)).toBe("00:00");
  });

  it("shows a date, or the text it could not read", () => {
    expect(formatDate("2030-05-01T19:30:00Z")).toMatch(/2030/);
    expect(formatDate("soon")).toBe("soon");
  });
});
