import { describe, expect, it } from "vitest";
import { figures, place, status } from "../testing/roomFixtures";
import { etaSeconds, etaText, positionOf, roomNext, roomView } from "./roomState";

describe("position math", () => {
  it("counts from the ticket being served: 1 is next, 0 admitted", () => {
    expect(positionOf(5, 3)).toBe(2);
    expect(positionOf(4, 3)).toBe(1);
    expect(positionOf(3, 3)).toBe(0);
    expect(positionOf(2, 3)).toBe(0);
  });

  it("estimates the wait from the rate per minute", () => {
    expect(etaSeconds(2, 12)).toBe(10);
    expect(etaSeconds(1, 7)).toBe(9); // rounded up
    expect(etaSeconds(3, 0)).toBeNull(); // no rate known yet
    expect(etaSeconds(0, 12)).toBeNull();
  });

  it("says the wait in words", () => {
    expect(etaText(null)).toBe("not known yet");
    expect(etaText(10)).toBe("less than a minute");
    expect(etaText(60)).toBe("about 1 minute");
    expect(etaText(12 * 60 + 20)).toBe("about 12 minutes");
    expect(etaText(3 * 3600)).toBe("about 3 hours");
  });
});

describe("roomNext and roomView", () => {
  it("shows the map when the room is off", () => {
    const view = roomView(roomNext(null, { ...status(null), state: "off", place: null }));
    expect(view.phase).toBe("map");
  });

  it("before the draw: waiting without a position, with the start", () => {
    const view = roomView(roomNext(null, status(null, { state: "before", drawn: false })));
    expect(view).toMatchObject({
      phase: "waiting",
      state: "before",
      saleStartsAt: "2030-01-01T10:00:00Z",
      position: null,
      ahead: null,
      etaSeconds: null,
    });
  });

  it("keeps the ticket through frames without a place and moves the position with serving", () => {
    let model = roomNext(null, status(5, { serving: 2 }));
    expect(roomView(model)).toMatchObject({ phase: "waiting", position: 3, ahead: 2, etaSeconds: 15 });
    model = roomNext(model, figures({ serving: 4, waiting: 1 }));
    expect(roomView(model)).toMatchObject({ phase: "waiting", ticket: 5, position: 1, ahead: 0, etaSeconds: 5, waiting: 1 });
    model = roomNext(model, figures({ serving: 5 }));
    expect(roomView(model)).toMatchObject({ phase: "admitted", position: 0, ahead: null, etaSeconds: null });
  });

  it("takes the ticket from a personal frame after the draw", () => {
    let model = roomNext(null, status(null, { state: "before", drawn: false }));
    model = roomNext(model, figures({ drawn: true })); // the broadcast: still no ticket
    expect(roomView(model)).toMatchObject({ phase: "waiting", position: null });
    model = roomNext(model, { ...figures(), place: place(2) });
    expect(roomView(model)).toMatchObject({ phase: "waiting", position: 2, ahead: 1 });
  });

  it("a paused room keeps the position; an off frame ends the room", () => {
    let model = roomNext(null, status(3, { serving: 1 }));
    model = roomNext(model, figures({ serving: 1, state: "paused" }));
    expect(roomView(model)).toMatchObject({ phase: "waiting", state: "paused", position: 2 });
    model = roomNext(model, figures({ state: "off" }));
    expect(roomView(model).phase).toBe("map");
  });

  it("asks for a place when the server says the buyer has none", () => {
    const model = roomNext(roomNext(null, status(3)), { ...figures(), place: null });
    expect(roomView(model).phase).toBe("join");
  });
});
