import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ServiceBalancer } from '../../agents/service-balancer.ts';
import { serviceEnv } from '../../agents/service-env.ts';
import type { Endpoint, EndpointsRecord } from '../../state/records/service.ts';

const ep = (id: string, revision = 'r1'): Endpoint => ({ instanceId: id, node: 'n', host: '127.0.0.1', ports: { '80': 1000 }, revision });

test('round robin: each connection starts at the next endpoint and lists all others after it', () => {
  const b = new ServiceBalancer();
  const eps = [ep('a'), ep('b'), ep('c')];
  const firsts = Array.from({ length: 6 }, () => b.order(eps).map((e) => e.instanceId));
  assert.deepEqual(firsts.map((o) => o[0]), ['a', 'b', 'c', 'a', 'b', 'c']);
  for (const o of firsts) assert.deepEqual([...o].sort(), ['a', 'b', 'c']); // the rest are the retries
  assert.deepEqual(b.order([]), []);
});

test('a canary split sends exactly weight% of connections to the canary revision, round robin within each', () => {
  const b = new ServiceBalancer();
  const eps = [ep('s1', 'old'), ep('s2', 'old'), ep('s3', 'old'), ep('s4', 'old'), ep('c1', 'new')];
  const split = { deployment: 'web', canaryRevision: 'new', stableRevision: 'old', weight: 20 };
  const picks = Array.from({ length: 500 }, () => b.order(eps, split)[0]!);
  assert.equal(picks.filter((e) => e.revision === 'new').length, 100);
  const stableCounts = new Map<string, number>();
  for (const p of picks.filter((e) => e.revision === 'old')) stableCounts.set(p.instanceId, (stableCounts.get(p.instanceId) ?? 0) + 1);
  assert.deepEqual([...stableCounts.values()], [100, 100, 100, 100]);
  // The other revision stays in the order as a fallback.
  assert.equal(b.order(eps, split).length, 5);
});

test('a split with one side empty sends everything to the other side', () => {
  const b = new ServiceBalancer();
  const split = { deployment: 'web', canaryRevision: 'new', stableRevision: 'old', weight: 50 };
  assert.deepEqual(Array.from({ length: 4 }, () => b.order([ep('s1', 'old')], split)[0]!.instanceId), ['s1', 's1', 's1', 's1']);
  assert.deepEqual(Array.from({ length: 4 }, () => b.order([ep('c1', 'new')], split)[0]!.instanceId), ['c1', 'c1', 'c1', 'c1']);
});

test('service env: <NAME>_SERVICE_HOST/PORT for listened services of the namespace; the container env wins', () => {
  const rec = (ns: string, name: string, listen: number[]): EndpointsRecord => ({ namespace: ns, name, ports: [{ name: 'http', port: 8000, targetPort: 'http' }], listen, endpoints: [], conditions: [], updatedAt: 0 });
  const env = serviceEnv([rec('shop', 'web-api', [8000]), rec('shop', 'clash', []), rec('other', 'db', [5432])], 'shop', '127.0.0.2');
  assert.deepEqual(env, { WEB_API_SERVICE_HOST: '127.0.0.2', WEB_API_SERVICE_PORT: '8000', WEB_API_SERVICE_PORT_HTTP: '8000' });
  assert.deepEqual(serviceEnv([rec('shop', 'web', [8000])], 'shop', '127.0.0.2', ['WEB_SERVICE_HOST']), { WEB_SERVICE_PORT: '8000', WEB_SERVICE_PORT_HTTP: '8000' });
});
