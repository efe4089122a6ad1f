// A webhook receiver that verifies every delivery with the official
// Standard Webhooks library (npm standardwebhooks@1.1.1) and prints one
// JSON line per request. The test starts, stops and restarts it.
import http from "node:http";
import { Webhook } from "standardwebhooks";

const wh = new Webhook(process.env.SECRET);
http
  .createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      try {
        const ev = wh.verify(body, req.headers);
        console.log(JSON.stringify({ id: req.headers["webhook-id"], seq: ev.seq }));
        res.writeHead(204).end();
      } catch (e) {
        console.log(JSON.stringify({ error: String(e) }));
        res.writeHead(400).end();
      }
    });
  })
  .listen(Number(process.env.PORT), "127.0.0.1", () => console.log(JSON.stringify({ ready: true })));
