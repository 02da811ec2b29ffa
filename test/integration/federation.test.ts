/**
 * Workload identity federation at the token endpoint: trust policies on service accounts (admin API), OIDC
 * tokens shaped like GitHub Actions', GitLab CI's and Kubernetes' exchanged for registry tokens (Basic on GET,
 * OAuth2 password grant, RFC 8693 token exchange), and every refusal the trust model promises. The issuers
 * are real HTTP servers on 127.0.0.1 (test/support/oidc-issuer.mjs); their keys are made here.
 */
import { SignJWT, decodeJwt } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { SERVICE, adminAuthorization, adminCall, basic, bearer, call, callAt, createNamespace, createServiceAccount, pushImage, uniqueName, withinOneRateWindow } from "../helpers/registry";
import { TestIssuer, githubClaims, gitlabClaims, kubernetesClaims } from "../helpers/oidc";

const AUDIENCE = "https://registry.test";
const b64url = (value: unknown) => btoa(JSON.stringify(value)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

let ns: string;
let github: TestIssuer;
let gitlab: TestIssuer;
let kubernetes: TestIssuer;
/** The account every trusted workload logs in as: write on `ns`. */
let pusher: { username: string; token: string };

const path = (username: string) => `/service-accounts/${encodeURIComponent(username)}/trust-policies`;

async function addPolicy(username: string, policy: Record<string, unknown>): Promise<{ id: string }> {
  const response = await adminCall("PUT", path(username), policy);
  expect(response.status, await response.clone().text()).toBe(201);
  return response.json();
}

function tokenGet(username: string, secret: string, scopes: string[] = [], extra = ""): Promise<Response> {
  const query = new URLSearchParams({ service: SERVICE });
  for (const scope of scopes) query.append("scope", scope);
  return call(`/token?${query}${extra}`, { headers: { Authorization: basic(username, secret) } });
}

function tokenPost(fields: Record<string, string>): Promise<Response> {
  return call("/token", {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ service: SERVICE, client_id: "federation-test", ...fields }).toString(),
  });
}

let auditReads = 0;
/**
 * The newest failed-login audit records for `username` (their `detail` says which rule refused), read from a
 * location that has never listed KV (under the production-KV model a location caches list results).
 */
async function failureDetails(username: string): Promise<string[]> {
  const response = await callAt(`audit${++auditReads}`, `/admin/v1/audit?action=auth.failure&actor=${encodeURIComponent(username)}&limit=50`, {
    headers: { Authorization: adminAuthorization() },
  });
  const body = (await response.json()) as { events: { detail?: string }[] };
  return body.events.map((event) => event.detail ?? "");
}

/** Asserts the ordinary 401 (nothing about the rule), and that the audit log names the rule. */
async function expectRefused(response: Response, username: string, reason: RegExp): Promise<void> {
  const text = await response.text();
  expect(response.status, text).toBe(401);
  expect(JSON.parse(text)).toEqual({ error: "invalid_grant", error_description: "invalid username or password" });
  const details = await failureDetails(username);
  expect(details.some((detail) => reason.test(detail)), details.join("\n")).toBe(true);
}

beforeAll(async () => {
  ns = (await createNamespace()).name;
  [github, gitlab, kubernetes] = await Promise.all([TestIssuer.create("RS256"), TestIssuer.create("RS256"), TestIssuer.create("ES256")]);
  pusher = await createServiceAccount(ns, "pusher", [{ namespace: ns, role: "write" }]);
  await addPolicy(pusher.username, {
    description: "GitHub Actions, main branch of octo-org/octo-repo",
    issuer: github.issuer,
    audiences: [AUDIENCE],
    subject: "repo:octo-org/octo-repo:ref:refs/heads/main",
    claims: { repository: "octo-org/octo-repo", event_name: "push" },
    algorithms: ["RS256"],
  });
  await addPolicy(pusher.username, {
    issuer: gitlab.issuer,
    audiences: [AUDIENCE],
    subject: "project_path:mygroup/myproject:ref_type:branch:ref:*",
    claims: { ref_protected: "true" },
  });
  await addPolicy(pusher.username, {
    issuer: kubernetes.issuer,
    audiences: [AUDIENCE],
    subject: "system:serviceaccount:apps:pusher",
    claims: { "kubernetes.io/namespace": "apps" },
    algorithms: ["ES256"],
    replayWindowSeconds: 3600,
  });
});

describe("trust policies: admin API", () => {
  it("lists, shows, replaces by index and removes by id; each change is audited", async () => {
    const account = await createServiceAccount(ns, uniqueName("adm"), [{ namespace: ns, role: "read" }]);
    const first = await addPolicy(account.username, { issuer: github.issuer, audiences: [AUDIENCE], subject: "repo:a/b:ref:refs/heads/main" });
    const second = await addPolicy(account.username, { issuer: gitlab.issuer, audiences: [AUDIENCE], subject: "project_path:g/p:*" });
    const list = (await (await adminCall("GET", path(account.username))).json()) as { trustPolicies: { id: string; algorithms: string[]; maxTokenAgeSeconds: number; replayWindowSeconds: number }[] };
    expect(list.trustPolicies.map((policy) => policy.id)).toEqual([first.id, second.id]);
    // Defaults: both algorithms, one hour of token age, a five-minute replay window.
    expect(list.trustPolicies[0]).toMatchObject({ algorithms: ["RS256", "ES256"], maxTokenAgeSeconds: 3600, replayWindowSeconds: 300 });
    expect(((await (await adminCall("GET", `${path(account.username)}/${second.id}`)).json()) as { subject: string }).subject).toBe("project_path:g/p:*");

    const replaced = await adminCall("PUT", `${path(account.username)}/0`, { issuer: github.issuer, audiences: [AUDIENCE], subject: "repo:a/b:environment:prod" });
    expect(replaced.status).toBe(200);
    expect(((await replaced.json()) as { id: string; subject: string })).toMatchObject({ id: first.id, subject: "repo:a/b:environment:prod" });
    expect((await adminCall("DELETE", `${path(account.username)}/${first.id}`)).status).toBe(204);
    expect((await adminCall("DELETE", `${path(account.username)}/${first.id}`)).status).toBe(404);
    expect((await (await adminCall("GET", path(account.username))).json()) as unknown).toEqual({ trustPolicies: [expect.objectContaining({ id: second.id })] });
    // The account view shows the policies too (and never a hash).
    const view = (await (await adminCall("GET", `/service-accounts/${encodeURIComponent(account.username)}`)).json()) as Record<string, unknown>;
    expect(view.trustPolicies).toHaveLength(1);
    expect(view.tokenHash).toBeUndefined();
    expect((await adminCall("DELETE", path(account.username))).status).toBe(204);
    expect((await (await adminCall("GET", path(account.username))).json()) as unknown).toEqual({ trustPolicies: [] });

    const audit = (await (await callAt(`audit${++auditReads}`, "/admin/v1/audit?actor=admin&limit=200", { headers: { Authorization: adminAuthorization() } })).json()) as { events: { action: string; target?: string; detail?: string }[] };
    const mine = audit.events.filter((event) => event.target === account.username).map((event) => event.action);
    expect(mine).toEqual(expect.arrayContaining(["service-account.trust-add", "service-account.trust-set", "service-account.trust-remove"]));
    const added = audit.events.filter((event) => event.target === account.username && event.action === "service-account.trust-add");
    expect(added.map((event) => event.detail)).toEqual([expect.stringContaining(gitlab.issuer), expect.stringContaining(github.issuer)]);
  });

  it.each([
    ["a non-https issuer", { issuer: "http://issuer.example.com", audiences: [AUDIENCE], subject: "x" }, /https/],
    ["an issuer with a query", { issuer: "https://issuer.example.com/?a=b", audiences: [AUDIENCE], subject: "x" }, /query/],
    ["no audiences", { issuer: "https://issuer.example.com", audiences: [], subject: "x" }, /audiences/],
    ["six audiences", { issuer: "https://issuer.example.com", audiences: ["1", "2", "3", "4", "5", "6"], subject: "x" }, /audiences/],
    ["a subject of only *", { issuer: "https://issuer.example.com", audiences: [AUDIENCE], subject: "**" }, /subject/],
    ["HS256", { issuer: "https://issuer.example.com", audiences: [AUDIENCE], subject: "x", algorithms: ["HS256"] }, /algorithms/],
    ["none", { issuer: "https://issuer.example.com", audiences: [AUDIENCE], subject: "x", algorithms: ["none"] }, /algorithms/],
    ["a claim rule on sub", { issuer: "https://issuer.example.com", audiences: [AUDIENCE], subject: "x", claims: { sub: "*" } }, /own rule/],
    ["a non-string claim rule", { issuer: "https://issuer.example.com", audiences: [AUDIENCE], subject: "x", claims: { ref_protected: true } }, /claim/],
    ["a token age of a week", { issuer: "https://issuer.example.com", audiences: [AUDIENCE], subject: "x", maxTokenAgeSeconds: 604800 }, /maxTokenAgeSeconds/],
    ["a replay window longer than the token age", { issuer: "https://issuer.example.com", audiences: [AUDIENCE], subject: "x", maxTokenAgeSeconds: 600, replayWindowSeconds: 601 }, /replayWindowSeconds/],
    ["an unknown field", { issuer: "https://issuer.example.com", audiences: [AUDIENCE], subject: "x", grants: [] }, /unknown field/],
    ["a control character", { issuer: "https://issuer.example.com", audiences: [AUDIENCE], subject: "a\u0000b" }, /control/],
  ])("refuses %s (400, admin JSON)", async (_label, body, message) => {
    const response = await adminCall("PUT", path(pusher.username), body);
    expect(response.status).toBe(400);
    const error = ((await response.json()) as { error: { code: string; message: string } }).error;
    expect(error.code).toBe("invalid_request");
    expect(error.message).toMatch(message);
  });

  it("bounds the number of policies (409 past 10) and answers 404 for unknown accounts and policies", async () => {
    const account = await createServiceAccount(ns, uniqueName("many"), []);
    for (let i = 0; i < 10; i++) await addPolicy(account.username, { issuer: "https://issuer.example.com", audiences: [AUDIENCE], subject: `s${i}` });
    const eleventh = await adminCall("PUT", path(account.username), { issuer: "https://issuer.example.com", audiences: [AUDIENCE], subject: "s10" });
    expect(eleventh.status).toBe(409);
    expect((await adminCall("GET", path("12345678|nobody"))).status).toBe(404);
    expect((await adminCall("DELETE", `${path(account.username)}/10`)).status).toBe(404);
    expect((await adminCall("PUT", `${path(account.username)}/zzz`, { issuer: "https://issuer.example.com", audiences: [AUDIENCE], subject: "x" })).status).toBe(404);
  });
});

describe("exchange at the token endpoint", () => {
  it("GitHub Actions: podman login (Basic, no scope) then a push token with the same ID token, and the push succeeds", async () => {
    const idToken = await github.sign(githubClaims(github.issuer, AUDIENCE, { repository: "octo-org/octo-repo" }));
    const login = await tokenGet(pusher.username, idToken);
    expect(login.status, await login.clone().text()).toBe(200);
    const pushScope = `repository:${ns}/gh-app:pull,push`;
    const push = await tokenGet(pusher.username, idToken, [pushScope]);
    expect(push.status).toBe(200);
    const { token, refresh_token } = (await push.json()) as { token: string; refresh_token?: string };
    expect(refresh_token).toBeUndefined();
    const claims = decodeJwt(token);
    // The registry token names the service account, with its own grants (write = pull, push).
    expect(claims.sub).toBe(pusher.username);
    expect(claims.access).toEqual([{ type: "repository", name: `${ns}/gh-app`, actions: ["pull", "push"] }]);
    await pushImage(`${ns}/gh-app`, "v1", token);
    const pulled = await call(`/v2/${ns}/gh-app/manifests/v1`, { headers: bearer(token) });
    expect(pulled.status).toBe(200);
  });

  it("never grants more than the account holds: delete and other namespaces are dropped", async () => {
    const other = (await createNamespace()).name;
    const idToken = await github.sign(githubClaims(github.issuer, AUDIENCE));
    const response = await tokenGet(pusher.username, idToken, [`repository:${ns}/x:pull,push,delete`, `repository:${other}/x:pull,push`]);
    const claims = decodeJwt(((await response.json()) as { token: string }).token);
    expect(claims.access).toEqual([
      { type: "repository", name: `${ns}/x`, actions: ["pull", "push"] },
      { type: "repository", name: `${other}/x`, actions: [] },
    ]);
  });

  it("GitLab CI: OAuth2 password grant (containerd, docker 29); no refresh token even with access_type=offline", async () => {
    const idToken = await gitlab.sign(gitlabClaims(gitlab.issuer, AUDIENCE, { ref: "release-1" }));
    const response = await tokenPost({ grant_type: "password", username: pusher.username, password: idToken, scope: `repository:${ns}/gl-app:pull,push`, access_type: "offline" });
    expect(response.status, await response.clone().text()).toBe(200);
    const body = (await response.json()) as { access_token: string; scope: string; refresh_token?: string };
    expect(body.scope).toBe(`repository:${ns}/gl-app:pull,push`);
    expect(body.refresh_token).toBeUndefined();
    await pushImage(`${ns}/gl-app`, "v1", body.access_token);
  });

  it("GET with offline_token=true never returns a refresh token to a federated login", async () => {
    const idToken = await gitlab.sign(gitlabClaims(gitlab.issuer, AUDIENCE));
    const response = await tokenGet(pusher.username, idToken, [], "&offline_token=true&client_id=docker");
    expect(response.status).toBe(200);
    expect(((await response.json()) as { refresh_token?: string }).refresh_token).toBeUndefined();
  });

  it("Kubernetes projected token (ES256): RFC 8693 token exchange with the account named by `account`", async () => {
    const idToken = await kubernetes.sign(kubernetesClaims(kubernetes.issuer, AUDIENCE));
    const response = await tokenPost({
      grant_type: "urn:ietf:params:oauth:grant-type:token-exchange",
      subject_token: idToken,
      subject_token_type: "urn:ietf:params:oauth:token-type:jwt",
      account: pusher.username,
      scope: `repository:${ns}/k8s-app:pull`,
    });
    expect(response.status, await response.clone().text()).toBe(200);
    const body = (await response.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ issued_token_type: "urn:ietf:params:oauth:token-type:access_token", token_type: "Bearer", scope: `repository:${ns}/k8s-app:pull` });
    expect(body.refresh_token).toBeUndefined();
    expect(decodeJwt(body.access_token as string).sub).toBe(pusher.username);
    // The pod reuses its token (kubelet refreshes it at 80 % of its life): the policy's window allows that.
    const again = await tokenPost({ grant_type: "urn:ietf:params:oauth:grant-type:token-exchange", subject_token: idToken, subject_token_type: "urn:ietf:params:oauth:token-type:id_token", account: pusher.username });
    expect(again.status).toBe(200);
  });

  it.each([
    ["no subject_token_type", { subject_token_type: "" }],
    ["an access-token subject type", { subject_token_type: "urn:ietf:params:oauth:token-type:access_token" }],
    ["a refresh-token requested type", { requested_token_type: "urn:ietf:params:oauth:token-type:refresh_token" }],
    ["an actor token", { actor_token: "x", actor_token_type: "urn:ietf:params:oauth:token-type:jwt" }],
    ["a web user as the account", { account: "someone" }],
    ["the account's own token as subject_token", { subject_token: "OWN" }],
  ])("token exchange refuses %s with 400 invalid_request", async (_label, fields) => {
    const idToken = await kubernetes.sign(kubernetesClaims(kubernetes.issuer, AUDIENCE));
    const form: Record<string, string> = {
      grant_type: "urn:ietf:params:oauth:grant-type:token-exchange",
      subject_token: idToken,
      subject_token_type: "urn:ietf:params:oauth:token-type:id_token",
      account: pusher.username,
      ...fields,
    };
    if (form.subject_token === "OWN") form.subject_token = pusher.token;
    for (const [key, value] of Object.entries(form)) if (value === "") delete form[key];
    const response = await tokenPost(form);
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: string }).error).toBe("invalid_request");
  });

  it("the account's own token keeps working next to its trust policies", async () => {
    expect((await tokenGet(pusher.username, pusher.token)).status).toBe(200);
  });

  it("an ID token is not a credential for an account without trust policies, nor on the admin API", async () => {
    const plain = await createServiceAccount(ns, uniqueName("plain"), [{ namespace: ns, role: "write" }]);
    const idToken = await github.sign(githubClaims(github.issuer, AUDIENCE));
    await expectRefused(await tokenGet(plain.username, idToken), plain.username, /wrong-secret/);
    const admin = await call("/admin/v1/namespaces", { headers: { Authorization: basic(pusher.username, idToken) } });
    expect(admin.status).toBe(401);
  });
});

describe("refusals: the ordinary 401, the rule in the audit log", () => {
  const refusals: [string, () => Promise<string>, RegExp][] = [
    ["a token from another issuer", async () => { const stranger = await TestIssuer.create(); return stranger.sign(githubClaims(stranger.issuer, AUDIENCE)); }, /no trust policy for issuer/],
    ["a token claiming a trusted issuer, signed by another's key", async () => { const stranger = await TestIssuer.create(); return stranger.sign(githubClaims(github.issuer, AUDIENCE), { kid: github.currentKid }); }, /signature invalid/],
    ["another audience", async () => github.sign(githubClaims(github.issuer, "https://other-registry.example")), /audience not allowed/],
    ["another subject (another repository)", async () => github.sign(githubClaims(github.issuer, AUDIENCE, { repository: "octo-org/other-repo" })), /subject does not match/],
    ["another branch", async () => github.sign(githubClaims(github.issuer, AUDIENCE, { ref: "refs/heads/feature" })), /subject does not match/],
    ["a required claim that differs (pull_request event)", async () => github.sign(githubClaims(github.issuer, AUDIENCE, { event_name: "pull_request" })), /claim event_name does not match/],
    ["an unprotected GitLab ref", async () => gitlab.sign(gitlabClaims(gitlab.issuer, AUDIENCE, { protectedRef: false })), /claim ref_protected does not match/],
    ["another Kubernetes namespace", async () => kubernetes.sign(kubernetesClaims(kubernetes.issuer, AUDIENCE, { namespace: "default" })), /subject does not match/],
    ["an expired token (past the 60 s leeway)", async () => { const now = Math.floor(Date.now() / 1000); return github.sign(githubClaims(github.issuer, AUDIENCE, { iat: now - 400, exp: now - 61 })); }, /expired/],
    ["a token not yet valid (nbf past the leeway)", async () => { const now = Math.floor(Date.now() / 1000); return github.sign(githubClaims(github.issuer, AUDIENCE, { nbf: now + 120, exp: now + 600 })); }, /not yet valid/],
    ["a token issued in the future", async () => { const now = Math.floor(Date.now() / 1000); return github.sign(githubClaims(github.issuer, AUDIENCE, { iat: now + 120, nbf: now - 10, exp: now + 600 })); }, /future|iat/],
    ["a token older than maxTokenAgeSeconds though unexpired", async () => { const now = Math.floor(Date.now() / 1000); return gitlab.sign(gitlabClaims(gitlab.issuer, AUDIENCE, { iat: now - 3700, nbf: now - 3700, exp: now + 600 })); }, /older than maxTokenAgeSeconds/],
    ["a token without exp", async () => { const { exp: _exp, ...claims } = githubClaims(github.issuer, AUDIENCE); return github.sign(claims); }, /exp/],
    ["HS256 keyed with the JWKS's public key material", async () => {
      const jwk = github.publicJwk();
      return new SignJWT(githubClaims(github.issuer, AUDIENCE)).setProtectedHeader({ alg: "HS256", typ: "JWT", kid: github.currentKid }).sign(new TextEncoder().encode(JSON.stringify(jwk)));
    }, /algorithm "HS256" refused/],
    ["HS256 keyed with the RSA modulus", async () => {
      const jwk = github.publicJwk();
      return new SignJWT(githubClaims(github.issuer, AUDIENCE)).setProtectedHeader({ alg: "HS256", typ: "JWT", kid: github.currentKid }).sign(new TextEncoder().encode(jwk.n!));
    }, /algorithm "HS256" refused/],
    ["alg none", async () => `${b64url({ alg: "none", typ: "JWT", kid: github.currentKid })}.${b64url(githubClaims(github.issuer, AUDIENCE))}.`, /algorithm "none" refused/],
    ["RS384 (not pinned)", async () => {
      const { privateKey } = await (await import("jose")).generateKeyPair("RS384");
      return new SignJWT(githubClaims(github.issuer, AUDIENCE)).setProtectedHeader({ alg: "RS384", kid: github.currentKid }).sign(privateKey);
    }, /algorithm "RS384" refused/],
    ["ES256 where the policy pins RS256", async () => {
      const { privateKey } = await (await import("jose")).generateKeyPair("ES256");
      return new SignJWT(githubClaims(github.issuer, AUDIENCE)).setProtectedHeader({ alg: "ES256", kid: "es-unknown" }).sign(privateKey);
    }, /unknown kid|algorithm ES256 not allowed/],
    ["an unknown kid", async () => github.sign(githubClaims(github.issuer, AUDIENCE), { kid: "not-in-the-jwks" }), /unknown kid/],
    ["no kid", async () => github.sign(githubClaims(github.issuer, AUDIENCE), { header: { kid: undefined } }), /no kid/],
    ["an embedded jwk header (ignored: the key comes from the issuer's JWKS)", async () => {
      const { privateKey, publicKey } = await (await import("jose")).generateKeyPair("RS256", { extractable: true });
      const jwk = await (await import("jose")).exportJWK(publicKey);
      return new SignJWT(githubClaims(github.issuer, AUDIENCE)).setProtectedHeader({ alg: "RS256", kid: github.currentKid, jwk }).sign(privateKey);
    }, /signature invalid/],
    ["a tampered payload", async () => {
      const [header, , signature] = (await github.sign(githubClaims(github.issuer, AUDIENCE))).split(".");
      return `${header}.${b64url(githubClaims(github.issuer, AUDIENCE, { repository: "octo-org/octo-repo" }))}.${signature}`;
    }, /signature invalid/],
  ];

  it.each(refusals)("%s", async (_label, make, reason) => {
    await expectRefused(await tokenGet(pusher.username, await make()), pusher.username, reason);
  });

  it("a replayed token past its window (a single-use policy)", async () => {
    const once = await createServiceAccount(ns, uniqueName("once"), [{ namespace: ns, role: "read" }]);
    await addPolicy(once.username, { issuer: github.issuer, audiences: [AUDIENCE], subject: "repo:octo-org/octo-repo:*", replayWindowSeconds: 0 });
    const idToken = await github.sign(githubClaims(github.issuer, AUDIENCE));
    expect((await tokenGet(once.username, idToken)).status).toBe(200);
    await expectRefused(await tokenGet(once.username, idToken), once.username, /replayed .* after first use \(window 0 s\)/);
    // Through another grant too: the token, not the request, was used.
    const post = await tokenPost({ grant_type: "password", username: once.username, password: idToken });
    expect(post.status).toBe(401);
  });

  it("a replayed token after a short window: accepted within it, refused after it", async () => {
    const brief = await createServiceAccount(ns, uniqueName("brief"), [{ namespace: ns, role: "read" }]);
    await addPolicy(brief.username, { issuer: gitlab.issuer, audiences: [AUDIENCE], subject: "project_path:mygroup/myproject:*", replayWindowSeconds: 1 });
    const idToken = await gitlab.sign(gitlabClaims(gitlab.issuer, AUDIENCE));
    expect((await tokenGet(brief.username, idToken)).status).toBe(200);
    expect((await tokenGet(brief.username, idToken)).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await expectRefused(await tokenGet(brief.username, idToken), brief.username, /replayed .* \(window 1 s\)/);
  });

  it("a disabled account refuses its federated logins, without fetching keys", async () => {
    const issuer = await TestIssuer.create();
    const account = await createServiceAccount(ns, uniqueName("off"), [{ namespace: ns, role: "read" }]);
    await addPolicy(account.username, { issuer: issuer.issuer, audiences: [AUDIENCE], subject: "repo:octo-org/octo-repo:*" });
    expect((await adminCall("PATCH", `/service-accounts/${encodeURIComponent(account.username)}`, { disabled: true })).status).toBe(200);
    await expectRefused(await tokenGet(account.username, await issuer.sign(githubClaims(issuer.issuer, AUDIENCE))), account.username, /disabled \(federated token\)/);
    expect(await issuer.stats()).toEqual({ discovery: 0, jwks: 0 });
  });

  it("refused federated logins count against the client address like any failure (429 after 30)", async () => {
    await withinOneRateWindow();
    const attacker = "203.0.113.77";
    const forged = await github.sign(githubClaims(github.issuer, "https://elsewhere.example"));
    const statuses: number[] = [];
    for (let i = 0; i < 31; i++) {
      const response = await call(`/token?service=${SERVICE}`, { headers: { Authorization: basic(pusher.username, forged), "CF-Connecting-IP": attacker } });
      statuses.push(response.status);
    }
    expect(statuses.slice(0, 30).every((status) => status === 401)).toBe(true);
    expect(statuses[30]).toBe(429);
    // A valid ID token from that address is throttled too; the workload elsewhere is not.
    const good = await github.sign(githubClaims(github.issuer, AUDIENCE));
    expect((await call(`/token?service=${SERVICE}`, { headers: { Authorization: basic(pusher.username, good), "CF-Connecting-IP": attacker } })).status).toBe(429);
    expect((await call(`/token?service=${SERVICE}`, { headers: { Authorization: basic(pusher.username, good), "CF-Connecting-IP": "198.51.100.77" } })).status).toBe(200);
  });
});

describe("issuer keys: discovery, caching, rotation", () => {
  async function trusting(issuer: TestIssuer, policy: Record<string, unknown> = {}) {
    const account = await createServiceAccount(ns, uniqueName("keys"), [{ namespace: ns, role: "read" }]);
    await addPolicy(account.username, { issuer: issuer.issuer, audiences: [AUDIENCE], subject: "repo:octo-org/octo-repo:*", ...policy });
    return account;
  }

  it("fetches discovery and JWKS once; later logins make no outbound call, even while the issuer is down", async () => {
    const issuer = await TestIssuer.create();
    const account = await trusting(issuer);
    for (let i = 0; i < 3; i++) expect((await tokenGet(account.username, await issuer.sign(githubClaims(issuer.issuer, AUDIENCE)))).status).toBe(200);
    expect(await issuer.stats()).toEqual({ discovery: 1, jwks: 1 });
    await issuer.control({ down: true });
    expect((await tokenGet(account.username, await issuer.sign(githubClaims(issuer.issuer, AUDIENCE)))).status).toBe(200);
    expect(await issuer.stats()).toEqual({ discovery: 1, jwks: 1 });
  });

  it("an unknown kid refreshes at most once a minute per issuer: a rotation seen right after a fetch waits, forged kids cost nothing", async () => {
    const issuer = await TestIssuer.create();
    const account = await trusting(issuer);
    expect((await tokenGet(account.username, await issuer.sign(githubClaims(issuer.issuer, AUDIENCE)))).status).toBe(200);
    await issuer.rotate("RS256");
    for (let i = 0; i < 3; i++) {
      await expectRefused(await tokenGet(account.username, await issuer.sign(githubClaims(issuer.issuer, AUDIENCE))), account.username, /unknown kid/);
    }
    expect(await issuer.stats()).toEqual({ discovery: 1, jwks: 1 });
  });

  it("a discovery document naming another issuer is refused (OIDC Discovery §4.3)", async () => {
    const issuer = await TestIssuer.create();
    await issuer.control({ discoveryIssuer: `${issuer.issuer}/evil` });
    const account = await trusting(issuer);
    await expectRefused(await tokenGet(account.username, await issuer.sign(githubClaims(issuer.issuer, AUDIENCE))), account.username, /discovery document names another issuer/);
  });

  it("an issuer that is down with nothing cached: refused, and asked again at most once a minute", async () => {
    const issuer = await TestIssuer.create();
    await issuer.control({ down: true });
    const account = await trusting(issuer);
    for (let i = 0; i < 3; i++) {
      await expectRefused(await tokenGet(account.username, await issuer.sign(githubClaims(issuer.issuer, AUDIENCE))), account.username, /discovery fetch answered 503|last fetch failed/);
    }
    expect((await issuer.stats()).discovery).toBe(1);
  });
});
