// Drives the server with an official TypeScript SDK client: lists tools, calls ping twice and,
// when the server lists it, echo with bad arguments; prints what it saw as one JSON object on stdout.
//
//   node ts-client.mjs --sdk v1|v2 --mode legacy|pin|auto --url URL [--token TOKEN]
//
// v1 = @modelcontextprotocol/sdk (legacy handshake only); v2 = @modelcontextprotocol/client,
// whose versionNegotiation picks the era (pin = 2026-07-28 only, auto = probe then fall back).
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    sdk: { type: 'string', default: 'v1' },
    mode: { type: 'string', default: 'legacy' },
    url: { type: 'string' },
    token: { type: 'string' },
  },
});
const requestInit = args.token ? { headers: { Authorization: `Bearer ${args.token}` } } : undefined;
const url = new URL(args.url);

async function connect() {
  if (args.sdk === 'v1') {
    const { Client } = await import('@modelcontextprotocol/sdk/client/index.js');
    const { StreamableHTTPClientTransport } = await import('@modelcontextprotocol/sdk/client/streamableHttp.js');
    const client = new Client({ name: 'e2e-ts-v1', version: '1.0.0' });
    const transport = new StreamableHTTPClientTransport(url, { requestInit });
    await client.connect(transport);
    return { client, protocolVersion: transport.protocolVersion, sessionId: transport.sessionId };
  }
  const { Client, StreamableHTTPClientTransport } = await import('@modelcontextprotocol/client');
  const mode = args.mode === 'pin' ? { pin: '2026-07-28' } : args.mode;
  const client = new Client({ name: 'e2e-ts-v2', version: '1.0.0' }, { versionNegotiation: { mode } });
  const transport = new StreamableHTTPClientTransport(url, { requestInit });
  await client.connect(transport);
  return { client, protocolVersion: client.getNegotiatedProtocolVersion(), sessionId: transport.sessionId };
}

const { client, protocolVersion, sessionId } = await connect();
const server = client.getServerVersion() ?? null;
const { tools } = await client.listTools();
const pings = [];
for (let i = 0; i < 2; i++) {
  const result = await client.callTool({ name: 'ping', arguments: {} });
  pings.push({ text: result.content[0].text, structured: result.structuredContent ?? null });
}
const bad = tools.some((t) => t.name === 'echo')
  ? await client.callTool({ name: 'echo', arguments: { text: '' } })
  : null;
await client.close();
console.log(JSON.stringify({
  sdk: args.sdk,
  mode: args.mode,
  protocolVersion,
  sessionId: sessionId ?? null,
  server,
  tools: tools.map((t) => t.name),
  pings,
  badEcho: bad && { isError: bad.isError ?? false, text: bad.content[0]?.text ?? '' },
}));
