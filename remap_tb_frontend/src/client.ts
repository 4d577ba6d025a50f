// The only module that talks HTTP. One typed function per route of
// remap_tb/http_api.md. URLs are relative ("./models"), so the dashboard works
// under --path_prefix and /experiment/<id>/ (the page's <base> is plugin/remap/).
//
// Errors become thrown `ApiError`s carrying the server's `error` message, so the
// views can show what the server said instead of a bare status code.

import type {
  CancelResponse,
  CompareResponse,
  DuplicateRef,
  EnqueueRequest,
  EnqueueResponse,
  ExperimentsResponse,
  ExportFormat,
  GenerateRequest,
  GenerateResponse,
  ModelDetail,
  ModelsResponse,
  ProjectionKind,
  ProjectionResponse,
  QueueResponse,
  ReorderResponse,
  SchemaResponse,
  ValidateRequest,
  ValidateResponse,
} from "./types";

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly route: string,
    /** A refused duplicate: the existing model it duplicates (the body's `duplicate_of`). */
    readonly duplicateOf: DuplicateRef | null = null,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

/** Build a relative URL with encoded query parameters. */
export function routeUrl(route: string, params: Record<string, string | number | undefined> = {}): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined) continue;
    parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`);
  }
  return `./${route}${parts.length ? "?" + parts.join("&") : ""}`;
}

export class RemapClient {
  private readonly fetchFn: FetchLike;

  constructor(fetchFn?: FetchLike) {
    this.fetchFn = fetchFn ?? ((input, init) => fetch(input, init));
  }

  experiments(): Promise<ExperimentsResponse> {
    return this.get("experiments");
  }

  /** With `since` (a `version` it answered before), only what changed since then. */
  models(experiment: string, since?: string): Promise<ModelsResponse> {
    return this.get("models", { experiment, since });
  }

  projection(experiment: string, kind: ProjectionKind): Promise<ProjectionResponse> {
    return this.get("projection", { experiment, kind });
  }

  model(run: string): Promise<ModelDetail> {
    return this.get("model", { run });
  }

  compare(runs: string[]): Promise<CompareResponse> {
    return this.get("compare", { runs: runs.join(",") });
  }

  schema(): Promise<SchemaResponse> {
    return this.get("schema");
  }

  queue(): Promise<QueueResponse> {
    return this.get("queue");
  }

  /** A link, not a fetch: export responses are file downloads. */
  exportUrl(run: string, format: ExportFormat): string {
    return routeUrl("export", { run, format });
  }

  validate(body: ValidateRequest): Promise<ValidateResponse> {
    return this.post("validate", body);
  }

  generate(body: GenerateRequest): Promise<GenerateResponse> {
    return this.post("generate", body);
  }

  enqueue(body: EnqueueRequest): Promise<EnqueueResponse> {
    return this.post("enqueue", body);
  }

  cancel(id: string): Promise<CancelResponse> {
    return this.post("cancel", { id });
  }

  reorder(id: string, priority: number): Promise<ReorderResponse> {
    return this.post("reorder", { id, priority });
  }

  private async get<T>(route: string, params: Record<string, string | number | undefined> = {}): Promise<T> {
    const url = routeUrl(route, params);
    return this.send<T>(route, url, { method: "GET", headers: { Accept: "application/json" } });
  }

  private async post<T>(route: string, body: unknown): Promise<T> {
    return this.send<T>(route, routeUrl(route), {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        "X-Requested-With": "remap",
        Accept: "application/json",
      },
      body: JSON.stringify(body),
    });
  }

  private async send<T>(route: string, url: string, init: RequestInit): Promise<T> {
    let res: Response;
    try {
      res = await this.fetchFn(url, init);
    } catch (e) {
      throw new ApiError(`${route}: cannot reach the server (${(e as Error).message})`, 0, route);
    }
    const text = await res.text();
    let parsed: unknown = undefined;
    if (text) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = undefined;
      }
    }
    if (!res.ok) {
      const msg =
        parsed && typeof parsed === "object" && typeof (parsed as { error?: unknown }).error === "string"
          ? (parsed as { error: string }).error
          : `${res.status} ${res.statusText || "error"}${text && !parsed ? ": " + text.slice(0, 200) : ""}`;
      const dup = parsed && typeof parsed === "object" ? (parsed as { duplicate_of?: unknown }).duplicate_of : undefined;
      const duplicateOf = typeof dup === "string" || (dup !== null && typeof dup === "object" && !Array.isArray(dup)) ? (dup as DuplicateRef) : null;
      throw new ApiError(msg, res.status, route, duplicateOf);
    }
    if (parsed === undefined) {
      throw new ApiError(`${route}: the server sent a response that is not JSON`, res.status, route);
    }
    return parsed as T;
  }
}
