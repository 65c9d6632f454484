import { vi } from "vitest";

/** A reply the fake server gives, or a network failure (an Error, thrown by fetch). */
export type FakeAnswer = { status: number; body: unknown; date?: string } | Error;

export interface FakeRequest {
  path: string;
  body: unknown;
  headers: Record<string, string>;
}

/**
 * Stubs the global fetch (and document, for the CSRF cookie): each request takes the next
 * queued answer and is recorded. Undo with vi.unstubAllGlobals().
 */
export function fakeFetch() {
  const answers: FakeAnswer[] = [];
  const requests: FakeRequest[] = [];
  const fetch = vi.fn(async (path: string, init: RequestInit = {}): Promise<Response> => {
    requests.push({
      path,
      body: init.body === undefined ? undefined : JSON.parse(String(init.body)),
      headers: (init.headers ?? {}) as Record<string, string>,
    });
    const answer = answers.shift();
    if (answer === undefined) throw new Error(`no answer queued for ${path}`);
    if (answer instanceof Error) throw answer;
    const headers: Record<string, string> = { "Content-Type": "application/json" };
    if (answer.date) headers.Date = answer.date;
    return new Response(JSON.stringify(answer.body), { status: answer.status, headers });
  });
  vi.stubGlobal("document", { cookie: "csrftoken=tok" });
  vi.stubGlobal("fetch", fetch);
  return { answers, requests, fetch, reply: (status: number, body: unknown) => answers.push({ status, body }) };
}
