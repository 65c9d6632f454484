import { vi } from "vitest";
import type { SocketLike, Timers } from "../live/socket";

/** A WebSocket the test drives by hand: open it, push server messages, close it. */
export class FakeSocket implements SocketLike {
  static made: FakeSocket[] = [];
  readyState = 0;
  sent: unknown[] = [];
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: { code: number }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;
  readonly url: string;

  constructor(url: string) {
    this.url = url;
    FakeSocket.made.push(this);
  }

  static latest(): FakeSocket {
    return FakeSocket.made[FakeSocket.made.length - 1];
  }

  send(data: string): void {
    this.sent.push(JSON.parse(data));
  }

  close(code = 1005): void {
    if (this.readyState !== 3) this.serverClose(code);
  }

  open(): void {
    this.readyState = 1;
    this.onopen?.({});
  }

  receive(message: unknown): void {
    this.onmessage?.({ data: JSON.stringify(message) });
  }

  serverClose(code: number): void {
    this.readyState = 3;
    this.onclose?.({ code });
  }

  sentOfType(type: string): unknown[] {
    return this.sent.filter((m) => (m as { type: string }).type === type);
  }
}

/** Vitest's fake clock behind the Timers interface. */
export const fakeTimers: Timers = {
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (id) => clearTimeout(id as ReturnType<typeof setTimeout>),
  setInterval: (callback, ms) => setInterval(callback, ms),
  clearInterval: (id) => clearInterval(id as ReturnType<typeof setInterval>),
  now: () => Date.now(),
};

export function resetFakes(): void {
  FakeSocket.made = [];
  vi.useFakeTimers();
}
