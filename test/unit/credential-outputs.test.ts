import { describe, expect, it } from "vitest";
import { credentialOutputs, shellQuote } from "../../src/admin/credential-outputs";

describe("credential outputs", () => {
  const outputs = credentialOutputs("registry.example.com", "12345678|ci-puller", "tok-en_123", { namespace: "ci", secretName: "acme-pull" });

  it("quotes the username for shells (| is a pipe)", () => {
    expect(outputs.podmanLogin).toBe("podman login -u '12345678|ci-puller' -p 'tok-en_123' registry.example.com");
    expect(shellQuote("it's")).toBe(`'it'\\''s'`);
  });

  it("the auth file entry decodes to the credentials", () => {
    expect(atob(outputs.authJson.auths["registry.example.com"]!.auth)).toBe("12345678|ci-puller:tok-en_123");
  });

  it("the Kubernetes Secret's .dockerconfigjson decodes to the same auth file", () => {
    expect(outputs.kubernetesSecret).toContain("type: kubernetes.io/dockerconfigjson");
    expect(outputs.kubernetesSecret).toContain("  name: acme-pull\n  namespace: ci\n");
    const encoded = /\.dockerconfigjson: (\S+)/.exec(outputs.kubernetesSecret)![1]!;
    expect(JSON.parse(atob(encoded))).toEqual(outputs.authJson);
  });

  it("kubectl and oc commands", () => {
    expect(outputs.kubectlCommand).toBe(
      "kubectl create secret docker-registry acme-pull --namespace=ci --docker-server=registry.example.com --docker-username='12345678|ci-puller' --docker-password='tok-en_123'",
    );
    expect(outputs.ocCommand.startsWith("oc create secret docker-registry acme-pull")).toBe(true);
  });
});
