// Adapter from protobuf-es service descriptors to grpc-js service definitions,
// so server and client use one gRPC library with protobuf-es messages.
import {
  fromBinary,
  toBinary,
  type DescMessage,
  type DescMethod,
  type DescService,
  type MessageShape,
} from '@bufbuild/protobuf';
import type { MethodDefinition, ServiceDefinition } from '@grpc/grpc-js';

/** The gRPC path of a method, e.g. `/google.bytestream.ByteStream/Read`. */
export function methodPath(method: DescMethod): string {
  return `/${method.parent.typeName}/${method.name}`;
}

/** Field number of the `bytes data` field of the ByteStream messages that carry blob data. */
const DATA_FIELD: Record<string, number> = {
  'google.bytestream.ReadResponse': 10,
  'google.bytestream.WriteRequest': 10,
};

function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

/**
 * Encodes a message whose large `data` field goes last, copying the data once
 * into an exactly sized buffer (toBinary copies it twice, into a buffer grown
 * by doubling and then into the result).
 */
function serializeWithData<D extends DescMessage>(
  schema: D,
  m: MessageShape<D>,
  field: number,
  data: Uint8Array,
): Buffer {
  const head = toBinary(schema, { ...m, data: new Uint8Array(0) });
  const tag = (field << 3) | 2;
  const out = Buffer.allocUnsafe(
    head.byteLength + varintSize(tag) + varintSize(data.byteLength) + data.byteLength,
  );
  out.set(head, 0);
  let pos = head.byteLength;
  for (let v of [tag, data.byteLength]) {
    while (v >= 0x80) {
      out[pos++] = (v & 0x7f) | 0x80;
      v = Math.floor(v / 128);
    }
    out[pos++] = v;
  }
  out.set(data, pos);
  return out;
}

function serializer<D extends DescMessage>(schema: D): (m: MessageShape<D>) => Buffer {
  const field = DATA_FIELD[schema.typeName];
  return (m) => {
    const data = (m as { data?: unknown }).data;
    if (field !== undefined && data instanceof Uint8Array && data.byteLength >= 64 * 1024) {
      return serializeWithData(schema, m, field, data);
    }
    const bytes = toBinary(schema, m);
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  };
}

function deserializer<D extends DescMessage>(schema: D): (b: Buffer) => MessageShape<D> {
  return (b) => fromBinary(schema, b, { readUnknownFields: false });
}

const definitions = new WeakMap<DescMethod, MethodDefinition<unknown, unknown>>();

/** grpc-js's definition of a method, made once per method (clients ask on every call). */
export function methodDefinition(method: DescMethod): MethodDefinition<unknown, unknown> {
  let def = definitions.get(method);
  if (def === undefined) {
    def = makeDefinition(method);
    definitions.set(method, def);
  }
  return def;
}

function makeDefinition(method: DescMethod): MethodDefinition<unknown, unknown> {
  const kind = method.methodKind;
  return {
    path: methodPath(method),
    requestStream: kind === 'client_streaming' || kind === 'bidi_streaming',
    responseStream: kind === 'server_streaming' || kind === 'bidi_streaming',
    requestSerialize: serializer(method.input) as (m: unknown) => Buffer,
    requestDeserialize: deserializer(method.input),
    responseSerialize: serializer(method.output) as (m: unknown) => Buffer,
    responseDeserialize: deserializer(method.output),
    originalName: method.localName,
  };
}

/** grpc-js ServiceDefinition keyed by the method's local (camelCase) name. */
export function serviceDefinition(service: DescService): ServiceDefinition {
  const def: Record<string, MethodDefinition<unknown, unknown>> = {};
  for (const m of service.methods) def[m.localName] = methodDefinition(m);
  return def;
}
