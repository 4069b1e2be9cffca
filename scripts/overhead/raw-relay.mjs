// The raw relay baseline of bench:overhead, run as its own process (as the coordinator is): a Node
// `ws` server that pairs a client socket (/client/<id>) with a tab socket (/tab/<id>) and forwards
// every frame as it is, in both directions — no parsing, no storage. Prints its port when ready.
import { WebSocketServer } from "ws";

const waiting = new Map();
const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 }, () => {
  console.log(JSON.stringify({ port: wss.address().port }));
});
wss.on("connection", (ws, req) => {
  const [, role, id] = (req.url ?? "").split("/");
  const other = waiting.get(id);
  if (!other) {
    const held = [];
    waiting.set(id, { ws, role, held });
    ws.on("message", (data, isBinary) => held.push([data, isBinary]));
    return;
  }
  waiting.delete(id);
  ws.removeAllListeners("message");
  other.ws.removeAllListeners("message");
  ws.on("message", (data, isBinary) => other.ws.send(data, { binary: isBinary }));
  other.ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
  for (const [data, isBinary] of other.held) ws.send(data, { binary: isBinary });
  ws.on("close", () => other.ws.close());
  other.ws.on("close", () => ws.close());
});
