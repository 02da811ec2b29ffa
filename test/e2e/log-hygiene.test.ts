/**
 * Logs never contain credentials: failing and succeeding requests that carry passwords, service-account
 * tokens, bearer tokens and refresh tokens are made against the running Worker, then everything it and
 * wrangler printed is searched for those secrets.
 */
import { readFileSync } from "node:fs";
import { describe, expect, inject, it } from "vitest";
import { adminOk, httpsRequest, registryUrl } from "./support";

const basic = (user: string, secret: string) => `Basic ${Buffer.from(`${user}:${secret}`).toString("base64")}`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("log hygiene", () => {
  it("no password, token or Authorization header appears in the logs", async () => {
    await adminOk("POST", "/namespaces", { name: "logs" });
    const account = await adminOk("POST", "/service-accounts", { namespace: "logs", name: "robot", grants: [{ namespace: "logs", role: "write" }] });
    const userPassword = "hygiene-user-password-7f3a";
    await adminOk("POST", "/users", { username: "hygiene-user", password: userPassword });
    const wrongSecret = "wrong-secret-value-9c1e";
    const url = registryUrl();

    // Successes: a token, a refresh token, a pull with the bearer token.
    const ok = JSON.parse((await httpsRequest(`${url}/token?service=edge-registry&scope=repository:logs/app:pull`, { headers: { Authorization: basic(account.username, account.token) } })).body.toString());
    const offline = JSON.parse((await httpsRequest(`${url}/token?service=edge-registry&offline_token=true`, { headers: { Authorization: basic("hygiene-user", userPassword) } })).body.toString());
    await httpsRequest(`${url}/v2/logs/app/tags/list`, { headers: { Authorization: `Bearer ${ok.token}` } });
    // Failures of every kind, each carrying a secret.
    const failures = [
      httpsRequest(`${url}/token?service=edge-registry`, { headers: { Authorization: basic(account.username, wrongSecret) } }),
      httpsRequest(`${url}/token?service=edge-registry`, { headers: { Authorization: basic("hygiene-user", wrongSecret) } }),
      httpsRequest(`${url}/admin/v1/namespaces`, { headers: { Authorization: basic("admin", wrongSecret) } }),
      httpsRequest(`${url}/v2/logs/app/manifests/v1`, { headers: { Authorization: `Bearer ${ok.token}x` } }),
      httpsRequest(`${url}/v2/`, { headers: { Authorization: `Bearer ${wrongSecret}` } }),
    ];
    for (const response of await Promise.all(failures)) expect(response.status).toBeGreaterThanOrEqual(400);
    // A secret in a query string (an anonymous token request, answered 200) is not logged either.
    await httpsRequest(`${url}/token?service=edge-registry&scope=repository:logs/app:pull&password=${wrongSecret}`, {});
    await sleep(500);

    const log = readFileSync(inject("serverLog"), "utf8");
    expect(log).toContain("/token");
    for (const secret of [account.token, userPassword, wrongSecret, ok.token, offline.refresh_token, Buffer.from(`${account.username}:${account.token}`).toString("base64")]) {
      expect(typeof secret).toBe("string");
      expect(log.includes(secret), `the log contains a secret (${secret.slice(0, 6)}…)`).toBe(false);
    }
    expect(log).not.toMatch(/authorization:\s*(basic|bearer)/i);
  });
});
