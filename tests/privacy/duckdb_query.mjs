#!/usr/bin/env node
// Runs one SQL query in DuckDB (an independent Parquet reader) and prints the rows as a JSON
// array, for the privacy tests: "does any Parquet file still hold this subject?".
//
//   node tests/privacy/duckdb_query.mjs "SELECT count(*) AS n FROM read_parquet('OUT/Results/*.parquet')"
import { createRequire } from 'node:module';

const require = createRequire(new URL('../../tools/node/package.json', import.meta.url));
const { DuckDBInstance } = require('@duckdb/node-api');

const sql = process.argv[2];
if (!sql) {
  console.error('usage: duckdb_query.mjs SQL');
  process.exit(2);
}
try {
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  const reader = await connection.runAndReadAll(sql);
  process.stdout.write(`${JSON.stringify(reader.getRowObjectsJson())}\n`);
  connection.closeSync();
  instance.closeSync();
} catch (e) {
  console.error(`duckdb_query.mjs: ${e.message}`);
  process.exit(1);
}
