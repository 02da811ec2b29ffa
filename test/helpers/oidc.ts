/**
 * Federation test helpers: an issuer on the local OIDC server (test/support/oidc-issuer.mjs, started by the
 * workers projects' globalSetup), keys generated here, and ID tokens shaped like GitHub Actions', GitLab CI's
 * and Kubernetes' projected service-account tokens.
 */
import { SignJWT, exportJWK, generateKeyPair, type JWK } from "jose";
import { inject } from "vitest";

export type Alg = "RS256" | "ES256";

/** The local issuer server's URL, provided by test/support/oidc-issuer-setup.ts (key not declared in ProvidedContext: see there). */
export function oidcIssuerUrl(): string {
  const url = (inject as unknown as (key: string) => unknown)("oidcIssuerUrl");
  if (typeof url !== "string") throw new Error("no local OIDC issuer: run with the workers projects (vitest.config.ts globalSetup)");
  return url;
}

interface Key {
  alg: Alg;
  privateKey: CryptoKey;
  publicJwk: JWK;
}

export class TestIssuer {
  readonly keys = new Map<string, Key>();
  /** The kid new tokens are signed with. */
  currentKid = "";

  private constructor(readonly issuer: string) {}

  /** A fresh issuer with one published key of `alg`. */
  static async create(alg: Alg = "RS256"): Promise<TestIssuer> {
    const response = await fetch(`${oidcIssuerUrl()}/issuers`, { method: "POST" });
    if (response.status !== 201) throw new Error(`issuer server answered ${response.status}`);
    const issuer = new TestIssuer(((await response.json()) as { issuer: string }).issuer);
    await issuer.rotate(alg);
    return issuer;
  }

  /** Adds a key, publishes it next to the others, and signs new tokens with it (an issuer's key rotation). */
  async rotate(alg: Alg = "RS256", options: { publish?: boolean; dropOld?: boolean } = {}): Promise<string> {
    const kid = `${alg.toLowerCase()}-${crypto.randomUUID().slice(0, 8)}`;
    const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
    const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: "sig" };
    if (options.dropOld) this.keys.clear();
    this.keys.set(kid, { alg, privateKey, publicJwk });
    this.currentKid = kid;
    if (options.publish !== false) await this.publish();
    return kid;
  }

  /** Serves the public halves of the keys held (or of `kids`). */
  publish(kids: string[] = [...this.keys.keys()]): Promise<void> {
    return this.control({ keys: kids.map((kid) => this.keys.get(kid)!.publicJwk) });
  }

  async control(body: { keys?: JWK[]; down?: boolean; discoveryIssuer?: string; maxAge?: number }): Promise<void> {
    const response = await fetch(`${this.issuer}/_control`, { method: "PUT", body: JSON.stringify(body) });
    if (response.status !== 204) throw new Error(`issuer control answered ${response.status}`);
  }

  /** How many discovery and JWKS requests the issuer has served. */
  async stats(): Promise<{ discovery: number; jwks: number }> {
    return (await fetch(`${this.issuer}/_stats`)).json();
  }

  /** A signed token: `claims` as given (times in seconds), header `kid` of the current key unless overridden. */
  async sign(claims: Record<string, unknown>, options: { kid?: string; header?: Record<string, unknown> } = {}): Promise<string> {
    const kid = options.kid ?? this.currentKid;
    const key = this.keys.get(kid) ?? this.keys.get(this.currentKid)!;
    return new SignJWT(claims).setProtectedHeader({ alg: key.alg, typ: "JWT", kid, ...options.header }).sign(key.privateKey);
  }

  /** The public JWK of the current key (what an attacker can read from the JWKS). */
  publicJwk(): JWK {
    return this.keys.get(this.currentKid)!.publicJwk;
  }
}

const nowSeconds = () => Math.floor(Date.now() / 1000);

/** Claims as GitHub Actions issues them (docs.github.com "About security hardening with OpenID Connect"). */
export function githubClaims(issuer: string, audience: string, options: { repository?: string; ref?: string; environment?: string } & Record<string, unknown> = {}) {
  const { repository = "octo-org/octo-repo", ref = "refs/heads/main", environment, ...overrides } = options;
  const iat = nowSeconds();
  const [owner] = repository.split("/");
  return {
    jti: crypto.randomUUID(),
    sub: environment ? `repo:${repository}:environment:${environment}` : `repo:${repository}:ref:${ref}`,
    aud: audience,
    ref,
    sha: "example-sha",
    repository,
    repository_owner: owner,
    repository_owner_id: "65",
    repository_id: "35",
    repository_visibility: "private",
    run_id: "example-run-id",
    run_number: "10",
    run_attempt: "2",
    actor: "octocat",
    actor_id: "12",
    workflow: "example-workflow",
    workflow_ref: `${repository}/.github/workflows/ci.yml@${ref}`,
    head_ref: "",
    base_ref: "",
    event_name: "push",
    ref_type: "branch",
    ref_protected: "true",
    ...(environment ? { environment } : {}),
    job_workflow_ref: `${repository}/.github/workflows/ci.yml@${ref}`,
    runner_environment: "github-hosted",
    iss: issuer,
    nbf: iat - 600,
    exp: iat + 300,
    iat,
    ...overrides,
  };
}

/** Claims as GitLab CI issues them in `id_tokens` (docs.gitlab.com "OpenID Connect (OIDC) authentication using ID tokens"). */
export function gitlabClaims(issuer: string, audience: string, options: { projectPath?: string; ref?: string; protectedRef?: boolean } & Record<string, unknown> = {}) {
  const { projectPath = "mygroup/myproject", ref = "main", protectedRef = true, ...overrides } = options;
  const iat = nowSeconds();
  return {
    namespace_id: "72",
    namespace_path: projectPath.split("/")[0],
    project_id: "20",
    project_path: projectPath,
    user_id: "5",
    user_login: "sample-user",
    user_email: "sample-user@example.com",
    user_access_level: "developer",
    pipeline_id: "574",
    pipeline_source: "push",
    job_id: "302",
    ref,
    ref_type: "branch",
    ref_path: `refs/heads/${ref}`,
    ref_protected: String(protectedRef),
    runner_id: "12",
    runner_environment: "gitlab-hosted",
    sha: "example-sha",
    project_visibility: "private",
    ci_config_ref_uri: `gitlab.example.com/${projectPath}//.gitlab-ci.yml@refs/heads/${ref}`,
    ci_config_sha: "example-sha",
    jti: crypto.randomUUID(),
    iss: issuer,
    iat,
    nbf: iat - 5,
    exp: iat + 3600,
    sub: `project_path:${projectPath}:ref_type:branch:ref:${ref}`,
    aud: audience,
    ...overrides,
  };
}

/** Claims of a Kubernetes projected service-account token (`serviceAccountToken` volume with an audience). */
export function kubernetesClaims(issuer: string, audience: string, options: { namespace?: string; serviceAccount?: string } & Record<string, unknown> = {}) {
  const { namespace = "apps", serviceAccount = "pusher", ...overrides } = options;
  const iat = nowSeconds();
  return {
    aud: [audience],
    exp: iat + 3600,
    iat,
    iss: issuer,
    jti: crypto.randomUUID(),
    "kubernetes.io": {
      namespace,
      node: { name: "node-1", uid: crypto.randomUUID() },
      pod: { name: `${serviceAccount}-7d9f8b6c4-x2x9z`, uid: crypto.randomUUID() },
      serviceaccount: { name: serviceAccount, uid: crypto.randomUUID() },
    },
    nbf: iat,
    sub: `system:serviceaccount:${namespace}:${serviceAccount}`,
    ...overrides,
  };
}
