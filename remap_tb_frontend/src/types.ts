// The wire contract of the remap plugin, mirroring remap_tb/http_api.md exactly.
// This is the only copy of these types in the frontend: every module imports them
// from here. When http_api.md changes, change this file in the same commit.

export type Shape = number[]; // [C, H, W] or [N]
/** `untrained`: logged with `remap_tb.summary.log_model` and no epoch (an imported model). */
export type State = "queued" | "running" | "untrained" | "done" | "failed" | "diverged" | "cancelled";
/** `external`: logged from the user's own training loop with `remap_tb.summary`. */
export type Origin = "initial" | "ablation" | "variation" | "handcrafted" | "external";

/** A spec layer: `type` plus its fields (numbers, strings, booleans such as `bias`). */
export interface Layer {
  type: string;
  /**
   * Spec schema 2: 0-based indices of earlier layers this layer reads, -1 = the network
   * input. Absent = the previous layer (layer 0: the input). Only merge layers (`add`,
   * `concat`) take more than one.
   */
  inputs?: number[];
  [field: string]: number | string | boolean | number[] | undefined;
}

/** Schema 1: a chain using no schema 2 field; schema 2: `inputs`, merges, `bias`, integer padding. */
export interface Spec {
  schema: 1 | 2;
  input: { shape: Shape; num_classes: number };
  layers: Layer[];
}

export interface GlyphLayer {
  index: number;
  type: string; // a layer type, or "classifier" for the implicit classifier
  output_shape: Shape | null; // null only in invalid candidates' glyphs
  params: number | null; // null only in invalid candidates' glyphs
  fn?: string; // activations
  rate?: number; // dropout
  /** Schema 2: the layers it reads (-1 = the network input), only when not just the previous layer. */
  inputs?: number[];
}

export interface Status {
  state: State;
  epoch: number;
  epochs: number;
  // why it failed/diverged/stopped; for "running" with no new record for 10 minutes,
  // a note that the worker may have stopped
  reason: string | null;
}

export interface Provenance {
  parent: string | null;
  origin: Origin;
  changes: string[];
}

/** Body of every 4xx/5xx response. */
export interface ErrorBody {
  error: string;
  /** Issue 11: enqueue's 409 (an item is an existing model once no-ops are removed) names that model (its run or request id). */
  duplicate_of?: DuplicateRef | null;
  /** With `duplicate_of`: the index of the refused item in `items`. */
  item?: number;
}

/**
 * The existing model a duplicate duplicates (issue 11): its model id, or an object with
 * the model's `id` and/or `run`. Read tolerantly by lib/duplicate.ts.
 */
export type DuplicateRef = string | { id?: string | null; run?: string | null };

// GET experiments ---------------------------------------------------------
export interface Experiment {
  id: string; // fingerprint id
  dataset: string;
  class_names: string[];
  n_models: number;
  input_shape: Shape; // [C, H, W] every spec of this experiment uses
  num_classes: number;
  fingerprint: Record<string, unknown>;
}

export interface ExperimentsResponse {
  experiments: Experiment[];
  unreadable: { run: string; reason: string }[];
}

// GET models?experiment=ID -------------------------------------------------
export interface ModelSummary {
  id: string;
  run: string;
  parent: string | null;
  origin: Origin;
  changes: string[];
  status: Status;
  params: number;
  depth: number;
  spec_hash: string;
  train_accuracy: number | null;
  val_accuracy: number | null;
  val_loss: number | null;
  per_class_accuracy: number[] | null;
  glyph: GlyphLayer[]; // one per spec layer, then one for the implicit classifier
  created: string; // ISO time the request was made
  wall_time: number | null; // seconds since epoch of the newest record
  /**
   * Epochs the model trained (issue 11): its status's epoch, or the number of epochs with a
   * validation score when that is larger. Absent from servers before issue 11.
   */
  epochs_trained?: number;
  /**
   * What the run's weights started from (issue 10): the parent's trained weights for
   * `layers` of the `of` layers with parameters, or null (trained from scratch).
   * Absent from servers before weight inheritance.
   */
  init?: InitRecord | null;
}

/** Where a child's weights start: its parent's trained weights, or a fresh initialisation. */
export type InitMode = "parent" | "scratch";

/** The weights a run inherited: `mapping` pairs [child layer index, parent layer index] of the spec layers. */
export interface InitRecord {
  from: string; // the parent run
  layers: number; // layers that started from the parent's weights
  of: number; // layers with parameters
  mapping: [number, number][]; // spec layers only
  classifier?: boolean; // the implicit classifier was copied too (counted in `layers`)
  exact?: boolean; // the child started with its parent's function
  refitted?: { layer: number | "classifier"; from: number | "classifier"; error: [number, number] }[]; // least squares to the parent's outputs
}

/** The training config's weight initialisation (ModelDetail.training.init). */
export interface TrainingInit {
  init?: InitMode;
}

export interface ModelsResponse {
  experiment: string;
  class_names: string[];
  /** Sent back as `since` to get only what changed (absent from servers before issue 13). */
  version?: string;
  /** Present when the body is a delta since this version: `models` are the changed summaries. */
  since?: string | null;
  /** Runs no longer listed since `since` (deltas only). */
  removed?: string[];
  models: ModelSummary[];
}

// GET projection?experiment=ID&kind=... -------------------------------------
/** `structural_normalised`: MDS of the OTMANN distance divided by the models' total mass (d/S). */
export type ProjectionKind = "structural" | "structural_normalised" | "posthoc" | "size";

export interface ProjectionPoint {
  id: string;
  x: number;
  y: number;
}

export interface ProjectionResponse {
  experiment: string;
  kind: string;
  version: number;
  computing: boolean;
  points: ProjectionPoint[];
  stress: number | null; // MDS stress of this layout (null for "size")
  axes: { x: string; y: string }; // axis labels ("" for MDS)
  error: string | null; // why the last background layout failed, else null
}

// GET model?run=RUN ----------------------------------------------------------
export interface LayerInfo {
  index: number;
  type: string;
  input_shape: Shape;
  output_shape: Shape;
  params: number;
  /** The layers it reads, resolved ([index - 1] for a chain layer; -1 = the network input). */
  inputs: number[];
}

export interface CurvePoint {
  step: number;
  train_loss: number | null;
  train_accuracy: number | null;
  val_loss: number | null;
  val_accuracy: number | null;
}

export interface ChainEntry {
  id: string;
  origin: Origin;
  changes: string[];
  val_accuracy: number | null;
}

export interface ModelDetail extends ModelSummary {
  spec: Spec;
  layers: LayerInfo[];
  classifier_params: number;
  curves: CurvePoint[];
  confusion: number[][] | null; // confusion[true][predicted]
  provenance_chain: ChainEntry[]; // this model first, then parent, grandparent...
  training: Record<string, unknown>;
  dataset: Record<string, unknown>;
  test: Record<string, unknown> | null;
}

// GET compare?runs=a,b,c ----------------------------------------------------
export interface CompareResponse {
  models: ModelDetail[]; // in the order asked
  structural: number[][]; // OTMANN, unnormalised
  structural_normalised: number[][];
  prediction: (number | null)[][]; // Hamming fraction; null when not comparable
}

// GET export?run=RUN&format=... ---------------------------------------------
export type ExportFormat = "json" | "pytorch" | "state_dict";

// GET schema ------------------------------------------------------------------
/**
 * One field of a layer type. "bool": true/false (conv2d/dense `bias`); "padding": one of
 * `choices` ("valid", "same") or a whole number >= `min` (conv2d `padding`, schema 2).
 */
export interface SchemaField {
  name: string;
  kind: "int" | "float" | "choice" | "bool" | "padding";
  min: number | null;
  max: number | null;
  max_inclusive: boolean;
  choices: string[] | null;
  required: boolean;
  default: number | string | boolean | null; // "pool_size": a pool's stride defaults to its pool size
  schema: 1 | 2; // the spec schema that introduced the field
}

export interface SchemaResponse {
  schema: 2; // the newest spec schema the server reads
  layer_types: string[];
  fields: { [type: string]: SchemaField[] };
  /** The layer types that merge several inputs: ["add", "concat"]. */
  merge_types: string[];
  /** Every layer may carry `inputs`. */
  inputs: true;
  max_params: number | null; // the server's cap
  /** What one training request may take (remap_tb/run_limits.py); max_memory in bytes. */
  limits?: { max_params: number | null; max_memory: number | null; max_epochs: number | null;
             max_run_seconds: number | null };
}

// POST validate ---------------------------------------------------------------
export interface ValidateRequest {
  spec: Spec;
  max_params?: number;
  /** The training config of the memory estimate (default batch_size 64, optimizer adam). */
  training?: { batch_size?: number; optimizer?: string };
}

/** The training memory estimate of a valid spec (remap_tb/spec/memory.py), in bytes. */
export interface MemoryEstimate {
  batch_size: number;
  optimizer: string;
  params: number;
  layers: { index: number; type: string; activation_bytes: number; saved_bytes: number;
            param_bytes: number; total_bytes: number }[];
  classifier_bytes: number;
  param_bytes: number;
  input_bytes: number;
  saved_bytes: number;
  gradient_bytes: number;
  total_bytes: number;
}

export interface ValidationError {
  index: number | null;
  type: string | null;
  field: string | null;
  message: string;
  text: string;
}

export interface ValidatedLayer {
  index: number;
  type: string;
  input_shape: Shape | null;
  output_shape: Shape | null;
  params: number | null;
  /** The layers it reads, resolved: [index - 1] when absent; [] when the layer's inputs are invalid. */
  inputs: number[];
}

/** `max_params` is the cap applied: the smaller of the body's max_params and the server's --remap_max_params. */
export interface ValidateResponse {
  valid: boolean;
  errors: ValidationError[];
  input_shape: Shape | null;
  layers: ValidatedLayer[];
  classifier_params: number | null;
  total_params: number | null;
  depth: number;
  merge_count: number; // add and concat layers
  longest_path: number; // layers on the longest path from the input to the output
  max_params: number | null;
  /** --remap_max_memory in bytes; a spec over it gets an error with field "memory". */
  max_memory?: number | null;
  memory?: MemoryEstimate | null;
  /** Issue 11: the existing model this spec duplicates, when the server says so. */
  duplicate_of?: DuplicateRef | null;
}

// POST generate ---------------------------------------------------------------
export type GenerateKind = "ablation" | "variation";
/** Variation change types; "add_skip" and "remove_skip" (schema 2) are off unless asked for. */
export type ChangeType = "replace" | "reparameterise" | "remove" | "insert" | "add_skip" | "remove_skip";

export interface GenerateOptions {
  layers?: number[];
  count?: number;
  max_changes?: number;
  change_types?: ChangeType[];
  seed?: number;
  blocks?: boolean; // ablation: remove whole residual blocks
  /** Order the candidates by predicted accuracy or by expected improvement (best first). */
  sort?: CandidateSort;
  /** 1..20: generate `count` (up to 100) and return only the k with the highest expected improvement. */
  suggest?: number;
}

export type CandidateSort = "predicted" | "ei";

export interface Constraints {
  min_params?: number;
  max_params?: number;
  allowed_types?: string[];
  max_depth?: number;
}

export interface GenerateRequest {
  parents: string[];
  kind: GenerateKind;
  options?: GenerateOptions;
  constraints?: Constraints;
}

export interface Candidate {
  key: string; // stable id of this candidate (spec hash)
  parent: string;
  spec: Spec;
  params: number | null;
  changes: string[];
  valid: boolean;
  reason: string | null;
  glyph: GlyphLayer[];
  /** The surrogate's prediction (null until it is ready, or for a candidate it cannot score). */
  predicted?: Prediction | null;
  /** Picked by "suggest" (options.suggest): one of the k with the highest expected improvement. */
  suggested?: boolean;
  /** Issue 11: the existing model this candidate duplicates (then `valid` is false). */
  duplicate_of?: DuplicateRef | null;
}

/** A Gaussian-process prediction of a candidate's validation accuracy (fractions). */
export interface Prediction {
  accuracy: number; // mean
  std: number;
  ei: number; // expected improvement over the best finished model within the budget
}

/** The surrogate behind the predictions: ready from 8 finished models of the experiment on. */
export interface SurrogateInfo {
  n_models: number;
  ready: boolean;
  reason: string | null; // why it is not ready
  best: number | null; // the best finished model's accuracy within the budget
}

export interface GenerateResponse {
  candidates: Candidate[];
  made: number;
  wanted: number;
  summary: string;
  surrogate?: SurrogateInfo;
  /** Issue 11: variation draws left out because they were an existing model (or a queued request), per model. */
  duplicates?: { duplicate_of: string; count: number }[];
}

// POST enqueue ------------------------------------------------------------------
export interface EnqueueItem {
  spec: Spec;
  parent?: string | null;
  origin: Origin;
  changes?: string[];
  /** Default: "parent" when the parent finished with weights, else "scratch". */
  init?: InitMode;
  /** Picked by generate's "suggest" (recorded in provenance). */
  suggested?: boolean;
}

export interface EnqueueRequest {
  items: EnqueueItem[];
  epochs?: number;
  experiment?: string;
  client_key?: string;
}

export interface EnqueueResponse {
  request_ids: string[]; // each is also the model id and run name of the model it trains
  /** Issue 11: items queued although their spec is an existing model's (or a queued request's). */
  duplicates?: { item: number; duplicate_of: string | null }[];
}

// GET queue -----------------------------------------------------------------------
export type QueueState = "pending" | "running" | "done" | "failed" | "cancelled";

/** A request's `id` is also the model id and the run name of the model it trains. */
export interface QueueRequest {
  id: string;
  state: QueueState;
  origin: Origin;
  parent: string | null;
  changes: string[];
  epoch: number;
  epochs: number;
  attempts: number;
  priority: number;
  error: string | null;
  params: number | null;
  enqueued: string;
  worker: string | null;
}

export interface Worker {
  id: string;
  host: string;
  pid: number;
  last_seen: number;
  alive: boolean;
}

export interface QueueResponse {
  requests: QueueRequest[];
  workers: Worker[];
  worker_alive: boolean;
}

// POST cancel / reorder ---------------------------------------------------------------
export interface CancelResponse {
  id: string;
  state: string;
}

export interface ReorderResponse {
  id: string;
  priority: number;
}
