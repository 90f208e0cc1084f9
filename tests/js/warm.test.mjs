// When the early offer of a wait is made and sent (static/warm.js's OfferAhead), under node
// with a fake clock: only for a wait that lasts past the grace, only for the wait it was
// made in, once per wait.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';

import { OfferAhead, WARM_READY_MS, fitsCall } from '../../static/warm.js';
import { FakeClock } from './fake-clock.mjs';

/** An OfferAhead whose offers are settled by hand: `offers` holds the pending ones. */
function setup({ accept = true } = {}) {
  const clock = new FakeClock();
  const sent = [];
  const offers = [];
  const full = [];
  const ahead = new OfferAhead({
    clock,
    makeOffer: () => new Promise((resolve) => offers.push(resolve)),
    fullOffer: () => new Promise((resolve) => full.push(resolve)),
    send: (sdp) => {
      sent.push(sdp);
      return accept;
    },
  });
  return { clock, sent, offers, full, ahead };
}

/** Lets promise callbacks run. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('offer ahead', () => {
  test('a wait that goes on past the grace sends its offer, then again with all its candidates', async () => {
    const { clock, sent, offers, full, ahead } = setup();
    ahead.looking();
    clock.advance(59);
    assert.equal(offers.length, 0, 'not within the grace: a match may follow the waiting at once');
    clock.advance(1);
    assert.equal(offers.length, 1);
    offers[0]('v=0 mine');
    await settle();
    assert.deepEqual(sent, ['v=0 mine'], 'at once, with the candidates it has');
    full[0]('v=0 mine, all candidates');
    await settle();
    assert.deepEqual(sent, ['v=0 mine', 'v=0 mine, all candidates']);
    assert.equal(ahead.sent, 2);
  });

  test('the fuller offer is not sent once the wait is over, nor when it adds nothing', async () => {
    for (const [end, sdp] of [[true, 'v=0 full'], [false, null]]) {
      const { clock, sent, offers, full, ahead } = setup();
      ahead.looking();
      clock.advance(60);
      offers[0]('v=0 first');
      await settle();
      if (end) ahead.done();
      full[0](sdp);
      await settle();
      assert.deepEqual(sent, ['v=0 first']);
    }
  });

  test('a wait that ends within the grace makes no offer', async () => {
    const { clock, offers, ahead } = setup();
    ahead.looking();
    clock.advance(30);
    ahead.done();
    clock.advance(1000);
    assert.equal(offers.length, 0);
  });

  test('an offer ready only after its wait ended is not sent', async () => {
    const { clock, sent, offers, ahead } = setup();
    ahead.looking();
    clock.advance(60);
    ahead.done();
    offers[0]('v=0 late');
    await settle();
    assert.deepEqual(sent, []);
  });

  test('an offer made for one wait is not sent in the next', async () => {
    const { clock, sent, offers, ahead } = setup();
    ahead.looking();
    clock.advance(60);
    ahead.looking(); // Next while waiting: a wait of its own
    offers[0]('v=0 first');
    await settle();
    assert.deepEqual(sent, []);
    clock.advance(60);
    offers[1]('v=0 second');
    await settle();
    assert.deepEqual(sent, ['v=0 second']);
  });

  test('no warm connection, or an offer the server cannot be sent, counts nothing', async () => {
    const { clock, sent, offers, ahead } = setup({ accept: false });
    ahead.looking();
    clock.advance(60);
    offers[0](null);
    await settle();
    assert.deepEqual(sent, [], 'nothing to send');
    ahead.looking();
    clock.advance(60);
    offers[1]('v=0');
    await settle();
    assert.equal(ahead.sent, 0, 'the socket was down');
  });
});

describe('which connection made ahead a call takes', () => {
  test('one with its offer made, or old enough to have gathered, on the same route', () => {
    const now = 1_000_000;
    const young = { relayOnly: false, hasOffer: false, madeAt: now - WARM_READY_MS + 1 };
    assert.equal(fitsCall(young, false, now), false, 'still gathering: the call makes its own');
    assert.equal(fitsCall({ ...young, madeAt: now - WARM_READY_MS }, false, now), true);
    assert.equal(fitsCall({ ...young, hasOffer: true }, false, now), true, 'its offer may be the stranger\'s already');
    assert.equal(fitsCall({ ...young, hasOffer: true }, true, now), false, 'another route (Hide my IP)');
    assert.equal(fitsCall(null, false, now), false);
  });
});
