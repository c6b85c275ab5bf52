// Package contract holds the netcore_contract processor: events checked at
// delivery time against JSON Schemas, one a panel, such as
// `netcore-connect catalog export` writes from the catalog of panels
// (internal/catalog). A violating event is delivered and counted (the
// default) or kept as a dead letter (enforce), with the schema's error.
//
// Files: processor_netcore_contract.go (the config spec, loading the
// schemas, the check), processor_netcore_contract_test.go.
package contract
