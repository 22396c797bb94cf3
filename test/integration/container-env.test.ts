import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigStore } from '../../state/config-store.ts';
import { EventLog } from '../../state/events.ts';
import { configVersion, type ConfigVersionRecord } from '../../state/records/config.ts';
import type { InstanceStatus } from '../../state/records/instance.ts';
import { AgentWorld, container, instanceRecord } from '../helpers/agent-fixtures.ts';
import { docker, dockerTest, gantryContainers, removeContainersWithLabels, TEST_IMAGE } from '../helpers/docker.ts';
import { waitFor } from '../helpers/wait.ts';

/**
 * ConfigMap and Secret env, end to end on the agent side: versions written as the reconciler
 * writes them (ConfigStore.writeVersions), an instance record referring to them, a real agent and
 * real processes (and a Docker container when an engine is there). The secret's value must reach
 * the process and nothing else: not the agent's log, the events, nor the instance status.
 */

const SECRET_VALUE = 'pw-9f8e7d-never-print-me';
const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

function version(kind: 'ConfigMap' | 'Secret', name: string, data: Record<string, string>): ConfigVersionRecord {
  const content = { kind, data };
  return { ...content, namespace: 'default', name, version: configVersion(content), commit: '0'.repeat(40) };
}

const CONFIG = version('ConfigMap', 'app', { GREETING: 'hello', LEVEL: 'debug', 'not valid!': 'x' });
const SECRET = version('Secret', 'db', { password: b64(SECRET_VALUE), user: b64('admin') });

/** Writes its env and argv to env.json in its dir (its cwd), prints a line without values, then idles. */
const DUMP_ENV_JS =
  "require('fs').writeFileSync('env.json', JSON.stringify({ env: process.env, argv: process.argv.slice(1) })); console.log('env written'); setInterval(() => {}, 1e6)";

function envRecord(node: string, env = fullEnv()) {
  return instanceRecord(node, {
    labels: { app: 'web', tier: 'front' },
    containers: [
      container({
        command: [process.execPath, '-e', DUMP_ENV_JS],
        args: ['$(GREETING)', '$$(GREETING)', '$(UNKNOWN)'],
        ports: [],
        env,
        envFrom: [{ kind: 'ConfigMap', name: 'app', version: CONFIG.version }, { kind: 'Secret', name: 'db', version: SECRET.version, prefix: 'DB_' }],
      }),
    ],
  });
}

function fullEnv() {
  return [
    { name: 'PASSWORD', secretKeyRef: { name: 'db', key: 'password', version: SECRET.version } },
    { name: 'LEVEL', configMapKeyRef: { name: 'app', key: 'GREETING', version: CONFIG.version } },
    // POD_NAME is defined after: it stays literal, as in Kubernetes.
    { name: 'DSN', value: 'postgres://$(DB_user)@db/$(POD_NAME)' },
    { name: 'POD_NAME', fieldRef: { fieldPath: 'metadata.name' } },
    { name: 'POD_UID', fieldRef: { fieldPath: 'metadata.uid' } },
    { name: 'TIER', fieldRef: { fieldPath: "metadata.labels['tier']" } },
    { name: 'NODE', fieldRef: { fieldPath: 'spec.nodeName' } },
    { name: 'POD_IP', fieldRef: { fieldPath: 'status.podIP' } },
    { name: 'OPTIONAL', secretKeyRef: { name: 'gone', key: 'k', optional: true } },
  ];
}

function agentTest(name: string, body: (w: AgentWorld) => Promise<void>): void {
  test(name, async () => {
    const world = await AgentWorld.create();
    try {
      await body(world);
    } finally {
      await world.cleanup();
    }
  });
}

async function statusWhere(w: AgentWorld, id: string, what: string, ok: (s: InstanceStatus) => boolean, timeoutMs = 20_000): Promise<InstanceStatus> {
  return waitFor(async () => {
    const s = await w.status(id);
    return s && ok(s) ? s : undefined;
  }, { what: `${id}: ${what}`, timeoutMs });
}

function dumped(w: AgentWorld, id: string): { env: Record<string, string>; argv: string[] } | undefined {
  try {
    return JSON.parse(readFileSync(join(w.instanceDir(id), 'env.json'), 'utf8'));
  } catch {
    return undefined;
  }
}

/** The secret's value (or its base64) in anything the agent shows: its log lines, events, statuses. */
async function assertNoLeak(w: AgentWorld, id: string): Promise<void> {
  const events = JSON.stringify(await new EventLog(w.redis, w.keys).read({ limit: 1000 }));
  const status = JSON.stringify(await w.status(id));
  for (const [where, text] of [['agent log', w.logs.join('\n')], ['events', events], ['status', status]] as const) {
    assert.ok(!text.includes(SECRET_VALUE) && !text.includes(SECRET.data.password!), `the secret's value is in the ${where}`);
  }
}

agentTest('a process gets env from a ConfigMap and a Secret version, envFrom, fieldRefs and $(VAR); a restarted agent adopts it', async (w) => {
  await new ConfigStore(w.redis, w.keys).writeVersions([CONFIG, SECRET]);
  const first = await w.startAgent({ docker: false });
  const record = envRecord(w.node);
  await w.bind(record);
  await w.nudge(record.id);
  const running = await statusWhere(w, record.id, 'Running', (s) => s.phase === 'Running');
  const { env, argv } = await waitFor(() => dumped(w, record.id), { what: 'env.json' });
  const podName = record.id.slice('default.'.length);
  assert.deepEqual(
    { PASSWORD: env.PASSWORD, LEVEL: env.LEVEL, GREETING: env.GREETING, DB_password: env.DB_password, DB_user: env.DB_user, DSN: env.DSN, POD_NAME: env.POD_NAME, POD_UID: env.POD_UID, TIER: env.TIER, NODE: env.NODE, POD_IP: env.POD_IP },
    { PASSWORD: SECRET_VALUE, LEVEL: 'hello', GREETING: 'hello', DB_password: SECRET_VALUE, DB_user: 'admin', DSN: "postgres://admin@db/$(POD_NAME)", POD_NAME: podName, POD_UID: record.uid, TIER: 'front', NODE: w.node, POD_IP: '127.0.0.1' },
  );
  assert.equal(env.OPTIONAL, undefined, 'an optional ref to a missing Secret is skipped');
  assert.equal(env['not valid!'], undefined);
  assert.equal(env.GANTRY_INSTANCE_ID, record.id, "Gantry's own variables are still there");
  assert.deepEqual(argv, ['hello', '$(GREETING)', '$(UNKNOWN)']);

  const events = await new EventLog(w.redis, w.keys).read({ object: `instance/${record.id}` });
  const invalid = events.filter((e) => e.reason === 'InvalidEnvironmentVariableNames');
  assert.equal(invalid.length, 1);
  assert.match(invalid[0]!.message, /keys \[not valid!\] from the envFrom configmap default\/app were skipped/);

  // Adoption does not depend on the env: same pid, no restart, and nothing read again into a new process.
  await first.stop();
  await w.startAgent({ docker: false });
  await waitFor(() => w.logs.includes(`adopted ${record.id}`), { what: 'adoption' });
  const adopted = await statusWhere(w, record.id, 'Running after adoption', (s) => s.phase === 'Running');
  assert.equal(adopted.pid, running.pid);
  assert.equal(adopted.restarts, 0);
  await assertNoLeak(w, record.id);
});

agentTest('a missing non-optional version waits as CreateContainerConfigError, and starts once the version is written', async (w) => {
  const configs = new ConfigStore(w.redis, w.keys);
  await configs.writeVersions([CONFIG]);
  await w.startAgent({ docker: false });
  const record = envRecord(w.node);
  await w.bind(record);
  await w.nudge(record.id);
  const waiting = await statusWhere(w, record.id, 'CreateContainerConfigError', (s) => s.reason === 'CreateContainerConfigError');
  assert.equal(waiting.phase, 'Pending');
  assert.equal(waiting.message, `secret default/db version ${SECRET.version} is not stored`);
  assert.equal(waiting.restarts, 0);
  assert.equal(dumped(w, record.id), undefined, 'nothing started');
  const events = await new EventLog(w.redis, w.keys).read({ object: `instance/${record.id}` });
  assert.ok(events.some((e) => e.type === 'Warning' && e.reason === 'CreateContainerConfigError' && e.message.includes('secret default/db')));

  await configs.writeVersions([SECRET]);
  const running = await statusWhere(w, record.id, 'Running once the version is there', (s) => s.phase === 'Running', 45_000);
  assert.equal(running.restarts, 0, 'waiting for config is not a restart');
  assert.equal((await waitFor(() => dumped(w, record.id), { what: 'env.json' })).env.PASSWORD, SECRET_VALUE);
  await assertNoLeak(w, record.id);
});

agentTest('a missing key is CreateContainerConfigError naming the key, not the value', async (w) => {
  await new ConfigStore(w.redis, w.keys).writeVersions([CONFIG, SECRET]);
  await w.startAgent({ docker: false });
  const record = envRecord(w.node, [{ name: 'PW', secretKeyRef: { name: 'db', key: 'passwd', version: SECRET.version } }]);
  await w.bind(record);
  await w.nudge(record.id);
  const waiting = await statusWhere(w, record.id, 'CreateContainerConfigError', (s) => s.reason === 'CreateContainerConfigError');
  assert.equal(waiting.message, 'secret default/db has no key "passwd"');
  await assertNoLeak(w, record.id);
});

// ---- Docker: the same env in the container's Env, and adoption of a container whose env came from a Secret.

const nodesUsed = new Set<string>();
after(async () => {
  for (const node of nodesUsed) await removeContainersWithLabels([`dev.gantry.node=${node}`]);
});

dockerTest('docker: the container Env holds the resolved values, and a restarted agent adopts it', async () => {
  const w = await AgentWorld.create();
  nodesUsed.add(w.node);
  try {
    await new ConfigStore(w.redis, w.keys).writeVersions([CONFIG, SECRET]);
    const first = await w.startAgent();
    const record = instanceRecord(w.node, {
      runtime: 'docker',
      terminationGracePeriodSeconds: 2,
      containers: [
        container({
          image: TEST_IMAGE,
          imagePullPolicy: 'IfNotPresent',
          command: ['sh', '-c', 'echo "$1"; exec sleep 3600', 'sh'],
          args: ['$(LEVEL)'],
          ports: [],
          env: fullEnv(),
          envFrom: [{ kind: 'Secret', name: 'db', version: SECRET.version, prefix: 'DB_' }],
        }),
      ],
    });
    await w.bind(record);
    await w.nudge(record.id);
    const before = await statusWhere(w, record.id, 'Running', (s) => s.phase === 'Running', 30_000);
    const [listed] = await gantryContainers(w.node, record.id);
    const info = await docker.getContainer(listed!.Id).inspect();
    for (const expected of [`PASSWORD=${SECRET_VALUE}`, `DB_password=${SECRET_VALUE}`, 'LEVEL=hello', "DSN=postgres://admin@db/$(POD_NAME)", `GANTRY_INSTANCE_ID=${record.id}`]) {
      assert.ok(info.Config.Env.includes(expected), `Env lacks ${expected.split('=')[0]}`);
    }
    assert.deepEqual(info.Config.Cmd, ['hello']);

    await first.stop();
    await w.startAgent();
    await waitFor(() => w.logs.includes(`adopted ${record.id}`), { what: 'adoption' });
    const after = await statusWhere(w, record.id, 'Running after adoption', (s) => s.phase === 'Running');
    assert.equal(after.restarts, 0);
    assert.equal(after.pid, before.pid);
    assert.deepEqual((await gantryContainers(w.node, record.id)).map((c) => c.Id), [listed!.Id]);
    await assertNoLeak(w, record.id);
  } finally {
    try {
      await w.cleanup();
    } finally {
      await removeContainersWithLabels([`dev.gantry.node=${w.node}`]);
    }
  }
});
