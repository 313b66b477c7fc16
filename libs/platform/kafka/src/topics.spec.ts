import { decodeEvent, encodeEvent, HEADERS } from './event-bus.js';
import { checkedTopic, eventsTopic } from './topics.js';

describe('topic names', () => {
  it('are versioned ledgerflow names', () => {
    expect(eventsTopic('tracking')).toBe('ledgerflow.tracking.events.v1');
    expect(eventsTopic('registry', 2)).toBe('ledgerflow.registry.events.v2');
    expect(checkedTopic('ledgerflow.registry.stage-changed.v1')).toBe(
      'ledgerflow.registry.stage-changed.v1',
    );
  });

  it.each([
    'tracking.events.v1',
    'ledgerflow.tracking.events',
    'ledgerflow.Tracking.events.v1',
    'ledgerflow.tracking.events.v0',
    'ledgerflow..events.v1',
    'ledgerflow.tracking events.v1',
  ])('rejects %s', (name) => {
    expect(() => checkedTopic(name)).toThrow(RangeError);
  });
});

describe('message encoding', () => {
  const event = {
    id: 'e-1',
    type: 'RunCreated',
    schemaVersion: 2,
    occurredAt: 1,
    data: { name: 'r' },
    metadata: { actor: 'a', correlationId: 'c', causationId: null, traceId: null },
    stream: 'run:1',
    revision: 0,
    position: 7,
    prevHash: 'p',
    hash: 'h',
  };

  it('keys by stream, carries the envelope as JSON and the chain link in headers', () => {
    const { key, value, headers } = encodeEvent({ event, prevPosition: 5 });
    expect(key).toBe('run:1');
    expect(headers).toMatchObject({
      [HEADERS.eventId]: 'e-1',
      [HEADERS.eventType]: 'RunCreated',
      [HEADERS.schemaVersion]: '2',
      [HEADERS.position]: '7',
      [HEADERS.prevPosition]: '5',
    });
    expect(decodeEvent(value, headers)).toEqual({ event, prevPosition: 5 });
    const unchained = encodeEvent({ event });
    expect(unchained.headers[HEADERS.prevPosition]).toBeUndefined();
    expect(decodeEvent(unchained.value, unchained.headers).prevPosition).toBeNull();
  });

  it('rejects a payload that is not an event', () => {
    expect(() => decodeEvent('{"hello":1}', {})).toThrow(TypeError);
    expect(() => decodeEvent('null', {})).toThrow(TypeError);
  });
});
