/**
 * ConfigMaps and Secrets as the API shows them (`GET /api/v1/configmaps`, `/api/v1/secrets`,
 * `gantry get configmaps|secrets`): what the branch's applied commit holds, with the deployments
 * that use each. A Secret's values never leave: each shows as `(secret: N bytes, sha256:abcd1234)`.
 */
import type { FastifyInstance } from 'fastify';
import type { ConfigKind, ConfigVersionRecord } from '../../state/records/config.ts';
import type { Store } from '../../state/store.ts';
import { maskedSecret } from '../desired/object-diff.ts';

export interface ConfigView {
  kind: ConfigKind;
  namespace: string;
  name: string;
  /** Content hash: what deployments' templates refer to. */
  version: string;
  /** Secret only. */
  type?: string;
  commit: string;
  /** ConfigMap: the values; Secret: every value masked. */
  data: Record<string, string>;
  /** ConfigMap binaryData: sizes only. */
  binaryData?: Record<string, string>;
  /** "<ns>/<name>" of the deployments whose current template uses this version. */
  usedBy: string[];
}

export function toConfigView(c: ConfigVersionRecord, usedBy: string[]): ConfigView {
  const data = c.kind === 'Secret' ? Object.fromEntries(Object.entries(c.data).map(([k, v]) => [k, maskedSecret(v)])) : c.data;
  return {
    kind: c.kind,
    namespace: c.namespace,
    name: c.name,
    version: c.version,
    ...(c.type !== undefined ? { type: c.type } : {}),
    commit: c.commit,
    data,
    ...(c.binaryData ? { binaryData: Object.fromEntries(Object.entries(c.binaryData).map(([k, v]) => [k, `(binary: ${Buffer.from(v, 'base64').length} bytes)`])) } : {}),
    usedBy,
  };
}

export async function describeConfigs(store: Store, kind: ConfigKind, namespace?: string): Promise<ConfigView[]> {
  const [applied, deployments] = await Promise.all([store.configs.readApplied(), store.readDeployments()]);
  return applied
    .filter((c) => c.kind === kind && (!namespace || c.namespace === namespace))
    .map((c) => {
      const ref = `${c.namespace}/${c.kind}/${c.name}@${c.version}`;
      return toConfigView(c, deployments.filter((d) => d.configRefs?.includes(ref)).map((d) => `${d.namespace}/${d.name}`).sort());
    });
}

export function registerConfigRoutes(app: FastifyInstance, store: Store): void {
  app.get<{ Querystring: { namespace?: string } }>('/api/v1/configmaps', async (req) => ({ items: await describeConfigs(store, 'ConfigMap', req.query.namespace) }));
  app.get<{ Querystring: { namespace?: string } }>('/api/v1/secrets', async (req) => ({ items: await describeConfigs(store, 'Secret', req.query.namespace) }));
}
