// Layer-by-layer alignment of several architectures against a reference, for the
// comparison view: a global alignment (Needleman-Wunsch) of each model's layer
// sequence to the reference's, merged into shared columns so that matched layers
// sit in the same column and insertions get columns of their own.
//
// Branching architectures (schema 2) align by the same layer order; a layer's
// connections enter its signature as offsets ("reads 1 and 3 layers back", "the
// input"), so a merge reading the same relative layers in two models is the same
// even when layers were inserted before it, and a changed connection shows as changed.

import type { GlyphLayer, Layer } from "../types";

export interface AlignLayer {
  type: string;
  /** A signature of the layer's settings; equal signatures = identical layers. */
  sig: string;
}

export type Op = "same" | "changed" | "inserted" | "deleted";

/** Cost of aligning a with b: 0 identical, 1 same type but changed, 2.5 different types (mismatch). */
function subCost(a: AlignLayer, b: AlignLayer): number {
  if (a.type !== b.type) return 2.5;
  return a.sig === b.sig ? 0 : 1;
}
const GAP = 1.2;

/**
 * Pairwise alignment. Returns, for each reference position i, the index of the
 * matched layer of `other` (or null when deleted), and for each reference
 * position 0..n (n = after the last) the indexes of `other` inserted before it.
 */
export function alignPair(
  ref: AlignLayer[],
  other: AlignLayer[],
): { match: (number | null)[]; insertsBefore: number[][] } {
  const n = ref.length,
    m = other.length;
  const D: number[][] = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = 1; i <= n; i++) D[i][0] = i * GAP;
  for (let j = 1; j <= m; j++) D[0][j] = j * GAP;
  for (let i = 1; i <= n; i++) {
    for (let j = 1; j <= m; j++) {
      const sub = subCost(ref[i - 1], other[j - 1]);
      // A type mismatch is never cheaper than a delete + insert pair; keep it as
      // a substitution only when types agree (so columns stay type-consistent).
      const diag = sub <= 1 ? D[i - 1][j - 1] + sub : Infinity;
      D[i][j] = Math.min(diag, D[i - 1][j] + GAP, D[i][j - 1] + GAP);
    }
  }
  const match: (number | null)[] = new Array(n).fill(null);
  const insertsBefore: number[][] = Array.from({ length: n + 1 }, () => []);
  let i = n,
    j = m;
  while (i > 0 || j > 0) {
    if (i > 0 && j > 0) {
      const sub = subCost(ref[i - 1], other[j - 1]);
      if (sub <= 1 && Math.abs(D[i][j] - (D[i - 1][j - 1] + sub)) < 1e-9) {
        match[i - 1] = j - 1;
        i--;
        j--;
        continue;
      }
    }
    if (i > 0 && Math.abs(D[i][j] - (D[i - 1][j] + GAP)) < 1e-9) {
      i--; // reference layer deleted in other
      continue;
    }
    insertsBefore[i].unshift(j - 1); // other's layer inserted before ref position i
    j--;
  }
  return { match, insertsBefore };
}

export interface AlignedCell {
  /** Index into the model's layer list, or null for an empty cell. */
  layer: number | null;
  op: Op | null; // null for empty cells in the reference row
}

export interface Alignment {
  columns: number; // number of shared columns
  /** Whether column c holds a reference layer (false: an insertion column). */
  refColumn: boolean[];
  rows: AlignedCell[][]; // one row per model (rows[0] = reference), `columns` cells each
}

/** Align models[1..] to models[0] and merge into shared columns. */
export function alignModels(models: AlignLayer[][]): Alignment {
  if (models.length === 0) return { columns: 0, refColumn: [], rows: [] };
  const ref = models[0];
  const n = ref.length;
  const pairs = models.slice(1).map((o) => alignPair(ref, o));
  // Insertion slots before each ref position: the most any model inserts there.
  const slots = new Array<number>(n + 1).fill(0);
  for (const p of pairs) for (let i = 0; i <= n; i++) slots[i] = Math.max(slots[i], p.insertsBefore[i].length);
  const refColumn: boolean[] = [];
  const colOfRef: number[] = [];
  const slotStart: number[] = [];
  let c = 0;
  for (let i = 0; i <= n; i++) {
    slotStart.push(c);
    for (let s = 0; s < slots[i]; s++) refColumn.push(false);
    c += slots[i];
    if (i < n) {
      colOfRef.push(c);
      refColumn.push(true);
      c++;
    }
  }
  const columns = c;
  const empty = (): AlignedCell[] => Array.from({ length: columns }, () => ({ layer: null, op: null }));
  const refRow = empty();
  for (let i = 0; i < n; i++) refRow[colOfRef[i]] = { layer: i, op: "same" };
  const rows: AlignedCell[][] = [refRow];
  pairs.forEach((p, k) => {
    const other = models[k + 1];
    const row = empty();
    for (let i = 0; i <= n; i++) {
      p.insertsBefore[i].forEach((layer, s) => {
        row[slotStart[i] + s] = { layer, op: "inserted" };
      });
      if (i < n) {
        const j = p.match[i];
        row[colOfRef[i]] =
          j === null ? { layer: null, op: "deleted" } : { layer: j, op: ref[i].sig === other[j].sig ? "same" : "changed" };
      }
    }
    rows.push(row);
  });
  return { columns, refColumn, rows };
}

/** Connections as offsets back from layer `index` ("in" = the network input); "" for the previous layer. */
export function inputsSignature(inputs: readonly number[] | undefined, index: number): string {
  if (!inputs || (inputs.length === 1 && inputs[0] === index - 1)) return "";
  return inputs.map((k) => (k < 0 ? "in" : String(index - k))).join("+");
}

/** Signature of a glyph layer: its type plus what the glyph tells about it. */
export function glyphSignature(g: GlyphLayer): AlignLayer {
  return {
    type: g.type,
    sig: `${g.type}|${g.output_shape ? g.output_shape.join("x") : "?"}|${g.params ?? "?"}|${g.fn ?? ""}|${g.rate ?? ""}|${inputsSignature(g.inputs, g.index)}`,
  };
}

/** Signature of spec layer `index`: its type plus all its fields in a stable order (inputs as offsets). */
export function specLayerSignature(layer: Layer, index = 0): AlignLayer {
  const keys = Object.keys(layer)
    .filter((k) => k !== "type" && k !== "inputs")
    .sort();
  const fields = keys.map((k) => `${k}=${String(layer[k])}`);
  const inputs = Array.isArray(layer.inputs) ? inputsSignature(layer.inputs, index) : "";
  if (inputs) fields.push(`inputs=${inputs}`);
  return { type: layer.type, sig: `${layer.type}|${fields.join(",")}` };
}

/** `conv2d (filters 16, kernel_size 3)`: a spec layer's type and its fields (connections left out). */
export function describeSpecLayer(layer: Layer): string {
  const parts = Object.keys(layer)
    .filter((k) => k !== "type" && k !== "inputs" && layer[k] !== undefined)
    .map((k) => `${k} ${formatField(layer[k])}`);
  return parts.length ? `${layer.type} (${parts.join(", ")})` : layer.type;
}

function formatField(v: Layer[string]): string {
  return Array.isArray(v) ? `[${v.join(", ")}]` : String(v);
}

/**
 * The change list of `child` relative to `parent` (issue 11: hand-crafted models), read off
 * the same global alignment the comparison view draws (`alignPair` over `specLayerSignature`):
 * a matched layer whose settings differ gives one "layer i type: field a → b" per field, an
 * unmatched parent layer "removed layer i ...", an unmatched child layer "inserted ... after
 * layer i" (or "at the start"), and a removal followed by an insertion at the same place
 * "replaced layer i type with ...". Layer indexes are the parent's, as in the operators'
 * change lists (`remap_tb/spec/operators.py`). Empty when the layer sequences are identical.
 */
export function specChanges(parent: Layer[], child: Layer[]): string[] {
  const ref = parent.map((l, i) => specLayerSignature(l, i));
  const other = child.map((l, i) => specLayerSignature(l, i));
  const { match, insertsBefore } = alignPair(ref, other);
  // The alignment as a sequence of events in layer order; a removal next to an insertion
  // (either order) is one replacement.
  type Ev = { kind: "ins"; j: number; at: number } | { kind: "del"; i: number } | { kind: "match"; i: number; j: number };
  const evs: Ev[] = [];
  for (let i = 0; i <= parent.length; i++) {
    for (const j of insertsBefore[i]) evs.push({ kind: "ins", j, at: i });
    if (i < parent.length) {
      const j = match[i];
      evs.push(j === null ? { kind: "del", i } : { kind: "match", i, j });
    }
  }
  const out: string[] = [];
  const where = (at: number) => (at === 0 ? "at the start" : `after layer ${at - 1}`);
  for (let k = 0; k < evs.length; k++) {
    const e = evs[k],
      next = evs[k + 1];
    if (next && ((e.kind === "del" && next.kind === "ins") || (e.kind === "ins" && next.kind === "del"))) {
      const i = e.kind === "del" ? e.i : (next as { i: number }).i;
      const j = e.kind === "ins" ? e.j : (next as { j: number }).j;
      out.push(`replaced layer ${i} ${parent[i].type} with ${describeSpecLayer(child[j])}`);
      k++;
      continue;
    }
    if (e.kind === "ins") out.push(`inserted ${describeSpecLayer(child[e.j])} ${where(e.at)}`);
    else if (e.kind === "del") out.push(`removed layer ${e.i} ${describeSpecLayer(parent[e.i])}`);
    else if (ref[e.i].sig !== other[e.j].sig) {
      const a = parent[e.i],
        b = child[e.j];
      const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((x) => x !== "type" && x !== "inputs").sort();
      for (const x of keys) {
        if (a[x] !== undefined && b[x] !== undefined && formatField(a[x]) === formatField(b[x])) continue;
        if (a[x] === undefined && b[x] === undefined) continue;
        out.push(`layer ${e.i} ${a.type}: ${x} ${a[x] === undefined ? "default" : formatField(a[x])} → ${b[x] === undefined ? "default" : formatField(b[x])}`);
      }
      if (inputsSignature(a.inputs, e.i) !== inputsSignature(b.inputs, e.j))
        out.push(`layer ${e.i} ${a.type}: reads ${inputsText(a.inputs, e.i)} → ${inputsText(b.inputs, e.j)}`);
    }
  }
  return out;
}

/** "the previous layer", "the input + 3 back": what a layer reads, as offsets (comparable across models). */
function inputsText(inputs: readonly number[] | undefined, index: number): string {
  if (!inputs || (inputs.length === 1 && inputs[0] === index - 1)) return "the previous layer";
  return inputs.map((k) => (k < 0 ? "the input" : `${index - k} back`)).join(" + ");
}
