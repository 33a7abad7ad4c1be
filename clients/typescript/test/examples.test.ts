// The Mastra example in examples/ runs as a user runs it (node, importing "@ctxstore/mastra"
// from this package's build) against the test database, in a tenant of its own, and prints what
// examples/expected/<name>.out says (uuids and timestamps normalised, as for the Python examples).
import { execFile } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { randomUUID } from "node:crypto";
import { promisify } from "node:util";

import { describe, expect, it } from "vitest";

import { server } from "./db.js";

const run = promisify(execFile);
const pkg = resolve(import.meta.dirname, "..");
const examples = resolve(pkg, "../../examples");

function normalise(text: string): string {
  return text
    .replace(/\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/gi, "<uuid>")
    .replace(/\b\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d(?::?\d\d)?)?/g, "<timestamp>")
    .trim().split("\n").map((l) => l.trimEnd()).join("\n") + "\n";
}

describe("examples/*.mjs", () => {
  const scripts = readdirSync(examples).filter((f) => f.endsWith(".mjs"));
  it("exist", () => expect(scripts.length).toBeGreaterThan(0));
  it.each(scripts)("%s prints its expected output", async (script) => {
    // a directory where "@ctxstore/mastra" resolves to this package, the rest to its dependencies
    const dir = mkdtempSync(join(tmpdir(), "ctxstore-example-"));
    try {
      mkdirSync(join(dir, "node_modules", "@ctxstore"), { recursive: true });
      for (const entry of readdirSync(join(pkg, "node_modules"))) {
        if (entry === "@ctxstore" || entry.startsWith(".")) continue;
        symlinkSync(join(pkg, "node_modules", entry), join(dir, "node_modules", entry));
      }
      symlinkSync(pkg, join(dir, "node_modules", "@ctxstore", "mastra"));
      cpSync(join(examples, script), join(dir, script));
      expect(existsSync(join(pkg, "dist", "index.js"))).toBe(true);
      const dsn = `postgres://${process.env.CTXSTORE_PG_APP_USER}@localhost:${server.port}/${server.database}`
        + `?host=${encodeURIComponent(server.host)}`;
      const { stdout } = await run(process.execPath, [join(dir, script)], {
        env: { ...process.env, CTXSTORE_DSN: dsn, CTXSTORE_TENANT: `examples-${randomUUID()}` },
        timeout: 120_000,
      });
      const expected = readFileSync(join(examples, "expected", script.replace(/\.mjs$/, ".out")), "utf8");
      expect(normalise(stdout)).toBe(expected);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 180_000);
});
