import assert from 'node:assert/strict';
import { after } from 'node:test';
import type { ContainerSpec } from '../../state/records/instance.ts';
import { AgentWorld, container, instanceRecord } from '../helpers/agent-fixtures.ts';
import { docker, dockerTest, gantryContainers, removeContainersWithLabels, TEST_IMAGE } from '../helpers/docker.ts';
import { waitFor } from '../helpers/wait.ts';

/**
 * Requests and limits on the real engine: what a created container's HostConfig says. Limits
 * become NanoCpus and Memory (= MemorySwap); requests never do (the cpu request is CpuShares); a
 * record without `limits` (the flat form, older records) keeps its requests as limits, as before.
 */

const Mi = 1024 ** 2;
const nodesUsed = new Set<string>();
after(async () => {
  for (const node of nodesUsed) await removeContainersWithLabels([`dev.gantry.node=${node}`]);
});

const sleeper = (name: string, over: Partial<ContainerSpec>) =>
  container({ name, image: TEST_IMAGE, imagePullPolicy: 'IfNotPresent', command: ['sleep', '3600'], ports: [], ...over });

dockerTest('HostConfig: NanoCpus and Memory come from the limits, nothing from the requests but the CPU share', async () => {
  const w = await AgentWorld.create();
  nodesUsed.add(w.node);
  try {
    await w.startAgent();
    const r = instanceRecord(w.node, {
      runtime: 'docker',
      terminationGracePeriodSeconds: 1,
      containers: [
        sleeper('both', { cpuMilli: 250, memoryBytes: 32 * Mi, limits: { cpuMilli: 500, memoryBytes: 64 * Mi } }),
        sleeper('requests', { cpuMilli: 250, memoryBytes: 32 * Mi, limits: {} }),
        sleeper('limits', { cpuMilli: 1000, memoryBytes: 48 * Mi, limits: { cpuMilli: 1000, memoryBytes: 48 * Mi } }),
        sleeper('legacy', { cpuMilli: 100, memoryBytes: 24 * Mi }),
      ],
    });
    await w.bind(r);
    await w.nudge(r.id);
    await waitFor(async () => (await w.status(r.id))?.phase === 'Running', { what: `${r.id} Running`, timeoutMs: 30_000 });
    const list = await gantryContainers(w.node, r.id);
    const byName = new Map(list.map((c) => [c.Labels['dev.gantry.container'], c.Id]));
    const host = async (name: string) => {
      const h = (await docker.getContainer(byName.get(name)!).inspect()).HostConfig;
      return { NanoCpus: h.NanoCpus, Memory: h.Memory, MemorySwap: h.MemorySwap, CpuShares: h.CpuShares };
    };
    assert.deepEqual(await host('both'), { NanoCpus: 500_000_000, Memory: 64 * Mi, MemorySwap: 64 * Mi, CpuShares: 256 });
    // 0 is the engine's "not set": no limit at all.
    assert.deepEqual(await host('requests'), { NanoCpus: 0, Memory: 0, MemorySwap: 0, CpuShares: 256 });
    assert.deepEqual(await host('limits'), { NanoCpus: 1_000_000_000, Memory: 48 * Mi, MemorySwap: 48 * Mi, CpuShares: 1024 });
    assert.deepEqual(await host('legacy'), { NanoCpus: 100_000_000, Memory: 24 * Mi, MemorySwap: 24 * Mi, CpuShares: 102 });
  } finally {
    try {
      await w.cleanup();
    } finally {
      await removeContainersWithLabels([`dev.gantry.node=${w.node}`]);
    }
  }
});
