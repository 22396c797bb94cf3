/**
 * Generated, valid and varied manifests for the CPU-bound benchmarks. Deterministic (a seeded
 * generator), so two runs measure the same input.
 */
import { stringify } from 'yaml';
import type { Deployment, Namespace } from '../schemas/generated/index.ts';

/** A small deterministic PRNG (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const NAMESPACES = Array.from({ length: 10 }, (_, i) => `team-${i}`);

export function namespaceObjects(): Namespace[] {
  return NAMESPACES.map((name, i) => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels: { team: `t${i}` } } }));
}

/** Deployment `i` of `count`: a mix of processes and images, 1 or 2 containers, selectors, strategies. */
export function deploymentObject(i: number, random: () => number): Deployment {
  const app = `app-${i}`;
  const containers: Deployment['spec']['template']['spec']['containers'] = [
    {
      name: 'main',
      ...(i % 5 === 0 ? { image: `registry.example/app:${i % 17}` } : { command: ['node', 'server.js'], args: ['--port', '$(PORT)'] }),
      env: [
        { name: 'GREETING', value: `hello ${i}` },
        { name: 'LOG_LEVEL', value: i % 2 ? 'info' : 'debug' },
      ],
      ports: [{ name: 'http', containerPort: 8080 }],
      resources: { cpu: `${50 + Math.floor(random() * 8) * 50}m`, memory: `${32 * (1 + Math.floor(random() * 8))}Mi` },
    },
  ];
  if (i % 3 === 0) {
    containers.push({ name: 'sidecar', command: ['sh', '-c', 'sleep infinity'], resources: { cpu: '10m', memory: '8Mi' } });
  }
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: app, namespace: NAMESPACES[i % NAMESPACES.length]!, labels: { app, tier: i % 4 === 0 ? 'frontend' : 'backend' } },
    spec: {
      replicas: 1 + Math.floor(random() * 10),
      ...(i % 7 === 0 ? { strategy: { type: 'Recreate' as const } } : { strategy: { type: 'RollingUpdate' as const, rollingUpdate: { maxSurge: '25%', maxUnavailable: 1 } } }),
      template: {
        metadata: { labels: { app, version: `v${i % 3}` } },
        spec: {
          ...(i % 4 === 0 ? { nodeSelector: { zone: `z${i % 4}` } } : {}),
          restartPolicy: 'Always',
          terminationGracePeriodSeconds: 5,
          containers,
        },
      },
    },
  };
}

export function deploymentObjects(count: number, seed = 42): Deployment[] {
  const random = rng(seed);
  return Array.from({ length: count }, (_, i) => deploymentObject(i, random));
}

/**
 * `count` Deployment documents spread over `files` multi-document YAML files under apps/, plus
 * namespaces.yaml declaring their namespaces: what a large repository looks like to loadManifests.
 */
export function manifestFiles(count: number, files: number): { path: string; content: Uint8Array }[] {
  const deployments = deploymentObjects(count);
  const perFile = Math.ceil(count / files);
  const out: { path: string; content: Uint8Array }[] = [
    { path: 'namespaces.yaml', content: Buffer.from(namespaceObjects().map((n) => stringify(n)).join('---\n')) },
  ];
  for (let f = 0; f < files; f++) {
    const docs = deployments.slice(f * perFile, (f + 1) * perFile).map((d) => stringify(d));
    if (docs.length > 0) out.push({ path: `apps/group-${String(f).padStart(3, '0')}.yaml`, content: Buffer.from(`# generated group ${f}\n${docs.join('---\n')}`) });
  }
  return out;
}
