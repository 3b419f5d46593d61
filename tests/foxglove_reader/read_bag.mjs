// Read an emoblend bag's MCAP file with Foxglove's own TypeScript libraries, as the Foxglove app
// does: parse each channel's ros2msg schema, decode every message's CDR. Prints JSON.
import { readFile } from "node:fs/promises";
import { McapIndexedReader } from "@mcap/core";
import { parse } from "@foxglove/rosmsg";
import { MessageReader } from "@foxglove/rosmsg2-serialization";

const bytes = await readFile(process.argv[2]);
const readable = {
  size: async () => BigInt(bytes.length),
  read: async (offset, length) => bytes.subarray(Number(offset), Number(offset + length)),
};
const mcap = await McapIndexedReader.Initialize({ readable });
const channels = new Map();
for (const [id, channel] of mcap.channelsById) {
  const schema = mcap.schemasById.get(channel.schemaId);
  const definitions = parse(new TextDecoder().decode(schema.data), { ros2: true });
  channels.set(id, { topic: channel.topic, schema: schema.name, encoding: schema.encoding,
                     reader: new MessageReader(definitions), count: 0 });
}
const expressions = [];
for await (const record of mcap.readMessages()) {
  const channel = channels.get(record.channelId);
  const message = channel.reader.readMessage(record.data);
  channel.count += 1;
  if (channel.topic.endsWith("/expression")) {
    const { sec, nanosec } = message.header.stamp;
    expressions.push({ topic: channel.topic, expression: message.expression,
                       confidence: message.confidence,
                       stamp_ns: (BigInt(sec) * 1000000000n + BigInt(nanosec)).toString() });
  }
}
const topics = {};
for (const channel of channels.values()) {
  topics[channel.topic] = { schema: channel.schema, encoding: channel.encoding, count: channel.count };
}
console.log(JSON.stringify({ topics, expressions }));
