// The connections of a spec (schema 2): which layers each layer reads, and how
// the editor's edits (insert, remove, move, add a skip) keep them pointing at the
// same layers. Pure functions over layer lists; validation stays the server's.
//
// A layer's `inputs` are 0-based indices of earlier layers, -1 = the network input;
// without `inputs` a layer reads the previous layer (layer 0: the input). Edits keep
// that implicit "previous layer" where it was (so a chain stays a chain, exactly as
// before), re-index explicit inputs, and drop `inputs` that say just [index - 1].

import type { Layer, Spec } from "../types";

/** The network input, in `inputs`. */
export const NETWORK_INPUT = -1;

/** Layer types that merge several inputs when the server's schema does not say (GET schema `merge_types`). */
export const MERGE_TYPES = ["add", "concat"];

export function isMergeType(type: string, mergeTypes: readonly string[] = MERGE_TYPES): boolean {
  return mergeTypes.includes(type);
}

/** What layer `index` reads: its `inputs`, or the previous layer. */
export function inputsOf(layer: { inputs?: number[] }, index: number): number[] {
  return Array.isArray(layer.inputs) ? [...layer.inputs] : [index - 1];
}

/** Does a layer at `index` with these inputs just read the previous layer (a chain link)? */
export function readsPrevious(inputs: readonly number[] | undefined, index: number): boolean {
  return inputs === undefined || (inputs.length === 1 && inputs[0] === index - 1);
}

/** "input" for -1, else "#k". */
export function inputLabel(k: number): string {
  return k === NETWORK_INPUT ? "input" : `#${k}`;
}

/** The schema version a spec needs: 2 when it uses inputs, merges, `bias` or integer padding, else 1. */
export function specSchemaVersion(layers: readonly Layer[]): 1 | 2 {
  for (const l of layers) {
    if (isMergeType(l.type) || l.inputs !== undefined || l["bias"] !== undefined) return 2;
    if (l["padding"] !== undefined && typeof l["padding"] !== "string") return 2;
  }
  return 1;
}

/** `spec` with its `schema` set from its layers (specSchemaVersion). */
export function withSchemaVersion(spec: Spec): Spec {
  return { ...spec, schema: specSchemaVersion(spec.layers) };
}

function clone(l: Layer): Layer {
  const c: Layer = { ...l };
  if (Array.isArray(l.inputs)) c.inputs = [...l.inputs];
  return c;
}

function dedupe(xs: number[]): number[] {
  return xs.filter((x, i) => xs.indexOf(x) === i);
}

/** Set (or clear, when it is just the previous layer) a layer's `inputs`, in place. */
function put(layer: Layer, inputs: number[] | undefined, index: number): void {
  if (inputs === undefined || readsPrevious(inputs, index)) delete layer.inputs;
  else layer.inputs = inputs;
}

/**
 * Insert `layer` at `pos`. Explicit inputs of the other layers are re-indexed so they
 * keep pointing at the same layers; a layer that read its predecessor implicitly still
 * does (so the layer after `pos` now reads the inserted one, as in a chain). The
 * inserted layer's own `inputs`, if any, are in the new indexing.
 */
export function insertLayer(layers: readonly Layer[], pos: number, layer: Layer): Layer[] {
  const shift = (k: number) => (k >= pos ? k + 1 : k);
  const out = layers.map((l, j) => {
    const c = clone(l);
    if (Array.isArray(l.inputs)) put(c, l.inputs.map(shift), shift(j));
    return c;
  });
  const added = clone(layer);
  put(added, added.inputs, pos);
  out.splice(pos, 0, added);
  return out;
}

/**
 * Remove layer `r`. Its consumers are reconnected to what it read (its first input),
 * like an ablation; the other explicit inputs are re-indexed to keep pointing at the
 * same layers. A merge left with a repeated input keeps it once (the server then says
 * it needs two).
 */
export function removeLayer(layers: readonly Layer[], r: number): Layer[] {
  if (r < 0 || r >= layers.length) return layers.map(clone);
  const replacement = inputsOf(layers[r], r)[0] ?? r - 1;
  const map = (k: number) => (k === r ? replacement : k > r ? k - 1 : k);
  const out: Layer[] = [];
  layers.forEach((l, j) => {
    if (j === r) return;
    const c = clone(l);
    const nj = j > r ? j - 1 : j;
    if (Array.isArray(l.inputs)) put(c, dedupe(l.inputs.map(map)), nj);
    else if (j === r + 1) put(c, [replacement], nj); // read r implicitly: now reads what r read
    out.push(c);
  });
  return out;
}

/**
 * Swap layer `i` with its neighbour `j` (= i ± 1). Explicit inputs follow the layers
 * they point at; implicit ones keep reading the previous position (a chain reorders
 * as before). A connection that now points forward is left for the server to flag.
 */
export function moveLayer(layers: readonly Layer[], i: number, j: number): Layer[] {
  if (j < 0 || j >= layers.length || i < 0 || i >= layers.length || i === j) return layers.map(clone);
  const perm = (k: number) => (k === i ? j : k === j ? i : k);
  const out = layers.map((l, k) => {
    const c = clone(l);
    if (Array.isArray(l.inputs)) put(c, l.inputs.map(perm), perm(k));
    return c;
  });
  [out[i], out[j]] = [out[j], out[i]];
  return out;
}

/** Set the inputs of layer `i` (dropping `inputs` when it is just the previous layer). */
export function setInputs(layers: readonly Layer[], i: number, inputs: number[]): Layer[] {
  const out = layers.map(clone);
  put(out[i], dedupe(inputs), i);
  return out;
}

/** Add a connection from `from` (an earlier layer or -1) to layer `i`. */
export function addInput(layers: readonly Layer[], i: number, from: number): Layer[] {
  return setInputs(layers, i, [...inputsOf(layers[i], i), from]);
}

/** Remove the connection from `from` to layer `i` (a layer keeps at least one input). */
export function removeInput(layers: readonly Layer[], i: number, from: number): Layer[] {
  const left = inputsOf(layers[i], i).filter((k) => k !== from);
  return left.length ? setInputs(layers, i, left) : layers.map(clone);
}

/**
 * A skip connection: insert `{type: mergeType, inputs: [i, from]}` right after layer `i`,
 * so the layer after it reads the sum of layer `i` and the earlier layer `from`.
 */
export function addSkip(layers: readonly Layer[], i: number, from: number, mergeType = "add"): Layer[] {
  return insertLayer(layers, i + 1, { type: mergeType, inputs: [i, from] });
}

/** The layers a connection into layer `i` may come from and that it does not read yet: -1, 0 .. i-1. */
export function inputChoices(layers: readonly Layer[], i: number): number[] {
  const now = new Set(inputsOf(layers[i], i));
  const out: number[] = [];
  for (let k = NETWORK_INPUT; k < i; k++) if (!now.has(k)) out.push(k);
  return out;
}
