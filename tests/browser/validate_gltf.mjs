// The Khronos glTF validator as a line server: one GLB path per stdin line in, one JSON report
// summary per stdout line out ({path, errors, warnings, infos, messages}). Started once per test
// session by tests/browser/ecosystem.py, so each check costs milliseconds, not a node start-up.
import { readFile } from "node:fs/promises";
import { createInterface } from "node:readline";
import validator from "gltf-validator";

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  const path = line.trim();
  if (!path) continue;
  let out;
  try {
    const report = await validator.validateBytes(new Uint8Array(await readFile(path)), { maxIssues: 50 });
    const issues = report.issues;
    out = {
      path, errors: issues.numErrors, warnings: issues.numWarnings, infos: issues.numInfos,
      messages: issues.messages.filter((m) => m.severity <= 1)
        .map((m) => `${m.severity === 0 ? "error" : "warning"} ${m.code} at ${m.pointer ?? ""}: ${m.message}`),
    };
  } catch (err) {
    out = { path, errors: 1, warnings: 0, infos: 0, messages: [`validator failed: ${err}`] };
  }
  process.stdout.write(JSON.stringify(out) + "\n");
}
