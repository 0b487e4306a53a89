// Opens each service's Swagger UI in headless Chromium, checks every operation is listed,
// authorises with a real token, runs "Try it out" on room creation and expects 201.
// Then the admin API's: every operation listed, authorised with ADMIN_KEY, "Try it out" on the
// application list (200).
// The auth-server's: authorised with a client's Basic credentials (CLIENT_ID, CLIENT_SECRET: an
// application holding tokens:revocations), "Try it out" on the revocation feed (200).
// Env: AUTH_URL, ROOMS_URL, TOKEN, ADMIN_URL, ADMIN_KEY, CLIENT_ID, CLIENT_SECRET, SCREENSHOT_DIR (git-ignored), CHROMIUM (default /usr/bin/chromium).
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";

const { AUTH_URL, ROOMS_URL, TOKEN, ADMIN_URL, ADMIN_KEY, CLIENT_ID, CLIENT_SECRET } = process.env;
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

// "Authorize": `fill` fills the modal's fields, then the modal is confirmed and closed.
async function authorize(page, fill) {
  await page.click("button.authorize");
  await fill();
  await page.click(".modal-ux .auth-btn-wrapper button.authorize");
  await page.click(".modal-ux button.btn-done");
}

// "Try it out" on the `method` operation at `path`; its answered status, after a screenshot.
async function tryItOut(page, method, path, shot) {
  const op = page.locator(`.opblock-${method}`).filter({ hasText: path }).first();
  await op.locator(".opblock-summary").click();
  await op.locator("button.try-out__btn").click();
  await op.locator("button.execute").click();
  const status = op.locator(".live-responses-table tbody .response-col_status").first();
  await status.waitFor({ timeout: 30000 });
  const code = (await status.textContent()).trim();
  await page.screenshot({ path: `${shots}/${shot}.png`, fullPage: false });
  return code;
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

  // Authorize with the resource server's Basic credentials, then Try it out: the feed.
  await authorize(page, async () => {
    await page.fill(".modal-ux input[type=text]", CLIENT_ID);
    await page.fill(".modal-ux input[type=password]", CLIENT_SECRET);
  });
  const feedCode = await tryItOut(page, "get", "/oauth/revocations", "auth-server-try-it-out");
  if (!feedCode.startsWith("200")) throw new Error(`Try it out on GET /oauth/revocations answered ${feedCode}`);

  await page.goto(`${ROOMS_URL}/docs`);
  const roomOps = await operations(page);
  expectAll(roomOps, ["GET /external-api/v1.0/rooms", "POST /external-api/v1.0/rooms",
    "GET /external-api/v1.0/rooms/{id}", "PATCH /external-api/v1.0/rooms/{id}",
    "DELETE /external-api/v1.0/rooms/{id}"], "rooms-api /docs");

  // Authorize with the bearer token, then Try it out: POST /rooms.
  await authorize(page, () => page.fill(".modal-ux input", TOKEN));
  const code = await tryItOut(page, "post", "/external-api/v1.0/rooms", "rooms-api-try-it-out");
  if (!code.startsWith("201")) throw new Error(`Try it out on POST /rooms answered ${code}`);

  await page.goto(`${ADMIN_URL}/docs`);
  const adminOps = await operations(page);
  expectAll(adminOps, ["POST /admin/v1/applications", "GET /admin/v1/applications",
    "GET /admin/v1/applications/{client_id}", "PATCH /admin/v1/applications/{client_id}",
    "DELETE /admin/v1/applications/{client_id}", "POST /admin/v1/applications/{client_id}/rotate-secret",
    "POST /admin/v1/users", "GET /admin/v1/users", "GET /admin/v1/users/{id}", "PATCH /admin/v1/users/{id}",
    "DELETE /admin/v1/users/{id}", "GET /admin/v1/signing-keys", "POST /admin/v1/signing-keys/rotate",
    "POST /admin/v1/signing-keys/{kid}/retire", "GET /admin/v1/admin-keys", "DELETE /admin/v1/admin-keys/{id}",
    "GET /admin/v1/audit-events"], "admin /docs");
  await authorize(page, () => page.fill(".modal-ux input", ADMIN_KEY));
  const listCode = await tryItOut(page, "get", "/admin/v1/applications", "admin-try-it-out");
  if (!listCode.startsWith("200")) throw new Error(`Try it out on GET /admin/v1/applications answered ${listCode}`);
  console.log(`swagger: ${authOps.length} auth-server, ${roomOps.length} rooms-api and ${adminOps.length} admin operations listed; Try it out GET /oauth/revocations -> ${feedCode}, POST /rooms -> ${code}, GET /admin/v1/applications -> ${listCode}`);
} finally {
  await browser.close();
}
