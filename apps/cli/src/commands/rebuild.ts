import { loadConfig } from '@ledgerflow/config';
import { openEmbeddedPlatform } from '@ledgerflow/runtime';
import { ALL_PROJECTIONS } from '@ledgerflow/service-embedded';

/** `ledgerflow rebuild [read-model]`: drops read models and replays them from the log. */
export async function rebuildReadModels(opts: {
  readModel: string | undefined;
  dataDir: string | undefined;
}): Promise<number> {
  const config = loadConfig(process.env, { dataDir: opts.dataDir });
  const names = ALL_PROJECTIONS.map((p) => p.name);
  if (opts.readModel !== undefined && !names.includes(opts.readModel)) {
    console.error(
      `ledgerflow rebuild: unknown read model '${opts.readModel}'; known: ${names.join(', ')}`,
    );
    return 2;
  }
  const platform = openEmbeddedPlatform(config, ALL_PROJECTIONS);
  try {
    for (const name of opts.readModel === undefined ? names : [opts.readModel]) {
      const projection = ALL_PROJECTIONS.find((p) => p.name === name)!;
      const { events, ms } = await platform.projections.rebuild(name);
      const hash = await platform.readModels.contentHash(projection);
      console.log(`rebuilt ${name}: ${events} events in ${ms.toFixed(0)} ms, content hash ${hash}`);
    }
    return 0;
  } finally {
    await platform.close();
  }
}
