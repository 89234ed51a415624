// The stats server many self-hosters write by hand: Express and better-sqlite3, WAL with
// synchronous=FULL, one transaction per request, the answer after it commits.
// Usage: node server.js PORT DATABASE_FILE
"use strict";
const express = require("express");
const Database = require("better-sqlite3");

const [port, file] = process.argv.slice(2);
const db = new Database(file);
db.pragma("journal_mode = WAL");
db.pragma("synchronous = FULL");
const columns = [
  "app_id", "device_id", "platform", "action", "version_name", "old_version_name",
  "version_build", "version_code", "version_os", "plugin_version", "custom_id", "is_prod",
  "is_emulator", "install_source", "default_channel", "timestamp", "metadata",
];
db.exec(`CREATE TABLE IF NOT EXISTS stats (id INTEGER PRIMARY KEY, ${columns.join(", ")})`);
const insert = db.prepare(
  `INSERT INTO stats (${columns.join(", ")}) VALUES (${columns.map(() => "?").join(", ")})`
);
const value = (v) => (v === undefined ? null : typeof v === "boolean" ? Number(v) : v);
const store = db.transaction((events) => {
  for (const e of events) {
    insert.run(columns.map((name) => {
      if (name === "default_channel") return value(e.defaultChannel);
      if (name === "metadata") return e.metadata === undefined ? null : JSON.stringify(e.metadata);
      return value(e[name]);
    }));
  }
});

const app = express();
app.use(express.json({ limit: "1mb" }));
app.get("/stats", (req, res) => res.json({ status: "ok" }));
app.post("/stats", (req, res) => {
  const events = Array.isArray(req.body) ? req.body : [req.body];
  if (!events.every((e) => e && typeof e.app_id === "string" && typeof e.device_id === "string")) {
    return res.status(400).json({ error: "invalid_event" });
  }
  store(events);
  res.json({ status: "ok" });
});
app.listen(Number(port), "127.0.0.1");
