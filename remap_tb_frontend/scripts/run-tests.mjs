// Bundle every test/*.test.ts with esbuild into a temporary folder, then run
// them with Node's built-in test runner (`node --test`). Exits with its status.
import { build } from "esbuild";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const testDir = join(root, "test");
const entries = readdirSync(testDir).filter((f) => f.endsWith(".test.ts")).map((f) => join(testDir, f));
if (entries.length === 0) {
  console.error("no test/*.test.ts files");
  process.exit(1);
}
const out = mkdtempSync(join(tmpdir(), "remap-tests-"));
let status = 1;
try {
  await build({
    entryPoints: entries,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    outdir: out,
    outExtension: { ".js": ".mjs" },
    sourcemap: "inline",
    logLevel: "warning",
  });
  const files = readdirSync(out).filter((f) => f.endsWith(".test.mjs")).map((f) => join(out, f));
  const res = spawnSync(process.execPath, ["--enable-source-maps", "--test", ...files], { stdio: "inherit" });
  status = res.status ?? 1;
} finally {
  rmSync(out, { recursive: true, force: true });
}
process.exit(status);
