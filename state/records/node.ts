import type { Runtime } from './instance.ts';

/** A node whose agent has not heartbeated for this long is NotReady (Kubernetes: 40 s; ours: 20 s). */
export const DEFAULT_NODE_READY_MS = 20_000;
/** A NotReady node's instances are rescheduled after this much more (Kubernetes: 5 min; ours: 30 s). */
export const DEFAULT_EVICTION_MS = 30_000;

/** Instances a node takes unless its agent says otherwise (`--max-instances`), as Kubernetes' maxPods. */
export const DEFAULT_MAX_INSTANCES = 110;

/** The most instances that may be bound to this node: the scheduler's filter and the bind Lua script. */
export function maxInstancesOf(node: Pick<NodeRecord, 'maxInstances'>): number {
  return node.maxInstances ?? DEFAULT_MAX_INSTANCES;
}

/** Ready = heartbeated within `readyMs`: the one rule the scheduler, the API and the lifecycle controller apply. */
export function isNodeReady(heartbeatAt: number, now: number, readyMs: number): boolean {
  return now - heartbeatAt <= readyMs;
}

/** Nodes: what an agent registers (NodeRecord), what is bound there, and the lifecycle the reconciler keeps. */

export interface NodeRecord {
  name: string;
  cpuMilli: number;
  memoryBytes: number;
  labels: Record<string, string>;
  runtimes: Runtime[];
  /** Address at which the node's instances answer (host ports are published there). */
  address: string;
  agentPid?: number;
  /** Port of the agent's log endpoint on `address` (GET /logs/<instanceId>?follow=&tail=&container=). */
  logsPort?: number;
  registeredAt: number;
  cordoned?: boolean;
  /** Most instances bound here at once (absent: DEFAULT_MAX_INSTANCES). */
  maxInstances?: number;
}

export interface NodeAllocation {
  cpuMilli: number;
  memoryBytes: number;
  instances: number;
}

/** The node lifecycle controller's verdict (`node-lifecycle` hash), from heartbeats. */
export type NodeState = 'Ready' | 'NotReady' | 'Evicted';

export interface NodeLifecycle {
  state: NodeState;
  /** When the node entered this state. */
  since: number;
  lastHeartbeat: number;
}

