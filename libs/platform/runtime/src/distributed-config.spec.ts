import { ConfigError } from '@ledgerflow/config';
import { loadDistributedConfig, modeOf, serviceAddresses } from './distributed-config.js';

const base = {
  LEDGERFLOW_MONGO_URL: 'mongodb://db:27017/',
  LEDGERFLOW_KAFKA_BROKERS: 'k1:9092, k2:9092',
};

describe('distributed configuration', () => {
  it('reads the mode; anything but embedded or distributed is refused', () => {
    expect(modeOf({})).toBe('embedded');
    expect(modeOf({ LEDGERFLOW_MODE: 'Distributed' })).toBe('distributed');
    expect(() => modeOf({ LEDGERFLOW_MODE: 'cluster' })).toThrow(/LEDGERFLOW_MODE/);
  });

  it('gives each service its own database and default listener; others from env', () => {
    const tracking = loadDistributedConfig(base, 'tracking-ingest');
    expect(tracking).toMatchObject({
      mongoUrl: 'mongodb://db:27017/',
      database: 'ledgerflow_tracking_ingest',
      kafkaBrokers: ['k1:9092', 'k2:9092'],
      serviceGrpcPort: 50061,
      trackingAddress: '127.0.0.1:50061',
      registryAddress: '127.0.0.1:50062',
      callDeadlineMs: 30_000,
      logPollMs: 2000,
    });
    expect(loadDistributedConfig(base, 'registry-governance').serviceGrpcPort).toBe(50062);
    expect(
      loadDistributedConfig(
        {
          ...base,
          LEDGERFLOW_MONGO_DATABASE: 'lf_a',
          LEDGERFLOW_SERVICE_GRPC_PORT: '7000',
          LEDGERFLOW_TRACKING_GRPC_ADDRESS: 'tracking:50061',
          LEDGERFLOW_LOG_POLL_MS: '500',
        },
        'artifact-store',
      ),
    ).toMatchObject({
      database: 'lf_a',
      serviceGrpcPort: 7000,
      trackingAddress: 'tracking:50061',
      logPollMs: 500,
    });
  });

  it.each([
    [{ LEDGERFLOW_KAFKA_BROKERS: 'k:9092' }, /LEDGERFLOW_MONGO_URL/],
    [{ ...base, LEDGERFLOW_MONGO_URL: 'postgres://x' }, /LEDGERFLOW_MONGO_URL/],
    [{ ...base, LEDGERFLOW_KAFKA_BROKERS: ' , ' }, /LEDGERFLOW_KAFKA_BROKERS/],
    [{ ...base, LEDGERFLOW_KAFKA_BROKERS: 'k1' }, /LEDGERFLOW_KAFKA_BROKERS/],
    [{ ...base, LEDGERFLOW_MONGO_DATABASE: 'a.b' }, /LEDGERFLOW_MONGO_DATABASE/],
    [{ ...base, LEDGERFLOW_SERVICE_GRPC_PORT: '70000' }, /LEDGERFLOW_SERVICE_GRPC_PORT/],
    [{ ...base, LEDGERFLOW_REGISTRY_GRPC_ADDRESS: 'registry' }, /LEDGERFLOW_REGISTRY_GRPC_ADDRESS/],
    [{ ...base, LEDGERFLOW_SERVICE_CALL_DEADLINE_MS: '0' }, /LEDGERFLOW_SERVICE_CALL_DEADLINE_MS/],
    [{ ...base, LEDGERFLOW_LOG_POLL_MS: 'soon' }, /LEDGERFLOW_LOG_POLL_MS/],
    [{ ...base, LEDGERFLOW_FAULT_KILL_AFTER_READMODEL_WRITE: 'metrics' }, /test-only fault/],
    [{ ...base, LEDGERFLOW_FAULT_KILL_AFTER_READMODEL_WRITE: 'metrics:0' }, /test-only fault/],
  ])('refuses a bad setting, naming it (%#)', (env, message) => {
    expect(() => loadDistributedConfig(env, 'tracking-ingest')).toThrow(ConfigError);
    expect(() => loadDistributedConfig(env, 'tracking-ingest')).toThrow(message);
  });

  it('arms the test-only kill-after-read-model-write fault only when its variable is set', () => {
    expect(loadDistributedConfig(base, 'tracking-ingest')).not.toHaveProperty(
      'faultKillAfterReadModelWrite',
    );
    expect(
      loadDistributedConfig(
        { ...base, LEDGERFLOW_FAULT_KILL_AFTER_READMODEL_WRITE: 'outbox:tracking:3' },
        'tracking-ingest',
      ).faultKillAfterReadModelWrite,
    ).toEqual({ projection: 'outbox:tracking', batch: 3 });
  });

  it('reads the service addresses alone for a service run in embedded mode', () => {
    expect(serviceAddresses({ LEDGERFLOW_REGISTRY_GRPC_ADDRESS: '[::1]:9000' })).toEqual({
      trackingAddress: '127.0.0.1:50061',
      registryAddress: '[::1]:9000',
      identityAddress: '[::1]:9000',
      authCacheMs: 5000,
      callDeadlineMs: 30_000,
    });
  });

  it('reads the identity address, the service token and the auth cache time', () => {
    expect(
      serviceAddresses({
        LEDGERFLOW_IDENTITY_GRPC_ADDRESS: 'identity:7000',
        LEDGERFLOW_SERVICE_TOKEN: 'a-shared-secret-of-32-characters',
        LEDGERFLOW_AUTH_CACHE_SECONDS: '0',
      }),
    ).toMatchObject({
      identityAddress: 'identity:7000',
      serviceToken: 'a-shared-secret-of-32-characters',
      authCacheMs: 0,
    });
    expect(() => serviceAddresses({ LEDGERFLOW_SERVICE_TOKEN: 'short' })).toThrow(
      /LEDGERFLOW_SERVICE_TOKEN/,
    );
    expect(() => serviceAddresses({ LEDGERFLOW_AUTH_CACHE_SECONDS: '-1' })).toThrow(
      /LEDGERFLOW_AUTH_CACHE_SECONDS/,
    );
  });
});
