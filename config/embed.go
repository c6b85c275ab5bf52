// Package config holds the pipelines that ship with netcore-connect. They are
// documentation as much as configuration: each is commented, linted in CI
// and tested end to end by the tests in tests/ that run it; some also have
// config unit tests beside them (*_benthos_test.yaml) for their processors
// (the default pipeline and the destination recipes split posts inside their
// disk queue, out of a config test's reach). The default pipeline is
// embedded in the binary, so that `netcore-connect run` works with no file
// at hand.
package config

import _ "embed"

// Default is netcore-to-meiro.yaml, the pipeline run when no config is named.
//
//go:embed netcore-to-meiro.yaml
var Default []byte
