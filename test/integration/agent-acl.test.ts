import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { agentAclRules } from '../../state/acl.ts';
import { connectRedis } from '../../state/connection.ts';
import { ConfigStore } from '../../state/config-store.ts';
import { configVersion } from '../../state/records/config.ts';
import { waitFor } from '../helpers/wait.ts';
import { AgentWorld, container, instanceRecord } from '../helpers/agent-fixtures.ts';

/**
 * A node agent under the restricted Redis ACL the README documents (`gantry acl agent`): it
 * registers, heartbeats, runs an instance and reports its status with nothing denied, and cannot
 * touch what is not its business.
 */
test('an agent runs under its restricted ACL user, and that user can do nothing else', async () => {
  const w = await AgentWorld.create();
  const user = `agent-${w.node}`;
  const password = randomBytes(16).toString('hex');
  await w.redis.call('ACL', 'SETUSER', user, 'on', `>${password}`, ...agentAclRules(w.node, w.prefix));
  const url = new URL(w.url);
  url.username = user;
  url.password = password;
  const restricted = connectRedis(url.toString(), 'acl-test');
  try {
    await w.redis.call('ACL', 'LOG', 'RESET');
    await w.startAgent({ redisUrl: url.toString(), docker: false, heartbeatMs: 200 });
    // Its env refers to a ConfigMap version: the agent reads config versions (read only).
    const data = { GREETING: 'hi' };
    const version = configVersion({ kind: 'ConfigMap', data });
    await new ConfigStore(w.redis, w.keys).writeVersions([{ kind: 'ConfigMap', namespace: 'default', name: 'app', version, data, commit: 'c' }]);
    const env = [{ name: 'GREETING', configMapKeyRef: { name: 'app', key: 'GREETING', version } }];
    const record = instanceRecord(w.node, { containers: [container({ env, command: [process.execPath, '-e', "require('http').createServer((q, s) => s.end('ok')).listen(+process.env.PORT, '127.0.0.1')"] })] });
    await w.bind(record);
    await w.nudge(record.id);
    const status = await waitFor(async () => {
      const s = await w.status(record.id);
      return s?.phase === 'Running' ? s : undefined;
    }, { what: 'the instance Running, reported by the restricted agent' });
    assert.equal(status.node, w.node);
    const beat = Number(await w.redis.get(w.keys.nodeHeartbeat(w.node)));
    await waitFor(async () => Number(await w.redis.get(w.keys.nodeHeartbeat(w.node))) > beat, { what: 'a heartbeat' });
    assert.deepEqual(await w.redis.call('ACL', 'LOG'), [], 'the agent was denied nothing');

    // What it may not do: desired state, other nodes, the reconciler's queues, admin commands.
    const denied: [string, () => Promise<unknown>][] = [
      ['read a deployment', () => restricted.get(w.keys.deployment('default', 'web'))],
      ['write desired state', () => restricted.sadd(w.keys.deployments, 'default/evil')],
      ['write another node', () => restricted.set(w.keys.node('other-node'), '{}')],
      ['bind itself an instance', () => restricted.sadd(w.keys.nodeInstances(w.node), 'default.evil-0')],
      ['touch the schedule queue', () => restricted.call('LPUSH', `${w.keys.bullPrefix}:schedule:wait`, 'x')],
      ['read another prefix', () => restricted.get('other:instance:x')],
      ['write a config version', () => restricted.hset(w.keys.config('default', 'Secret', 'db'), 'v', '{}')],
      ['FLUSHALL', () => restricted.call('FLUSHALL')],
      ['CONFIG', () => restricted.call('CONFIG', 'GET', 'requirepass')],
      ['KEYS', () => restricted.call('KEYS', '*')],
      ['ACL', () => restricted.call('ACL', 'LIST')],
    ];
    for (const [what, attempt] of denied) await assert.rejects(attempt(), /NOPERM/, what);
    assert.equal(await restricted.get(w.keys.instance(record.id)).then((r) => (r ? 'ok' : 'none')), 'ok', 'it may read instance records');
  } finally {
    restricted.disconnect();
    await w.redis.call('ACL', 'DELUSER', user).catch(() => undefined);
    await w.cleanup();
  }
});
