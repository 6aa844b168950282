// Opens BASE_URL/page.html in headless Debian Chromium (puppeteer-core, SwiftShader WebGL), waits
// for window.report, saves a screenshot to SCREENSHOT, and prints {report, failedRequests, console}.
// Usage: node render_three.mjs BASE_URL SCREENSHOT [QUERY]   (QUERY e.g. "yaw=90")
import puppeteer from "puppeteer-core";

const [base, screenshot, query] = process.argv.slice(2);
const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-dev-shm-usage", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
         "--ignore-gpu-blocklist"],
});
const failed = [];
const consoleLines = [];
try {
  const page = await browser.newPage();
  await page.setViewport({ width: 640, height: 320 });
  page.on("requestfailed", (r) => failed.push(`${r.url()} ${r.failure()?.errorText}`));
  page.on("response", (r) => { if (r.status() >= 400) failed.push(`${r.url()} HTTP ${r.status()}`); });
  page.on("console", (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => consoleLines.push(`pageerror: ${e.message}`));
  await page.goto(`${base}/page.html${query ? `?${query}` : ""}`, { waitUntil: "load", timeout: 30000 });
  await page.waitForFunction("window.report !== undefined", { timeout: 40000 });
  const report = await page.evaluate("window.report");
  await page.screenshot({ path: screenshot });
  process.stdout.write(JSON.stringify({ report, failedRequests: failed, console: consoleLines }) + "\n");
} finally {
  await browser.close();
}
