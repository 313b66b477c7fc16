import { existsSync } from 'node:fs';
import path from 'node:path';
import type { RecordedEvent } from '@ledgerflow/contracts';
import { dataFiles } from '@ledgerflow/config';
import { SqliteEventStore } from '@ledgerflow/event-store';
import { MongoEventStore } from '@ledgerflow/platform-mongo';
import { SERVICE_NAMES, type ServiceName } from '@ledgerflow/service-embedded';

/** Which service's log a stream belongs to in distributed mode, by its prefix. */
const OWNERS: readonly (readonly [prefix: string, owner: ServiceName])[] = [
  ['experiment-', 'tracking-ingest'],
  ['run-', 'tracking-ingest'],
  ['logged-model-', 'tracking-ingest'],
  ['ingest-', 'tracking-ingest'],
  ['artifacts-', 'artifact-store'],
  ['registered-model-', 'registry-governance'],
  ['model-version-', 'registry-governance'],
  ['registry-policy-', 'registry-governance'],
  ['transition-request-', 'registry-governance'],
  ['registry-denial-', 'registry-governance'],
  ['user-', 'registry-governance'],
  ['group-', 'registry-governance'],
  ['api-token-', 'registry-governance'],
  ['acl-', 'registry-governance'],
  ['deployment-', 'deployment'],
];

export function ownerOfStream(stream: string): ServiceName | undefined {
  return OWNERS.find(([prefix]) => stream.startsWith(prefix))?.[1];
}

/**
 * `ledgerflow migrate`: copies an embedded data dir's log into the MongoDB databases of the
 * distributed services, each event into the log of the service that owns its stream, in log
 * order, with its id, type, data, time and metadata. Refuses a log that does not verify, a stream
 * no service owns, and a target database that already holds events. Resolves to the exit code.
 */
export async function migrateToMongo(opts: {
  dataDir?: string | undefined;
  mongoUrl: string;
  /** Database name per service: `<prefix>_<service>` (default prefix `ledgerflow`). */
  databasePrefix?: string | undefined;
  out?: (line: string) => void;
}): Promise<number> {
  const out = opts.out ?? ((line: string) => console.log(line));
  const dataDir = path.resolve(
    opts.dataDir ?? process.env['LEDGERFLOW_DATA_DIR'] ?? './ledgerflow-data',
  );
  const file = dataFiles(dataDir).events;
  if (!existsSync(file)) {
    console.error(`ledgerflow migrate: no event log at ${file}`);
    return 2;
  }
  const prefix = opts.databasePrefix ?? 'ledgerflow';
  const source = new SqliteEventStore({ path: file });
  const targets = new Map<ServiceName, MongoEventStore>();
  try {
    const verified = await source.verify();
    if (!verified.ok) {
      console.error(`ledgerflow migrate: the embedded log does not verify: ${verified.reason}`);
      return 1;
    }
    // every stream must have an owner before anything is written
    const unknown = new Set<string>();
    for (let page = await source.readAll(0, 1000); page.length > 0;) {
      for (const e of page) if (ownerOfStream(e.stream) === undefined) unknown.add(e.stream);
      page = await source.readAll(page.at(-1)!.position, 1000);
    }
    if (unknown.size > 0) {
      console.error(
        `ledgerflow migrate: no service owns stream(s) ${[...unknown].slice(0, 5).join(', ')}`,
      );
      return 1;
    }
    for (const name of SERVICE_NAMES) {
      const database = `${prefix}_${name.replace(/-/g, '_')}`;
      const store = await MongoEventStore.open({ uri: opts.mongoUrl, database });
      targets.set(name, store);
      const head = await store.headPosition();
      if (head > 0) {
        console.error(
          `ledgerflow migrate: database ${database} already holds ${head} events; migrate into empty databases`,
        );
        return 1;
      }
    }
    const copied = new Map<ServiceName, number>(SERVICE_NAMES.map((n) => [n, 0]));
    // runs of consecutive events of one stream go in one append (in log order): each keeps its
    // stream revision, id and metadata
    const flush = async (run: RecordedEvent[]): Promise<void> => {
      const first = run[0]!;
      const owner = ownerOfStream(first.stream)!;
      await targets.get(owner)!.append(
        first.stream,
        first.revision === 0 ? 'no_stream' : first.revision - 1,
        run.map((e) => ({
          id: e.id,
          type: e.type,
          schemaVersion: e.schemaVersion,
          occurredAt: e.occurredAt,
          data: e.data,
          metadata: e.metadata,
        })),
      );
      copied.set(owner, copied.get(owner)! + run.length);
    };
    let run: RecordedEvent[] = [];
    for (let page = await source.readAll(0, 1000); page.length > 0;) {
      for (const e of page) {
        if (run.length > 0 && run[0]!.stream !== e.stream) {
          await flush(run);
          run = [];
        }
        run.push(e);
      }
      page = await source.readAll(page.at(-1)!.position, 1000);
    }
    if (run.length > 0) await flush(run);
    out(`embedded log: ${verified.headPosition} events, head hash ${verified.headHash}`);
    for (const [name, store] of targets) {
      const check = await store.verify();
      if (!check.ok) {
        console.error(`ledgerflow migrate: ${name}'s copied log does not verify: ${check.reason}`);
        return 1;
      }
      out(
        `${name}: ${copied.get(name)} events into ${prefix}_${name.replace(/-/g, '_')}, head ${check.headPosition}, hash ${check.headHash}`,
      );
    }
    return 0;
  } finally {
    for (const store of targets.values()) await store.close();
    await source.close();
  }
}
