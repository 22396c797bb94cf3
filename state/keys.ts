/**
 * The whole Redis key schema of Gantry, in one place.
 *
 * Every key is `<prefix>:<kind>[:<part>...]`. Parts are namespace, object and node names, which
 * follow DNS-label rules and so never contain `:`; `assertKeyPart` enforces that at the edge, so a
 * bad name can never alias another key. No other module builds key strings.
 *
 * Desired state (written by the reconciler from Git):
 *   namespaces                      hash    name -> JSON NamespaceRecord
 *   deployments                     set     "<ns>/<name>" of every desired deployment
 *   deployment:<ns>:<name>          string  JSON DeploymentRecord (manifest + commit + templateHash)
 *   services                        set     "<ns>/<name>" of every desired service
 *   service:<ns>:<name>             string  JSON ServiceRecord (selector, ports, commit)
 *   desired-checksums               hash    what the tracked branch's sync wrote: "v|h|e|s <key> [<field>]" -> sha1
 *                                           of the value (or "1"), plus "@token" and "@count"; the resync's
 *                                           drift check (state/desired-store.ts, lua/desired-drift-1.lua)
 * Services (reconciler/services/, agents/service-proxy.ts):
 *   endpoints:<ns>:<name>           string  JSON EndpointsRecord: ready endpoints, ports to listen on,
 *                                           canary split, conditions; written by the endpoints controller
 *   service-node-status:<node>      hash    "<ns>/<name>" -> JSON ServiceNodeStatus: ports that agent
 *                                           could not bind (written by that node's agent)
 *   channel:services                pubsub  "desired" when services changed in Git, "endpoints" when
 *                                           endpoints records changed: proxies re-read at once
 * Instances (one replica of a deployment; written by the reconciler, bound by the scheduler):
 *   instances                       set     every instance id
 *   instance:<id>                   string  JSON InstanceRecord (spec, node once bound)
 *   deployment-instances:<ns>:<name> set    instance ids owned by that deployment
 *   deployment-nodes:<ns>:<name>    hash    node -> how many of that deployment's instances are bound there
 *                                           (the scheduler's spread), kept by the bind/adopt/delete Lua scripts
 *   deployment-nodes-built          string  "1" once every deployment-nodes hash was built from the records
 *                                           (data written before they existed; see PlacementStore)
 *   pending-instances               set     instance ids not bound to a node yet
 *   instance-status:<id>            string  JSON InstanceStatus, written only by the node's agent
 * Nodes (registered by agents):
 *   nodes                           set     node names
 *   node:<name>                     string  JSON NodeRecord (capacity, labels, runtimes, address)
 *   node-heartbeat:<name>           string  last heartbeat, ms since epoch
 *   node-alloc:<name>               hash    cpuMilli, memoryBytes, instances: what is bound there
 *   node-instances:<name>           set     instance ids bound to that node
 *   nodes-version                   counter bumped after any node record or the `nodes` set changed
 *                                           (register, cordon): the scheduler's node cache re-reads them then
 *   node-lifecycle                  hash    name -> JSON NodeLifecycle (Ready/NotReady/Evicted), by the reconciler
 *   node-claims:<name>              hash    instance id -> JSON InstanceRecord an agent still runs after Redis
 *                                           lost its data (TTL a few minutes): adopted by the deployment controller
 *   draining-nodes                  set     nodes being drained (`gantry node drain`)
 * Status and events:
 *   source                          hash    source status (see SourceStatus)
 *   logs-secret                     string  credential of the reconciler's requests to agents' log servers
 *   cluster-epoch                   string  random id made by the reconciler (SET NX): gone or changed = Redis lost its data
 *   deployment-status:<ns>:<name>   string  JSON DeploymentStatus
 *   rollout:<ns>:<name>             string  JSON RolloutState: revisions, target, stable, pin, canary step
 *   reconcile-dirty:<ns>:<name>     string  a reconcile was asked for while one ran (see reconcile-queue.ts)
 *   terminating:<ns>:<name>         hash    "<id>" -> "<uid> <deletedAt>": instances replaced by Recreate, until their agent stopped them
 *   events                          stream  bounded event log
 *   stop-grace:<id>                 string  seconds: the grace period a deleted instance is stopped with
 *                                           (`gantry delete instance --grace-period`), for its agent; TTL 10 min
 *   notifications-cursor            string  id of the last event the reconciler's notifier handled
 *   channel:changes                 pubsub  "<ns>/<name>" of a deployment whose actual state moved,
 *                                           or "node/<name>" when a node registered
 * ConfigMaps and Secrets (records/config.ts):
 *   configs                         set     "<ns>/<kind>/<name>" of every ConfigMap and Secret with stored versions
 *   configs-applied                 hash    "<ns>/<kind>/<name>" -> version, of the branch's applied commit
 *   config:<ns>:<kind>:<name>       hash    version -> JSON ConfigVersionRecord (kind: configmap | secret);
 *                                           versions are immutable, unreferenced ones are pruned
 * Webhooks and previews (reconciler/webhooks/, reconciler/preview/):
 *   webhook-delivery:<provider>:<h> string  "1" with a TTL: delivery whose id, or whose body, hashes to <h> was handled
 *   previews                        set     numbers of the pull requests that have a preview
 *   preview:<n>                     string  JSON PreviewRecord of pull request <n> (head, state, namespaces)
 *   pr-comment:<n>                  string  id of Gantry's plan comment on pull request <n> at the Git host
 *   pr-approval:<n>                 string  JSON PreviewApproval: the label event that approved pull request <n> and the head it approved
 * BullMQ keeps its own keys under `<prefix>:bull`.
 */

export const DEFAULT_PREFIX = 'gantry';

const PART = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

/**
 * Names of namespaces, deployments, services and nodes: a DNS label (RFC 1123), as Kubernetes
 * names them. The API, the CLI and the schemas accept no other.
 */
export const NAME_PATTERN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export function isValidName(s: string): boolean {
  return typeof s === 'string' && s.length <= 63 && NAME_PATTERN.test(s);
}

/** Throws when a name would break the key schema (only DNS-label-like parts are allowed). */
export function assertKeyPart(part: string, what = 'name'): string {
  if (typeof part !== 'string' || part.length === 0 || part.length > 253 || !PART.test(part)) {
    throw new TypeError(`invalid ${what} for a Redis key: ${JSON.stringify(part)}`);
  }
  return part;
}

export function assertPrefix(prefix: string): string {
  if (!/^[A-Za-z0-9][-A-Za-z0-9_.:{}]*$/.test(prefix)) {
    throw new TypeError(`invalid Redis key prefix: ${JSON.stringify(prefix)}`);
  }
  return prefix;
}

/** "<ns>/<name>", the reconcile key of a deployment (and member of the `deployments` set). */
export function objectKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

export function parseObjectKey(key: string): { namespace: string; name: string } {
  const i = key.indexOf('/');
  if (i <= 0 || i === key.length - 1) throw new TypeError(`invalid object key: ${JSON.stringify(key)}`);
  return { namespace: key.slice(0, i), name: key.slice(i + 1) };
}

export type Keys = ReturnType<typeof createKeys>;

export function createKeys(prefix: string = DEFAULT_PREFIX) {
  const p = assertPrefix(prefix);
  const k = (...parts: string[]) => [p, ...parts].join(':');
  return {
    prefix: p,
    /** BullMQ's own prefix: its keys live under ours. */
    bullPrefix: k('bull'),

    namespaces: k('namespaces'),
    deployments: k('deployments'),
    deployment: (ns: string, name: string) => k('deployment', assertKeyPart(ns, 'namespace'), assertKeyPart(name)),
    deploymentStatus: (ns: string, name: string) =>
      k('deployment-status', assertKeyPart(ns, 'namespace'), assertKeyPart(name)),
    rollout: (ns: string, name: string) => k('rollout', assertKeyPart(ns, 'namespace'), assertKeyPart(name)),
    terminating: (ns: string, name: string) => k('terminating', assertKeyPart(ns, 'namespace'), assertKeyPart(name)),
    /** By reconcile key `<ns>/<name>`. */
    reconcileDirty: (key: string) => {
      const [ns = '', name = ''] = key.split('/');
      return k('reconcile-dirty', assertKeyPart(ns, 'namespace'), assertKeyPart(name));
    },
    deploymentInstances: (ns: string, name: string) =>
      k('deployment-instances', assertKeyPart(ns, 'namespace'), assertKeyPart(name)),
    deploymentNodes: (ns: string, name: string) => k('deployment-nodes', assertKeyPart(ns, 'namespace'), assertKeyPart(name)),
    deploymentNodesBuilt: k('deployment-nodes-built'),

    instances: k('instances'),
    instance: (id: string) => k('instance', assertKeyPart(id, 'instance id')),
    instanceStatus: (id: string) => k('instance-status', assertKeyPart(id, 'instance id')),
    pendingInstances: k('pending-instances'),

    nodes: k('nodes'),
    node: (name: string) => k('node', assertKeyPart(name, 'node name')),
    nodeHeartbeat: (name: string) => k('node-heartbeat', assertKeyPart(name, 'node name')),
    nodeAlloc: (name: string) => k('node-alloc', assertKeyPart(name, 'node name')),
    nodeInstances: (name: string) => k('node-instances', assertKeyPart(name, 'node name')),
    nodesVersion: k('nodes-version'),
    nodeLifecycle: k('node-lifecycle'),
    nodeClaims: (name: string) => k('node-claims', assertKeyPart(name, 'node name')),
    drainingNodes: k('draining-nodes'),

    source: k('source'),
    /** The credential the reconciler's log requests carry to agents' log servers. */
    logsSecret: k('logs-secret'),
    /** Which incarnation of the data this is: missing or different means Redis lost its data. */
    clusterEpoch: k('cluster-epoch'),
    events: k('events'),
    notificationsCursor: k('notifications-cursor'),
    stopGrace: (id: string) => k('stop-grace', assertKeyPart(id, 'instance id')),

    webhookDelivery: (provider: string, idHash: string) => k('webhook-delivery', assertKeyPart(provider, 'provider'), assertKeyPart(idHash, 'delivery hash')),
    previews: k('previews'),
    preview: (pr: number) => k('preview', assertKeyPart(String(pr), 'pull request number')),
    prComment: (pr: number) => k('pr-comment', assertKeyPart(String(pr), 'pull request number')),
    prApproval: (pr: number) => k('pr-approval', assertKeyPart(String(pr), 'pull request number')),
    changesChannel: k('channel', 'changes'),
    /**
     * Deployments ("<ns>/<name>") announced on changesChannel since their last reconcile began: a
     * pub/sub message is lost while the subscriber reconnects, this set is not (the resync reads it).
     */
    changedDeployments: k('changed-deployments'),

    configs: k('configs'),
    configsApplied: k('configs-applied'),
    config: (ns: string, kind: 'ConfigMap' | 'Secret', name: string) =>
      k('config', assertKeyPart(ns, 'namespace'), kind === 'Secret' ? 'secret' : 'configmap', assertKeyPart(name)),

    services: k('services'),
    /** Checksums of the tracked branch's desired state, for the resync's drift check (desired-store.ts). */
    desiredChecksums: k('desired-checksums'),
    service: (ns: string, name: string) => k('service', assertKeyPart(ns, 'namespace'), assertKeyPart(name)),
    endpoints: (ns: string, name: string) => k('endpoints', assertKeyPart(ns, 'namespace'), assertKeyPart(name)),
    serviceNodeStatus: (node: string) => k('service-node-status', assertKeyPart(node, 'node name')),
    servicesChannel: k('channel', 'services'),
  };
}
