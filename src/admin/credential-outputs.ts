/**
 * Ready-to-use credentials for a service account, as registry.redhat.io's "Registry Service Accounts"
 * page hands them out: a podman login command, a docker/podman auth file entry, a Kubernetes pull secret
 * (`kubernetes.io/dockerconfigjson`) and the equivalent kubectl and oc commands.
 */
import type { CredentialOutputsView } from "../http/admin-api-types";

export type CredentialOutputs = CredentialOutputsView;

export interface KubernetesTarget {
  namespace: string;
  secretName: string;
}

const KUBERNETES_NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

export function isValidKubernetesName(name: string): boolean {
  return KUBERNETES_NAME.test(name);
}

/** POSIX single-quoting: usernames hold `|`, which a shell would take for a pipe. */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/**
 * A registry on the loopback interface (127.0.0.0/8, localhost, ::1): the local dev server, whose certificate is
 * self-signed (scripts/body-limit-front.mjs), so its login lines carry `--tls-verify=false`. Never a remote host.
 */
export function isLoopbackRegistry(host: string): boolean {
  const hostname = host.replace(/:\d+$/, "").toLowerCase();
  return /^127(?:\.\d{1,3}){3}$/.test(hostname) || hostname === "localhost" || hostname === "[::1]";
}

/** The login line, as printed to be pasted into a POSIX shell. */
export function podmanLoginLine(registry: string, username: string, password: string): string {
  const tls = isLoopbackRegistry(registry) ? " --tls-verify=false" : "";
  return `printf '%s\\n' ${shellQuote(password)} | podman login${tls} --password-stdin -u ${shellQuote(username)} ${registry}`;
}

function base64(text: string): string {
  return btoa(String.fromCharCode(...new TextEncoder().encode(text)));
}

export function credentialOutputs(registry: string, username: string, password: string, target: KubernetesTarget): CredentialOutputs {
  const authJson = { auths: { [registry]: { auth: base64(`${username}:${password}`) } } };
  const dockerConfigJson = base64(JSON.stringify(authJson));
  const createSecret = (cli: string) =>
    `${cli} create secret docker-registry ${target.secretName} --namespace=${target.namespace} ` +
    `--docker-server=${registry} --docker-username=${shellQuote(username)} --docker-password=${shellQuote(password)}`;
  return {
    registry,
    username,
    password,
    podmanLogin: podmanLoginLine(registry, username, password),
    authJson,
    kubernetesSecret: [
      "apiVersion: v1",
      "kind: Secret",
      "metadata:",
      `  name: ${target.secretName}`,
      `  namespace: ${target.namespace}`,
      "type: kubernetes.io/dockerconfigjson",
      "data:",
      `  .dockerconfigjson: ${dockerConfigJson}`,
      "",
    ].join("\n"),
    kubectlCommand: createSecret("kubectl"),
    ocCommand: createSecret("oc"),
  };
}
