// Idempotency keys for POST enqueue. The key is derived from the exact body (a hash of
// its canonical JSON) and a per-page-load nonce: a changed body (other epochs, another
// layer) gets a new key, so the server never answers "client_key was already used for a
// different enqueue"; an identical repeated click reuses the key, the server returns the
// same ids, and `EnqueueHistory.note` tells the view they were queued before.

import type { EnqueueRequest } from "../types";

/** JSON with object keys sorted and undefined members left out (equal bodies, equal text). */
export function stableJson(v: unknown): string {
  if (v === undefined || v === null || typeof v !== "object") return JSON.stringify(v ?? null);
  if (Array.isArray(v)) return `[${v.map(stableJson).join(",")}]`;
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o)
    .filter((k) => o[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${stableJson(o[k])}`).join(",")}}`;
}

/** cyrb53: a fast 53-bit string hash, as 14 hex digits. */
export function hashText(s: string, seed = 0): string {
  let h1 = 0xdeadbeef ^ seed,
    h2 = 0x41c6ce57 ^ seed;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return (4294967296 * (2097151 & h2) + (h1 >>> 0)).toString(16).padStart(14, "0");
}

/** The idempotency key of an enqueue body (its own client_key is ignored). */
export function enqueueKey(body: EnqueueRequest, nonce: string): string {
  const text = stableJson({ ...body, client_key: undefined });
  return `${nonce}-${hashText(text, 1)}${hashText(text, 2)}`;
}

let nonce: string | null = null;

/** A random nonce, fixed for this page load. */
export function pageNonce(): string {
  if (nonce === null) {
    const bytes = new Uint8Array(8);
    if (typeof crypto !== "undefined" && crypto.getRandomValues) crypto.getRandomValues(bytes);
    else for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
    nonce = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }
  return nonce;
}

/** The request ids this page has been given, to tell a repeated enqueue from a new one. */
export class EnqueueHistory {
  private readonly seen = new Set<string>();

  constructor(private readonly nonce: string = pageNonce()) {}

  key(body: EnqueueRequest): string {
    return enqueueKey(body, this.nonce);
  }

  /** Split the ids the server returned into new ones and ones already returned before. */
  note(ids: string[]): { fresh: string[]; repeated: string[] } {
    const fresh = ids.filter((id) => !this.seen.has(id));
    const repeated = ids.filter((id) => this.seen.has(id));
    for (const id of ids) this.seen.add(id);
    return { fresh, repeated };
  }
}

/** The words for an enqueue answer: "Queued …" or "Already queued as …". */
export function enqueueMessage(ids: string[], noted: { fresh: string[]; repeated: string[] }): string {
  const n = ids.length;
  if (n && noted.fresh.length === 0)
    return `Already queued as ${ids.join(", ")}: this exact request was sent before, so nothing new was queued. Change something (e.g. the epochs) to queue another.`;
  const again = noted.repeated.length ? ` (${noted.repeated.length} of them already queued before)` : "";
  return `Queued ${n === 1 ? ids[0] : `${n} models`} for training${again}. ${n === 1 ? "It appears" : "They appear"} on the map when ${n === 1 ? "it finishes" : "they finish"} (see the Queue tab).`;
}
