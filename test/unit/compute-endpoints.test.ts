import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ActualInstance } from '../../state/records/instance.ts';
import { canarySplitOf, computeEndpoints, endpointsChanged, resolveTargetPort, type EndpointsInput } from '../../reconciler/services/compute-endpoints.ts';
import type { ServiceRecord } from '../../state/records/service.ts';
import type { RolloutState } from '../../state/records/rollout.ts';
import type { DeploymentStatus } from '../../state/records/status.ts';
import { deployment, instance } from '../helpers/records.ts';

const svc = (over: Partial<ServiceRecord> = {}): ServiceRecord => ({
  namespace: 'default',
  name: 'web',
  commit: 'c1',
  file: 'svc.yaml',
  line: 1,
  selector: { app: 'web' },
  ports: [{ port: 8000, targetPort: 'http' }],
  ...over,
});

/** A ready instance of `web` on `node`, serving http (8080) on host port `hostPort`. */
function ready(ordinal: number, node: string, hostPort: number, opts: { hash?: string; ns?: string; labels?: Record<string, string>; phase?: 'Running' | 'Starting'; ready?: boolean } = {}): ActualInstance {
  const d = deployment({ namespace: opts.ns ?? 'default', template: { ...deployment().template, labels: opts.labels ?? { app: 'web' } } });
  const i = instance(d, ordinal, { hash: opts.hash, node, phase: opts.phase ?? 'Running' });
  i.status!.hostIP = node === 'node-1' ? '127.0.0.2' : '127.0.0.3';
  i.status!.ports = [{ name: 'http', containerPort: 8080, hostPort }];
  if (opts.ready !== undefined) i.status!.ready = opts.ready;
  return i;
}

const input = (over: Partial<EndpointsInput>): EndpointsInput => ({ services: [svc()], instances: [], nodeStates: {}, splits: new Map(), previous: new Map(), now: 1000, ...over });

test('endpoints are the ready, matching instances of the namespace, with the host port of the target port', () => {
  const [rec] = computeEndpoints(
    input({
      instances: [
        ready(0, 'node-1', 40001),
        ready(1, 'node-2', 40002),
        ready(2, 'node-1', 40003, { phase: 'Starting' }), // not running yet
        ready(3, 'node-2', 40004, { ready: false }), // readiness probe failing
        ready(4, 'node-1', 40005, { labels: { app: 'api' } }), // other labels
        ready(5, 'node-1', 40006, { ns: 'shop' }), // other namespace
      ],
    }),
  );
  assert.deepEqual(rec!.endpoints.map((e) => [e.host, e.ports['8000'], e.node]), [['127.0.0.2', 40001, 'node-1'], ['127.0.0.3', 40002, 'node-2']]);
  assert.deepEqual(rec!.listen, [8000]);
  assert.equal(rec!.conditions.find((c) => c.type === 'EndpointsReady')!.status, 'True');
});

test('instances on a node that is NotReady or lost are left out', () => {
  const [rec] = computeEndpoints(input({ instances: [ready(0, 'node-1', 40001), ready(1, 'node-2', 40002)], nodeStates: { 'node-1': 'Ready', 'node-2': 'NotReady' } }));
  assert.deepEqual(rec!.endpoints.map((e) => e.node), ['node-1']);
});

test('target ports resolve by container port name or number; instances serving none are no endpoints', () => {
  const st = { ports: [{ name: 'http', containerPort: 8080, hostPort: 41000 }, { containerPort: 9090, hostPort: 41001 }] };
  assert.equal(resolveTargetPort(st, 'http'), 41000);
  assert.equal(resolveTargetPort(st, 9090), 41001);
  assert.equal(resolveTargetPort(st, 'metrics'), undefined);
  const [rec] = computeEndpoints(input({ services: [svc({ ports: [{ port: 9000, targetPort: 'grpc' }] })], instances: [ready(0, 'node-1', 40001)] }));
  assert.deepEqual(rec!.endpoints, []);
  const c = rec!.conditions.find((x) => x.type === 'EndpointsReady')!;
  assert.equal(c.status, 'False');
  assert.match(c.message, /no ready instance in namespace default matches app=web/);
});

test('a port claimed by an earlier service (namespace/name order) gives the later one PortConflict and no listener', () => {
  const a = svc({ namespace: 'default', name: 'api', ports: [{ port: 8000, targetPort: 8080 }, { port: 8001, targetPort: 8080 }] });
  const b = svc({ namespace: 'default', name: 'web', ports: [{ port: 8000, targetPort: 'http' }] });
  const [ra, rb] = computeEndpoints(input({ services: [a, b] }));
  assert.deepEqual(ra!.listen, [8000, 8001]);
  assert.equal(ra!.conditions.some((c) => c.type === 'PortConflict'), false);
  assert.deepEqual(rb!.listen, []);
  const conflict = rb!.conditions.find((c) => c.type === 'PortConflict')!;
  assert.equal(conflict.status, 'True');
  assert.match(conflict.message, /port 8000 is already used by service default\/api/);
});

test('unchanged conditions keep their transition time, so recomputing changes nothing', () => {
  const first = computeEndpoints(input({ instances: [ready(0, 'node-1', 40001)], now: 1000 }));
  const again = computeEndpoints(input({ instances: [ready(0, 'node-1', 40001)], now: 5000, previous: new Map([['default/web', first[0]!]]) }));
  assert.equal(again[0]!.conditions[0]!.lastTransitionTime, 1000);
  assert.equal(endpointsChanged(first[0], again[0]!), false);
  const scaled = computeEndpoints(input({ instances: [ready(0, 'node-1', 40001), ready(1, 'node-2', 40002)], now: 6000, previous: new Map([['default/web', first[0]!]]) }));
  assert.equal(endpointsChanged(first[0], scaled[0]!), true);
});

test('the canary split of a deployment is the weight of the step reached, and follows its endpoints', () => {
  const d = deployment({ replicas: 5, strategy: { type: 'Canary', maxSurge: 1, maxUnavailable: 0, steps: [{ setWeight: 20 }, { pause: {} }, { setWeight: 60 }] } });
  const rev = (revision: number, templateHash: string) => ({ revision, templateHash, template: d.template, commit: 'c', message: '', createdAt: 0 });
  const state = { revisions: [rev(1, 'old'), rev(2, 'new')], target: 2, stable: 1, phase: 'Progressing', reason: '', message: '', startedAt: 0, lastProgressAt: 0, progressKey: '', canaryStep: 1 } as RolloutState;
  const status = { rollout: { canaryReplicas: 1 } } as DeploymentStatus;
  const split = canarySplitOf(d, state, status)!;
  assert.deepEqual(split, { deployment: 'web', canaryRevision: 'new', stableRevision: 'old', weight: 20 });
  assert.equal(canarySplitOf(d, { ...state, canaryStep: 2 }, status)!.weight, 60);
  assert.equal(canarySplitOf(d, state, { rollout: { canaryReplicas: null } } as unknown as DeploymentStatus), undefined);
  assert.equal(canarySplitOf(deployment(), state, status), undefined);
  const [rec] = computeEndpoints(input({ instances: [ready(0, 'node-1', 40001, { hash: 'old' }), ready(0, 'node-2', 40002, { hash: 'new' })], splits: new Map([['default/web', split]]) }));
  assert.deepEqual(rec!.split, split);
  assert.deepEqual(rec!.endpoints.map((e) => e.revision).sort(), ['new', 'old']);
});
