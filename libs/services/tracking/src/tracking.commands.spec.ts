import type { AppendResult, StreamWrite } from '@ledgerflow/event-store';
import { AggregateStore, InMemoryEventStore } from '@ledgerflow/event-store';
import { InMemoryReadModelStore, ProjectionRunner } from '@ledgerflow/projections';
import { TrackingCommands } from './tracking.commands.js';
import { trackingProjection } from './tracking.projection.js';

/**
 * An event store whose next append lands and then reports a failure, as when the connection to
 * the database drops after the commit but before its acknowledgement arrives.
 */
class LostAckEventStore extends InMemoryEventStore {
  dropNextAck = false;

  override async appendMulti(writes: readonly StreamWrite[]): Promise<AppendResult> {
    const result = await super.appendMulti(writes);
    if (this.dropNextAck) {
      this.dropNextAck = false;
      throw new Error('connection closed before the append was acknowledged');
    }
    return result;
  }
}

const metadata = { actor: 'test', correlationId: 'c-1', causationId: null };

describe('TrackingCommands.createExperiment after a create that failed once it had landed', () => {
  let log: LostAckEventStore;
  let runner: ProjectionRunner;
  let commands: TrackingCommands;

  beforeEach(async () => {
    log = new LostAckEventStore();
    runner = new ProjectionRunner({
      eventStore: log,
      readModels: new InMemoryReadModelStore(),
      projections: [trackingProjection],
    });
    await runner.start();
    commands = new TrackingCommands(new AggregateStore(log), runner, () => 0.5);
  });

  afterEach(async () => {
    await runner.stop();
  });

  it('gives the next experiment a fresh id instead of the one the failed create may have used', async () => {
    expect(await commands.createExperiment('first', undefined, '/a', [], metadata)).toBe('1');
    log.dropNextAck = true;
    await expect(
      commands.createExperiment('second', undefined, '/a', [], metadata),
    ).rejects.toThrow(/acknowledged/);
    // "second" is in the log as experiment 2 although its caller saw an error; handing out 2 again
    // would make the next create collide with it
    const third = await commands.createExperiment('third', undefined, '/a', [], metadata);
    expect(third).toBe('3');
    const created = (await log.readAll(0))
      .filter((e) => e.type === 'ExperimentCreated')
      .map((e) => [e.stream, (e.data as { name: string }).name]);
    expect(created).toEqual([
      ['experiment-1', 'first'],
      ['experiment-2', 'second'],
      ['experiment-3', 'third'],
    ]);
  });
});
