import { test } from "node:test";
import assert from "node:assert/strict";
import { ApiError, RemapClient, routeUrl } from "../src/client";

interface Call {
  url: string;
  init?: RequestInit;
}

function fakeFetch(status: number, body: string, calls: Call[]) {
  return async (url: string, init?: RequestInit) => {
    calls.push({ url, init });
    return new Response(body, { status, headers: { "Content-Type": "application/json" } });
  };
}

test("relative URLs with encoded parameters", () => {
  assert.equal(routeUrl("models", { experiment: "a b&c" }), "./models?experiment=a%20b%26c");
  assert.equal(routeUrl("queue"), "./queue");
  assert.equal(new RemapClient().exportUrl("run/1", "pytorch"), "./export?run=run%2F1&format=pytorch");
});

test("GET routes", async () => {
  const calls: Call[] = [];
  const c = new RemapClient(fakeFetch(200, '{"experiment":"e","kind":"size","points":[]}', calls));
  await c.projection("e", "size");
  await c.compare(["a", "b"]);
  assert.equal(calls[0].url, "./projection?experiment=e&kind=size");
  assert.equal(calls[0].init?.method, "GET");
  assert.equal(calls[1].url, "./compare?runs=a%2Cb");
});

test("POSTs send JSON with the custom header", async () => {
  const calls: Call[] = [];
  const c = new RemapClient(fakeFetch(200, '{"request_ids":["x"]}', calls));
  const res = await c.enqueue({ items: [], client_key: "k" });
  assert.deepEqual(res.request_ids, ["x"]);
  const init = calls[0].init!;
  const headers = init.headers as Record<string, string>;
  assert.equal(init.method, "POST");
  assert.equal(headers["Content-Type"], "application/json");
  assert.equal(headers["X-Requested-With"], "remap");
  assert.deepEqual(JSON.parse(init.body as string), { items: [], client_key: "k" });
  await c.cancel("r1");
  assert.equal(calls[1].url, "./cancel");
  assert.deepEqual(JSON.parse(calls[1].init!.body as string), { id: "r1" });
});

test("errors carry the server's message", async () => {
  const c = new RemapClient(fakeFetch(400, '{"error":"layer 4 maxpool2d: pool 5 larger than input 3x3"}', []));
  await assert.rejects(c.validate({ spec: { schema: 1, input: { shape: [1, 8, 8], num_classes: 10 }, layers: [] } }), (e: unknown) => {
    assert.ok(e instanceof ApiError);
    assert.equal(e.message, "layer 4 maxpool2d: pool 5 larger than input 3x3");
    assert.equal(e.status, 400);
    return true;
  });
});

test("non-JSON errors and network failures become readable errors", async () => {
  const c = new RemapClient(async () => new Response("<html>oops</html>", { status: 502, statusText: "Bad Gateway" }));
  await assert.rejects(c.queue(), /502 Bad Gateway: <html>oops/);
  const d = new RemapClient(async () => {
    throw new TypeError("Failed to fetch");
  });
  await assert.rejects(d.queue(), /queue: cannot reach the server \(Failed to fetch\)/);
});

test("schema and experiments routes", async () => {
  const calls: Call[] = [];
  const body = { schema: 1, layer_types: ["dense"], fields: { dense: [{ name: "units", kind: "int", min: 1, max: 65536, max_inclusive: true, choices: null, required: true, default: null }] }, max_params: null };
  const c = new RemapClient(fakeFetch(200, JSON.stringify(body), calls));
  const res = await c.schema();
  assert.equal(calls[0].url, "./schema");
  assert.equal(calls[0].init?.method, "GET");
  assert.deepEqual(res.layer_types, ["dense"]);
  assert.equal(res.fields.dense[0].max_inclusive, true);
  const ex = { experiments: [{ id: "e", dataset: "digits", class_names: ["0"], n_models: 1, input_shape: [1, 8, 8], num_classes: 10, fingerprint: {} }], unreadable: [] };
  const d = new RemapClient(fakeFetch(200, JSON.stringify(ex), calls));
  const got = await d.experiments();
  assert.deepEqual(got.experiments[0].input_shape, [1, 8, 8]);
  assert.equal(got.experiments[0].num_classes, 10);
});
