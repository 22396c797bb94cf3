import type { InstanceRecord, InstanceStatus } from '../../state/records/instance.ts';
import type { NodeRecord } from '../../state/records/node.ts';
import type { ActualInstance } from '../../state/records/instance.ts';
import { instanceId } from '../../state/records/instance.ts';
import type { DeploymentRecord } from '../../state/records/deployment.ts';

/** Builders of records for unit tests of the pure core. */

export function deployment(over: Partial<DeploymentRecord> = {}): DeploymentRecord {
  return {
    namespace: 'default',
    name: 'web',
    commit: 'c1',
    file: 'web.yaml',
    line: 1,
    generation: 1,
    specHash: 's1',
    replicas: 3,
    selector: { app: 'web' },
    strategy: { type: 'RollingUpdate', maxSurge: '25%', maxUnavailable: '25%' },
    minReadySeconds: 0,
    revisionHistoryLimit: 10,
    progressDeadlineSeconds: 600,
    rollback: 'auto',
    templateHash: 'h1',
    template: {
      labels: { app: 'web' },
      containers: [{ name: 'c', command: ['sleep', '1000'], args: [], env: [], ports: [], cpuMilli: 100, memoryBytes: 1024 }],
      cpuMilli: 100,
      memoryBytes: 1024,
      nodeSelector: {},
      restartPolicy: 'Always',
      runtime: 'process',
      terminationGracePeriodSeconds: 10,
    },
    labels: {},
    annotations: {},
    ...over,
  };
}

export function instance(d: DeploymentRecord, ordinal: number, opts: { hash?: string; node?: string; phase?: InstanceStatus['phase'] } = {}): ActualInstance {
  const hash = opts.hash ?? d.templateHash;
  const id = instanceId(d.namespace, d.name, hash, ordinal);
  const record: InstanceRecord = {
    id,
    uid: `u-${id}`,
    namespace: d.namespace,
    deployment: d.name,
    templateHash: hash,
    ordinal,
    commit: d.commit,
    labels: d.template.labels,
    containers: d.template.containers,
    cpuMilli: d.template.cpuMilli,
    memoryBytes: d.template.memoryBytes,
    nodeSelector: d.template.nodeSelector,
    restartPolicy: d.template.restartPolicy,
    runtime: d.template.runtime,
    terminationGracePeriodSeconds: 10,
    createdAt: 0,
    ...(opts.node ? { node: opts.node } : {}),
  };
  const status: InstanceStatus | undefined =
    opts.phase && opts.node
      ? { id, uid: record.uid, node: opts.node, phase: opts.phase, hostIP: '127.0.0.1', restarts: 0, ports: [], containers: [], updatedAt: 0 }
      : undefined;
  return { record, status };
}

export function node(name: string, over: Partial<NodeRecord> = {}): NodeRecord {
  return { name, cpuMilli: 4000, memoryBytes: 8 * 1024 ** 3, labels: {}, runtimes: ['process'], address: '127.0.0.1', registeredAt: 0, ...over };
}
