/** podman and skopeo login against the running Worker with both kinds of credentials. */
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { TLS, adminOk, adminPassword, registryHost, run, tempDir } from "./support";

let serviceAccount: { username: string; secret: string };
const webUser = { username: "e2e-dana", secret: "a long web password 42" };

beforeAll(async () => {
  await adminOk("POST", "/namespaces", { name: "logins" });
  const created = await adminOk("POST", "/service-accounts", { namespace: "logins", name: "ci-puller", grants: [{ namespace: "logins", role: "read" }] });
  serviceAccount = { username: created.username, secret: created.token };
  await adminOk("POST", "/users", { username: webUser.username, password: webUser.secret });
});

describe.each([
  ["podman", (authfile: string) => ["login", TLS, "--authfile", authfile]],
  ["skopeo", (authfile: string) => ["login", TLS, "--authfile", authfile]],
] as const)("%s login", (client, baseArgs) => {
  const login = (account: { username: string; secret: string }) => {
    const authfile = join(tempDir(`${client}-auth`), "auth.json");
    // The secret goes through stdin, as an operator would type it.
    return run(client, [...baseArgs(authfile), "-u", account.username, "--password-stdin", registryHost()], { input: account.secret });
  };

  it("succeeds with a service account (the production credential)", () => {
    const result = login(serviceAccount);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain("Login Succeeded");
  });

  it("succeeds with a web user", () => {
    const result = login(webUser);
    expect(result.code, result.stderr).toBe(0);
  });

  it("succeeds with the bootstrap admin", () => {
    expect(login({ username: "admin", secret: adminPassword() }).code).toBe(0);
  });

  it("fails with a wrong service-account token or password", () => {
    for (const account of [{ ...serviceAccount, secret: `${serviceAccount.secret}x` }, { ...webUser, secret: "wrong password" }]) {
      const result = login(account);
      expect(result.code).not.toBe(0);
      expect(result.stderr).toMatch(/invalid username\/password|unauthorized/i);
    }
  });
});
