import assert from 'node:assert/strict';
import { after } from 'node:test';
import { startCluster, type TestCluster } from '../helpers/cluster.ts';
import { dockerTest, gantryContainers, podSandboxes, removeContainersWithLabels, TEST_IMAGE } from '../helpers/docker.ts';
import { httpGet } from '../helpers/agent-fixtures.ts';
import { waitFor } from '../helpers/wait.ts';

/**
 * A pod from Git to the Docker engine and back: manifests with an init container, a sidecar and a
 * mounted ConfigMap are committed; the reconciler records them, the agent runs the pod in one
 * sandbox; a change of the ConfigMap in Git rolls the pod, and the new pod serves the new content.
 */

const NODE = `pods-${process.pid}`;
const configMap = (items: string) => `apiVersion: v1
kind: ConfigMap
metadata: { name: catalog-config }
data:
  items: "${items}"
`;
const catalog = `apiVersion: apps/v1
kind: Deployment
metadata: { name: catalog }
spec:
  replicas: 1
  selector: { matchLabels: { app: catalog } }
  template:
    metadata: { labels: { app: catalog } }
    spec:
      terminationGracePeriodSeconds: 2
      volumes:
        - { name: pages, emptyDir: {} }
        - { name: config, configMap: { name: catalog-config } }
      initContainers:
        - name: seed
          image: ${TEST_IMAGE}
          command: ["sh", "-c", "echo starting > /pages/index.html"]
          volumeMounts: [{ name: pages, mountPath: /pages }]
      containers:
        - name: server
          image: ${TEST_IMAGE}
          command: ["httpd", "-f", "-p", "8080", "-h", "/pages"]
          ports: [{ name: http, containerPort: 8080 }]
          readinessProbe: { httpGet: { path: /index.html, port: http }, periodSeconds: 1 }
          volumeMounts: [{ name: pages, mountPath: /pages, readOnly: true }]
        - name: renderer
          image: ${TEST_IMAGE}
          command: ["sh", "-c", "while true; do if wget -qO /dev/null http://localhost:8080/index.html; then echo \\"catalog: $(cat /etc/catalog/items)\\" > /pages/next && mv /pages/next /pages/index.html; fi; sleep 0.5; done"]
          volumeMounts:
            - { name: pages, mountPath: /pages }
            - { name: config, mountPath: /etc/catalog, readOnly: true }
`;

let c: TestCluster | undefined;
after(async () => {
  await c?.stop();
  await removeContainersWithLabels([`dev.gantry.node=${NODE}`]);
});

async function page(expected: string): Promise<{ id: string; port: number }> {
  return waitFor(async () => {
    const items = (await c!.instances()).filter((i) => i.phase === 'Running' && i.ready);
    if (items.length !== 1) return undefined;
    const [i] = items;
    const port = i!.ports.find((p) => p.containerPort === 8080)?.hostPort;
    if (!port) return undefined;
    const body = await httpGet(port);
    return body?.trim() === expected ? { id: i!.id, port } : undefined;
  }, { timeoutMs: 60_000, what: `the pod serving "${expected}"` });
}

dockerTest('a pod committed to Git runs in one sandbox; a change of its mounted ConfigMap rolls it', async () => {
  c = await startCluster({ nodes: [], reconcilerFlags: ['--resync', '2s'], files: { 'catalog-config.yaml': configMap('kettle, teapot'), 'catalog.yaml': catalog } });
  c.startAgent(NODE);
  const first = await page('catalog: kettle, teapot');
  const [view] = (await c.instances()).filter((i) => i.id === first.id);
  assert.equal(view!.status, 'Running');
  assert.deepEqual(view!.initContainers.map((x) => [x.name, x.reason]), [['seed', 'Completed']]);
  assert.deepEqual(view!.containers.map((x) => [x.name, x.state, x.ready]), [['server', 'Running', true], ['renderer', 'Running', true]]);
  assert.ok(view!.podIP, 'the pod has its own IP');
  assert.equal((await podSandboxes(NODE, first.id)).length, 1);
  assert.equal((await gantryContainers(NODE, first.id)).filter((x) => x.State === 'running').length, 2);

  await c.repo.commitFiles({ 'catalog-config.yaml': configMap('kettle, teapot, mugs') }, 'more items');
  const second = await page('catalog: kettle, teapot, mugs');
  assert.notEqual(second.id, first.id, 'a new pod (a new template revision)');
  await waitFor(async () => (await podSandboxes(NODE, first.id)).length === 0 && (await gantryContainers(NODE, first.id)).length === 0, { what: 'the old pod removed' });
});
