// Opens each service's Swagger UI in headless Chromium, checks every operation is listed,
// authorises with a real token, runs "Try it out" on room creation and expects 201.
// Env: AUTH_URL, ROOMS_URL, TOKEN, SCREENSHOT_DIR (git-ignored), CHROMIUM (default /usr/bin/chromium).
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";

const { AUTH_URL, ROOMS_URL, TOKEN } = process.env;
const shots = process.env.SCREENSHOT_DIR || "screenshots";
mkdirSync(shots, { recursive: true });

function expectAll(found, wanted, where) {
  const missing = wanted.filter((w) => !found.includes(w));
  if (missing.length) throw new Error(`${where}: missing operations ${missing.join(", ")}; found ${found.join(", ")}`);
}

async function operations(page) {
  await page.waitForSelector(".opblock", { timeout: 30000 });
  return page.$$eval(".opblock", (blocks) =>
    blocks.map((b) => {
      const method = b.querySelector(".opblock-summary-method")?.textContent.trim();
      const path = b.querySelector(".opblock-summary-path")?.getAttribute("data-path")
        || b.querySelector(".opblock-summary-path")?.textContent.trim();
      return `${method} ${path}`.replace(/\u200b/g, "");
    }));
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 2000 } });

  await page.goto(`${AUTH_URL}/docs`);
  const authOps = await operations(page);
  expectAll(authOps, ["POST /oauth/token", "POST /external-api/v1.0/application/token", "POST /oauth/introspect",
    "POST /oauth/revoke", "GET /oauth/revocations", "GET /.well-known/jwks.json",
    "GET /.well-known/oauth-authorization-server", "GET /healthz", "GET /readyz"], "auth-server /docs");
  await page.screenshot({ path: `${shots}/auth-server-docs.png` });

  await page.goto(`${ROOMS_URL}/docs`);
  const roomOps = await operations(page);
  expectAll(roomOps, ["GET /external-api/v1.0/rooms", "POST /external-api/v1.0/rooms",
    "GET /external-api/v1.0/rooms/{id}", "PATCH /external-api/v1.0/rooms/{id}",
    "DELETE /external-api/v1.0/rooms/{id}"], "rooms-api /docs");

  // Authorize with the bearer token.
  await page.click("button.authorize");
  await page.fill(".modal-ux input", TOKEN);
  await page.click(".modal-ux .auth-btn-wrapper button.authorize");
  await page.click(".modal-ux button.btn-done");

  // Try it out: POST /rooms.
  const op = page.locator(".opblock-post").filter({ hasText: "/external-api/v1.0/rooms" }).first();
  await op.locator(".opblock-summary").click();
  await op.locator("button.try-out__btn").click();
  await op.locator("button.execute").click();
  const status = op.locator(".live-responses-table tbody .response-col_status").first();
  await status.waitFor({ timeout: 30000 });
  const code = (await status.textContent()).trim();
  await page.screenshot({ path: `${shots}/rooms-api-try-it-out.png`, fullPage: false });
  if (!code.startsWith("201")) throw new Error(`Try it out on POST /rooms answered ${code}`);
  console.log(`swagger: ${authOps.length} auth-server and ${roomOps.length} rooms-api operations listed; Try it out POST /rooms -> ${code}`);
} finally {
  await browser.close();
}
