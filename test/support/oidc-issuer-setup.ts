/**
 * vitest globalSetup of the workers projects: starts the local OIDC issuer (test/support/oidc-issuer.mjs) on
 * 127.0.0.1 and provides its URL to the tests (`inject("oidcIssuerUrl")`, test/helpers/oidc.ts).
 */
import type { TestProject } from "vitest/node";
// @ts-expect-error: plain ESM helper, also used by the e2e suite
import { startOidcIssuer } from "./oidc-issuer.mjs";

/**
 * The provided key (read by test/helpers/oidc.ts). Not declared in vitest's ProvidedContext: this file is
 * type-checked with vitest.config.ts, whose e2e `provide` would then be checked against a context that lacks
 * the e2e keys (they are declared in test/e2e/global-setup.ts, outside this tsconfig).
 */
export const OIDC_ISSUER_URL_KEY = "oidcIssuerUrl";

export default async function setup(project: TestProject) {
  const issuer = (await startOidcIssuer()) as { url: string; close: () => Promise<void> };
  (project.provide as (key: string, value: unknown) => void)(OIDC_ISSUER_URL_KEY, issuer.url);
  return () => issuer.close();
}
