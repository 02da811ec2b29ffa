/**
 * Quay-style service-account names (`<namespace>+<name>`, issue 15) beside the stored `<org id>|<name>`: the
 * token endpoint, the admin API's service-account routes and grants accept either and act on the same account.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { SERVICE, adminCall, basic, call, createNamespace, uniqueName } from "../helpers/registry";

let ns: string;
let account: { username: string; token: string; quayName: string };

beforeAll(async () => {
  ns = (await createNamespace()).name;
  const response = await adminCall("POST", "/service-accounts", { namespace: ns, name: uniqueName("robot"), grants: [{ namespace: ns, role: "read" }] });
  expect(response.status, await response.clone().text()).toBe(201);
  account = await response.json();
});

const path = (name: string) => `/service-accounts/${encodeURIComponent(name)}`;
const tokenStatus = async (username: string, secret: string) =>
  (await call(`/token?service=${SERVICE}&scope=repository:${ns}/app:pull`, { headers: { Authorization: basic(username, secret) } })).status;

describe("service-account names: <org id>|<name> and <namespace>+<name>", () => {
  it("the API shows both spellings", () => {
    expect(account.username).toMatch(/^\d{8}\|robot/);
    expect(account.quayName).toBe(`${ns}+${account.username.split("|")[1]}`);
  });

  it("the token endpoint accepts the Quay spelling, and issues the token to the stored username", async () => {
    const response = await call(`/token?service=${SERVICE}&scope=repository:${ns}/app:pull`, { headers: { Authorization: basic(account.quayName, account.token) } });
    expect(response.status).toBe(200);
    const { token } = (await response.json()) as { token: string };
    const claims = JSON.parse(atob(token.split(".")[1]!.replace(/-/g, "+").replace(/_/g, "/"))) as { sub: string; access: { actions: string[] }[] };
    expect(claims.sub).toBe(account.username);
    expect(claims.access[0]!.actions).toEqual(["pull"]);
    expect(await tokenStatus(account.quayName, "wrong-token")).toBe(401);
    expect(await tokenStatus(`nosuchns${Date.now()}+robot`, account.token)).toBe(401);
  });

  it("admin routes and grants accept the Quay spelling", async () => {
    const shown = (await (await adminCall("GET", path(account.quayName))).json()) as { username: string };
    expect(shown.username).toBe(account.username);
    expect((await adminCall("PUT", `${path(account.quayName)}/grants`, { repository: `${ns}/app`, role: "write" })).status).toBe(200);
    const { grants } = (await (await adminCall("GET", `${path(account.username)}/grants`)).json()) as { grants: { target: { name: string }; role: string }[] };
    expect(grants).toContainEqual({ target: { kind: "repository", name: `${ns}/app` }, role: "write" });
    const updated = (await (await adminCall("PATCH", path(account.quayName), { description: "renamed" })).json()) as { username: string; description: string };
    expect(updated).toMatchObject({ username: account.username, description: "renamed" });
    expect((await adminCall("GET", path(`${ns}+nosuch`))).status).toBe(404);
    expect((await adminCall("GET", path("NOT+valid"))).status).toBe(404);
  });
});
