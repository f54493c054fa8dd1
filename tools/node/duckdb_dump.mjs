// Prints what DuckDB (an independent Parquet implementation) reads from Parquet files, as
// JSON, so fruitpipe's tests can compare it value by value with what fruitpipe wrote.
//
//   node duckdb_dump.mjs [options] <file-or-glob>
//   node duckdb_dump.mjs --exec "<sql>"            (e.g. make DuckDB write a Parquet file)
//   node duckdb_dump.mjs --query "<sql>"           (rows of any query, e.g. an aggregate)
//
// Options:
//   --schema    add "parquet_schema": rows of parquet_schema(file)
//   --metadata  add "parquet_metadata" (row groups, codecs, encodings, statistics) and
//               "kv_metadata" (the file key/value metadata)
//   --exec SQL  run SQL first (repeatable); with no file or query, print {"ok": true}
//   --query SQL print the rows of SQL instead of the file's rows
//
// Output: {"columns": [{"name", "type"}], "rows": [[...], ...], ...}. Values use DuckDB's
// JSON forms (BIGINT as a string, non-finite floats as "NaN"/"Infinity"/"-Infinity");
// negative zero is printed as the string "-0" because JSON numbers cannot carry its sign.
// Finite floats and doubles print with the shortest digits that round-trip exactly.
import { DuckDBInstance } from '@duckdb/node-api';

function usage(msg) {
  process.stderr.write(`duckdb_dump: ${msg}\nusage: node duckdb_dump.mjs [--schema] [--metadata] [--exec SQL]... [--query SQL] [file-or-glob]\n`);
  process.exit(2);
}

const args = process.argv.slice(2);
let file = null;
let wantSchema = false;
let wantMetadata = false;
let query = null;
const execs = [];
for (let i = 0; i < args.length; ++i) {
  const a = args[i];
  if (a === '--schema') wantSchema = true;
  else if (a === '--metadata') wantMetadata = true;
  else if (a === '--exec') {
    if (i + 1 >= args.length) usage('--exec needs an SQL statement');
    execs.push(args[++i]);
  } else if (a === '--query') {
    if (i + 1 >= args.length) usage('--query needs an SQL statement');
    query = args[++i];
  } else if (a.startsWith('--')) usage(`unknown option ${a}`);
  else if (file === null) file = a;
  else usage('only one file or glob');
}
if (file === null && query === null && execs.length === 0) usage('no file given');
if ((wantSchema || wantMetadata) && file === null) usage('--schema and --metadata need a file');

const quote = (s) => `'${s.replaceAll("'", "''")}'`;
const json = (v) => JSON.stringify(v, (_k, x) => (Object.is(x, -0) ? '-0' : x));

try {
  const instance = await DuckDBInstance.create(':memory:');
  const conn = await instance.connect();
  for (const sql of execs) await conn.run(sql);
  if (file === null && query === null) {
    process.stdout.write(json({ ok: true }) + '\n');
  } else {
    const out = {};
    const reader = await conn.runAndReadAll(query ?? `SELECT * FROM read_parquet(${quote(file)})`);
    const types = reader.columnTypes().map((t) => t.toString());
    out.columns = reader.columnNames().map((name, i) => ({ name, type: types[i] }));
    out.rows = reader.getRowsJson();
    if (wantSchema) {
      const r = await conn.runAndReadAll(`SELECT * FROM parquet_schema(${quote(file)})`);
      out.parquet_schema = r.getRowObjectsJson();
    }
    if (wantMetadata) {
      const m = await conn.runAndReadAll(`SELECT * FROM parquet_metadata(${quote(file)})`);
      out.parquet_metadata = m.getRowObjectsJson();
      const kv = await conn.runAndReadAll(
        `SELECT decode(key) AS key, decode(value) AS value FROM parquet_kv_metadata(${quote(file)})`);
      out.kv_metadata = kv.getRowObjectsJson();
    }
    process.stdout.write(json(out) + '\n');
  }
  conn.closeSync();
} catch (e) {
  process.stderr.write(`duckdb_dump: ${String(e && e.message ? e.message : e).split('\n')[0]}\n`);
  process.exit(1);
}
