import { createKeys } from './keys.ts';
import { nodeQueueName } from './queues.ts';

/**
 * The least a node agent needs of Redis, as Redis ACL rules (`ACL SETUSER <user> on ><password>
 * <rules...>`): its own node's keys (claims included), the cluster epoch (read only), the instance records and statuses (the status scripts check
 * that an instance is bound to the node before writing), services' endpoints, events, the two
 * channels, and its own BullMQ queue. It cannot read or write desired state, other nodes'
 * records, the reconciler's queues or anything outside the prefix, nor run admin commands.
 */
export function agentAclRules(node: string, prefix = 'gantry'): string[] {
  const k = createKeys(prefix);
  // ConfigMap and Secret versions: read to start containers whose env refers to them.
  const readOnly = [k.nodeInstances(node), k.services, `${prefix}:endpoints:*`, k.clusterEpoch, `${prefix}:config:*`, `${prefix}:stop-grace:*`];
  const readWrite = [
    k.node(node),
    // An agent only reads instance records, but its status script declares them as keys, and Redis
    // wants write access to every key a script declares.
    `${prefix}:instance:*`,
    k.nodes,
    // Bumped on registration, so that schedulers re-read node records (a counter: no record in it).
    k.nodesVersion,
    k.nodeHeartbeat(node),
    `${prefix}:instance-status:*`,
    k.events,
    // Its status script adds the deployment it announces (deployment-changes.ts).
    k.changedDeployments,
    k.serviceNodeStatus(node),
    // What it still runs after Redis lost its data, for the reconciler to adopt.
    k.nodeClaims(node),
    k.logsSecret,
    `${k.bullPrefix}:${nodeQueueName(node)}:*`,
    // BullMQ's workers read the queue's meta and marker keys under the same pattern; nothing else.
  ];
  return [
    'resetkeys',
    'resetchannels',
    ...readOnly.map((p) => `%R~${p}`),
    ...readWrite.map((p) => `~${p}`),
    `&${k.changesChannel}`,
    `&${k.servicesChannel}`,
    // Commands: data, scripts (BullMQ's and Gantry's status scripts), transactions, pub/sub and the
    // connection; no admin or dangerous ones (CONFIG, FLUSHALL, KEYS, DEBUG...) but INFO, which
    // BullMQ reads for the server version.
    '-@all',
    '+@read',
    '+@write',
    '+@scripting',
    '+@transaction',
    '+@pubsub',
    '+@connection',
    '+@keyspace',
    '+@stream',
    '+@blocking',
    '-@dangerous',
    '+info',
    // Heartbeats and the agent's clock are on Redis's time (state/lua/heartbeat-1.lua, ServerClock).
    '+time',
    '+client|setname',
    '+client|getname',
    '+client|id',
  ];
}
