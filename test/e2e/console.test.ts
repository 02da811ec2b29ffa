/**
 * The web console in a real browser: Playwright (playwright-core) driving Debian's Chromium against the
 * running Worker. A registry administrator signs in, creates a service account, copies its `podman login`
 * line from the page and runs it as copied, pushes with it, looks at the namespace's repositories and tags,
 * rotates and disables the account and finds it all in the audit log; a namespace administrator gets the
 * API's refusal for another namespace on the page; CSRF and a forged session cookie are refused. Each page
 * is saved as a screenshot under test-artifacts/console/ (git-ignored).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeOciLayout } from "../../scripts/lib/oci-image.mjs";
import { TLS, adminOk, registryHost, registryUrl, run, runOk, tempDir } from "./support";

const CHROMIUM = "/usr/bin/chromium";
const SCREENSHOTS = join(__dirname, "..", "..", "test-artifacts", "console");
const SESSION_COOKIE = "__Host-edge-registry-session";

const ADMIN = { username: "console-admin", password: "console-admin-password-1" };
/** Administers namespace `uins` only (an admin grant on it), not `uiother`. */
const NS_ADMIN = { username: "console-nsadmin", password: "console-nsadmin-password-1" };
/** A web user with no grant at first: the namespace administrator grants it a role on `uins`. */
const READER = { username: "console-reader", password: "console-reader-password-1" };

let browser: Browser;

beforeAll(async () => {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await adminOk("POST", "/namespaces", { name: "uins" });
  await adminOk("POST", "/namespaces", { name: "uiother" });
  await adminOk("POST", "/users", { ...ADMIN, registryAdmin: true });
  await adminOk("POST", "/users", NS_ADMIN);
  await adminOk("POST", "/users", READER);
  await adminOk("PUT", `/users/${NS_ADMIN.username}/grants`, { namespace: "uins", role: "admin" });
  // `--no-sandbox`: the suite may run as root (containers, CI), where Chromium's sandbox cannot start.
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
});

afterAll(async () => {
  await browser?.close();
});

/** A fresh browser profile (its own cookies) that trusts the local self-signed certificate. */
async function newContext(): Promise<BrowserContext> {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 900 } });
  context.setDefaultTimeout(15_000);
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: registryUrl() });
  return context;
}

async function signIn(context: BrowserContext, user: { username: string; password: string }): Promise<Page> {
  const page = await context.newPage();
  await page.goto(`${registryUrl()}/console/`);
  await page.getByLabel("Username").fill(user.username);
  await page.getByLabel("Password").fill(user.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("button", { name: "Sign out" }).waitFor();
  return page;
}

async function open(page: Page, hash: string, heading: string): Promise<void> {
  await page.goto(`${registryUrl()}/console/#/${hash}`);
  await page.getByRole("heading", { level: 1, name: heading }).waitFor();
}

/**
 * Opens the namespace's repositories on the Namespaces page until `repository` is listed: the listing is the
 * registry's catalog (KV's list, cached up to 60 s per location as in production), so a repository pushed within
 * the last minute may not be in it yet; the page is reloaded as a user would.
 */
async function openRepositories(page: Page, namespace: string, repository: string): Promise<void> {
  const deadline = Date.now() + 90_000;
  for (;;) {
    await open(page, "namespaces", "Namespaces");
    await page.getByRole("cell", { name: namespace, exact: true }).waitFor();
    await page.getByRole("button", { name: `Repositories of ${namespace}` }).click();
    await page.getByRole("heading", { name: `Repositories in ${namespace}` }).waitFor();
    await page.waitForLoadState("networkidle");
    const listed = page.getByRole("cell", { name: repository, exact: true });
    if ((await listed.count()) > 0 || Date.now() > deadline) return listed.waitFor({ timeout: 1000 });
    await page.waitForTimeout(5000);
    await page.reload();
  }
}

const shot = (page: Page, name: string) => page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
const statusText = (page: Page) => page.getByTestId("status").first().textContent();

/** The session cookie the browser holds for the registry. */
async function sessionCookie(context: BrowserContext): Promise<string> {
  const cookie = (await context.cookies(registryUrl())).find((item) => item.name === SESSION_COOKIE);
  if (!cookie) throw new Error("no session cookie");
  return cookie.value;
}

describe("console as a registry administrator", () => {
  let context: BrowserContext;
  let page: Page;
  let account = "";
  const auth = () => join(tempDir("console-auth"), "auth.json");
  let authPath = "";

  beforeAll(async () => {
    context = await newContext();
  });
  afterAll(async () => {
    await context?.close();
  });

  it("shows the sign-in page with a strict Content-Security-Policy, and signs in with a session cookie", async () => {
    const first = await context.newPage();
    const response = await first.goto(`${registryUrl()}/console/`);
    const headers = response!.headers();
    expect(headers["content-security-policy"]).toContain("default-src 'self'");
    expect(headers["content-security-policy"]).toContain("frame-ancestors 'none'");
    expect(headers["content-security-policy"]).not.toContain("unsafe-inline");
    expect(headers["x-content-type-options"]).toBe("nosniff");
    expect(headers["referrer-policy"]).toBe("no-referrer");
    await first.getByLabel("Username").waitFor();
    await shot(first, "sign-in");
    // A wrong password is answered on the form.
    await first.getByLabel("Username").fill(ADMIN.username);
    await first.getByLabel("Password").fill("not-the-password-at-all");
    await first.getByRole("button", { name: "Sign in" }).click();
    await expect.poll(() => statusText(first)).toContain("401");
    await first.close();

    page = await signIn(context, ADMIN);
    const cookie = (await context.cookies(registryUrl())).find((item) => item.name === SESSION_COOKIE)!;
    expect(cookie).toMatchObject({ httpOnly: true, secure: true, sameSite: "Strict", path: "/" });
    expect(cookie.expires - Date.now() / 1000).toBeLessThanOrEqual(3600);
    // HttpOnly: the page's script cannot read it.
    expect(await page.evaluate(() => document.cookie)).not.toContain(SESSION_COOKIE);
  });

  it("creates a service account; its auth.json and its podman login line, copied from the page, work as copied", async () => {
    await open(page, "service-accounts", "Service accounts");
    await page.getByLabel("Namespace", { exact: true }).fill("uins");
    await page.getByLabel("Name", { exact: true }).fill("pusher");
    await page.getByLabel("Description").fill("pushes from the console test");
    await page.getByLabel("Access to the namespace").selectOption("write");
    const answered = page.waitForResponse((response) => response.url().endsWith("/admin/v1/service-accounts") && response.request().method() === "POST");
    await page.getByRole("button", { name: "Create" }).click();
    const api = (await (await answered).json()) as { credentials: Record<string, unknown> };
    await page.getByRole("heading", { name: /^Token for / }).waitFor();
    account = (await page.getByRole("heading", { name: /^Token for / }).textContent())!.replace("Token for ", "");
    expect(account).toMatch(/^\d+\|pusher$/);
    await shot(page, "service-account-created");

    // Each output exactly as the API returned it (src/admin/credential-outputs.ts): the page adds nothing.
    const shown = async (id: string) => (await page.locator(`pre#${id}`).textContent())!;
    expect(await shown("podman-login")).toBe(api.credentials.podmanLogin);
    expect(JSON.parse(await shown("auth-json"))).toEqual(api.credentials.authJson);
    expect(await shown("kubernetes-secret")).toBe(api.credentials.kubernetesSecret);
    expect(await shown("kubectl-command")).toBe(api.credentials.kubectlCommand);
    expect(await shown("openshift-command")).toBe(api.credentials.ocCommand);

    // The auth.json, copied through its button and the clipboard, is what the account pushes with.
    await page.getByRole("button", { name: "Copy auth.json" }).click();
    authPath = auth();
    writeFileSync(authPath, await page.evaluate(() => navigator.clipboard.readText()));
    const source = join(tempDir("console-image"), "layout");
    await writeOciLayout(source, [{ seed: 151, layerSizes: [64 * 1024] }], "v1");
    runOk("skopeo", ["copy", "--dest-tls-verify=false", "--dest-authfile", authPath, `oci:${source}:v1`, `docker://${registryHost()}/uins/app:v1`]);

    // The podman login line, copied the same way, run by a shell exactly as pasted (no flag added).
    await page.getByRole("button", { name: "Copy podman login" }).click();
    const copied = await page.evaluate(() => navigator.clipboard.readText());
    expect(copied).toBe(await shown("podman-login"));
    const loginAuth = auth();
    const login = run("sh", ["-c", copied], { env: { ...process.env, REGISTRY_AUTH_FILE: loginAuth } });
    expect(login.code, `${copied.replace(/'[A-Za-z0-9_-]{43}'/, "'<token>'")}\n${login.stderr}`).toBe(0);
    expect(login.stdout + login.stderr).toContain("Login Succeeded");
    runOk("skopeo", ["inspect", TLS, "--authfile", loginAuth, `docker://${registryHost()}/uins/app:v1`]);
  });

  it("shows the namespace's repositories and the tags with digest, size and push time", async () => {
    await openRepositories(page, "uins", "uins/app");
    await page.getByRole("button", { name: "Tags of uins/app" }).click();
    await page.getByRole("cell", { name: "v1", exact: true }).waitFor();
    expect(await page.locator("td code").first().textContent()).toMatch(/^sha256:[0-9a-f]{64}$/);
    const tagRow = page.getByRole("row").filter({ has: page.getByRole("cell", { name: "v1", exact: true }) });
    // Size from the account API's tag listing (one 64 KiB layer and its config), push time and pusher from the tag history.
    expect(await tagRow.locator("td").nth(2).textContent()).toMatch(/^64\.\d KiB$/);
    expect(await tagRow.locator("td").nth(3).textContent()).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/);
    expect(await tagRow.locator("td").nth(4).textContent()).toMatch(/\|pusher$/);
    await shot(page, "namespaces-repositories-tags");
    // Visibility: the namespace becomes public, and the page says so.
    await page.getByRole("button", { name: "Make uins public" }).click();
    await expect.poll(() => statusText(page)).toContain("uins is now public");
    await page.getByRole("button", { name: "Make uins private" }).waitFor();
  });

  it("rotates with an overlap and disables the account; the old token stops after disable", async () => {
    await open(page, "service-accounts", "Service accounts");
    await page.locator(`tr[data-account="${account}"]`).getByLabel("Overlap (minutes)").fill("5");
    await page.getByRole("button", { name: `Rotate ${account}` }).click();
    await page.getByRole("heading", { name: `Token for ${account}` }).waitFor();
    await expect.poll(() => statusText(page)).toContain(`Rotated ${account}`);
    await expect.poll(() => page.locator(`tr[data-account="${account}"]`).textContent()).toContain("previous token until");
    await shot(page, "service-account-rotated");
    // During the overlap the first token (in the auth file the copied line wrote) still works.
    expect(run("skopeo", ["inspect", TLS, "--authfile", authPath, `docker://${registryHost()}/uins/app:v1`]).code).toBe(0);

    await page.getByRole("button", { name: "Done: I have copied the token" }).click();
    await page.getByRole("button", { name: `Disable ${account}` }).click();
    await page.getByRole("button", { name: `Enable ${account}` }).waitFor();
    expect(await page.locator(`tr[data-account="${account}"]`).textContent()).toContain("disabled");
    await shot(page, "service-accounts");
    // Disabled: the token the copied line stored no longer works.
    expect(run("skopeo", ["inspect", TLS, "--authfile", authPath, `docker://${registryHost()}/uins/app:v1`]).code).not.toBe(0);
  });

  it("shows the console's changes in the audit log, filtered by action", async () => {
    await open(page, "audit", "Audit log");
    await page.getByRole("cell", { name: "service-account.create" }).first().waitFor();
    const table = (await page.locator("table").textContent())!;
    for (const action of ["service-account.create", "service-account.rotate", "service-account.update", "namespace.update"]) expect(table).toContain(action);
    expect(table).toContain(ADMIN.username);
    await page.getByLabel("Action").fill("service-account.rotate");
    await page.getByRole("button", { name: "Filter" }).click();
    await expect.poll(async () => (await page.locator("tbody tr").allTextContents()).every((row) => row.includes("service-account.rotate"))).toBe(true);
    expect(await page.locator("tbody tr").count()).toBeGreaterThan(0);
    await shot(page, "audit");
  });

  it("shows the grants page", async () => {
    await open(page, "grants", "Grants");
    await page.getByLabel("Principal").selectOption("users");
    await page.getByLabel("Name", { exact: true }).fill(NS_ADMIN.username);
    await page.getByRole("button", { name: "Show grants" }).click();
    await page.getByRole("cell", { name: "admin", exact: true }).waitFor();
    await shot(page, "grants");
  });

  it("deletes a service account after confirmation", async () => {
    await open(page, "service-accounts", "Service accounts");
    await page.getByLabel("Namespace", { exact: true }).fill("uins");
    await page.getByLabel("Name", { exact: true }).fill("short-lived");
    await page.getByRole("button", { name: "Create" }).click();
    const heading = page.getByRole("heading", { name: /^Token for \d+\|short-lived$/ });
    await heading.waitFor();
    const doomed = (await heading.textContent())!.replace("Token for ", "");
    await page.getByRole("button", { name: "Done: I have copied the token" }).click();
    // Declining the confirmation keeps it; accepting deletes it.
    page.once("dialog", (dialog) => void dialog.dismiss());
    await page.getByRole("button", { name: `Delete ${doomed}` }).click();
    await page.getByRole("button", { name: `Delete ${doomed}` }).waitFor();
    page.once("dialog", (dialog) => void dialog.accept());
    await page.getByRole("button", { name: `Delete ${doomed}` }).click();
    await expect.poll(() => statusText(page)).toContain(`Deleted ${doomed}`);
    expect(await page.locator(`tr[data-account="${doomed}"]`).count()).toBe(0);
    expect((await adminOk("GET", "/service-accounts")).serviceAccounts.some((item: { username: string }) => item.username === doomed)).toBe(false);
  });

  it("refuses a state change without the CSRF header or from a foreign origin, and a cross-site form post", async () => {
    const created = () => adminOk("GET", "/service-accounts").then((body) => body.serviceAccounts.map((item: { username: string }) => item.username).join(" "));
    // From the console's own page, but without the CSRF token.
    const noToken = await page.evaluate(async () => {
      const response = await fetch("/admin/v1/service-accounts", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ namespace: "uins", name: "csrf-a" }) });
      return { status: response.status, body: await response.text() };
    });
    expect(noToken.status).toBe(403);
    expect(noToken.body).toContain("CSRF");
    // With the session's cookie and a valid token (read from the session API), but another Origin.
    const token = await page.evaluate(async () => ((await (await fetch("/console/v1/session")).json()) as { csrfToken: string }).csrfToken);
    const foreign = await context.request.post(`${registryUrl()}/admin/v1/service-accounts`, {
      headers: { Origin: "https://evil.example", "X-CSRF-Token": token, "Content-Type": "application/json" },
      data: { namespace: "uins", name: "csrf-b" },
    });
    expect(foreign.status()).toBe(403);
    // A hostile site's auto-submitted form: the browser marks it cross-site and keeps the Strict cookie off it.
    const hostile = await context.newPage();
    await hostile.route("https://evil.example/**", (route) =>
      route.fulfill({
        contentType: "text/html",
        body: `<form id="f" method="POST" action="${registryUrl()}/admin/v1/service-accounts" enctype="text/plain"><input name='{"namespace":"uins","name":"csrf-c","x":"' value='"}'></form><script>document.getElementById("f").submit()</script>`,
      }),
    );
    const answered = hostile.waitForResponse((response) => response.url().includes("/admin/v1/service-accounts"));
    await hostile.goto("https://evil.example/");
    const response = await answered;
    expect(response.status()).toBe(403);
    await hostile.close();
    const names = await created();
    for (const name of ["csrf-a", "csrf-b", "csrf-c"]) expect(names).not.toContain(name);
  });

  it("ends the session on sign-out: the old cookie is refused by the API", async () => {
    const cookie = await sessionCookie(context);
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByLabel("Username").waitFor();
    const replay = await browser.newContext({ ignoreHTTPSErrors: true });
    await replay.addCookies([{ name: SESSION_COOKIE, value: cookie, url: registryUrl(), secure: true, httpOnly: true, sameSite: "Strict" }]);
    const answer = await replay.request.get(`${registryUrl()}/admin/v1/namespaces`);
    expect(answer.status()).toBe(401);
    await replay.close();
  });
});

describe("console as a namespace administrator", () => {
  let context: BrowserContext;
  let page: Page;
  beforeAll(async () => {
    await adminOk("POST", "/service-accounts", { namespace: "uiother", name: "secret-robot", grants: [{ namespace: "uiother", role: "read" }] });
    context = await newContext();
    // Signed in with the keyboard alone: the first Tab reaches the username, Enter submits.
    page = await context.newPage();
    await page.goto(`${registryUrl()}/console/`);
    await page.getByLabel("Username").waitFor();
    await page.keyboard.press("Tab");
    await page.keyboard.type(NS_ADMIN.username);
    await page.keyboard.press("Tab");
    await page.keyboard.type(NS_ADMIN.password);
    await page.keyboard.press("Enter");
    await page.getByRole("button", { name: "Sign out" }).waitFor();
  });
  afterAll(async () => {
    await context?.close();
  });

  it("sees only its own namespace, and gets the API's 403 on the page for another one", async () => {
    await open(page, "namespaces", "Namespaces");
    await page.getByRole("cell", { name: "uins", exact: true }).waitFor();
    expect(await page.locator("main").textContent()).not.toContain("uiother");
    // Its own namespace's repositories (the account API's pullable listing) and their tags with a size.
    await openRepositories(page, "uins", "uins/app");
    await page.getByRole("button", { name: "Tags of uins/app" }).click();
    await page.getByRole("cell", { name: "v1", exact: true }).waitFor();
    const tagRow = page.getByRole("row").filter({ has: page.getByRole("cell", { name: "v1", exact: true }) });
    expect(await tagRow.locator("td").nth(2).textContent()).toMatch(/^64\.\d KiB$/);
    expect(await tagRow.locator("td").nth(3).textContent()).toMatch(/ UTC$/);
    await shot(page, "namespaces-namespace-admin");

    await open(page, "service-accounts", "Service accounts");
    // Whatever the list shows this user, it never shows another namespace's accounts.
    await page.waitForLoadState("networkidle");
    expect(await page.locator("table").textContent()).not.toContain("secret-robot");
    await page.getByLabel("Namespace", { exact: true }).fill("uiother");
    await page.getByLabel("Name", { exact: true }).fill("intruder");
    await page.getByRole("button", { name: "Create" }).click();
    await expect.poll(() => statusText(page)).toContain("403");
    await shot(page, "service-accounts-namespace-admin-403");
    const names = (await adminOk("GET", "/service-accounts")).serviceAccounts.map((item: { username: string }) => item.username);
    expect(names.some((name: string) => name.endsWith("|intruder"))).toBe(false);
  });

  it("creates, rotates and disables a service account in its own namespace; the token is shown once with its podman login line", async () => {
    // A fresh load (the previous test left "uiother" typed in the form): the form starts on the namespace it administers.
    await page.reload();
    await open(page, "service-accounts", "Service accounts");
    expect(await page.getByLabel("Namespace", { exact: true }).inputValue()).toBe("uins");
    await page.getByLabel("Name", { exact: true }).fill("ns-deployer");
    await page.getByLabel("Access to the namespace").selectOption("read");
    const answered = page.waitForResponse((response) => response.url().endsWith("/admin/v1/service-accounts") && response.request().method() === "POST");
    await page.getByRole("button", { name: "Create" }).click();
    const created = await answered;
    expect(created.status()).toBe(201);
    const body = (await created.json()) as { username: string; credentials: { podmanLogin: string } };
    const heading = page.getByRole("heading", { name: `Token for ${body.username}` });
    await heading.waitFor();
    expect(body.username).toMatch(/^\d+\|ns-deployer$/);
    const podman = (await page.locator("pre#podman-login").textContent())!;
    expect(podman).toBe(body.credentials.podmanLogin);
    expect(podman).toContain("podman login");
    expect(podman).toContain(body.username);
    await shot(page, "service-account-created-namespace-admin");
    // It works as copied (read on uins: it pulls uins/app).
    const loginAuth = join(tempDir("console-nsadmin-auth"), "auth.json");
    const login = run("sh", ["-c", podman], { env: { ...process.env, REGISTRY_AUTH_FILE: loginAuth } });
    expect(login.code, login.stderr).toBe(0);
    runOk("skopeo", ["inspect", TLS, "--authfile", loginAuth, `docker://${registryHost()}/uins/app:v1`]);
    // Shown once: after "Done" the page no longer holds it.
    await page.getByRole("button", { name: "Done: I have copied the token" }).click();
    expect(await page.locator("pre#podman-login").count()).toBe(0);
    const row = page.locator(`tr[data-account="${body.username}"]`);
    expect(await row.textContent()).toContain("read on uins");

    await row.getByLabel("Overlap (minutes)").fill("0");
    await page.getByRole("button", { name: `Rotate ${body.username}` }).click();
    await page.getByRole("heading", { name: `Token for ${body.username}` }).waitFor();
    await expect.poll(() => statusText(page)).toContain(`Rotated ${body.username}`);
    expect(await page.locator("pre#podman-login").textContent()).not.toBe(podman);
    await page.getByRole("button", { name: "Done: I have copied the token" }).click();
    // No overlap: the first token stopped at the rotation.
    expect(run("skopeo", ["inspect", TLS, "--authfile", loginAuth, `docker://${registryHost()}/uins/app:v1`]).code).not.toBe(0);

    await page.getByRole("button", { name: `Disable ${body.username}` }).click();
    await page.getByRole("button", { name: `Enable ${body.username}` }).waitFor();
    expect(await row.textContent()).toContain("disabled");
    await shot(page, "service-accounts-namespace-admin");
    // The list it sees holds its namespace's accounts only.
    expect(await page.locator("table").textContent()).not.toContain("secret-robot");
  });

  it("grants a web user a role on its namespace, and gets the API's 403 for another namespace", async () => {
    await open(page, "grants", "Grants");
    await page.getByLabel("Principal").selectOption("users");
    await page.getByLabel("Name", { exact: true }).fill(READER.username);
    await page.getByRole("button", { name: "Show grants" }).click();
    await page.getByRole("button", { name: "Set grant" }).waitFor();
    await page.getByLabel("On", { exact: true }).selectOption("namespace");
    await page.locator("#grant-target").fill("uins");
    await page.getByLabel("Role", { exact: true }).selectOption("read");
    await page.getByRole("button", { name: "Set grant" }).click();
    await expect.poll(() => statusText(page)).toContain("Grant set");
    await page.getByRole("button", { name: "Remove read on uins" }).waitFor();
    const grants = (await adminOk("GET", `/users/${READER.username}/grants`)).grants as { target: { name: string }; role: string }[];
    expect(grants).toEqual([expect.objectContaining({ target: expect.objectContaining({ name: "uins" }), role: "read" })]);

    await page.locator("#grant-target").fill("uiother");
    await page.getByLabel("Role", { exact: true }).selectOption("admin");
    await page.getByRole("button", { name: "Set grant" }).click();
    await expect.poll(() => statusText(page)).toContain("403");
    await shot(page, "grants-namespace-admin-403");
    expect(((await adminOk("GET", `/users/${READER.username}/grants`)).grants as { target: { name: string } }[]).some((grant) => grant.target.name === "uiother")).toBe(false);
  });

  it("reads its namespace's audit log (namespace=), and the API's 403 for another namespace", async () => {
    await open(page, "audit", "Audit log");
    expect(await page.getByLabel("Namespace").inputValue()).toBe("uins");
    await page.getByRole("cell", { name: "service-account.create" }).first().waitFor();
    // The log's listing may lag its newest events (like the catalog, up to a minute): filtered again until they show.
    await expect
      .poll(
        async () => {
          await page.getByRole("button", { name: "Filter" }).click();
          await page.waitForLoadState("networkidle");
          return page.locator("table").textContent();
        },
        { timeout: 90_000, interval: 5000 },
      )
      .toContain("ns-deployer");
    expect(await page.locator("table").textContent()).not.toContain("secret-robot");
    await shot(page, "audit-namespace-admin");
    await page.getByLabel("Namespace").fill("uiother");
    await page.getByRole("button", { name: "Filter" }).click();
    await expect.poll(() => statusText(page)).toContain("403");
  });

  it("manages its own password page and lists its console session", async () => {
    await open(page, "account", "My account: console-nsadmin");
    await page.getByRole("cell", { name: "console session" }).first().waitFor();
    await shot(page, "account");
  });
});

describe("forged session cookies", () => {
  it("are refused by the API and the page asks to sign in", async () => {
    const context = await newContext();
    const real = await signIn(context, ADMIN);
    const cookie = await sessionCookie(context);
    await real.close();
    const [id] = cookie.split(".");
    const forged = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await forged.newPage();
    // The real session's id with a made-up secret, and a made-up id.
    for (const value of [`${id}.${"A".repeat(43)}`, `${"B".repeat(16)}.${"C".repeat(43)}`, "garbage"]) {
      await forged.clearCookies();
      await forged.addCookies([{ name: SESSION_COOKIE, value, url: registryUrl(), secure: true, httpOnly: true, sameSite: "Strict" }]);
      expect((await forged.request.get(`${registryUrl()}/admin/v1/namespaces`)).status()).toBe(401);
      await page.goto(`${registryUrl()}/console/#/service-accounts`);
      await page.getByLabel("Username").waitFor();
      expect(await page.getByRole("button", { name: "Sign out" }).count()).toBe(0);
    }
    await forged.close();
    await context.close();
  });
});
