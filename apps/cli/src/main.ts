import { Command, InvalidArgumentError } from 'commander';
// Commands are loaded when they run, so `audit verify` does not pay for the server stack.

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new InvalidArgumentError('must be a port number 0-65535');
  return n;
}

const program = new Command('ledgerflow')
  .description("Ledgerflow: an event-sourced ML lifecycle platform that speaks MLflow's REST API")
  .showHelpAfterError();

program
  .command('server')
  .description(
    'run every service in one process (embedded mode: SQLite event log, local artifacts)',
  )
  .option('--host <host>', 'address to bind (env LEDGERFLOW_HOST)')
  .option('--port <port>', 'HTTP port (env LEDGERFLOW_PORT or PORT)', port)
  .option('--data-dir <dir>', 'where the event log and read models live (env LEDGERFLOW_DATA_DIR)')
  .option(
    '--grpc-port <port>',
    'gRPC metric ingest port (env LEDGERFLOW_GRPC_PORT, default 50051)',
    port,
  )
  .action(async (opts: { host?: string; port?: number; dataDir?: string; grpcPort?: number }) => {
    const { runServer } = await import('./commands/server.js');
    await runServer(opts);
  });

program
  .command('service')
  .description(
    'run one service in its own process: tracking-ingest, artifact-store, registry-governance or deployment (distributed mode with LEDGERFLOW_MODE=distributed; see docs/operations.md)',
  )
  .argument('<name>', 'the service')
  .option('--host <host>', 'address to bind (env LEDGERFLOW_HOST)')
  .option('--port <port>', 'HTTP port (env LEDGERFLOW_PORT or PORT)', port)
  .option('--data-dir <dir>', 'data directory in embedded mode (env LEDGERFLOW_DATA_DIR)')
  .option('--grpc-port <port>', 'gRPC metric ingest port of tracking-ingest', port)
  .action(
    async (
      name: string,
      opts: { host?: string; port?: number; dataDir?: string; grpcPort?: number },
    ) => {
      const { runService } = await import('./commands/server.js');
      await runService(name, opts);
    },
  );

program
  .command('migrate')
  .description(
    "copy an embedded data dir's event log into the MongoDB databases of distributed mode, each event into the log of the service that owns its stream (the server must be stopped; the databases must be empty)",
  )
  .option('--mongo-url <url>', 'mongodb://host:port/ (env LEDGERFLOW_MONGO_URL)')
  .option('--data-dir <dir>', 'data directory (env LEDGERFLOW_DATA_DIR)')
  .option('--database-prefix <prefix>', 'databases are <prefix>_<service>', 'ledgerflow')
  .action(async (opts: { mongoUrl?: string; dataDir?: string; databasePrefix: string }) => {
    const mongoUrl = opts.mongoUrl ?? process.env['LEDGERFLOW_MONGO_URL'];
    if (mongoUrl === undefined) {
      console.error('ledgerflow migrate: --mongo-url (or LEDGERFLOW_MONGO_URL) is required');
      process.exitCode = 2;
      return;
    }
    const { migrateToMongo } = await import('./commands/migrate.js');
    process.exitCode = await migrateToMongo({ ...opts, mongoUrl });
  });

program
  .command('rebuild')
  .description('drop read models and replay them from the event log (the server must be stopped)')
  .argument('[read-model]', 'one read model to rebuild; all of them when omitted')
  .option('--data-dir <dir>', 'data directory (env LEDGERFLOW_DATA_DIR)')
  .action(async (readModel: string | undefined, opts: { dataDir?: string }) => {
    const { rebuildReadModels } = await import('./commands/rebuild.js');
    process.exitCode = await rebuildReadModels({ readModel, dataDir: opts.dataDir });
  });

program
  .command('users')
  .description('manage users in the data directory (the server must be stopped)')
  .command('reset-password')
  .description(
    "set a user's password (creating the user if absent); LEDGERFLOW_NEW_PASSWORD, or a generated one printed once",
  )
  .argument('<username>', 'user name')
  .option('--admin', 'make the user an admin')
  .option('--data-dir <dir>', 'data directory (env LEDGERFLOW_DATA_DIR)')
  .action(async (username: string, opts: { admin?: boolean; dataDir?: string }) => {
    const { resetPassword } = await import('./commands/users.js');
    process.exitCode = await resetPassword({
      username,
      admin: opts.admin === true,
      dataDir: opts.dataDir,
    });
  });

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError('must be an integer >= 1');
  return n;
}

const audit = program
  .command('audit')
  .description(
    'the audit trail: export and verify the hash-chained log (offline), and timeline, as-of and replay of the registry (from a server)',
  );
audit
  .command('export')
  .description(
    'write the log as JSON Lines with its hash chain (read-only on a data dir, or from --server)',
  )
  .option('--out <file>', 'write to this file instead of stdout')
  .option('--data-dir <dir>', 'data directory (env LEDGERFLOW_DATA_DIR)')
  .option('--server <url>', 'export from a running server instead')
  .option('--from <position>', 'first log position', positiveInt)
  .option('--to <position>', 'last log position', positiveInt)
  .action(
    async (opts: {
      out?: string;
      dataDir?: string;
      server?: string;
      from?: number;
      to?: number;
    }) => {
      const { auditExport } = await import('./commands/audit.js');
      process.exitCode = await auditExport({
        ...opts,
        dataDir: opts.dataDir ?? process.env['LEDGERFLOW_DATA_DIR'] ?? './ledgerflow-data',
      });
    },
  );
audit
  .command('timeline')
  .description("a registered model's (or one version's) history: who, what, when, why, approvals")
  .argument('<name>', 'registered model name')
  .option('--version <n>', 'only this version')
  .option('--server <url>', 'server URL (env MLFLOW_TRACKING_URI)')
  .option('--data-dir <dir>', "answer from a stopped server's data directory instead")
  .option('--json', 'print the JSON response')
  .action(
    async (
      name: string,
      opts: { version?: string; server?: string; dataDir?: string; json?: boolean },
    ) => {
      const { auditTimeline } = await import('./commands/audit.js');
      process.exitCode = await auditTimeline(name, opts.version, opts);
    },
  );
audit
  .command('as-of')
  .description("every registered model's stages and aliases at an instant (ISO 8601 or epoch ms)")
  .argument('<instant>', 'e.g. 2026-03-01T12:00:00Z')
  .option('--name <name>', 'only this registered model')
  .option('--server <url>', 'server URL (env MLFLOW_TRACKING_URI)')
  .option('--data-dir <dir>', "answer from a stopped server's data directory instead")
  .option('--json', 'print the JSON response')
  .action(
    async (
      instant: string,
      opts: { name?: string; server?: string; dataDir?: string; json?: boolean },
    ) => {
      const { auditAsOf } = await import('./commands/audit.js');
      process.exitCode = await auditAsOf(instant, opts.name, opts);
    },
  );
audit
  .command('replay')
  .description("a registered model's promotion history as a readable report")
  .argument('<name>', 'registered model name')
  .option('--server <url>', 'server URL (env MLFLOW_TRACKING_URI)')
  .option('--data-dir <dir>', "answer from a stopped server's data directory instead")
  .option('--json', 'print the JSON response')
  .action(async (name: string, opts: { server?: string; dataDir?: string; json?: boolean }) => {
    const { auditReplay } = await import('./commands/audit.js');
    process.exitCode = await auditReplay(name, opts);
  });
audit
  .command('verify')
  .description('check the whole hash chain; exits non-zero naming the first bad event')
  .option('--data-dir <dir>', 'data directory (env LEDGERFLOW_DATA_DIR)')
  .option('--file <file>', 'verify an exported JSON Lines file instead, offline')
  .action(async (opts: { dataDir?: string; file?: string }) => {
    const { auditVerify } = await import('./commands/audit-verify.js');
    process.exitCode = await auditVerify({
      dataDir: opts.dataDir ?? process.env['LEDGERFLOW_DATA_DIR'] ?? './ledgerflow-data',
      ...(opts.file === undefined ? {} : { file: opts.file }),
    });
  });

const artifacts = program
  .command('artifacts')
  .description('artifact storage: verify against the log, upload, download, list');
artifacts
  .command('verify')
  .description('re-hash every stored artifact against the log; exits non-zero on any mismatch')
  .option('--data-dir <dir>', 'data directory (env LEDGERFLOW_DATA_DIR)')
  .action(async (opts: { dataDir?: string }) => {
    const { artifactsVerify } = await import('./commands/artifacts.js');
    process.exitCode = await artifactsVerify({
      dataDir: opts.dataDir ?? process.env['LEDGERFLOW_DATA_DIR'] ?? './ledgerflow-data',
    });
  });
artifacts
  .command('upload')
  .description('upload a file or a directory (recursively) through the artifact proxy')
  .argument('<local>', 'file or directory')
  .argument('[artifact-path]', 'destination folder in the store', '')
  .option('--server <url>', 'server URL (env MLFLOW_TRACKING_URI)')
  .action(async (local: string, dest: string, opts: { server?: string }) => {
    const { artifactsUpload } = await import('./commands/artifacts.js');
    process.exitCode = await artifactsUpload(local, dest, opts.server);
  });
artifacts
  .command('download')
  .description('download a file or a directory (recursively) through the artifact proxy')
  .argument('<artifact-path>', 'file or folder in the store')
  .argument('[local-dir]', 'where to put it', '.')
  .option('--server <url>', 'server URL (env MLFLOW_TRACKING_URI)')
  .action(async (src: string, dir: string, opts: { server?: string }) => {
    const { artifactsDownload } = await import('./commands/artifacts.js');
    process.exitCode = await artifactsDownload(src, dir, opts.server);
  });
artifacts
  .command('ls')
  .description('list one folder of the store')
  .argument('[artifact-path]', 'folder in the store', '')
  .option('--server <url>', 'server URL (env MLFLOW_TRACKING_URI)')
  .action(async (dir: string, opts: { server?: string }) => {
    const { artifactsLs } = await import('./commands/artifacts.js');
    process.exitCode = await artifactsLs(dir, opts.server);
  });

await program.parseAsync(process.argv);
