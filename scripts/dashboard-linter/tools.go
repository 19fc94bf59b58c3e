// Pins Grafana's dashboard-linter (github.com/grafana/dashboard-linter, Apache-2.0) for
// tests/deploy; scripts/install-deploy-tools.sh builds it from this module.

//go:build tools

package tools

import _ "github.com/grafana/dashboard-linter"
