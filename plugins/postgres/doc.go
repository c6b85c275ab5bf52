// Package postgres is the postgres output: each event a row of a PostgreSQL
// table, written over pgx, one row per event id however often it is
// delivered.
//
// Files:
//   - output_postgres.go: the output's config spec, registration and its
//     Connect, WriteBatch and Close.
//   - table.go: the table's name, and the SQL that creates, checks and
//     writes it.
//   - rows.go: turning a batch of messages into the insert's column arrays.
//   - output_postgres_test.go: the output against a real PostgreSQL server
//     (internal/testing/pgtest).
//   - insert_bench_test.go: the three ways to write a batch compared (the
//     output uses the fastest).
package postgres
