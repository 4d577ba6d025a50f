// Duplicates name the existing model (issue 11). A duplicate is reported by the server in
// five places: a generated candidate (`valid: false` with a reason, and `duplicate_of`),
// generate's `duplicates` (variation draws left out, per model), a refused enqueue (a 409
// whose body has `duplicate_of`: the same model once no-ops are removed), enqueue's
// `duplicates` (exact repeats, queued anyway), or a validation. Servers before
// `duplicate_of` only say it in words ("same model as the parent", "same model as an
// existing model"), so the model is also found by the candidate's key (its spec hash,
// equal to the model's `spec_hash`) or by a model id named in the message.

import type { Candidate, DuplicateRef, ModelSummary } from "../types";

/** The model a `duplicate_of` names, among the known models (by id, then by run). */
export function resolveDuplicate(ref: DuplicateRef | null | undefined, models: ModelSummary[]): ModelSummary | null {
  if (ref === null || ref === undefined) return null;
  const ids = typeof ref === "string" ? [ref] : [ref.id, ref.run].filter((v): v is string => typeof v === "string" && v !== "");
  for (const key of ids) {
    const m = models.find((x) => x.id === key) ?? models.find((x) => x.run === key);
    if (m) return m;
  }
  return null;
}

/** The id a `duplicate_of` names, even when that model is not loaded here. */
export function duplicateId(ref: DuplicateRef | null | undefined): string | null {
  if (typeof ref === "string") return ref || null;
  if (ref && typeof ref === "object") return ref.id || ref.run || null;
  return null;
}

const WORDS = /\b(?:same model as|duplicate of|duplicates|identical to|already trained as|already queued as)\b/i;

/** Does this message say "duplicate"? */
export function saysDuplicate(text: string | null | undefined): boolean {
  return !!text && WORDS.test(text);
}

/**
 * The existing model a candidate duplicates: `duplicate_of`; else, for a reason that says so,
 * the parent ("same model as the parent") or the model with the candidate's spec hash.
 */
export function candidateDuplicate(c: Candidate, models: ModelSummary[]): ModelSummary | null {
  const named = resolveDuplicate(c.duplicate_of, models);
  if (named) return named;
  const reason = c.reason ?? "";
  if (!saysDuplicate(reason)) return null;
  if (/\bthe parent\b|\ba parent\b/i.test(reason)) {
    const p = models.find((m) => m.run === c.parent || m.id === c.parent);
    if (p && (p.spec_hash === c.key || /\bthe parent\b/i.test(reason))) return p;
  }
  return models.find((m) => m.spec_hash === c.key) ?? fromText(reason, models);
}

/** The existing model an error message names: `duplicate_of`, else a known model id in a duplicate message. */
export function errorDuplicate(message: string, ref: DuplicateRef | null | undefined, models: ModelSummary[]): ModelSummary | null {
  return resolveDuplicate(ref, models) ?? (saysDuplicate(message) ? fromText(message, models) : null);
}

/** A known model whose id (or run) appears in the text as a word; the longest match wins. */
function fromText(text: string, models: ModelSummary[]): ModelSummary | null {
  let best: ModelSummary | null = null;
  for (const m of models) {
    for (const key of [m.id, m.run]) {
      const i = text.indexOf(key);
      if (i < 0) continue;
      const before = text[i - 1],
        after = text[i + key.length];
      const boundary = (ch: string | undefined) => ch === undefined || !/[\w-]/.test(ch);
      if (boundary(before) && boundary(after) && (!best || key.length > best.id.length)) best = m;
    }
  }
  return best;
}

/** `duplicates` entries (enqueue's per item, generate's with a count) summed per model, first seen first. */
export function groupDuplicates(entries: readonly { duplicate_of: string | null; count?: number }[] | null | undefined): { id: string; count: number }[] {
  const out = new Map<string, number>();
  for (const e of entries ?? []) {
    if (!e || typeof e.duplicate_of !== "string" || !e.duplicate_of) continue;
    const n = typeof e.count === "number" && e.count > 0 ? e.count : 1;
    out.set(e.duplicate_of, (out.get(e.duplicate_of) ?? 0) + n);
  }
  return [...out].map(([id, count]) => ({ id, count }));
}
