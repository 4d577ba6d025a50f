import { test } from "node:test";
import assert from "node:assert/strict";
import { defaultText, fieldLabel, fieldStep, fitsField, knowsType, newLayer, parseFieldInput, placeholderText, starterValue } from "../src/lib/schema";
import type { SchemaField, SchemaResponse } from "../src/types";

// Shaped like GET schema answers (remap_tb/http_api.md), with a type the frontend has never seen.
const f = (over: Partial<SchemaField> & { name: string }): SchemaField => ({
  kind: "int",
  min: 1,
  max: 64,
  max_inclusive: true,
  choices: null,
  required: true,
  default: null,
  schema: 1,
  ...over,
});

const schema: SchemaResponse = {
  schema: 2,
  merge_types: ["add", "concat"],
  inputs: true,
  layer_types: ["conv2d", "maxpool2d", "dense", "activation", "dropout", "batchnorm", "newtype"],
  fields: {
    conv2d: [
      f({ name: "filters", max: 4096 }),
      f({ name: "kernel_size" }),
      f({ name: "stride", required: false, default: 1 }),
      f({ name: "padding", kind: "choice", min: null, max: null, choices: ["valid", "same"], required: false, default: "valid" }),
    ],
    maxpool2d: [f({ name: "pool_size" }), f({ name: "stride", required: false, default: "pool_size" })],
    dense: [f({ name: "units", max: 65536 })],
    activation: [f({ name: "fn", kind: "choice", min: null, max: null, choices: ["relu", "tanh"] })],
    dropout: [f({ name: "rate", kind: "float", min: 0, max: 1, max_inclusive: false })],
    batchnorm: [],
    newtype: [f({ name: "width", min: 3, max: 9 }), f({ name: "mode", kind: "choice", min: null, max: null, choices: ["a", "b"] })],
  },
  max_params: null,
};

test("a new layer sets required fields only, from the schema", () => {
  assert.deepEqual(newLayer(schema, "conv2d"), { type: "conv2d", filters: 16, kernel_size: 3 });
  assert.deepEqual(newLayer(schema, "maxpool2d"), { type: "maxpool2d", pool_size: 2 });
  assert.deepEqual(newLayer(schema, "dense"), { type: "dense", units: 64 });
  assert.deepEqual(newLayer(schema, "activation"), { type: "activation", fn: "relu" });
  assert.deepEqual(newLayer(schema, "dropout"), { type: "dropout", rate: 0.25 });
  assert.deepEqual(newLayer(schema, "batchnorm"), { type: "batchnorm" });
});

test("types the frontend has never seen still get valid starting values", () => {
  assert.deepEqual(newLayer(schema, "newtype"), { type: "newtype", width: 3, mode: "a" });
  assert.deepEqual(newLayer(schema, "unknown"), { type: "unknown" });
});

test("starter values respect the field's limits", () => {
  // a schema that forbids the usual starter falls back to its minimum
  assert.equal(starterValue(f({ name: "filters", min: 32, max: 64 })), 32);
  assert.equal(starterValue(f({ name: "rate", kind: "float", min: 0.5, max: 1, max_inclusive: false })), 0.5);
  assert.equal(starterValue(f({ name: "fn", kind: "choice", min: null, max: null, choices: ["gelu"] })), "gelu");
  assert.equal(starterValue(f({ name: "units", default: 10 })), 10);
  assert.equal(starterValue(f({ name: "stride", required: false, default: 1 })), undefined);
});

test("field limits: inclusive and exclusive maxima, integers, choices", () => {
  const rate = schema.fields.dropout[0];
  assert.ok(fitsField(rate, 0));
  assert.ok(fitsField(rate, 0.99));
  assert.ok(!fitsField(rate, 1));
  const units = schema.fields.dense[0];
  assert.ok(fitsField(units, 65536));
  assert.ok(!fitsField(units, 65537));
  assert.ok(!fitsField(units, 2.5));
  assert.ok(!fitsField(units, 0));
  const pad = schema.fields.conv2d[3];
  assert.ok(fitsField(pad, "same"));
  assert.ok(!fitsField(pad, "full"));
});

test("labels, steps and default texts", () => {
  assert.equal(defaultText(schema.fields.conv2d[2]), "default 1");
  assert.equal(defaultText(schema.fields.conv2d[3]), "default valid");
  assert.equal(defaultText(schema.fields.maxpool2d[1]), "default = pool_size");
  assert.equal(defaultText(schema.fields.dense[0]), "default");
  assert.equal(fieldStep(schema.fields.dense[0]), 1);
  assert.equal(fieldStep(schema.fields.dropout[0]), 0.05);
  assert.equal(fieldLabel("kernel_size"), "kernel");
  assert.equal(fieldLabel("filters"), "filters");
  assert.ok(knowsType(schema, "conv2d"));
  assert.ok(!knowsType(schema, "lstm"));
  assert.ok(!knowsType(null, "conv2d"));
});

test("placeholders of optional fields are short", () => {
  assert.equal(placeholderText(schema.fields.conv2d[2]), "1");
  assert.equal(placeholderText(schema.fields.maxpool2d[1]), "= pool");
  assert.equal(placeholderText(schema.fields.conv2d[0]), "");
});

test("schema 2 field kinds: bool and padding (a choice or a whole number)", () => {
  const bias = f({ name: "bias", kind: "bool", min: null, max: null, required: false, default: true, schema: 2 });
  const pad = f({ name: "padding", kind: "padding", min: 0, max: 15, choices: ["valid", "same"], required: false, default: "valid" });
  assert.ok(fitsField(bias, false) && !fitsField(bias, 1));
  assert.ok(fitsField(pad, "same") && fitsField(pad, 0) && fitsField(pad, 3));
  assert.ok(!fitsField(pad, -1) && !fitsField(pad, 1.5) && !fitsField(pad, "full") && !fitsField(pad, 16));
  assert.equal(starterValue(bias), undefined); // optional: left to the server's default
  assert.equal(starterValue({ ...pad, required: true, default: null }), "valid");
  assert.equal(parseFieldInput(pad, "same"), "same");
  assert.equal(parseFieldInput(pad, "2"), 2);
  assert.equal(parseFieldInput(pad, " "), undefined);
  assert.equal(parseFieldInput(bias, "false"), false);
  assert.equal(parseFieldInput(schema.fields.dense[0], "32"), 32);
  assert.equal(parseFieldInput(schema.fields.activation[0], "tanh"), "tanh");
  assert.equal(fieldStep(pad), 1);
  // merge layers have no fields: a new one is just its type
  const s2: SchemaResponse = { ...schema, layer_types: [...schema.layer_types, "add"], fields: { ...schema.fields, add: [] } };
  assert.deepEqual(newLayer(s2, "add"), { type: "add" });
});
