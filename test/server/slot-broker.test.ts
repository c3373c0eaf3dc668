// The slots of --processes N: the primary's SlotBroker and a serving
// process's PrimarySlots, wired to each other here as the IPC channel wires
// them (each message delivered in a later turn), to produce exactly the
// orderings a real channel produces only now and then.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  PrimarySlots,
  SlotBroker,
  type ServingPeer,
  type ToPrimary,
  type ToServing,
} from '../../src/server/processes.js';

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

function peer(): ServingPeer & { sent: ToServing[]; connected: boolean } {
  const p = {
    sent: [] as ToServing[],
    connected: true,
    isConnected: () => p.connected,
    send: (m: ToServing) => {
      p.sent.push(m);
    },
  };
  return p;
}

describe('slots across processes', () => {
  it('a cancel handled before the grant was recorded gives the slot back, and sends no grant', async () => {
    const broker = new SlotBroker(1);
    const a = peer();
    // Both in one turn, as two IPC messages read together are: the pool has
    // granted at once, but the grant is recorded only in a later microtask.
    broker.handle(a, { t: 'slot', id: 1, priority: 0 });
    broker.handle(a, { t: 'cancel', id: 1 });
    await turn();
    assert.equal(broker.busy, 0);
    assert.deepEqual(a.sent, []);
    broker.handle(a, { t: 'slot', id: 2, priority: 0 });
    await turn();
    assert.deepEqual(a.sent, [{ t: 'grant', id: 2 }]);
    assert.equal(broker.busy, 1);
  });

  it('a grant that crossed its cancel is given back by the serving process', async () => {
    const out: ToPrimary[] = [];
    const slots = new PrimarySlots((m) => out.push(m));
    const leave = new AbortController();
    const wanted = slots.acquire(3, leave.signal);
    leave.abort(new Error('client gone'));
    await assert.rejects(wanted, /client gone/);
    assert.equal(slots.handle({ t: 'grant', id: 1 }), true);
    assert.deepEqual(out, [
      { t: 'slot', id: 1, priority: 3 },
      { t: 'cancel', id: 1 },
      { t: 'release', id: 1 },
    ]);
  });

  it('a process that exits gives back what it held and stops waiting; others get the slots', async () => {
    const broker = new SlotBroker(2);
    const a = peer();
    const b = peer();
    broker.handle(a, { t: 'slot', id: 1, priority: 0 });
    broker.handle(a, { t: 'slot', id: 2, priority: 0 });
    broker.handle(a, { t: 'slot', id: 3, priority: 0 });
    broker.handle(b, { t: 'slot', id: 1, priority: 5 });
    await turn();
    assert.deepEqual(a.sent, [
      { t: 'grant', id: 1 },
      { t: 'grant', id: 2 },
    ]);
    a.connected = false;
    broker.forget(a);
    await turn();
    // b's waiting request (priority 5) got a freed slot; a's third never will.
    assert.deepEqual(b.sent, [{ t: 'grant', id: 1 }]);
    assert.equal(broker.busy, 1);
    assert.equal(a.sent.length, 2);
  });

  it('under random cancels and releases over a delayed channel, no slot is lost or doubled', async () => {
    const jobs = 2;
    const broker = new SlotBroker(jobs);
    let holding = 0;
    let most = 0;
    // Each serving process's messages reach the primary in a later turn, and back.
    const processes = [0, 1, 2].map(() => {
      const side: { slots?: PrimarySlots } = {};
      const p: ServingPeer = {
        isConnected: () => true,
        send: (m) => {
          setImmediate(() => side.slots?.handle(m));
        },
      };
      side.slots = new PrimarySlots((m) => {
        setImmediate(() => broker.handle(p, m));
      });
      return side.slots;
    });
    let seed = 7;
    const random = (): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    await Promise.all(
      Array.from({ length: 300 }, async (_, i) => {
        const slots = processes[i % processes.length];
        assert.ok(slots !== undefined);
        const leave = new AbortController();
        // Some give up at once, some after a turn or two, most never.
        const r = random();
        if (r < 0.2) leave.abort(new Error('left'));
        else if (r < 0.5)
          setImmediate(() => {
            leave.abort(new Error('left'));
          });
        try {
          const release = await slots.acquire(Math.floor(random() * 3), leave.signal);
          holding++;
          most = Math.max(most, holding);
          assert.ok(holding <= jobs, `${String(holding)} slots held at once`);
          await turn();
          holding--;
          release();
          release(); // twice is harmless
        } catch (e) {
          assert.match(String(e), /left/);
        }
      }),
    );
    for (let i = 0; i < 5; i++) await turn();
    assert.equal(broker.busy, 0, 'every slot came back');
    assert.equal(most, jobs, 'both slots were used');
  });
});
