import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  aliasNames,
  candidateSlots,
  DEFAULT_POD_NETWORK_RANGE,
  inLink,
  netnsName,
  netnsPrefix,
  parsePodNetworkRange,
  parseSandboxAlias,
  podLink,
  podLinkOf,
  sandboxAlias,
} from '../../agents/pod-netns-plan.ts';

test('namespace names: deterministic per scope and instance, one prefix per scope', () => {
  const a = netnsName('0123456789ab', 'default.web-abc-0');
  assert.equal(a, netnsName('0123456789ab', 'default.web-abc-0'), 'a restarted agent derives the same name');
  assert.match(a, /^gantry-[0-9a-f]{6}-[0-9a-f]{8}$/);
  assert.ok(a.startsWith(netnsPrefix('0123456789ab')));
  assert.notEqual(a, netnsName('0123456789ab', 'default.web-abc-1'));
  const other = netnsName('ba9876543210', 'default.web-abc-0');
  assert.notEqual(other, a, 'another installation on the host names the same instance differently');
  assert.ok(!other.startsWith(netnsPrefix('0123456789ab')), "and its namespaces are not this one's strays");
});

test('the default range is 16384 /30s; a slot is host .1, pod .2 and a host veth named after the /30', () => {
  const r = parsePodNetworkRange(DEFAULT_POD_NETWORK_RANGE);
  assert.deepEqual({ base: r.base, prefixLength: r.prefixLength, slots: r.slots }, { base: (10 << 24) + (213 << 16), prefixLength: 16, slots: 16384 });
  assert.deepEqual(podLink(r, 0), { hostVeth: 'gvh0ad50000', hostIP: '10.213.0.1', podIP: '10.213.0.2', prefixLength: 30 });
  assert.deepEqual(podLink(r, 1), { hostVeth: 'gvh0ad50004', hostIP: '10.213.0.5', podIP: '10.213.0.6', prefixLength: 30 });
  assert.deepEqual(podLink(r, 16383), { hostVeth: 'gvh0ad5fffc', hostIP: '10.213.255.253', podIP: '10.213.255.254', prefixLength: 30 });
  assert.throws(() => podLink(r, 16384), RangeError);
  for (const slot of [0, 77, 16383]) assert.ok(podLink(r, slot).hostVeth.length <= 15, 'interface names fit IFNAMSIZ');
});

test('a pod IP read back from a namespace gives its link, whatever range is configured now', () => {
  const r = parsePodNetworkRange('192.168.64.0/20');
  const link = podLink(r, 5);
  assert.deepEqual(podLinkOf(link.podIP), link);
  assert.equal(podLinkOf('10.213.0.1'), undefined, 'a host end is not a pod IP');
  assert.equal(podLinkOf('not an ip'), undefined);
  assert.ok(inLink(link, link.hostIP) && inLink(link, link.podIP));
  assert.ok(!inLink(link, '192.168.64.24') && !inLink(link, '::1'));
});

test('candidate slots start at one derived from scope and instance and then cover the whole range once', () => {
  const r = parsePodNetworkRange('10.1.0.0/26'); // 16 slots
  const slots = [...candidateSlots(r, 's', 'default.web-x-0')];
  assert.equal(slots.length, 16);
  assert.deepEqual([...slots].sort((a, b) => a - b), [...Array(16).keys()]);
  assert.deepEqual([...candidateSlots(r, 's', 'default.web-x-0')], slots, 'deterministic');
  for (let i = 1; i < slots.length; i++) assert.equal(slots[i], (slots[i - 1]! + 1) % 16);
  const firsts = new Set(Array.from({ length: 40 }, (_, i) => candidateSlots(parsePodNetworkRange(DEFAULT_POD_NETWORK_RANGE), 's', `default.web-x-${i}`).next().value));
  assert.ok(firsts.size > 30, 'instances spread over the range');
});

test('ranges: private IPv4, aligned, /8 to /30; anything else is a one-line error', () => {
  assert.equal(parsePodNetworkRange('172.20.0.0/14').slots, 2 ** 16);
  assert.equal(parsePodNetworkRange('100.64.0.0/10').slots, 2 ** 20);
  assert.equal(parsePodNetworkRange('10.9.9.8/30').slots, 1);
  for (const [bad, why] of [
    ['8.8.0.0/16', /private range/],
    ['10.213.0.1/16', /not the network address/],
    ['10.0.0.0/31', /prefix length from 8 to 30/],
    ['10.0.0.0/7', /prefix length from 8 to 30/],
    ['172.15.0.0/16', /private range/],
    ['fd00::/64', /IPv4 CIDR/],
    ['10.256.0.0/16', /IPv4 CIDR/],
  ] as const) {
    assert.throws(() => parsePodNetworkRange(bad), (err: Error) => why.test(err.message) && !err.message.includes('\n'), bad);
  }
});

test('the loopback alias names the incarnation: uid and a hash of the instance id', () => {
  const id = `default.${'x'.repeat(240)}-0`;
  const alias = sandboxAlias(id, '6f1c1a3e-0000-4000-8000-000000000000');
  assert.ok(alias.length < 256, 'fits an interface alias whatever the id length');
  const parsed = parseSandboxAlias(alias)!;
  assert.equal(parsed.uid, '6f1c1a3e-0000-4000-8000-000000000000');
  assert.ok(aliasNames(parsed, id));
  assert.ok(!aliasNames(parsed, 'default.other-0'));
  assert.equal(parseSandboxAlias(undefined), undefined);
  assert.equal(parseSandboxAlias('something else'), undefined);
});
