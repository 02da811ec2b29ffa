/**
 * Ready-to-use credentials for a service account, as registry.redhat.io's "Registry Service Accounts"
 * page hands them out: a podman login command, a docker/podman auth file entry, a Kubernetes pull secret
 * (`kubernetes.io/dockerconfigjson`) and the equivalent kubectl and oc commands.
 */
export interface CredentialOutputs {
  registry: string;
  username: string;
  password: string;
  podmanLogin: string;
  /** `~/.docker/config.json` / containers auth.json content. */
  authJson: { auths: Record<string, { auth: string }> };
  kubernetesSecret: string;
  kubectlCommand: string;
  ocCommand: string;
}

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
    podmanLogin: `podman login -u ${shellQuote(username)} -p ${shellQuote(password)} ${registry}`,
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
