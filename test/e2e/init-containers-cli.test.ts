import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startReconciler, type ReconcilerHandle } from '../../reconciler/reconciler.ts';
import { runGantry } from '../helpers/gantry-process.ts';
import { createRepo, type TestRepo } from '../helpers/git-repo.ts';
import { freshPrefix, testRedis } from '../helpers/redis.ts';
import { waitFor } from '../helpers/wait.ts';
import '../helpers/api-auth.ts';

/**
 * Init containers and lifecycle hooks as a user meets them with the `gantry` command, without an
 * agent: `validate` on a folder, the commit applied with its effective request, and the instance
 * shown by `get instances -o wide` and `describe instance` while it waits for a node.
 */

const web = `apiVersion: apps/v1
kind: Deployment
metadata: { name: web }
spec:
  template:
    metadata: { labels: { app: web } }
    spec:
      initContainers:
        - name: migrate
          command: ["true"]
          resources: { requests: { cpu: "2", memory: 64Mi } }
      containers:
        - name: main
          command: ["sleep", "1000"]
          resources: { requests: { cpu: 100m, memory: 32Mi } }
          lifecycle:
            preStop: { sleep: { seconds: 1 } }
            postStart: { tcpSocket: { port: 1 } }
`;

let repo: TestRepo;
let rec: ReconcilerHandle;
let dataDir: string;

before(async () => {
  const { url } = await testRedis();
  dataDir = mkdtempSync(join(tmpdir(), 'gantry-init-'));
  repo = await createRepo();
  const commit = await repo.commitFiles({ 'web.yaml': web }, 'web');
  rec = await startReconciler({ redisUrl: url, prefix: freshPrefix(), source: { repo: repo.dir, branch: 'main', subPath: '.', dataDir }, apiPort: 0, resyncMs: 60_000 });
  await waitFor(async () => (await rec.store.readSourceStatus())?.lastAppliedCommit === commit, { what: 'commit applied' });
});

after(async () => {
  await rec?.stop();
  await repo?.cleanup();
  rmSync(dataDir, { recursive: true, force: true });
});

test('validate: the tcpSocket hook warns and passes; a sidecar init container fails at file:line', async () => {
  const dir = join(dataDir, 'check');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'web.yaml'), web);
  const ok = await runGantry(['validate', dir]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stderr, /^warning: web\.yaml:18:26 Deployment default\/web \/spec\/template\/spec\/containers\/0\/lifecycle\/postStart\/tcpSocket: ignored: a tcpSocket postStart hook is deprecated/m);
  writeFileSync(join(dir, 'web.yaml'), web.replace('command: ["true"]', 'command: ["true"]\n          restartPolicy: Always'));
  const bad = await runGantry(['validate', dir]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /^web\.yaml:11:11 Deployment default\/web \/spec\/template\/spec\/initContainers\/0\/restartPolicy: restartPolicy: Always \(a sidecar container, Kubernetes 1\.28\) is not supported by Gantry/m);
});

test('the instance waits for a node with the effective request; get -o wide and describe show it', async () => {
  const [d] = await rec.store.readDeployments();
  assert.deepEqual([d!.template.cpuMilli, d!.template.memoryBytes, d!.template.initContainers?.map((c) => c.name)], [2000, 64 * 2 ** 20, ['migrate']]);
  const id = await waitFor(async () => (await rec.store.readAllInstances())[0]?.record.id, { what: 'an instance' });
  const wide = await runGantry(['get', 'instances', '-o', 'wide', '--api', rec.url]);
  assert.equal(wide.code, 0, wide.stderr);
  // No agent has reported: the table of old, then CONTAINERS with nothing in it yet.
  assert.match(wide.stdout, /^NAMESPACE\s+ID\s+NODE\s+PHASE\s+PID\s+PORTS\s+RESTARTS\s+AGE\s+CONTAINERS\s+REASON\n/);
  assert.match(wide.stdout, new RegExp(`\\ndefault\\s+${id.replaceAll('.', '\\.')}\\s+<none>\\s+Pending\\s+-\\s+-\\s+0\\s+\\S+\\s+-\\s+`));
  const described = await runGantry(['describe', 'instance', id, '--api', rec.url]);
  assert.equal(described.code, 0, described.stderr);
  assert.match(described.stdout, new RegExp(`^Name: +${id.replaceAll('.', '\\.')}\\nNamespace: +default\\nDeployment: +web\\n`));
  assert.match(described.stdout, /\nStatus: +Pending\n/);
  assert.match(described.stdout, /\nContainers:\n {2}\(no status reported yet\)\nEvents:/);
  const missing = await runGantry(['describe', 'instance', 'default.nope-0000000000-0', '--api', rec.url]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /^error: instance "default\.nope-0000000000-0" not found/);
  const deployment = await runGantry(['describe', 'deployment', 'web', '--api', rec.url]);
  assert.equal(deployment.code, 0, deployment.stderr);
  assert.match(deployment.stdout, /^Name: +web\nNamespace: +default\n/);
  assert.match(deployment.stdout, /\nReplicas: +1 desired \| 1 updated \| 0 ready \| 0 available \| 1 pending\n/);
  assert.match(deployment.stdout, /\nConditions:\n {2}Type +Status +Reason +Message\n/);
  assert.match(deployment.stdout, /\nEvents:\n {2}Type +Reason +Age +Object +Message\n/);
  const usage = await runGantry(['describe', 'frob', 'web', '--api', rec.url]);
  assert.equal(usage.code, 2);
  assert.equal(usage.stderr, 'error: unknown kind "frob": expected deployment, instance, node or service\n');
});
