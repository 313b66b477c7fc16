import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { ingestV1 } from '@ledgerflow/contracts';
import { decodeMetricRequest, metricRequestDecoder } from './batch-decoder.js';

const { StreamMetricsRequest, IngestMetricsRequest } = ingestV1;

function encode(request: ingestV1.StreamMetricsRequest): Buffer {
  return Buffer.from(StreamMetricsRequest.encode(request).finish());
}

/** The decoded request with typed columns turned into plain arrays, to compare with the generated one. */
function plain(request: unknown): unknown {
  return JSON.parse(
    JSON.stringify(request, (_key, value: unknown) =>
      ArrayBuffer.isView(value) ? Array.from(value as Float64Array) : value,
    ),
  );
}

const batch = (runs: ingestV1.RunPoints[]): ingestV1.StreamMetricsRequest => ({
  batch: { clientId: 'worker-1', clientBatchId: 'b-1', runs },
});

describe('fast metric batch decoder', () => {
  it('decodes what the generated encoder writes, as the generated decoder does', () => {
    const extremes = [0, 1, -1, 127, 128, -128, 2 ** 31, -(2 ** 31), 2 ** 32 + 5, -(2 ** 40) - 3];
    const request = batch([
      {
        runId: 'run-a',
        keys: ['loss', 'acc', 'ключ'],
        keyIndex: extremes.map((_, i) => i % 3),
        steps: extremes,
        timestamps: extremes.map((x, i) => Math.abs(x) + i + Number.MAX_SAFE_INTEGER - 2 ** 41),
        values: [0.5, NaN, Infinity, -Infinity, -0, 1e-308, 1e308, -2.5, 3, 7],
      },
      {
        runId: 'run-b',
        keys: ['x'],
        keyIndex: [0, 0],
        steps: [Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER],
        timestamps: [1_700_000_000_000, 1_700_000_000_001],
        values: [1, 2],
      },
    ]);
    const bytes = encode(request);
    const fast = decodeMetricRequest(bytes)!;
    expect(fast).toBeDefined();
    expect(fast.batch!.runs[0]!.steps).toBeInstanceOf(Float64Array);
    expect(plain(fast)).toEqual(plain(StreamMetricsRequest.decode(bytes)));
    expect(Object.is(fast.batch!.runs[0]!.values[4], -0)).toBe(true);
    expect(Array.from(fast.batch!.runs[1]!.steps)).toEqual([
      Number.MAX_SAFE_INTEGER,
      Number.MIN_SAFE_INTEGER,
    ]);
    // IngestMetricsRequest has the same shape
    const ingestBytes = Buffer.from(IngestMetricsRequest.encode(request).finish());
    expect(plain(decodeMetricRequest(ingestBytes))).toEqual(
      plain(IngestMetricsRequest.decode(ingestBytes)),
    );
  });

  it('decodes an empty request and a batch without runs', () => {
    expect(decodeMetricRequest(Buffer.alloc(0))).toEqual({});
    expect(plain(decodeMetricRequest(encode(batch([]))))).toEqual({
      batch: { clientId: 'worker-1', clientBatchId: 'b-1', runs: [] },
    });
  });

  it('refuses an int64 beyond 2^53 with the generated decoder message', () => {
    const w = new BinaryWriter();
    w.uint32(10).fork(); // batch
    w.uint32(26).fork(); // runs[0]
    w.uint32(34).fork().int64('9007199254740993').join(); // steps: 2^53 + 1
    w.join().join();
    const bytes = Buffer.from(w.finish());
    expect(() => decodeMetricRequest(bytes)).toThrow(/MAX_SAFE_INTEGER/);
    expect(() => StreamMetricsRequest.decode(bytes)).toThrow(/MAX_SAFE_INTEGER/);
    const negative = new BinaryWriter();
    negative.uint32(10).fork().uint32(26).fork();
    negative.uint32(42).fork().int64('-9007199254740993').join();
    negative.join().join();
    expect(() => decodeMetricRequest(Buffer.from(negative.finish()))).toThrow(/MIN_SAFE_INTEGER/);
  });

  it('throws on truncated bytes', () => {
    const bytes = encode(
      batch([{ runId: 'r', keys: ['k'], keyIndex: [0], steps: [1], timestamps: [2], values: [3] }]),
    );
    for (let cut = 1; cut < bytes.length; cut++) {
      expect(() => decodeMetricRequest(bytes.subarray(0, cut))).toThrow();
    }
  });

  it('leaves unpacked columns to the generated decoder, and skips unknown fields', () => {
    const w = new BinaryWriter();
    w.uint32(10).fork();
    w.uint32(10).string('c');
    w.uint32(18).string('b');
    w.uint32(26).fork();
    w.uint32(10).string('run');
    w.uint32(18).string('loss');
    w.uint32(24).uint32(0); // key_index, unpacked
    w.uint32(32).int64(-5); // steps, unpacked
    w.uint32(40).int64(1000);
    w.uint32(49).double(0.25);
    w.uint32(7 * 8 + 2).string('a field from a newer schema');
    w.join();
    w.uint32(99 * 8).uint32(12345); // unknown varint field of the batch
    w.join();
    const bytes = Buffer.from(w.finish());
    expect(decodeMetricRequest(bytes)).toBeUndefined();
    const decoded = metricRequestDecoder((b) => StreamMetricsRequest.decode(b))(bytes);
    expect(decoded.batch!.runs[0]).toEqual({
      runId: 'run',
      keys: ['loss'],
      keyIndex: [0],
      steps: [-5],
      timestamps: [1000],
      values: [0.25],
    });

    const unknown = new BinaryWriter();
    unknown
      .uint32(10)
      .fork()
      .uint32(18)
      .string('b2')
      .uint32(99 * 8)
      .uint32(1)
      .join();
    unknown.uint32(5 * 8 + 1).double(1);
    expect(plain(decodeMetricRequest(Buffer.from(unknown.finish())))).toEqual({
      batch: { clientId: '', clientBatchId: 'b2', runs: [] },
    });
  });
});
