// Drives the facerecon viewer in headless Debian Chromium (puppeteer-core, SwiftShader WebGL):
// uploads PHOTO at BASE_URL/, waits for the face (window.viewerReport), moves the jawOpen slider,
// toggles the wireframe, counts lit canvas pixels, saves SCREENSHOT and prints
// {report, litPixels, jawChangedPixels, wireframeChangedPixels, failedRequests, console}.
// Usage: node viewer_chromium.mjs BASE_URL PHOTO SCREENSHOT
import puppeteer from "puppeteer-core";

const [base, photo, screenshot] = process.argv.slice(2);
const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-dev-shm-usage", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
         "--ignore-gpu-blocklist"],
});
const failed = [];
const consoleLines = [];
const canvasPixels = (page) => page.evaluate(() => {
  const c = document.getElementById("view");
  const probe = document.createElement("canvas");
  probe.width = c.width; probe.height = c.height;
  const ctx = probe.getContext("2d");
  ctx.drawImage(c, 0, 0);
  return Array.from(ctx.getImageData(0, 0, c.width, c.height).data);
});
const lit = (px) => { let n = 0; for (let i = 0; i < px.length; i += 4) if (Math.abs(px[i] - 0x30) + Math.abs(px[i + 1] - 0x34) + Math.abs(px[i + 2] - 0x40) > 30) n++; return n; };
const changed = (a, b) => { let n = 0; for (let i = 0; i < a.length; i += 4) if (Math.abs(a[i] - b[i]) + Math.abs(a[i + 1] - b[i + 1]) + Math.abs(a[i + 2] - b[i + 2]) > 24) n++; return n; };
try {
  const page = await browser.newPage();
  await page.setViewport({ width: 1400, height: 860 });
  page.on("requestfailed", (r) => failed.push(`${r.url()} ${r.failure()?.errorText}`));
  page.on("response", (r) => { if (r.status() >= 400) failed.push(`${r.url()} HTTP ${r.status()}`); });
  page.on("console", (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => consoleLines.push(`pageerror: ${e.message}`));
  await page.goto(`${base}/`, { waitUntil: "load", timeout: 30000 });
  const input = await page.$("#photos");
  await input.uploadFile(photo);
  await page.select("#mode", "fast");
  await page.click("#go");
  await page.waitForFunction("window.viewerReport !== undefined || !document.getElementById('error').hidden",
                             { timeout: 240000, polling: 500 });
  const error = await page.evaluate(() => document.getElementById("error").hidden ? null : document.getElementById("error").textContent);
  const report = await page.evaluate("window.viewerReport || null");
  const out = { report, error, failedRequests: failed, console: consoleLines };
  if (report) {
    await page.waitForFunction(() => document.getElementById("overlay").complete, { timeout: 30000 });
    const before = await canvasPixels(page);
    out.litPixels = lit(before);
    await page.$eval('#sliders input[name="jawOpen"]', (el) => { el.value = "1"; el.dispatchEvent(new Event("input")); });
    const jaw = await canvasPixels(page);
    out.jawChangedPixels = changed(before, jaw);
    await page.click("#wireframe");
    const wire = await canvasPixels(page);
    out.wireframeChangedPixels = changed(jaw, wire);
    await page.click("#wireframe");
    await page.$eval('#sliders input[name="jawOpen"]', (el) => { el.value = "0.35"; el.dispatchEvent(new Event("input")); });
    out.stats = await page.$eval("#stats", (el) => el.textContent);
  }
  await page.screenshot({ path: screenshot });
  process.stdout.write(JSON.stringify(out) + "\n");
} finally {
  await browser.close();
}
