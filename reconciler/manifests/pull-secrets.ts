/**
 * A Deployment's spec.template.spec.imagePullSecrets, checked against the commit as env references
 * are (config-references.ts): each named Secret must be in the deployment's namespace in this
 * commit, of a registry-credentials type with its key, and that key must hold what the type says.
 * Kubernetes lets a pod name a missing or unusable pull secret and pulls without it (a warning
 * event, then ErrImagePull from the registry); in a GitOps repository that is a mistake to report
 * at file:line. Messages name Secrets, types and keys, never a value. Pure.
 */
import type { ManifestErrorCode } from './errors.ts';
import type { DeploymentObject, ManifestObject } from './types.ts';

export interface PullSecretProblem {
  code: Extract<ManifestErrorCode, 'REFERENCE_NOT_FOUND' | 'INVALID_VALUE'>;
  pointer: string;
  message: string;
}

/** The Secret types a pull secret may have, and the key each keeps its credentials under. */
export const PULL_SECRET_TYPES: Readonly<Record<string, string>> = {
  'kubernetes.io/dockerconfigjson': '.dockerconfigjson',
  'kubernetes.io/dockercfg': '.dockercfg',
};

const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Why a pull secret's credentials cannot be read, as the API server validates these types; undefined when they can. */
function contentProblem(type: string, base64: string): string | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(base64, 'base64').toString('utf8'));
  } catch {
    return 'is not valid JSON (the content is not shown)';
  }
  // .dockerconfigjson is {"auths": {registry: entry}}; the legacy .dockercfg is the map itself.
  const auths = type === 'kubernetes.io/dockerconfigjson' ? (isRecord(parsed) ? parsed.auths : undefined) : parsed;
  if (!isRecord(auths)) return type === 'kubernetes.io/dockerconfigjson' ? 'has no "auths" object' : 'is not a JSON object of registries';
  const bad = Object.keys(auths).filter((registry) => !isRecord(auths[registry]));
  if (bad.length > 0) return `has an entry that is not an object (registry ${JSON.stringify(bad[0])})`;
  return undefined;
}

/** `configs`: "<ns>/<kind>/<name>" -> the commit's ConfigMaps and Secrets. */
export function pullSecretProblems(d: DeploymentObject, configs: ReadonlyMap<string, ManifestObject>): PullSecretProblem[] {
  const ns = d.metadata.namespace;
  const out: PullSecretProblem[] = [];
  (d.spec.template.spec.imagePullSecrets ?? []).forEach((ref, i) => {
    const pointer = `/spec/template/spec/imagePullSecrets/${i}/name`;
    const what = `Secret ${ns}/${ref.name}`;
    const secret = configs.get(`${ns}/Secret/${ref.name}`);
    if (!secret || secret.kind !== 'Secret') {
      out.push({ code: 'REFERENCE_NOT_FOUND', pointer, message: `${what} is not defined in this commit (an image pull secret must be in the repository, in the deployment's namespace)` });
      return;
    }
    const key = PULL_SECRET_TYPES[secret.type];
    const types = Object.entries(PULL_SECRET_TYPES).map(([t, k]) => `${t} with key ${k}`).join(', or ');
    if (!key) {
      out.push({ code: 'INVALID_VALUE', pointer, message: `${what} has type ${secret.type}; an image pull secret must be ${types}` });
      return;
    }
    const value = secret.data[key];
    if (value === undefined) {
      out.push({ code: 'INVALID_VALUE', pointer, message: `${what} (type ${secret.type}) has no key ${key} (its keys: ${Object.keys(secret.data).sort().join(', ') || 'none'})` });
      return;
    }
    const problem = contentProblem(secret.type, value);
    if (problem) out.push({ code: 'INVALID_VALUE', pointer, message: `${what}: key ${key} ${problem}` });
  });
  return out;
}
